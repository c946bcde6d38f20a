//! One failed Compute API call, and what kind of failure it is.
//!
//! The API reports errors in two shapes: synchronously (an HTTP error status with
//! `{"error":{"code","message","errors":[{"reason",…}]}}`, reasons in camelCase) and
//! asynchronously (an operation that ends DONE with `error.errors[].code` in UPPER_SNAKE and
//! `httpErrorStatusCode`). Both are read into [`ApiError`], with op codes mapped to the
//! synchronous reasons, so that callers test one spelling.

use super::wire::{ErrorBody, Operation};
use crate::{Error, ErrorCategory};
use std::fmt;
use std::time::Duration;

/// A failed call, as the API (or the transport) reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status (for failed operations, `httpErrorStatusCode`); 0 when no response arrived.
    pub status: u16,
    /// The first reason, in the synchronous camelCase spelling (`notFound`, `quotaExceeded`…).
    pub reason: String,
    pub message: String,
    /// Whether the failure came from a DONE operation rather than the request itself.
    pub from_operation: bool,
    /// How long the server asked us to wait (`Retry-After`).
    pub retry_after: Option<Duration>,
}

impl ApiError {
    /// A failure with no response: connection refused, reset, timed out.
    pub fn transport(message: impl Into<String>) -> Self {
        Self {
            status: 0,
            reason: "transport".into(),
            message: message.into(),
            from_operation: false,
            retry_after: None,
        }
    }

    /// Reads a synchronous error response.
    pub fn from_response(status: u16, body: &[u8], retry_after: Option<Duration>) -> Self {
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(b) => {
                let reason = b
                    .error
                    .errors
                    .first()
                    .map(|e| e.reason.clone())
                    .unwrap_or_default();
                let message = if b.error.message.is_empty() {
                    b.error
                        .errors
                        .first()
                        .map(|e| e.message.clone())
                        .unwrap_or_default()
                } else {
                    b.error.message
                };
                Self {
                    status,
                    reason,
                    message,
                    from_operation: false,
                    retry_after,
                }
            }
            Err(_) => Self {
                status,
                reason: String::new(),
                message: String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned(),
                from_operation: false,
                retry_after,
            },
        }
    }

    /// The error of an operation that ended DONE with errors (or with only an error status),
    /// if it did.
    pub fn from_operation(op: &Operation) -> Option<Self> {
        let status = op.http_error_status_code.filter(|s| *s >= 400);
        match op.error.as_ref().and_then(|e| e.errors.first()) {
            Some(first) => Some(Self {
                status: status.unwrap_or(400),
                reason: reason_of_code(&first.code),
                message: first.message.clone(),
                from_operation: true,
                retry_after: None,
            }),
            None => status.map(|status| Self {
                status,
                reason: String::new(),
                message: op
                    .http_error_message
                    .clone()
                    .unwrap_or_else(|| "the operation failed".to_owned()),
                from_operation: true,
                retry_after: None,
            }),
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status == 404 || self.reason == "notFound"
    }

    pub fn is_already_exists(&self) -> bool {
        self.status == 409 || self.reason == "alreadyExists"
    }

    /// Deleting (or changing) something another resource still refers to.
    pub fn is_in_use(&self) -> bool {
        self.reason == "resourceInUseByAnotherResource"
            || (self.status == 400 && self.message.contains("being used by"))
    }

    /// A stale or missing fingerprint.
    pub fn is_conflict(&self) -> bool {
        self.status == 412 || self.reason == "conditionNotMet"
    }

    pub fn is_rate_limited(&self) -> bool {
        self.status == 429
            || matches!(
                self.reason.as_str(),
                "rateLimitExceeded" | "userRateLimitExceeded" | "concurrentOperationsQuotaExceeded"
            )
            || self.message.contains("CONCURRENT_OPERATIONS_QUOTA_EXCEEDED")
    }

    /// A project quota on resources (not on API calls).
    pub fn is_quota_exceeded(&self) -> bool {
        self.reason == "quotaExceeded" && !self.is_rate_limited()
    }

    pub fn is_forbidden(&self) -> bool {
        self.status == 403 && !self.is_rate_limited() && !self.is_quota_exceeded()
    }

    /// Worth retrying unchanged: no response, a server error, a resource not ready yet.
    pub fn is_transient(&self) -> bool {
        self.status == 0 || self.status >= 500 || self.reason == "resourceNotReady"
    }

    pub fn category(&self) -> ErrorCategory {
        if self.is_rate_limited() {
            ErrorCategory::RateLimited
        } else if self.is_transient() {
            ErrorCategory::Transient
        } else if self.is_conflict() {
            ErrorCategory::Conflict
        } else if self.is_quota_exceeded() || self.is_forbidden() {
            ErrorCategory::User
        } else {
            ErrorCategory::Bug
        }
    }

    /// The provider error for a failed `action` (e.g. "creating URL map clb-…"), with advice
    /// where the user can act on it.
    pub fn into_error(self, action: &str) -> Error {
        let advice = if self.is_quota_exceeded() {
            " (raise the project's quota: see `gcloud compute project-info describe`)"
        } else if self.is_forbidden() {
            " (the controller's service account lacks a permission: see docs/install.md)"
        } else {
            ""
        };
        let mut error = Error::new(self.category(), format!("{action}: {self}{advice}"));
        error.retry_after = self.retry_after;
        error.with_source(self)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.status, self.reason.is_empty()) {
            (0, _) => write!(f, "{}", self.message),
            (status, true) => write!(f, "HTTP {status}: {}", self.message),
            (status, false) => write!(f, "HTTP {status} {}: {}", self.reason, self.message),
        }
    }
}

impl std::error::Error for ApiError {}

/// The API's own error behind a provider error, when there is one.
pub fn of(error: &Error) -> Option<&ApiError> {
    error.source.as_deref()?.downcast_ref::<ApiError>()
}

/// Maps an operation error code (`RESOURCE_IN_USE_BY_ANOTHER_RESOURCE`) to the synchronous
/// reason spelling (`resourceInUseByAnotherResource`).
fn reason_of_code(code: &str) -> String {
    match code {
        "RESOURCE_NOT_FOUND" => "notFound".to_owned(),
        "RESOURCE_ALREADY_EXISTS" | "ALREADY_EXISTS" => "alreadyExists".to_owned(),
        "CONDITION_NOT_MET" => "conditionNotMet".to_owned(),
        _ => {
            let mut out = String::with_capacity(code.len());
            let mut upper = false;
            for c in code.chars() {
                if c == '_' {
                    upper = true;
                } else if upper {
                    out.push(c.to_ascii_uppercase());
                    upper = false;
                } else {
                    out.push(c.to_ascii_lowercase());
                }
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_error_shapes_into_one_spelling() {
        let sync = ApiError::from_response(
            400,
            br#"{"error":{"code":400,"message":"The backendService resource 'x' is already being used by 'y'","errors":[{"domain":"global","reason":"resourceInUseByAnotherResource","message":"m"}]}}"#,
            None,
        );
        assert!(sync.is_in_use());
        let op: Operation = serde_json::from_str(
            r#"{"status":"DONE","httpErrorStatusCode":400,"httpErrorMessage":"BAD REQUEST","error":{"errors":[{"code":"RESOURCE_IN_USE_BY_ANOTHER_RESOURCE","message":"m"}]}}"#,
        )
        .unwrap();
        let async_err = ApiError::from_operation(&op).unwrap();
        assert_eq!(async_err.reason, "resourceInUseByAnotherResource");
        assert!(async_err.is_in_use() && async_err.from_operation);
    }

    #[test]
    fn classifies() {
        let e = |status, reason: &str| ApiError {
            status,
            reason: reason.into(),
            message: String::new(),
            from_operation: false,
            retry_after: None,
        };
        assert_eq!(e(403, "rateLimitExceeded").category(), ErrorCategory::RateLimited);
        assert_eq!(e(429, "").category(), ErrorCategory::RateLimited);
        assert_eq!(e(403, "quotaExceeded").category(), ErrorCategory::User);
        assert_eq!(e(403, "forbidden").category(), ErrorCategory::User);
        assert_eq!(e(503, "backendError").category(), ErrorCategory::Transient);
        assert_eq!(e(0, "transport").category(), ErrorCategory::Transient);
        assert_eq!(e(400, "resourceNotReady").category(), ErrorCategory::Transient);
        assert_eq!(e(412, "conditionNotMet").category(), ErrorCategory::Conflict);
        assert_eq!(e(400, "invalid").category(), ErrorCategory::Bug);
        assert_eq!(reason_of_code("QUOTA_EXCEEDED"), "quotaExceeded");
        assert_eq!(reason_of_code("RESOURCE_NOT_FOUND"), "notFound");
    }

    #[test]
    fn an_operation_with_only_an_error_status_failed() {
        let op: Operation = serde_json::from_str(
            r#"{"status":"DONE","httpErrorStatusCode":503,"httpErrorMessage":"SERVICE UNAVAILABLE"}"#,
        )
        .unwrap();
        let e = ApiError::from_operation(&op).expect("a failure");
        assert!(e.is_transient());
        let ok: Operation = serde_json::from_str(r#"{"status":"DONE"}"#).unwrap();
        assert!(ApiError::from_operation(&ok).is_none());
        let quota: Operation = serde_json::from_str(
            r#"{"status":"DONE","httpErrorStatusCode":403,"error":{"errors":[{"code":"CONCURRENT_OPERATIONS_QUOTA_EXCEEDED","message":"m"}]}}"#,
        )
        .unwrap();
        assert_eq!(
            ApiError::from_operation(&quota).unwrap().category(),
            ErrorCategory::RateLimited
        );
    }

    #[test]
    fn non_json_bodies_still_give_a_message() {
        let e = ApiError::from_response(502, b"<html>bad gateway</html>", None);
        assert!(e.is_transient());
        assert!(e.to_string().contains("bad gateway"));
    }
}
