//! What the sandbox prints while the load balancer is built: each Compute operation as it
//! starts and ends, from the fake's state.

use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Instant;

/// Operations seen so far.
pub struct Operations {
    started: Instant,
    running: BTreeSet<String>,
    done: BTreeSet<String>,
}

impl Operations {
    pub fn new(started: Instant) -> Self {
        Self {
            started,
            running: BTreeSet::new(),
            done: BTreeSet::new(),
        }
    }

    /// Prints operations that started or ended since the last call.
    pub fn print_changes(&mut self, state: &Value) {
        let Some(operations) = state.get("operations").and_then(Value::as_object) else {
            return;
        };
        let mut ops: Vec<(&String, &Value)> = operations.iter().collect();
        ops.sort_by_key(|(_, op)| {
            op.get("insertTime")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        });
        for (path, op) in ops {
            if self.done.contains(path) {
                continue;
            }
            let status = op.get("status").and_then(Value::as_str).unwrap_or_default();
            let what = describe(op);
            let at = self.started.elapsed().as_secs_f64();
            if self.running.insert(path.clone()) && status != "DONE" {
                println!("  {at:>7.2}s  …  {what}");
            }
            if status == "DONE" {
                self.done.insert(path.clone());
                let outcome = if op.get("error").is_some() {
                    "failed"
                } else {
                    "done"
                };
                println!(
                    "  {at:>7.2}s  {}  {what} {outcome}{}",
                    if outcome == "done" { "✓" } else { "✗" },
                    took(op)
                );
            }
        }
    }
}

/// `insert urlMaps/clb-…`, `addInstances zones/us-central1-a/instanceGroups/clb-…`.
fn describe(op: &Value) -> String {
    // Zonal operation types are dotted (`compute.instanceGroups.addInstances`): keep the verb.
    let kind = op
        .get("operationType")
        .and_then(Value::as_str)
        .unwrap_or("operation");
    let kind = kind.rsplit('.').next().unwrap_or(kind);
    let target = op.get("targetLink").and_then(Value::as_str).unwrap_or_default();
    format!("{kind} {}", short_path(target))
}

/// `projects/P/global/urlMaps/x` → `urlMaps/x`; zonal paths keep their zone.
fn short_path(link: &str) -> &str {
    let path = link.find("projects/").map_or(link, |i| &link[i..]);
    let rest = path.splitn(3, '/').nth(2).unwrap_or(path);
    rest.strip_prefix("global/").unwrap_or(rest)
}

/// ` (0.10s)` from the operation's own timestamps, when it has them.
fn took(op: &Value) -> String {
    let at = |field: &str| {
        op.get(field)
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
    };
    match (at("insertTime"), at("endTime")) {
        (Some(start), Some(end)) => format!(
            " ({:.2}s)",
            (end - start).total(jiff::Unit::Second).unwrap_or(0.0)
        ),
        _ => String::new(),
    }
}

/// One line per Compute resource: `collection  name`, instances left out.
pub fn resources(state: &Value) -> Vec<String> {
    let Some(resources) = state.get("resources").and_then(Value::as_object) else {
        return Vec::new();
    };
    resources
        .keys()
        .filter(|path| !path.contains("/instances/"))
        .map(|path| {
            let mut parts = short_path(path).rsplitn(2, '/');
            let name = parts.next().unwrap_or_default();
            let collection = parts.next().unwrap_or_default();
            format!("{collection:<34} {name}")
        })
        .collect()
}
