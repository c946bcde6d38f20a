//! The interface every cloud implements.

use crate::Error;
use crate::model::{BackendKey, ClusterInfra, Endpoint, EndpointSet, LoadBalancer, LoadBalancerKey};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A cloud that can provision HTTP(S) load balancers.
///
/// Implementations own everything they create and must never modify or delete a resource they
/// did not create. Every method is idempotent: calling it again after a failure, a crash or a
/// restart converges on the same cloud state without duplicates.
#[async_trait]
pub trait Provider: Send + Sync {
    /// Creates or updates the cloud resources of `lb` until they match it, and deletes the ones
    /// it no longer needs (a listener turned off, a rotated certificate). Returns the address and
    /// the names of the resources. Needs [`Provider::ensure_infrastructure`] to have run once.
    async fn ensure(&self, lb: &LoadBalancer) -> Result<LoadBalancerStatus, Error>;

    /// Deletes every resource of the load balancer of this Ingress (its uid is ignored), in
    /// reverse dependency order. Shared resources go only when no other load balancer uses them.
    /// Deleting a load balancer that does not exist succeeds.
    async fn delete(&self, key: &LoadBalancerKey) -> Result<(), Error>;

    /// Creates or updates the cluster-wide resources: node groups per zone holding the nodes,
    /// with the node ports in use, and the firewall rule letting health checks and load
    /// balancers reach them and the endpoint ports. With no node port in use the node groups
    /// are not needed (the zones of the nodes are still remembered, for endpoint backends);
    /// with nothing in use and no load balancer left, everything is removed.
    async fn ensure_infrastructure(&self, infra: &ClusterInfra) -> Result<InfraStatus, Error>;

    /// The load balancers this cluster owns in the cloud, read from the resources themselves,
    /// for garbage collection of those whose Ingress is gone.
    async fn list_owned(&self) -> Result<Vec<LoadBalancerKey>, Error>;

    /// What the cloud's health checks say of the named backends (the names
    /// [`LoadBalancerStatus::resources`] gives under [`ResourceKind::BackendService`]): one
    /// entry per name, each read in bulk and read-only (it never needs the write fence). A
    /// backend that could not be read is [`BackendHealth::Unknown`] with the reason; `Err` only
    /// when nothing at all could be read. The default knows nothing: every backend is Unknown.
    async fn backend_health(&self, names: &[String]) -> Result<BTreeMap<String, BackendHealth>, Error> {
        Ok(names
            .iter()
            .map(|n| {
                let reason = UnknownHealth::NotSupported;
                (n.clone(), BackendHealth::Unknown { reason })
            })
            .collect())
    }

    /// Makes the cloud send the traffic of the endpoint backend `set.key` to exactly
    /// `set.endpoints`: attaches the missing ones first, then detaches the ones not in the set,
    /// in batches the cloud accepts. Reads first and writes nothing when the cloud already
    /// matches. The groups holding the endpoints belong to the backend, which
    /// [`Provider::ensure`] of a load balancer using it creates: until then (or once no load
    /// balancer uses it) this writes nothing and answers [`EndpointSync::NoBackend`], so it
    /// never recreates what a deletion removed. An endpoint in a zone where the backend has no
    /// group yet (a node in a new zone) gets that zone's group created and added to the
    /// backend first. Idempotent, like every method.
    async fn sync_endpoints(&self, set: &EndpointSet) -> Result<EndpointSync, Error> {
        let _ = set;
        Err(Error::user(
            "this cloud provider cannot send traffic straight to endpoints",
        ))
    }

    /// The endpoint backends of this cluster that exist in the cloud, whichever load balancer
    /// (of whichever controller) built them, read from the resources themselves: those
    /// [`Provider::sync_endpoints`] must keep in line even when no load balancer of this process
    /// was ensured with them (after a restart, an Ingress that no longer translates still
    /// serves through them; a load balancer switching to its node port still sends its traffic
    /// there). Read-only. The default knows none.
    async fn endpoint_backends(&self) -> Result<Vec<BackendKey>, Error> {
        Ok(Vec::new())
    }

    /// What the cloud's health checks say of each endpoint attached to the endpoint backend
    /// `key` (read-only, in bulk: one read per zone). Endpoints not attached are absent.
    async fn endpoint_health(&self, key: &BackendKey) -> Result<BTreeMap<Endpoint, EndpointHealth>, Error> {
        let _ = key;
        Ok(BTreeMap::new())
    }

    /// Deletes shared resources nothing uses any more (backends left behind by a failure or a
    /// crash). Called periodically; each call is idempotent.
    async fn collect_garbage(&self) -> Result<(), Error> {
        Ok(())
    }

    /// The cloud objects [`Provider::ensure`] would create for `lb`, in creation order, without
    /// any network call.
    fn plan(&self, lb: &LoadBalancer) -> Result<serde_json::Value, Error>;

    /// Whether the cloud accepts `lb` at all: the limits a cloud puts on one load balancer
    /// (hosts, paths per host, backends, routing-table size, certificates), checked without any
    /// network call. `Err` lists every limit `lb` exceeds, told in the Ingress's terms;
    /// [`Provider::ensure`] of such a load balancer fails the same way, before any call. The
    /// default accepts everything.
    fn check(&self, _lb: &LoadBalancer) -> Result<(), Vec<LimitViolation>> {
        Ok(())
    }
}

/// One limit of the cloud that a load balancer exceeds (see [`Provider::check`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LimitViolation {
    pub limit: LimitKind,
    /// The Ingress host the limit applies to (`*` for rules without a host), for per-host limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// What the load balancer needs: a count, or bytes for [`LimitKind::RoutingTableSize`].
    pub actual: usize,
    /// The most the cloud accepts.
    pub max: usize,
    /// For the user: what is over, by how much, against which limit, and what to change.
    pub message: String,
}

impl fmt::Display for LimitViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Which limit a [`LimitViolation`] is about, in the terms of the load balancer model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LimitKind {
    /// Hosts with paths, in one load balancer.
    Hosts,
    /// Paths of one host.
    PathsPerHost,
    /// The match patterns the paths of one host need (the cloud may need several per path).
    PathPatternsPerHost,
    /// Distinct backends (Service ports, and the default backend) one load balancer routes to.
    Backends,
    /// The size of the whole routing table, in bytes as the cloud counts them.
    RoutingTableSize,
    /// TLS certificates on the HTTPS listener.
    Certificates,
}

impl LimitKind {
    /// Lower-case, hyphenated, stable: for metrics, Event reasons and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::Hosts => "hosts",
            LimitKind::PathsPerHost => "paths-per-host",
            LimitKind::PathPatternsPerHost => "path-patterns-per-host",
            LimitKind::Backends => "backends",
            LimitKind::RoutingTableSize => "routing-table-size",
            LimitKind::Certificates => "certificates",
        }
    }
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a load balancer [`Provider::check`] refuses: [`crate::ErrorCategory::User`],
/// every violation in the message.
impl From<Vec<LimitViolation>> for Error {
    fn from(violations: Vec<LimitViolation>) -> Self {
        let list: Vec<String> = violations.iter().map(ToString::to_string).collect();
        Error::user(format!(
            "the load balancer exceeds the cloud's limits: {}",
            list.join("; ")
        ))
    }
}

/// What [`Provider::ensure`] built.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadBalancerStatus {
    /// The IP address clients connect to.
    pub address: String,
    /// The names of the resources serving this load balancer, by kind.
    pub resources: BTreeMap<ResourceKind, Vec<String>>,
    /// Conditions the user should know of that did not stop the load balancer from working.
    pub warnings: Vec<String>,
    /// Whether this call created, changed or deleted anything.
    pub changed: bool,
    /// The Service port each backend resource serves, by the resource's name. A backend the
    /// provider adds on its own (one answering requests no rule matches) serves none and is
    /// not listed. A port in `switching` has two: the one still serving and the new one.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub backend_ports: BTreeMap<String, BackendKey>,
    /// Backends whose target is changing (node port ↔ endpoints) and whose new target serves
    /// nothing healthy yet: the old target keeps serving meanwhile, so the load balancer never
    /// has no backend. Call [`Provider::ensure`] again shortly; it finishes the switch once the
    /// new target is healthy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub switching: Vec<BackendKey>,
}

impl LoadBalancerStatus {
    /// The names of the resources of one kind (empty when there are none).
    pub fn names(&self, kind: ResourceKind) -> &[String] {
        self.resources.get(&kind).map(Vec::as_slice).unwrap_or_default()
    }
}

/// What [`Provider::sync_endpoints`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum EndpointSync {
    /// The cloud now holds exactly the set.
    Synced {
        /// Endpoints attached by this call.
        attached: usize,
        /// Endpoints detached by this call.
        detached: usize,
    },
    /// No load balancer has created this backend yet (or none uses it any more): nothing was
    /// written. Call again after the next [`Provider::ensure`] that uses it.
    NoBackend,
}

impl EndpointSync {
    /// Whether this call attached or detached anything.
    pub fn changed(&self) -> bool {
        matches!(self, EndpointSync::Synced { attached, detached } if attached + detached > 0)
    }
}

/// What the cloud's health checks say of one endpoint (see [`Provider::endpoint_health`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EndpointHealth {
    Healthy,
    Unhealthy,
    /// Not probed yet, or the cloud did not say.
    Unknown,
}

/// What the cloud's health checks say of one backend (see [`Provider::backend_health`]).
///
/// The verdict follows ingress-gce (`pkg/backends/backends.go`, `Backends.Health`): a backend
/// is healthy as soon as one instance (or endpoint) in any of its groups is; unhealthy when it
/// has instances and none is; unknown when it has none or could not be read. Unlike
/// ingress-gce, which answers `Unknown` as soon as one group's read fails even after another
/// group showed a healthy instance, the verdict here does not depend on the order of the
/// groups: a healthy instance anywhere makes the backend healthy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum BackendHealth {
    /// At least one instance is healthy.
    Healthy {
        /// Instances reported healthy, over every group read.
        healthy: u32,
        /// Instances reported, over every group read.
        total: u32,
    },
    /// The backend has instances and none of them is healthy: it serves nothing.
    Unhealthy {
        /// Instances reported (every one of them unhealthy).
        total: u32,
    },
    /// Nothing to judge, or nothing could be read.
    Unknown { reason: UnknownHealth },
}

impl BackendHealth {
    /// The spelling ingress-gce writes in `ingress.kubernetes.io/backends`: `HEALTHY`,
    /// `UNHEALTHY` or `Unknown`.
    pub fn as_str(&self) -> &'static str {
        match self {
            BackendHealth::Healthy { .. } => "HEALTHY",
            BackendHealth::Unhealthy { .. } => "UNHEALTHY",
            BackendHealth::Unknown { .. } => "Unknown",
        }
    }
}

/// Why a backend's health is unknown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum UnknownHealth {
    /// The backend has no instance to check (no group, or only empty groups).
    NoInstances,
    /// The cloud has no backend of that name (not created yet, or deleted meanwhile).
    NotFound,
    /// A read failed; the message says which and why.
    ReadFailed {
        message: String,
        /// Whether trying again later may succeed (a server error, a rate limit).
        retryable: bool,
    },
    /// The provider cannot tell health.
    NotSupported,
}

/// What [`Provider::ensure_infrastructure`] built.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfraStatus {
    pub resources: BTreeMap<ResourceKind, Vec<String>>,
    /// Things the user should know, e.g. a node whose VM does not exist and was left out.
    pub warnings: Vec<String>,
    /// When the controller may not write the firewall rule itself (Shared VPC): what a network
    /// administrator must do, with the exact command.
    pub firewall_change: Option<String>,
    /// Something unneeded was kept for now: call again after this long to remove it.
    pub recheck_after: Option<std::time::Duration>,
}

/// The kinds of cloud resources a load balancer is made of, in creation order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResourceKind {
    Firewall,
    InstanceGroup,
    NetworkEndpointGroup,
    HealthCheck,
    BackendService,
    UrlMap,
    RedirectUrlMap,
    SslCertificate,
    TargetHttpProxy,
    TargetHttpsProxy,
    Address,
    HttpForwardingRule,
    HttpsForwardingRule,
}

impl ResourceKind {
    /// Lower-case, hyphenated, stable: used in annotations, metrics and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Firewall => "firewall",
            ResourceKind::InstanceGroup => "instance-group",
            ResourceKind::NetworkEndpointGroup => "network-endpoint-group",
            ResourceKind::HealthCheck => "health-check",
            ResourceKind::BackendService => "backend-service",
            ResourceKind::UrlMap => "url-map",
            ResourceKind::RedirectUrlMap => "redirect-url-map",
            ResourceKind::SslCertificate => "ssl-certificate",
            ResourceKind::TargetHttpProxy => "target-http-proxy",
            ResourceKind::TargetHttpsProxy => "target-https-proxy",
            ResourceKind::Address => "address",
            ResourceKind::HttpForwardingRule => "http-forwarding-rule",
            ResourceKind::HttpsForwardingRule => "https-forwarding-rule",
        }
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
