//! A token bucket over Compute requests; an empty bucket answers 403 `rateLimitExceeded`.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::stats::Category;

/// A token-bucket rate limit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    /// Tokens added per second.
    pub qps: f64,
    /// Bucket size (and the initial number of tokens).
    pub burst: u32,
    /// Which request categories take a token; default all of them.
    #[serde(default = "all_categories")]
    pub categories: Vec<Category>,
    /// Status of the refusal: 403 (the documented one, default) or 429.
    #[serde(default = "default_status")]
    pub status: u16,
}

impl RateLimit {
    /// A limit over every Compute request, refused with 403.
    pub fn new(qps: f64, burst: u32) -> Self {
        RateLimit {
            qps,
            burst,
            categories: all_categories(),
            status: default_status(),
        }
    }
}

fn all_categories() -> Vec<Category> {
    vec![
        Category::Reads,
        Category::Lists,
        Category::Mutations,
        Category::OperationPolls,
    ]
}

fn default_status() -> u16 {
    403
}

/// The bucket state behind a [`RateLimit`].
#[derive(Debug)]
pub(crate) struct TokenBucket {
    pub limit: RateLimit,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn new(limit: RateLimit) -> Self {
        let tokens = f64::from(limit.burst);
        TokenBucket {
            limit,
            tokens,
            last: Instant::now(),
        }
    }

    /// Takes a token for a request of `category`; `false` means refuse it.
    pub(crate) fn try_take(&mut self, category: Category, now: Instant) -> bool {
        if !self.limit.categories.contains(&category) {
            return true;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.limit.qps).min(f64::from(self.limit.burst));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_refills_at_the_configured_rate() {
        let mut b = TokenBucket::new(RateLimit::new(10.0, 2));
        let t0 = b.last;
        assert!(b.try_take(Category::Reads, t0));
        assert!(b.try_take(Category::Reads, t0));
        assert!(!b.try_take(Category::Reads, t0));
        // 100 ms at 10 qps is one token.
        assert!(b.try_take(Category::Reads, t0 + Duration::from_millis(100)));
        assert!(!b.try_take(Category::Reads, t0 + Duration::from_millis(100)));
    }

    #[test]
    fn categories_outside_the_limit_pass() {
        let mut limit = RateLimit::new(0.0, 0);
        limit.categories = vec![Category::Mutations];
        let mut b = TokenBucket::new(limit);
        let now = Instant::now();
        assert!(b.try_take(Category::Reads, now));
        assert!(!b.try_take(Category::Mutations, now));
    }
}
