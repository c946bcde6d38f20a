//! Client-side rate limits, so the controller stays inside the project's API quota (which every
//! other tool in the project shares) instead of finding its edge by being refused.

use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// A sustained rate and a burst.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    /// Requests per second; 0 or less means unlimited.
    pub qps: f64,
    pub burst: u32,
}

impl Rate {
    pub const UNLIMITED: Rate = Rate { qps: 0.0, burst: 0 };

    /// A rate for health queries: `qps`, with a burst of one second's worth (at least one), so
    /// that a pass's queries are spread evenly rather than sent in a heap.
    pub fn health_queries(qps: f64) -> Rate {
        let burst = if qps.is_finite() && qps >= 1.0 {
            // Bounded above by u32::MAX by the cast's saturation.
            qps.ceil() as u32
        } else {
            1
        };
        Rate { qps, burst }
    }
}

/// Limits per class of call. The Compute API meters reads, lists, mutations and operation
/// polls separately (each 1,500 per minute by default), so each gets its own bucket.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimits {
    pub reads: Rate,
    pub mutations: Rate,
    pub operation_polls: Rate,
    /// `backendServices.getHealth` calls, which also count as reads: health polling is
    /// background work and keeps to this share of `reads`, however many backends there are,
    /// so that the reads of passes that build load balancers never wait behind it.
    pub health_queries: Rate,
}

impl Default for RateLimits {
    /// Two thirds of the default project quota of 25 per second per class, leaving room for
    /// other tools in the project; a burst of 20. Health queries: 2 per second, an eighth of
    /// the reads.
    fn default() -> Self {
        let rate = Rate { qps: 16.0, burst: 20 };
        Self {
            reads: rate,
            mutations: rate,
            operation_polls: rate,
            health_queries: Rate::health_queries(2.0),
        }
    }
}

impl RateLimits {
    pub const UNLIMITED: RateLimits = RateLimits {
        reads: Rate::UNLIMITED,
        mutations: Rate::UNLIMITED,
        operation_polls: Rate::UNLIMITED,
        health_queries: Rate::UNLIMITED,
    };
}

/// A token bucket that hands out permits in arrival order: a caller reserves its permit at once
/// (the balance may go negative) and sleeps until it is due, so waiting callers never starve.
#[derive(Debug)]
pub struct TokenBucket {
    rate: Rate,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    pub fn new(rate: Rate) -> Self {
        Self {
            rate,
            state: Mutex::new((f64::from(rate.burst), Instant::now())),
        }
    }

    /// Waits until one request may go.
    pub async fn acquire(&self) {
        if self.rate.qps <= 0.0 {
            return;
        }
        let wait = {
            let mut state = self.state.lock().await;
            let now = Instant::now();
            let burst = f64::from(self.rate.burst.max(1));
            let refilled = state.0 + now.duration_since(state.1).as_secs_f64() * self.rate.qps;
            let tokens = refilled.min(burst) - 1.0;
            *state = (tokens, now);
            if tokens >= 0.0 {
                Duration::ZERO
            } else {
                // An absurd rate (tiny, not finite) waits the longest a Duration holds; no panic.
                Duration::try_from_secs_f64(-tokens / self.rate.qps).unwrap_or(Duration::MAX)
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spaces_requests_after_the_burst() {
        let bucket = TokenBucket::new(Rate { qps: 10.0, burst: 2 });
        let start = tokio::time::Instant::now();
        for _ in 0..4 {
            bucket.acquire().await;
        }
        // Two from the burst, then one every 100 ms.
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(200) && elapsed < Duration::from_millis(250),
            "{elapsed:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn unlimited_never_waits() {
        let bucket = TokenBucket::new(Rate::UNLIMITED);
        let start = tokio::time::Instant::now();
        for _ in 0..1000 {
            bucket.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
