//! Unmanaged zonal instance groups: membership (`addInstances`, `removeInstances`,
//! `listInstances`) and named ports (`setNamedPorts`, fingerprint-checked when one is sent).

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::errors::ApiError;
use crate::json::{Obj, as_obj, enum_field, opt_array, opt_str};
use crate::kinds::{Key, Kind, LINK_BASE, Scope, valid_name};
use crate::mutation::{CustomVerb, check_fingerprint};
use crate::resources::Cx;
use crate::store::{Entry, Members, Store};

/// `network` and `subnetwork` may be given at insert (the discovery document calls them
/// output only, yet Terraform sends `network`: "If this is different from the network where
/// the instances are in, the creation fails"); without them the group takes those of the first
/// instance added ("Defaults to the network where the instances are in").
pub(super) fn normalize(cx: &Cx, obj: &mut Obj) -> Result<Vec<Key>, ApiError> {
    opt_str(obj, "description", "resource.description")?;
    let network = cx.network_refs(obj, None)?;
    named_ports(obj, "resource.namedPorts")?;
    Ok(network.into_iter().collect())
}

/// Instances of a group share its network (and subnetwork, when the group has one): the
/// first instance added to a group without a network gives it its own.
fn same_network(entry: &mut Entry, ik: &Key, instance: &Entry) -> Result<(), ApiError> {
    let (net, sub) = super::instance::nic0_links(&instance.obj);
    match entry.obj.get("network").and_then(Value::as_str) {
        None => {
            if let Some(net) = net {
                entry.obj.insert("network".into(), net.into());
                if let Some(sub) = sub {
                    entry.obj.insert("subnetwork".into(), sub.into());
                }
                // The instance references its network; the group now does too.
                let network = instance.refs.iter().filter(|k| k.kind == Kind::Network);
                entry.refs.extend(network.cloned());
            }
        }
        // The shape of the real `wrongSubnetwork` error (below); the reason for the network is
        // assumed by analogy.
        Some(want) if Some(want) != net => {
            return Err(elsewhere(
                "wrongNetwork",
                "network",
                ik,
                want,
                net.unwrap_or_default(),
            ));
        }
        Some(_) => {}
    }
    if let (Some(want), Some(sub)) = (entry.obj.get("subnetwork").and_then(Value::as_str), sub)
        && want != sub
    {
        // kubernetes/ingress-gce#282: "Resource 'projects/…/instances/…' is expected to be in
        // the subnetwork 'projects/…/subnetworks/…' but is in the subnetwork '…'., wrongSubnetwork"
        return Err(elsewhere("wrongSubnetwork", "subnetwork", ik, want, sub));
    }
    Ok(())
}

/// An instance on another network or subnetwork (`what`) than its group's, both given as
/// (canonical) links and named by their paths.
fn elsewhere(reason: &str, what: &str, instance: &Key, want: &str, got: &str) -> ApiError {
    let path = |link: &str| link.strip_prefix(LINK_BASE).unwrap_or(link).to_string();
    ApiError::new(
        400,
        reason,
        format!(
            "Resource '{}' is expected to be in the {what} '{}' but is in the {what} '{}'.",
            instance.path(),
            path(want),
            path(got)
        ),
    )
}

/// Validates `namedPorts[]`; an empty list is omitted, as the real API does.
fn named_ports(obj: &mut Obj, field: &str) -> Result<(), ApiError> {
    let ports = opt_array(obj, "namedPorts", field)?;
    for (i, p) in ports.iter().enumerate() {
        let f = format!("{field}[{i}]");
        let p = as_obj(p, &f)?;
        let name = opt_str(p, "name", &format!("{f}.name"))?.unwrap_or_default();
        if !valid_name(name) {
            return Err(ApiError::invalid_name(&format!("{f}.name"), name));
        }
        let port = crate::json::opt_i64(p, "port", &format!("{f}.port"))?.unwrap_or(0);
        if !(1..=65535).contains(&port) {
            return Err(ApiError::invalid_field(
                &format!("{f}.port"),
                &port.to_string(),
                "Must be between 1 and 65535.",
            ));
        }
    }
    if ports.is_empty() {
        obj.shift_remove("namedPorts");
    }
    Ok(())
}

pub(super) fn custom(cx: &Cx, verb: CustomVerb, entry: &mut Entry, body: &Obj) -> Result<(), ApiError> {
    let group = cx.key;
    if verb == CustomVerb::SetNamedPorts {
        check_fingerprint(&entry.obj, body, "fingerprint", false)?;
        let mut ports = Obj::new();
        if let Some(v) = body.get("namedPorts") {
            ports.insert("namedPorts".into(), v.clone());
        }
        named_ports(&mut ports, "namedPorts")?;
        match ports.remove("namedPorts") {
            Some(v) => entry.obj.insert("namedPorts".into(), v),
            None => entry.obj.shift_remove("namedPorts"),
        };
        return Ok(());
    }
    let Members::Instances(members) = &entry.members else {
        return Ok(());
    };
    let mut seen = BTreeSet::new();
    let mut adds = Vec::new();
    for (i, item) in opt_array(body, "instances", "instances")?.iter().enumerate() {
        let f = format!("instances[{i}].instance");
        let s = opt_str(as_obj(item, &format!("instances[{i}]"))?, "instance", &f)?.unwrap_or_default();
        let ik = cx.parse_ref(s, &f, &[Kind::Instance])?;
        if ik.scope != group.scope {
            return Err(ApiError::invalid_field(
                &f,
                s,
                "The instance must be in the same zone as the instance group.",
            ));
        }
        let repeated = !seen.insert(ik.name.clone());
        let is_member = members.contains(&ik.name) || repeated;
        match verb {
            CustomVerb::AddInstances => {
                let instance = cx.lookup(&ik)?;
                adds.push((ik.clone(), instance));
                if is_member {
                    return Err(ApiError::new(
                        400,
                        "memberAlreadyExists",
                        format!(
                            "The resource '{}' is already a member of '{}'",
                            ik.path(),
                            group.path()
                        ),
                    ));
                }
            }
            _ => {
                if !members.contains(&ik.name) {
                    return Err(ApiError::new(
                        400,
                        "memberNotFound",
                        format!(
                            "The resource '{}' is not a member of '{}'",
                            ik.path(),
                            group.path()
                        ),
                    ));
                }
            }
        }
    }
    for (ik, instance) in adds {
        same_network(entry, &ik, instance)?;
    }
    if let Members::Instances(members) = &mut entry.members {
        match verb {
            CustomVerb::AddInstances => members.extend(seen),
            _ => members.retain(|m| !seen.contains(m)),
        }
    }
    Ok(())
}

/// `POST .../instanceGroups/{name}/listInstances`: the members, in name order.
pub(crate) fn list_instances(store: &Store, key: &Key, body: &Obj) -> Result<Vec<(String, Obj)>, ApiError> {
    let mut body = body.clone();
    enum_field(
        &mut body,
        "instanceState",
        "instanceState",
        &["ALL", "RUNNING"],
        Some("ALL"),
    )?;
    let entry = store.get(key).ok_or_else(|| ApiError::not_found(&key.path()))?;
    let Members::Instances(members) = &entry.members else {
        return Ok(Vec::new());
    };
    let named_ports = entry.obj.get("namedPorts").cloned();
    let zone = match &key.scope {
        Scope::Zone(z) => z.clone(),
        _ => String::new(),
    };
    Ok(members
        .iter()
        .map(|name| {
            let ik = Key {
                project: key.project.clone(),
                scope: Scope::Zone(zone.clone()),
                kind: Kind::Instance,
                name: name.clone(),
            };
            let status = store
                .get(&ik)
                .and_then(|e| e.obj.get("status").cloned())
                .unwrap_or_else(|| json!("RUNNING"));
            let mut item = Obj::new();
            item.insert("instance".into(), Value::String(ik.link()));
            item.insert("status".into(), status);
            if let Some(np) = &named_ports {
                item.insert("namedPorts".into(), np.clone());
            }
            (name.clone(), item)
        })
        .collect())
}
