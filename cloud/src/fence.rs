//! A write fence: the permission to change the cloud, granted until an instant.
//!
//! Of several replicas only the leader may write. Leadership is a lease that another replica may
//! take once it has not been renewed for its duration; a leader that stalls (a long pause, a
//! partition from the API server) may not notice at once that it lost it. The fence closes on its
//! own when the permission runs out, whatever the rest of the process is doing: every provider
//! checks it immediately before it sends a write, so a replica whose lease lapsed sends none, even
//! from a task nobody stopped yet.
//!
//! The leader grants the fence up to `start of the last successful renewal + renew deadline`,
//! which is earlier than any moment another replica may take the lease (`lease duration` after it
//! last saw the record change).

use crate::Error;
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

/// Shared permission to write; cloning shares it.
#[derive(Clone, Debug)]
pub struct WriteFence(Arc<Mutex<Grant>>);

#[derive(Clone, Copy, Debug)]
enum Grant {
    /// Writes are always allowed (no leader election).
    Always,
    /// Writes are allowed until this instant.
    Until(Instant),
    /// Writes are refused for good.
    Closed,
}

impl Default for WriteFence {
    fn default() -> Self {
        Self::open()
    }
}

impl WriteFence {
    /// A fence that never closes (a single replica without leader election).
    pub fn open() -> Self {
        Self(Arc::new(Mutex::new(Grant::Always)))
    }

    /// A fence that refuses every write until [`WriteFence::grant_until`].
    pub fn shut() -> Self {
        Self(Arc::new(Mutex::new(Grant::Until(Instant::now()))))
    }

    fn grant(&self) -> std::sync::MutexGuard<'_, Grant> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Allows writes until `until` (never past a [`WriteFence::close`]).
    pub fn grant_until(&self, until: Instant) {
        let mut grant = self.grant();
        if let Grant::Until(current) = *grant {
            *grant = Grant::Until(current.max(until));
        }
    }

    /// Refuses every write from now on.
    pub fn close(&self) {
        *self.grant() = Grant::Closed;
    }

    /// How long writes stay allowed from now: `None` without a limit, zero when they are not.
    pub fn remaining(&self) -> Option<std::time::Duration> {
        match *self.grant() {
            Grant::Always => None,
            Grant::Until(until) => Some(until.saturating_duration_since(Instant::now())),
            Grant::Closed => Some(std::time::Duration::ZERO),
        }
    }

    /// Whether a write may be sent now.
    pub fn allows(&self) -> bool {
        match *self.grant() {
            Grant::Always => true,
            Grant::Until(until) => Instant::now() < until,
            Grant::Closed => false,
        }
    }

    /// `Ok` when a write may be sent now; otherwise the error every writer returns.
    pub fn check(&self, what: &str) -> Result<(), Error> {
        if self.allows() {
            Ok(())
        } else {
            Err(Error::new(
                crate::ErrorCategory::Fenced,
                format!("{what}: not sent, this replica no longer holds the leader lease"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn grants_expire_and_closing_is_final() {
        let open = WriteFence::open();
        assert!(open.allows());
        open.close();
        assert!(!open.allows());

        let fence = WriteFence::shut();
        assert!(!fence.allows());
        fence.grant_until(Instant::now() + Duration::from_secs(60));
        assert!(fence.allows());
        // A shorter grant never shortens a longer one.
        fence.grant_until(Instant::now());
        assert!(fence.allows());
        let clone = fence.clone();
        fence.close();
        assert!(!clone.allows(), "clones share the permission");
        clone.grant_until(Instant::now() + Duration::from_secs(60));
        assert!(!clone.allows(), "a closed fence stays closed");
        assert_eq!(
            clone.check("creating x").unwrap_err().category,
            crate::ErrorCategory::Fenced
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_grant_runs_out_on_its_own() {
        let fence = WriteFence::shut();
        fence.grant_until(Instant::now() + Duration::from_millis(100));
        assert!(fence.allows());
        assert_eq!(fence.remaining(), Some(Duration::from_millis(100)));
        tokio::time::advance(Duration::from_millis(101)).await;
        assert!(!fence.allows());
        // Ran out, not closed: a renewal grants it again.
        fence.grant_until(Instant::now() + Duration::from_millis(100));
        assert!(fence.allows());
        assert_eq!(WriteFence::open().remaining(), None);
    }
}
