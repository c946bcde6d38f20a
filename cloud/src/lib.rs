//! The provider side of cloud-lb-controller, free of any Kubernetes type.
//!
//! ```text
//!   model (what the controller wants)  ──►  Provider::ensure  ──►  cloud resources
//!   LoadBalancer, ClusterInfra              (gce::GceProvider,     + LoadBalancerStatus
//!                                            memory::MemoryProvider)  (address, names, warnings)
//! ```
//!
//! - [`model`]: the provider-neutral description of one Ingress's load balancer and of the
//!   cluster-wide infrastructure (nodes by zone, node ports in use).
//! - [`provider`]: the [`Provider`] trait every cloud implements, and the status it returns.
//! - [`error`]: the error type, classified so the controller knows whether to retry.
#![forbid(unsafe_code)]

pub mod error;
pub mod gce;
pub mod memory;
pub mod model;
pub mod provider;

pub use error::{Error, ErrorCategory};
pub use provider::{InfraStatus, LoadBalancerStatus, Provider, ResourceKind};
