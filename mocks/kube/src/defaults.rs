//! Defaulting and allocation the apiserver does on write: Service cluster IPs and node ports,
//! Secret `stringData`, Namespace phase.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::ops::RangeInclusive;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use serde_json::{Value, json};

use crate::error::Cause;

/// Cluster-wide allocations that must stay unique: node ports and cluster IPs.
#[derive(Debug)]
pub(crate) struct Allocator {
    range: RangeInclusive<u16>,
    /// Node port → owning Service (`namespace/name`).
    node_ports: HashMap<u16, String>,
    /// Where the next search for a free node port starts, so ports are spread like the real allocator.
    cursor: u16,
    next_ip: u32,
}

fn owner(obj: &Value) -> String {
    let ns = obj
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    format!("{ns}/{name}")
}

fn node_ports_of(obj: &Value) -> impl Iterator<Item = u16> + '_ {
    obj.pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("nodePort").and_then(Value::as_u64))
        .filter_map(|n| u16::try_from(n).ok())
}

impl Allocator {
    pub fn new(range: RangeInclusive<u16>) -> Self {
        Allocator {
            cursor: *range.start(),
            range,
            node_ports: HashMap::new(),
            // 10.96.0.1 is the `kubernetes` Service.
            next_ip: u32::from(Ipv4Addr::new(10, 96, 0, 1)),
        }
    }

    fn next_cluster_ip(&mut self) -> String {
        let ip = Ipv4Addr::from(self.next_ip);
        self.next_ip = self.next_ip.wrapping_add(1);
        ip.to_string()
    }

    fn free_node_port(&mut self, taken: &[u16]) -> Option<u16> {
        let (lo, hi) = (*self.range.start(), *self.range.end());
        let size = u32::from(hi - lo) + 1;
        for step in 0..size {
            let offset = (u32::from(self.cursor - lo) + step) % size;
            let port = lo + offset as u16;
            if !self.node_ports.contains_key(&port) && !taken.contains(&port) {
                self.cursor = if port == hi { lo } else { port + 1 };
                return Some(port);
            }
        }
        None
    }

    /// Records the node ports a stored Service holds, releasing those its previous version held.
    pub fn commit_service(&mut self, old: Option<&Value>, new: Option<&Value>) {
        if let Some(old) = old {
            let who = owner(old);
            for p in node_ports_of(old) {
                if self.node_ports.get(&p) == Some(&who) {
                    self.node_ports.remove(&p);
                }
            }
        }
        if let Some(new) = new {
            let who = owner(new);
            for p in node_ports_of(new) {
                self.node_ports.insert(p, who.clone());
            }
        }
    }
}

/// Namespace: the `kubernetes` finalizer, the name label and the phase.
pub(crate) fn namespace(obj: &mut Value, _old: Option<&Value>, _: &mut Allocator) -> Result<(), Vec<Cause>> {
    let name = obj.pointer("/metadata/name").cloned().unwrap_or(Value::Null);
    let meta = &mut obj["metadata"];
    if !meta["labels"].is_object() {
        meta["labels"] = json!({});
    }
    meta["labels"]["kubernetes.io/metadata.name"] = name;
    let terminating = obj.pointer("/metadata/deletionTimestamp").is_some();
    if !obj["spec"].is_object() {
        obj["spec"] = json!({});
    }
    if obj["spec"].get("finalizers").is_none() {
        obj["spec"]["finalizers"] = json!(["kubernetes"]);
    }
    if !obj["status"].is_object() {
        obj["status"] = json!({});
    }
    obj["status"]["phase"] = json!(if terminating { "Terminating" } else { "Active" });
    Ok(())
}

/// Secret: default type, and `stringData` folded into `data`.
pub(crate) fn secret(obj: &mut Value, _old: Option<&Value>, _: &mut Allocator) -> Result<(), Vec<Cause>> {
    if obj.get("type").is_none_or(Value::is_null) {
        obj["type"] = json!("Opaque");
    }
    if obj.get("stringData").is_none_or(Value::is_null) {
        return Ok(());
    }
    // Going through the typed struct lets k8s-openapi do the base64 encoding.
    let mut typed: Secret = serde_json::from_value(obj.clone())
        .map_err(|e| vec![Cause::invalid("stringData", &Value::Null, &e.to_string())])?;
    if let Some(strings) = typed.string_data.take() {
        let data = typed.data.get_or_insert_with(Default::default);
        for (k, v) in strings {
            data.insert(k, ByteString(v.into_bytes()));
        }
    }
    *obj = serde_json::to_value(typed)
        .map_err(|e| vec![Cause::invalid("data", &Value::Null, &e.to_string())])?;
    Ok(())
}

/// Service: type, cluster IP, protocols, target ports, node ports.
pub(crate) fn service(obj: &mut Value, old: Option<&Value>, alloc: &mut Allocator) -> Result<(), Vec<Cause>> {
    let who = owner(obj);
    if !obj["spec"].is_object() {
        obj["spec"] = json!({});
    }
    let spec = &mut obj["spec"];
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_string();
    spec["type"] = json!(ty);
    if spec.get("sessionAffinity").is_none() {
        spec["sessionAffinity"] = json!("None");
    }
    if ty != "ExternalName" {
        let old_ip = old.and_then(|o| o.pointer("/spec/clusterIP")).cloned();
        if spec
            .get("clusterIP")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            spec["clusterIP"] = match old_ip {
                Some(ip) => ip,
                None => json!(alloc.next_cluster_ip()),
            };
        }
        if spec.get("clusterIPs").is_none() {
            spec["clusterIPs"] = json!([spec["clusterIP"].clone()]);
        }
        if spec.get("ipFamilies").is_none() && spec["clusterIP"] != "None" {
            spec["ipFamilies"] = json!(["IPv4"]);
        }
        if spec.get("ipFamilyPolicy").is_none() {
            spec["ipFamilyPolicy"] = json!("SingleStack");
        }
        if spec.get("internalTrafficPolicy").is_none() {
            spec["internalTrafficPolicy"] = json!("Cluster");
        }
    }
    let wants_node_ports = ty == "NodePort" || ty == "LoadBalancer";
    if wants_node_ports && spec.get("externalTrafficPolicy").is_none() {
        spec["externalTrafficPolicy"] = json!("Cluster");
    }
    if ty == "LoadBalancer" && spec.get("allocateLoadBalancerNodePorts").is_none() {
        spec["allocateLoadBalancerNodePorts"] = json!(true);
    }
    let old_ports: Vec<Value> = old
        .and_then(|o| o.pointer("/spec/ports"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut causes = Vec::new();
    let mut chosen: Vec<u16> = Vec::new();
    let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    for (i, p) in ports.iter_mut().enumerate() {
        if p.get("protocol").is_none() {
            p["protocol"] = json!("TCP");
        }
        if p.get("targetPort").is_none() {
            p["targetPort"] = p["port"].clone();
        }
        if !wants_node_ports {
            if let Some(map) = p.as_object_mut() {
                map.remove("nodePort");
            }
            continue;
        }
        let field = format!("spec.ports[{i}].nodePort");
        match p.get("nodePort").and_then(Value::as_u64) {
            Some(n) => {
                let value = json!(n);
                match u16::try_from(n).ok().filter(|n| alloc.range.contains(n)) {
                    None => causes.push(Cause::invalid(
                        field,
                        &value,
                        &format!(
                            "provided port is not in the valid range {}-{}",
                            alloc.range.start(),
                            alloc.range.end()
                        ),
                    )),
                    Some(n) => {
                        let taken_elsewhere = alloc.node_ports.get(&n).is_some_and(|o| *o != who);
                        if taken_elsewhere || chosen.contains(&n) {
                            causes.push(Cause::invalid(
                                field,
                                &value,
                                "provided port is already allocated",
                            ));
                        }
                        chosen.push(n);
                    }
                }
            }
            None => {
                let same = old_ports
                    .iter()
                    .find(|o| o.get("port") == p.get("port") && o.get("protocol") == p.get("protocol"))
                    .and_then(|o| o.get("nodePort"))
                    .and_then(Value::as_u64)
                    .and_then(|n| u16::try_from(n).ok())
                    .filter(|n| !chosen.contains(n));
                match same.or_else(|| alloc.free_node_port(&chosen)) {
                    Some(n) => {
                        p["nodePort"] = json!(n);
                        chosen.push(n);
                    }
                    None => causes.push(Cause::invalid(field, &Value::Null, "no free node port left")),
                }
            }
        }
    }
    if causes.is_empty() { Ok(()) } else { Err(causes) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(name: &str, ports: Value) -> Value {
        json!({"metadata": {"name": name, "namespace": "d"}, "spec": {"type": "NodePort", "ports": ports}})
    }

    #[test]
    fn node_ports_are_unique() {
        let mut alloc = Allocator::new(30000..=30001);
        let mut a = svc("a", json!([{"port": 80}]));
        service(&mut a, None, &mut alloc).unwrap();
        alloc.commit_service(None, Some(&a));
        assert_eq!(a["spec"]["ports"][0]["nodePort"], 30000);
        assert_eq!(a["spec"]["ports"][0]["targetPort"], 80);
        assert_eq!(a["spec"]["clusterIP"], "10.96.0.1");

        let mut b = svc("b", json!([{"port": 80, "nodePort": 30000}]));
        let err = service(&mut b, None, &mut alloc).unwrap_err();
        assert_eq!(err[0].field, "spec.ports[0].nodePort");

        let mut c = svc("c", json!([{"port": 80}, {"port": 81}]));
        let err = service(&mut c, None, &mut alloc).unwrap_err();
        assert_eq!(
            err[0].field, "spec.ports[1].nodePort",
            "range of two is exhausted"
        );

        // An update keeps the port; deleting releases it.
        let mut a2 = svc("a", json!([{"port": 80}]));
        service(&mut a2, Some(&a), &mut alloc).unwrap();
        assert_eq!(a2["spec"]["ports"][0]["nodePort"], 30000);
        alloc.commit_service(Some(&a), None);
        let mut b = svc("b", json!([{"port": 80, "nodePort": 30000}]));
        service(&mut b, None, &mut alloc).unwrap();
    }

    #[test]
    fn string_data_is_folded() {
        let mut s = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "stringData": {"a": "hi"}, "data": {"b": "aGk="}});
        secret(&mut s, None, &mut Allocator::new(30000..=32767)).unwrap();
        assert_eq!(s["data"]["a"], "aGk=");
        assert_eq!(s["data"]["b"], "aGk=");
        assert!(s.get("stringData").is_none());
        assert_eq!(s["type"], "Opaque");
    }
}
