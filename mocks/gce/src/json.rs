//! Typed access to request JSON: every accessor turns a wrong type into a 400 in the real shape
//! instead of panicking, and names the field the way the real API does (`resource.timeoutSec`).

use serde_json::{Map, Value};

use crate::errors::ApiError;

/// A JSON object, kept in insertion order so unknown fields round-trip unchanged.
pub(crate) type Obj = Map<String, Value>;

/// Parses a request body. An empty body is an empty object (e.g. `operations/wait`).
pub(crate) fn parse_body(bytes: &[u8]) -> Result<Obj, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Obj::new());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(obj)) => Ok(obj),
        Ok(_) => Err(ApiError::parse_error("Expected a JSON object.")),
        Err(e) => Err(ApiError::parse_error(&format!(
            "Syntax error at line {} column {}.",
            e.line(),
            e.column()
        ))),
    }
}

/// RFC 7396 JSON merge patch, the semantics the Compute API documents for PATCH.
pub(crate) fn merge_patch(target: &mut Obj, patch: &Obj) {
    for (k, v) in patch {
        match v {
            Value::Null => {
                target.shift_remove(k);
            }
            Value::Object(p) => match target.get_mut(k) {
                Some(Value::Object(t)) => merge_patch(t, p),
                _ => {
                    let mut fresh = Obj::new();
                    merge_patch(&mut fresh, p);
                    target.insert(k.clone(), Value::Object(fresh));
                }
            },
            other => {
                target.insert(k.clone(), other.clone());
            }
        }
    }
}

/// A short textual form of a value for error messages.
pub(crate) fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn wrong_type(field: &str, v: &Value, what: &str) -> ApiError {
    ApiError::invalid_field(field, &show(v), &format!("Expected {what}."))
}

/// An optional string field; `null` counts as absent.
pub(crate) fn opt_str<'a>(obj: &'a Obj, key: &str, field: &str) -> Result<Option<&'a str>, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(wrong_type(field, v, "a string")),
    }
}

/// An optional integer field. int64 fields arrive as strings on the wire, int32 as numbers;
/// both are accepted.
pub(crate) fn opt_i64(obj: &Obj, key: &str, field: &str) -> Result<Option<i64>, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| wrong_type(field, &Value::Number(n.clone()), "an integer")),
        Some(Value::String(s)) => s
            .parse::<i64>()
            .map(Some)
            .map_err(|_| wrong_type(field, &Value::String(s.clone()), "an integer")),
        Some(v) => Err(wrong_type(field, v, "an integer")),
    }
}

/// An optional number field (float).
pub(crate) fn opt_f64(obj: &Obj, key: &str, field: &str) -> Result<Option<f64>, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(v) => Err(wrong_type(field, v, "a number")),
    }
}

/// An optional boolean field.
pub(crate) fn opt_bool(obj: &Obj, key: &str, field: &str) -> Result<Option<bool>, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(wrong_type(field, v, "a boolean")),
    }
}

/// An optional array field; `null` and absent are the empty array.
pub(crate) fn opt_array<'a>(obj: &'a Obj, key: &str, field: &str) -> Result<&'a [Value], ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(v) => Err(wrong_type(field, v, "an array")),
    }
}

/// An optional object field.
pub(crate) fn opt_obj<'a>(obj: &'a Obj, key: &str, field: &str) -> Result<Option<&'a Obj>, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(v) => Err(wrong_type(field, v, "an object")),
    }
}

/// An array element that must be an object.
pub(crate) fn as_obj<'a>(v: &'a Value, field: &str) -> Result<&'a Obj, ApiError> {
    v.as_object().ok_or_else(|| wrong_type(field, v, "an object"))
}

/// An array element that must be a string.
pub(crate) fn as_str<'a>(v: &'a Value, field: &str) -> Result<&'a str, ApiError> {
    v.as_str().ok_or_else(|| wrong_type(field, v, "a string"))
}

/// An integer field that must lie in `min..=max`, with a default when absent; the default is
/// written back so that reads show it, as the real API does.
pub(crate) fn int_in_range(
    obj: &mut Obj,
    key: &str,
    field: &str,
    default: Option<i64>,
    min: i64,
    max: i64,
) -> Result<Option<i64>, ApiError> {
    let v = match opt_i64(obj, key, field)? {
        Some(v) => v,
        None => match default {
            Some(d) => {
                obj.insert(key.to_string(), Value::from(d));
                d
            }
            None => return Ok(None),
        },
    };
    if v < min || v > max {
        return Err(ApiError::invalid_field(
            field,
            &v.to_string(),
            &format!("Must be between {min} and {max}."),
        ));
    }
    Ok(Some(v))
}

/// A string enum field with an optional default, written back when absent.
pub(crate) fn enum_field<'a>(
    obj: &mut Obj,
    key: &str,
    field: &str,
    allowed: &[&'a str],
    default: Option<&'a str>,
) -> Result<Option<String>, ApiError> {
    let v = match opt_str(obj, key, field)? {
        Some(v) => v.to_string(),
        None => match default {
            Some(d) => {
                obj.insert(key.to_string(), Value::from(d));
                d.to_string()
            }
            None => return Ok(None),
        },
    };
    if !allowed.contains(&v.as_str()) {
        return Err(ApiError::invalid_field(
            field,
            &v,
            &format!("Must be one of [{}].", allowed.join(", ")),
        ));
    }
    Ok(Some(v))
}

/// Sets `key` to `value` when absent (the "server default filled on read" behaviour).
pub(crate) fn default_value(obj: &mut Obj, key: &str, value: Value) {
    if matches!(obj.get(key), None | Some(Value::Null)) {
        obj.insert(key.to_string(), value);
    }
}

/// Validates a `labels` map: string keys and string values.
pub(crate) fn check_labels(obj: &Obj, field: &str) -> Result<(), ApiError> {
    if let Some(labels) = opt_obj(obj, "labels", field)? {
        for (k, v) in labels {
            if !v.is_string() {
                return Err(wrong_type(&format!("{field}.{k}"), v, "a string"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Obj {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut target = obj(json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2]}));
        merge_patch(
            &mut target,
            &obj(json!({"a": null, "b": {"c": 5}, "e": [3], "f": {"g": null, "h": 1}})),
        );
        assert_eq!(
            Value::Object(target),
            json!({"b": {"c": 5, "d": 3}, "e": [3], "f": {"h": 1}})
        );
    }

    #[test]
    fn bodies_that_are_not_objects_are_parse_errors() {
        assert_eq!(parse_body(b"").map(|o| o.len()), Ok(0));
        assert_eq!(parse_body(b"[1]").map_err(|e| e.status), Err(400));
        assert_eq!(
            parse_body(b"{oops").map_err(|e| e.reason),
            Err("parseError".to_string())
        );
    }

    #[test]
    fn integers_accept_numbers_and_strings() {
        let o = obj(json!({"a": 5, "b": "6", "c": true}));
        assert_eq!(opt_i64(&o, "a", "resource.a"), Ok(Some(5)));
        assert_eq!(opt_i64(&o, "b", "resource.b"), Ok(Some(6)));
        assert!(opt_i64(&o, "c", "resource.c").is_err());
    }
}
