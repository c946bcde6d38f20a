//! VPC networks (global): get, list, insert, delete. Every project starts with the networks of
//! [`crate::Config::networks`] that are bare names (`default`, as a new Google Cloud project
//! does): the store shows them in every project without storing them, and stores a project's
//! when one of them is deleted (the project of the configuration has them stored at start);
//! other networks (a Shared VPC host's) are created by a path in that list or by
//! `networks.insert`.
//! Deleting a network still used (firewall rule, instance group, NEG, forwarding rule, instance)
//! fails in its operation with `RESOURCE_IN_USE_BY_ANOTHER_RESOURCE`.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::errors::ApiError;
use crate::json::{Obj, enum_field, int_in_range, opt_bool, opt_obj, opt_str};
use crate::kinds::{Key, LINK_BASE, region_of_zone};
use crate::mutation::server_fields;
use crate::store::{Entry, Members};

/// Validates a new network and writes the defaults a read shows.
pub(super) fn normalize(obj: &mut Obj) -> Result<Vec<Key>, ApiError> {
    opt_str(obj, "description", "resource.description")?;
    opt_bool(obj, "autoCreateSubnetworks", "resource.autoCreateSubnetworks")?;
    let mut routing = opt_obj(obj, "routingConfig", "resource.routingConfig")?
        .cloned()
        .unwrap_or_default();
    enum_field(
        &mut routing,
        "routingMode",
        "resource.routingConfig.routingMode",
        &["REGIONAL", "GLOBAL"],
        Some("REGIONAL"),
    )?;
    obj.insert("routingConfig".into(), Value::Object(routing));
    int_in_range(obj, "mtu", "resource.mtu", Some(1460), 1300, 8896)?;
    enum_field(
        obj,
        "networkFirewallPolicyEnforcementOrder",
        "resource.networkFirewallPolicyEnforcementOrder",
        &["AFTER_CLASSIC_FIREWALL", "BEFORE_CLASSIC_FIREWALL"],
        Some("AFTER_CLASSIC_FIREWALL"),
    )?;
    Ok(Vec::new())
}

/// A network as a project starts with it (`default`: auto mode, one subnetwork per region),
/// with the defaults of an inserted one.
pub(crate) fn build(key: &Key, id: u64, created: &str) -> Entry {
    let mut obj = server_fields(key, id, created);
    let description = if key.name == "default" {
        "Default network for the project"
    } else {
        ""
    };
    obj.insert("description".into(), description.into());
    obj.insert("autoCreateSubnetworks".into(), true.into());
    let written = normalize(&mut obj);
    debug_assert!(written.is_ok(), "a start network is valid: {written:?}");
    obj.insert("selfLink".into(), key.link().into());
    Entry {
        obj,
        refs: Vec::new(),
        members: Members::None,
    }
}

/// Whether the network creates its subnetworks (one per region, named like the network).
pub(crate) fn auto_mode(obj: &Obj) -> bool {
    obj.get("autoCreateSubnetworks").and_then(Value::as_bool) == Some(true)
}

/// The subnetwork an auto-mode network has in `region`.
pub(crate) fn auto_subnetwork(network: &Key, region: &str) -> String {
    format!(
        "{LINK_BASE}projects/{}/regions/{region}/subnetworks/{}",
        network.project, network.name
    )
}

/// The `subnetworks` a read shows for an auto-mode network: one per region of the known zones.
pub(crate) fn render_subnetworks(key: &Key, obj: &mut Obj, zones: &BTreeSet<String>) {
    if !auto_mode(obj) {
        return;
    }
    let regions: BTreeSet<&str> = zones.iter().map(|z| region_of_zone(z)).collect();
    let links: Vec<Value> = regions
        .into_iter()
        .map(|r| Value::String(auto_subnetwork(key, r)))
        .collect();
    if !links.is_empty() {
        obj.insert("subnetworks".into(), Value::Array(links));
    }
}
