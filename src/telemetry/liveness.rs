//! Whether the controller is wedged, for `/healthz`: a watch that has failed without a break for
//! too long, or a reconcile that has run for too long. Either way the process cannot recover on
//! its own (a watch whose credentials expired, a reconcile stuck on a lock or a hung call), and
//! the kubelet should restart it. A quiet watch (no changes for hours) is healthy: only failures
//! count.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Shared between the watches, the reconciler and the admin server.
#[derive(Debug)]
pub struct Liveness {
    failing_watch_after: Duration,
    stuck_reconcile_after: Duration,
    /// Kind → since when its watch has failed without a success in between.
    watches: Mutex<HashMap<&'static str, Instant>>,
    /// Reconciles in flight: id → (Ingress key, start).
    reconciles: Mutex<HashMap<u64, (String, Instant)>>,
    next: AtomicU64,
}

impl Liveness {
    pub fn new(failing_watch_after: Duration, stuck_reconcile_after: Duration) -> Self {
        Self {
            failing_watch_after,
            stuck_reconcile_after,
            watches: Mutex::new(HashMap::new()),
            reconciles: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
        }
    }

    /// The watch of `kind` delivered an event (it works).
    pub fn watch_ok(&self, kind: &'static str) {
        self.watches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(kind);
    }

    /// The watch of `kind` failed (it is retried with backoff).
    pub fn watch_failed(&self, kind: &'static str) {
        self.watches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(kind)
            .or_insert_with(Instant::now);
    }

    /// Notes a reconcile of `key` until the guard is dropped.
    pub fn reconciling(self: &Arc<Self>, key: &str) -> InFlight {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.reconciles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, (key.to_owned(), Instant::now()));
        InFlight {
            liveness: self.clone(),
            id,
        }
    }

    /// `Ok` when healthy; otherwise why not.
    pub fn check(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        for (kind, since) in self.watches.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let failing = since.elapsed();
            if failing >= self.failing_watch_after {
                problems.push(format!("the {kind} watch has failed for {}s", failing.as_secs()));
            }
        }
        let reconciles = self.reconciles.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((key, started)) = reconciles.values().min_by_key(|(_, at)| *at) {
            let running = started.elapsed();
            if running >= self.stuck_reconcile_after {
                problems.push(format!(
                    "the reconcile of Ingress {key} has run for {}s",
                    running.as_secs()
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            problems.sort();
            Err(problems)
        }
    }
}

/// A reconcile in flight (see [`Liveness::reconciling`]).
pub struct InFlight {
    liveness: Arc<Liveness>,
    id: u64,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.liveness
            .reconciles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_watch_failing_too_long_or_a_stuck_reconcile_is_unhealthy() {
        let live = Arc::new(Liveness::new(Duration::from_secs(60), Duration::from_secs(600)));
        assert!(live.check().is_ok());

        live.watch_failed("Ingress");
        tokio::time::advance(Duration::from_secs(59)).await;
        live.watch_failed("Ingress");
        assert!(live.check().is_ok(), "failing, but not for long yet");
        tokio::time::advance(Duration::from_secs(2)).await;
        let problems = live.check().unwrap_err();
        assert_eq!(problems, ["the Ingress watch has failed for 61s"]);
        live.watch_ok("Ingress");
        assert!(live.check().is_ok(), "one success resets it");

        let quick = live.reconciling("default/quick");
        drop(quick);
        let slow = live.reconciling("default/slow");
        tokio::time::advance(Duration::from_secs(600)).await;
        assert_eq!(
            live.check().unwrap_err(),
            ["the reconcile of Ingress default/slow has run for 600s"]
        );
        drop(slow);
        assert!(live.check().is_ok());
    }
}
