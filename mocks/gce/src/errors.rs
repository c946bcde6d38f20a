//! API errors in the two shapes the real Compute API uses: a synchronous HTTP error body, and the
//! `error` block of an operation that finished with a failure.

use serde_json::{Value, json};

/// The `domain` of every error entry; the real API uses `global` for Compute errors.
const DOMAIN: &str = "global";

/// The regex the real API quotes when a resource name is invalid.
pub(crate) const NAME_REGEX: &str = "(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)";

/// An error of the Compute API: HTTP status, camelCase reason and message.
///
/// Returned synchronously it renders as `{"error":{"code","message","errors":[{...}]}}`; delivered
/// through an operation it renders as `error.errors[{code: UPPER_SNAKE, message}]` plus
/// `httpErrorStatusCode` and `httpErrorMessage`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{status} {reason}: {message}")]
pub struct ApiError {
    /// HTTP status code, e.g. 404.
    pub status: u16,
    /// The camelCase reason, e.g. `notFound`.
    pub reason: String,
    /// The human-readable message.
    pub message: String,
    /// `errorDetails` the error carries when delivered through an operation (e.g. a
    /// `quotaInfo`); empty for most errors.
    pub details: Vec<Value>,
}

impl ApiError {
    /// An error with the given status, reason and message.
    pub fn new(status: u16, reason: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            status,
            reason: reason.into(),
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// The same error with `errorDetails` entries for its operation form.
    pub(crate) fn with_details(mut self, details: Vec<Value>) -> Self {
        self.details = details;
        self
    }

    /// 404 for a resource path such as `projects/p/global/urlMaps/x`.
    pub(crate) fn not_found(path: &str) -> Self {
        Self::new(404, "notFound", format!("The resource '{path}' was not found"))
    }

    /// 409 for an insert whose name is taken.
    pub(crate) fn already_exists(path: &str) -> Self {
        Self::new(
            409,
            "alreadyExists",
            format!("The resource '{path}' already exists"),
        )
    }

    /// 400 `invalid` with a free-form message.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, "invalid", message)
    }

    /// 400 `invalid` in the real wording for a bad field value.
    pub(crate) fn invalid_field(field: &str, value: &str, why: &str) -> Self {
        Self::invalid(format!("Invalid value for field '{field}': '{value}'. {why}"))
    }

    /// 400 `invalid` for a malformed resource name in a request body.
    pub(crate) fn invalid_name(field: &str, name: &str) -> Self {
        Self::invalid_field(field, name, &format!("Must be a match of regex '{NAME_REGEX}'"))
    }

    /// 400 `resourceInUseByAnotherResource` when deleting something still referenced.
    pub(crate) fn in_use(singular: &str, path: &str, user: &str) -> Self {
        Self::new(
            400,
            "resourceInUseByAnotherResource",
            format!("The {singular} resource '{path}' is already being used by '{user}'"),
        )
    }

    /// 400 `resourceNotReady` when a resource is still being created.
    pub(crate) fn not_ready(path: &str) -> Self {
        Self::new(
            400,
            "resourceNotReady",
            format!("The resource '{path}' is not ready"),
        )
    }

    /// 412 `conditionNotMet` for a stale or missing fingerprint.
    pub(crate) fn bad_fingerprint() -> Self {
        Self::new(412, "conditionNotMet", "Invalid fingerprint.")
    }

    /// 413 `fieldSizeTooLarge` for a collection over its limit.
    pub(crate) fn too_large(field: &str, max: usize, actual: usize, unit: &str) -> Self {
        Self::new(
            413,
            "fieldSizeTooLarge",
            format!(
                "Value for field '{field}' is too large: maximum size {max} {unit}(s); actual size {actual}."
            ),
        )
    }

    /// 403 `quotaExceeded` for a per-project resource quota.
    pub(crate) fn quota_exceeded(metric: &str, limit: u64, where_: &str) -> Self {
        Self::new(
            403,
            "quotaExceeded",
            format!("Quota '{metric}' exceeded.  Limit: {limit}.0 {where_}."),
        )
    }

    /// 403 (or 429) `rateLimitExceeded` from the token bucket.
    pub(crate) fn rate_limited(status: u16) -> Self {
        Self::new(
            status,
            "rateLimitExceeded",
            "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute' of service \
             'compute.googleapis.com' for consumer 'project_number:0'.",
        )
    }

    /// 400 `parseError` for a body that is not a JSON object.
    pub(crate) fn parse_error(detail: &str) -> Self {
        Self::new(
            400,
            "parseError",
            format!("Invalid JSON payload received. {detail}"),
        )
    }

    /// The synchronous error body.
    pub fn to_sync_body(&self) -> Value {
        json!({
            "error": {
                "code": self.status,
                "message": self.message,
                "errors": [{
                    "message": self.message,
                    "domain": DOMAIN,
                    "reason": self.reason,
                }],
            }
        })
    }

    /// The UPPER_SNAKE code an operation error carries for this reason.
    pub fn operation_code(&self) -> String {
        match self.reason.as_str() {
            "notFound" => "RESOURCE_NOT_FOUND".to_string(),
            "alreadyExists" => "RESOURCE_ALREADY_EXISTS".to_string(),
            "invalid" => "INVALID_FIELD_VALUE".to_string(),
            other => camel_to_upper_snake(other),
        }
    }

    /// The fields a failed DONE operation carries: `error`, `httpErrorStatusCode`,
    /// `httpErrorMessage`.
    pub(crate) fn operation_fields(&self, code: Option<&str>) -> [(String, Value); 3] {
        let code = code.map_or_else(|| self.operation_code(), str::to_string);
        let mut entry = json!({"code": code, "message": self.message});
        if !self.details.is_empty() {
            entry["errorDetails"] = Value::Array(self.details.clone());
        }
        [
            ("error".to_string(), json!({ "errors": [entry] })),
            ("httpErrorStatusCode".to_string(), json!(self.status)),
            (
                "httpErrorMessage".to_string(),
                json!(http_error_message(self.status)),
            ),
        ]
    }
}

/// `resourceInUseByAnotherResource` → `RESOURCE_IN_USE_BY_ANOTHER_RESOURCE`.
fn camel_to_upper_snake(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for (i, c) in s.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// The upper-case reason phrase the real API puts in `httpErrorMessage`.
pub(crate) fn http_error_message(status: u16) -> String {
    let phrase = axum::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("ERROR");
    phrase.to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_map_to_operation_codes() {
        let e = ApiError::in_use("urlMap", "projects/p/global/urlMaps/u", "x");
        assert_eq!(e.operation_code(), "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE");
        assert_eq!(ApiError::not_found("x").operation_code(), "RESOURCE_NOT_FOUND");
        assert_eq!(ApiError::bad_fingerprint().operation_code(), "CONDITION_NOT_MET");
        assert_eq!(http_error_message(412), "PRECONDITION FAILED");
        assert_eq!(http_error_message(400), "BAD REQUEST");
    }

    #[test]
    fn sync_body_has_the_real_shape() {
        let body = ApiError::not_found("projects/p/global/urlMaps/u").to_sync_body();
        assert_eq!(body["error"]["code"], 404);
        assert_eq!(body["error"]["errors"][0]["reason"], "notFound");
        assert_eq!(body["error"]["errors"][0]["domain"], "global");
        assert_eq!(
            body["error"]["message"],
            "The resource 'projects/p/global/urlMaps/u' was not found"
        );
    }
}
