//! Ingress → [`LoadBalancer`]: a pure function of Kubernetes objects, with no I/O.
//!
//! All validation of user input lives here. [`translate`] returns every error at once, each
//! naming the object and the field, so that one Event tells the user everything to fix.
//!
//! The steps, one module each:
//! - [`class`]: whether the Ingress is ours ([`is_ours`]);
//! - [`annotations`]: the Ingress's annotations, strictly parsed;
//! - [`rules`] (with [`hosts`] and [`paths`]): default backend, hosts and paths to the routing
//!   table; [`backends`] (with [`service_settings`]) resolves each backend to a Service port and
//!   builds its [`cloud::model::Backend`]: node port or endpoints (`cloud.google.com/neg`,
//!   [`Config::neg_default`]), and its health check, from [`probes`] (the pods' readiness probe);
//! - [`tls`]: Secrets to certificates; [`frontends`]: listeners, redirect, address, limits.
//!
//! Beside the translation: [`Snapshot`] (in-memory [`Objects`]), [`references()`] (what an
//! Ingress names), [`cluster_nodes`] (Nodes to the cloud's zones and instances) and
//! [`endpoint_plan`] (an endpoint backend's EndpointSlices and Pods to the endpoints the cloud
//! should send traffic to, and the pods whose readiness gate the controller keeps).
//!
//! When translation fails only the errors are returned; warnings are returned with a
//! successful [`Translation`].

mod annotations;
mod backends;
mod class;
mod endpoints;
mod frontends;
mod hosts;
mod limits;
mod nodes;
mod paths;
mod probes;
mod problems;
mod references;
mod rules;
mod service_settings;
mod snapshot;
mod syntax;
#[cfg(test)]
mod tests;
mod tls;

pub use endpoints::{EndpointPlan, GatedPod, NEG_READY_GATE, endpoint_plan};
pub use limits::limit_problems;
pub use nodes::{EXCLUDE_LABEL, LEGACY_ZONE_LABEL, ZONE_LABEL, cluster_nodes};
pub use references::{References, references};
pub use service_settings::{DEFAULT_BACKEND_TIMEOUT_SEC, DEFAULT_CONNECTION_DRAINING_TIMEOUT_SEC};
pub use snapshot::Snapshot;
pub use tls::MAX_CHAIN_LENGTH;

use cloud::model::{LoadBalancer, LoadBalancerKey};
use k8s_openapi::api::core::v1::{Node, Pod, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use serde::Serialize;
use std::fmt;
use std::sync::Arc;

/// The controller's settings that translation depends on.
#[derive(Clone, Debug)]
pub struct Config {
    /// The `spec.controller` of the IngressClasses we serve.
    pub controller_name: String,
    /// The value of the legacy `kubernetes.io/ingress.class` annotation we serve.
    pub legacy_class: String,
    pub limits: Limits,
    /// The current time, for certificate expiry: passed in so translation stays pure.
    pub now: jiff::Timestamp,
    /// Serve Service ports straight at their pods (network endpoint groups) unless the Service
    /// says otherwise with `cloud.google.com/neg` (flag `--neg-default`).
    pub neg_default: bool,
}

/// Default [`Config::controller_name`].
pub const DEFAULT_CONTROLLER_NAME: &str = "cloud-lb-controller.io/gce";
/// Default [`Config::legacy_class`], as ingress-gce.
pub const DEFAULT_LEGACY_CLASS: &str = "gce";

impl Default for Config {
    fn default() -> Self {
        Self {
            controller_name: DEFAULT_CONTROLLER_NAME.to_owned(),
            legacy_class: DEFAULT_LEGACY_CLASS.to_owned(),
            limits: Limits::default(),
            now: jiff::Timestamp::now(),
            neg_default: false,
        }
    }
}

/// Cloud limits checked up front, so the user gets a clear error instead of a cloud refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_host_rules: usize,
    pub max_path_rules_per_host: usize,
    pub max_certificates: usize,
}

/// Google's documented limits for the global external Application Load Balancer (Cloud Load
/// Balancing "Quotas and limits", <https://cloud.google.com/load-balancing/docs/quotas>, URL
/// maps and target proxies sections): 1,000 host rules per URL map, 1,000 path rules per path
/// matcher (one path matcher per host here), 15 SSL certificates per target HTTPS proxy. The
/// URL map's size limit (64 KB for the classic load balancer, see
/// <https://cloud.google.com/load-balancing/docs/url-map-size-quota>) may bind earlier for
/// long host names; the provider reports that one.
impl Default for Limits {
    fn default() -> Self {
        Self {
            max_host_rules: 1000,
            max_path_rules_per_host: 1000,
            max_certificates: 15,
        }
    }
}

/// Read-only views of the objects an Ingress refers to (reflector stores in the controller,
/// a [`Snapshot`] in tests and `plan`).
pub trait Objects {
    fn service(&self, namespace: &str, name: &str) -> Option<Arc<Service>>;
    fn secret(&self, namespace: &str, name: &str) -> Option<Arc<Secret>>;
    fn ingress_classes(&self) -> Vec<Arc<IngressClass>>;
    /// The EndpointSlices of the Service `namespace/service` (label `kubernetes.io/service-name`).
    fn endpoint_slices(&self, namespace: &str, service: &str) -> Vec<Arc<EndpointSlice>>;
    fn pod(&self, namespace: &str, name: &str) -> Option<Arc<Pod>>;
    fn nodes(&self) -> Vec<Arc<Node>>;
}

/// A successful translation.
#[derive(Clone, Debug)]
pub struct Translation {
    pub load_balancer: LoadBalancer,
    /// Things the user should know that do not stop the load balancer from working.
    pub warnings: Vec<Problem>,
    /// Where each backend's health check came from, by backend, in key order.
    pub health_checks: Vec<(cloud::model::BackendKey, HealthCheckOrigin)>,
}

/// Where a backend's health check settings came from (told in a Normal Event when it changes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase", tag = "kind")]
pub enum HealthCheckOrigin {
    /// Our defaults, with the Service's health-check annotations applied; `why_not_probe` says
    /// why the pods' readiness probe was not used, when they have one that could not be.
    Defaults { why_not_probe: Option<String> },
    /// The HTTP(S) readiness probe of this pod's container (`pod` is `namespace/name`), and the
    /// pod's controller (`kind/name`, e.g. `ReplicaSet/web-7d9f`) as the template it stands for.
    ReadinessProbe {
        pod: String,
        container: String,
        template: Option<String>,
    },
}

/// An error or warning about user input.
///
/// Displays as `namespace/name: field: message`, e.g.
/// `default/test: spec.rules[1].http.paths[0].backend.service.port.name: Service default/echo has no port named "htp"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The Ingress, `namespace/name`.
    pub ingress: String,
    /// The field path in the Ingress, starting at `metadata` or `spec`. When the fault lies in
    /// an object the Ingress refers to, this is the referring field and `message` names the
    /// object and its field.
    pub field: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.ingress, self.field, self.message)
    }
}

/// Whether this controller serves the Ingress, per `spec.ingressClassName`, the legacy class
/// annotation, or the default IngressClass.
///
/// See [`class`] for the precedence.
pub fn is_ours(ingress: &Ingress, objects: &dyn Objects, config: &Config) -> bool {
    class::is_ours(ingress, objects, config)
}

/// Translates one Ingress (which [`is_ours`]) into the load balancer it asks for, or every
/// problem that prevents it.
///
/// The output is deterministic: hosts in order of first appearance, paths in Ingress order,
/// backends sorted by key and unique, certificates in `spec.tls` order.
pub fn translate(
    ingress: &Ingress,
    objects: &dyn Objects,
    config: &Config,
) -> Result<Translation, Vec<Problem>> {
    let namespace = ingress.metadata.namespace.as_deref().unwrap_or("default");
    let name = ingress.metadata.name.as_deref().unwrap_or("");
    let mut problems = problems::Problems::new(format!("{namespace}/{name}"));
    if name.is_empty() {
        problems.error("metadata.name", "is required");
    }

    let settings = annotations::parse(ingress, &mut problems);
    let mut backends = backends::Backends::new(objects, namespace, config.neg_default);
    let routes = rules::routing_table(ingress, &mut backends, &config.limits, &mut problems);
    let has_pre_shared = !settings.pre_shared_certs.is_empty();
    let tls = tls::certificates(
        ingress,
        objects,
        namespace,
        config.now,
        has_pre_shared,
        &mut problems,
    );
    let tls_entries = ingress
        .spec
        .as_ref()
        .and_then(|s| s.tls.as_ref())
        .map_or(0, Vec::len);
    let frontends = frontends::frontends(&settings, tls, tls_entries, &config.limits, &mut problems);

    if !problems.errors.is_empty() {
        return Err(problems.errors);
    }
    let uid = ingress.metadata.uid.clone().unwrap_or_default();
    let (backends, health_checks) = backends.into_parts();
    Ok(Translation {
        load_balancer: LoadBalancer {
            key: LoadBalancerKey::new(namespace, name, uid),
            frontends,
            address: frontends::address(&settings),
            routes,
            backends,
        },
        warnings: problems.warnings,
        health_checks,
    })
}
