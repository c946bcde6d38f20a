//! JSON patch (RFC 6902) with JSON pointers (RFC 6901).

use serde_json::Value;

use super::PatchError;

fn malformed(msg: impl Into<String>) -> PatchError {
    PatchError::Malformed(msg.into())
}

fn conflict(msg: impl Into<String>) -> PatchError {
    PatchError::Conflicting(msg.into())
}

/// Splits a pointer into unescaped tokens.
fn tokens(pointer: &str) -> Result<Vec<String>, PatchError> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let rest = pointer
        .strip_prefix('/')
        .ok_or_else(|| malformed(format!("JSON pointer {pointer:?} must start with '/'")))?;
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn index(token: &str, len: usize, allow_end: bool) -> Result<usize, PatchError> {
    if allow_end && token == "-" {
        return Ok(len);
    }
    let digits = !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit());
    let canonical = token == "0" || !token.starts_with('0');
    let i: usize = token
        .parse()
        .ok()
        .filter(|_| digits && canonical)
        .ok_or_else(|| conflict(format!("bad array index {token:?}")))?;
    let in_bounds = if allow_end { i <= len } else { i < len };
    if !in_bounds {
        return Err(conflict(format!("array index {i} out of bounds")));
    }
    Ok(i)
}

fn get<'a>(doc: &'a Value, toks: &[String]) -> Option<&'a Value> {
    let mut cur = doc;
    for t in toks {
        cur = match cur {
            Value::Object(m) => m.get(t)?,
            Value::Array(a) => a.get(index(t, a.len(), false).ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn parent<'a>(doc: &'a mut Value, toks: &[String], pointer: &str) -> Result<&'a mut Value, PatchError> {
    let mut cur = doc;
    for t in toks {
        cur = match cur {
            Value::Object(m) => m.get_mut(t),
            Value::Array(a) => {
                let len = a.len();
                a.get_mut(index(t, len, false)?)
            }
            _ => None,
        }
        .ok_or_else(|| conflict(format!("path {pointer:?} does not exist")))?;
    }
    Ok(cur)
}

fn add(doc: &mut Value, pointer: &str, value: Value) -> Result<(), PatchError> {
    let toks = tokens(pointer)?;
    let Some((last, head)) = toks.split_last() else {
        *doc = value;
        return Ok(());
    };
    match parent(doc, head, pointer)? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
        }
        Value::Array(a) => {
            let i = index(last, a.len(), true)?;
            a.insert(i, value);
        }
        _ => {
            return Err(conflict(format!(
                "cannot add at {pointer:?}: parent is not a container"
            )));
        }
    }
    Ok(())
}

fn remove(doc: &mut Value, pointer: &str) -> Result<Value, PatchError> {
    let toks = tokens(pointer)?;
    let Some((last, head)) = toks.split_last() else {
        return Err(conflict("cannot remove the whole document"));
    };
    let missing = || conflict(format!("cannot remove {pointer:?}: it does not exist"));
    match parent(doc, head, pointer)? {
        Value::Object(m) => m.shift_remove(last).ok_or_else(missing),
        Value::Array(a) => {
            let i = index(last, a.len(), false)?;
            Ok(a.remove(i))
        }
        _ => Err(missing()),
    }
}

fn field<'a>(op: &'a Value, name: &str) -> Result<&'a Value, PatchError> {
    op.get(name)
        .ok_or_else(|| malformed(format!("JSON patch operation {op} lacks {name:?}")))
}

fn str_field<'a>(op: &'a Value, name: &str) -> Result<&'a str, PatchError> {
    field(op, name)?
        .as_str()
        .ok_or_else(|| malformed(format!("JSON patch field {name:?} must be a string")))
}

/// Applies a JSON patch document (an array of operations) to a copy of `target`.
pub(crate) fn json_patch(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    let ops = patch
        .as_array()
        .ok_or_else(|| malformed("a JSON patch must be an array of operations"))?;
    let mut doc = target.clone();
    for op in ops {
        let path = str_field(op, "path")?;
        match str_field(op, "op")? {
            "add" => add(&mut doc, path, field(op, "value")?.clone())?,
            "remove" => {
                remove(&mut doc, path)?;
            }
            "replace" => {
                let toks = tokens(path)?;
                if get(&doc, &toks).is_none() {
                    return Err(conflict(format!("cannot replace {path:?}: it does not exist")));
                }
                if !toks.is_empty() {
                    remove(&mut doc, path)?;
                }
                add(&mut doc, path, field(op, "value")?.clone())?;
            }
            "move" => {
                let from = str_field(op, "from")?;
                let value = remove(&mut doc, from)?;
                add(&mut doc, path, value)?;
            }
            "copy" => {
                let from = str_field(op, "from")?;
                let value = get(&doc, &tokens(from)?)
                    .cloned()
                    .ok_or_else(|| conflict(format!("cannot copy {from:?}: it does not exist")))?;
                add(&mut doc, path, value)?;
            }
            "test" => {
                let want = field(op, "value")?;
                // Kubernetes' JSON patch treats a missing path as equal to null; kube-rs's finalizer
                // helper relies on this when it tests that `/metadata/finalizers` is unset.
                let actual = get(&doc, &tokens(path)?).unwrap_or(&Value::Null);
                if actual != want {
                    return Err(conflict(format!("test failed: {path:?} is {actual}, not {want}")));
                }
            }
            other => return Err(malformed(format!("unknown JSON patch operation {other:?}"))),
        }
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(doc: Value, patch: Value) -> Result<Value, PatchError> {
        json_patch(&doc, &patch)
    }

    #[test]
    fn operations() {
        let doc = json!({"a": {"b": [1, 2]}, "c~/d": 1});
        assert_eq!(
            run(doc.clone(), json!([{"op": "add", "path": "/a/b/-", "value": 3}])).unwrap(),
            json!({"a": {"b": [1, 2, 3]}, "c~/d": 1})
        );
        assert_eq!(
            run(doc.clone(), json!([{"op": "add", "path": "/a/b/0", "value": 0}])).unwrap()["a"]["b"],
            json!([0, 1, 2])
        );
        assert_eq!(
            run(doc.clone(), json!([{"op": "remove", "path": "/c~0~1d"}])).unwrap(),
            json!({"a": {"b": [1, 2]}})
        );
        assert_eq!(
            run(
                doc.clone(),
                json!([{"op": "replace", "path": "/a/b/1", "value": 9}])
            )
            .unwrap()["a"]["b"],
            json!([1, 9])
        );
        assert_eq!(
            run(doc.clone(), json!([{"op": "move", "from": "/a/b", "path": "/x"}])).unwrap(),
            json!({"a": {}, "c~/d": 1, "x": [1, 2]})
        );
        assert_eq!(
            run(
                doc.clone(),
                json!([{"op": "copy", "from": "/a/b/0", "path": "/y"}])
            )
            .unwrap()["y"],
            json!(1)
        );
        assert!(run(doc.clone(), json!([{"op": "test", "path": "/a/b/1", "value": 2}])).is_ok());
    }

    #[test]
    fn failures_leave_nothing_half_done() {
        let doc = json!({"a": 1});
        let err = run(
            doc.clone(),
            json!([{"op": "add", "path": "/b", "value": 2}, {"op": "test", "path": "/a", "value": 5}]),
        );
        assert!(matches!(err, Err(PatchError::Conflicting(_))));
        assert!(matches!(
            run(doc.clone(), json!([{"op": "remove", "path": "/zz"}])),
            Err(PatchError::Conflicting(_))
        ));
        assert!(matches!(
            run(doc.clone(), json!([{"op": "replace", "path": "/zz", "value": 1}])),
            Err(PatchError::Conflicting(_))
        ));
        assert!(matches!(
            run(doc.clone(), json!([{"op": "add", "path": "/x/y", "value": 1}])),
            Err(PatchError::Conflicting(_))
        ));
        assert!(matches!(
            run(doc.clone(), json!({"op": "add"})),
            Err(PatchError::Malformed(_))
        ));
        assert!(matches!(
            run(doc.clone(), json!([{"op": "jump", "path": "/a"}])),
            Err(PatchError::Malformed(_))
        ));
        assert!(matches!(
            run(doc.clone(), json!([{"op": "add", "path": "a", "value": 1}])),
            Err(PatchError::Malformed(_))
        ));
        assert!(matches!(
            run(json!({"l": [1]}), json!([{"op": "remove", "path": "/l/01"}])),
            Err(PatchError::Conflicting(_))
        ));
    }

    #[test]
    fn test_of_null_matches_a_missing_path() {
        // The shape kube-rs's finalizer helper sends for an object without finalizers.
        let doc = json!({"metadata": {"name": "x"}});
        let patched = run(
            doc,
            json!([
                {"op": "test", "path": "/metadata/finalizers", "value": null},
                {"op": "add", "path": "/metadata/finalizers", "value": ["a/b"]},
            ]),
        )
        .unwrap();
        assert_eq!(patched["metadata"]["finalizers"], json!(["a/b"]));
    }
}
