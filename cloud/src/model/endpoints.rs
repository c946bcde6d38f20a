//! Endpoints: the pods a [`super::BackendTarget::Endpoints`] backend sends traffic to.

use super::BackendKey;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// The endpoints one Service port should be served by, right now: the whole set, not a change.
///
/// Built by the controller from the Service's EndpointSlices and pods (only endpoints that may
/// receive traffic: ready, or waiting only for the load balancer's own readiness gate; never
/// terminating ones), given to [`crate::Provider::sync_endpoints`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointSet {
    pub key: BackendKey,
    /// Sorted and unique (a set); at most one endpoint per IP.
    pub endpoints: BTreeSet<Endpoint>,
}

/// One pod's serving address, and the VM it runs on (the cloud attaches endpoints to VMs).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Endpoint {
    /// The zone of the node the pod runs on.
    pub zone: String,
    /// The cloud's name for the node's VM (from the Node's `spec.providerID`).
    pub instance: String,
    /// The pod's IP address.
    pub ip: String,
    /// The container port the Service port targets, resolved for this pod.
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.ip, self.port)
    }
}
