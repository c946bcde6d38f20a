//! Label selectors (`labelSelector=`) and field selectors (`fieldSelector=`).

use serde_json::Value;

use crate::error::ApiError;
use crate::kinds::Kind;

#[derive(Debug, Clone, PartialEq)]
enum LabelOp {
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    NotExists,
    Gt(i64),
    Lt(i64),
}

/// A parsed label selector: all requirements must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct LabelSelector(Vec<(String, LabelOp)>);

/// Splits on commas outside parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn label_error(selector: &str, why: &str) -> ApiError {
    ApiError::bad_request(format!(
        "unable to parse requirement: {why} (in label selector {selector:?})"
    ))
}

fn check_key(selector: &str, key: &str) -> Result<String, ApiError> {
    if crate::validation::qualified_name(key).is_none() {
        Ok(key.to_string())
    } else {
        Err(label_error(selector, &format!("invalid label key {key:?}")))
    }
}

fn check_value(selector: &str, value: &str) -> Result<String, ApiError> {
    if crate::validation::label_value(value).is_none() {
        Ok(value.to_string())
    } else {
        Err(label_error(selector, &format!("invalid label value {value:?}")))
    }
}

impl LabelSelector {
    /// Parses the `labelSelector` query parameter.
    pub fn parse(selector: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        if selector.trim().is_empty() {
            return Ok(LabelSelector(reqs));
        }
        for raw in split_top_level(selector) {
            let r = raw.trim();
            if r.is_empty() {
                return Err(label_error(selector, "empty requirement"));
            }
            if let Some(key) = r.strip_prefix('!') {
                reqs.push((check_key(selector, key.trim())?, LabelOp::NotExists));
                continue;
            }
            if let Some(open) = r.find('(') {
                let close = r
                    .rfind(')')
                    .filter(|c| *c == r.len() - 1 && *c > open)
                    .ok_or_else(|| label_error(selector, "unbalanced parentheses"))?;
                let head = r[..open].trim_end();
                let (key, negate) = if let Some(k) = head.strip_suffix("notin") {
                    (k, true)
                } else if let Some(k) = head.strip_suffix("in") {
                    (k, false)
                } else {
                    return Err(label_error(selector, "expected 'in' or 'notin'"));
                };
                if !key.ends_with(char::is_whitespace) {
                    return Err(label_error(selector, "expected whitespace before the operator"));
                }
                let key = check_key(selector, key.trim())?;
                let values = r[open + 1..close]
                    .split(',')
                    .map(|v| check_value(selector, v.trim()))
                    .collect::<Result<Vec<_>, _>>()?;
                reqs.push((
                    key,
                    if negate {
                        LabelOp::NotIn(values)
                    } else {
                        LabelOp::In(values)
                    },
                ));
                continue;
            }
            let op = ["!=", "==", "=", ">", "<"]
                .iter()
                .filter_map(|op| r.find(op).map(|at| (at, *op)))
                .min_by_key(|(at, op)| (*at, usize::MAX - op.len()));
            match op {
                Some((at, op)) => {
                    let key = check_key(selector, r[..at].trim())?;
                    let value = r[at + op.len()..].trim();
                    let op = match op {
                        "!=" => LabelOp::NotEq(check_value(selector, value)?),
                        "==" | "=" => LabelOp::Eq(check_value(selector, value)?),
                        _ => {
                            let n: i64 = value
                                .parse()
                                .map_err(|_| label_error(selector, "'>' and '<' need an integer"))?;
                            if op == ">" { LabelOp::Gt(n) } else { LabelOp::Lt(n) }
                        }
                    };
                    reqs.push((key, op));
                }
                None => reqs.push((check_key(selector, r)?, LabelOp::Exists)),
            }
        }
        Ok(LabelSelector(reqs))
    }

    /// Whether an object's `metadata.labels` satisfy every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = object.pointer("/metadata/labels");
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|(key, op)| {
            let v = get(key);
            match op {
                LabelOp::Eq(want) => v == Some(want.as_str()),
                LabelOp::NotEq(want) => v != Some(want.as_str()),
                LabelOp::In(set) => v.is_some_and(|v| set.iter().any(|s| s == v)),
                LabelOp::NotIn(set) => !v.is_some_and(|v| set.iter().any(|s| s == v)),
                LabelOp::Exists => v.is_some(),
                LabelOp::NotExists => v.is_none(),
                LabelOp::Gt(n) => v.and_then(|v| v.parse::<i64>().ok()).is_some_and(|v| v > *n),
                LabelOp::Lt(n) => v.and_then(|v| v.parse::<i64>().ok()).is_some_and(|v| v < *n),
            }
        })
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A parsed field selector: `path=value`, `path==value`, `path!=value`, comma-separated.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct FieldSelector(Vec<FieldReq>);

#[derive(Debug, Clone, PartialEq)]
struct FieldReq {
    path: String,
    default: &'static str,
    value: String,
    equal: bool,
}

/// Splits on an unescaped separator and removes the escapes (`\,` `\=` `\\`).
fn split_escaped(s: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let (Some(n), Some(last)) = (chars.next(), parts.last_mut()) {
                if n != sep && n != '\\' && n != '=' && n != ',' {
                    last.push('\\');
                }
                last.push(n);
            }
        } else if c == sep {
            parts.push(String::new());
        } else if let Some(last) = parts.last_mut() {
            last.push(c);
        }
    }
    parts
}

impl FieldSelector {
    /// Parses the `fieldSelector` query parameter for a kind, rejecting labels it does not support.
    pub fn parse(selector: &str, kind: &Kind) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        if selector.trim().is_empty() {
            return Ok(FieldSelector(reqs));
        }
        for term in split_escaped(selector, ',') {
            let (label, value, equal) = if let Some((l, v)) = term.split_once("!=") {
                (l, v, false)
            } else if let Some((l, v)) = term.split_once("==") {
                (l, v, true)
            } else if let Some((l, v)) = term.split_once('=') {
                (l, v, true)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: {selector:?}; can't understand {term:?}"
                )));
            };
            let label = label.trim();
            let (path, default) = match label {
                "metadata.name" | "metadata.namespace" => (label.to_string(), ""),
                _ => match kind.field_labels.iter().find(|f| f.label == label) {
                    Some(f) => (f.path.to_string(), f.default),
                    None => {
                        return Err(ApiError::bad_request(format!(
                            "field label not supported: {label}"
                        )));
                    }
                },
            };
            reqs.push(FieldReq {
                path,
                default,
                value: value.trim().to_string(),
                equal,
            });
        }
        Ok(FieldSelector(reqs))
    }

    /// A selector for one name (used by the deprecated `GET .../name?watch=true` form).
    pub fn name(name: &str) -> Self {
        FieldSelector(vec![FieldReq {
            path: "metadata.name".into(),
            default: "",
            value: name.to_string(),
            equal: true,
        }])
    }

    /// Whether the object satisfies every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|r| {
            let mut cur = Some(object);
            for part in r.path.split('.') {
                cur = cur.and_then(|c| c.get(part));
            }
            let actual = match cur {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Bool(b)) => b.to_string(),
                Some(Value::Number(n)) => n.to_string(),
                _ => r.default.to_string(),
            };
            (actual == r.value) == r.equal
        })
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "a", "namespace": "ns", "labels": labels}, "type": "x"})
    }

    #[test]
    fn label_selector_ops() {
        let o = obj(json!({"app": "web", "tier": "front", "n": "5"}));
        let t = |s: &str| LabelSelector::parse(s).unwrap().matches(&o);
        assert!(t("app=web"));
        assert!(t("app==web,tier=front"));
        assert!(!t("app!=web"));
        assert!(t("app in (web, api)"));
        assert!(!t("app notin (web)"));
        assert!(t("tier"));
        assert!(t("!missing"));
        assert!(!t("!app"));
        assert!(t("n>4"));
        assert!(!t("n<5"));
        assert!(t("app in (web),tier notin (back)"));
        assert!(t(""));
    }

    #[test]
    fn label_selector_errors() {
        for bad in ["app in web", "a b c", "app=(", "in (a)", "app=bad value!", ","] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn field_selector() {
        let kind = &crate::kinds::KINDS[crate::kinds::find("", "v1", "secrets").unwrap()];
        let o = obj(json!({}));
        let t = |s: &str| FieldSelector::parse(s, kind).unwrap().matches(&o);
        assert!(t("metadata.name=a"));
        assert!(t("metadata.name==a,metadata.namespace=ns"));
        assert!(!t("metadata.name!=a"));
        assert!(t("type=x"));
        assert!(FieldSelector::parse("spec.foo=1", kind).is_err());
        assert!(FieldSelector::parse("nonsense", kind).is_err());
    }
}
