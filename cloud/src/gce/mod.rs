//! The Google Compute Engine provider: global external Application Load Balancers built from
//! hand-written Compute REST calls (reqwest + serde).
//!
//! ```text
//!  model ──desired──► wanted objects ─┐
//!                                     ├─diff──► create / update / delete, in dependency order
//!  inventory (bulk lists) ────────────┘         (parallel where independent), waiting on ops
//! ```
//!
//! - [`names`]: deterministic names; [`owner`]: the ownership record in every description.
//! - [`desired`]: model → Compute objects (pure; also what `plan` prints).
//! - [`inventory`]: what exists, one list per kind, shared between concurrent passes.
//! - [`diff`]: what differs, in managed fields only.
//! - `ensure`, `teardown`, `infra`: the passes; `health`: backend health, read-only;
//!   [`compute`]: the HTTP client (auth, rate limits, retries, operations); [`wire`]: the JSON
//!   shapes.
//!
//! The chain per load balancer is health checks → backend services → URL map → target
//! proxies → forwarding rules, with certificates, the address and the redirect URL map created
//! alongside the first step: the time to an IP is five operations deep whatever the number of
//! backends.

mod api_error;
mod apply;
pub mod compute;
pub mod desired;
pub mod diff;
mod ensure;
mod health;
mod infra;
pub mod inventory;
pub mod limiter;
pub mod limits;
pub mod links;
pub mod names;
mod negs;
pub mod owner;
mod teardown;
pub mod token;
pub mod wire;

pub use api_error::ApiError;
pub use compute::{CallClass, CallObserver, CallRecord, ComputeSettings, RetryPolicy};
pub use limiter::{Rate, RateLimits};
pub use limits::Limits;
pub use token::{GoogleTokens, StaticToken, TokenSource};

use crate::Error;
use crate::model::{BackendKey, ClusterInfra, Endpoint, EndpointSet, LoadBalancer, LoadBalancerKey};
use crate::provider::{
    BackendHealth, EndpointHealth, EndpointSync, InfraStatus, LimitViolation, LoadBalancerStatus, Provider,
};
use async_trait::async_trait;
use compute::Compute;
use inventory::{Freshness, Inventory};
use links::{Collection, Links, Scope};
use names::Namer;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The real API's endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://compute.googleapis.com/compute/v1/";

/// The source ranges of Google's health checkers and load-balancer proxies.
pub const HEALTH_CHECK_RANGES: [&str; 2] = ["130.211.0.0/22", "35.191.0.0/16"];

/// Which kind of global external load balancer to build.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Scheme {
    /// The global external Application Load Balancer (Envoy-based), Google's current offer.
    #[default]
    ExternalManaged,
    /// The classic Application Load Balancer, as ingress-gce builds.
    External,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::ExternalManaged => "EXTERNAL_MANAGED",
            Scheme::External => "EXTERNAL",
        }
    }
}

/// Settings of the GCE provider.
#[derive(Clone)]
pub struct GceConfig {
    pub project: String,
    /// Base URL of the Compute API, ending in `/compute/v1/`.
    pub endpoint: String,
    /// Identifies this cluster in names and ownership records.
    pub cluster_uid: String,
    /// The name of this controller when it is not the default one: recorded on (and hashed into
    /// the names of) its load balancers' own resources, so that several controllers share a
    /// cluster (and its cluster-wide resources) without touching each other's load balancers.
    pub controller: Option<String>,
    /// The VPC network of the nodes (for the firewall rule and instance groups).
    pub network: String,
    /// The project that owns `network`, when it is not `project` (a Shared VPC host project):
    /// the firewall rule is created there.
    pub network_project: Option<String>,
    /// Network tags of the nodes, which the firewall rule targets; empty targets every instance
    /// in the network.
    pub target_tags: Vec<String>,
    pub scheme: Scheme,
    /// The per-load-balancer limits [`Provider::check`] holds load balancers to; `None` is
    /// [`Limits::for_scheme`] of `scheme` (the documented limits).
    pub limits: Option<Limits>,
    /// How old a bulk read may be when a pass starts (it is never older than our own writes).
    /// 0 makes every pass read afresh.
    pub max_staleness: Duration,
    /// How long a node port, or the whole cluster-wide infrastructure, stays after nothing in
    /// the cloud needs it any more: another controller of the cluster may have opened it for a
    /// backend service it is about to create.
    pub removal_grace: Duration,
    pub compute: ComputeSettings,
}

impl GceConfig {
    pub fn new(project: impl Into<String>, cluster_uid: impl Into<String>) -> Self {
        Self {
            project: project.into(),
            endpoint: DEFAULT_ENDPOINT.to_owned(),
            cluster_uid: cluster_uid.into(),
            controller: None,
            network: "default".to_owned(),
            network_project: None,
            target_tags: Vec::new(),
            scheme: Scheme::default(),
            limits: None,
            max_staleness: Duration::from_secs(10),
            removal_grace: Duration::from_secs(120),
            compute: ComputeSettings::default(),
        }
    }
}

/// The instance groups known to exist, and the zones of the nodes, from the last
/// infrastructure pass.
#[derive(Debug, Default)]
struct InfraState {
    /// Whether an infrastructure pass has completed in this process.
    ensured: bool,
    /// Zone → instance-group link, for every zone that has our group.
    groups: BTreeMap<String, String>,
    /// The zones of the cluster's nodes (and of our groups): where endpoint backends have a
    /// NEG each. Known even when no group is needed (only endpoint backends).
    zones: BTreeSet<String>,
}

/// The GCE implementation of [`Provider`].
pub struct GceProvider {
    compute: Compute,
    namer: Namer,
    config: GceConfig,
    inventory: Inventory,
    freshness: Freshness,
    /// Per backend: held shared by passes from before they read until their URL map refers to
    /// it, taken exclusively (without waiting) by the sweep that deletes unused backends.
    backend_locks: apply::KeyedRwLocks,
    /// Per backend: passes sharing a backend take turns creating or updating it.
    locks: apply::KeyedLocks,
    static_ips: apply::StaticIps,
    infra: Mutex<InfraState>,
    lingering: Mutex<infra::Lingering>,
    /// The health poller's current pass (one list of the backend services per pass).
    health_pass: Mutex<health::HealthPass>,
    /// The link of the nodes' network.
    network_link: String,
    /// Per endpoint backend (by name): the pod ports of its endpoints, for the firewall (see
    /// `infra`).
    pod_ports: Mutex<BTreeMap<String, negs::PodPorts>>,
    /// Backends being switched to (see `ensure`): built but not yet in a URL map, so that no
    /// sweep takes them for unused meanwhile. Backend name → the load balancers switching.
    switch_targets: Mutex<BTreeMap<String, BTreeSet<String>>>,
}

impl GceProvider {
    pub fn new(config: GceConfig, tokens: Arc<dyn TokenSource>) -> Result<Self, Error> {
        if !names::is_valid(&config.network) {
            return Err(Error::user(format!(
                "network name {:?} is not a valid Compute name",
                config.network
            )));
        }
        let links = Links::new(&config.endpoint, &config.project);
        let namer = Namer::new(&config.cluster_uid).for_controller(config.controller.as_deref());
        let network_scope = match &config.network_project {
            Some(p) if p != &config.project => Scope::GlobalIn(p.clone()),
            _ => Scope::Global,
        };
        let network_link = links.link(&network_scope, Collection::Networks, &config.network);
        let compute = Compute::new(links, tokens, config.compute.clone())?;
        Ok(Self {
            network_link,
            switch_targets: Mutex::new(BTreeMap::new()),
            pod_ports: Mutex::new(BTreeMap::new()),
            compute,
            inventory: Inventory::new(namer.cluster_filter()),
            freshness: Freshness::new(config.max_staleness),
            namer,
            config,
            backend_locks: apply::KeyedRwLocks::default(),
            locks: apply::KeyedLocks::default(),
            static_ips: apply::StaticIps::default(),
            infra: Mutex::new(InfraState::default()),
            lingering: Mutex::new(infra::Lingering::default()),
            health_pass: Mutex::new(health::HealthPass::default()),
        })
    }

    /// The names this provider gives.
    pub fn namer(&self) -> &Namer {
        &self.namer
    }

    fn links(&self) -> &Links {
        self.compute.links()
    }

    fn context<'a>(&'a self, groups: &'a [String], zones: &'a [String]) -> desired::Context<'a> {
        desired::Context {
            links: self.links(),
            namer: &self.namer,
            cluster_uid: &self.config.cluster_uid,
            controller: self.config.controller.as_deref(),
            scheme: self.config.scheme.as_str(),
            groups,
            zones,
            network: &self.network_link,
        }
    }

    /// The limits load balancers are held to.
    pub fn limits(&self) -> Limits {
        self.config
            .limits
            .unwrap_or_else(|| Limits::for_scheme(self.config.scheme))
    }

    /// [`Provider::check`]: the URL map and proxies of `lb`, built as `ensure` builds them
    /// (the instance groups play no part), measured against [`GceProvider::limits`].
    fn check_limits(&self, lb: &LoadBalancer) -> Result<(), Vec<LimitViolation>> {
        limits::check(&self.limits(), self.context(&[], &[]), lb)
    }

    fn infra_state(&self) -> std::sync::MutexGuard<'_, InfraState> {
        self.infra.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The instance groups backend services point at, and the zones of the nodes (where
    /// endpoint backends have their NEGs), once the infrastructure is in place.
    fn groups(&self) -> Result<(Vec<String>, Vec<String>), Error> {
        let state = self.infra_state();
        if !state.ensured {
            return Err(Error::transient(
                "the cluster's instance groups are not ensured yet",
            ));
        }
        Ok((
            state.groups.values().cloned().collect(),
            state.zones.iter().cloned().collect(),
        ))
    }

    /// Where the network and its firewall rules live: this project, or the Shared VPC host.
    fn network_scope(&self) -> Scope {
        match &self.config.network_project {
            Some(p) if p != &self.config.project => Scope::GlobalIn(p.clone()),
            _ => Scope::Global,
        }
    }

    /// The link to the nodes' network.
    fn network_link(&self) -> String {
        self.network_link.clone()
    }

    fn global_link(&self, collection: Collection, name: &str) -> String {
        self.links().link(&Scope::Global, collection, name)
    }
}

#[async_trait]
impl Provider for GceProvider {
    async fn ensure(&self, lb: &LoadBalancer) -> Result<LoadBalancerStatus, Error> {
        self.ensure_lb(lb).await
    }

    async fn delete(&self, key: &LoadBalancerKey) -> Result<(), Error> {
        self.delete_lb(key).await
    }

    async fn ensure_infrastructure(&self, infra: &ClusterInfra) -> Result<InfraStatus, Error> {
        self.ensure_infra(infra).await
    }

    async fn list_owned(&self) -> Result<Vec<LoadBalancerKey>, Error> {
        self.owned_lbs().await
    }

    async fn sync_endpoints(&self, set: &EndpointSet) -> Result<EndpointSync, Error> {
        self.sync_negs(set).await
    }

    async fn endpoint_backends(&self) -> Result<Vec<BackendKey>, Error> {
        self.listed_endpoint_backends().await
    }

    async fn endpoint_health(&self, key: &BackendKey) -> Result<BTreeMap<Endpoint, EndpointHealth>, Error> {
        self.neg_health(key).await
    }

    async fn collect_garbage(&self) -> Result<(), Error> {
        self.sweep_backends().await
    }

    async fn backend_health(&self, names: &[String]) -> Result<BTreeMap<String, BackendHealth>, Error> {
        self.health_of(names).await
    }

    fn check(&self, lb: &LoadBalancer) -> Result<(), Vec<LimitViolation>> {
        self.check_limits(lb)
    }

    fn plan(&self, lb: &LoadBalancer) -> Result<serde_json::Value, Error> {
        let (groups, zones) = {
            let state = self.infra_state();
            if state.ensured {
                (
                    state.groups.values().cloned().collect(),
                    state.zones.iter().cloned().collect(),
                )
            } else {
                // Offline: the zones are not known; show where the groups and NEGs would be.
                (
                    vec![self.links().link(
                        &Scope::Zone("ZONE".into()),
                        Collection::InstanceGroups,
                        &self.namer.instance_group(),
                    )],
                    vec!["ZONE".to_owned()],
                )
            }
        };
        Ok(desired::build(self.context(&groups, &zones), lb).to_plan())
    }
}
