//! The endpoints of an endpoint backend ([`BackendTarget::Endpoints`]): EndpointSlices and
//! Pods to the [`EndpointSet`] the cloud should send traffic to, and the pods whose
//! load-balancer readiness gate the controller keeps.
//!
//! [`BackendTarget::Endpoints`]: cloud::model::BackendTarget::Endpoints

use super::Objects;
use cloud::model::{BackendKey, Endpoint, EndpointSet, Node as CloudNode};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::{Endpoint as SliceEndpoint, EndpointSlice};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

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
    /// Its endpoint for this Service port. When its node is not among the cluster's load-balancer
    /// nodes (then it is never attached), `instance` is empty and `zone` is the EndpointSlice's
    /// `zone` or empty: the controller still sees the pod, e.g. to give up waiting for it.
    pub endpoint: Endpoint,
    /// Whether the endpoint is in [`EndpointPlan::set`] (it may take traffic).
    pub attached: bool,
    /// The pod's current [`NEG_READY_GATE`] condition status: `Some(true)` when `True`.
    pub condition: Option<bool>,
}

/// The endpoints of the Service port `key`, from its EndpointSlices (label
/// `kubernetes.io/service-name`), its pods and the cluster's nodes (for zone and instance).
///
/// - Slices: `addressType: IPv4` only (the load balancer's endpoint groups take IPv4 pod
///   addresses); the slice port whose `name` is the Service port's name (empty for an unnamed
///   port) gives the endpoint's port: the Service port's `targetPort`, resolved for those pods.
///   The first address of each endpoint is used (the API says they are fungible).
/// - An endpoint is attached when it is not terminating (`conditions.terminating` is not true
///   and its pod, if known, has no `deletionTimestamp`) and either `conditions.ready` is true
///   (absent counts as true, as the EndpointSlice API says) or its pod carries
///   [`NEG_READY_GATE`] and its `ContainersReady` condition is `True`: such a pod is not Ready
///   until the controller sets the gate, which it does once the load balancer serves it, so
///   waiting for Ready would wait forever.
/// - Zone and instance come from the endpoint's `nodeName` among `nodes` (what
///   [`super::cluster_nodes`] returned); an endpoint on another node (excluded from load
///   balancers, no zone, not yet known) is left out, with a note.
/// - One endpoint per IP: during an update several slices can list the same address; an
///   attachable listing wins over one that is not, else the first slice by name.
pub fn endpoint_plan(key: &BackendKey, objects: &dyn Objects, nodes: &[CloudNode]) -> EndpointPlan {
    let mut plan = EndpointPlan {
        set: EndpointSet {
            key: key.clone(),
            endpoints: BTreeSet::new(),
        },
        gated: Vec::new(),
        notes: Vec::new(),
    };
    let service = objects.service(&key.namespace, &key.service);
    let port_name = service
        .as_ref()
        .and_then(|s| s.spec.as_ref())
        .and_then(|s| s.ports.as_deref())
        .unwrap_or_default()
        .iter()
        .find(|p| p.port == i32::from(key.port))
        .map(|p| p.name.clone().unwrap_or_default());
    let Some(port_name) = port_name else {
        plan.notes.push(match service {
            None => format!("Service {}/{} not found", key.namespace, key.service),
            Some(_) => format!(
                "Service {}/{} has no port {}",
                key.namespace, key.service, key.port
            ),
        });
        return plan;
    };

    let mut slices = objects.endpoint_slices(&key.namespace, &key.service);
    slices.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut by_ip: BTreeMap<String, Candidate> = BTreeMap::new();
    for slice in &slices {
        for candidate in candidates(slice, &port_name, key, objects, nodes) {
            match by_ip.get(&candidate.endpoint.ip) {
                Some(kept) if kept.attachable() || !candidate.attachable() => {}
                _ => {
                    by_ip.insert(candidate.endpoint.ip.clone(), candidate);
                }
            }
        }
    }

    for candidate in by_ip.into_values() {
        let attached = candidate.attachable();
        if let Some(note) = candidate.note {
            plan.notes.push(note);
        }
        if attached {
            plan.set.endpoints.insert(candidate.endpoint.clone());
        }
        if let Some(pod) = candidate.pod.filter(|p| has_gate(p)) {
            plan.gated.push(GatedPod {
                namespace: pod
                    .metadata
                    .namespace
                    .clone()
                    .unwrap_or_else(|| key.namespace.clone()),
                name: pod.metadata.name.clone().unwrap_or_default(),
                endpoint: candidate.endpoint,
                attached,
                condition: condition(&pod, NEG_READY_GATE),
            });
        }
    }
    plan.gated
        .sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    plan.gated
        .dedup_by(|a, b| (&a.namespace, &a.name) == (&b.namespace, &b.name));
    plan
}

/// One endpoint listing of one slice.
struct Candidate {
    endpoint: Endpoint,
    pod: Option<Arc<Pod>>,
    /// Not terminating, and ready or held only by the load balancer's gate.
    may_serve: bool,
    /// Its node is one of the load balancer's.
    on_known_node: bool,
    /// Why it is left out, when that is worth telling.
    note: Option<String>,
}

impl Candidate {
    fn attachable(&self) -> bool {
        self.may_serve && self.on_known_node
    }
}

/// The endpoints of one slice for the Service port named `port_name`.
fn candidates(
    slice: &EndpointSlice,
    port_name: &str,
    key: &BackendKey,
    objects: &dyn Objects,
    nodes: &[CloudNode],
) -> Vec<Candidate> {
    if slice.address_type != "IPv4" {
        return Vec::new();
    }
    let port = slice
        .ports
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|p| p.name.as_deref().unwrap_or_default() == port_name)
        .and_then(|p| p.port)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0);
    let Some(port) = port else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for endpoint in &slice.endpoints {
        let Some(ip) = endpoint.addresses.first() else {
            continue;
        };
        let pod = endpoint
            .target_ref
            .as_ref()
            .filter(|r| r.kind.as_deref() == Some("Pod"))
            .and_then(|r| {
                let namespace = r.namespace.as_deref().unwrap_or(&key.namespace);
                objects.pod(namespace, r.name.as_deref()?)
            });
        let may_serve = may_serve(endpoint, pod.as_deref());

        let node_name = endpoint.node_name.as_deref().unwrap_or_default();
        let node = nodes.iter().find(|n| n.name == node_name);
        let who = match &pod {
            Some(p) => format!(
                "{ip}:{port} (pod {}/{})",
                p.metadata.namespace.as_deref().unwrap_or(&key.namespace),
                p.metadata.name.as_deref().unwrap_or_default()
            ),
            None => format!("{ip}:{port}"),
        };
        let note = match (node, may_serve) {
            (None, true) if node_name.is_empty() => {
                Some(format!("endpoint {who} of {key} names no node; it is left out"))
            }
            (None, true) => Some(format!(
                "endpoint {who} of {key} is on node {node_name:?}, which is not one of the load \
                 balancer's nodes (excluded, without a zone, or not known yet); it is left out"
            )),
            _ => None,
        };
        let (zone, instance) = match node {
            Some(n) => (n.zone.clone(), n.instance.clone()),
            None => (endpoint.zone.clone().unwrap_or_default(), String::new()),
        };
        out.push(Candidate {
            endpoint: Endpoint {
                zone,
                instance,
                ip: ip.clone(),
                port,
            },
            pod,
            may_serve,
            on_known_node: node.is_some(),
            note,
        });
    }
    out
}

/// Whether an EndpointSlice endpoint (of `pod`, when known) may take traffic: it is not
/// terminating (`conditions.terminating` is not true and the pod has no `deletionTimestamp`),
/// and either `conditions.ready` is true (absent counts as true) or the pod carries
/// [`NEG_READY_GATE`] and its `ContainersReady` condition is `True` (held only by the gate).
pub(crate) fn may_serve(endpoint: &SliceEndpoint, pod: Option<&Pod>) -> bool {
    let conditions = endpoint.conditions.as_ref();
    let terminating = conditions.and_then(|c| c.terminating) == Some(true)
        || pod.is_some_and(|p| p.metadata.deletion_timestamp.is_some());
    let ready = conditions.and_then(|c| c.ready).unwrap_or(true);
    let held_by_gate = pod.is_some_and(|p| has_gate(p) && condition(p, "ContainersReady") == Some(true));
    !terminating && (ready || held_by_gate)
}

/// Whether the pod lists [`NEG_READY_GATE`] in `spec.readinessGates`.
fn has_gate(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.readiness_gates.as_deref())
        .unwrap_or_default()
        .iter()
        .any(|g| g.condition_type == NEG_READY_GATE)
}

/// The status of the pod condition `kind`: `Some(true)` when `True`, `None` when absent.
fn condition(pod: &Pod, kind: &str) -> Option<bool> {
    pod.status
        .as_ref()?
        .conditions
        .as_deref()?
        .iter()
        .find(|c| c.type_ == kind)
        .map(|c| c.status == "True")
}
