//! Endpoint backends (container-native load balancing): keeps the endpoints the cloud sends a
//! Service port's traffic to in line with its ready pods, and the pods' load-balancer readiness
//! gate in line with what the cloud says of their endpoints.
//!
//! ```text
//!  enqueue(BackendKey): after an ensure that uses it (forced when it changed something), on
//!  EndpointSlice, Pod and Node changes, every resync (forced: a drift check), and while a gated
//!  pod waits for its endpoint (every second, slower while nothing moves)
//!    ─► in use as an endpoint backend — by a load balancer this process serves, by one
//!       switching away from it, or by one the cloud holds (an Ingress in Error after a
//!       restart still routes there)? (else let its gated pods go and forget it)
//!    ─► translate::endpoint_plan ─► Provider::sync_endpoints (only when the set changed, or forced)
//!    ─► Provider::endpoint_health (only while a gated pod is not True yet)
//!    ─► gates::gate_writes (pure) ─► patch pods/status, paced by --pod-status-qps
//! ```
//!
//! One key never blocks another: keys are synced concurrently (at most [`CONCURRENCY`] at
//! once), a key at most once at a time, and a key whose sync failed waits out its own backoff.
//! A key whose backend does not exist yet in the cloud ([`EndpointSync::NoBackend`]) is not
//! retried on a timer: the next ensure of a load balancer using it enqueues it again.
//! The readiness gate itself is [`super::gates`].

use super::context::Context;
use super::gates::{Pacer, release_gates, write_gates};
use crate::translate;
use cloud::EndpointSync;
use cloud::model::{BackendKey, EndpointSet};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Keys synced at once.
pub const CONCURRENCY: usize = 8;

/// How soon a key is looked at again while one of its gated pods waits for the load balancer,
/// at first (see [`gate_poll_delay`]).
pub const GATE_POLL: Duration = Duration::from_secs(1);
/// The longest wait between two reads of a key's endpoint health while the same pods wait.
pub const GATE_POLL_MAX: Duration = Duration::from_secs(16);
/// Reads at [`GATE_POLL`] before slowing down: a new endpoint needs one health-check interval
/// (15 s by default) times the healthy threshold to pass.
const GATE_POLLS_FAST: u32 = 20;

/// The queue of endpoint backends to sync, and what is remembered of each.
pub struct EndpointQueue {
    state: Mutex<QueueState>,
    wake: Notify,
    /// The pace of pod status writes.
    pacer: Pacer,
}

#[derive(Default)]
struct QueueState {
    /// Keys waiting, with when they are due and whether the sync must reach the cloud.
    pending: HashMap<BackendKey, Pending>,
    /// Keys being synced now.
    running: BTreeSet<BackendKey>,
    /// Per key, what is remembered across syncs.
    keys: HashMap<BackendKey, KeyState>,
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    due: Instant,
    force: bool,
}

#[derive(Clone, Debug, Default)]
struct KeyState {
    /// The set the cloud held after the last sync that reached it.
    synced: Option<EndpointSet>,
    /// The cloud has no backend for it: wait for an ensure.
    awaiting_ensure: bool,
    failures: u32,
    /// After a failure, nothing syncs it before this (changes meanwhile wait too).
    retry_at: Option<Instant>,
    /// The pod ports of its endpoints, as last planned (for the firewall).
    ports: BTreeSet<u16>,
    /// The gated pods that waited for their endpoint's health at the last read, and how many
    /// reads in a row found the same ones waiting (the poll slows down while nothing moves).
    waiting: BTreeSet<(String, String)>,
    idle_polls: u32,
}

impl EndpointQueue {
    /// A queue writing pod statuses at most `pod_status_qps` times a second.
    pub fn new(pod_status_qps: f64) -> Self {
        Self {
            state: Mutex::new(QueueState::default()),
            wake: Notify::new(),
            pacer: Pacer::new(pod_status_qps),
        }
    }

    /// Waits for the turn of one pod status write (`--pod-status-qps`).
    pub(super) async fn pace(&self) {
        self.pacer.wait().await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Syncs `key` soon; `force`: reach the cloud even if the set looks unchanged (after an
    /// ensure, which may have created its groups).
    pub fn enqueue(&self, key: &BackendKey, force: bool) {
        self.enqueue_at(key, Instant::now(), force);
    }

    fn enqueue_at(&self, key: &BackendKey, due: Instant, force: bool) {
        let mut state = self.lock();
        let due = match state.keys.get(key).and_then(|k| k.retry_at) {
            Some(at) => due.max(at),
            None => due,
        };
        let entry = state.pending.entry(key.clone()).or_insert(Pending { due, force });
        entry.due = entry.due.min(due);
        entry.force |= force;
        drop(state);
        self.wake.notify_one();
    }

    /// A load balancer using `key` was just ensured: its backend exists in the cloud now. Its
    /// endpoints are synced soon, reaching the cloud even if they look unchanged when the ensure
    /// `changed` something (it may have created the groups).
    pub fn ensured(&self, key: &BackendKey, changed: bool) {
        if let Some(k) = self.lock().keys.get_mut(key) {
            k.awaiting_ensure = false;
        }
        self.enqueue(key, changed);
    }

    /// Syncs every key of a served Service `namespace/service` (an EndpointSlice or a pod of
    /// it changed).
    pub fn enqueue_service(&self, in_use: &BTreeSet<BackendKey>, namespace: &str, service: &str) {
        for key in in_use
            .iter()
            .filter(|k| k.namespace == namespace && k.service == service)
        {
            self.enqueue(key, false);
        }
    }

    /// The pod ports of every endpoint backend known, for the firewall.
    pub fn ports(&self) -> BTreeSet<u16> {
        self.lock()
            .keys
            .values()
            .flat_map(|k| k.ports.iter().copied())
            .collect()
    }

    /// Takes the first due key not being synced, or says how long until one is due.
    fn next(&self, now: Instant) -> Result<(BackendKey, bool), Option<Instant>> {
        let mut state = self.lock();
        let QueueState { pending, running, .. } = &mut *state;
        let due = pending
            .iter()
            .filter(|(k, _)| !running.contains(*k))
            .min_by_key(|(_, p)| p.due)
            .map(|(k, p)| (k.clone(), *p));
        match due {
            Some((key, p)) if p.due <= now => {
                pending.remove(&key);
                running.insert(key.clone());
                Ok((key, p.force))
            }
            Some((_, p)) => Err(Some(p.due)),
            None => Err(None),
        }
    }

    fn finish(&self, key: &BackendKey, outcome: Outcome) {
        let mut state = self.lock();
        state.running.remove(key);
        let retry = match outcome {
            Outcome::Forget => {
                state.keys.remove(key);
                None
            }
            Outcome::Done { again } => {
                let k = state.keys.entry(key.clone()).or_default();
                k.failures = 0;
                k.retry_at = None;
                again.map(|d| (d, false))
            }
            Outcome::AwaitEnsure => {
                let k = state.keys.entry(key.clone()).or_default();
                k.failures = 0;
                k.retry_at = None;
                k.awaiting_ensure = true;
                k.synced = None;
                None
            }
            Outcome::Failed => {
                let k = state.keys.entry(key.clone()).or_default();
                k.failures = k.failures.saturating_add(1);
                k.synced = None;
                let delay = retry_delay(k.failures);
                k.retry_at = Some(Instant::now() + delay);
                let retry_at = k.retry_at;
                // A change queued meanwhile waits for the retry too.
                if let (Some(p), Some(at)) = (state.pending.get_mut(key), retry_at) {
                    p.due = p.due.max(at);
                }
                Some((delay, true))
            }
        };
        drop(state);
        if let Some((delay, force)) = retry {
            self.enqueue_at(key, Instant::now() + delay, force);
        } else {
            // Another key may be waiting for this one's slot.
            self.wake.notify_one();
        }
    }

    fn key_state(&self, key: &BackendKey) -> KeyState {
        self.lock().keys.get(key).cloned().unwrap_or_default()
    }

    fn update(&self, key: &BackendKey, f: impl FnOnce(&mut KeyState)) {
        f(self.lock().keys.entry(key.clone()).or_default());
    }
}

/// When to read a key's endpoint health again, after `idle_polls` reads in a row found the same
/// pods waiting: every second at first, then slower and slower up to [`GATE_POLL_MAX`], so that a
/// pod that never passes the load balancer's health check (a wrong probe path) costs little, and
/// its reads do not crowd out the health poller's (both go through `--gce-health-qps`). A pod
/// that starts or stops waiting starts over at once.
pub fn gate_poll_delay(idle_polls: u32) -> Duration {
    let slow = idle_polls.saturating_sub(GATE_POLLS_FAST);
    GATE_POLL.saturating_mul(1 << slow.min(4)).min(GATE_POLL_MAX)
}

/// 1 s, 2 s, 4 s… up to 5 min.
fn retry_delay(failures: u32) -> Duration {
    Duration::from_secs(1)
        .saturating_mul(1 << failures.saturating_sub(1).min(9))
        .min(Duration::from_secs(300))
}

/// What came of one key's sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// No served load balancer uses it as an endpoint backend.
    Forget,
    /// Synced; look again after this long (a gated pod waits for its endpoint's health).
    Done { again: Option<Duration> },
    /// The cloud has no backend for it yet: the next ensure enqueues it.
    AwaitEnsure,
    /// Retry with backoff.
    Failed,
}

/// Syncs queued keys until `cancel`; syncs under way then are finished first. Also enqueues
/// every key in use once per `ctx.resync`.
pub async fn run(ctx: Arc<Context>, cancel: CancellationToken) {
    let primed = tokio::select! {
        _ = cancel.cancelled() => return,
        primed = ctx.prime() => primed,
    };
    if primed.is_err() {
        return;
    }
    ctx.refresh_endpoint_backends().await;
    let queue = ctx.endpoints.clone();
    let mut running = FuturesUnordered::new();
    let mut resync = tokio::time::interval_at(
        Instant::now() + ctx.resync,
        ctx.resync.max(Duration::from_secs(1)),
    );
    loop {
        // Start what is due, within the bound.
        let mut wait_until = None;
        while running.len() < CONCURRENCY {
            match queue.next(Instant::now()) {
                Ok((key, force)) => {
                    let ctx = ctx.clone();
                    running.push(async move {
                        let outcome = sync_key(&ctx, &key, force).await;
                        ctx.endpoints.finish(&key, outcome);
                    });
                }
                Err(due) => {
                    wait_until = due;
                    break;
                }
            }
        }
        let sleep = async {
            match wait_until {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => break,
            Some(()) = running.next(), if !running.is_empty() => {}
            _ = queue.wake.notified() => {}
            _ = sleep => {}
            _ = resync.tick() => {
                ctx.refresh_endpoint_backends().await;
                // Every key in use, and every key known (one no longer in use is forgotten).
                let known: Vec<BackendKey> = queue.lock().keys.keys().cloned().collect();
                for key in ctx.endpoint_backends_in_use().into_iter().chain(known) {
                    queue.enqueue(&key, true);
                }
            }
        }
    }
    // Writes under way finish.
    while running.next().await.is_some() {}
}

/// One sync of one key.
async fn sync_key(ctx: &Context, key: &BackendKey, force: bool) -> Outcome {
    let nodes = ctx.infra.cloud_nodes();
    if !ctx.endpoint_backends_in_use().contains(key) {
        if !ctx.endpoints.key_state(key).ports.is_empty() {
            ctx.endpoints.finish_ports(key, &ctx.infra, BTreeSet::new());
        }
        release_gates(ctx, key, &nodes).await;
        return Outcome::Forget;
    }
    let plan = translate::endpoint_plan(key, &ctx.stores, &nodes);
    for note in &plan.notes {
        tracing::debug!(backend = %key, note, "endpoints");
    }
    // The pods' serving ports, and the health check's own port when the Service sets one.
    let ports: BTreeSet<u16> = plan
        .set
        .endpoints
        .iter()
        .map(|e| e.port)
        .chain(ctx.endpoint_health_check_port(key))
        .collect();
    ctx.endpoints.finish_ports(key, &ctx.infra, ports.clone());
    let known = ctx.endpoints.key_state(key);
    if known.awaiting_ensure && !force {
        // Nothing is attached in the cloud: every gated pod waits.
        write_gates(ctx, key, &plan.gated, None).await;
        return Outcome::AwaitEnsure;
    }
    if force || known.synced.as_ref() != Some(&plan.set) {
        // The firewall lets the load balancer reach new pod ports before they take traffic.
        ctx.infra.ensure_covers_endpoint_ports(&ports).await;
        match ctx.provider.sync_endpoints(&plan.set).await {
            Ok(EndpointSync::Synced { attached, detached }) => {
                ctx.metrics.endpoints_synced("ok", attached, detached);
                if attached + detached > 0 {
                    tracing::info!(backend = %key, attached, detached, "endpoints synced");
                }
                ctx.endpoints.update(key, |k| {
                    k.synced = Some(plan.set.clone());
                    k.awaiting_ensure = false;
                });
            }
            Ok(EndpointSync::NoBackend) => {
                ctx.metrics.endpoints_synced("no-backend", 0, 0);
                if !ctx.serves_endpoint_backend(key) {
                    // Gone from the cloud, and no load balancer of this process wants it.
                    release_gates(ctx, key, &nodes).await;
                    return Outcome::Forget;
                }
                tracing::debug!(backend = %key, "no backend in the cloud yet: waiting for an ensure");
                write_gates(ctx, key, &plan.gated, None).await;
                return Outcome::AwaitEnsure;
            }
            Err(e) if e.category == cloud::ErrorCategory::Fenced => return Outcome::Failed,
            Err(e) => {
                ctx.metrics.endpoints_synced(e.category.as_str(), 0, 0);
                tracing::warn!(backend = %key, error = %e, "syncing endpoints");
                return Outcome::Failed;
            }
        }
    }
    let waiting: BTreeSet<(String, String)> = plan
        .gated
        .iter()
        .filter(|p| p.condition != Some(true) && p.attached)
        .map(|p| (p.namespace.clone(), p.name.clone()))
        .collect();
    let mut idle_polls = 0;
    ctx.endpoints.update(key, |k| {
        k.idle_polls = if k.waiting == waiting {
            k.idle_polls.saturating_add(1)
        } else {
            0
        };
        idle_polls = k.idle_polls;
        k.waiting = waiting.clone();
    });
    let health = if !waiting.is_empty() {
        match ctx.provider.endpoint_health(key).await {
            Ok(health) => Some(health),
            Err(e) => {
                tracing::debug!(backend = %key, error = %e, "reading endpoint health");
                None
            }
        }
    } else {
        None
    };
    let pending = write_gates(ctx, key, &plan.gated, health.as_ref()).await;
    Outcome::Done {
        again: (pending > 0).then(|| gate_poll_delay(idle_polls)),
    }
}

impl EndpointQueue {
    /// Records the pod ports of `key`; a change makes the infrastructure follow (debounced).
    fn finish_ports(&self, key: &BackendKey, infra: &super::infra::InfraSync, ports: BTreeSet<u16>) {
        let changed = {
            let mut state = self.lock();
            let k = state.keys.entry(key.clone()).or_default();
            let changed = k.ports != ports;
            k.ports = ports;
            changed
        };
        if changed {
            infra.set_endpoint_ports(self.ports());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_poll_slows_down_while_nothing_moves() {
        let table = [
            (0, 1),
            (19, 1),
            (20, 1),
            (21, 2),
            (22, 4),
            (23, 8),
            (24, 16),
            (25, 16),
            (1000, 16),
        ];
        for (idle, secs) in table {
            assert_eq!(
                gate_poll_delay(idle),
                Duration::from_secs(secs),
                "after {idle} idle polls"
            );
        }
    }

    #[test]
    fn the_queue_hands_out_due_keys_once_at_a_time() {
        let q = EndpointQueue::new(10.0);
        let a = BackendKey::new("default", "web", 80);
        let b = BackendKey::new("default", "api", 80);
        let now = Instant::now();
        q.enqueue(&a, false);
        q.enqueue(&a, true);
        let (key, force) = q.next(now + Duration::from_millis(1)).unwrap();
        assert_eq!((&key, force), (&a, true), "merged, forced");
        q.enqueue(&a, false);
        assert_eq!(
            q.next(Instant::now()).unwrap_err(),
            None,
            "a is running: not handed out twice"
        );
        q.enqueue(&b, false);
        let (key, _) = q.next(Instant::now()).unwrap();
        assert_eq!(key, b, "a is running: b goes meanwhile");
        q.finish(&a, Outcome::Failed);
        assert!(q.lock().pending[&a].due > Instant::now(), "a failure backs off");
        q.finish(&b, Outcome::AwaitEnsure);
        assert!(!q.lock().pending.contains_key(&b), "no retry without an ensure");
        assert!(q.key_state(&b).awaiting_ensure);
        q.finish(&b, Outcome::Forget);
        assert!(!q.lock().keys.contains_key(&b));
    }
}
