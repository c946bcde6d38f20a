//! Keeps the cluster-wide cloud infrastructure (node groups, named ports, firewall) in line
//! with the nodes and with the node ports the load balancers use.
//!
//! A reconcile that needs a node port the infrastructure lacks ensures it at once (so the time
//! to an IP does not wait); node changes and ports no longer used are applied after a short
//! debounce, so a rolling node upgrade makes a few cloud calls rather than one per node event.

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

/// The last infrastructure ensured, and what the provider said of it.
#[derive(Clone, Debug, Default)]
struct Ensured {
    infra: ClusterInfra,
    status: InfraStatus,
}

pub struct InfraSync {
    provider: Arc<dyn Provider>,
    nodes: Store<Node>,
    /// Only nodes in these zones, when not empty.
    zones: Vec<String>,
    debounce: Duration,
    /// Node ports each Ingress's load balancer uses, by `namespace/name`.
    ports: Mutex<HashMap<String, Vec<u16>>>,
    /// Ingresses of ours whose node ports are unknown (they do not translate, and no earlier
    /// translation told): while any remain, the infrastructure only grows.
    unknown: Mutex<BTreeSet<String>>,
    /// Held while ensuring, so ensures never overlap.
    last: tokio::sync::Mutex<Option<Ensured>>,
    dirty: Notify,
    /// Bumped whenever the set of zones changes: every load balancer must be ensured again so
    /// that its backends use the new groups.
    generation: AtomicU64,
    /// Asks the controller to reconcile every Ingress.
    reconcile_all: tokio::sync::mpsc::UnboundedSender<()>,
    /// Whether every Ingress's ports have been collected once (see `Context::prime`).
    primed: std::sync::atomic::AtomicBool,
}

impl InfraSync {
    pub fn new(
        provider: Arc<dyn Provider>,
        nodes: Store<Node>,
        zones: Vec<String>,
        debounce: Duration,
        reconcile_all: tokio::sync::mpsc::UnboundedSender<()>,
    ) -> Self {
        Self {
            provider,
            nodes,
            zones,
            debounce,
            ports: Mutex::new(HashMap::new()),
            unknown: Mutex::new(BTreeSet::new()),
            last: tokio::sync::Mutex::new(None),
            dirty: Notify::new(),
            generation: AtomicU64::new(0),
            reconcile_all,
            primed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Every Ingress's ports are known (or marked unknown): the infrastructure may follow them.
    pub fn set_primed(&self) {
        self.primed.store(true, Ordering::Relaxed);
    }

    /// Changes whenever the load balancers must be ensured again for the infrastructure's sake.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Records the node ports of one Ingress's load balancer.
    pub fn set_ports(&self, ingress: &str, ports: Vec<u16>) {
        self.unknown
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(ingress);
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

    /// Notes an Ingress of ours that cannot be translated: unless its ports are known from an
    /// earlier translation, nothing may be removed from the infrastructure meanwhile, since its
    /// load balancer may still use any port.
    pub fn mark_unknown(&self, ingress: &str) {
        if !self
            .ports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(ingress)
        {
            self.unknown
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(ingress.to_owned());
        }
    }

    /// Forgets an Ingress whose load balancer is gone.
    pub fn remove(&self, ingress: &str) {
        let was_unknown = self
            .unknown
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(ingress);
        if self
            .ports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(ingress)
            .is_some()
            || was_unknown
        {
            self.dirty.notify_one();
        }
    }

    /// What the infrastructure should be now, and warnings about nodes.
    pub fn desired(&self) -> (ClusterInfra, Vec<String>) {
        let nodes: Vec<Node> = self.nodes.state().iter().map(|n| n.as_ref().clone()).collect();
        let (mut nodes, warnings) = translate::cluster_nodes(&nodes);
        if !self.zones.is_empty() {
            nodes.retain(|n| self.zones.contains(&n.zone));
        }
        let node_ports: BTreeSet<u16> = self
            .ports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .flatten()
            .copied()
            .collect();
        let ports_incomplete = !self.unknown.lock().unwrap_or_else(|p| p.into_inner()).is_empty();
        (
            ClusterInfra {
                nodes,
                node_ports,
                ports_incomplete,
            },
            warnings,
        )
    }

    /// Ensures the infrastructure unless it was ensured already with every port in `ports`.
    pub async fn ensure_covers(&self, ports: &[u16]) -> Result<InfraStatus, cloud::Error> {
        let mut last = self.last.lock().await;
        if let Some(e) = last.as_ref()
            && ports.iter().all(|p| e.infra.node_ports.contains(p))
        {
            return Ok(e.status.clone());
        }
        self.ensure_locked(&mut last).await
    }

    /// Ensures the desired infrastructure if it differs from the last ensured.
    pub async fn ensure(&self) -> Result<InfraStatus, cloud::Error> {
        let mut last = self.last.lock().await;
        self.ensure_locked(&mut last).await
    }

    async fn ensure_locked(&self, last: &mut Option<Ensured>) -> Result<InfraStatus, cloud::Error> {
        let (desired, warnings) = self.desired();
        for w in &warnings {
            tracing::warn!(warning = %w, "node skipped");
        }
        if let Some(e) = last.as_ref()
            && e.infra == desired
        {
            return Ok(e.status.clone());
        }
        let zones = |i: &ClusterInfra| i.zones().into_iter().map(str::to_owned).collect::<Vec<_>>();
        let zones_changed = last.as_ref().is_none_or(|e| zones(&e.infra) != zones(&desired));
        tracing::info!(
            nodes = desired.nodes.len(),
            ports = desired.node_ports.len(),
            "ensuring the cluster infrastructure"
        );
        let status = match self.provider.ensure_infrastructure(&desired).await {
            Ok(status) => status,
            Err(e) => {
                // The background loop tries again after the debounce.
                self.dirty.notify_one();
                return Err(e);
            }
        };
        let first = last.is_none();
        *last = Some(Ensured {
            infra: desired,
            status: status.clone(),
        });
        if zones_changed && !first {
            self.generation.fetch_add(1, Ordering::Relaxed);
            let _ = self.reconcile_all.send(());
        }
        Ok(status)
    }

    /// Drives the node watch and applies changes after the debounce, until `cancel`.
    pub async fn run(
        self: Arc<Self>,
        mut nodes: BoxStream<'static, Result<Node, watcher::Error>>,
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
            loop {
                self.dirty.notified().await;
                // Let a burst of changes settle into one ensure.
                tokio::time::sleep(self.debounce).await;
                if !self.primed.load(Ordering::Relaxed) {
                    // The first reconcile ensures, with every port known by then.
                    continue;
                }
                if let Err(e) = self.ensure().await {
                    tracing::warn!(error = %e, "ensuring the cluster infrastructure");
                    tokio::time::sleep(self.debounce.max(Duration::from_secs(5))).await;
                    self.dirty.notify_one();
                }
            }
        };
        tokio::select! {
            _ = watch => {}
            _ = apply => {}
            _ = cancel.cancelled() => {}
        }
    }
}
