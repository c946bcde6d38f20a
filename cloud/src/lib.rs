//! The provider side of cloud-lb-controller, free of any Kubernetes type.
//!
//! ```text
//!   model (what the controller wants)  ──►  Provider::ensure  ──►  cloud resources
//!   LoadBalancer, ClusterInfra              (gce::GceProvider)     + LoadBalancerStatus
//!                                                                     (address, names, warnings)
//! ```
//!
//! - [`model`]: the provider-neutral description of one Ingress's load balancer and of the
//!   cluster-wide infrastructure (nodes by zone, node ports in use).
//! - [`provider`]: the [`Provider`] trait every cloud implements, and the status it returns.
//! - [`error`]: the error type, classified so the controller knows whether to retry.
//! - [`fence`]: the permission to write, which runs out when a replica loses the leader lease.
#![forbid(unsafe_code)]

pub mod error;
pub mod fence;
pub mod gce;
pub mod model;
pub mod provider;

pub use error::{Error, ErrorCategory};
pub use fence::WriteFence;
pub use provider::{
    BackendHealth, EndpointHealth, EndpointSync, InfraStatus, LimitKind, LimitViolation, LoadBalancerStatus,
    Provider, ResourceKind, UnknownHealth,
};
