//! Garbage collection: load balancers this cluster owns in the cloud whose Ingress is gone (or
//! is no longer ours and has no finalizer to clean up through), e.g. deleted while the
//! controller was down with its finalizer removed by hand.

use super::context::Context;
use crate::translate;
use std::collections::BTreeSet;

/// Deletes orphaned load balancers; returns how many.
pub async fn collect(ctx: &Context) -> Result<usize, cloud::Error> {
    let owned = ctx.provider.list_owned().await?;
    let config = ctx.translate_config();
    let live: BTreeSet<(String, String)> = ctx
        .stores
        .ingresses
        .state()
        .iter()
        .filter(|i| translate::is_ours(i, &ctx.stores, &config) || super::reconcile::has_finalizer(i))
        .map(|i| {
            (
                i.metadata.namespace.clone().unwrap_or_default(),
                i.metadata.name.clone().unwrap_or_default(),
            )
        })
        .collect();
    let mut deleted = 0;
    for key in owned {
        if ctx
            .watch_namespace
            .as_ref()
            .is_some_and(|ns| ns != &key.namespace)
        {
            continue;
        }
        if live.contains(&(key.namespace.clone(), key.name.clone())) {
            continue;
        }
        tracing::info!(ingress = %key, "deleting the load balancer of an Ingress that no longer exists");
        ctx.provider.delete(&key).await?;
        ctx.infra.remove(&key.to_string());
        deleted += 1;
    }
    Ok(deleted)
}
