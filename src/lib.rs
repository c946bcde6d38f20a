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
//! - [`annotations`]: the annotation keys the controller reads and writes.
#![forbid(unsafe_code)]

pub mod annotations;
pub mod translate;
