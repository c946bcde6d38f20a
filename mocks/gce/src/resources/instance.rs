//! Instances: read-only through the API, created by seeding (admin API or [`crate::Config`]),
//! because instance groups and NEGs may only hold instances that exist.

use serde_json::{Value, json};

use crate::ids::now_rfc3339;
use crate::json::Obj;
use crate::kinds::{Key, LINK_BASE};
use crate::store::{Entry, Members};

/// Where a seeded instance's primary interface (`nic0`) is: its network (which it references,
/// so that the network cannot be deleted under it) and subnetwork (a full link), if any.
pub(crate) struct Nic {
    pub network: Key,
    pub subnetwork: Option<String>,
    pub ip: String,
}

/// The JSON of a seeded instance, keeping `id` and `creationTimestamp` of an earlier seeding.
pub(crate) fn build(key: &Key, zone: &str, id: u64, nic: Nic, tags: &[String], old: Option<&Entry>) -> Entry {
    let old_field = |f: &str| old.and_then(|e| e.obj.get(f)).cloned();
    let project = &key.project;
    let mut obj = Obj::new();
    obj.insert("kind".into(), "compute#instance".into());
    obj.insert(
        "id".into(),
        old_field("id").unwrap_or_else(|| id.to_string().into()),
    );
    obj.insert(
        "creationTimestamp".into(),
        old_field("creationTimestamp").unwrap_or_else(|| now_rfc3339().into()),
    );
    obj.insert("name".into(), key.name.clone().into());
    obj.insert(
        "machineType".into(),
        format!("{LINK_BASE}projects/{project}/zones/{zone}/machineTypes/e2-medium").into(),
    );
    obj.insert("status".into(), "RUNNING".into());
    obj.insert(
        "zone".into(),
        format!("{LINK_BASE}projects/{project}/zones/{zone}").into(),
    );
    let mut nic0 = json!({
        "kind": "compute#networkInterface",
        "network": nic.network.link(),
        "networkIP": nic.ip,
        "name": "nic0",
    });
    if let Some(sub) = &nic.subnetwork {
        nic0["subnetwork"] = sub.clone().into();
    }
    obj.insert("networkInterfaces".into(), json!([nic0]));
    if !tags.is_empty() {
        obj.insert("tags".into(), json!({ "items": tags }));
    }
    obj.insert("selfLink".into(), key.link().into());
    Entry {
        obj,
        refs: vec![nic.network],
        members: Members::None,
    }
}

/// The network and subnetwork links of an instance's primary interface.
pub(crate) fn nic0_links(obj: &Obj) -> (Option<&str>, Option<&str>) {
    let nic = obj
        .get("networkInterfaces")
        .and_then(Value::as_array)
        .and_then(|a| a.first());
    let field = |f: &str| nic.and_then(|n| n.get(f)).and_then(Value::as_str);
    (field("network"), field("subnetwork"))
}

/// The primary internal IP of an instance.
pub(crate) fn primary_ip(obj: &Obj) -> String {
    obj.get("networkInterfaces")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(|nic| nic.get("networkIP"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}
