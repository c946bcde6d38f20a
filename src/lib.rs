//! cloud-lb-controller: gives every Ingress a cloud HTTP(S) load balancer and writes its IP back.
//!
//! ```text
//!  watch (kube-rs)        translate (pure)            provider (crate `cloud`)        status
//!  Ingress, Service, ──►  Ingress + Services +  ──►   model ─► cloud resources  ──►   Ingress IP,
//!  Secret, Node,          Secrets + classes ─►        diff, apply in dependency       annotations,
//!  IngressClass           LoadBalancer or errors      order, parallel branches        Events
//! ```
//!
//! - [`translate`]: Kubernetes objects to the provider-neutral [`cloud::model`]; all validation
//!   of user input lives there.
//! - [`controller`]: watches, reconcile, finalizer, status, Events, garbage collection.
//! - [`annotations`]: the annotation keys the controller reads and writes.
//! - [`cli`], [`run`], [`plan`], [`sandbox`]: the commands ([`manifests`] reads YAML for them).
//! - [`leader`], [`cluster_uid`], [`telemetry`]: what a production controller needs around the loop.
#![forbid(unsafe_code)]

pub mod annotations;
pub mod cli;
pub mod cluster_uid;
pub mod controller;
pub mod leader;
pub mod manifests;
pub mod plan;
pub mod run;
pub mod sandbox;
pub mod telemetry;
pub mod translate;

/// Installs rustls's ring provider as the process default. kube, reqwest and gcp_auth all use
/// rustls; the first client built without a default panics. Calling it twice is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
