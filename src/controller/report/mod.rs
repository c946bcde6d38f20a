//! What the controller writes back on the Ingress, computed purely: the state annotation, the
//! annotations naming the cloud resources (ingress-gce's keys) and the health of the backends,
//! and the status address. What of the backends' health is shown and told (their annotation,
//! `Degraded`, the Events) is in [`health`].

pub mod endpoints;
pub mod health;

pub use health::{
    BackendReport, Shown, backend_reports, backends_annotation, health_transition, serving_state,
    told_unhealthy, unhealthy_shown,
};

use crate::annotations as keys;
use crate::translate;
use cloud::{LoadBalancerStatus, ResourceKind};
use k8s_openapi::api::networking::v1::Ingress;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The longest state message written; a longer one is cut, saying how much was left out, so
/// that the annotation (and the Ingress's 256 KiB of annotations) stays within bounds whatever
/// the input quoted in it.
pub const MAX_MESSAGE: usize = 2048;

/// The machine-readable state, in annotation [`keys::STATE`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    /// `Ready`, `Degraded` (serving, but something around it is wrong), `Provisioning` or `Error`.
    pub state: String,
    /// CamelCase or a category, e.g. `Synced`, `Creating`, `invalid-spec`, `cloud-user`.
    pub reason: String,
    /// At most [`MAX_MESSAGE`] bytes.
    pub message: String,
    /// The Ingress generation this state describes.
    pub observed_generation: i64,
    /// A digest of every input this state judged: the spec, the annotations, and the Services,
    /// Secrets and IngressClasses it uses (their resource versions). Annotation edits and
    /// changes of a Service or Secret do not bump the generation; this changes with each of them.
    #[serde(default)]
    pub observed_inputs: String,
    /// The controller that wrote it (`spec.controller` of its IngressClass).
    #[serde(default)]
    pub controller: String,
    /// The address the load balancer serves at, when it serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Where each backend's health check comes from, as last told in an Event (backend →
    /// digest, see [`endpoints::origin_digest`]); backends using the plain defaults are absent.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub health_checks: BTreeMap<String, String>,
}

/// What a state is about: the inputs judged and the controller judging them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    pub generation: i64,
    pub inputs: String,
    pub controller: String,
}

impl Observed {
    /// The inputs of `ingress` as `objects` hold them now.
    pub fn of(ingress: &Ingress, objects: &dyn translate::Objects, controller: &str) -> Self {
        Self {
            generation: ingress.metadata.generation.unwrap_or(0),
            inputs: inputs_digest(ingress, objects),
            controller: controller.to_owned(),
        }
    }
}

impl State {
    pub fn new(state: &str, reason: &str, message: impl AsRef<str>, observed: &Observed) -> Self {
        Self {
            state: state.to_owned(),
            reason: reason.to_owned(),
            message: bounded(message.as_ref(), MAX_MESSAGE).into_owned(),
            observed_generation: observed.generation,
            observed_inputs: observed.inputs.clone(),
            controller: observed.controller.clone(),
            address: None,
            health_checks: BTreeMap::new(),
        }
    }

    /// The same, remembering these health-check origins.
    pub fn told(mut self, health_checks: BTreeMap<String, String>) -> Self {
        self.health_checks = health_checks;
        self
    }

    /// The same, remembering the health-check origins `ingress`'s state remembers (a state
    /// written between two reports must not make the next one tell them again).
    pub fn carrying(self, ingress: &Ingress) -> Self {
        let told = State::of(ingress).map(|s| s.health_checks).unwrap_or_default();
        self.told(told)
    }

    /// The same, serving at `address`.
    pub fn at(mut self, address: &str) -> Self {
        self.address = Some(address.to_owned());
        self
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The state currently on the Ingress, if any.
    pub fn of(ingress: &Ingress) -> Option<State> {
        let value = ingress.metadata.annotations.as_ref()?.get(keys::STATE)?;
        serde_json::from_str(value).ok()
    }

    /// Whether `controller` wrote it. A state from before states named their controller was
    /// written by the default one.
    pub fn written_by(&self, controller: &str) -> bool {
        if self.controller.is_empty() {
            controller == translate::DEFAULT_CONTROLLER_NAME
        } else {
            self.controller == controller
        }
    }
}

/// `text`, or, when longer than `max` bytes, as much of it as fits with
/// `…(N more characters)` at the end, the whole within `max` bytes.
pub fn bounded(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return std::borrow::Cow::Borrowed(text);
    }
    let total = text.chars().count();
    // The suffix is at most this long (N has at most 20 digits).
    let room = max.saturating_sub("…( more characters)".len() + 20);
    let mut end = room.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let kept = &text[..end];
    let left_out = total - kept.chars().count();
    std::borrow::Cow::Owned(format!("{kept}…({left_out} more characters)"))
}

/// A digest of the inputs of the translation of `ingress`: generation, annotations (except the
/// ones this controller writes), and the resource versions of the Services and Secrets it names
/// and of the IngressClasses that decide whether it is ours. 16 hex digits.
pub fn inputs_digest(ingress: &Ingress, objects: &dyn translate::Objects) -> String {
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    let mut add = |part: &str| {
        hash.update(part.len().to_le_bytes());
        hash.update(part.as_bytes());
    };
    add(&ingress.metadata.generation.unwrap_or(0).to_string());
    let written = written_keys();
    for (key, value) in ingress.metadata.annotations.iter().flatten() {
        if !written.contains(&key.as_str()) {
            add(key);
            add(value);
        }
    }
    let version = |meta: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>| {
        meta.and_then(|m| m.resource_version.clone())
            .unwrap_or_else(|| "-".to_owned())
    };
    let refs = translate::references(ingress);
    for (namespace, name) in &refs.services {
        add("service");
        add(&version(
            objects.service(namespace, name).as_deref().map(|s| &s.metadata),
        ));
    }
    for (namespace, name) in &refs.secrets {
        add("secret");
        add(&version(
            objects.secret(namespace, name).as_deref().map(|s| &s.metadata),
        ));
    }
    // The IngressClasses that decide whether the Ingress is ours: the one it names, or, when it
    // names none, the default ones. An edit of any other class is no news to it.
    let named = ingress
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.as_deref())
        .filter(|n| !n.is_empty());
    let relevant = |c: &k8s_openapi::api::networking::v1::IngressClass| match named {
        Some(name) => c.metadata.name.as_deref() == Some(name),
        None => c
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(keys::DEFAULT_CLASS))
            .is_some_and(|v| v == "true"),
    };
    let mut classes: Vec<(String, String)> = objects
        .ingress_classes()
        .iter()
        .filter(|c| relevant(c))
        .map(|c| {
            (
                c.metadata.name.clone().unwrap_or_default(),
                version(Some(&c.metadata)),
            )
        })
        .collect();
    classes.sort();
    for (name, v) in classes {
        add(&name);
        add(&v);
    }
    hash.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The annotations naming the resources of a load balancer (ingress-gce's keys), with the
/// health of its backends, plus the state. Keys whose resource does not exist map to `None`
/// (to be removed).
pub fn annotations(
    status: &LoadBalancerStatus,
    backends: &[BackendReport],
    state: &State,
) -> BTreeMap<&'static str, Option<String>> {
    let one = |kind| status.names(kind).first().cloned();
    let list = |kind| Some(status.names(kind).join(",")).filter(|s| !s.is_empty());
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
        (keys::BACKENDS, backends_annotation(backends)),
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

    pub(super) fn ingress(annotations: &[(&str, &str)]) -> Ingress {
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

    pub(super) fn observed(ing: &Ingress) -> Observed {
        Observed::of(
            ing,
            &translate::Snapshot::default(),
            translate::DEFAULT_CONTROLLER_NAME,
        )
    }

    #[test]
    fn long_messages_are_cut_saying_how_much_was_left_out() {
        assert_eq!(bounded("short", 100), "short");
        let long = "é".repeat(5000);
        let cut = bounded(&long, MAX_MESSAGE);
        assert!(cut.len() <= MAX_MESSAGE, "{}", cut.len());
        let kept = cut.split('…').next().unwrap().chars().count();
        assert!(
            cut.ends_with(&format!("…({} more characters)", 5000 - kept)),
            "{cut}"
        );
        let state = State::new(
            "Error",
            "invalid-spec",
            "x".repeat(140_000),
            &observed(&ingress(&[])),
        );
        assert!(state.to_json().len() < MAX_MESSAGE + 300);
    }

    #[test]
    fn the_inputs_digest_follows_annotations_and_referenced_objects_but_not_our_own_keys() {
        let base = ingress(&[("user/key", "a")]);
        let digest = |ing: &Ingress, objects: &translate::Snapshot| inputs_digest(ing, objects);
        let empty = translate::Snapshot::default();
        let d0 = digest(&base, &empty);
        assert_eq!(d0.len(), 16);
        assert_eq!(d0, digest(&base, &empty), "deterministic");
        assert_ne!(
            d0,
            digest(&ingress(&[("user/key", "b")]), &empty),
            "an annotation edit"
        );
        let ours = ingress(&[("user/key", "a"), (keys::STATE, "{}"), (keys::URL_MAP, "um")]);
        assert_eq!(d0, digest(&ours, &empty), "what we write is not an input");

        let mut with_tls = base.clone();
        with_tls.spec = Some(k8s_openapi::api::networking::v1::IngressSpec {
            tls: Some(vec![k8s_openapi::api::networking::v1::IngressTLS {
                secret_name: Some("tls".into()),
                ..Default::default()
            }]),
            ..Default::default()
        });
        with_tls.metadata.namespace = Some("default".into());
        let secret = |rv: &str| k8s_openapi::api::core::v1::Secret {
            metadata: ObjectMeta {
                name: Some("tls".into()),
                namespace: Some("default".into()),
                resource_version: Some(rv.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let v1 = translate::Snapshot::default().with_secret(secret("1"));
        let v2 = translate::Snapshot::default().with_secret(secret("2"));
        let missing = digest(&with_tls, &empty);
        assert_ne!(missing, digest(&with_tls, &v1), "the Secret appeared");
        assert_ne!(
            digest(&with_tls, &v1),
            digest(&with_tls, &v2),
            "the Secret changed"
        );
    }

    #[test]
    fn a_state_tells_which_controller_wrote_it() {
        let ing = ingress(&[]);
        let state = State::new("Ready", "Synced", "ok", &observed(&ing)).at("1.2.3.4");
        assert!(state.written_by(translate::DEFAULT_CONTROLLER_NAME));
        assert!(!state.written_by("example.com/canary"));
        let legacy: State = serde_json::from_str(
            r#"{"state":"Ready","reason":"Synced","message":"m","observedGeneration":1}"#,
        )
        .unwrap();
        assert!(
            legacy.written_by(translate::DEFAULT_CONTROLLER_NAME),
            "states from before"
        );
        assert!(!legacy.written_by("example.com/canary"));
        let back: State = serde_json::from_str(&state.to_json()).unwrap();
        assert_eq!(back, state);
        assert_eq!(back.address.as_deref(), Some("1.2.3.4"));
    }

    pub(super) fn status() -> LoadBalancerStatus {
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
        let state = State::new("Ready", "Synced", "ok", &observed(&ing));
        let backends = backend_reports(&status(), &ing, |_| None, true);
        let wanted = annotations(&status(), &backends, &state);
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
        let state = State::new("Ready", "Synced", "ok", &observed(&ing));
        let backends = backend_reports(&status(), &ing, |_| None, true);
        let wanted = annotations(&status(), &backends, &state);
        let pairs: Vec<(String, String)> = wanted
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| ((*k).to_owned(), v)))
            .collect();
        let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(annotation_patch(&ingress(&refs), &wanted), None);
    }
}
