//! What the controller writes back on the Ingress, computed purely: the state annotation, the
//! annotations naming the cloud resources (ingress-gce's keys), and the status address.

use crate::annotations as keys;
use cloud::{LoadBalancerStatus, ResourceKind};
use k8s_openapi::api::networking::v1::Ingress;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The machine-readable state, in annotation [`keys::STATE`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    /// `Ready`, `Provisioning` or `Error`.
    pub state: String,
    /// CamelCase or a category, e.g. `Synced`, `Creating`, `invalid-spec`, `cloud-user`.
    pub reason: String,
    pub message: String,
    /// The Ingress generation this state describes.
    pub observed_generation: i64,
}

impl State {
    pub fn new(state: &str, reason: &str, message: impl Into<String>, ingress: &Ingress) -> Self {
        Self {
            state: state.to_owned(),
            reason: reason.to_owned(),
            message: message.into(),
            observed_generation: ingress.metadata.generation.unwrap_or(0),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The state currently on the Ingress, if any.
    pub fn of(ingress: &Ingress) -> Option<State> {
        let value = ingress.metadata.annotations.as_ref()?.get(keys::STATE)?;
        serde_json::from_str(value).ok()
    }
}

/// The annotations naming the resources of a load balancer (ingress-gce's keys), plus the state.
/// Keys whose resource does not exist map to `None` (to be removed).
pub fn annotations(status: &LoadBalancerStatus, state: &State) -> BTreeMap<&'static str, Option<String>> {
    let one = |kind| status.names(kind).first().cloned();
    let list = |kind| Some(status.names(kind).join(",")).filter(|s| !s.is_empty());
    let backends: BTreeMap<&str, &str> = status
        .names(ResourceKind::BackendService)
        .iter()
        .map(|n| (n.as_str(), "Unknown"))
        .collect();
    BTreeMap::from([
        (keys::URL_MAP, one(ResourceKind::UrlMap)),
        (keys::REDIRECT_URL_MAP, one(ResourceKind::RedirectUrlMap)),
        (keys::FORWARDING_RULE, one(ResourceKind::HttpForwardingRule)),
        (
            keys::HTTPS_FORWARDING_RULE,
            one(ResourceKind::HttpsForwardingRule),
        ),
        (keys::TARGET_PROXY, one(ResourceKind::TargetHttpProxy)),
        (keys::HTTPS_TARGET_PROXY, one(ResourceKind::TargetHttpsProxy)),
        (keys::SSL_CERT, list(ResourceKind::SslCertificate)),
        (
            keys::BACKENDS,
            Some(serde_json::to_string(&backends).unwrap_or_default()).filter(|_| !backends.is_empty()),
        ),
        (keys::STATE, Some(state.to_json())),
    ])
}

/// Every annotation key the controller writes, for removal when it lets an Ingress go.
pub fn written_keys() -> [&'static str; 9] {
    [
        keys::URL_MAP,
        keys::REDIRECT_URL_MAP,
        keys::FORWARDING_RULE,
        keys::HTTPS_FORWARDING_RULE,
        keys::TARGET_PROXY,
        keys::HTTPS_TARGET_PROXY,
        keys::SSL_CERT,
        keys::BACKENDS,
        keys::STATE,
    ]
}

/// The merge patch that makes the Ingress's annotations match `wanted`, or `None` when they do.
pub fn annotation_patch(
    ingress: &Ingress,
    wanted: &BTreeMap<&'static str, Option<String>>,
) -> Option<serde_json::Value> {
    let current = ingress.metadata.annotations.clone().unwrap_or_default();
    let mut changes = serde_json::Map::new();
    for (key, value) in wanted {
        if current.get(*key) != value.as_ref() {
            changes.insert(
                (*key).to_owned(),
                value
                    .clone()
                    .map_or(serde_json::Value::Null, serde_json::Value::String),
            );
        }
    }
    (!changes.is_empty()).then(|| serde_json::json!({ "metadata": { "annotations": changes } }))
}

/// The addresses in the Ingress's status.
pub fn status_ips(ingress: &Ingress) -> Vec<String> {
    ingress
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .map(|list| list.iter().filter_map(|i| i.ip.clone()).collect())
        .unwrap_or_default()
}

/// The status patch for `ip` (`None` clears the address).
pub fn status_patch(ip: Option<&str>) -> serde_json::Value {
    match ip {
        Some(ip) => serde_json::json!({ "status": { "loadBalancer": { "ingress": [ { "ip": ip } ] } } }),
        None => serde_json::json!({ "status": { "loadBalancer": { "ingress": null } } }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn ingress(annotations: &[(&str, &str)]) -> Ingress {
        Ingress {
            metadata: ObjectMeta {
                generation: Some(3),
                annotations: Some(
                    annotations
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                ),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn status() -> LoadBalancerStatus {
        let mut s = LoadBalancerStatus {
            address: "1.2.3.4".into(),
            ..Default::default()
        };
        s.resources.insert(ResourceKind::UrlMap, vec!["um".into()]);
        s.resources
            .insert(ResourceKind::HttpForwardingRule, vec!["fr".into()]);
        s.resources
            .insert(ResourceKind::SslCertificate, vec!["c1".into(), "c2".into()]);
        s.resources
            .insert(ResourceKind::BackendService, vec!["be".into()]);
        s
    }

    #[test]
    fn annotations_name_resources_and_drop_missing_ones() {
        let ing = ingress(&[(keys::HTTPS_FORWARDING_RULE, "old"), ("user/key", "kept")]);
        let state = State::new("Ready", "Synced", "ok", &ing);
        let wanted = annotations(&status(), &state);
        let patch = annotation_patch(&ing, &wanted).unwrap();
        let a = &patch["metadata"]["annotations"];
        assert_eq!(a[keys::URL_MAP], "um");
        assert_eq!(a[keys::FORWARDING_RULE], "fr");
        assert_eq!(a[keys::SSL_CERT], "c1,c2");
        assert_eq!(a[keys::BACKENDS], r#"{"be":"Unknown"}"#);
        assert!(a[keys::HTTPS_FORWARDING_RULE].is_null());
        assert!(a.get("user/key").is_none());
        assert!(
            a.get(keys::TARGET_PROXY).is_none(),
            "absent and unwanted: no patch entry"
        );
        let st: State = serde_json::from_str(a[keys::STATE].as_str().unwrap()).unwrap();
        assert_eq!(st.observed_generation, 3);
    }

    #[test]
    fn no_patch_when_annotations_match() {
        let ing = ingress(&[]);
        let state = State::new("Ready", "Synced", "ok", &ing);
        let wanted = annotations(&status(), &state);
        let pairs: Vec<(String, String)> = wanted
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| ((*k).to_owned(), v)))
            .collect();
        let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(annotation_patch(&ingress(&refs), &wanted), None);
    }
}
