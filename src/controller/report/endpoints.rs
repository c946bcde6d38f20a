//! What an Ingress shows and tells of its endpoint backends and of where its health checks
//! come from. Pure: the reconcile gathers, this decides.
//!
//! - An endpoint backend with no endpoint that may take traffic makes the Ingress `Degraded`
//!   ([`events::NO_READY_ENDPOINTS`], see [`super::serving_state`]): requests routed there
//!   fail with a 502. A Warning tells when a Service port loses its last endpoint, a Normal
//!   Event when every one told has endpoints again.
//! - A change of where a backend's health check comes from is told once: a Normal
//!   [`events::HEALTH_CHECK_FROM_PROBE`], or a Warning [`events::HEALTH_CHECK_PROBE_IGNORED`]
//!   saying why the readiness probe could not be used. What was told is kept in the state
//!   annotation ([`super::State::health_checks`]), so neither a resync nor a restart repeats
//!   it. A rollout that only renames the pods (same probe, same health check) is no change.

use super::State;
use crate::controller::events::{self, Kind};
use crate::translate::HealthCheckOrigin;
use cloud::model::{Backend, BackendKey, HealthCheck};
use k8s_openapi::api::networking::v1::Ingress;
use std::collections::{BTreeMap, BTreeSet};

/// `Service default/web port 80`.
pub fn service_port(key: &BackendKey) -> String {
    format!("Service {}/{} port {}", key.namespace, key.service, key.port)
}

/// `Service default/web port 80 has no ready endpoint`.
pub fn describe_empty(key: &BackendKey) -> String {
    format!("{} has no ready endpoint", service_port(key))
}

/// The endpoint backends the Ingress's state tells to have no ready endpoint (after a restart,
/// what was told before).
pub fn empty_shown(ingress: &Ingress) -> BTreeSet<BackendKey> {
    let Some(state) = State::of(ingress) else {
        return BTreeSet::new();
    };
    let mut keys = BTreeSet::new();
    for (i, _) in state.message.match_indices("Service ") {
        let rest = &state.message[i + "Service ".len()..];
        let Some((described, _)) = rest.split_once(" has no ready endpoint") else {
            continue;
        };
        let Some((name, port)) = described.split_once(" port ") else {
            continue;
        };
        // Names have no spaces: `Service port with no ready endpoint …` is prose.
        if name.contains(' ') {
            continue;
        }
        let (Some((namespace, service)), Ok(port)) = (name.split_once('/'), port.parse::<u16>()) else {
            continue;
        };
        keys.insert(BackendKey::new(namespace, service, port));
    }
    keys
}

/// The Event a change of the backends without endpoints deserves, given those told before:
/// a Warning naming the ones that newly have none; a Normal one once none is left of those told.
pub fn empty_transition(
    before: &BTreeSet<BackendKey>,
    now: &BTreeSet<BackendKey>,
) -> Option<(Kind, &'static str, String)> {
    let newly: Vec<String> = now.difference(before).map(describe_empty).collect();
    if !newly.is_empty() {
        return Some((
            Kind::Warning,
            events::NO_READY_ENDPOINTS,
            format!("requests routed there fail: {}", newly.join("; ")),
        ));
    }
    if !before.is_empty() && now.is_empty() {
        let back: Vec<String> = before.iter().map(service_port).collect();
        return Some((
            Kind::Normal,
            events::ENDPOINTS_READY,
            format!("ready endpoints again: {}", back.join("; ")),
        ));
    }
    None
}

/// What is remembered of a backend's health-check origin: what it is and what it gives, not
/// which pod showed it (a rollout renames the pods, and is no news when the probe stays).
pub fn origin_digest(origin: &HealthCheckOrigin, hc: &HealthCheck) -> Option<String> {
    use sha2::Digest;
    let text = match origin {
        HealthCheckOrigin::Defaults { why_not_probe: None } => return None,
        HealthCheckOrigin::Defaults {
            why_not_probe: Some(why),
        } => format!("ignored {} {hc:?}", without_pod(why)),
        HealthCheckOrigin::ReadinessProbe { container, .. } => format!("probe {container} {hc:?}"),
    };
    let hash = sha2::Sha256::digest(text.as_bytes());
    Some(hash.iter().take(4).map(|b| format!("{b:02x}")).collect())
}

/// The reason of a `why_not_probe` without the pod naming it (`pod ns/p, container "c": why`).
fn without_pod(why: &str) -> &str {
    match why.strip_prefix("pod ").and_then(|r| r.split_once(": ")) {
        Some((_, reason)) => reason,
        None => why,
    }
}

/// `path /healthz on port 8080, every 5s (timeout 1s)`.
fn settings(hc: &HealthCheck) -> String {
    let port = hc.port.map(|p| format!(" on port {p}")).unwrap_or_default();
    format!(
        "path {}{port}, every {}s (timeout {}s)",
        hc.path, hc.check_interval_sec, hc.timeout_sec
    )
}

/// An Event to publish: kind, reason, note.
pub type Told = (Kind, &'static str, String);

/// The health-check origins to remember (backend → digest), and the Events their changes
/// against `before` deserve, one per backend whose origin changed.
pub fn health_check_events(
    before: &BTreeMap<String, String>,
    origins: &[(BackendKey, HealthCheckOrigin)],
    backends: &[Backend],
) -> (BTreeMap<String, String>, Vec<Told>) {
    let mut now = BTreeMap::new();
    let mut told = Vec::new();
    for (key, origin) in origins {
        let Some(backend) = backends.iter().find(|b| b.key == *key) else {
            continue;
        };
        let hc = &backend.health_check;
        let id = key.to_string();
        let digest = origin_digest(origin, hc);
        if let Some(d) = &digest {
            now.insert(id.clone(), d.clone());
        }
        if before.get(&id) == digest.as_ref() {
            continue;
        }
        let port = service_port(key);
        let event = match origin {
            HealthCheckOrigin::ReadinessProbe {
                pod,
                container,
                template,
            } => {
                let template = template.as_ref().map(|t| format!(" ({t})")).unwrap_or_default();
                (
                    Kind::Normal,
                    events::HEALTH_CHECK_FROM_PROBE,
                    format!(
                        "health check of {port} follows the readinessProbe of container {container} in pod \
                         {pod}{template}: {}",
                        settings(hc)
                    ),
                )
            }
            HealthCheckOrigin::Defaults {
                why_not_probe: Some(why),
            } => (
                Kind::Warning,
                events::HEALTH_CHECK_PROBE_IGNORED,
                format!(
                    "health check of {port} does not follow the pods' readinessProbe ({why}): {}",
                    settings(hc)
                ),
            ),
            // Back to the defaults from something told before.
            HealthCheckOrigin::Defaults { why_not_probe: None } => (
                Kind::Normal,
                events::HEALTH_CHECK_DEFAULTS,
                format!(
                    "health check of {port} uses the defaults, the pods have no readinessProbe: {}",
                    settings(hc)
                ),
            ),
        };
        told.push(event);
    }
    (now, told)
}

#[cfg(test)]
mod tests {
    use super::super::tests::ingress;
    use super::*;
    use crate::annotations as keys;

    fn backend(hc: HealthCheck) -> Backend {
        Backend {
            key: BackendKey::new("default", "web", 80),
            target: cloud::model::BackendTarget::Endpoints,
            protocol: cloud::model::BackendProtocol::Http,
            health_check: hc,
            timeout_sec: 30,
            connection_draining_timeout_sec: 0,
        }
    }

    fn probe(pod: &str) -> HealthCheckOrigin {
        HealthCheckOrigin::ReadinessProbe {
            pod: format!("default/{pod}"),
            container: "web".into(),
            template: Some("ReplicaSet/web-7d9f".into()),
        }
    }

    fn ignored(pod: &str) -> HealthCheckOrigin {
        HealthCheckOrigin::Defaults {
            why_not_probe: Some(format!(
                "pod default/{pod}, container \"web\": the readiness probe is exec"
            )),
        }
    }

    #[test]
    fn health_check_origins_are_told_once_per_change() {
        let key = BackendKey::new("default", "web", 80);
        let healthz = HealthCheck {
            path: "/healthz".into(),
            check_interval_sec: 5,
            timeout_sec: 1,
            ..HealthCheck::default()
        };
        let defaults = HealthCheckOrigin::Defaults { why_not_probe: None };
        let reasons = |told: &[(Kind, &'static str, String)]| -> Vec<(Kind, &'static str)> {
            told.iter().map(|(k, r, _)| (*k, *r)).collect()
        };
        // (what, origin, health check, Events)
        type Step<'a> = (&'a str, HealthCheckOrigin, HealthCheck, Vec<(Kind, &'a str)>);
        let steps: [Step; 7] = [
            (
                "defaults at first: nothing to tell",
                defaults.clone(),
                HealthCheck::default(),
                vec![],
            ),
            (
                "a probe appears",
                probe("web-1"),
                healthz.clone(),
                vec![(Kind::Normal, events::HEALTH_CHECK_FROM_PROBE)],
            ),
            ("a resync", probe("web-1"), healthz.clone(), vec![]),
            ("a rollout, same probe", probe("web-2"), healthz.clone(), vec![]),
            (
                "the probe is edited",
                probe("web-3"),
                HealthCheck {
                    path: "/ready".into(),
                    ..healthz.clone()
                },
                vec![(Kind::Normal, events::HEALTH_CHECK_FROM_PROBE)],
            ),
            (
                "an exec probe",
                ignored("web-4"),
                HealthCheck::default(),
                vec![(Kind::Warning, events::HEALTH_CHECK_PROBE_IGNORED)],
            ),
            (
                "the same, other pod",
                ignored("web-5"),
                HealthCheck::default(),
                vec![],
            ),
        ];
        let mut told = BTreeMap::new();
        for (what, origin, hc, want) in steps {
            let (now, events) = health_check_events(&told, &[(key.clone(), origin)], &[backend(hc)]);
            assert_eq!(reasons(&events), want, "{what}");
            told = now;
        }
        let (now, events) = health_check_events(
            &told,
            &[(key.clone(), defaults)],
            &[backend(HealthCheck::default())],
        );
        assert_eq!(reasons(&events), [(Kind::Normal, events::HEALTH_CHECK_DEFAULTS)]);
        assert!(now.is_empty());

        let (_, events) = health_check_events(
            &BTreeMap::new(),
            &[(key.clone(), probe("web-1"))],
            &[backend(healthz)],
        );
        assert_eq!(
            events[0].2,
            "health check of Service default/web port 80 follows the readinessProbe of container web in pod \
             default/web-1 (ReplicaSet/web-7d9f): path /healthz, every 5s (timeout 1s)"
        );
    }

    #[test]
    fn no_ready_endpoints_is_told_when_it_starts_and_when_it_ends() {
        let web = BackendKey::new("default", "web", 80);
        let api = BackendKey::new("default", "api", 8080);
        let set = |keys: &[&BackendKey]| keys.iter().map(|k| (*k).clone()).collect::<BTreeSet<_>>();
        let kind = |t: Option<(Kind, &'static str, String)>| t.map(|(k, r, _)| (k, r));
        let warning = Some((Kind::Warning, events::NO_READY_ENDPOINTS));
        let normal = Some((Kind::Normal, events::ENDPOINTS_READY));
        assert_eq!(kind(empty_transition(&set(&[]), &set(&[&web]))), warning);
        assert_eq!(kind(empty_transition(&set(&[&web]), &set(&[&web]))), None);
        assert_eq!(
            kind(empty_transition(&set(&[&web]), &set(&[&web, &api]))),
            warning
        );
        assert_eq!(kind(empty_transition(&set(&[&web, &api]), &set(&[&api]))), None);
        assert_eq!(kind(empty_transition(&set(&[&api]), &set(&[]))), normal);
        assert_eq!(kind(empty_transition(&set(&[]), &set(&[]))), None);

        // After a restart, the state tells what was told.
        let ing = ingress(&[]);
        let obs = super::super::tests::observed(&ing);
        let state = State::new(
            "Degraded",
            events::NO_READY_ENDPOINTS,
            format!(
                "serving HTTP at 1.2.3.4, but requests to a Service port with no ready endpoint fail: {}; {}",
                describe_empty(&api),
                describe_empty(&web)
            ),
            &obs,
        );
        let restarted = ingress(&[(keys::STATE, &state.to_json())]);
        assert_eq!(empty_shown(&restarted), set(&[&web, &api]));
        assert!(empty_shown(&ing).is_empty());
    }
}
