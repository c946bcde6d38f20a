//! Kubernetes `Status` errors: every rejected request is answered with one of these.

use serde_json::{Map, Value, json};

use crate::kinds::Kind;

/// A request the fake refused, rendered on the wire as a `meta/v1 Status` body.
///
/// The `reason` and `code` pairs follow the Kubernetes API conventions, so client libraries classify
/// them the way they would classify a real server's answer (kube-rs's `ErrorResponse::code`,
/// kubectl's `IsNotFound`, …).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    /// HTTP status code (`Status.code`).
    pub code: u16,
    /// Machine-readable reason (`Status.reason`), e.g. `NotFound`, `Invalid`, `Conflict`.
    pub reason: &'static str,
    /// Human-readable message (`Status.message`).
    pub message: String,
    /// `Status.details`, when the error concerns one object (boxed to keep `Result`s small).
    pub details: Option<Box<StatusDetails>>,
}

/// `Status.details`: which object an error is about and, for `Invalid`, the offending fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusDetails {
    /// Object name, if known.
    pub name: String,
    /// API group (empty for the core group).
    pub group: String,
    /// Kind or resource the error concerns.
    pub kind: String,
    /// One entry per offending field.
    pub causes: Vec<Cause>,
}

/// One entry of `Status.details.causes[]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    /// `FieldValueRequired`, `FieldValueInvalid`, `FieldValueNotSupported`, `FieldValueDuplicate`,
    /// `FieldValueForbidden`, `FieldValueTooLong`.
    pub reason: &'static str,
    /// The error text without the field path, e.g. `Required value: ...`.
    pub message: String,
    /// The field path, e.g. `spec.rules[0].http.paths[0].pathType`.
    pub field: String,
}

/// Renders a field value the way apiserver messages quote them: strings in quotes, the rest as JSON.
fn quote(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn with_detail(head: String, detail: &str) -> String {
    if detail.is_empty() {
        head
    } else {
        format!("{head}: {detail}")
    }
}

impl Cause {
    /// A required field is missing.
    pub fn required(field: impl Into<String>, detail: &str) -> Self {
        Cause {
            reason: "FieldValueRequired",
            message: with_detail("Required value".into(), detail),
            field: field.into(),
        }
    }

    /// A field has a value that is not acceptable.
    pub fn invalid(field: impl Into<String>, value: &Value, detail: &str) -> Self {
        Cause {
            reason: "FieldValueInvalid",
            message: with_detail(format!("Invalid value: {}", quote(value)), detail),
            field: field.into(),
        }
    }

    /// A field holds a value outside a fixed set.
    pub fn not_supported(field: impl Into<String>, value: &Value, supported: &[&str]) -> Self {
        let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        Cause {
            reason: "FieldValueNotSupported",
            message: format!(
                "Unsupported value: {}: supported values: {}",
                quote(value),
                list.join(", ")
            ),
            field: field.into(),
        }
    }

    /// A list holds the same value twice.
    pub fn duplicate(field: impl Into<String>, value: &Value) -> Self {
        Cause {
            reason: "FieldValueDuplicate",
            message: format!("Duplicate value: {}", quote(value)),
            field: field.into(),
        }
    }

    /// A field may not be set (in this situation).
    pub fn forbidden(field: impl Into<String>, detail: &str) -> Self {
        Cause {
            reason: "FieldValueForbidden",
            message: with_detail("Forbidden".into(), detail),
            field: field.into(),
        }
    }

    /// A value is longer than allowed.
    pub fn too_long(field: impl Into<String>, max: usize) -> Self {
        Cause {
            reason: "FieldValueTooLong",
            message: format!("Too long: may not be more than {max} bytes"),
            field: field.into(),
        }
    }

    fn full(&self) -> String {
        if self.field.is_empty() {
            self.message.clone()
        } else {
            format!("{}: {}", self.field, self.message)
        }
    }
}

/// `ingresses.networking.k8s.io` / `services`: how the apiserver names a resource in messages.
fn qualified_resource(kind: &Kind) -> String {
    if kind.group.is_empty() {
        kind.resource.to_string()
    } else {
        format!("{}.{}", kind.resource, kind.group)
    }
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn about(mut self, kind: &Kind, name: &str, kind_field: String) -> Self {
        self.details = Some(Box::new(StatusDetails {
            name: name.to_string(),
            group: kind.group.to_string(),
            kind: kind_field,
            causes: Vec::new(),
        }));
        self
    }

    /// 404 for a named object that does not exist.
    pub(crate) fn not_found(kind: &Kind, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} {name:?} not found", qualified_resource(kind)),
        )
        .about(kind, name, kind.resource.to_string())
    }

    /// 404 for a namespace that does not exist when creating into it.
    pub(crate) fn namespace_not_found(namespace: &str) -> Self {
        let mut e = Self::new(404, "NotFound", format!("namespaces {namespace:?} not found"));
        e.details = Some(Box::new(StatusDetails {
            name: namespace.to_string(),
            kind: "namespaces".into(),
            ..StatusDetails::default()
        }));
        e
    }

    /// 404 for a path this server does not serve.
    pub(crate) fn no_route() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    /// 409 for a create whose name is taken.
    pub(crate) fn already_exists(kind: &Kind, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} {name:?} already exists", qualified_resource(kind)),
        )
        .about(kind, name, kind.resource.to_string())
    }

    /// 409 for a stale `resourceVersion` or a failed precondition.
    pub(crate) fn conflict(kind: &Kind, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} {name:?}: {why}",
                qualified_resource(kind)
            ),
        )
        .about(kind, name, kind.resource.to_string())
    }

    /// The usual optimistic-concurrency conflict.
    pub(crate) fn stale(kind: &Kind, name: &str) -> Self {
        Self::conflict(
            kind,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 with one cause per offending field.
    pub(crate) fn invalid(kind: &Kind, name: &str, causes: Vec<Cause>) -> Self {
        let group_kind = if kind.group.is_empty() {
            kind.kind.to_string()
        } else {
            format!("{}.{}", kind.kind, kind.group)
        };
        let list = if causes.len() == 1 {
            causes[0].full()
        } else {
            format!(
                "[{}]",
                causes.iter().map(Cause::full).collect::<Vec<_>>().join(", ")
            )
        };
        let mut e = Self::new(
            422,
            "Invalid",
            format!("{group_kind} {name:?} is invalid: {list}"),
        )
        .about(kind, name, kind.kind.to_string());
        if let Some(d) = e.details.as_mut() {
            d.causes = causes;
        }
        e
    }

    /// 400: the request itself is malformed.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 403: refused for a reason other than permissions (e.g. a terminating namespace).
    pub(crate) fn forbidden(kind: &Kind, name: &str, why: &str) -> Self {
        Self::new(
            403,
            "Forbidden",
            format!("{} {name:?} is forbidden: {why}", qualified_resource(kind)),
        )
        .about(kind, name, kind.resource.to_string())
    }

    /// 405 for a verb a path does not support.
    pub(crate) fn method_not_allowed(method: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({method})"),
        )
    }

    /// 406 when no acceptable representation exists.
    pub(crate) fn not_acceptable(accept: &str) -> Self {
        Self::new(
            406,
            "NotAcceptable",
            format!("only the following media types are accepted: application/json (asked for {accept:?})"),
        )
    }

    /// 410: the requested resourceVersion (or continue token) is older than the kept history.
    pub(crate) fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 413: the body is larger than the server accepts.
    pub(crate) fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("the request body is larger than {limit} bytes"),
        )
    }

    /// 415: a content type the verb does not understand.
    pub(crate) fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format: {content_type}"),
        )
    }

    /// 500: a bug in the fake; never expected.
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    /// The `meta/v1 Status` body.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        });
        if let Some(d) = &self.details {
            let mut details = Map::new();
            if !d.name.is_empty() {
                details.insert("name".into(), d.name.clone().into());
            }
            if !d.group.is_empty() {
                details.insert("group".into(), d.group.clone().into());
            }
            if !d.kind.is_empty() {
                details.insert("kind".into(), d.kind.clone().into());
            }
            if !d.causes.is_empty() {
                let causes = d
                    .causes
                    .iter()
                    .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                    .collect();
                details.insert("causes".into(), Value::Array(causes));
            }
            status["details"] = Value::Object(details);
        }
        status["code"] = self.code.into();
        status
    }
}
