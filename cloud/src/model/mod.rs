//! The provider-neutral load-balancer model.
//!
//! The translator builds a [`LoadBalancer`] from an Ingress and the objects it references; a
//! [`crate::Provider`] turns it into cloud resources. Everything here is plain data: serializable
//! (so `plan` and tests can print it), comparable, and free of any cloud or Kubernetes type.

mod backend;
mod certificate;
mod endpoints;
mod infra;
mod routing;

pub use backend::{Backend, BackendKey, BackendProtocol, BackendTarget, HealthCheck};
pub use certificate::{Certificate, PrivateKeyPem};
pub use endpoints::{Endpoint, EndpointSet};
pub use infra::{ClusterInfra, Node};
pub use routing::{HostMatch, HostRule, PathMatch, PathRule, RoutingTable};

use serde::{Deserialize, Serialize};
use std::fmt;

/// Identifies the Ingress a load balancer serves.
///
/// Cloud resource names derive from `namespace` and `name` only, so an Ingress deleted and
/// re-created under the same name finds its resources again; `uid` is recorded for humans and
/// for telling apart successive Ingresses of the same name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LoadBalancerKey {
    pub namespace: String,
    pub name: String,
    /// The Ingress's `metadata.uid`; empty when unknown (e.g. read back from the cloud).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
}

impl LoadBalancerKey {
    /// A key for the Ingress `namespace/name` with the given uid.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>, uid: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            uid: uid.into(),
        }
    }
}

impl fmt::Display for LoadBalancerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Everything one Ingress asks of the cloud.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadBalancer {
    pub key: LoadBalancerKey,
    pub frontends: Frontends,
    pub address: AddressRequest,
    pub routes: RoutingTable,
    /// Every backend the routing table refers to, sorted by key, each once.
    pub backends: Vec<Backend>,
}

impl LoadBalancer {
    /// The node ports this load balancer sends traffic to, sorted, each once.
    pub fn node_ports(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = self.backends.iter().filter_map(Backend::node_port).collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    }

    /// The backends served straight at their endpoints, whose [`EndpointSet`]s must be kept in
    /// sync with [`crate::Provider::sync_endpoints`].
    pub fn endpoint_backends(&self) -> impl Iterator<Item = &BackendKey> {
        self.backends
            .iter()
            .filter(|b| b.target == BackendTarget::Endpoints)
            .map(|b| &b.key)
    }
}

/// Which listeners the load balancer has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frontends {
    /// Listen for plain HTTP on port 80 (routing per the table, or redirecting, see `redirect`).
    pub http: bool,
    /// Listen for HTTPS on port 443, terminating TLS with these certificates.
    pub https: Option<HttpsFrontend>,
    /// Answer every plain-HTTP request with a redirect to the same URL on https. Only meaningful
    /// when both `http` and `https` are on; the translator guarantees that.
    pub redirect_to_https: Option<RedirectCode>,
}

/// The HTTPS listener's TLS settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpsFrontend {
    /// Certificates taken from the Ingress's TLS Secrets, in `spec.tls` order, duplicates removed.
    pub certificates: Vec<Certificate>,
    /// Names of certificates that already exist in the cloud and are attached as they are.
    pub pre_shared_certificates: Vec<String>,
    /// Name of an existing cloud SSL policy (minimum TLS version, ciphers) to attach, if any.
    pub ssl_policy: Option<String>,
}

impl HttpsFrontend {
    /// How many certificates the listener carries in all.
    pub fn certificate_count(&self) -> usize {
        self.certificates.len() + self.pre_shared_certificates.len()
    }
}

/// The status code of the HTTP→HTTPS redirect.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RedirectCode {
    /// 301
    #[default]
    MovedPermanently,
    /// 302
    Found,
    /// 303
    SeeOther,
    /// 307
    TemporaryRedirect,
    /// 308
    PermanentRedirect,
}

impl RedirectCode {
    /// The code for an HTTP status, if it is a redirect the load balancer can send.
    pub fn from_status(status: u16) -> Option<Self> {
        Some(match status {
            301 => RedirectCode::MovedPermanently,
            302 => RedirectCode::Found,
            303 => RedirectCode::SeeOther,
            307 => RedirectCode::TemporaryRedirect,
            308 => RedirectCode::PermanentRedirect,
            _ => return None,
        })
    }
}

/// Where the load balancer's IP address comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AddressRequest {
    /// The provider reserves an address for this load balancer (so that the HTTP and HTTPS
    /// listeners share it) and releases it when the load balancer is deleted.
    #[default]
    Ephemeral,
    /// A static address the user reserved, by name. It is used, never created or deleted.
    Static { name: String },
}
