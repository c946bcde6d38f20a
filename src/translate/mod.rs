//! Ingress → [`LoadBalancer`]: a pure function of Kubernetes objects, with no I/O.
//!
//! All validation of user input lives here. [`translate`] returns every error at once, each
//! naming the object and the field, so that one Event tells the user everything to fix.
//!
//! TODO(translator): implemented in the submodules; see the types below for the contract.

use cloud::model::LoadBalancer;
use k8s_openapi::api::core::v1::{Secret, Service};
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

impl Default for Limits {
    fn default() -> Self {
        Self { max_host_rules: 1000, max_path_rules_per_host: 1000, max_certificates: 15 }
    }
}

/// Read-only views of the objects an Ingress refers to (reflector stores in the controller,
/// a [`Snapshot`] in tests and `plan`).
pub trait Objects {
    fn service(&self, namespace: &str, name: &str) -> Option<Arc<Service>>;
    fn secret(&self, namespace: &str, name: &str) -> Option<Arc<Secret>>;
    fn ingress_classes(&self) -> Vec<Arc<IngressClass>>;
}

/// A successful translation.
#[derive(Clone, Debug)]
pub struct Translation {
    pub load_balancer: LoadBalancer,
    /// Things the user should know that do not stop the load balancer from working.
    pub warnings: Vec<Problem>,
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
pub fn is_ours(ingress: &Ingress, objects: &dyn Objects, config: &Config) -> bool {
    todo!()
}

/// Translates one Ingress (which [`is_ours`]) into the load balancer it asks for, or every
/// problem that prevents it.
pub fn translate(ingress: &Ingress, objects: &dyn Objects, config: &Config) -> Result<Translation, Vec<Problem>> {
    todo!()
}
