//! The simulated kubelet: runs every pod bound (`spec.nodeName`) to a Node that exists, by
//! writing the status a kubelet would through the status subresource.
//!
//! The status follows the kubelet's (`pkg/kubelet/kubelet_pods.go` `generateAPIPodStatus`,
//! `pkg/kubelet/status/generate.go`, docs "Pod Lifecycle"): `phase: Running`; `podIP`/`podIPs`
//! from the simulator's range (the Node's address for `hostNetwork` pods); `hostIP`/`hostIPs`
//! from the Node's first `InternalIP`; `startTime`; a running container status per container
//! (completed ones for init containers, running ones for sidecars); and the kubelet-owned
//! conditions `PodReadyToStartContainers`, `Initialized`, `ContainersReady` (True unless
//! `set_containers_ready` said otherwise), `Ready` and `PodScheduled`. `Ready` is
//! `ContainersReady` and every readiness gate's condition `True` (docs "Pod readiness gate";
//! `GeneratePodReadyCondition`), with the kubelet's reasons and messages when not. Other
//! conditions (a load balancer controller's readiness gate conditions) are kept, and `Ready` is
//! evaluated again whenever the pod changes. A condition's `lastTransitionTime` moves only when
//! its status does.

use serde_json::{Value, json};

use super::{PodIpRange, Simulator, key_of, meta, spec_str};
use crate::store::{Store, Sub, WriteOptions, now_rfc3339};
use crate::validation::items;

/// Conditions the kubelet owns, in the order it reports them (`generateAPIPodStatus`).
const KUBELET_CONDITIONS: &[&str] = &[
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
];

/// The Node's first `InternalIP`.
fn internal_ip(node: &Value) -> Option<String> {
    items(node.pointer("/status/addresses"))
        .iter()
        .find(|a| a.get("type").and_then(Value::as_str) == Some("InternalIP"))
        .and_then(|a| a.get("address").and_then(Value::as_str))
        .map(String::from)
}

/// One condition as the kubelet writes it: reason and message only when not `True`.
fn condition(ty: &str, ok: bool, reason: &str, message: &str) -> Value {
    let mut c = json!({"type": ty, "status": if ok { "True" } else { "False" }});
    if !reason.is_empty() {
        c["reason"] = json!(reason);
    }
    if !message.is_empty() {
        c["message"] = json!(message);
    }
    c
}

/// Sets a condition in the list, keeping its place and, when its status is unchanged, its
/// `lastTransitionTime`; new conditions go at the end.
fn upsert(conditions: &mut Vec<Value>, mut wanted: Value, now: &str) {
    let ty = wanted["type"].clone();
    match conditions.iter_mut().find(|c| c.get("type") == Some(&ty)) {
        Some(existing) => {
            let since = if existing.get("status") == wanted.get("status") {
                existing
                    .get("lastTransitionTime")
                    .cloned()
                    .unwrap_or_else(|| json!(now))
            } else {
                json!(now)
            };
            wanted["lastTransitionTime"] = since;
            *existing = wanted;
        }
        None => {
            wanted["lastTransitionTime"] = json!(now);
            conditions.push(wanted);
        }
    }
}

fn is_sidecar(c: &Value) -> bool {
    c.get("restartPolicy").and_then(Value::as_str) == Some("Always")
}

fn container_id(uid: &str, list: &str, index: usize) -> String {
    let kind = if list == "initContainers" { 1 } else { 0 };
    format!("containerd://{}{kind}{index:03x}", uid.replace('-', ""))
}

/// A container's status: running (or, for a plain init container, completed), keeping what the
/// previous status said about when it started.
fn container_status(
    c: &Value,
    old: Option<&Value>,
    ready: bool,
    completed: bool,
    id: String,
    now: &str,
) -> Value {
    let name = c.get("name").cloned().unwrap_or(Value::Null);
    let image = c.get("image").cloned().unwrap_or(json!(""));
    let old_field = |f: &str| old.and_then(|o| o.get(f)).cloned();
    let started_at = old
        .and_then(|o| {
            o.pointer("/state/running/startedAt")
                .or_else(|| o.pointer("/state/terminated/startedAt"))
        })
        .cloned()
        .unwrap_or_else(|| json!(now));
    let container_id = old_field("containerID").unwrap_or(json!(id));
    let state = if completed {
        let finished = old
            .and_then(|o| o.pointer("/state/terminated/finishedAt"))
            .cloned()
            .unwrap_or_else(|| json!(now));
        json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started_at,
            "finishedAt": finished, "containerID": container_id}})
    } else {
        json!({"running": {"startedAt": started_at}})
    };
    json!({
        "name": name,
        "image": image,
        "imageID": old_field("imageID").unwrap_or(json!("")),
        "containerID": container_id,
        "ready": ready,
        "restartCount": old_field("restartCount").unwrap_or(json!(0)),
        "started": !completed,
        "state": state,
    })
}

/// The status the kubelet reports for a running pod.
fn desired_status(pod: &Value, host_ip: Option<&str>, pod_ip: &str, ready: bool, now: &str) -> Value {
    let mut status = pod
        .get("status")
        .filter(|s| s.is_object())
        .cloned()
        .unwrap_or_else(|| json!({}));
    let uid = meta(pod, "uid");
    status["phase"] = json!("Running");
    status["podIP"] = json!(pod_ip);
    status["podIPs"] = json!([{"ip": pod_ip}]);
    if let Some(host) = host_ip {
        status["hostIP"] = json!(host);
        status["hostIPs"] = json!([{"ip": host}]);
    }
    if status.get("startTime").is_none_or(Value::is_null) {
        status["startTime"] = json!(now);
    }
    let old_statuses = |field: &str| items(pod.pointer(&format!("/status/{field}"))).to_vec();
    let find = |list: &[Value], name: &Value| list.iter().find(|s| s.get("name") == Some(name)).cloned();

    let mut unready = Vec::new();
    let old_init = old_statuses("initContainerStatuses");
    let init_specs = items(pod.pointer("/spec/initContainers"));
    let init: Vec<Value> = init_specs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let sidecar = is_sidecar(c);
            if sidecar && !ready {
                unready.push(c.get("name").and_then(Value::as_str).unwrap_or("").to_string());
            }
            let old = find(&old_init, &c["name"]);
            container_status(
                c,
                old.as_ref(),
                !sidecar || ready,
                !sidecar,
                container_id(uid, "initContainers", i),
                now,
            )
        })
        .collect();
    if !init.is_empty() {
        status["initContainerStatuses"] = json!(init);
    }
    let old_main = old_statuses("containerStatuses");
    let main: Vec<Value> = items(pod.pointer("/spec/containers"))
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if !ready {
                unready.push(c.get("name").and_then(Value::as_str).unwrap_or("").to_string());
            }
            let old = find(&old_main, &c["name"]);
            container_status(
                c,
                old.as_ref(),
                ready,
                false,
                container_id(uid, "containers", i),
                now,
            )
        })
        .collect();
    status["containerStatuses"] = json!(main);

    let mut conditions = items(status.get("conditions")).to_vec();
    let containers_ready = if unready.is_empty() {
        condition("ContainersReady", true, "", "")
    } else {
        // Go's %s of a []string: `[a b]`.
        let message = format!("containers with unready status: [{}]", unready.join(" "));
        condition("ContainersReady", false, "ContainersNotReady", &message)
    };
    let ready_condition = if unready.is_empty() {
        let mut messages = Vec::new();
        for gate in items(pod.pointer("/spec/readinessGates")) {
            let ty = gate.get("conditionType").and_then(Value::as_str).unwrap_or("");
            match conditions
                .iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some(ty))
            {
                None => messages.push(format!(
                    "corresponding condition of pod readiness gate \"{ty}\" does not exist."
                )),
                Some(c) if c.get("status").and_then(Value::as_str) != Some("True") => {
                    let s = c.get("status").and_then(Value::as_str).unwrap_or("");
                    messages.push(format!(
                        "the status of pod readiness gate \"{ty}\" is not \"True\", but {s}"
                    ));
                }
                Some(_) => {}
            }
        }
        if messages.is_empty() {
            condition("Ready", true, "", "")
        } else {
            condition("Ready", false, "ReadinessGatesNotReady", &messages.join(", "))
        }
    } else {
        let mut r = containers_ready.clone();
        r["type"] = json!("Ready");
        r
    };
    for ty in KUBELET_CONDITIONS {
        let c = match *ty {
            "Ready" => ready_condition.clone(),
            "ContainersReady" => containers_ready.clone(),
            other => condition(other, true, "", ""),
        };
        upsert(&mut conditions, c, now);
    }
    status["conditions"] = json!(conditions);
    status
}

/// Brings a pod's status to what its kubelet would report, if a kubelet runs it.
pub(super) fn sync(sim: &Simulator, store: &mut Store, pod: &Value) {
    let node_name = spec_str(pod, "nodeName");
    if node_name.is_empty() {
        return;
    }
    let Ok(node) = store.get(sim.kinds.nodes, None, node_name) else {
        return;
    };
    let phase = pod.pointer("/status/phase").and_then(Value::as_str).unwrap_or("");
    if phase == "Succeeded" || phase == "Failed" {
        return;
    }
    if !meta(pod, "deletionTimestamp").is_empty() {
        sim.schedule_termination(pod);
    }
    let uid = meta(pod, "uid");
    let host_ip = internal_ip(&node);
    let current_ip = pod
        .pointer("/status/podIP")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(String::from);
    let host_network = pod.pointer("/spec/hostNetwork").and_then(Value::as_bool) == Some(true);
    let pod_ip = match current_ip {
        Some(ip) => ip,
        None if host_network && host_ip.is_some() => host_ip.clone().unwrap_or_default(),
        None => match sim.allocate(uid, PodIpRange::of_cidr(spec_str(&node, "podCIDR"))) {
            Some(ip) => ip.to_string(),
            None => {
                tracing::warn!(
                    pod = meta(pod, "name"),
                    "pod simulator: no free pod IP in the range"
                );
                return;
            }
        },
    };
    sim.note_ip(uid, &pod_ip);
    let status = desired_status(
        pod,
        host_ip.as_deref(),
        &pod_ip,
        sim.containers_ready(uid),
        &now_rfc3339(),
    );
    if pod.get("status") == Some(&status) {
        return;
    }
    let mut updated = pod.clone();
    updated["status"] = status;
    let (ns, name) = key_of(pod);
    if let Err(e) = store.update(
        sim.kinds.pods,
        Some(&ns),
        &name,
        Sub::Status,
        updated,
        &WriteOptions::default(),
    ) {
        tracing::warn!(namespace = %ns, pod = %name, error = %e, "pod simulator: status update refused");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(status: &Value) -> Vec<(String, String)> {
        items(status.get("conditions"))
            .iter()
            .map(|c| {
                (
                    c["type"].as_str().unwrap().to_string(),
                    c["status"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn ready_needs_containers_and_gates() {
        let pod = json!({
            "metadata": {"name": "p", "uid": "u-1"},
            "spec": {"nodeName": "n", "containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "x"}],
                     "readinessGates": [{"conditionType": "example.com/gate"}]},
            "status": {"phase": "Pending", "qosClass": "BestEffort"},
        });
        let s = desired_status(&pod, Some("192.0.2.1"), "10.0.0.1", true, "2025-01-01T00:00:00Z");
        assert_eq!(s["phase"], "Running");
        assert_eq!(s["podIPs"], json!([{"ip": "10.0.0.1"}]));
        assert_eq!(s["hostIP"], "192.0.2.1");
        let ready = items(s.get("conditions"))
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap();
        assert_eq!(ready["status"], "False");
        assert_eq!(ready["reason"], "ReadinessGatesNotReady");
        assert_eq!(
            ready["message"],
            "corresponding condition of pod readiness gate \"example.com/gate\" does not exist."
        );

        let mut gated = pod.clone();
        gated["status"] = s.clone();
        gated["status"]["conditions"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "example.com/gate", "status": "True"}));
        let s2 = desired_status(
            &gated,
            Some("192.0.2.1"),
            "10.0.0.1",
            true,
            "2025-01-01T00:01:00Z",
        );
        assert!(types(&s2).contains(&("Ready".into(), "True".into())));
        assert!(types(&s2).contains(&("example.com/gate".into(), "True".into())));
        let scheduled = |s: &Value| {
            items(s.get("conditions"))
                .iter()
                .find(|c| c["type"] == "PodScheduled")
                .unwrap()["lastTransitionTime"]
                .clone()
        };
        assert_eq!(
            scheduled(&s2),
            json!("2025-01-01T00:00:00Z"),
            "unchanged conditions keep their time"
        );

        let s3 = desired_status(&gated, None, "10.0.0.1", false, "2025-01-01T00:02:00Z");
        let ready = items(s3.get("conditions"))
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap()
            .clone();
        assert_eq!(ready["reason"], "ContainersNotReady");
        assert_eq!(ready["message"], "containers with unready status: [a b]");
        assert_eq!(s3["containerStatuses"][0]["ready"], false);
    }
}
