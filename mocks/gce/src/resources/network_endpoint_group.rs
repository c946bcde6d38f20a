//! Zonal network endpoint groups: `attachNetworkEndpoints`, `detachNetworkEndpoints`,
//! `listNetworkEndpoints`. Attaching an endpoint that is already attached, or detaching one that
//! is not, is accepted and changes nothing.

use std::net::IpAddr;

use serde_json::{Value, json};

use crate::errors::ApiError;
use crate::json::{Obj, as_obj, enum_field, int_in_range, opt_array, opt_i64, opt_str};
use crate::kinds::{Key, Kind, Scope};
use crate::mutation::CustomVerb;
use crate::resources::Cx;
use crate::store::{Endpoint, Entry, Members, Store};

/// Endpoints per attach/detach call.
const MAX_PER_CALL: usize = 500;
/// Endpoints per GCE_VM_IP_PORT NEG.
const MAX_PER_GROUP: usize = 10_000;

const TYPES: &[&str] = &[
    "GCE_VM_IP_PORT",
    "GCE_VM_IP",
    "NON_GCP_PRIVATE_IP_PORT",
    "INTERNET_IP_PORT",
    "INTERNET_FQDN_PORT",
    "SERVERLESS",
    "PRIVATE_SERVICE_CONNECT",
];

pub(super) fn normalize(cx: &Cx, obj: &mut Obj) -> Result<Vec<Key>, ApiError> {
    opt_str(obj, "description", "resource.description")?;
    enum_field(
        obj,
        "networkEndpointType",
        "resource.networkEndpointType",
        TYPES,
        Some("GCE_VM_IP_PORT"),
    )?;
    // "Uses default project network if unspecified" (discovery document,
    // NetworkEndpointGroup.network); it must exist.
    let network = cx.network_refs(obj, Some("global/networks/default"))?;
    int_in_range(obj, "defaultPort", "resource.defaultPort", None, 1, 65535)?;
    Ok(network.into_iter().collect())
}

pub(super) fn custom(cx: &Cx, verb: CustomVerb, entry: &mut Entry, body: &Obj) -> Result<(), ApiError> {
    let items = opt_array(body, "networkEndpoints", "networkEndpoints")?;
    if items.len() > MAX_PER_CALL {
        return Err(ApiError::invalid_field(
            "networkEndpoints",
            &items.len().to_string(),
            &format!("At most {MAX_PER_CALL} network endpoints can be changed in one call."),
        ));
    }
    let default_port = entry.obj.get("defaultPort").and_then(Value::as_i64);
    let mut parsed = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let f = format!("networkEndpoints[{i}]");
        parsed.push(endpoint(cx, as_obj(item, &f)?, &f, default_port)?);
    }
    let Members::Endpoints(set) = &mut entry.members else {
        return Ok(());
    };
    match verb {
        CustomVerb::AttachNetworkEndpoints => {
            set.extend(parsed);
            if set.len() > MAX_PER_GROUP {
                return Err(ApiError::invalid_field(
                    "networkEndpoints",
                    &set.len().to_string(),
                    &format!("A network endpoint group can hold at most {MAX_PER_GROUP} endpoints."),
                ));
            }
        }
        _ => {
            for ep in &parsed {
                set.remove(ep);
            }
        }
    }
    Ok(())
}

/// One endpoint: the instance must exist in the group's zone; IP and port default to the
/// instance's primary IP and the group's default port.
fn endpoint(cx: &Cx, ep: &Obj, f: &str, default_port: Option<i64>) -> Result<Endpoint, ApiError> {
    let Scope::Zone(zone) = &cx.key.scope else {
        return Err(ApiError::invalid(
            "Only zonal network endpoint groups hold endpoints.",
        ));
    };
    let ifield = format!("{f}.instance");
    let instance = opt_str(ep, "instance", &ifield)?
        .ok_or_else(|| ApiError::invalid_field(&ifield, "", "An instance must be specified."))?;
    let ik = if instance.contains('/') {
        cx.parse_ref(instance, &ifield, &[Kind::Instance])?
    } else {
        Key {
            project: cx.key.project.clone(),
            scope: Scope::Zone(zone.clone()),
            kind: Kind::Instance,
            name: instance.to_string(),
        }
    };
    if ik.scope != cx.key.scope {
        return Err(ApiError::invalid_field(
            &ifield,
            instance,
            "The instance must be in the same zone as the network endpoint group.",
        ));
    }
    let ientry = cx.lookup(&ik)?;
    let ip = match opt_str(ep, "ipAddress", &format!("{f}.ipAddress"))? {
        Some(ip) if ip.parse::<IpAddr>().is_err() => {
            return Err(ApiError::invalid_field(
                &format!("{f}.ipAddress"),
                ip,
                "Invalid IP address specified.",
            ));
        }
        Some(ip) => ip.to_string(),
        None => super::instance::primary_ip(&ientry.obj),
    };
    let port = opt_i64(ep, "port", &format!("{f}.port"))?
        .or(default_port)
        .ok_or_else(|| {
            ApiError::invalid_field(
                &format!("{f}.port"),
                "",
                "A port must be specified when the group has no default port.",
            )
        })?;
    let port = u32::try_from(port)
        .ok()
        .filter(|p| (1..=65535).contains(p))
        .ok_or_else(|| {
            ApiError::invalid_field(
                &format!("{f}.port"),
                &port.to_string(),
                "Must be between 1 and 65535.",
            )
        })?;
    Ok(Endpoint {
        instance: ik.name,
        ip,
        port,
    })
}

/// `POST .../networkEndpointGroups/{name}/listNetworkEndpoints`.
pub(crate) fn list_endpoints(store: &Store, key: &Key, body: &Obj) -> Result<Vec<(String, Obj)>, ApiError> {
    let mut body = body.clone();
    let show = enum_field(
        &mut body,
        "healthStatus",
        "healthStatus",
        &["SHOW", "SKIP"],
        Some("SKIP"),
    )?;
    let entry = store.get(key).ok_or_else(|| ApiError::not_found(&key.path()))?;
    let Members::Endpoints(set) = &entry.members else {
        return Ok(Vec::new());
    };
    let services: Vec<&Key> = store
        .referrers(key)
        .filter(|k| k.kind == Kind::BackendService)
        .collect();
    Ok(set
        .iter()
        .enumerate()
        .map(|(i, ep)| {
            let mut item = Obj::new();
            item.insert(
                "networkEndpoint".into(),
                json!({"instance": ep.instance, "ipAddress": ep.ip, "port": ep.port}),
            );
            if show.as_deref() == Some("SHOW") {
                let ik = Key {
                    project: key.project.clone(),
                    scope: key.scope.clone(),
                    kind: Kind::Instance,
                    name: ep.instance.clone(),
                };
                let state = if store.unhealthy.contains(&ik) {
                    "UNHEALTHY"
                } else {
                    "HEALTHY"
                };
                let healths: Vec<Value> = services
                    .iter()
                    .map(|bs| json!({"backendService": {"backendService": bs.link()}, "healthState": state}))
                    .collect();
                item.insert("healths".into(), Value::Array(healths));
            }
            (format!("{i:08}"), item)
        })
        .collect())
}
