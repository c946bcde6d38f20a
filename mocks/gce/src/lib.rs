//! fake-gce (docs to come)
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod admin;
mod config;
mod errors;
mod faults;
mod filter;
mod http;
mod ids;
mod json;
mod kinds;
mod list;
mod metadata;
mod mutation;
mod operations;
mod ratelimit;
mod reads;
mod resources;
mod routes;
mod server;
mod state;
mod stats;
mod store;

pub use config::{Config, InstanceSeed, Latency, UrlMapLimits};
pub use errors::ApiError;
pub use faults::{FaultAction, FaultError, FaultRule, FaultStatus};
pub use ratelimit::RateLimit;
pub use server::{FakeGce, StartError};
pub use state::ConfigError;
pub use stats::{Category, Counts, OperationCounts, Rejected, Stats};
