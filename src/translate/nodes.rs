//! Kubernetes Nodes to the cloud's view of them: zone and VM instance.

use cloud::model::Node as CloudNode;
use k8s_openapi::api::core::v1::Node;

/// Nodes carrying this label (any value) take no load-balancer traffic, as Kubernetes defines.
pub const EXCLUDE_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";
/// The well-known zone label.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
/// Its deprecated predecessor, still set on older nodes.
pub const LEGACY_ZONE_LABEL: &str = "failure-domain.beta.kubernetes.io/zone";

/// The nodes load balancers send traffic through, sorted by zone then name, and warnings about
/// nodes left out.
///
/// Zone and instance come from `spec.providerID` (`gce://PROJECT/ZONE/INSTANCE`); without it
/// (or in another form) the zone comes from the zone labels and the instance is the node name.
/// Nodes labelled [`EXCLUDE_LABEL`] are skipped silently (that is the label's purpose); nodes
/// with no zone are skipped with a warning, since the cloud groups instances by zone.
pub fn cluster_nodes(nodes: &[Node]) -> (Vec<CloudNode>, Vec<String>) {
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    for node in nodes {
        let name = node.metadata.name.clone().unwrap_or_default();
        let labels = node.metadata.labels.as_ref();
        let label = |key: &str| labels.and_then(|l| l.get(key)).filter(|v| !v.is_empty()).cloned();
        if labels.is_some_and(|l| l.contains_key(EXCLUDE_LABEL)) {
            continue;
        }
        let from_provider = node
            .spec
            .as_ref()
            .and_then(|s| s.provider_id.as_deref())
            .and_then(parse_provider_id);
        let (zone, instance) = match from_provider {
            Some((zone, instance)) => (Some(zone), instance),
            None => (
                label(ZONE_LABEL).or_else(|| label(LEGACY_ZONE_LABEL)),
                name.clone(),
            ),
        };
        let Some(zone) = zone else {
            warnings.push(format!(
                "Node {name:?} has no zone (no gce:// providerID and no {ZONE_LABEL} label); it takes no \
                 load-balancer traffic"
            ));
            continue;
        };
        out.push(CloudNode { zone, name, instance });
    }
    out.sort();
    (out, warnings)
}

/// `gce://PROJECT/ZONE/INSTANCE` to (zone, instance).
fn parse_provider_id(id: &str) -> Option<(String, String)> {
    let rest = id.strip_prefix("gce://")?;
    let mut parts = rest.split('/');
    let (project, zone, instance) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || project.is_empty() || zone.is_empty() || instance.is_empty() {
        return None;
    }
    Some((zone.to_owned(), instance.to_owned()))
}
