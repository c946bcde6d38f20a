//! Strategic merge patch: a merge patch where some lists merge element-wise (by a merge key, or as
//! a set) instead of being replaced, plus the `$patch`, `$retainKeys`,
//! `$deleteFromPrimitiveList/<field>` and `$setElementOrder/<field>` directives kubectl emits.
//! Which lists merge comes from [`Kind::list_type`].

use serde_json::{Map, Value};

use super::PatchError;
use crate::kinds::{Kind, ListType};

const DELETE_FROM: &str = "$deleteFromPrimitiveList/";
const SET_ORDER: &str = "$setElementOrder/";

fn malformed(msg: impl Into<String>) -> PatchError {
    PatchError::Malformed(msg.into())
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Removes every directive (`$…` key) from a value that is inserted as is.
fn strip(value: &Value) -> Value {
    match value {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip).collect()),
        other => other.clone(),
    }
}

/// Applies a strategic merge patch to `target`.
pub(crate) fn strategic_merge(kind: &Kind, target: &Value, patch: &Value) -> Result<Value, PatchError> {
    let Value::Object(p) = patch else {
        return Err(malformed("a strategic merge patch must be a JSON object"));
    };
    let base = target.as_object().cloned().unwrap_or_default();
    Ok(Value::Object(merge_map(kind, base, p, "")?.unwrap_or_default()))
}

/// Merges a patch map into `orig`; `None` means the patch deleted the map (`$patch: delete`).
fn merge_map(
    kind: &Kind,
    mut orig: Map<String, Value>,
    patch: &Map<String, Value>,
    path: &str,
) -> Result<Option<Map<String, Value>>, PatchError> {
    match patch.get("$patch").map(|v| v.as_str()) {
        None | Some(Some("merge")) => {}
        Some(Some("replace")) => {
            return Ok(Some(
                strip(&Value::Object(patch.clone()))
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            ));
        }
        Some(Some("delete")) => return Ok(None),
        Some(other) => {
            return Err(malformed(format!(
                "unknown $patch directive {other:?} at {path:?}"
            )));
        }
    }
    for (k, v) in patch {
        if let Some(field) = k.strip_prefix(DELETE_FROM) {
            let remove = v
                .as_array()
                .ok_or_else(|| malformed(format!("{k} must be a list")))?;
            if let Some(Value::Array(list)) = orig.get_mut(field) {
                list.retain(|item| !remove.contains(item));
            }
        }
    }
    for (k, v) in patch {
        if k.starts_with('$') {
            continue;
        }
        if v.is_null() {
            orig.shift_remove(k);
            continue;
        }
        let cpath = child(path, k);
        let current = orig.get(k).filter(|c| !c.is_null());
        let merged = match (current, v) {
            (Some(Value::Object(o)), Value::Object(p)) => {
                merge_map(kind, o.clone(), p, &cpath)?.map(Value::Object)
            }
            (None, Value::Object(p)) => merge_map(kind, Map::new(), p, &cpath)?.map(Value::Object),
            (cur, Value::Array(p)) => match kind.list_type(&cpath) {
                Some(ty) => {
                    let base = match cur {
                        Some(Value::Array(a)) => a.clone(),
                        _ => Vec::new(),
                    };
                    Some(Value::Array(merge_list(kind, base, p, &cpath, ty)?))
                }
                None => Some(strip(v)),
            },
            _ => Some(strip(v)),
        };
        match merged {
            Some(value) => {
                orig.insert(k.clone(), value);
            }
            None => {
                orig.shift_remove(k);
            }
        }
    }
    for (k, order) in patch {
        if let Some(field) = k.strip_prefix(SET_ORDER) {
            let order = order
                .as_array()
                .ok_or_else(|| malformed(format!("{k} must be a list")))?;
            if let Some(Value::Array(list)) = orig.get_mut(field) {
                let ty = kind.list_type(&child(path, field));
                reorder(list, order, ty);
            }
        }
    }
    if let Some(retain) = patch.get("$retainKeys") {
        let keys = retain
            .as_array()
            .ok_or_else(|| malformed("$retainKeys must be a list"))?;
        orig.retain(|k, _| keys.iter().any(|r| r.as_str() == Some(k)));
    }
    Ok(Some(orig))
}

fn same_key(a: &Value, b: &Value, key: &str) -> bool {
    a.get(key).is_some() && a.get(key) == b.get(key)
}

fn merge_list(
    kind: &Kind,
    mut orig: Vec<Value>,
    patch: &[Value],
    path: &str,
    ty: ListType,
) -> Result<Vec<Value>, PatchError> {
    let is_replace = |v: &Value| v.get("$patch").and_then(Value::as_str) == Some("replace");
    if patch.iter().any(is_replace) {
        return Ok(patch.iter().filter(|v| !is_replace(v)).map(strip).collect());
    }
    match ty {
        ListType::Set => {
            for v in patch {
                if !orig.contains(v) {
                    orig.push(strip(v));
                }
            }
        }
        ListType::Map(key) => {
            for item in patch {
                let Value::Object(p) = item else {
                    return Err(malformed(format!(
                        "{path}: items of a merged list must be objects"
                    )));
                };
                if p.get(key).is_none() {
                    return Err(malformed(format!("{path}: item lacks the merge key {key:?}")));
                }
                let position = orig.iter().position(|o| same_key(o, item, key));
                if p.get("$patch").and_then(Value::as_str) == Some("delete") {
                    orig.retain(|o| !same_key(o, item, key));
                    continue;
                }
                match position {
                    Some(i) => {
                        let base = orig[i].as_object().cloned().unwrap_or_default();
                        match merge_map(kind, base, p, path)? {
                            Some(m) => orig[i] = Value::Object(m),
                            None => {
                                orig.remove(i);
                            }
                        }
                    }
                    None => orig.push(strip(item)),
                }
            }
        }
    }
    Ok(orig)
}

/// Puts the listed elements first, in the listed order; the others keep their relative order.
fn reorder(list: &mut Vec<Value>, order: &[Value], ty: Option<ListType>) {
    let matches = |item: &Value, o: &Value| match ty {
        Some(ListType::Map(key)) => same_key(item, o, key),
        _ => item == o,
    };
    let mut rest = std::mem::take(list);
    for o in order {
        if let Some(i) = rest.iter().position(|item| matches(item, o)) {
            list.push(rest.remove(i));
        }
    }
    list.extend(rest);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::{KINDS, find};
    use serde_json::json;

    fn services() -> &'static Kind {
        &KINDS[find("", "v1", "services").unwrap()]
    }

    fn smp(target: Value, patch: Value) -> Value {
        strategic_merge(services(), &target, &patch).unwrap()
    }

    #[test]
    fn maps_merge_and_null_deletes() {
        let t = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
        assert_eq!(
            smp(t, json!({"metadata": {"labels": {"a": null, "c": "3"}}})),
            json!({"metadata": {"labels": {"b": "2", "c": "3"}}})
        );
    }

    #[test]
    fn keyed_lists_merge_by_key() {
        let t = json!({"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}], "externalIPs": ["1.1.1.1"]}});
        let out = smp(
            t,
            json!({"spec": {"ports": [{"port": 443, "name": "tls"}, {"port": 8080}, {"port": 80, "$patch": "delete"}], "externalIPs": ["2.2.2.2"]}}),
        );
        assert_eq!(
            out,
            json!({"spec": {"ports": [{"port": 443, "name": "tls"}, {"port": 8080}], "externalIPs": ["2.2.2.2"]}})
        );
    }

    #[test]
    fn set_lists_and_directives() {
        let t = json!({"metadata": {"finalizers": ["a/x", "b/y"]}});
        assert_eq!(
            smp(
                t.clone(),
                json!({"metadata": {"finalizers": ["c/z"], "$deleteFromPrimitiveList/finalizers": ["a/x"]}})
            ),
            json!({"metadata": {"finalizers": ["b/y", "c/z"]}})
        );
        assert_eq!(
            smp(
                t.clone(),
                json!({"metadata": {"finalizers": [{"$patch": "replace"}, "q/q"]}})
            ),
            json!({"metadata": {"finalizers": ["q/q"]}})
        );
        assert_eq!(
            smp(
                t,
                json!({"metadata": {"$setElementOrder/finalizers": ["b/y", "a/x"]}})
            ),
            json!({"metadata": {"finalizers": ["b/y", "a/x"]}})
        );
    }

    #[test]
    fn replace_delete_and_retain_keys() {
        let t = json!({"spec": {"selector": {"a": "1"}, "type": "NodePort", "x": 1}});
        assert_eq!(
            smp(
                t.clone(),
                json!({"spec": {"selector": {"b": "2", "$patch": "replace"}}})
            ),
            json!({"spec": {"selector": {"b": "2"}, "type": "NodePort", "x": 1}})
        );
        assert_eq!(
            smp(t.clone(), json!({"spec": {"selector": {"$patch": "delete"}}})),
            json!({"spec": {"type": "NodePort", "x": 1}})
        );
        assert_eq!(
            smp(
                t,
                json!({"spec": {"$retainKeys": ["type", "selector"], "type": "ClusterIP"}})
            ),
            json!({"spec": {"selector": {"a": "1"}, "type": "ClusterIP"}})
        );
    }

    #[test]
    fn malformed_patches() {
        let k = services();
        assert!(strategic_merge(k, &json!({}), &json!([1])).is_err());
        assert!(strategic_merge(k, &json!({}), &json!({"spec": {"ports": [{"name": "x"}]}})).is_err());
        assert!(strategic_merge(k, &json!({}), &json!({"spec": {"ports": [1]}})).is_err());
        assert!(strategic_merge(k, &json!({}), &json!({"$patch": "explode"})).is_err());
    }
}
