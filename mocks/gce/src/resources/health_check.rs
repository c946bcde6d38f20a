//! Health checks (global and regional) and legacy HTTP health checks. No fingerprint:
//! update and patch are last-writer-wins, as in the real API.

use serde_json::Value;

use crate::errors::ApiError;
use crate::json::{Obj, enum_field, int_in_range, opt_obj, opt_str};
use crate::kinds::Key;

/// Health-check types and the field holding their settings.
const TYPES: &[(&str, &str)] = &[
    ("TCP", "tcpHealthCheck"),
    ("SSL", "sslHealthCheck"),
    ("HTTP", "httpHealthCheck"),
    ("HTTPS", "httpsHealthCheck"),
    ("HTTP2", "http2HealthCheck"),
    ("GRPC", "grpcHealthCheck"),
];

pub(super) fn normalize(obj: &mut Obj) -> Result<Vec<Key>, ApiError> {
    opt_str(obj, "description", "resource.description")?;
    let ty = match opt_str(obj, "type", "resource.type")? {
        Some(t) => t.to_string(),
        None => {
            let present: Vec<&str> = TYPES
                .iter()
                .filter(|(_, f)| obj.get(*f).is_some_and(|v| !v.is_null()))
                .map(|(t, _)| *t)
                .collect();
            match present.as_slice() {
                [one] => {
                    obj.insert("type".into(), (*one).into());
                    (*one).to_string()
                }
                _ => {
                    return Err(ApiError::invalid_field(
                        "resource.type",
                        "",
                        "Health check type must be specified.",
                    ));
                }
            }
        }
    };
    let Some(&(_, sub)) = TYPES.iter().find(|(t, _)| *t == ty) else {
        let allowed: Vec<&str> = TYPES.iter().map(|(t, _)| *t).collect();
        return Err(ApiError::invalid_field(
            "resource.type",
            &ty,
            &format!("Must be one of [{}].", allowed.join(", ")),
        ));
    };
    for (other_ty, other) in TYPES {
        if *other != sub && obj.get(*other).is_some_and(|v| !v.is_null()) {
            return Err(ApiError::invalid_field(
                &format!("resource.{other}"),
                other_ty,
                &format!("Must not be specified for a health check of type {ty}."),
            ));
        }
    }
    timing(obj)?;
    let field = format!("resource.{sub}");
    let mut settings = opt_obj(obj, sub, &field)?.cloned().unwrap_or_default();
    port_settings(&mut settings, &field, &ty)?;
    obj.insert(sub.to_string(), Value::Object(settings));
    Ok(Vec::new())
}

/// The legacy `httpHealthChecks` collection.
pub(super) fn normalize_legacy(obj: &mut Obj) -> Result<Vec<Key>, ApiError> {
    opt_str(obj, "description", "resource.description")?;
    opt_str(obj, "host", "resource.host")?;
    int_in_range(obj, "port", "resource.port", Some(80), 1, 65535)?;
    request_path(obj, "resource")?;
    timing(obj)?;
    Ok(Vec::new())
}

/// Interval, timeout and thresholds, with the real defaults and the timeout ≤ interval rule.
fn timing(obj: &mut Obj) -> Result<(), ApiError> {
    let interval = int_in_range(
        obj,
        "checkIntervalSec",
        "resource.checkIntervalSec",
        Some(5),
        1,
        300,
    )?;
    let timeout = int_in_range(obj, "timeoutSec", "resource.timeoutSec", Some(5), 1, 300)?;
    int_in_range(
        obj,
        "healthyThreshold",
        "resource.healthyThreshold",
        Some(2),
        1,
        10,
    )?;
    int_in_range(
        obj,
        "unhealthyThreshold",
        "resource.unhealthyThreshold",
        Some(2),
        1,
        10,
    )?;
    if let (Some(i), Some(t)) = (interval, timeout)
        && t > i
    {
        return Err(ApiError::invalid_field(
            "resource.timeoutSec",
            &t.to_string(),
            "Timeout sec must be less than or equal to check interval sec.",
        ));
    }
    Ok(())
}

fn port_settings(s: &mut Obj, field: &str, ty: &str) -> Result<(), ApiError> {
    let spec = enum_field(
        s,
        "portSpecification",
        &format!("{field}.portSpecification"),
        &["USE_FIXED_PORT", "USE_NAMED_PORT", "USE_SERVING_PORT"],
        None,
    )?;
    let port_name = opt_str(s, "portName", &format!("{field}.portName"))?.is_some();
    let default_port = match ty {
        "HTTPS" | "HTTP2" | "SSL" => 443,
        _ => 80,
    };
    match spec.as_deref() {
        Some("USE_SERVING_PORT") => {
            if s.get("port").is_some_and(|v| !v.is_null()) {
                return Err(ApiError::invalid_field(
                    &format!("{field}.port"),
                    &crate::json::show(&s["port"]),
                    "Port must not be specified with USE_SERVING_PORT.",
                ));
            }
        }
        Some("USE_NAMED_PORT") => {}
        _ => {
            let default = (!port_name).then_some(default_port);
            int_in_range(s, "port", &format!("{field}.port"), default, 1, 65535)?;
        }
    }
    if matches!(ty, "HTTP" | "HTTPS" | "HTTP2") {
        request_path(s, field)?;
    }
    if ty != "GRPC" {
        enum_field(
            s,
            "proxyHeader",
            &format!("{field}.proxyHeader"),
            &["NONE", "PROXY_V1"],
            Some("NONE"),
        )?;
    }
    Ok(())
}

fn request_path(s: &mut Obj, field: &str) -> Result<(), ApiError> {
    let f = format!("{field}.requestPath");
    match opt_str(s, "requestPath", &f)? {
        Some(p) if !p.starts_with('/') => Err(ApiError::invalid_field(
            &f,
            p,
            "The request path must start with '/'.",
        )),
        Some(_) => Ok(()),
        None => {
            s.insert("requestPath".into(), "/".into());
            Ok(())
        }
    }
}
