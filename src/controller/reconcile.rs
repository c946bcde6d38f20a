//! One reconcile of one Ingress: class filter → finalizer → translate → ensure → report; or,
//! when the Ingress is deleted or no longer ours, delete its load balancer and let it go.

use super::Error;
use super::context::{Context, FINALIZER};
use super::events::{self, Kind};
use super::report::{self, State};
use crate::translate;
use cloud::model::LoadBalancerKey;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource};
use std::sync::Arc;
use tracing::Instrument;

/// The entry point the kube-runtime `Controller` calls.
pub async fn reconcile(ingress: Arc<Ingress>, ctx: Arc<Context>) -> Result<Action, Error> {
    let key = key_of(&ingress);
    let span = tracing::info_span!("reconcile", ingress = %key);
    async move {
        let started = std::time::Instant::now();
        tracing::debug!("reconciling");
        let result = match ctx.prime().await {
            Ok(()) => reconcile_inner(&ingress, &ctx, &key).await,
            Err(e) => Err(e),
        };
        ctx.metrics
            .reconciled(started.elapsed(), result.as_ref().err().map(Error::category));
        match &result {
            Ok(_) => ctx.reset_backoff(&key),
            Err(e) => report_error(&ingress, &ctx, &key, e).await,
        }
        result
    }
    .instrument(span)
    .await
}

/// What to do after a failed reconcile: invalid input waits for the user to change something
/// (every object it depends on is watched); everything else retries with backoff.
pub fn error_policy(ingress: Arc<Ingress>, error: &Error, ctx: Arc<Context>) -> Action {
    match error {
        Error::Translate { .. } => Action::await_change(),
        _ => Action::requeue(ctx.next_backoff(&key_of(&ingress))),
    }
}

async fn reconcile_inner(ingress: &Ingress, ctx: &Context, key: &str) -> Result<Action, Error> {
    let config = ctx.translate_config();
    let deleting = ingress.metadata.deletion_timestamp.is_some();
    if deleting || !translate::is_ours(ingress, &ctx.stores, &config) {
        if has_finalizer(ingress) {
            cleanup(ingress, ctx, key, deleting).await?;
        } else {
            ctx.forget(key);
        }
        return Ok(Action::await_change());
    }

    let translation = match translate::translate(ingress, &ctx.stores, &config) {
        Ok(t) => t,
        Err(problems) => {
            // Its load balancer (left as it was) still uses its node ports.
            if has_finalizer(ingress) {
                ctx.infra.mark_unknown(key);
            }
            return Err(Error::Translate { problems });
        }
    };
    let reference = reference(ingress);
    for warning in &translation.warnings {
        ctx.events
            .publish(
                &reference,
                Kind::Warning,
                events::CONFIG_WARNING,
                "Translate",
                &warning.to_string(),
            )
            .await;
    }
    if !has_finalizer(ingress) {
        add_finalizer(ingress, ctx).await?;
    }
    let lb = translation.load_balancer;
    let ports = lb.node_ports();
    // Until the load balancer has moved to new ports, the old ones stay open too.
    let mut covering = ctx.infra.ports_of(key);
    covering.extend(&ports);
    covering.sort_unstable();
    covering.dedup();
    ctx.infra.set_ports(key, covering);
    match ctx.infra.ensure_covers(&ports).await {
        Ok(infra) => {
            for warning in &infra.warnings {
                ctx.events
                    .publish(&reference, Kind::Warning, events::INFRASTRUCTURE, "Sync", warning)
                    .await;
            }
            if let Some(change) = &infra.firewall_change {
                ctx.events
                    .publish(
                        &reference,
                        Kind::Warning,
                        events::FIREWALL_CHANGE_REQUIRED,
                        "Sync",
                        change,
                    )
                    .await;
            }
        }
        // The load balancer may still be built (the groups that exist are used); retried later.
        Err(e) => {
            let note = format!("the cluster's nodes could not all be made reachable: {e}");
            ctx.events
                .publish(&reference, Kind::Warning, events::INFRASTRUCTURE, "Sync", &note)
                .await;
        }
    }

    let status = match ctx.memo_hit(key, &lb) {
        Some(status) => status,
        None => {
            let generation = ingress.metadata.generation.unwrap_or(0);
            // Only a new generation is news: an Error being retried stays Error until it
            // clears (writing Provisioning would trigger a reconcile at once, past the backoff).
            if State::of(ingress)
                .as_ref()
                .is_none_or(|s| s.observed_generation != generation)
            {
                let creating = report::status_ips(ingress).is_empty();
                let message = if creating {
                    "creating the load balancer"
                } else {
                    "updating the load balancer"
                };
                let state = State::new(
                    "Provisioning",
                    if creating { "Creating" } else { "Updating" },
                    message,
                    ingress,
                );
                ctx.metrics.set_state(key, Some("Provisioning"));
                patch_annotations(
                    ingress,
                    ctx,
                    &[(crate::annotations::STATE, Some(state.to_json()))],
                )
                .await?;
            }
            let status = ctx.provider.ensure(&lb).await?;
            ctx.memo_store(key, lb.clone(), status.clone());
            status
        }
    };
    // The load balancer uses exactly these ports now; ports it left go after the debounce.
    ctx.infra.set_ports(key, ports);

    // Report: the address first (what `kubectl get ing` shows), then the annotations.
    let ips = report::status_ips(ingress);
    let first_time = ips.is_empty();
    if !status.address.is_empty() && ips != [status.address.clone()] {
        let api: Api<Ingress> = Api::namespaced(ctx.client.clone(), namespace_of(ingress));
        api.patch_status(
            name_of(ingress),
            &PatchParams::default(),
            &Patch::Merge(&report::status_patch(Some(&status.address))),
        )
        .await
        .map_err(Error::kube("writing the Ingress status"))?;
        let note = format!("the load balancer's address is {}", status.address);
        ctx.events
            .publish(&reference, Kind::Normal, events::IP_ASSIGNED, "Sync", &note)
            .await;
    }
    if status.changed {
        let (reason, note) = if first_time {
            (
                events::CREATED,
                format!("load balancer created: {}", resources_summary(&status)),
            )
        } else {
            (
                events::SYNC,
                "load balancer updated to match the Ingress".to_owned(),
            )
        };
        ctx.events
            .publish(&reference, Kind::Normal, reason, "Sync", &note)
            .await;
    }
    for warning in &status.warnings {
        ctx.events
            .publish(&reference, Kind::Warning, events::CONFIG_WARNING, "Sync", warning)
            .await;
    }
    let frontends = match (lb.frontends.http, lb.frontends.https.is_some()) {
        (true, true) if lb.frontends.redirect_to_https.is_some() => "HTTPS, with HTTP redirecting to it",
        (true, true) => "HTTP and HTTPS",
        (false, true) => "HTTPS",
        _ => "HTTP",
    };
    let state = State::new(
        "Ready",
        "Synced",
        format!("serving {frontends} at {}", status.address),
        ingress,
    );
    ctx.metrics.set_state(key, Some("Ready"));
    let wanted = report::annotations(&status, &state);
    if let Some(patch) = report::annotation_patch(ingress, &wanted) {
        patch_merge(ingress, ctx, &patch).await?;
    }
    Ok(Action::requeue(ctx.resync))
}

/// Deletes the load balancer, then lets the Ingress go: on deletion by removing the
/// finalizer; on a class change also by removing what we wrote on it.
async fn cleanup(ingress: &Ingress, ctx: &Context, key: &str, deleting: bool) -> Result<(), Error> {
    let lb_key = LoadBalancerKey::new(
        namespace_of(ingress),
        name_of(ingress),
        ingress.metadata.uid.clone().unwrap_or_default(),
    );
    tracing::info!(deleting, "deleting the load balancer");
    ctx.provider.delete(&lb_key).await?;
    ctx.infra.remove(key);
    if !deleting {
        let api: Api<Ingress> = Api::namespaced(ctx.client.clone(), namespace_of(ingress));
        api.patch_status(
            name_of(ingress),
            &PatchParams::default(),
            &Patch::Merge(&report::status_patch(None)),
        )
        .await
        .map_err(Error::kube("clearing the Ingress status"))?;
        let removals: Vec<(&str, Option<String>)> =
            report::written_keys().into_iter().map(|k| (k, None)).collect();
        patch_annotations(ingress, ctx, &removals).await?;
    }
    remove_finalizer(ingress, ctx).await?;
    ctx.forget(key);
    let note = if deleting {
        "load balancer deleted".to_owned()
    } else {
        "load balancer deleted: the Ingress is no longer of a class this controller serves".to_owned()
    };
    ctx.events
        .publish(
            &reference(ingress),
            Kind::Normal,
            events::DELETED,
            "Delete",
            &note,
        )
        .await;
    Ok(())
}

/// Tells the user what went wrong: a Warning Event and the state annotation. An error the
/// Ingress already records (same generation, same message) was told already: the reconcile that
/// our own annotation write triggers finds it again, and must not repeat it.
async fn report_error(ingress: &Ingress, ctx: &Context, key: &str, error: &Error) {
    let deleting = ingress.metadata.deletion_timestamp.is_some();
    let state = State::new("Error", error.category(), error.to_string(), ingress);
    if !deleting && State::of(ingress).as_ref() == Some(&state) {
        return;
    }
    let (reason, note) = match error {
        Error::Translate { problems } => (
            events::TRANSLATE,
            format!(
                "invalid Ingress, the load balancer is left as it was: {}",
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ),
        e => (events::SYNC_FAILED, format!("{}: {e}", e.category())),
    };
    ctx.events
        .publish(&reference(ingress), Kind::Warning, reason, "Sync", &note)
        .await;
    if deleting {
        return;
    }
    ctx.metrics.set_state(key, Some("Error"));
    if let Err(e) = patch_annotations(
        ingress,
        ctx,
        &[(crate::annotations::STATE, Some(state.to_json()))],
    )
    .await
    {
        tracing::warn!(error = %e, "could not record the error on the Ingress");
    }
}

pub fn has_finalizer(ingress: &Ingress) -> bool {
    ingress
        .metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|f| f == FINALIZER))
}

/// Adds our finalizer before the first cloud call, so that deleting the Ingress waits for its
/// load balancer to be deleted. The `test` makes a concurrent change of the list fail (and the
/// reconcile retry) instead of being overwritten.
async fn add_finalizer(ingress: &Ingress, ctx: &Context) -> Result<(), Error> {
    let patch = match ingress.metadata.finalizers.as_ref() {
        Some(current) => serde_json::json!([
            { "op": "test", "path": "/metadata/finalizers", "value": current },
            { "op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER },
        ]),
        None => serde_json::json!([
            { "op": "test", "path": "/metadata/finalizers", "value": null },
            { "op": "add", "path": "/metadata/finalizers", "value": [FINALIZER] },
        ]),
    };
    json_patch(ingress, ctx, patch, "adding the finalizer").await
}

async fn remove_finalizer(ingress: &Ingress, ctx: &Context) -> Result<(), Error> {
    let Some(index) = ingress
        .metadata
        .finalizers
        .iter()
        .flatten()
        .position(|f| f == FINALIZER)
    else {
        return Ok(());
    };
    let path = format!("/metadata/finalizers/{index}");
    let patch = serde_json::json!([
        { "op": "test", "path": path, "value": FINALIZER },
        { "op": "remove", "path": path },
    ]);
    json_patch(ingress, ctx, patch, "removing the finalizer").await
}

async fn json_patch(
    ingress: &Ingress,
    ctx: &Context,
    patch: serde_json::Value,
    action: &str,
) -> Result<(), Error> {
    let patch: json_patch::Patch = serde_json::from_value(patch)
        .map_err(|e| Error::Cloud(cloud::Error::bug(format!("{action}: {e}"))))?;
    let api: Api<Ingress> = Api::namespaced(ctx.client.clone(), namespace_of(ingress));
    api.patch(
        name_of(ingress),
        &PatchParams::default(),
        &Patch::<()>::Json(patch),
    )
    .await
    .map_err(Error::kube(action))?;
    Ok(())
}

/// Sets (or, with `None`, removes) annotations, leaving all others alone.
async fn patch_annotations(
    ingress: &Ingress,
    ctx: &Context,
    values: &[(&str, Option<String>)],
) -> Result<(), Error> {
    let map: serde_json::Map<String, serde_json::Value> = values
        .iter()
        .map(|(k, v)| {
            (
                (*k).to_owned(),
                v.clone()
                    .map_or(serde_json::Value::Null, serde_json::Value::String),
            )
        })
        .collect();
    patch_merge(
        ingress,
        ctx,
        &serde_json::json!({ "metadata": { "annotations": map } }),
    )
    .await
}

async fn patch_merge(ingress: &Ingress, ctx: &Context, patch: &serde_json::Value) -> Result<(), Error> {
    let api: Api<Ingress> = Api::namespaced(ctx.client.clone(), namespace_of(ingress));
    api.patch(name_of(ingress), &PatchParams::default(), &Patch::Merge(patch))
        .await
        .map_err(Error::kube("writing the Ingress annotations"))?;
    Ok(())
}

fn resources_summary(status: &cloud::LoadBalancerStatus) -> String {
    status
        .resources
        .iter()
        .map(|(kind, names)| format!("{kind} {}", names.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

pub fn key_of(ingress: &Ingress) -> String {
    format!("{}/{}", namespace_of(ingress), name_of(ingress))
}

fn namespace_of(ingress: &Ingress) -> &str {
    ingress.metadata.namespace.as_deref().unwrap_or("default")
}

fn name_of(ingress: &Ingress) -> &str {
    ingress.metadata.name.as_deref().unwrap_or_default()
}

fn reference(ingress: &Ingress) -> ObjectReference {
    ingress.object_ref(&())
}
