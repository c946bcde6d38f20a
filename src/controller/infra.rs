//! Keeps the cluster-wide cloud infrastructure (node groups, named ports, firewall) in line
//! with the nodes and with the node ports the load balancers use.
//!
//! A reconcile that needs a node port the infrastructure lacks ensures it at once (so the time
//! to an IP does not wait); node changes and ports no longer used are applied after a short
//! debounce, so a rolling node upgrade makes a few cloud calls rather than one per node event.
//! What may be removed is decided by the provider from what the cloud holds (a port goes when no
//! backend service uses it, the groups and the firewall rule when no load balancer is left), so
//! the bookkeeping here only has to know the ports load balancers are about to use.
//!
//! A pass that fails (a foreign resource under our name, a permission missing, a group still in
//! use) is a cluster-wide problem: it is logged once when it appears or changes, counted, shown
//! on every Ingress as `Degraded`, and retried with exponential backoff until it clears.

use super::events;
use crate::telemetry::metrics::Metrics;
use crate::translate;
use cloud::model::ClusterInfra;
use cloud::{InfraStatus, Provider};
use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::core::v1::Node;
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Retries of a failed pass back off up to this long.
const MAX_RETRY: Duration = Duration::from_secs(300);

/// The outcome of the last pass, as reconciles see it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InfraOutcome {
    /// Things the user should know that do not stop anything (a node without a VM).
    pub warnings: Vec<String>,
    /// What keeps the cluster-wide resources from being complete, when something does: the
    /// load balancers may be built, but health checks or some zones may not reach the nodes.
    pub problem: Option<InfraProblem>,
    /// Something unneeded was kept for now: pass again after this long.
    pub recheck_after: Option<Duration>,
}

/// A cluster-wide problem, as every Ingress shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InfraProblem {
    /// The Event reason (and the `Degraded` state's reason).
    pub reason: &'static str,
    pub message: String,
}

/// The last infrastructure ensured, and what came of it.
#[derive(Clone, Debug)]
struct Ensured {
    infra: ClusterInfra,
    outcome: InfraOutcome,
}

pub struct InfraSync {
    provider: Arc<dyn Provider>,
    metrics: Arc<Metrics>,
    nodes: Store<Node>,
    /// Only nodes in these zones, when not empty.
    zones: Vec<String>,
    debounce: Duration,
    /// Node ports each Ingress's load balancer uses, by `namespace/name`.
    ports: Mutex<HashMap<String, Vec<u16>>>,
    /// Pod ports the endpoint backends in use send traffic to.
    endpoint_ports: Mutex<BTreeSet<u16>>,
    /// Held while ensuring, so ensures never overlap.
    last: tokio::sync::Mutex<Option<Ensured>>,
    dirty: Notify,
    /// Bumped whenever the set of zones changes: every load balancer must be ensured again so
    /// that its backends use the new groups.
    generation: AtomicU64,
    /// Asks the controller to reconcile every Ingress (new zones, a problem that appeared or
    /// cleared).
    reconcile_all: tokio::sync::mpsc::UnboundedSender<()>,
    /// Whether every Ingress's ports have been collected once (see `Context::prime`).
    primed: std::sync::atomic::AtomicBool,
    /// A load balancer went: the next pass asks the provider even if the desired
    /// infrastructure looks the same (what may be removed depends on what the cloud holds).
    stale: std::sync::atomic::AtomicBool,
}

impl InfraSync {
    pub fn new(
        provider: Arc<dyn Provider>,
        metrics: Arc<Metrics>,
        nodes: Store<Node>,
        zones: Vec<String>,
        debounce: Duration,
        reconcile_all: tokio::sync::mpsc::UnboundedSender<()>,
    ) -> Self {
        Self {
            provider,
            metrics,
            nodes,
            zones,
            debounce,
            ports: Mutex::new(HashMap::new()),
            endpoint_ports: Mutex::new(BTreeSet::new()),
            last: tokio::sync::Mutex::new(None),
            dirty: Notify::new(),
            generation: AtomicU64::new(0),
            reconcile_all,
            primed: std::sync::atomic::AtomicBool::new(false),
            stale: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Every Ingress's ports are known: the infrastructure may follow them.
    pub fn set_primed(&self) {
        self.primed.store(true, Ordering::Relaxed);
    }

    /// Changes whenever the load balancers must be ensured again for the infrastructure's sake.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Records the node ports of one Ingress's load balancer.
    pub fn set_ports(&self, ingress: &str, ports: Vec<u16>) {
        let mut map = self.ports.lock().unwrap_or_else(|p| p.into_inner());
        let old = map.insert(ingress.to_owned(), ports.clone());
        // A port dropped may be used by no one now: shrink the infrastructure, unhurried.
        if old.is_some_and(|old| old.iter().any(|p| !ports.contains(p))) {
            self.dirty.notify_one();
        }
    }

    /// The node ports last recorded for an Ingress.
    pub fn ports_of(&self, ingress: &str) -> Vec<u16> {
        self.ports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(ingress)
            .cloned()
            .unwrap_or_default()
    }

    /// Forgets an Ingress whose load balancer is gone.
    pub fn remove(&self, ingress: &str) {
        self.ports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(ingress);
        // Its load balancer is gone: what it used may go too (the provider reads what is left).
        self.stale.store(true, Ordering::Relaxed);
        self.dirty.notify_one();
    }

    /// Records the pod ports of every endpoint backend in use; a port dropped goes after the
    /// debounce (one added is ensured by [`InfraSync::ensure_covers_endpoint_ports`] first).
    pub fn set_endpoint_ports(&self, ports: BTreeSet<u16>) {
        let mut current = self.endpoint_ports.lock().unwrap_or_else(|p| p.into_inner());
        if *current != ports {
            *current = ports;
            self.dirty.notify_one();
        }
    }

    /// The cluster's nodes as the cloud knows them (zone, instance), in the zones served.
    pub fn cloud_nodes(&self) -> Vec<cloud::model::Node> {
        self.nodes_and_warnings().0
    }

    fn nodes_and_warnings(&self) -> (Vec<cloud::model::Node>, Vec<String>) {
        let nodes: Vec<Node> = self.nodes.state().iter().map(|n| n.as_ref().clone()).collect();
        let (mut nodes, warnings) = translate::cluster_nodes(&nodes);
        if !self.zones.is_empty() {
            nodes.retain(|n| self.zones.contains(&n.zone));
        }
        (nodes, warnings)
    }

    /// What the infrastructure should be now, and warnings about nodes.
    pub fn desired(&self) -> (ClusterInfra, Vec<String>) {
        let (nodes, warnings) = self.nodes_and_warnings();
        let node_ports: BTreeSet<u16> = self
            .ports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .flatten()
            .copied()
            .collect();
        (
            ClusterInfra {
                nodes,
                node_ports,
                endpoint_ports: self
                    .endpoint_ports
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone(),
            },
            warnings,
        )
    }

    /// The outcome of the last pass, if it covered every port in `ports`; otherwise of a new one.
    /// A pass that failed is not repeated here (the background loop retries it): a reconcile
    /// goes on with the groups that exist.
    pub async fn ensure_covers(&self, ports: &[u16]) -> InfraOutcome {
        let mut last = self.last.lock().await;
        if let Some(e) = last.as_ref()
            && ports.iter().all(|p| e.infra.node_ports.contains(p))
        {
            return e.outcome.clone();
        }
        self.ensure_locked(&mut last).await
    }

    /// Like [`InfraSync::ensure_covers`], for the pod ports of endpoint backends.
    pub async fn ensure_covers_endpoint_ports(&self, ports: &BTreeSet<u16>) -> InfraOutcome {
        let mut last = self.last.lock().await;
        if let Some(e) = last.as_ref()
            && ports.is_subset(&e.infra.endpoint_ports)
        {
            return e.outcome.clone();
        }
        if !self.primed.load(Ordering::Relaxed) {
            return InfraOutcome::default();
        }
        self.ensure_locked(&mut last).await
    }

    /// Ensures the desired infrastructure unless the last pass succeeded with the same.
    pub async fn ensure(&self) -> InfraOutcome {
        let mut last = self.last.lock().await;
        self.ensure_locked(&mut last).await
    }

    async fn ensure_locked(&self, last: &mut Option<Ensured>) -> InfraOutcome {
        let (desired, node_warnings) = self.desired();
        let stale = self.stale.swap(false, Ordering::Relaxed);
        if let Some(e) = last.as_ref()
            && e.infra == desired
            && e.outcome.problem.is_none()
            && !stale
        {
            return e.outcome.clone();
        }
        let zones = |i: &ClusterInfra| i.zones().into_iter().map(str::to_owned).collect::<Vec<_>>();
        let zones_changed = last.as_ref().is_none_or(|e| zones(&e.infra) != zones(&desired));
        tracing::debug!(
            nodes = desired.nodes.len(),
            ports = desired.node_ports.len(),
            "ensuring the cluster infrastructure"
        );
        let result = self.provider.ensure_infrastructure(&desired).await;
        self.metrics
            .infrastructure_synced(result.as_ref().err().map(|e| e.category.as_str()));
        let previous = last.as_ref().map(|e| e.outcome.clone());
        let outcome = match result {
            Ok(InfraStatus {
                warnings,
                firewall_change,
                recheck_after,
                ..
            }) => InfraOutcome {
                warnings: node_warnings.into_iter().chain(warnings).collect(),
                problem: firewall_change.map(|message| InfraProblem {
                    reason: events::FIREWALL_CHANGE_REQUIRED,
                    message,
                }),
                recheck_after,
            },
            // Not allowed to write right now (the lease is being renewed, or this replica is
            // stopping): nothing to report, and the pass is owed.
            Err(e) if e.category == cloud::ErrorCategory::Fenced => {
                self.stale.store(true, Ordering::Relaxed);
                self.dirty.notify_one();
                return previous.unwrap_or_default();
            }
            Err(e) => InfraOutcome {
                warnings: previous.map(|o| o.warnings).unwrap_or_default(),
                problem: Some(InfraProblem {
                    reason: events::INFRASTRUCTURE,
                    message: e.message,
                }),
                recheck_after: None,
            },
        };
        let first = last.is_none();
        let problem_changed = last.as_ref().map_or(outcome.problem.is_some(), |e| {
            e.outcome.problem != outcome.problem
        });
        if problem_changed {
            match &outcome.problem {
                Some(p) => {
                    tracing::warn!(problem = %p.message, "the cluster-wide resources are not all in place")
                }
                None => tracing::info!("the cluster-wide resources are in place again"),
            }
        }
        for w in &outcome.warnings {
            if last.as_ref().is_none_or(|e| !e.outcome.warnings.contains(w)) {
                tracing::warn!(warning = %w, "cluster infrastructure");
            }
        }
        *last = Some(Ensured {
            infra: desired,
            outcome: outcome.clone(),
        });
        if zones_changed && !first {
            self.generation.fetch_add(1, Ordering::Relaxed);
        }
        // Every Ingress reports the problem (or its end) in its state.
        if (zones_changed && !first) || problem_changed {
            let _ = self.reconcile_all.send(());
        }
        outcome
    }

    /// Drives the node watch and applies changes after the debounce, retrying a failed pass with
    /// backoff (sooner when something changes), and passing over everything once per `resync`
    /// even when nothing changed (someone may have changed the cloud), until `cancel`. A pass
    /// under way when `cancel` fires is finished first.
    pub async fn run(
        self: Arc<Self>,
        mut nodes: BoxStream<'static, Result<Node, watcher::Error>>,
        resync: Duration,
        cancel: CancellationToken,
    ) {
        let watch = async {
            while let Some(event) = nodes.next().await {
                match event {
                    Ok(_) => self.dirty.notify_one(),
                    Err(e) => tracing::warn!(error = %e, "watching nodes"),
                }
            }
        };
        let apply = async {
            let mut failures: u32 = 0;
            let mut recheck: Option<Duration> = None;
            loop {
                let wait = async {
                    let until = match failures {
                        0 => recheck.unwrap_or(resync).min(resync).max(self.debounce),
                        // A failed pass is retried even when nothing changes.
                        n => retry_delay(n).max(self.debounce),
                    };
                    tokio::select! {
                        _ = self.dirty.notified() => {
                            // Let a burst of changes settle into one ensure.
                            tokio::time::sleep(self.debounce).await;
                        }
                        _ = tokio::time::sleep(until) => {
                            self.stale.store(true, Ordering::Relaxed);
                        }
                    }
                };
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = wait => {}
                }
                if !self.primed.load(Ordering::Relaxed) {
                    // The first reconcile ensures, with every port known by then.
                    continue;
                }
                let outcome = self.ensure().await;
                recheck = outcome.recheck_after;
                failures = match outcome.problem {
                    Some(_) => failures.saturating_add(1),
                    None => 0,
                };
            }
        };
        tokio::select! {
            _ = watch => {}
            _ = apply => {}
        }
    }
}

/// 5 s, 10 s, 20 s… up to [`MAX_RETRY`].
fn retry_delay(failures: u32) -> Duration {
    Duration::from_secs(5)
        .saturating_mul(1 << failures.saturating_sub(1).min(8))
        .min(MAX_RETRY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_a_cap() {
        assert_eq!(retry_delay(1), Duration::from_secs(5));
        assert_eq!(retry_delay(2), Duration::from_secs(10));
        assert_eq!(retry_delay(6), Duration::from_secs(160));
        assert_eq!(retry_delay(7), MAX_RETRY);
        assert_eq!(retry_delay(u32::MAX), MAX_RETRY);
    }
}
