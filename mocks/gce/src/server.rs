//! [`FakeGce`]: a running fake, and the knobs a test turns.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::{Config, InstanceSeed, Latency};
use crate::dataplane::PlaneSetup;
use crate::errors::ApiError;
use crate::faults::{FaultError, FaultRule, FaultStatus};
use crate::journal::Journal;
use crate::ratelimit::RateLimit;
use crate::state::{ConfigError, Shared};
use crate::stats::Stats;

/// Why the fake could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address from [`Config::listen`].
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The data plane could not start: no loopback block could be claimed, or the one given
    /// in [`crate::DataPlane::block`] is not a usable block of `127.0.0.0/8`.
    #[error("cannot start the data plane: {0}")]
    DataPlane(#[source] std::io::Error),
}

/// A running fake Compute API. Dropping it stops the server.
#[derive(Debug)]
pub struct FakeGce {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl FakeGce {
    /// Starts serving on [`Config::listen`] (`127.0.0.1:0` by default: an ephemeral port).
    /// Must be called inside a Tokio runtime.
    pub async fn start(config: Config) -> Result<FakeGce, StartError> {
        let data_plane = match &config.data_plane {
            Some(settings) => Some(PlaneSetup::prepare(settings).map_err(StartError::DataPlane)?),
            None => None,
        };
        let shared = Shared::new(config, data_plane)?;
        shared.start_data_plane();
        let addr = shared.config.listen;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| StartError::Bind { addr, source })?;
        let app = crate::http::router(Arc::clone(&shared));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
                tracing::warn!("fake-gce server stopped: {e}");
            }
        });
        tracing::debug!("fake-gce listening on {addr}");
        Ok(FakeGce {
            shared,
            addr,
            stop: Some(stop),
            task,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the root, for the metadata server and the admin API.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/compute/v1/`: the Compute base URL (trailing slash).
    pub fn base_url(&self) -> String {
        format!("http://{}/compute/v1/", self.addr)
    }

    /// `127.0.0.1:PORT`: the value for `GCE_METADATA_HOST`.
    pub fn metadata_host(&self) -> String {
        self.addr.to_string()
    }

    /// With the data plane on: the address a listener actually listens on for the
    /// forwarding-rule address `ip` and port `port` (`127.A.B.C:10080` for port 80 when port 80
    /// cannot be bound); `None` when nothing listens there (no such forwarding rule, its address
    /// is refused, its bind failed, or the data plane is off).
    pub fn serving_address(&self, ip: &str, port: u16) -> Option<SocketAddr> {
        self.shared.dataplane.as_ref()?.serving_address(ip, port)
    }

    /// With the data plane on: the loopback block (`127.A.B.0`) whose `.1`–`.253` are external
    /// addresses (forwarding rules, reserved global addresses).
    pub fn data_plane_block(&self) -> Option<Ipv4Addr> {
        self.shared.block()
    }

    /// The configuration the fake was started with.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Sets how long operations stay RUNNING.
    pub fn set_latency(&self, latency: Latency) {
        self.shared.set_latency(latency);
    }

    /// The current latency settings.
    pub fn latency(&self) -> Latency {
        self.shared.latency()
    }

    /// Installs a fault rule; returns its id.
    pub fn add_fault(&self, rule: FaultRule) -> Result<u64, FaultError> {
        self.shared.add_fault(rule)
    }

    /// The installed fault rules with their counters.
    pub fn faults(&self) -> Vec<FaultStatus> {
        self.shared.faults()
    }

    /// Removes one fault rule; `false` if there was none with that id.
    pub fn remove_fault(&self, id: u64) -> bool {
        self.shared.remove_fault(id)
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.shared.clear_faults();
    }

    /// Sets (or with `None` removes) the quota of a collection, by discovery name
    /// (`backendServices`, `globalForwardingRules`, `sslCertificates`, `instanceGroups`, ...). The
    /// limit applies to each project, and for regional and zonal collections to each region; an
    /// insert over it fails its operation with `QUOTA_EXCEEDED` (see the crate docs).
    pub fn set_quota(&self, kind: &str, limit: Option<u64>) {
        self.shared.set_quota(kind, limit);
    }

    /// The quotas in force.
    pub fn quotas(&self) -> BTreeMap<String, u64> {
        self.shared.quotas()
    }

    /// Sets (or with `None` removes) the token-bucket rate limit; the bucket starts full.
    pub fn set_rate_limit(&self, limit: Option<RateLimit>) {
        self.shared.set_rate_limit(limit);
    }

    /// The rate limit in force.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        self.shared.rate_limit()
    }

    /// Creates an instance named `name` in `zone` of the default project (next free IP), or
    /// refreshes it; returns its self link. The zone is created if unknown.
    pub fn seed_instance(&self, zone: &str, name: &str) -> Result<String, ApiError> {
        self.shared.seed_instance(&InstanceSeed::new(zone, name))
    }

    /// Creates or refreshes an instance with every detail given.
    pub fn seed_instance_with(&self, seed: &InstanceSeed) -> Result<String, ApiError> {
        self.shared.seed_instance(seed)
    }

    /// Deletes an instance of the default project; it also leaves its groups and NEGs.
    pub fn remove_instance(&self, zone: &str, name: &str) -> bool {
        self.shared.remove_instance(None, zone, name)
    }

    /// Makes `getHealth` report an instance of the default project HEALTHY or UNHEALTHY.
    pub fn set_instance_health(&self, zone: &str, name: &str, healthy: bool) -> bool {
        self.shared.set_instance_health(None, zone, name, healthy)
    }

    /// Forces the endpoint `ip:port` of the zonal NEG `neg` (default project) UNHEALTHY
    /// (`healthy: false`), or lifts that: an endpoint forced UNHEALTHY is UNHEALTHY for
    /// `getHealth` and `listNetworkEndpoints` and gets no traffic, whatever its probes say; the
    /// NEG's other endpoints, other endpoints of the same instance included, are unaffected.
    /// `false` if the NEG has no such endpoint. The override goes with the endpoint (detached,
    /// its instance deleted, the NEG deleted).
    pub fn set_endpoint_health(&self, zone: &str, neg: &str, ip: &str, port: u16, healthy: bool) -> bool {
        self.shared
            .set_endpoint_health(None, zone, neg, ip, u32::from(port), healthy)
    }

    /// A snapshot of the call counters.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Zeroes the call counters.
    pub fn reset_stats(&self) {
        self.shared.reset_stats();
    }

    /// A snapshot of the [`Journal`]: every entry kept, oldest first.
    pub fn journal(&self) -> Journal {
        self.shared.journal(0)
    }

    /// The journal entries with `seq >= since` (pass [`Journal::next_seq`] of an earlier
    /// snapshot to get only what came after it).
    pub fn journal_since(&self, since: u64) -> Journal {
        self.shared.journal(since)
    }

    /// Forgets every journal entry and the dropped count; `seq` keeps counting.
    pub fn clear_journal(&self) {
        self.shared.clear_journal();
    }

    /// Everything stored: `{resources, networks, members, endpoints, operations,
    /// pendingOperations, zones, unhealthyInstances, unhealthyEndpoints}`, resources keyed by path
    /// (`projects/p/global/urlMaps/x`).
    pub fn state(&self) -> Value {
        self.shared.dump()
    }

    /// The JSON of one resource as a GET returns it, by path (`projects/p/global/urlMaps/x`)
    /// or self link.
    pub fn resource(&self, path: &str) -> Option<Value> {
        let key = crate::kinds::parse_ref(path, &self.shared.config.project_id)?;
        self.shared.lock().store.render_key(&key).map(Value::Object)
    }

    /// Back to the start configuration: resources, operations, instances, knobs and counters;
    /// the journal is cleared.
    /// Timers of operations started before the reset do nothing.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Stops the server and waits for it to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Connections blocked in `operations/wait` would hold a graceful shutdown; don't wait.
        self.task.abort();
        self.shared.stop_data_plane();
        let _ = (&mut self.task).await;
    }
}

impl Drop for FakeGce {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
        // Listeners close now, not when the last operation timer lets the state go.
        self.shared.stop_data_plane();
    }
}
