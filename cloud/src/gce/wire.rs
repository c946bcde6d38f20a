//! The Compute API's JSON shapes, for the fields this provider manages.
//!
//! Every resource keeps the fields it does not model in `extra`, so that an update (PUT) sends
//! back what the server or a user set, and nothing is lost. Output-only fields (`id`,
//! `selfLink`, `creationTimestamp`, `kind`) travel in `extra` too; the API ignores them on input.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Common to every resource: a name, a description (our ownership record) and what we don't model.
pub trait Resource: Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + 'static {
    fn name(&self) -> &str;
    fn description(&self) -> &str;
    /// What a snapshot keys it by: its name, unique among global resources of its kind.
    fn key(&self) -> String {
        self.name().to_owned()
    }
}

macro_rules! resource {
    ($($ty:ty),* $(,)?) => {$(
        impl Resource for $ty {
            fn name(&self) -> &str { &self.name }
            fn description(&self) -> &str { &self.description }
        }
    )*};
}

resource!(
    Address,
    HealthCheck,
    BackendService,
    UrlMap,
    TargetHttpProxy,
    TargetHttpsProxy,
    SslCertificate,
    ForwardingRule,
    InstanceGroup,
    Firewall
);

impl Resource for NetworkEndpointGroup {
    fn name(&self) -> &str {
        &self.name
    }
    fn description(&self) -> &str {
        &self.description
    }
    /// NEGs of one name live in several zones: `zone/name`.
    fn key(&self) -> String {
        let zone = self
            .zone
            .as_deref()
            .map(super::links::name_of)
            .unwrap_or_default();
        format!("{zone}/{}", self.name)
    }
}

/// A global address.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The IP, set by the server when omitted on insert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_version: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A global health check.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_interval_sec: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_sec: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_threshold: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unhealthy_threshold: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_health_check: Option<HttpProbe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https_health_check: Option<HttpProbe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http2_health_check: Option<HttpProbe>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl HealthCheck {
    /// The probe settings of the health check's type.
    pub fn probe(&self) -> Option<&HttpProbe> {
        match self.kind.as_str() {
            "HTTP" => self.http_health_check.as_ref(),
            "HTTPS" => self.https_health_check.as_ref(),
            "HTTP2" => self.http2_health_check.as_ref(),
            _ => None,
        }
    }
}

/// The HTTP, HTTPS or HTTP/2 part of a health check.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpProbe {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_specification: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A global backend service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendService {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_sec: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health_checks: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backends: Vec<BackendGroup>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_draining: Option<ConnectionDraining>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancing_scheme: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One instance group or network endpoint group behind a backend service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendGroup {
    pub group: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balancing_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_scaler: Option<f64>,
    /// With `balancingMode: RATE` on a NEG: the requests per second each endpoint takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rate_per_endpoint: Option<f64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionDraining {
    #[serde(default)]
    pub draining_timeout_sec: u32,
}

/// A global URL map.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UrlMap {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_url_redirect: Option<UrlRedirect>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_rules: Vec<HostRule>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path_matchers: Vec<PathMatcher>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UrlRedirect {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https_redirect: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_response_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strip_query: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostRule {
    pub hosts: Vec<String>,
    pub path_matcher: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PathMatcher {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_service: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path_rules: Vec<PathRule>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PathRule {
    pub paths: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A global target HTTP proxy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetHttpProxy {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub url_map: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A global target HTTPS proxy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetHttpsProxy {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub url_map: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ssl_certificates: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_policy: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A global SSL certificate (immutable once created). Its `Debug` form never shows the key.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SslCertificate {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// Write-only: sent on insert, never returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl std::fmt::Debug for SslCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SslCertificate")
            .field("name", &self.name)
            .field("description", &self.description)
            .field("certificate", &self.certificate.as_ref().map(|_| "<PEM>"))
            .field("private_key", &self.private_key.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// A global forwarding rule.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ForwardingRule {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// On insert, the address's link; read back as the numeric IP.
    #[serde(rename = "IPAddress", default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    #[serde(rename = "IPProtocol", default, skip_serializing_if = "Option::is_none")]
    pub ip_protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_range: Option<String>,
    #[serde(default)]
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancing_scheme: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A zonal unmanaged instance group.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceGroup {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub named_ports: Vec<NamedPort>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A zonal network endpoint group (`GCE_VM_IP_PORT`: pod IP and port on a node VM).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkEndpointGroup {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_endpoint_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Output only: the zone's link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One endpoint of a `GCE_VM_IP_PORT` NEG, as attach, detach and list carry it.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkEndpoint {
    /// The VM's name (reads may give its link).
    #[serde(default)]
    pub instance: String,
    #[serde(default)]
    pub ip_address: String,
    #[serde(default)]
    pub port: u16,
}

/// An item of `networkEndpointGroups.listNetworkEndpoints`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkEndpointWithHealthStatus {
    pub network_endpoint: NetworkEndpoint,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NamedPort {
    pub name: String,
    pub port: u16,
}

/// An item of `instanceGroups.listInstances`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceWithNamedPorts {
    pub instance: String,
}

/// A VPC firewall rule.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Firewall {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_ranges: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed: Vec<FirewallAllowed>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FirewallAllowed {
    #[serde(rename = "IPProtocol")]
    pub ip_protocol: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<String>,
}

/// A long-running operation, returned by every mutation.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub status: String,
    /// Link to the zone, for zonal operations.
    #[serde(default)]
    pub zone: Option<String>,
    /// The operation's own link (it names the project and the scope).
    #[serde(default)]
    pub self_link: Option<String>,
    #[serde(default)]
    pub error: Option<OperationErrors>,
    #[serde(default)]
    pub http_error_status_code: Option<u16>,
    #[serde(default)]
    pub http_error_message: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct OperationErrors {
    #[serde(default)]
    pub errors: Vec<OperationError>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct OperationError {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}

/// The body of a synchronous error response.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct ErrorDetail {
    #[serde(default)]
    pub code: u16,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub errors: Vec<ErrorItem>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct ErrorItem {
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub message: String,
}

/// A page of a list.
#[derive(Clone, Debug, Deserialize)]
#[serde(
    rename_all = "camelCase",
    bound(deserialize = "T: serde::de::DeserializeOwned")
)]
pub struct ListPage<T> {
    #[serde(default = "Vec::new")]
    pub items: Vec<T>,
    #[serde(default)]
    pub next_page_token: Option<String>,
}

/// The answer of `backendServices.getHealth` for one group: one status per instance (or
/// endpoint); `healthStatus` is absent when the group is empty.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendServiceGroupHealth {
    #[serde(default)]
    pub health_status: Vec<HealthStatus>,
}

/// One instance's health, as the backend service's health checks see it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthStatus {
    #[serde(default)]
    pub instance: Option<String>,
    /// The member's IP (an endpoint's pod IP).
    #[serde(default)]
    pub ip_address: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    /// `HEALTHY` or `UNHEALTHY` (anything else counts as not healthy).
    #[serde(default)]
    pub health_state: Option<String>,
}
