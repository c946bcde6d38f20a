//! Provider errors, classified by what the caller should do about them.

use std::fmt;
use std::time::Duration;

/// A failed provider call.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub category: ErrorCategory,
    /// What failed and why, naming the cloud resource; safe to show to users.
    pub message: String,
    /// How long the cloud asked us to wait, when it said.
    pub retry_after: Option<Duration>,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// What kind of failure an [`Error`] is, which decides whether and when to retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCategory {
    /// The user must change something: a quota to raise, a static address that does not exist,
    /// a certificate the cloud refuses, a name taken by a resource we do not own. Retrying
    /// without a change does not help.
    User,
    /// The cloud's API quota or our own rate limit: retry later, slower.
    RateLimited,
    /// A server error, timeout, network failure or failed operation: retry with backoff.
    Transient,
    /// A concurrent writer changed the resource (stale fingerprint): re-read and retry at once.
    Conflict,
    /// The cloud answered something we did not expect: a bug here or in the cloud.
    Bug,
    /// Not sent: this replica may no longer write (it lost the leader lease, or is stopping).
    Fenced,
}

impl ErrorCategory {
    /// Stable, low-cardinality: used in metric labels and Event reasons.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCategory::User => "user",
            ErrorCategory::RateLimited => "rate-limited",
            ErrorCategory::Transient => "transient",
            ErrorCategory::Conflict => "conflict",
            ErrorCategory::Bug => "bug",
            ErrorCategory::Fenced => "fenced",
        }
    }
}

impl fmt::Display for ErrorCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Error {
    pub fn new(category: ErrorCategory, message: impl Into<String>) -> Self {
        Self {
            category,
            message: message.into(),
            retry_after: None,
            source: None,
        }
    }

    pub fn user(message: impl Into<String>) -> Self {
        Self::new(ErrorCategory::User, message)
    }

    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(ErrorCategory::Transient, message)
    }

    pub fn bug(message: impl Into<String>) -> Self {
        Self::new(ErrorCategory::Bug, message)
    }

    /// Attaches the underlying error.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Whether retrying the same call, unchanged, may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.category,
            ErrorCategory::RateLimited | ErrorCategory::Transient | ErrorCategory::Conflict
        )
    }
}
