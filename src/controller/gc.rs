//! Garbage collection: load balancers this cluster owns in the cloud whose Ingress is gone (or
//! is no longer ours and has no finalizer to clean up through), e.g. deleted while the
//! controller was down with its finalizer removed by hand; then shared backends nothing uses.

use super::context::Context;
use crate::translate;
use kube::runtime::reflector::ObjectRef;

/// Deletes orphaned load balancers; returns how many.
pub async fn collect(ctx: &Context) -> Result<usize, cloud::Error> {
    let owned = ctx.provider.list_owned().await?;
    let mut deleted = 0;
    for key in owned {
        if ctx
            .watch_namespace
            .as_ref()
            .is_some_and(|ns| ns != &key.namespace)
        {
            continue;
        }
        // Decided for each one just before deleting it: an Ingress created since the listing
        // keeps its load balancer.
        if live(ctx, &key.namespace, &key.name) {
            continue;
        }
        tracing::info!(ingress = %key, "deleting the load balancer of an Ingress that no longer exists");
        ctx.provider.delete(&key).await?;
        let id = key.to_string();
        ctx.infra.remove(&id);
        ctx.forget(&id);
        // Should an Ingress of that name have appeared meanwhile, it is built again.
        ctx.requeue(ObjectRef::new(&key.name).within(&key.namespace));
        deleted += 1;
    }
    ctx.provider.collect_garbage().await?;
    Ok(deleted)
}

/// Whether an Ingress of ours (or one still holding our finalizer, which cleans up through it)
/// has this name.
fn live(ctx: &Context, namespace: &str, name: &str) -> bool {
    let config = ctx.translate_config();
    ctx.stores
        .ingresses
        .get(&ObjectRef::new(name).within(namespace))
        .is_some_and(|i| {
            translate::is_ours(&i, &ctx.stores, &config)
                || super::reconcile::has_finalizer(&i, &ctx.finalizer)
        })
}
