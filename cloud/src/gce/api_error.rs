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

/// The reason of a write refused by the fence, before any request.
const FENCED: &str = "fenced";

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

    /// The credentials were refused (401): the controller's service-account key or token is
    /// wrong, revoked, or lacks the cloud-platform scope.
    pub fn is_unauthenticated(&self) -> bool {
        self.status == 401
    }

    /// A collection, or the whole resource, over one of Compute's size limits (413
    /// `fieldSizeTooLarge`, e.g. `Value for field 'resource.hostRules' is too large: maximum
    /// size 1000 element(s); actual size 1001.`). What is too large is made of the Ingress's
    /// hosts, paths or certificates.
    pub fn is_too_large(&self) -> bool {
        self.status == 413 || self.reason == "fieldSizeTooLarge"
    }

    /// The field a 400 names in the API's wording `Invalid value for field '<field>': …`, with
    /// its indices dropped: `resource.pathMatchers.pathRules.paths`.
    pub fn invalid_field(&self) -> Option<String> {
        if self.status != 400 {
            return None;
        }
        let rest = self.message.split_once("Invalid value for field '")?.1;
        let field = rest.split_once('\'')?.0;
        let mut out = String::with_capacity(field.len());
        let mut depth = 0usize;
        for c in field.chars() {
            match c {
                '[' => depth += 1,
                ']' => depth = depth.saturating_sub(1),
                c if depth == 0 => out.push(c),
                _ => {}
            }
        }
        Some(out)
    }

    /// A 400 refusing a value that comes from the user's input (a TLS Secret's certificate or
    /// key, an Ingress host, path or certificate list, a probe's path, a static address)
    /// rather than one this provider makes up (names, links, enums: a refusal of those is our
    /// bug).
    pub fn is_invalid_user_value(&self) -> bool {
        self.invalid_field()
            .is_some_and(|f| USER_FIELDS.iter().any(|u| f == *u))
    }

    /// A VM that would be in two load-balanced instance groups (Compute allows one): the nodes
    /// already serve another load balancer through another group (GKE's own `k8s-ig--…`,
    /// another controller's). Sync reason `instanceInMultipleLoadBalancedIgs`, operation code
    /// `INSTANCE_IN_MULTIPLE_LOAD_BALANCED_IGS`; message "Validation failed for instance
    /// '…': instance may belong to at most one load-balanced instance group." (seen in
    /// kubernetes/ingress-gce users' reports, e.g. GoogleCloudPlatform/continuous-deployment-on-kubernetes#49,
    /// terraform-google-modules/terraform-google-lb-http#322).
    pub fn is_instance_in_another_load_balanced_group(&self) -> bool {
        self.reason == "instanceInMultipleLoadBalancedIgs"
            || self
                .message
                .contains("instance may belong to at most one load-balanced instance group")
    }

    /// The instance link a "Validation failed for instance '…'" message names.
    pub fn instance_named(&self) -> Option<&str> {
        let start = self.message.find("instance '")? + "instance '".len();
        let end = self.message[start..].find('\'')?;
        Some(&self.message[start..start + end])
    }

    /// Worth retrying unchanged: no response, a server error, a resource not ready yet.
    pub fn is_transient(&self) -> bool {
        (self.status == 0 && !self.is_fenced()) || self.status >= 500 || self.reason == "resourceNotReady"
    }

    /// A write this replica did not send: it may no longer write (see [`crate::WriteFence`]).
    pub fn fenced(message: impl Into<String>) -> Self {
        Self {
            status: 0,
            reason: FENCED.to_owned(),
            message: message.into(),
            from_operation: false,
            retry_after: None,
        }
    }

    pub fn is_fenced(&self) -> bool {
        self.status == 0 && self.reason == FENCED
    }

    pub fn category(&self) -> ErrorCategory {
        if self.is_fenced() {
            return ErrorCategory::Fenced;
        }
        if self.is_rate_limited() {
            ErrorCategory::RateLimited
        } else if self.is_transient() {
            ErrorCategory::Transient
        } else if self.is_conflict() {
            ErrorCategory::Conflict
        } else if self.is_quota_exceeded()
            || self.is_forbidden()
            || self.is_unauthenticated()
            || self.is_too_large()
            || self.is_invalid_user_value()
            || self.is_instance_in_another_load_balanced_group()
        {
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
        } else if self.is_unauthenticated() {
            " (the Compute API refused the controller's credentials: see docs/install.md)"
        } else if self.is_too_large() {
            if self.message.contains("sslCertificates") {
                " (the Ingress has too many TLS certificates for one load balancer)"
            } else {
                " (the Ingress has too many hosts or paths for one URL map: split it into several Ingresses)"
            }
        } else if self.is_invalid_user_value() {
            " (the value comes from the Ingress, a Service or a Secret it uses: correct it there)"
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

/// The fields, as [`ApiError::invalid_field`] gives them, whose values come from the user's
/// input, so that a 400 `invalid` about them is the user's to fix. Every other field (resource
/// names, links to our own resources, enums, timeouts the translator bounds) is made up here,
/// and a refusal of it is a bug.
const USER_FIELDS: &[&str] = &[
    // A TLS Secret's certificate chain and private key.
    "resource.certificate",
    "resource.privateKey",
    // The Ingress's TLS Secrets and pre-shared certificates, and the SSL policy it names.
    "resource.sslCertificates",
    "resource.sslPolicy",
    // The Ingress's hosts and paths.
    "resource.hostRules.hosts",
    "resource.pathMatchers.pathRules.paths",
    // The health check's path and Host header, from the readiness probe or an annotation.
    "resource.httpHealthCheck.requestPath",
    "resource.httpsHealthCheck.requestPath",
    "resource.http2HealthCheck.requestPath",
    "resource.httpHealthCheck.host",
    "resource.httpsHealthCheck.host",
    "resource.http2HealthCheck.host",
    // The IP of the forwarding rules: only a static address the user named can be refused
    // (regional, or in use by another load balancer); the one we reserve is global and ours.
    "resource.IPAddress",
];

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
        use ErrorCategory::*;
        let invalid = |field: &str| format!("Invalid value for field '{field}': 'x'. Invalid value.");
        // (status, reason, message, category, why)
        let table: Vec<(u16, &str, String, ErrorCategory, &str)> = vec![
            (403, "rateLimitExceeded", String::new(), RateLimited, "API rate quota"),
            (429, "", String::new(), RateLimited, "too many requests"),
            (403, "quotaExceeded", "Quota 'BACKEND_SERVICES' exceeded.".into(), User, "project quota to raise"),
            (403, "forbidden", String::new(), User, "a permission to grant"),
            (401, "authError", "Invalid Credentials".into(), User, "credentials to fix"),
            (
                413,
                "fieldSizeTooLarge",
                "Value for field 'resource.pathMatchers[0].pathRules' is too large: maximum size 1000 element(s); actual size 1001.".into(),
                User,
                "too many paths",
            ),
            (400, "fieldSizeTooLarge", String::new(), User, "the reason alone (a failed operation)"),
            (400, "invalid", invalid("resource.privateKey"), User, "a TLS Secret's key"),
            (400, "invalid", invalid("resource.certificate"), User, "a TLS Secret's chain"),
            (400, "invalid", invalid("resource.pathMatchers[3].pathRules[7].paths[1]"), User, "an Ingress path"),
            (400, "invalid", invalid("resource.hostRules[0].hosts[0]"), User, "an Ingress host"),
            (400, "invalid", invalid("resource.httpHealthCheck.requestPath"), User, "a probe path"),
            (400, "invalid", invalid("resource.IPAddress"), User, "a static address"),
            (400, "invalid", invalid("resource.sslCertificates"), User, "too many certificates"),
            (
                400,
                "instanceInMultipleLoadBalancedIgs",
                "Validation failed for instance 'projects/p/zones/z/instances/n': instance may belong to at most one load-balanced instance group.".into(),
                User,
                "the nodes are another load balancer's",
            ),
            (400, "invalid", invalid("resource.name"), Bug, "our own name"),
            (400, "invalid", invalid("resource.backends[0].group"), Bug, "our own link"),
            (400, "invalid", invalid("resource.pathMatchers[0].pathRules[0].service"), Bug, "our own link"),
            (400, "invalid", String::new(), Bug, "no field named: a malformed request of ours"),
            (400, "badRequest", "Invalid JSON payload received.".into(), Bug, "a body of ours"),
            (404, "notFound", "The resource 'x' was not found".into(), Bug, "a reference of ours"),
            (409, "alreadyExists", String::new(), Bug, "callers adopt; left over is unexpected"),
            (503, "backendError", String::new(), Transient, "server error"),
            (0, "transport", String::new(), Transient, "no response"),
            (400, "resourceNotReady", String::new(), Transient, "wait for it"),
            (412, "conditionNotMet", "Invalid fingerprint.".into(), Conflict, "re-read"),
        ];
        for (status, reason, message, category, why) in table {
            let e = ApiError {
                status,
                reason: reason.into(),
                message,
                from_operation: false,
                retry_after: None,
            };
            assert_eq!(e.category(), category, "{why}: {e}");
        }
        assert_eq!(reason_of_code("QUOTA_EXCEEDED"), "quotaExceeded");
        assert_eq!(reason_of_code("RESOURCE_NOT_FOUND"), "notFound");
        assert_eq!(reason_of_code("FIELD_SIZE_TOO_LARGE"), "fieldSizeTooLarge");
    }

    #[test]
    fn user_fixable_errors_say_what_to_change() {
        let too_large = ApiError::from_response(
            413,
            br#"{"error":{"code":413,"message":"Value for field 'resource.hostRules' is too large: maximum size 1000 element(s); actual size 1001.","errors":[{"reason":"fieldSizeTooLarge","message":"m"}]}}"#,
            None,
        );
        let error = too_large.into_error("creating URL map m");
        assert_eq!(error.category, ErrorCategory::User);
        assert!(
            error.message.contains("too many hosts or paths for one URL map"),
            "{}",
            error.message
        );
        let path = ApiError::from_response(
            400,
            br#"{"error":{"code":400,"message":"Invalid value for field 'resource.pathMatchers[0].pathRules[2].paths[0]': '/a*b'. Invalid path pattern.","errors":[{"reason":"invalid","message":"m"}]}}"#,
            None,
        );
        assert_eq!(
            path.invalid_field().as_deref(),
            Some("resource.pathMatchers.pathRules.paths")
        );
        let error = path.into_error("creating URL map m");
        assert_eq!(error.category, ErrorCategory::User);
        assert!(error.message.contains("'/a*b'"), "{}", error.message);
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
