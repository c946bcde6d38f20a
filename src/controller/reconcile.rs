//! One reconcile of one Ingress: class filter → finalizer → translate → ensure → report; or,
//! when the Ingress is deleted or no longer ours, delete its load balancer and let it go.
//!
//! What the Ingress shows comes in one order, so that whoever treats one signal as "done" finds
//! the others: the annotations naming the resources, then the address in the status, then the
//! state (`Ready` or `Degraded`), then the Events.

use super::Error;
use super::context::{Context, Told};
use super::events::{self, Kind};
use super::infra::InfraProblem;
use super::report::{self, Observed, State};
use crate::annotations as keys;
use crate::translate;
use cloud::LoadBalancerStatus;
use cloud::model::{BackendKey, LoadBalancer, LoadBalancerKey};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// How soon a load balancer whose backends are switching target is ensured again.
const SWITCH_RECHECK: Duration = Duration::from_secs(2);

/// The entry point the kube-runtime `Controller` calls.
pub async fn reconcile(ingress: Arc<Ingress>, ctx: Arc<Context>) -> Result<Action, Error> {
    let key = key_of(&ingress);
    let span = tracing::info_span!("reconcile", ingress = %key);
    async move {
        let _in_flight = ctx.liveness.reconciling(&key);
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
            // Not this replica's to write now; and another writer changed the Ingress first: the
            // reconcile runs again, nothing to tell.
            Err(e) if e.is_fenced() || e.is_kube_conflict() => {}
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
        // Not allowed to write right now: the lease is being renewed (a stopping replica is
        // torn down before this fires).
        e if e.is_fenced() => Action::requeue(Duration::from_secs(1)),
        _ => Action::requeue(ctx.next_backoff(&key_of(&ingress))),
    }
}

async fn reconcile_inner(ingress: &Ingress, ctx: &Context, key: &str) -> Result<Action, Error> {
    let config = ctx.translate_config();
    let deleting = ingress.metadata.deletion_timestamp.is_some();
    let held = has_finalizer(ingress, &ctx.finalizer);
    if deleting || !translate::is_ours(ingress, &ctx.stores, &config) {
        if held {
            cleanup(ingress, ctx, key, deleting).await?;
        } else {
            ctx.forget(key);
        }
        return Ok(Action::await_change());
    }

    let observed = Observed::of(ingress, &ctx.stores, &config.controller_name);
    let translation = translate::translate(ingress, &ctx.stores, &config)
        .map_err(|problems| Error::Translate { problems })?;
    // The cloud's own limits on one load balancer are input errors too, found before any call
    // (a model ensured before passed them: no need to measure it again).
    if !ctx.memo_holds(key, &translation.load_balancer) {
        ctx.provider
            .check(&translation.load_balancer)
            .map_err(|violations| Error::Translate {
                problems: translate::limit_problems(ingress, &violations),
            })?;
    }
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
    if !held {
        add_finalizer(ingress, ctx).await?;
    }
    let lb = translation.load_balancer;
    let health_checks = translation.health_checks;
    let ports = lb.node_ports();
    // Until the load balancer has moved to new ports, the old ones stay open too.
    let mut covering = ctx.infra.ports_of(key);
    covering.extend(&ports);
    covering.sort_unstable();
    covering.dedup();
    ctx.infra.set_ports(key, covering);
    let infra = ctx.infra.ensure_covers(&ports).await;
    for warning in &infra.warnings {
        ctx.events
            .publish(&reference, Kind::Warning, events::INFRASTRUCTURE, "Sync", warning)
            .await;
    }
    if let Some(problem) = &infra.problem {
        ctx.events
            .publish(
                &reference,
                Kind::Warning,
                problem.reason,
                "Sync",
                &problem.message,
            )
            .await;
    }

    let status = match ctx.memo_hit(key, &lb) {
        Some(status) => status,
        None => {
            // Only new inputs are news: an Error being retried stays Error until it clears
            // (writing Provisioning would trigger a reconcile at once, past the backoff).
            // (A state from before states recorded their inputs is not news either.)
            if State::of(ingress).as_ref().is_none_or(|s| {
                (s.observed_inputs != observed.inputs && !s.observed_inputs.is_empty())
                    || !s.written_by(&observed.controller)
            }) {
                let creating = report::status_ips(ingress).is_empty();
                let (reason, message) = if creating {
                    ("Creating", "creating the load balancer")
                } else {
                    ("Updating", "updating the load balancer")
                };
                let state = State::new("Provisioning", reason, message, &observed).carrying(ingress);
                ctx.metrics.set_state(key, Some("Provisioning"));
                patch_annotations(ingress, ctx, &[(keys::STATE, Some(state.to_json()))]).await?;
            }
            let status = ctx.provider.ensure(&lb).await?;
            ctx.memo_store(key, lb.clone(), status.clone());
            // The ensure may have created (or re-created) the groups of endpoint backends:
            // their endpoints follow at once. An ensure that changed nothing found them in
            // place: only a set that differs from the last sync reaches the cloud (the endpoint
            // loop's own resync checks for drift).
            for backend in lb.endpoint_backends() {
                ctx.endpoints.ensured(backend, status.changed);
            }
            status
        }
    };
    // The load balancer uses exactly these ports now; ports it left go after the debounce.
    ctx.infra.set_ports(key, ports);
    // Endpoint backends with nothing to send traffic to: a 502 for every request routed there.
    let nodes = ctx.infra.cloud_nodes();
    let empty: BTreeSet<BackendKey> = lb
        .endpoint_backends()
        .filter(|k| {
            translate::endpoint_plan(k, &ctx.stores, &nodes)
                .set
                .endpoints
                .is_empty()
        })
        .cloned()
        .collect();
    let outcome = Outcome {
        status: &status,
        problem: infra.problem.as_ref(),
        empty: &empty,
        health_checks: &health_checks,
    };
    report(ingress, ctx, key, &lb, &outcome, &observed).await?;
    if !status.switching.is_empty() {
        // A backend moves between node ports and endpoints: the provider finishes the move on
        // an ensure once the new target serves.
        tracing::debug!(backends = status.switching.len(), "backends switching target");
        return Ok(Action::requeue(SWITCH_RECHECK));
    }
    Ok(Action::requeue(ctx.resync))
}

/// What a reconcile found, for [`report`].
struct Outcome<'a> {
    status: &'a LoadBalancerStatus,
    /// A cluster-wide problem.
    problem: Option<&'a InfraProblem>,
    /// Endpoint backends with no endpoint that may take traffic.
    empty: &'a BTreeSet<BackendKey>,
    /// Where each backend's health check comes from.
    health_checks: &'a [(BackendKey, translate::HealthCheckOrigin)],
}

/// Writes what the load balancer is on the Ingress, in the order the module documents.
async fn report(
    ingress: &Ingress,
    ctx: &Context,
    key: &str,
    lb: &LoadBalancer,
    outcome: &Outcome<'_>,
    observed: &Observed,
) -> Result<(), Error> {
    let Outcome {
        status,
        problem,
        empty,
        health_checks,
    } = *outcome;
    // What was told of endpoints and health checks: by this process, or, after a restart or a
    // change of leader, as the Ingress shows it.
    let told = ctx.endpoints_told(key).unwrap_or_else(|| Told {
        empty: report::endpoints::empty_shown(ingress),
        health_checks: State::of(ingress).map(|s| s.health_checks).unwrap_or_default(),
    });
    let (origins, origin_events) =
        report::endpoints::health_check_events(&told.health_checks, health_checks, &lb.backends);
    let frontends = match (lb.frontends.http, lb.frontends.https.is_some()) {
        (true, true) if lb.frontends.redirect_to_https.is_some() => "HTTPS, with HTTP redirecting to it",
        (true, true) => "HTTP and HTTPS",
        (false, true) => "HTTPS",
        _ => "HTTP",
    };
    let serving = format!("serving {frontends} at {}", status.address);
    // Health as the poller last read it; the state follows it (see report::serving_state).
    let backends = report::backend_reports(
        status,
        ingress,
        |name| ctx.health.get(name).map(|r| r.health),
        ctx.health.enabled(),
    );
    let state = report::serving_state(&serving, problem, &backends, empty, observed)
        .at(&status.address)
        .told(origins.clone());
    let wanted = report::annotations(status, &backends, &state);
    let ips = report::status_ips(ingress);
    let first_time = ips.is_empty();
    let moved = !status.address.is_empty() && ips != [status.address.clone()];
    if moved {
        let mut names = wanted.clone();
        names.remove(keys::STATE);
        if let Some(patch) = report::annotation_patch(ingress, &names) {
            patch_merge(ingress, ctx, &patch).await?;
        }
        let patch = Patch::Merge(report::status_patch(Some(&status.address)));
        write(ingress, ctx, patch, true, "writing the Ingress status").await?;
        patch_annotations(ingress, ctx, &[(keys::STATE, Some(state.to_json()))]).await?;
    } else if let Some(patch) = report::annotation_patch(ingress, &wanted) {
        patch_merge(ingress, ctx, &patch).await?;
    }
    let degraded = state.state == "Degraded";
    ctx.metrics
        .set_state(key, Some(if degraded { "Degraded" } else { "Ready" }));

    let reference = reference(ingress);
    if moved {
        let note = format!("the load balancer's address is {}", status.address);
        ctx.events
            .publish(&reference, Kind::Normal, events::IP_ASSIGNED, "Sync", &note)
            .await;
    }
    if status.changed {
        let (reason, note) = if first_time {
            (
                events::CREATED,
                format!("load balancer created: {}", resources_summary(status)),
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
    // A change of backend health is told once: against what this process told last, or, after a
    // restart or a change of leader, what the Ingress showed before this reconcile wrote.
    let before = ctx
        .unhealthy_told(key)
        .unwrap_or_else(|| report::unhealthy_shown(ingress));
    if let Some((kind, reason, note)) = report::health_transition(&before, &backends) {
        ctx.events
            .publish(&reference, kind, reason, "Health", &note)
            .await;
    }
    ctx.set_unhealthy_told(key, report::told_unhealthy(&before, &backends));
    if let Some((kind, reason, note)) = report::endpoints::empty_transition(&told.empty, empty) {
        ctx.events
            .publish(&reference, kind, reason, "Endpoints", &note)
            .await;
    }
    for (kind, reason, note) in origin_events {
        ctx.events
            .publish(&reference, kind, reason, "HealthCheck", &note)
            .await;
    }
    ctx.set_endpoints_told(
        key,
        Told {
            empty: empty.clone(),
            health_checks: origins,
        },
    );
    Ok(())
}

/// Deletes the load balancer, then lets the Ingress go: on deletion by removing the
/// finalizer; on a class change also by taking back what this controller wrote on it.
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
        release(ingress, ctx, key).await?;
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

/// Takes back what this controller wrote on an Ingress it no longer serves, and nothing another
/// controller wrote since: the address only while it is the one this controller served at, the
/// annotations only while its own state is there. Each removal is a JSON patch with a `test`, so
/// a write by the other controller in between makes it a no-op rather than a loss.
async fn release(ingress: &Ingress, ctx: &Context, key: &str) -> Result<(), Error> {
    let controller = &ctx.translate.controller_name;
    let raw_state = ingress
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(keys::STATE));
    let state = State::of(ingress).filter(|s| s.written_by(controller));
    let our_address = state
        .as_ref()
        .and_then(|s| s.address.clone())
        .or_else(|| ctx.memo_address(key));
    let current = ingress
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref());
    if let (Some(ip), Some(current)) = (our_address, current)
        && report::status_ips(ingress) == [ip]
    {
        let patch = serde_json::json!([
            { "op": "test", "path": "/status/loadBalancer/ingress", "value": current },
            { "op": "remove", "path": "/status/loadBalancer/ingress" },
        ]);
        skip_if_changed(json_patch(ingress, ctx, patch, "clearing the Ingress status", true).await)?;
    }
    if let (Some(raw), Some(_)) = (raw_state, state) {
        let present = ingress
            .metadata
            .annotations
            .iter()
            .flatten()
            .map(|(k, _)| k.as_str());
        let written = report::written_keys();
        let mut ops = vec![serde_json::json!({
            "op": "test", "path": annotation_path(keys::STATE), "value": raw,
        })];
        ops.extend(
            present
                .filter(|k| written.contains(k))
                .map(|k| serde_json::json!({ "op": "remove", "path": annotation_path(k) })),
        );
        let patch = serde_json::Value::Array(ops);
        skip_if_changed(json_patch(ingress, ctx, patch, "removing the annotations", false).await)?;
    }
    Ok(())
}

/// A `test` that failed means another writer got there first: what was to be removed is no
/// longer ours.
fn skip_if_changed(result: Result<(), Error>) -> Result<(), Error> {
    match result {
        Err(e) if e.is_kube_conflict() => {
            tracing::info!(error = %e, "left as another writer made it");
            Ok(())
        }
        other => other,
    }
}

/// The JSON pointer of an annotation.
fn annotation_path(key: &str) -> String {
    format!(
        "/metadata/annotations/{}",
        key.replace('~', "~0").replace('/', "~1")
    )
}

/// Tells the user what went wrong: a Warning Event and the state annotation. An error the
/// Ingress already records (same inputs, same message) was told already: the reconcile that
/// our own annotation write triggers finds it again, and must not repeat it.
async fn report_error(ingress: &Ingress, ctx: &Context, key: &str, error: &Error) {
    let deleting = ingress.metadata.deletion_timestamp.is_some();
    let observed = Observed::of(ingress, &ctx.stores, &ctx.translate.controller_name);
    let state = State::new("Error", error.category(), error.to_string(), &observed).carrying(ingress);
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
    match patch_annotations(ingress, ctx, &[(keys::STATE, Some(state.to_json()))]).await {
        Ok(()) => {}
        // A state saying Ready must never stand beside an error: when even the bounded state
        // does not fit (the Ingress's annotations are at their size limit), remove it.
        Err(e) if e.is_kube_too_large() => {
            tracing::warn!(error = %e, "the error does not fit on the Ingress: removing its state");
            if let Err(e) = patch_annotations(ingress, ctx, &[(keys::STATE, None)]).await {
                tracing::warn!(error = %e, "could not remove the state either");
            }
        }
        // Retried with the reconcile.
        Err(e) => tracing::warn!(error = %e, "could not record the error on the Ingress"),
    }
}

/// Whether the Ingress carries `finalizer`.
pub fn has_finalizer(ingress: &Ingress, finalizer: &str) -> bool {
    ingress
        .metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|f| f == finalizer))
}

/// Adds our finalizer before the first cloud call, so that deleting the Ingress waits for its
/// load balancer to be deleted. The `test` makes a concurrent change of the list fail (and the
/// reconcile retry) instead of being overwritten.
async fn add_finalizer(ingress: &Ingress, ctx: &Context) -> Result<(), Error> {
    let finalizer = &ctx.finalizer;
    let patch = match ingress.metadata.finalizers.as_ref() {
        Some(current) => serde_json::json!([
            { "op": "test", "path": "/metadata/finalizers", "value": current },
            { "op": "add", "path": "/metadata/finalizers/-", "value": finalizer },
        ]),
        None => serde_json::json!([
            { "op": "test", "path": "/metadata/finalizers", "value": null },
            { "op": "add", "path": "/metadata/finalizers", "value": [finalizer] },
        ]),
    };
    json_patch(ingress, ctx, patch, "adding the finalizer", false).await
}

async fn remove_finalizer(ingress: &Ingress, ctx: &Context) -> Result<(), Error> {
    let Some(index) = ingress
        .metadata
        .finalizers
        .iter()
        .flatten()
        .position(|f| *f == ctx.finalizer)
    else {
        return Ok(());
    };
    let path = format!("/metadata/finalizers/{index}");
    let patch = serde_json::json!([
        { "op": "test", "path": path, "value": ctx.finalizer },
        { "op": "remove", "path": path },
    ]);
    json_patch(ingress, ctx, patch, "removing the finalizer", false).await
}

/// Applies a JSON patch to the Ingress (or, with `status`, to its status subresource).
async fn json_patch(
    ingress: &Ingress,
    ctx: &Context,
    patch: serde_json::Value,
    action: &str,
    status: bool,
) -> Result<(), Error> {
    let patch: json_patch::Patch =
        serde_json::from_value(patch).map_err(|e| Error::Bug(format!("{action}: {e}")))?;
    // Each of our JSON patches starts with a `test`: a 422 is that test failing.
    match write(ingress, ctx, Patch::Json(patch), status, action).await {
        Err(Error::Kube {
            action,
            source: kube::Error::Api(e),
        }) if e.code == 422 || e.code == 409 => Err(Error::Changed {
            action,
            source: kube::Error::Api(e),
        }),
        other => other,
    }
}

/// Every write to the Ingress goes through here, and only while this replica may write: one
/// that lost the lease leaves the Ingress to the new leader.
async fn write(
    ingress: &Ingress,
    ctx: &Context,
    patch: Patch<serde_json::Value>,
    status: bool,
    action: &str,
) -> Result<(), Error> {
    ctx.fence.check(action)?;
    let api: Api<Ingress> = Api::namespaced(ctx.client.clone(), namespace_of(ingress));
    let params = PatchParams::default();
    let result = if status {
        api.patch_status(name_of(ingress), &params, &patch).await
    } else {
        api.patch(name_of(ingress), &params, &patch).await
    };
    result.map(|_| ()).map_err(Error::kube(action))
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
    let patch = Patch::Merge(patch.clone());
    write(ingress, ctx, patch, false, "writing the Ingress annotations").await
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
