//! Logs, metrics, and the admin HTTP server (`/healthz`, `/readyz`, `/metrics`).

pub mod admin;
pub mod liveness;
pub mod logging;
pub mod metrics;
