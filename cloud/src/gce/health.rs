//! Backend health, read-only: `backendServices.getHealth` once per (backend service, group).
//!
//! Which groups a backend service has is read from the bulk list of backend services (the
//! inventory's, shared with the passes that build load balancers), not assumed: a backend
//! service that lost a zone's group, or never had any (the default backend), is asked nothing
//! about it. One list serves a whole pass of the poller (see [`HealthPass`]), however many
//! calls the pass makes and however long they take, unless this provider writes a backend
//! service meanwhile: the reads cost one list per pass, not one per call. Every query goes through the Compute client as a read (same token, retries, error
//! typing and read bucket) and through the health-query bucket, which keeps polling to its
//! share of the project's read quota. Nothing here writes, so nothing checks the write fence.

use super::GceProvider;
use super::api_error::ApiError;
use super::links::{Collection, Scope, name_of, zone_of};
use super::wire;
use crate::Error;
use crate::provider::{BackendHealth, UnknownHealth};
use futures::future::join_all;
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use tokio::time::Instant;
use tracing::Instrument;

/// The poller's pass as the provider sees it, so that the whole pass uses one list of the
/// backend services. A pass asks about each backend service in use once, in calls of a few
/// dozen, each of which may take longer than the staleness bound at `--gce-health-qps`; so a
/// call asking about a backend service already asked about begins the next pass.
#[derive(Debug, Default)]
pub(super) struct HealthPass {
    /// The backend services asked about in this pass.
    asked: HashSet<String>,
    /// The oldest list of the backend services the pass accepts.
    not_before: Option<Instant>,
}

impl HealthPass {
    /// The oldest list a call about `names` accepts: at the start of a pass, what `fresh`
    /// gives (the staleness bound and our writes to `names`); later in the pass, the same,
    /// unless this provider wrote a backend service since (`last_write`): then a list taken
    /// after that write.
    fn not_before(
        &mut self,
        names: &[String],
        fresh: impl FnOnce() -> Instant,
        last_write: Option<Instant>,
    ) -> Instant {
        let start = match self.not_before {
            Some(at) if !names.iter().any(|n| self.asked.contains(n)) => at,
            _ => {
                self.asked.clear();
                fresh()
            }
        };
        self.asked.extend(names.iter().cloned());
        let at = last_write.map_or(start, |w| start.max(w));
        self.not_before = Some(at);
        at
    }
}

/// One group's answer: how many of its instances are healthy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct GroupHealth {
    pub healthy: u32,
    pub total: u32,
}

/// One group's failed query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct GroupError {
    pub message: String,
    pub retryable: bool,
    /// The backend service (or the group) no longer exists.
    pub not_found: bool,
}

impl GceProvider {
    /// [`crate::Provider::backend_health`].
    pub(super) async fn health_of(&self, names: &[String]) -> Result<BTreeMap<String, BackendHealth>, Error> {
        let span = tracing::debug_span!("backend_health", backends = names.len());
        async move {
            // The pass's list; never older than our own last write to one of them (a group just
            // added).
            let not_before = self
                .health_pass
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .not_before(
                    names,
                    || self.freshness.required_shared(names.iter().map(String::as_str)),
                    self.freshness.last_shared_write(),
                );
            let services = self
                .inventory
                .backend_services(&self.compute, not_before)
                .await
                .map_err(|e| e.into_error("reading the backend services for their health"))?;
            let queries = names.iter().map(|name| {
                let service = services.items.get(name);
                async move {
                    let health = match service {
                        None => BackendHealth::Unknown {
                            reason: UnknownHealth::NotFound,
                        },
                        Some(service) => {
                            let groups =
                                join_all(service.backends.iter().map(|b| self.group_health(name, &b.group)))
                                    .await;
                            verdict(&groups)
                        }
                    };
                    (name.clone(), health)
                }
            });
            Ok(join_all(queries).await.into_iter().collect())
        }
        .instrument(span)
        .await
    }

    /// `getHealth` of one group of one backend service.
    pub(super) async fn group_health(&self, service: &str, group: &str) -> Result<GroupHealth, GroupError> {
        let url = self
            .links()
            .method_url(&Scope::Global, Collection::BackendServices, service, "getHealth");
        let answer: Result<wire::BackendServiceGroupHealth, ApiError> = self
            .compute
            .health_query("backendServices.getHealth", &url, &json!({ "group": group }))
            .await;
        match answer {
            Ok(answer) => Ok(count(&answer)),
            Err(e) => {
                let group = match zone_of(group) {
                    Some(zone) => format!("{zone}/{}", name_of(group)),
                    None => name_of(group).to_owned(),
                };
                Err(GroupError {
                    retryable: e.is_transient() || e.is_rate_limited(),
                    not_found: e.is_not_found(),
                    message: format!("reading the health of backend service {service} in group {group}: {e}"),
                })
            }
        }
    }
}

/// Healthy and total instances of one group's answer. Compute reports `HEALTHY` or
/// `UNHEALTHY`; any other state (draining, timed out) is not healthy either.
fn count(answer: &wire::BackendServiceGroupHealth) -> GroupHealth {
    let healthy = answer
        .health_status
        .iter()
        .filter(|s| s.health_state.as_deref() == Some("HEALTHY"))
        .count();
    GroupHealth {
        healthy: u32::try_from(healthy).unwrap_or(u32::MAX),
        total: u32::try_from(answer.health_status.len()).unwrap_or(u32::MAX),
    }
}

/// A backend service's health from its groups' answers (see [`BackendHealth`] for the rules
/// and their source): a healthy instance anywhere makes it healthy; otherwise a group that
/// could not be read makes it unknown (it may hold the healthy ones); otherwise it is
/// unhealthy if it has instances at all.
pub(super) fn verdict(groups: &[Result<GroupHealth, GroupError>]) -> BackendHealth {
    let read = groups.iter().filter_map(|g| g.as_ref().ok());
    let healthy: u32 = read.clone().map(|g| g.healthy).fold(0, u32::saturating_add);
    let total: u32 = read.map(|g| g.total).fold(0, u32::saturating_add);
    if healthy > 0 {
        return BackendHealth::Healthy { healthy, total };
    }
    if let Some(e) = groups.iter().find_map(|g| g.as_ref().err()) {
        let reason = if e.not_found {
            UnknownHealth::NotFound
        } else {
            UnknownHealth::ReadFailed {
                message: e.message.clone(),
                retryable: e.retryable,
            }
        };
        return BackendHealth::Unknown { reason };
    }
    if total > 0 {
        BackendHealth::Unhealthy { total }
    } else {
        BackendHealth::Unknown {
            reason: UnknownHealth::NoInstances,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Group = Result<GroupHealth, GroupError>;

    fn ok(healthy: u32, total: u32) -> Group {
        Ok(GroupHealth { healthy, total })
    }

    fn failed(not_found: bool) -> Group {
        Err(GroupError {
            message: "boom".into(),
            retryable: !not_found,
            not_found,
        })
    }

    #[test]
    fn the_verdict_of_a_backend_from_its_groups() {
        let unknown = |reason| BackendHealth::Unknown { reason };
        let read_failed = unknown(UnknownHealth::ReadFailed {
            message: "boom".into(),
            retryable: true,
        });
        let cases: Vec<(&str, Vec<Group>, BackendHealth)> = vec![
            ("no group", vec![], unknown(UnknownHealth::NoInstances)),
            (
                "empty groups",
                vec![ok(0, 0), ok(0, 0)],
                unknown(UnknownHealth::NoInstances),
            ),
            (
                "one healthy of three",
                vec![ok(1, 3)],
                BackendHealth::Healthy { healthy: 1, total: 3 },
            ),
            (
                "healthy in another zone",
                vec![ok(0, 2), ok(1, 1)],
                BackendHealth::Healthy { healthy: 1, total: 3 },
            ),
            (
                "none healthy",
                vec![ok(0, 2), ok(0, 1)],
                BackendHealth::Unhealthy { total: 3 },
            ),
            (
                "none healthy, one zone empty",
                vec![ok(0, 2), ok(0, 0)],
                BackendHealth::Unhealthy { total: 2 },
            ),
            (
                "a failed group does not hide a healthy one, whatever the order",
                vec![failed(false), ok(2, 2)],
                BackendHealth::Healthy { healthy: 2, total: 2 },
            ),
            (
                "a failed group may hold the healthy ones",
                vec![ok(0, 2), failed(false)],
                read_failed,
            ),
            (
                "gone meanwhile",
                vec![failed(true)],
                unknown(UnknownHealth::NotFound),
            ),
        ];
        for (what, groups, want) in cases {
            assert_eq!(verdict(&groups), want, "{what}");
        }
    }

    #[test]
    fn a_pass_reads_the_backend_services_once_unless_we_write_one() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + std::time::Duration::from_secs(s);
        let names = |list: &[&str]| list.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        let mut pass = HealthPass::default();
        // (what, names asked, what `fresh` would require now, last write, the oldest list accepted)
        type Case = (&'static str, Vec<String>, u64, Option<u64>, u64);
        let cases: [Case; 6] = [
            ("the first call begins a pass", names(&["a", "b"]), 10, None, 10),
            (
                "a later call of the pass: the same list",
                names(&["c", "d"]),
                30,
                None,
                10,
            ),
            ("an old write is in it already", names(&["e"]), 50, Some(5), 10),
            (
                "a name asked again: the next pass",
                names(&["a"]),
                70,
                Some(5),
                70,
            ),
            (
                "a write of ours during the pass: after it",
                names(&["b"]),
                90,
                Some(80),
                80,
            ),
            (
                "and so on for the rest of the pass",
                names(&["c"]),
                100,
                Some(80),
                80,
            ),
        ];
        for (what, asked, fresh, last_write, want) in cases {
            let got = pass.not_before(&asked, || at(fresh), last_write.map(at));
            assert_eq!(got, at(want), "{what}");
        }
    }

    #[test]
    fn counts_healthy_instances_of_an_answer() {
        let answer: wire::BackendServiceGroupHealth = serde_json::from_value(json!({
            "kind": "compute#backendServiceGroupHealth",
            "healthStatus": [
                {"instance": "i1", "ipAddress": "10.0.0.1", "port": 30080, "healthState": "HEALTHY"},
                {"instance": "i2", "ipAddress": "10.0.0.2", "port": 30080, "healthState": "UNHEALTHY"},
                {"instance": "i3", "healthState": "DRAINING"},
            ],
        }))
        .unwrap();
        assert_eq!(count(&answer), GroupHealth { healthy: 1, total: 3 });
        let empty: wire::BackendServiceGroupHealth =
            serde_json::from_value(json!({"kind": "compute#backendServiceGroupHealth"})).unwrap();
        assert_eq!(count(&empty), GroupHealth { healthy: 0, total: 0 });
    }
}
