//! What every reconcile shares.

use super::endpoints::EndpointQueue;
use super::events::Events;
use super::health::HealthCache;
use super::infra::InfraSync;
use super::stores::Stores;
use crate::telemetry::liveness::Liveness;
use crate::telemetry::metrics::Metrics;
use crate::translate;
use cloud::model::{BackendKey, LoadBalancer};
use cloud::{LoadBalancerStatus, Provider, ResourceKind, WriteFence};
use k8s_openapi::api::networking::v1::Ingress;
use kube::runtime::reflector::ObjectRef;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// The finalizer of the default controller (`cloud-lb-controller.io/gce`), which holds an
/// Ingress until its load balancer is deleted.
pub const FINALIZER: &str = "cloud-lb-controller.io/cleanup";

/// The finalizer of the controller named `controller_name`: [`FINALIZER`] for the default one
/// (as it always was), and for any other one a finalizer of its own, so that two controllers in
/// one cluster never clean up each other's Ingresses. A qualified name: the part after the `/`
/// is at most 63 characters of `[a-z0-9-]`, with a hash of the whole controller name.
pub fn finalizer_for(controller_name: &str) -> String {
    if controller_name == translate::DEFAULT_CONTROLLER_NAME {
        return FINALIZER.to_owned();
    }
    let slug: String = controller_name
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() { c } else { '-' }
        })
        .take(40)
        .collect();
    let slug = slug.trim_matches('-');
    let hash = cloud::gce::names::hash8(controller_name);
    if slug.is_empty() {
        format!("{FINALIZER}-{hash}")
    } else {
        format!("{FINALIZER}-{slug}-{hash}")
    }
}

/// The last successful ensure of one load balancer: while the model, the infrastructure
/// generation and the resync period hold, a reconcile needs no cloud call at all.
#[derive(Clone)]
struct Memo {
    model: LoadBalancer,
    infra_generation: u64,
    at: Instant,
    status: LoadBalancerStatus,
}

pub struct Context {
    pub client: kube::Client,
    pub provider: Arc<dyn Provider>,
    pub stores: Stores,
    pub events: Events,
    pub metrics: Arc<Metrics>,
    pub liveness: Arc<Liveness>,
    pub infra: Arc<InfraSync>,
    /// This controller's finalizer (see [`finalizer_for`]).
    pub finalizer: String,
    pub translate: translate::Config,
    pub resync: Duration,
    pub watch_namespace: Option<String>,
    /// This replica's permission to write (to the cloud and to the Ingresses).
    pub fence: WriteFence,
    /// Backend health as last polled (see [`super::health`]).
    pub health: HealthCache,
    /// The endpoint backends to sync (see [`super::endpoints`]).
    pub endpoints: Arc<EndpointQueue>,
    /// Per Ingress, the backends last told (in the state and an Event) to have no healthy
    /// instance, so that a transition is told once even when a reconcile reads an Ingress
    /// from before its own last write.
    unhealthy_told: Mutex<HashMap<String, BTreeSet<String>>>,
    /// Per Ingress, what was last told of its endpoint backends and health checks (see
    /// [`super::report::endpoints`]), for the same reason.
    endpoints_told: Mutex<HashMap<String, Told>>,
    memo: Mutex<HashMap<String, Memo>>,
    /// The endpoint backends of the cluster the cloud holds, as last read (see
    /// [`Context::refresh_endpoint_backends`]).
    cloud_endpoint_backends: Mutex<BTreeSet<BackendKey>>,
    failures: Mutex<HashMap<String, u32>>,
    primed: tokio::sync::OnceCell<()>,
    requeue: tokio::sync::mpsc::UnboundedSender<ObjectRef<Ingress>>,
}

/// What a [`Context`] is made of.
pub struct Parts {
    pub client: kube::Client,
    pub provider: Arc<dyn Provider>,
    pub stores: Stores,
    pub events: Events,
    pub metrics: Arc<Metrics>,
    pub liveness: Arc<Liveness>,
    pub infra: Arc<InfraSync>,
    pub translate: translate::Config,
    pub resync: Duration,
    pub watch_namespace: Option<String>,
    pub fence: WriteFence,
    /// How often backend health is polled; zero turns polling off.
    pub health_interval: Duration,
    /// Pod status writes (readiness gates) per second, at most.
    pub pod_status_qps: f64,
}

/// What was last told on an Ingress of its endpoint backends and health checks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Told {
    /// Endpoint backends told to have no ready endpoint.
    pub empty: BTreeSet<BackendKey>,
    /// Health-check origins told, by backend.
    pub health_checks: BTreeMap<String, String>,
}

/// Ingresses to reconcile again, outside any watch event (see [`Context::requeue`]).
pub type Requeues = tokio::sync::mpsc::UnboundedReceiver<ObjectRef<Ingress>>;

impl Context {
    /// The context, and the stream of Ingresses it asks to reconcile again (for the controller).
    pub fn new(parts: Parts) -> (Self, Requeues) {
        let Parts {
            client,
            provider,
            stores,
            events,
            metrics,
            liveness,
            infra,
            translate,
            resync,
            watch_namespace,
            fence,
            health_interval,
            pod_status_qps,
        } = parts;
        let (requeue, requeues) = tokio::sync::mpsc::unbounded_channel();
        let ctx = Self {
            client,
            provider,
            stores,
            events,
            metrics,
            liveness,
            infra,
            finalizer: finalizer_for(&translate.controller_name),
            translate,
            resync,
            watch_namespace,
            fence,
            health: HealthCache::new(health_interval),
            endpoints: Arc::new(EndpointQueue::new(pod_status_qps)),
            unhealthy_told: Mutex::new(HashMap::new()),
            endpoints_told: Mutex::new(HashMap::new()),
            memo: Mutex::new(HashMap::new()),
            cloud_endpoint_backends: Mutex::new(BTreeSet::new()),
            failures: Mutex::new(HashMap::new()),
            primed: tokio::sync::OnceCell::new(),
            requeue,
        };
        (ctx, requeues)
    }

    /// Asks for a reconcile of this Ingress soon, whatever the watches say.
    pub fn requeue(&self, ingress: ObjectRef<Ingress>) {
        let _ = self.requeue.send(ingress);
    }

    /// The translation settings, at the current time (for certificate expiry).
    pub fn translate_config(&self) -> translate::Config {
        translate::Config {
            now: jiff::Timestamp::now(),
            ..self.translate.clone()
        }
    }

    /// Runs once, before the first reconcile: waits for every cache, then ensures the
    /// infrastructure with the node ports and the endpoint backends' pod ports of every Ingress
    /// at once (rather than growing it one Ingress at a time). Ports of load balancers that exist
    /// but are not listed here (an Ingress being deleted, one that does not translate now) are
    /// kept by the provider, which reads them.
    pub async fn prime(&self) -> Result<(), super::Error> {
        self.primed
            .get_or_try_init(|| async {
                self.stores
                    .wait_ready()
                    .await
                    .map_err(|_| super::Error::Cloud(cloud::Error::bug("a watch ended")))?;
                let config = self.translate_config();
                let mut endpoint_backends = BTreeSet::new();
                for ingress in self.stores.ingresses.state() {
                    if ingress.metadata.deletion_timestamp.is_some()
                        || !translate::is_ours(&ingress, &self.stores, &config)
                    {
                        continue;
                    }
                    if let Ok(t) = translate::translate(&ingress, &self.stores, &config) {
                        let key = super::reconcile::key_of(&ingress);
                        self.infra.set_ports(&key, t.load_balancer.node_ports());
                        endpoint_backends.extend(t.load_balancer.endpoint_backends().cloned());
                    }
                }
                // As the endpoint loop derives them (it takes over from here).
                let nodes = self.infra.cloud_nodes();
                let endpoint_ports: BTreeSet<u16> = endpoint_backends
                    .iter()
                    .flat_map(|key| translate::endpoint_plan(key, &self.stores, &nodes).set.endpoints)
                    .map(|e| e.port)
                    .collect();
                self.infra.set_endpoint_ports(endpoint_ports);
                self.infra.set_primed();
                // A failure here is retried by the infrastructure loop and shown on the
                // Ingresses; it must not keep every reconcile waiting.
                self.infra.ensure().await;
                Ok(())
            })
            .await
            .map(|_| ())
    }

    /// The status of the last ensure, if nothing that matters changed since. A load balancer
    /// switching backends between node ports and endpoints is never a hit: the provider
    /// finishes the switch on a later ensure.
    pub fn memo_hit(&self, key: &str, model: &LoadBalancer) -> Option<LoadBalancerStatus> {
        let memo = self.memo.lock().unwrap_or_else(|p| p.into_inner());
        let m = memo.get(key)?;
        (m.model == *model
            && m.status.switching.is_empty()
            && m.infra_generation == self.infra.generation()
            && m.at.elapsed() < self.resync)
            .then(|| LoadBalancerStatus {
                changed: false,
                ..m.status.clone()
            })
    }

    /// Whether the last ensure of this Ingress's load balancer was of `model` (which the
    /// provider then checked already).
    pub fn memo_holds(&self, key: &str, model: &LoadBalancer) -> bool {
        let memo = self.memo.lock().unwrap_or_else(|p| p.into_inner());
        memo.get(key).is_some_and(|m| m.model == *model)
    }

    /// The address of the last ensure of this Ingress's load balancer in this process.
    pub fn memo_address(&self, key: &str) -> Option<String> {
        let memo = self.memo.lock().unwrap_or_else(|p| p.into_inner());
        memo.get(key)
            .map(|m| m.status.address.clone())
            .filter(|a| !a.is_empty())
    }

    pub fn memo_store(&self, key: &str, model: LoadBalancer, status: LoadBalancerStatus) {
        let memo = Memo {
            model,
            infra_generation: self.infra.generation(),
            at: Instant::now(),
            status,
        };
        self.memo
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_owned(), memo);
    }

    /// Every backend resource the served load balancers use (as their last ensure named them),
    /// with the Ingresses using each.
    pub fn backend_users(&self) -> BTreeMap<String, Vec<String>> {
        let memo = self.memo.lock().unwrap_or_else(|p| p.into_inner());
        let mut users: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (key, m) in memo.iter() {
            for name in m.status.names(ResourceKind::BackendService) {
                users.entry(name.clone()).or_default().push(key.clone());
            }
        }
        users
    }

    /// The endpoint backends to keep in sync: those the served load balancers use (as their
    /// last ensure had them, including one a load balancer is switching away from, which serves
    /// until the switch ends), and every one the cloud holds for the cluster (as last read): after
    /// a restart, an Ingress that no longer translates is served by its old load balancer, whose
    /// endpoint backends no ensure of this process names. One the cloud holds that no load
    /// balancer uses is deleted by the provider's sweep, after which a sync finds no backend and
    /// writes nothing.
    pub fn endpoint_backends_in_use(&self) -> BTreeSet<BackendKey> {
        let mut keys: BTreeSet<BackendKey> = self
            .cloud_endpoint_backends
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let memo = self.memo.lock().unwrap_or_else(|p| p.into_inner());
        keys.extend(
            memo.values()
                .flat_map(|m| m.model.endpoint_backends().chain(&m.status.switching).cloned()),
        );
        keys
    }

    /// Reads which endpoint backends the cloud holds for the cluster (see
    /// [`Context::endpoint_backends_in_use`]), and syncs those it did not hold before. On a
    /// failure, the last read stands.
    pub async fn refresh_endpoint_backends(&self) {
        let keys: BTreeSet<BackendKey> = match self.provider.endpoint_backends().await {
            Ok(keys) => keys.into_iter().collect(),
            Err(e) => {
                tracing::warn!(error = %e, "listing the endpoint backends in the cloud");
                return;
            }
        };
        let new: Vec<BackendKey> = {
            let mut known = self
                .cloud_endpoint_backends
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let new = keys.difference(&known).cloned().collect();
            *known = keys;
            new
        };
        for key in &new {
            self.endpoints.enqueue(key, true);
        }
    }

    /// The backends last told to have no healthy instance on this Ingress, if this process
    /// told anything.
    pub fn unhealthy_told(&self, key: &str) -> Option<BTreeSet<String>> {
        self.unhealthy_told
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    /// Records the backends this Ingress has now been told to have no healthy instance, as the
    /// base of the next transition ([`super::report::health_transition`]).
    pub fn set_unhealthy_told(&self, key: &str, backends: BTreeSet<String>) {
        self.unhealthy_told
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_owned(), backends);
    }

    /// What this process last told on this Ingress of its endpoint backends and health checks.
    pub fn endpoints_told(&self, key: &str) -> Option<Told> {
        self.endpoints_told
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    pub fn set_endpoints_told(&self, key: &str, told: Told) {
        self.endpoints_told
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_owned(), told);
    }

    /// Whether a load balancer this process serves (as its last ensure had it) uses `key` as an
    /// endpoint backend.
    pub fn serves_endpoint_backend(&self, key: &BackendKey) -> bool {
        let memo = self.memo.lock().unwrap_or_else(|p| p.into_inner());
        memo.values()
            .any(|m| m.model.endpoint_backends().any(|k| k == key))
    }

    /// The fixed port the health check of the endpoint backend `key` probes, when the Service
    /// sets one (`cloud-lb-controller.io/health-check-port`): the firewall must open it too.
    pub fn endpoint_health_check_port(&self, key: &BackendKey) -> Option<u16> {
        let memo = self.memo.lock().unwrap_or_else(|p| p.into_inner());
        memo.values()
            .flat_map(|m| m.model.backends.iter())
            .find(|b| b.key == *key)
            .and_then(|b| b.health_check.port)
    }

    /// Forgets everything about an Ingress no longer served. Its endpoint backends are looked at
    /// again: one no other load balancer uses is forgotten too (and its pod ports leave the
    /// firewall).
    pub fn forget(&self, key: &str) {
        let left = self
            .memo
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .map(|m| m.model.endpoint_backends().cloned().collect::<Vec<_>>())
            .unwrap_or_default();
        self.endpoints_told
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
        self.memo.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
        self.unhealthy_told
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
        self.metrics.set_state(key, None);
        for backend in &left {
            self.endpoints.enqueue(backend, false);
        }
    }

    /// The delay before retrying a failed Ingress: exponential from 1 s to 5 min, with jitter.
    pub fn next_backoff(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let n = failures.entry(key.to_owned()).or_default();
        *n = n.saturating_add(1);
        let base = Duration::from_secs(1).saturating_mul(1u32 << (*n - 1).min(9));
        let capped = base.min(Duration::from_secs(300));
        // ±20 % so that Ingresses failing together do not retry together.
        let jitter = (std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
            % 400) as f64
            / 1000.0;
        capped.mul_f64(0.8 + jitter)
    }

    pub fn reset_backoff(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}
