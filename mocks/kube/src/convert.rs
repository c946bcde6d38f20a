//! Conversions between the API form of a view kind and its storage form.
//!
//! events.k8s.io/v1 Events are stored as core/v1 Events, as in a real cluster, so an Event a
//! controller records through `kube::runtime::events::Recorder` shows up in `kubectl describe` and
//! `kubectl get events`, which read core/v1.

use serde_json::{Map, Value};

/// Field renames between events.k8s.io/v1 (left) and core/v1 (right).
const EVENT_RENAMES: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

fn rename(value: Value, api_version: &str, forward: bool) -> Value {
    let Value::Object(map) = value else { return value };
    let mut out = Map::new();
    for (key, v) in map {
        let renamed = EVENT_RENAMES
            .iter()
            .find(|(a, b)| if forward { a == &key } else { b == &key })
            .map(|(a, b)| if forward { *b } else { *a });
        match (key.as_str(), renamed) {
            ("apiVersion", _) => {
                out.insert(key, Value::String(api_version.into()));
            }
            (_, Some(new)) => {
                out.insert(new.to_string(), v);
            }
            _ => {
                out.insert(key, v);
            }
        }
    }
    out.entry("apiVersion")
        .or_insert_with(|| Value::String(api_version.into()));
    Value::Object(out)
}

/// events.k8s.io/v1 Event to core/v1 Event.
pub(crate) fn event_to_core(value: Value) -> Value {
    rename(value, "v1", true)
}

/// core/v1 Event to events.k8s.io/v1 Event.
pub(crate) fn event_from_core(value: Value) -> Value {
    rename(value, "events.k8s.io/v1", false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip() {
        let v1 = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "a.1", "namespace": "default"},
            "regarding": {"kind": "Ingress", "name": "web"},
            "note": "created", "reason": "Sync", "reportingController": "ctl",
            "series": {"count": 2, "lastObservedTime": "2025-01-01T00:00:00.000000Z"}
        });
        let core = event_to_core(v1.clone());
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["involvedObject"]["name"], "web");
        assert_eq!(core["message"], "created");
        assert_eq!(core["reportingComponent"], "ctl");
        assert_eq!(event_from_core(core), v1);
    }
}
