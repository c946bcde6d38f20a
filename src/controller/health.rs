//! Backend health: a poller that asks the provider, in bulk, how the backends of the served
//! load balancers are, keeps the answers in a cache the reconciles read, and reconciles exactly
//! the Ingresses whose backends changed.
//!
//! ```text
//!  every --health-interval (while this replica leads):
//!    backends in use (from the last ensure of each Ingress) ─► Provider::backend_health, in chunks
//!    ─► HealthCache::record ─► changed backends ─► requeue the Ingresses using them
//!  reconcile ─► report: `ingress.kubernetes.io/backends`, Ready / Degraded, Events on transitions
//! ```
//!
//! A backend shared by many Ingresses is asked about once per pass, whatever the number of
//! Ingresses (and the GCE provider lists the backend services once per pass, whatever the
//! number of chunks); the provider spreads the queries under its own rate limit
//! (`--gce-health-qps`), so a pass takes longer rather than crowding the reads that build load balancers. Polling only
//! reads: it writes nothing to the cloud, and to an Ingress only when what it shows changes.

use super::context::Context;
use cloud::{BackendHealth, UnknownHealth};
use k8s_openapi::api::networking::v1::Ingress;
use kube::runtime::reflector::ObjectRef;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Backends per provider call: results reach the Ingresses chunk by chunk during a long pass.
const CHUNK: usize = 64;

/// How many passes a value read before stays shown while reads fail for a reason that may pass
/// (a server error, a rate limit): one failed pass must not flip every backend to Unknown and
/// back, with two writes to every Ingress.
const KEEP_PASSES: u32 = 3;

/// What the poller last read of one backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reading {
    /// What the provider answered, or, while reads fail for a reason that may pass, the last
    /// known value kept for up to three passes.
    pub health: BackendHealth,
    /// When it was read (a kept value keeps its time).
    pub read_at: Instant,
}

/// The health of every backend in use, by backend resource name, as last read.
pub struct HealthCache {
    /// Zero: polling is off, and nothing is ever read.
    interval: Duration,
    readings: Mutex<HashMap<String, Reading>>,
}

impl HealthCache {
    /// An empty cache for a poller passing every `interval` (zero: polling is off). The
    /// interval also bounds how long a known value outlives failing reads.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            readings: Mutex::new(HashMap::new()),
        }
    }

    /// Whether backend health is polled at all.
    pub fn enabled(&self) -> bool {
        !self.interval.is_zero()
    }

    fn readings(&self) -> std::sync::MutexGuard<'_, HashMap<String, Reading>> {
        self.readings.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The last reading of a backend, if it was read in this process.
    pub fn get(&self, name: &str) -> Option<Reading> {
        self.readings().get(name).cloned()
    }

    /// Records what a pass read; returns the backends whose health, as an Ingress shows it,
    /// changed (a first reading counts as a change).
    pub fn record(&self, results: BTreeMap<String, BackendHealth>, now: Instant) -> Vec<String> {
        let keep_for = self.interval.saturating_mul(KEEP_PASSES);
        let mut readings = self.readings();
        let mut changed = Vec::new();
        for (name, health) in results {
            let old = readings.get(&name);
            let new = merge(old, health, now, keep_for);
            if old.is_none_or(|o| shown(&o.health) != shown(&new.health)) {
                changed.push(name.clone());
            }
            readings.insert(name, new);
        }
        changed
    }

    /// Forgets backends no Ingress uses any more.
    pub fn retain(&self, in_use: &BTreeMap<String, Vec<String>>) {
        self.readings().retain(|name, _| in_use.contains_key(name));
    }

    /// How many backends are healthy, unhealthy and unknown.
    pub fn counts(&self) -> [(&'static str, i64); 3] {
        let mut counts = [("HEALTHY", 0), ("UNHEALTHY", 0), ("Unknown", 0)];
        for reading in self.readings().values() {
            let i = match reading.health {
                BackendHealth::Healthy { .. } => 0,
                BackendHealth::Unhealthy { .. } => 1,
                BackendHealth::Unknown { .. } => 2,
            };
            counts[i].1 += 1;
        }
        counts
    }
}

/// The new reading of a backend: what was read, except that a read failing for a reason that
/// may pass keeps a known value read within `keep_for`.
fn merge(old: Option<&Reading>, health: BackendHealth, now: Instant, keep_for: Duration) -> Reading {
    let passing = matches!(
        &health,
        BackendHealth::Unknown {
            reason: UnknownHealth::ReadFailed { retryable: true, .. }
        }
    );
    match old {
        Some(old)
            if passing
                && !matches!(old.health, BackendHealth::Unknown { .. })
                && now.saturating_duration_since(old.read_at) < keep_for =>
        {
            old.clone()
        }
        _ => Reading { health, read_at: now },
    }
}

/// What of a backend's health an Ingress shows: the annotation's value, and for a backend
/// with no healthy instance how many instances it has (the state message names it).
fn shown(health: &BackendHealth) -> (&'static str, Option<u32>) {
    match health {
        BackendHealth::Unhealthy { total } => (health.as_str(), Some(*total)),
        other => (other.as_str(), None),
    }
}

/// Polls until `cancel`, a pass every `interval` (start to start; a pass that takes longer is
/// followed at once by the next). Nothing when polling is off. A pass under way when `cancel`
/// fires is dropped: it only reads.
pub async fn poll(ctx: Arc<Context>, cancel: CancellationToken) {
    if !ctx.health.enabled() {
        return;
    }
    let interval = ctx.health.interval;
    // The first failure of the last pass, if any.
    let mut last_error: Option<String> = None;
    loop {
        let started = Instant::now();
        let primed = tokio::select! {
            _ = cancel.cancelled() => return,
            primed = ctx.prime() => primed,
        };
        if primed.is_ok() {
            let span = tracing::debug_span!("health_pass");
            let failures = tokio::select! {
                _ = cancel.cancelled() => return,
                failures = pass(&ctx).instrument(span) => failures,
            };
            // Told once when the first failure appears or changes, not every pass.
            let error = failures.as_ref().map(|f| f.first.clone());
            if error != last_error {
                match &failures {
                    Some(f) => tracing::warn!(
                        error = %f.first,
                        backends = f.backends,
                        "reading backend health: some backend services could not be read"
                    ),
                    None if last_error.is_some() => tracing::info!("backend health is read again"),
                    None => {}
                }
                last_error = error;
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep_until(started + interval) => {}
        }
    }
}

/// The backends a pass could not read.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Failures {
    /// The first failure's message (in name order).
    first: String,
    /// How many backends could not be read.
    backends: usize,
}

impl Failures {
    /// Adds the failed reads among `results`.
    fn add(failures: &mut Option<Failures>, results: &BTreeMap<String, BackendHealth>) {
        for health in results.values() {
            if let BackendHealth::Unknown {
                reason: UnknownHealth::ReadFailed { message, .. },
            } = health
            {
                match failures {
                    Some(f) => f.backends += 1,
                    None => {
                        *failures = Some(Failures {
                            first: message.clone(),
                            backends: 1,
                        })
                    }
                }
            }
        }
    }
}

/// One pass over every backend in use; the backends it could not read, whether a whole
/// provider call failed or the reads of some groups did (a read that fails for a reason that
/// may pass counts too, though the last known value is kept a while).
async fn pass(ctx: &Context) -> Option<Failures> {
    let in_use = ctx.backend_users();
    ctx.health.retain(&in_use);
    let names: Vec<String> = in_use.keys().cloned().collect();
    let mut failures = None;
    for chunk in names.chunks(CHUNK) {
        let results = match ctx.provider.backend_health(chunk).await {
            Ok(results) => results,
            Err(e) => {
                // Every backend of the chunk failed alike.
                let reason = UnknownHealth::ReadFailed {
                    message: e.message.clone(),
                    retryable: e.is_retryable(),
                };
                chunk
                    .iter()
                    .map(|n| {
                        let reason = reason.clone();
                        (n.clone(), BackendHealth::Unknown { reason })
                    })
                    .collect()
            }
        };
        Failures::add(&mut failures, &results);
        let changed = ctx.health.record(results, Instant::now());
        if changed.is_empty() {
            continue;
        }
        // Who uses them is looked up after recording, not taken from the start of the pass: an
        // Ingress ensured meanwhile either is found here, or reports after the recording and
        // reads the new value itself.
        let users = ctx.backend_users();
        let ingresses: BTreeSet<&String> = changed
            .iter()
            .filter_map(|name| users.get(name))
            .flatten()
            .collect();
        if !ingresses.is_empty() {
            tracing::debug!(
                backends = changed.len(),
                ingresses = ingresses.len(),
                "backend health changed"
            );
        }
        for key in ingresses {
            if let Some((namespace, name)) = key.split_once('/') {
                ctx.requeue(ObjectRef::<Ingress>::new(name).within(namespace));
            }
        }
    }
    ctx.metrics
        .health_pass(if failures.is_some() { "error" } else { "ok" });
    ctx.metrics.set_backend_health(&ctx.health.counts());
    failures
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(retryable: bool) -> BackendHealth {
        BackendHealth::Unknown {
            reason: UnknownHealth::ReadFailed {
                message: "boom".into(),
                retryable,
            },
        }
    }

    #[test]
    fn a_passing_failure_keeps_a_known_value_for_a_while() {
        let t0 = Instant::now();
        let keep = Duration::from_secs(90);
        let healthy = BackendHealth::Healthy { healthy: 1, total: 2 };
        let unhealthy = BackendHealth::Unhealthy { total: 2 };
        let read = |health: &BackendHealth, s: u64| Reading {
            health: health.clone(),
            read_at: t0 + Duration::from_secs(s),
        };
        let at = |s: u64| t0 + Duration::from_secs(s);
        let not_found = BackendHealth::Unknown {
            reason: UnknownHealth::NotFound,
        };
        // (what: old reading, new health, now, the reading kept)
        let cases = [
            ("first reading", None, healthy.clone(), 0, read(&healthy, 0)),
            (
                "a change",
                Some(read(&healthy, 0)),
                unhealthy.clone(),
                30,
                read(&unhealthy, 30),
            ),
            (
                "a passing failure keeps it",
                Some(read(&healthy, 0)),
                failed(true),
                60,
                read(&healthy, 0),
            ),
            (
                "for a while only",
                Some(read(&healthy, 0)),
                failed(true),
                90,
                read(&failed(true), 90),
            ),
            (
                "a lasting failure at once",
                Some(read(&healthy, 0)),
                failed(false),
                30,
                read(&failed(false), 30),
            ),
            (
                "gone at once",
                Some(read(&healthy, 0)),
                not_found.clone(),
                30,
                read(&not_found, 30),
            ),
            (
                "nothing known to keep",
                None,
                failed(true),
                30,
                read(&failed(true), 30),
            ),
        ];
        for (what, old, new, now, want) in cases {
            assert_eq!(merge(old.as_ref(), new, at(now), keep), want, "{what}");
        }
    }

    #[test]
    fn failed_reads_of_a_pass_are_counted_whatever_failed() {
        let results = |entries: Vec<(&str, BackendHealth)>| -> BTreeMap<String, BackendHealth> {
            entries.into_iter().map(|(n, h)| (n.to_owned(), h)).collect()
        };
        let read_failed = |message: &str| BackendHealth::Unknown {
            reason: UnknownHealth::ReadFailed {
                message: message.into(),
                retryable: false,
            },
        };
        let mut failures = None;
        Failures::add(
            &mut failures,
            &results(vec![
                ("a", BackendHealth::Healthy { healthy: 1, total: 1 }),
                (
                    "b",
                    BackendHealth::Unknown {
                        reason: UnknownHealth::NotFound,
                    },
                ),
                (
                    "c",
                    BackendHealth::Unknown {
                        reason: UnknownHealth::NoInstances,
                    },
                ),
            ]),
        );
        assert_eq!(failures, None, "gone or empty is no failure to read");
        Failures::add(
            &mut failures,
            &results(vec![
                ("d", read_failed("403 on d")),
                ("e", read_failed("403 on e")),
            ]),
        );
        Failures::add(&mut failures, &results(vec![("f", failed(true))]));
        assert_eq!(
            failures,
            Some(Failures {
                first: "403 on d".into(),
                backends: 3
            })
        );
    }

    #[test]
    fn only_changes_an_ingress_shows_are_changes() {
        let cache = HealthCache::new(Duration::from_secs(30));
        let t0 = Instant::now();
        let one = |h: BackendHealth| BTreeMap::from([("be".to_owned(), h)]);
        let healthy = |healthy| BackendHealth::Healthy { healthy, total: 3 };
        assert_eq!(cache.record(one(healthy(3)), t0), ["be"], "first reading");
        assert!(
            cache.record(one(healthy(1)), t0).is_empty(),
            "still HEALTHY: the annotation stays"
        );
        assert_eq!(
            cache.record(one(BackendHealth::Unhealthy { total: 3 }), t0),
            ["be"]
        );
        assert_eq!(
            cache.record(one(BackendHealth::Unhealthy { total: 2 }), t0),
            ["be"],
            "the state message counts the instances"
        );
        assert!(cache.record(one(failed(true)), t0).is_empty(), "kept");
        assert_eq!(cache.counts(), [("HEALTHY", 0), ("UNHEALTHY", 1), ("Unknown", 0)]);
        cache.retain(&BTreeMap::new());
        assert!(cache.get("be").is_none());
        assert!(!HealthCache::new(Duration::ZERO).enabled());
    }
}
