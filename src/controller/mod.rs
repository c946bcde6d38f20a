//! The controller: watches Ingresses (and the Services, Secrets, IngressClasses and Nodes they
//! depend on), reconciles each through the provider, and reports back on the Ingress.
//!
//! - [`stores`]: one watch per kind, feeding both the caches and the reconcile triggers.
//! - [`reconcile`]: class filter → finalizer → translate → ensure → status, annotations, Events.
//! - [`infra`]: nodes and node ports → the cluster-wide cloud resources, debounced.
//! - [`health`]: backend health, polled in bulk, shown on the Ingresses using each backend.
//! - [`endpoints`]: endpoint backends' endpoints in the cloud; [`gates`]: the pods' load-balancer
//!   readiness gate.
//! - [`gc`]: load balancers whose Ingress is gone.
//! - [`report`], [`events`]: what the user sees on the Ingress ([`report::health`]: what of
//!   the backends' health is shown and told).

pub mod context;
pub mod endpoints;
pub mod error;
pub mod events;
pub mod gates;
pub mod gc;
pub mod health;
pub mod infra;
pub mod reconcile;
pub mod report;
pub mod stores;

pub use context::{Context, FINALIZER, finalizer_for};
pub use error::Error;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::controller::{Config, Controller};
use std::sync::Arc;
use std::time::Duration;
use stores::Streams;
use tokio_util::sync::CancellationToken;

/// Runs the controller until `cancel` fires: every writer (the reconciler, the infrastructure
/// loop, the garbage collector, the endpoint loop) then finishes what it is doing and stops, and the health poller
/// (which only reads) stops at once; only then does this return. None of them runs detached, so
/// aborting this future stops them all. The caller runs it only while this replica leads.
pub async fn run(
    ctx: Arc<Context>,
    streams: Streams,
    requeues: context::Requeues,
    reconcile_all: tokio::sync::mpsc::UnboundedReceiver<()>,
    concurrency: u16,
    cancel: CancellationToken,
) {
    let Streams {
        ingresses,
        services,
        secrets,
        classes,
        nodes,
        endpoint_slices,
        pods,
    } = streams;
    // A node's zone and instance are part of each endpoint.
    let for_endpoints = ctx.clone();
    let nodes = nodes
        .inspect(move |event| {
            if event.is_ok() {
                for key in for_endpoints.endpoint_backends_in_use() {
                    for_endpoints.endpoints.enqueue(&key, false);
                }
            }
        })
        .boxed();
    let infra = ctx.infra.clone().run(nodes, ctx.resync, cancel.clone());
    let endpoints = endpoints::run(ctx.clone(), cancel.clone());
    let slices = endpoint_slices.inspect({
        let ctx = ctx.clone();
        move |event| {
            if let Ok(slice) = event
                && let Some((namespace, service)) = stores::service_of(slice)
            {
                ctx.endpoints
                    .enqueue_service(&ctx.endpoint_backends_in_use(), namespace, service);
            }
        }
    });
    let pods = pods.inspect({
        let ctx = ctx.clone();
        move |event| {
            if let Ok(pod) = event {
                let in_use = ctx.endpoint_backends_in_use();
                if in_use.is_empty() {
                    return;
                }
                let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
                let name = pod.metadata.name.as_deref().unwrap_or_default();
                for (namespace, service) in ctx.stores.services_of_pod(namespace, name) {
                    ctx.endpoints.enqueue_service(&in_use, &namespace, &service);
                }
            }
        }
    });
    // Of a pod, only what the health check is derived from matters to the load balancer (its
    // readiness is in the EndpointSlices).
    let pods = stores::changed_for_health_checks(pods, ctx.stores.pods.clone());
    let collector = collect_garbage(ctx.clone(), cancel.clone());
    let health = health::poll(ctx.clone(), cancel.clone());

    let by_service = ctx.stores.clone();
    let by_secret = ctx.stores.clone();
    let by_class = ctx.stores.clone();
    let by_slice = ctx.stores.clone();
    let by_pod = ctx.stores.clone();
    let all = stream_of(reconcile_all);
    let requeued = stream_of(requeues);
    let shutdown = cancel.clone();
    let controller = Controller::for_stream(ingresses, ctx.stores.ingresses.clone())
        .with_config(Config::default().concurrency(concurrency))
        .watches_stream(services, move |s: Service| {
            by_service.ingresses_using_service(
                s.metadata.namespace.as_deref().unwrap_or_default(),
                s.metadata.name.as_deref().unwrap_or_default(),
            )
        })
        .watches_stream(secrets, move |s: Secret| {
            by_secret.ingresses_using_secret(
                s.metadata.namespace.as_deref().unwrap_or_default(),
                s.metadata.name.as_deref().unwrap_or_default(),
            )
        })
        .watches_stream(classes, move |_| by_class.all_ingresses())
        .watches_stream(slices, move |s: EndpointSlice| by_slice.ingresses_using_slice(&s))
        .watches_stream(pods, move |p: Pod| by_pod.ingresses_using_pod(&p))
        .reconcile_all_on(all)
        .reconcile_on(requeued)
        .graceful_shutdown_on(async move { shutdown.cancelled().await })
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "reconcile");
            }
        });
    tokio::join!(controller, infra, collector, health, endpoints);
}

fn stream_of<T: Send>(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<T>,
) -> impl futures::Stream<Item = T> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Collects orphaned load balancers once the caches are ready, then every resync period. A round
/// under way when `cancel` fires is finished first.
async fn collect_garbage(ctx: Arc<Context>, cancel: CancellationToken) {
    loop {
        let primed = tokio::select! {
            _ = cancel.cancelled() => return,
            primed = ctx.prime() => primed,
        };
        if primed.is_ok() {
            match gc::collect(&ctx).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "collected orphaned load balancers"),
                // Not allowed to write right now: the next round tries again.
                Err(e) if e.category == cloud::ErrorCategory::Fenced => {}
                Err(e) => tracing::warn!(error = %e, "garbage collection"),
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(ctx.resync.max(Duration::from_secs(1))) => {}
        }
    }
}
