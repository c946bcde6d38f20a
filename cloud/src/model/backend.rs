//! Backends: a Service port, reached through the cluster's node port or straight at its pods.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A Service port, the unit that cloud backends are shared by: every Ingress routing to the same
/// Service port uses the same cloud backend.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BackendKey {
    pub namespace: String,
    pub service: String,
    /// The Service's `spec.ports[].port` (named ports are resolved by the translator).
    pub port: u16,
}

impl BackendKey {
    pub fn new(namespace: impl Into<String>, service: impl Into<String>, port: u16) -> Self {
        Self {
            namespace: namespace.into(),
            service: service.into(),
            port,
        }
    }
}

impl fmt::Display for BackendKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}:{}", self.namespace, self.service, self.port)
    }
}

/// How the load balancer reaches one Service port and checks its health.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backend {
    pub key: BackendKey,
    /// Where the load balancer sends this Service port's traffic.
    pub target: BackendTarget,
    pub protocol: BackendProtocol,
    pub health_check: HealthCheck,
    /// How long the load balancer waits for the backend to answer a request.
    pub timeout_sec: u32,
    /// How long existing connections may finish when a node leaves; 0 disables draining.
    pub connection_draining_timeout_sec: u32,
}

impl Backend {
    /// The node port traffic goes through, for a [`BackendTarget::NodePort`] backend.
    pub fn node_port(&self) -> Option<u16> {
        match self.target {
            BackendTarget::NodePort { node_port } => Some(node_port),
            BackendTarget::Endpoints => None,
        }
    }
}

/// How the load balancer reaches the pods of a Service port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum BackendTarget {
    /// Through every node, on the port each node forwards to the Service
    /// (`spec.ports[].nodePort`); the cloud groups the nodes (instance groups on GCE).
    #[serde(rename_all = "camelCase")]
    NodePort { node_port: u16 },
    /// Straight to the pods serving the Service port (container-native load balancing; network
    /// endpoint groups on GCE). Which pods is not part of the load balancer: it changes with
    /// every rollout, so it travels separately as an [`crate::model::EndpointSet`], given to
    /// [`crate::Provider::sync_endpoints`].
    Endpoints,
}

/// The protocol between the load balancer and the backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum BackendProtocol {
    #[default]
    Http,
    Https,
    /// HTTP/2 over TLS.
    Http2,
}

impl BackendProtocol {
    /// The upper-case name used by Kubernetes annotations and most cloud APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendProtocol::Http => "HTTP",
            BackendProtocol::Https => "HTTPS",
            BackendProtocol::Http2 => "HTTP2",
        }
    }
}

/// How the load balancer probes a backend. The probe uses the backend's protocol.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    /// Request path, starting with `/`.
    pub path: String,
    /// The port probed; `None` probes the serving port (the node port, or each endpoint's port).
    pub port: Option<u16>,
    /// `Host` header to send; `None` sends the backend's address.
    pub host: Option<String>,
    pub check_interval_sec: u32,
    /// At most `check_interval_sec`.
    pub timeout_sec: u32,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
}

impl Default for HealthCheck {
    /// Probe `/` on the serving port every 15 s (the node port is probed through every node,
    /// so a short interval multiplies into real load), 5 s timeout, healthy after one success,
    /// unhealthy after three failures: a dead backend is out within 45 s.
    fn default() -> Self {
        Self {
            path: "/".to_owned(),
            port: None,
            host: None,
            check_interval_sec: 15,
            timeout_sec: 5,
            healthy_threshold: 1,
            unhealthy_threshold: 3,
        }
    }
}
