//! The cluster-wide part: the nodes the load balancers send traffic through.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// What every load balancer of the cluster shares: the nodes (grouped by zone in the cloud) and
/// the node ports that must be reachable from the load balancer and its health checkers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterInfra {
    /// Sorted by zone, then name.
    pub nodes: Vec<Node>,
    /// The node ports the load balancers about to be built or changed need. A provider also
    /// keeps every port its existing load balancers still use, as it reads them from the cloud.
    pub node_ports: BTreeSet<u16>,
    /// The pod ports endpoint backends send traffic to (the firewall must let the load balancer
    /// and its health checkers reach them). With only endpoint backends, no node group is
    /// needed, yet the zones of `nodes` still are: endpoint groups are zonal.
    #[serde(default)]
    pub endpoint_ports: BTreeSet<u16>,
}

impl ClusterInfra {
    /// The zones that hold at least one node, sorted, each once.
    pub fn zones(&self) -> Vec<&str> {
        let mut zones: Vec<&str> = self.nodes.iter().map(|n| n.zone.as_str()).collect();
        zones.sort_unstable();
        zones.dedup();
        zones
    }
}

/// One node, as the cloud knows it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Node {
    pub zone: String,
    /// The Kubernetes node name.
    pub name: String,
    /// The cloud's name for the VM (from `spec.providerID`).
    pub instance: String,
}
