//! What an Ingress shows of its backends' health: the value of `ingress.kubernetes.io/backends`,
//! the `Ready` / `Degraded` state of a load balancer that serves, and the Events a change of
//! backend health deserves. Pure: the poller (`controller::health`) reads, this decides what
//! is shown and told.

use super::{Observed, State};
use crate::annotations as keys;
use crate::controller::events::{self, Kind};
use crate::controller::infra::InfraProblem;
use cloud::model::BackendKey;
use cloud::{BackendHealth, LoadBalancerStatus, ResourceKind};
use k8s_openapi::api::networking::v1::Ingress;
use std::collections::{BTreeMap, BTreeSet};

/// A backend's health as the Ingress shows it, in ingress-gce's spellings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shown {
    Healthy,
    /// It has instances and none of them is healthy.
    Unhealthy,
    Unknown,
}

impl Shown {
    /// The value in [`keys::BACKENDS`]: `HEALTHY`, `UNHEALTHY` or `Unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Shown::Healthy => "HEALTHY",
            Shown::Unhealthy => "UNHEALTHY",
            Shown::Unknown => "Unknown",
        }
    }

    fn parse(value: &str) -> Option<Shown> {
        match value {
            "HEALTHY" => Some(Shown::Healthy),
            "UNHEALTHY" => Some(Shown::Unhealthy),
            "Unknown" => Some(Shown::Unknown),
            _ => None,
        }
    }

    fn of(health: &BackendHealth) -> Shown {
        match health {
            BackendHealth::Healthy { .. } => Shown::Healthy,
            BackendHealth::Unhealthy { .. } => Shown::Unhealthy,
            BackendHealth::Unknown { .. } => Shown::Unknown,
        }
    }
}

/// One backend resource of a load balancer, as the Ingress shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendReport {
    /// The cloud resource's name (the key in [`keys::BACKENDS`]).
    pub name: String,
    /// The Service port it serves; `None` for one the provider added (the default backend).
    pub serves: Option<BackendKey>,
    /// Its health in [`keys::BACKENDS`]: as last read, or carried over from the Ingress until
    /// the first read in this process.
    pub shown: Shown,
    /// Healthy and total instances: when read in this process; or, for a backend with no
    /// healthy instance carried over from the Ingress, as the state message on it counted them.
    pub counts: Option<(u32, u32)>,
}

impl BackendReport {
    /// `backend NAME: 0 of 3 instances healthy (Service default/web port 80)`.
    pub fn describe(&self) -> String {
        let health = match (self.counts, self.shown) {
            (Some((healthy, total)), Shown::Healthy | Shown::Unhealthy) => {
                format!("{healthy} of {total} instances healthy")
            }
            (None, Shown::Healthy) => "healthy".to_owned(),
            (None, Shown::Unhealthy) => "no healthy instance".to_owned(),
            (_, Shown::Unknown) => "health unknown".to_owned(),
        };
        match &self.serves {
            Some(k) => format!(
                "backend {}: {health} (Service {}/{} port {})",
                self.name, k.namespace, k.service, k.port
            ),
            None => format!("backend {}: {health}", self.name),
        }
    }
}

/// The backends of `status`, each with its health: as `read` last read it; or, for one not read
/// yet in this process (after a restart, before the first poll reaches it) and when `carry`,
/// as the Ingress shows it already, with the instances its state message counted, so that a
/// restart rewrites neither the annotation nor the state; or Unknown.
pub fn backend_reports(
    status: &LoadBalancerStatus,
    ingress: &Ingress,
    read: impl Fn(&str) -> Option<BackendHealth>,
    carry: bool,
) -> Vec<BackendReport> {
    let (current, message) = if carry {
        (backends_shown(ingress), State::of(ingress).map(|s| s.message))
    } else {
        (BTreeMap::new(), None)
    };
    status
        .names(ResourceKind::BackendService)
        .iter()
        .map(|name| {
            let (shown, counts) = match read(name) {
                Some(health) => {
                    let counts = match health {
                        BackendHealth::Healthy { healthy, total } => Some((healthy, total)),
                        BackendHealth::Unhealthy { total } => Some((0, total)),
                        BackendHealth::Unknown { .. } => None,
                    };
                    (Shown::of(&health), counts)
                }
                None => {
                    let shown = current.get(name.as_str()).copied().unwrap_or(Shown::Unknown);
                    let counts = match (shown, &message) {
                        (Shown::Unhealthy, Some(message)) => counted(message, name),
                        _ => None,
                    };
                    (shown, counts)
                }
            };
            BackendReport {
                name: name.clone(),
                serves: status.backend_ports.get(name).cloned(),
                shown,
                counts,
            }
        })
        .collect()
}

/// The instances a state message counted for backend `name`, as [`BackendReport::describe`]
/// wrote them (`backend NAME: 0 of 3 instances healthy`); `None` when it did not (another
/// wording, or cut off by [`super::MAX_MESSAGE`]).
fn counted(message: &str, name: &str) -> Option<(u32, u32)> {
    let prefix = format!("backend {name}: ");
    let start = message.find(&prefix)? + prefix.len();
    let (healthy, rest) = message[start..].split_once(" of ")?;
    let (total, _) = rest.split_once(" instances healthy")?;
    Some((healthy.parse().ok()?, total.parse().ok()?))
}

/// The value of [`keys::BACKENDS`]: `{"NAME":"HEALTHY",…}`, or `None` without backends.
pub fn backends_annotation(backends: &[BackendReport]) -> Option<String> {
    let map: BTreeMap<&str, &str> = backends
        .iter()
        .map(|b| (b.name.as_str(), b.shown.as_str()))
        .collect();
    (!map.is_empty()).then(|| serde_json::to_string(&map).unwrap_or_default())
}

/// What the Ingress's [`keys::BACKENDS`] shows now, by backend name.
fn backends_shown(ingress: &Ingress) -> BTreeMap<String, Shown> {
    let Some(raw) = ingress
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(keys::BACKENDS))
    else {
        return BTreeMap::new();
    };
    serde_json::from_str::<BTreeMap<String, String>>(raw)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(name, value)| Shown::parse(&value).map(|s| (name, s)))
        .collect()
}

/// The backends the Ingress shows UNHEALTHY now.
pub fn unhealthy_shown(ingress: &Ingress) -> BTreeSet<String> {
    backends_shown(ingress)
        .into_iter()
        .filter(|(_, s)| *s == Shown::Unhealthy)
        .map(|(name, _)| name)
        .collect()
}

/// The state of a load balancer that serves at all: `Ready`; or `Degraded` when a backend has
/// instances and none of them is healthy (reason [`events::NO_HEALTHY_BACKEND`], each such
/// backend named with the Service port it serves) or the cluster-wide resources are not all in
/// place (the problem's reason), the message telling both. A backend whose health is unknown
/// degrades nothing.
///
/// An endpoint backend with no endpoint that may take traffic (`empty`) comes first: reason
/// [`events::NO_READY_ENDPOINTS`], each named by its Service port.
pub fn serving_state(
    serving: &str,
    problem: Option<&InfraProblem>,
    backends: &[BackendReport],
    empty: &BTreeSet<BackendKey>,
    observed: &Observed,
) -> State {
    let unhealthy: Vec<String> = backends
        .iter()
        .filter(|b| b.shown == Shown::Unhealthy)
        .map(BackendReport::describe)
        .collect();
    let infra = |p: &InfraProblem| format!("the cluster-wide resources are not all in place: {}", p.message);
    if !empty.is_empty() {
        let described: Vec<String> = empty.iter().map(super::endpoints::describe_empty).collect();
        let mut message = format!(
            "{serving}, but requests to a Service port with no ready endpoint fail: {}",
            described.join("; ")
        );
        if !unhealthy.is_empty() {
            message.push_str("; and requests to a backend with no healthy instance fail: ");
            message.push_str(&unhealthy.join("; "));
        }
        if let Some(p) = problem {
            message.push_str("; and ");
            message.push_str(&infra(p));
        }
        return State::new("Degraded", events::NO_READY_ENDPOINTS, message, observed);
    }
    if unhealthy.is_empty() {
        return match problem {
            None => State::new("Ready", "Synced", serving, observed),
            Some(p) => State::new(
                "Degraded",
                p.reason,
                format!("{serving}, but {}", infra(p)),
                observed,
            ),
        };
    }
    let mut message = format!(
        "{serving}, but requests to a backend with no healthy instance fail: {}",
        unhealthy.join("; ")
    );
    if let Some(p) = problem {
        message.push_str("; and ");
        message.push_str(&infra(p));
    }
    State::new("Degraded", events::NO_HEALTHY_BACKEND, message, observed)
}

/// The Event a change of backend health deserves, given the backends told before to have no
/// healthy instance: a Warning naming the backends that newly have none; or, once every one
/// told is seen HEALTHY again or no longer used ([`told_unhealthy`] is empty), a Normal one;
/// nothing otherwise. A poll that changes nothing tells nothing, and neither does a backend
/// told to have none whose health became Unknown: it is not known to have recovered, so a
/// read that fails now and then does not alternate Warnings and Normal Events.
pub fn health_transition(
    before: &BTreeSet<String>,
    backends: &[BackendReport],
) -> Option<(Kind, &'static str, String)> {
    let unhealthy: Vec<&BackendReport> = backends.iter().filter(|b| b.shown == Shown::Unhealthy).collect();
    let newly: Vec<String> = unhealthy
        .iter()
        .filter(|b| !before.contains(&b.name))
        .map(|b| b.describe())
        .collect();
    if !newly.is_empty() {
        let note = format!(
            "no healthy instance, requests routed there fail: {}",
            newly.join("; ")
        );
        return Some((Kind::Warning, events::NO_HEALTHY_BACKEND, note));
    }
    if !before.is_empty() && told_unhealthy(before, backends).is_empty() {
        let recovered: Vec<String> = backends
            .iter()
            .filter(|b| before.contains(&b.name))
            .map(BackendReport::describe)
            .collect();
        let note = if recovered.is_empty() {
            "the backends that had no healthy instance are no longer used".to_owned()
        } else {
            format!(
                "no backend is left without a healthy instance: {}",
                recovered.join("; ")
            )
        };
        return Some((Kind::Normal, events::BACKEND_RECOVERED, note));
    }
    None
}

/// The backends told to have no healthy instance once `backends` is reported, given those told
/// `before`: each one shown UNHEALTHY, and each one told before whose health is Unknown now
/// (a failing read, not found): it stays told until seen HEALTHY or no longer used.
pub fn told_unhealthy(before: &BTreeSet<String>, backends: &[BackendReport]) -> BTreeSet<String> {
    backends
        .iter()
        .filter(|b| match b.shown {
            Shown::Unhealthy => true,
            Shown::Unknown => before.contains(&b.name),
            Shown::Healthy => false,
        })
        .map(|b| b.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{ingress, observed, status};
    use super::*;

    /// A status with two backend services: `be-web` serving `default/web:80`, and the
    /// provider's own `be-default`.
    fn two_backends() -> LoadBalancerStatus {
        let mut s = status();
        s.resources.insert(
            ResourceKind::BackendService,
            vec!["be-web".into(), "be-default".into()],
        );
        s.backend_ports
            .insert("be-web".into(), BackendKey::new("default", "web", 80));
        s
    }

    fn healthy(healthy: u32, total: u32) -> Option<BackendHealth> {
        Some(BackendHealth::Healthy { healthy, total })
    }

    fn unhealthy(total: u32) -> Option<BackendHealth> {
        Some(BackendHealth::Unhealthy { total })
    }

    fn unknown() -> Option<BackendHealth> {
        Some(BackendHealth::Unknown {
            reason: cloud::UnknownHealth::NoInstances,
        })
    }

    #[test]
    fn backend_health_becomes_the_annotation_and_the_state() {
        let ing = ingress(&[]);
        let obs = observed(&ing);
        let serving = "serving HTTP at 1.2.3.4";
        let infra = InfraProblem {
            reason: events::FIREWALL_CHANGE_REQUIRED,
            message: "run gcloud".into(),
        };
        // (what, health of be-web, infrastructure problem, annotation, state, reason, message)
        type Case<'a> = (
            &'a str,
            Option<BackendHealth>,
            Option<&'a InfraProblem>,
            &'a str,
            &'a str,
            &'a str,
            &'a str,
        );
        let cases: [Case; 7] = [
            (
                "healthy",
                healthy(1, 3),
                None,
                r#"{"be-default":"Unknown","be-web":"HEALTHY"}"#,
                "Ready",
                "Synced",
                serving,
            ),
            (
                "not read yet",
                None,
                None,
                r#"{"be-default":"Unknown","be-web":"Unknown"}"#,
                "Ready",
                "Synced",
                serving,
            ),
            (
                "unknown degrades nothing",
                unknown(),
                None,
                r#"{"be-default":"Unknown","be-web":"Unknown"}"#,
                "Ready",
                "Synced",
                serving,
            ),
            (
                "no healthy instance",
                unhealthy(3),
                None,
                r#"{"be-default":"Unknown","be-web":"UNHEALTHY"}"#,
                "Degraded",
                events::NO_HEALTHY_BACKEND,
                "serving HTTP at 1.2.3.4, but requests to a backend with no healthy instance fail: backend be-web: \
                 0 of 3 instances healthy (Service default/web port 80)",
            ),
            (
                "an infrastructure problem alone",
                healthy(3, 3),
                Some(&infra),
                r#"{"be-default":"Unknown","be-web":"HEALTHY"}"#,
                "Degraded",
                events::FIREWALL_CHANGE_REQUIRED,
                "serving HTTP at 1.2.3.4, but the cluster-wide resources are not all in place: run gcloud",
            ),
            (
                "both: the backend first, both told",
                unhealthy(2),
                Some(&infra),
                r#"{"be-default":"Unknown","be-web":"UNHEALTHY"}"#,
                "Degraded",
                events::NO_HEALTHY_BACKEND,
                "serving HTTP at 1.2.3.4, but requests to a backend with no healthy instance fail: backend be-web: \
                 0 of 2 instances healthy (Service default/web port 80); and the cluster-wide resources are not \
                 all in place: run gcloud",
            ),
            (
                "healthy again",
                healthy(1, 2),
                None,
                r#"{"be-default":"Unknown","be-web":"HEALTHY"}"#,
                "Ready",
                "Synced",
                serving,
            ),
        ];
        for (what, health, problem, annotation, state, reason, message) in cases {
            let backends = backend_reports(
                &two_backends(),
                &ing,
                |n| if n == "be-web" { health.clone() } else { unknown() },
                true,
            );
            assert_eq!(
                backends_annotation(&backends).as_deref(),
                Some(annotation),
                "{what}"
            );
            let st = serving_state(serving, problem, &backends, &BTreeSet::new(), &obs);
            assert_eq!(
                (st.state.as_str(), st.reason.as_str(), st.message.as_str()),
                (state, reason, message),
                "{what}"
            );
        }
    }

    #[test]
    fn a_backend_not_read_yet_keeps_what_the_ingress_shows() {
        let shown = r#"{"be-default":"Unknown","be-web":"UNHEALTHY"}"#;
        let ing = ingress(&[(keys::BACKENDS, shown)]);
        let carried = backend_reports(&two_backends(), &ing, |_| None, true);
        assert_eq!(
            backends_annotation(&carried).as_deref(),
            Some(shown),
            "no write after a restart"
        );
        assert_eq!(unhealthy_shown(&ing), BTreeSet::from(["be-web".to_owned()]));
        let none = BTreeSet::new();
        let st = serving_state("serving", None, &carried, &none, &observed(&ing));
        assert_eq!(st.state, "Degraded");
        assert!(
            st.message
                .ends_with("backend be-web: no healthy instance (Service default/web port 80)"),
            "{}",
            st.message
        );
        // The state on the Ingress counted the instances: carried too, the state is the same.
        let read = |n: &str| if n == "be-web" { unhealthy(3) } else { unhealthy(2) };
        let obs = observed(&ing);
        let written = serving_state(
            "serving",
            None,
            &backend_reports(&two_backends(), &ing, read, true),
            &none,
            &obs,
        );
        let restarted = ingress(&[
            (
                keys::BACKENDS,
                r#"{"be-default":"UNHEALTHY","be-web":"UNHEALTHY"}"#,
            ),
            (keys::STATE, &written.to_json()),
        ]);
        let carried = backend_reports(&two_backends(), &restarted, |_| None, true);
        assert_eq!(
            carried.iter().map(|b| b.counts).collect::<Vec<_>>(),
            [Some((0, 3)), Some((0, 2))]
        );
        assert_eq!(
            serving_state("serving", None, &carried, &none, &obs),
            written,
            "no write of the state after a restart"
        );
        assert_eq!(
            counted("backend be-web: 1 of 3 instances healthy", "be-web"),
            Some((1, 3))
        );
        assert_eq!(
            counted(
                "backend be-web: no healthy instance; backend x: 0 of 3 instances healthy",
                "be-web"
            ),
            None
        );
        assert_eq!(
            counted("backend be-web-2: 0 of 3 instances healthy", "be-web"),
            None
        );
        assert_eq!(
            counted("backend be-web: 0 of 3 insta…(99 more characters)", "be-web"),
            None
        );
        // With polling off, nothing is carried: what is not read is Unknown.
        let off = backend_reports(&two_backends(), &ing, |_| None, false);
        assert!(off.iter().all(|b| b.shown == Shown::Unknown));
        // Garbage in the annotation is not carried either.
        let ing = ingress(&[(keys::BACKENDS, "{not json")]);
        let carried = backend_reports(&two_backends(), &ing, |_| None, true);
        assert!(carried.iter().all(|b| b.shown == Shown::Unknown));
    }

    #[test]
    fn health_events_are_told_once_per_transition() {
        let ing = ingress(&[]);
        let reports = |health: Option<BackendHealth>| {
            backend_reports(
                &two_backends(),
                &ing,
                |n| if n == "be-web" { health.clone() } else { None },
                false,
            )
        };
        let set = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<BTreeSet<_>>();
        let failing = Some(BackendHealth::Unknown {
            reason: cloud::UnknownHealth::ReadFailed {
                message: "403".into(),
                retryable: false,
            },
        });
        let gone = Some(BackendHealth::Unknown {
            reason: cloud::UnknownHealth::NotFound,
        });
        let warning = Some((Kind::Warning, events::NO_HEALTHY_BACKEND));
        let recovered = Some((Kind::Normal, events::BACKEND_RECOVERED));
        // (what, told before, health of be-web now, event kind and reason, told after)
        type Case<'a> = (
            &'a str,
            BTreeSet<String>,
            Option<BackendHealth>,
            Option<(Kind, &'a str)>,
            BTreeSet<String>,
        );
        let cases: [Case; 13] = [
            ("healthy, nothing told", set(&[]), healthy(2, 2), None, set(&[])),
            (
                "to no healthy instance",
                set(&[]),
                unhealthy(2),
                warning,
                set(&["be-web"]),
            ),
            (
                "still none: a poll, not a transition",
                set(&["be-web"]),
                unhealthy(2),
                None,
                set(&["be-web"]),
            ),
            (
                "fewer instances, still none",
                set(&["be-web"]),
                unhealthy(1),
                None,
                set(&["be-web"]),
            ),
            (
                "seen healthy: recovered",
                set(&["be-web"]),
                healthy(1, 2),
                recovered,
                set(&[]),
            ),
            (
                "unknown (no instances): not known to have recovered",
                set(&["be-web"]),
                unknown(),
                None,
                set(&["be-web"]),
            ),
            (
                "a read failing: still told",
                set(&["be-web"]),
                failing.clone(),
                None,
                set(&["be-web"]),
            ),
            (
                "not found: still told",
                set(&["be-web"]),
                gone,
                None,
                set(&["be-web"]),
            ),
            (
                "not read yet: still told",
                set(&["be-web"]),
                None,
                None,
                set(&["be-web"]),
            ),
            (
                "unhealthy again after unknown: told already",
                set(&["be-web"]),
                unhealthy(2),
                None,
                set(&["be-web"]),
            ),
            ("unknown, nothing told", set(&[]), failing, None, set(&[])),
            (
                "a backend no longer used is no longer told",
                set(&["be-old", "be-web"]),
                unhealthy(2),
                None,
                set(&["be-web"]),
            ),
            (
                "every one told no longer used",
                set(&["be-old"]),
                healthy(1, 1),
                recovered,
                set(&[]),
            ),
        ];
        for (what, before, health, want, after) in cases {
            let backends = reports(health);
            let got = health_transition(&before, &backends);
            assert_eq!(got.as_ref().map(|(k, r, _)| (*k, *r)), want, "{what}");
            assert_eq!(told_unhealthy(&before, &backends), after, "{what}");
            if let Some((kind, _, note)) = got {
                let expected = match (kind, before.contains("be-web")) {
                    (Kind::Warning, _) => {
                        "no healthy instance, requests routed there fail: backend be-web: 0 of 2 instances \
                                      healthy (Service default/web port 80)"
                    }
                    (Kind::Normal, true) => {
                        "no backend is left without a healthy instance: backend be-web: 1 of 2"
                    }
                    (Kind::Normal, false) => "the backends that had no healthy instance are no longer used",
                };
                assert!(note.starts_with(expected), "{what}: {note}");
            }
        }
    }

    #[test]
    fn a_flapping_read_tells_one_warning_and_one_recovery() {
        let ing = ingress(&[]);
        let failing = Some(BackendHealth::Unknown {
            reason: cloud::UnknownHealth::ReadFailed {
                message: "boom".into(),
                retryable: false,
            },
        });
        let polls = [
            healthy(2, 2),
            unhealthy(2),
            failing.clone(),
            unhealthy(2),
            failing.clone(),
            unhealthy(2),
            failing,
            healthy(1, 2),
            healthy(2, 2),
        ];
        let mut told = BTreeSet::new();
        let mut events = Vec::new();
        for health in polls {
            let backends = backend_reports(
                &two_backends(),
                &ing,
                |n| if n == "be-web" { health.clone() } else { None },
                false,
            );
            if let Some((kind, reason, _)) = health_transition(&told, &backends) {
                events.push((kind, reason));
            }
            told = told_unhealthy(&told, &backends);
        }
        assert_eq!(
            events,
            [
                (Kind::Warning, events::NO_HEALTHY_BACKEND),
                (Kind::Normal, events::BACKEND_RECOVERED)
            ]
        );
    }
}
