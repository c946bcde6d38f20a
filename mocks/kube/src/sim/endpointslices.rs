//! The simulated EndpointSlice controller (kube-controller-manager's
//! `pkg/controller/endpointslice`, reconciler in `k8s.io/endpointslice` `reconciler.go` and
//! `utils.go`; docs "EndpointSlices").
//!
//! For every Service with a selector (not `ExternalName`, with an IPv4 family), the pods of its
//! namespace whose labels match the selector, and that have an address and have not finished
//! (`ShouldPodBeInEndpoints` with terminating pods included), become endpoints: `addresses`
//! (the pod's IPv4 `podIPs`), `conditions` (`serving` = the pod's `Ready` condition;
//! `terminating` = being deleted; `ready` = serving and not terminating, or
//! `publishNotReadyAddresses`), `nodeName`, `zone` (the Node's `topology.kubernetes.io/zone`
//! label), `hostname` (when the pod's `subdomain` is the Service), and `targetRef` to the pod. A
//! pod whose Node does not exist is left out (unless `publishNotReadyAddresses`), as the real
//! controller does.
//!
//! Ports come from the Service's ports; a named `targetPort` is resolved against the pod's
//! container ports with that name and protocol (sidecar init containers too), and a port that
//! does not resolve is left out for that pod (`FindPort`). Pods resolving to different ports go
//! to different slices; each group is cut into slices of at most
//! [`super::PodSimulation::max_endpoints_per_slice`]. A Service without endpoints keeps one
//! placeholder slice with no endpoints and no ports.
//!
//! Slices are named `<service>-<random>` (`generateName`), labelled with the Service's labels,
//! `kubernetes.io/service-name`, `endpointslice.kubernetes.io/managed-by:
//! endpointslice-controller.k8s.io` (and `service.kubernetes.io/headless` for headless
//! Services), and owned by the Service (a controller `ownerReference`). Slices with these labels
//! that the Service does not own are deleted. When a Service goes, its slices go with it (the
//! garbage collector's job in a cluster, done here by the simulator). Endpoints are ordered by
//! pod name and ports by the Service's order; the real controller's orders are arbitrary.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::{Simulator, key_of, meta, selects, spec_str};
use crate::store::{DeleteOptions, Filter, Store, Sub, WriteOptions};
use crate::validation::{dns1123_subdomain, items};

pub(super) const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// Whether the simulated controller manages this slice.
pub(super) fn managed(slice: &Value) -> bool {
    slice
        .pointer("/metadata/labels")
        .and_then(|l| l.get(MANAGED_BY_LABEL))
        .and_then(Value::as_str)
        == Some(CONTROLLER_NAME)
}

fn label<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.pointer("/metadata/labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
}

/// The uid of the Service owning a slice (its `ownerReferences` entry of kind Service, v1).
fn owner_uid(slice: &Value) -> Option<&str> {
    items(slice.pointer("/metadata/ownerReferences"))
        .iter()
        .find(|o| {
            o.get("kind").and_then(Value::as_str) == Some("Service")
                && o.get("apiVersion").and_then(Value::as_str) == Some("v1")
        })
        .and_then(|o| o.get("uid").and_then(Value::as_str))
}

/// `ShouldPodBeInEndpoints(pod, includeTerminating=true)`.
fn should_be_in_endpoints(pod: &Value) -> bool {
    let phase = pod.pointer("/status/phase").and_then(Value::as_str).unwrap_or("");
    if phase == "Succeeded" || phase == "Failed" {
        return false;
    }
    let ip = pod.pointer("/status/podIP").and_then(Value::as_str).unwrap_or("");
    !ip.is_empty() || !items(pod.pointer("/status/podIPs")).is_empty()
}

fn is_ready(pod: &Value) -> bool {
    items(pod.pointer("/status/conditions")).iter().any(|c| {
        c.get("type").and_then(Value::as_str) == Some("Ready")
            && c.get("status").and_then(Value::as_str) == Some("True")
    })
}

/// `FindPort`: the container port a Service port targets on this pod.
fn find_port(pod: &Value, target: &Value, protocol: &str) -> Option<i64> {
    match target {
        Value::Number(n) => n.as_i64(),
        Value::String(name) => {
            let containers = items(pod.pointer("/spec/containers")).iter().chain(
                items(pod.pointer("/spec/initContainers"))
                    .iter()
                    .filter(|c| c.get("restartPolicy").and_then(Value::as_str) == Some("Always")),
            );
            for c in containers {
                for p in items(c.get("ports")) {
                    let p_proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
                    if p.get("name").and_then(Value::as_str) == Some(name.as_str()) && p_proto == protocol {
                        return p.get("containerPort").and_then(Value::as_i64);
                    }
                }
            }
            None
        }
        _ => None,
    }
}

/// `getEndpointPorts`: the slice ports for this pod.
fn endpoint_ports(service: &Value, pod: &Value) -> Vec<Value> {
    items(service.pointer("/spec/ports"))
        .iter()
        .filter_map(|sp| {
            let protocol = sp.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
            let target = sp
                .get("targetPort")
                .or_else(|| sp.get("port"))
                .cloned()
                .unwrap_or(Value::Null);
            let port = find_port(pod, &target, protocol)?;
            let mut ep = json!({
                "name": sp.get("name").and_then(Value::as_str).unwrap_or(""),
                "port": port,
                "protocol": protocol,
            });
            if let Some(app) = sp.get("appProtocol").filter(|a| !a.is_null()) {
                ep["appProtocol"] = app.clone();
            }
            Some(ep)
        })
        .collect()
}

/// `NewPortMapKey`: ports compared as a set.
fn port_key(ports: &[Value]) -> String {
    let mut keys: Vec<String> = ports.iter().map(Value::to_string).collect();
    keys.sort();
    keys.join("\n")
}

/// `podToEndpoint` for the IPv4 address type.
fn pod_to_endpoint(pod: &Value, node: Option<&Value>, service: &Value) -> Value {
    let serving = is_ready(pod);
    let terminating = !meta(pod, "deletionTimestamp").is_empty();
    let publish = service
        .pointer("/spec/publishNotReadyAddresses")
        .and_then(Value::as_bool)
        == Some(true);
    let addresses: Vec<String> = items(pod.pointer("/status/podIPs"))
        .iter()
        .filter_map(|p| p.get("ip").and_then(Value::as_str))
        .filter_map(|ip| ip.parse::<std::net::Ipv4Addr>().ok())
        .map(|ip| ip.to_string())
        .collect();
    let (ns, name) = key_of(pod);
    let mut ep = json!({
        "addresses": addresses,
        "conditions": {"ready": publish || (serving && !terminating), "serving": serving, "terminating": terminating},
        "targetRef": {"kind": "Pod", "namespace": ns, "name": name, "uid": meta(pod, "uid")},
    });
    let node_name = spec_str(pod, "nodeName");
    if !node_name.is_empty() {
        ep["nodeName"] = json!(node_name);
    }
    if let Some(zone) = node.and_then(|n| label(n, ZONE_LABEL)).filter(|z| !z.is_empty()) {
        ep["zone"] = json!(zone);
    }
    let hostname = spec_str(pod, "hostname");
    if !hostname.is_empty()
        && spec_str(pod, "subdomain") == meta(service, "name")
        && meta(service, "namespace") == ns
    {
        ep["hostname"] = json!(hostname);
    }
    ep
}

/// `setEndpointSliceLabels`: the Service's labels, then the reserved ones.
fn slice_labels(service: &Value) -> Value {
    let mut labels: Map<String, Value> = service
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(k, _)| !matches!(k.as_str(), SERVICE_NAME_LABEL | MANAGED_BY_LABEL | HEADLESS_LABEL))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let cluster_ip = spec_str(service, "clusterIP");
    if cluster_ip.is_empty() || cluster_ip == "None" {
        labels.insert(HEADLESS_LABEL.into(), json!(""));
    }
    labels.insert(SERVICE_NAME_LABEL.into(), json!(meta(service, "name")));
    labels.insert(MANAGED_BY_LABEL.into(), json!(CONTROLLER_NAME));
    Value::Object(labels)
}

/// `getEndpointSlicePrefix`: `<service>-`, unless that is not a valid name prefix.
fn name_prefix(service: &str) -> String {
    let prefix = format!("{service}-");
    if dns1123_subdomain(&format!("{service}-a")).is_none() {
        prefix
    } else {
        service.to_string()
    }
}

fn managed_slices_of(sim: &Simulator, store: &Store, ns: &str, service: &str) -> Vec<Arc<Value>> {
    let filter = Filter {
        namespace: Some(ns.to_string()),
        ..Filter::default()
    };
    let (slices, _) = store.snapshot(sim.kinds.slices, &filter);
    slices
        .into_iter()
        .filter(|s| managed(s) && label(s, SERVICE_NAME_LABEL) == Some(service))
        .collect()
}

fn delete_slice(sim: &Simulator, store: &mut Store, slice: &Value) {
    let (ns, name) = key_of(slice);
    let opts = DeleteOptions {
        uid: Some(meta(slice, "uid").to_string()),
        ..DeleteOptions::default()
    };
    if let Err(e) = store.delete(sim.kinds.slices, Some(&ns), &name, &opts) {
        tracing::debug!(namespace = %ns, slice = %name, error = %e, "simulated EndpointSlice controller: delete failed");
    }
}

/// Deletes the slices of a Service that is gone (the garbage collector following the slices'
/// owner reference).
pub(super) fn remove_for(sim: &Simulator, store: &mut Store, service: &Value) {
    let (ns, name) = key_of(service);
    let uid = meta(service, "uid");
    for slice in managed_slices_of(sim, store, &ns, &name) {
        if owner_uid(&slice) == Some(uid) {
            delete_slice(sim, store, &slice);
        }
    }
}

/// Deletes managed slices whose owning Service no longer exists (after a resync).
pub(super) fn collect_orphans(sim: &Simulator, store: &mut Store) {
    let (slices, _) = store.snapshot(sim.kinds.slices, &Filter::default());
    for slice in slices.iter().filter(|s| managed(s)) {
        let Some(owner) = owner_uid(slice) else {
            continue;
        };
        let ns = meta(slice, "namespace");
        let service = label(slice, SERVICE_NAME_LABEL).unwrap_or("");
        let alive = store
            .get(sim.kinds.services, Some(ns), service)
            .is_ok_and(|svc| meta(&svc, "uid") == owner);
        if !alive {
            delete_slice(sim, store, slice);
        }
    }
}

/// Brings a Service's slices to what the EndpointSlice controller would make them.
pub(super) fn reconcile(sim: &Simulator, store: &mut Store, ns: &str, name: &str) {
    let k = sim.kinds;
    let Ok(service) = store.get(k.services, Some(ns), name) else {
        return;
    };
    if spec_str(&service, "type") == "ExternalName"
        || service.pointer("/spec/selector").is_none_or(Value::is_null)
    {
        return;
    }
    let families = items(service.pointer("/spec/ipFamilies"));
    if !families.is_empty() && !families.iter().any(|f| f.as_str() == Some("IPv4")) {
        return;
    }
    let publish = service
        .pointer("/spec/publishNotReadyAddresses")
        .and_then(Value::as_bool)
        == Some(true);
    let filter = Filter {
        namespace: Some(ns.to_string()),
        ..Filter::default()
    };
    let (pods, _) = store.snapshot(k.pods, &filter);
    // Port groups in order of first appearance: (key, ports, endpoints).
    let mut groups: Vec<(String, Vec<Value>, Vec<Value>)> = Vec::new();
    for pod in pods.iter().filter(|p| selects(&service, p)) {
        if !should_be_in_endpoints(pod) {
            continue;
        }
        let node = store.get(k.nodes, None, spec_str(pod, "nodeName")).ok();
        if node.is_none() && !publish {
            continue;
        }
        let ports = endpoint_ports(&service, pod);
        let key = port_key(&ports);
        let endpoint = pod_to_endpoint(pod, node.as_deref(), &service);
        if items(endpoint.get("addresses")).is_empty() {
            continue;
        }
        match groups.iter_mut().find(|(k, _, _)| *k == key) {
            Some((_, _, endpoints)) => endpoints.push(endpoint),
            None => groups.push((key, ports, vec![endpoint])),
        }
    }
    let max = sim.config.max_endpoints_per_slice.max(1);
    let mut desired: Vec<(String, Vec<Value>, Vec<Value>)> = Vec::new();
    for (key, ports, endpoints) in groups {
        for chunk in endpoints.chunks(max) {
            desired.push((key.clone(), ports.clone(), chunk.to_vec()));
        }
    }
    if desired.is_empty() {
        desired.push((port_key(&[]), Vec::new(), Vec::new()));
    }

    let svc_uid = meta(&service, "uid").to_string();
    let mut existing: Vec<Arc<Value>> = Vec::new();
    for slice in managed_slices_of(sim, store, ns, name) {
        if owner_uid(&slice) == Some(svc_uid.as_str()) {
            existing.push(slice);
        } else {
            delete_slice(sim, store, &slice);
        }
    }
    let labels = slice_labels(&service);
    let owner = json!([{
        "apiVersion": "v1", "kind": "Service", "name": name, "uid": svc_uid,
        "controller": true, "blockOwnerDeletion": true,
    }]);
    let opts = WriteOptions::default();
    for (key, ports, endpoints) in desired {
        let reuse = existing
            .iter()
            .position(|s| port_key(items(s.get("ports"))) == key)
            .map(|i| existing.remove(i));
        match reuse {
            Some(slice) => {
                let mut updated = (*slice).clone();
                updated["metadata"]["labels"] = labels.clone();
                updated["addressType"] = json!("IPv4");
                updated["endpoints"] = json!(endpoints);
                updated["ports"] = json!(ports);
                let slice_name = meta(&slice, "name").to_string();
                if let Err(e) = store.update(k.slices, Some(ns), &slice_name, Sub::Main, updated, &opts) {
                    tracing::warn!(namespace = %ns, slice = %slice_name, error = %e, "simulated EndpointSlice controller: update refused");
                }
            }
            None => {
                let slice = json!({
                    "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": {"generateName": name_prefix(name), "namespace": ns,
                        "labels": labels, "ownerReferences": owner},
                    "addressType": "IPv4",
                    "endpoints": endpoints,
                    "ports": ports,
                });
                if let Err(e) = store.create(k.slices, Some(ns), slice, &opts) {
                    tracing::warn!(namespace = %ns, service = %name, error = %e, "simulated EndpointSlice controller: create refused");
                }
            }
        }
    }
    for slice in existing {
        delete_slice(sim, store, &slice);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_target_ports_resolve_per_pod() {
        let svc = json!({"metadata": {"name": "web", "namespace": "d"}, "spec": {"ports": [
            {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
            {"name": "metrics", "port": 9090, "targetPort": 9090, "protocol": "TCP"},
            {"name": "dns", "port": 53, "targetPort": "http", "protocol": "UDP"},
        ]}});
        let pod = json!({"spec": {"containers": [{"name": "a", "ports": [{"name": "http", "containerPort": 8080}]}]}});
        assert_eq!(
            endpoint_ports(&svc, &pod),
            [
                json!({"name": "http", "port": 8080, "protocol": "TCP"}),
                json!({"name": "metrics", "port": 9090, "protocol": "TCP"}),
            ],
            "the UDP port finds no UDP container port named http"
        );
        let bare = json!({"spec": {"containers": [{"name": "a"}]}});
        assert_eq!(endpoint_ports(&svc, &bare).len(), 1);
        assert_ne!(
            port_key(&endpoint_ports(&svc, &pod)),
            port_key(&endpoint_ports(&svc, &bare))
        );
    }

    #[test]
    fn endpoint_conditions() {
        let svc = json!({"metadata": {"name": "web", "namespace": "d"}, "spec": {}});
        let mut pod = json!({"metadata": {"name": "p", "namespace": "d", "uid": "u"},
            "spec": {"nodeName": "n1", "hostname": "h", "subdomain": "web"},
            "status": {"podIPs": [{"ip": "10.0.0.1"}], "conditions": [{"type": "Ready", "status": "True"}]}});
        let node = json!({"metadata": {"name": "n1", "labels": {"topology.kubernetes.io/zone": "z1"}}});
        let ep = pod_to_endpoint(&pod, Some(&node), &svc);
        assert_eq!(
            ep["conditions"],
            json!({"ready": true, "serving": true, "terminating": false})
        );
        assert_eq!(ep["zone"], "z1");
        assert_eq!(ep["hostname"], "h");
        pod["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
        let ep = pod_to_endpoint(&pod, Some(&node), &svc);
        assert_eq!(
            ep["conditions"],
            json!({"ready": false, "serving": true, "terminating": true})
        );
        assert_eq!(name_prefix("web"), "web-");
    }
}
