//! Server-side apply, simplified: the applied configuration is merged into the live object
//! (maps recursively, keyed lists by key, set lists as sets, other lists replaced), and fields
//! this field manager applied last time but no longer lists are removed. Ownership conflicts
//! between managers are not tracked: every apply wins, as with `force=true`.

use serde_json::{Map, Value};

use crate::kinds::{Kind, ListType};

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn same_key(a: &Value, b: &Value, key: &str) -> bool {
    a.get(key).is_some() && a.get(key) == b.get(key)
}

fn merge(kind: &Kind, live: &mut Value, config: &Value, path: &str) {
    match (live, config) {
        (Value::Object(l), Value::Object(c)) => {
            for (k, v) in c {
                if v.is_null() {
                    l.shift_remove(k);
                    continue;
                }
                let cpath = child(path, k);
                match l.get_mut(k) {
                    Some(existing) => merge(kind, existing, v, &cpath),
                    None => {
                        let mut fresh = match v {
                            Value::Object(_) => Value::Object(Map::new()),
                            _ => Value::Null,
                        };
                        merge(kind, &mut fresh, v, &cpath);
                        l.insert(k.clone(), fresh);
                    }
                }
            }
        }
        (Value::Array(l), Value::Array(c)) => match kind.list_type(path) {
            Some(ListType::Map(key)) => {
                for item in c {
                    match l.iter_mut().find(|e| same_key(e, item, key)) {
                        Some(existing) => merge(kind, existing, item, path),
                        None => l.push(item.clone()),
                    }
                }
            }
            Some(ListType::Set) => {
                for item in c {
                    if !l.contains(item) {
                        l.push(item.clone());
                    }
                }
            }
            None => *l = c.clone(),
        },
        (live, config) => *live = config.clone(),
    }
}

/// Removes from `live` what `previous` applied and `config` no longer applies.
fn prune(kind: &Kind, live: &mut Value, previous: &Value, config: &Value, path: &str) {
    match (live, previous) {
        (Value::Object(l), Value::Object(p)) => {
            for (k, pv) in p {
                match config.get(k) {
                    None => {
                        l.shift_remove(k);
                    }
                    Some(cv) => {
                        if let Some(lv) = l.get_mut(k) {
                            prune(kind, lv, pv, cv, &child(path, k));
                        }
                    }
                }
            }
        }
        (Value::Array(l), Value::Array(p)) => match kind.list_type(path) {
            Some(ListType::Map(key)) => {
                let empty = Vec::new();
                let configured = config.as_array().unwrap_or(&empty);
                for pe in p {
                    match configured.iter().find(|c| same_key(c, pe, key)) {
                        Some(ce) => {
                            if let Some(le) = l.iter_mut().find(|e| same_key(e, pe, key)) {
                                prune(kind, le, pe, ce, path);
                            }
                        }
                        None => l.retain(|e| !same_key(e, pe, key)),
                    }
                }
            }
            Some(ListType::Set) => {
                let empty = Vec::new();
                let configured = config.as_array().unwrap_or(&empty);
                l.retain(|e| !p.contains(e) || configured.contains(e));
            }
            None => {}
        },
        _ => {}
    }
}

/// The live object after applying `config`; `previous` is what the same manager applied before.
pub(crate) fn apply(kind: &Kind, live: &Value, config: &Value, previous: Option<&Value>) -> Value {
    let mut out = live.clone();
    if let Some(previous) = previous {
        prune(kind, &mut out, previous, config, "");
    }
    merge(kind, &mut out, config, "");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::{KINDS, find};
    use serde_json::json;

    #[test]
    fn apply_merges_and_prunes_own_fields() {
        let kind = &KINDS[find("", "v1", "services").unwrap()];
        let live = json!({"metadata": {"labels": {"mine": "1", "theirs": "2"}},
            "spec": {"ports": [{"port": 80, "nodePort": 30001}, {"port": 81}], "selector": {"a": "b"}}});
        let previous =
            json!({"metadata": {"labels": {"mine": "1"}}, "spec": {"ports": [{"port": 80}, {"port": 81}]}});
        let config = json!({"metadata": {"labels": {}}, "spec": {"ports": [{"port": 80, "name": "web"}]}});
        let out = apply(kind, &live, &config, Some(&previous));
        assert_eq!(
            out,
            json!({"metadata": {"labels": {"theirs": "2"}},
                "spec": {"ports": [{"port": 80, "nodePort": 30001, "name": "web"}], "selector": {"a": "b"}}})
        );
    }
}
