//! The interface every cloud implements.

use crate::Error;
use crate::model::{ClusterInfra, LoadBalancer, LoadBalancerKey};
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
    /// balancers reach them. With no node ports in use and no load balancer left, removes them.
    async fn ensure_infrastructure(&self, infra: &ClusterInfra) -> Result<InfraStatus, Error>;

    /// The load balancers this cluster owns in the cloud, read from the resources themselves,
    /// for garbage collection of those whose Ingress is gone.
    async fn list_owned(&self) -> Result<Vec<LoadBalancerKey>, Error>;

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
}

impl LoadBalancerStatus {
    /// The names of the resources of one kind (empty when there are none).
    pub fn names(&self, kind: ResourceKind) -> &[String] {
        self.resources.get(&kind).map(Vec::as_slice).unwrap_or_default()
    }
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
