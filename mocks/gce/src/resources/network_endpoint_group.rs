//! Network endpoint groups: insert, and for zonal NEGs `attachNetworkEndpoints`,
//! `detachNetworkEndpoints`, `listNetworkEndpoints`.
//!
//! The rules, with their sources (Compute API reference, `NetworkEndpoint` and
//! `NetworkEndpointGroup`; "Zonal network endpoint groups overview",
//! <https://cloud.google.com/load-balancing/docs/negs/zonal-neg-concepts>; recorded traffic):
//!
//! - **`defaultPort`** must not be given for a NEG of type `GCE_VM_IP`, `SERVERLESS` or
//!   `PRIVATE_SERVICE_CONNECT` (`NetworkEndpointGroup.defaultPort`: "If the network endpoint
//!   type is either GCE_VM_IP, SERVERLESS or PRIVATE_SERVICE_CONNECT, this field must not be
//!   specified"); 400 `invalid`, the fake's words.
//! - **At most 500 endpoints per call**: Terraform's `google_compute_network_endpoints` sends
//!   them in chunks of 500 ("API only accepts 500 endpoints at a time",
//!   `resource_compute_network_endpoints.go`), ingress-gce in batches of
//!   `MAX_NETWORK_ENDPOINTS_PER_BATCH = 500` (`pkg/neg/syncers/utils.go`). Google's words for
//!   a larger call are not public: 400 `invalid`, the fake's.
//! - **At most 10,000 endpoints per NEG** ("Network endpoint groups overview": "You can have up
//!   to 10,000 endpoints in a NEG. All 10,000 endpoints can be on the same VM"; the Cloud Load
//!   Balancing quotas page); an attach that would exceed it is 400 `invalid`, the fake's words.
//! - **`GCE_VM_IP_PORT` and `GCE_VM_IP` endpoints name their `instance`** (by name or URL;
//!   `NetworkEndpoint.instance`: "This field is required for network endpoints of type
//!   GCE_VM_IP and GCE_VM_IP_PORT. The instance must be in the same zone of network endpoint
//!   group"): missing, 400 `invalid`; in another zone, 400 `invalid`; not existing, 404
//!   `notFound`.
//! - **The IP must be the instance's**: `ipAddress` defaults to the instance's primary IP, and
//!   a given one must be that IP or within one of the alias IP ranges of its interface
//!   (`NetworkEndpoint.ipAddress`: "The IP address must belong to a VM in Compute Engine
//!   (either the primary IP or as part of an aliased IP range)"; `instance`: "If the ipAddress
//!   is specified, it must belongs to the VM instance"); the instance's interface must be on
//!   the NEG's network (and subnetwork, when both name one: "Every endpoint IP address must be
//!   in the same subnet as the NEG", NEG overview). Otherwise 400 `invalid` in Compute's words,
//!   as recorded by a GKE cluster without alias IPs (kubernetes/ingress-gce#1463): `Invalid
//!   value for field 'resource.ipAddress': '10.0.0.13'. Specified IP address 10.0.0.13 doesn't
//!   belong to the (sub)network default or to the instance gke-….` — the (sub)network named by
//!   the NEG's subnetwork, else its network. A `GCE_VM_IP` endpoint is the primary IP itself
//!   (zonal NEG overview: "the primary internal IPv4 address of a VM's network interface").
//! - **One endpoint per IP address in a NEG** (zonal NEG overview: "A single IP address cannot
//!   be referenced by more than one endpoint in a NEG. However, a single IP address can be
//!   referenced by endpoints in different NEGs"): attaching an endpoint at an IP another
//!   endpoint of the NEG has (another port or instance) is 400 `invalid`, the fake's words.
//! - **`port`** defaults to the NEG's `defaultPort` (`NetworkEndpoint.port`: "If not specified,
//!   the defaultPort for the network endpoint group will be used"); neither given is 400
//!   `invalid` (gcloud's `--default-port`: without it "every network endpoint in the network
//!   endpoint group must have a port specified"); a `GCE_VM_IP` endpoint takes no port ("This
//!   field can not be set for network endpoints of type GCE_VM_IP"). Ports are 1–65535.
//! - **`NON_GCP_PRIVATE_IP_PORT`** (hybrid) endpoints are an `ipAddress` and a port, no
//!   instance ("Hybrid connectivity NEGs use endpoints with just IP and PORT (without an
//!   instance)", GoogleCloudPlatform/magic-modules#5684): the IP is required, an instance is
//!   refused (an inference: Google's behaviour and words are not public). Endpoints of the
//!   other types are not modelled: attaching them is refused, saying so.
//! - **Attaching an endpoint that is attached already, or detaching one that is not**, changes
//!   nothing and is not an error. Google does not document it; Google's own mock of Compute in
//!   Config Connector (`mockgcp/mockcompute/networkendpointgroupsv1.go`) treats both as no-ops,
//!   ingress-gce's (`pkg/neg/types/fakes.go`) the attach but answers 404 for an unknown detach,
//!   and clients keep clear of both: ingress-gce and Terraform attach and detach only the
//!   difference from `listNetworkEndpoints`. A client should not rely on either answer.

use std::collections::HashMap;
use std::net::IpAddr;

use serde_json::{Value, json};

use crate::dataplane::HealthTable;
use crate::errors::ApiError;
use crate::json::{Obj, as_obj, enum_field, int_in_range, opt_array, opt_i64, opt_str};
use crate::kinds::{Key, Kind, LINK_BASE, Scope};
use crate::mutation::CustomVerb;
use crate::resources::Cx;
use crate::store::{Endpoint, Entry, Members, Store};

/// Endpoints per attach/detach call.
const MAX_PER_CALL: usize = 500;
/// Endpoints per NEG.
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

/// The types whose NEGs take no `defaultPort`.
const NO_DEFAULT_PORT: &[&str] = &["GCE_VM_IP", "SERVERLESS", "PRIVATE_SERVICE_CONNECT"];

pub(super) fn normalize(cx: &Cx, obj: &mut Obj) -> Result<Vec<Key>, ApiError> {
    opt_str(obj, "description", "resource.description")?;
    let ty = enum_field(
        obj,
        "networkEndpointType",
        "resource.networkEndpointType",
        TYPES,
        Some("GCE_VM_IP_PORT"),
    )?
    .unwrap_or_default();
    // "Uses default project network if unspecified" (discovery document,
    // NetworkEndpointGroup.network); it must exist.
    let network = cx.network_refs(obj, Some("global/networks/default"))?;
    let port = int_in_range(obj, "defaultPort", "resource.defaultPort", None, 1, 65535)?;
    if let Some(port) = port
        && NO_DEFAULT_PORT.contains(&ty.as_str())
    {
        return Err(ApiError::invalid_field(
            "resource.defaultPort",
            &port.to_string(),
            &format!("A default port cannot be specified for network endpoint groups of type {ty}."),
        ));
    }
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
    let mut parsed = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let f = format!("networkEndpoints[{i}]");
        parsed.push(endpoint(cx, &entry.obj, as_obj(item, &f)?, &f)?);
    }
    let Members::Endpoints(set) = &mut entry.members else {
        return Ok(());
    };
    match verb {
        CustomVerb::AttachNetworkEndpoints => {
            // The endpoint at each IP.
            let mut by_ip: HashMap<String, Endpoint> =
                set.iter().map(|e| (e.ip.clone(), e.clone())).collect();
            for ep in parsed {
                match by_ip.get(&ep.ip) {
                    Some(other) if *other == ep => continue,
                    Some(other) => {
                        return Err(ApiError::invalid_field(
                            "resource.ipAddress",
                            &ep.ip,
                            &format!(
                                "The IP address {} is already used by another network endpoint of the group (instance '{}', port {}).",
                                ep.ip, other.instance, other.port
                            ),
                        ));
                    }
                    None => {}
                }
                by_ip.insert(ep.ip.clone(), ep.clone());
                set.insert(ep);
            }
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

/// One endpoint of the NEG `neg` (its stored JSON), checked as Compute does (module docs).
fn endpoint(cx: &Cx, neg: &Obj, ep: &Obj, f: &str) -> Result<Endpoint, ApiError> {
    let Scope::Zone(zone) = &cx.key.scope else {
        return Err(ApiError::invalid(
            "Only zonal network endpoint groups hold endpoints.",
        ));
    };
    let ty = neg
        .get("networkEndpointType")
        .and_then(Value::as_str)
        .unwrap_or("GCE_VM_IP_PORT");
    let ifield = format!("{f}.instance");
    let ipfield = format!("{f}.ipAddress");
    let pfield = format!("{f}.port");
    let instance = opt_str(ep, "instance", &ifield)?.filter(|s| !s.is_empty());
    let ip = match opt_str(ep, "ipAddress", &ipfield)?.filter(|s| !s.is_empty()) {
        Some(ip) => Some(
            ip.parse::<IpAddr>()
                .map_err(|_| ApiError::invalid_field(&ipfield, ip, "Invalid IP address specified."))?,
        ),
        None => None,
    };
    let port = opt_i64(ep, "port", &pfield)?;
    let port = match (ty, port) {
        ("GCE_VM_IP", Some(p)) => {
            return Err(ApiError::invalid_field(
                &pfield,
                &p.to_string(),
                "A port cannot be specified for a network endpoint of type GCE_VM_IP.",
            ));
        }
        ("GCE_VM_IP", None) => 0,
        (_, p) => {
            let p = p
                .or_else(|| neg.get("defaultPort").and_then(Value::as_i64))
                .ok_or_else(|| {
                    ApiError::invalid_field(
                        &pfield,
                        "",
                        "A port must be specified when the group has no default port.",
                    )
                })?;
            match u32::try_from(p) {
                Ok(p @ 1..=65535) => p,
                _ if p < 1 => {
                    return Err(ApiError::invalid_field(
                        &pfield,
                        &p.to_string(),
                        "Must be greater than or equal to 1.",
                    ));
                }
                _ => {
                    return Err(ApiError::invalid_field(
                        &pfield,
                        &p.to_string(),
                        "Must be less than or equal to 65535.",
                    ));
                }
            }
        }
    };
    match ty {
        "GCE_VM_IP_PORT" | "GCE_VM_IP" => {}
        "NON_GCP_PRIVATE_IP_PORT" => {
            if let Some(i) = instance {
                return Err(ApiError::invalid_field(
                    &ifield,
                    i,
                    "An instance cannot be specified for a network endpoint of type NON_GCP_PRIVATE_IP_PORT.",
                ));
            }
            let ip = ip.ok_or_else(|| {
                ApiError::invalid_field(
                    &ipfield,
                    "",
                    "An IP address must be specified for a network endpoint of type NON_GCP_PRIVATE_IP_PORT.",
                )
            })?;
            return Ok(Endpoint {
                instance: String::new(),
                ip: ip.to_string(),
                port,
            });
        }
        other => {
            return Err(ApiError::invalid(format!(
                "Network endpoints of network endpoint groups of type {other} are not modelled by this fake."
            )));
        }
    }
    let instance = instance.ok_or_else(|| {
        ApiError::invalid_field(
            &ifield,
            "",
            &format!("An instance must be specified for a network endpoint of type {ty}."),
        )
    })?;
    let ik = if instance.contains('/') {
        cx.parse_ref(instance, &ifield, &[Kind::Instance])?
    } else {
        cx.key.sibling(Kind::Instance, instance)
    };
    if ik.scope != cx.key.scope {
        return Err(ApiError::invalid_field(
            &ifield,
            instance,
            &format!("The instance must be in the same zone ({zone}) as the network endpoint group."),
        ));
    }
    let ientry = cx.lookup(&ik)?;
    let primary = super::instance::primary_ip(&ientry.obj);
    let ip = match ip {
        Some(ip) => ip,
        None => primary
            .parse::<IpAddr>()
            .map_err(|_| ApiError::invalid_field(&ipfield, &primary, "Invalid IP address specified."))?,
    };
    let owned = if ty == "GCE_VM_IP" {
        primary.parse::<IpAddr>().ok() == Some(ip)
    } else {
        super::instance::owns_ip(&ientry.obj, ip)
    };
    if !owned || !same_network(neg, &ientry.obj) {
        // kubernetes/ingress-gce#1463: "Invalid value for field 'resource.ipAddress':
        // '10.0.0.13'. Specified IP address 10.0.0.13 doesn't belong to the (sub)network default
        // or to the instance gke-….", invalid
        let net = ["subnetwork", "network"]
            .iter()
            .find_map(|f| neg.get(*f).and_then(Value::as_str))
            .and_then(|l| l.rsplit('/').next())
            .unwrap_or_default();
        return Err(ApiError::invalid_field(
            "resource.ipAddress",
            &ip.to_string(),
            &format!(
                "Specified IP address {ip} doesn't belong to the (sub)network {net} or to the instance {}.",
                ik.name
            ),
        ));
    }
    Ok(Endpoint {
        instance: ik.name,
        ip: ip.to_string(),
        port,
    })
}

/// Whether the instance's primary interface is on the NEG's network, and on its subnetwork
/// when both name one.
fn same_network(neg: &Obj, instance: &Obj) -> bool {
    let (net, sub) = super::instance::nic0_links(instance);
    let want = |f: &str| neg.get(f).and_then(Value::as_str);
    let canon = |l: &str| l.strip_prefix(LINK_BASE).unwrap_or(l).to_string();
    let net_ok = match (want("network"), net) {
        (Some(w), Some(n)) => canon(w) == canon(n),
        _ => true,
    };
    let sub_ok = match (want("subnetwork"), sub) {
        (Some(w), Some(s)) => canon(w) == canon(s),
        _ => true,
    };
    net_ok && sub_ok
}

/// `POST .../networkEndpointGroups/{name}/listNetworkEndpoints`: the endpoints, as
/// `NetworkEndpointWithHealthStatus` (API reference): `{networkEndpoint: {instance, ipAddress,
/// port}}`, the instance by name (ingress-gce's readiness poller, `pkg/neg/readiness/poller.go`,
/// takes `networkEndpoint.instance` for the node name). With `healthStatus: SHOW` each item
/// also has `healths`, one `HealthStatusForNetworkEndpoint` per backend service using the NEG:
/// `{backendService: {backendService: link}, healthCheck: {healthCheck: link}, healthState}`,
/// the state being the one `getHealth` reports for that endpoint
/// ([`super::member_health`]: probed with the data plane on); no `healths` with `SKIP` (the
/// default) or when no backend service uses the NEG. ingress-gce's poller reads exactly
/// `healths[].backendService.backendService` (a full URL it parses) and `healthState`.
pub(crate) fn list_endpoints(
    store: &Store,
    key: &Key,
    body: &Obj,
    probed: Option<&HealthTable>,
) -> Result<Vec<(String, Obj)>, ApiError> {
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
    // The backend services using the NEG, each with its health check.
    let services: Vec<(&Key, Option<&str>)> = if show.as_deref() == Some("SHOW") {
        store
            .referrers(key)
            .filter(|k| k.kind == Kind::BackendService)
            .map(|k| {
                let hc = store
                    .get(k)
                    .and_then(|e| e.obj.get("healthChecks"))
                    .and_then(Value::as_array)
                    .and_then(|a| a.first())
                    .and_then(Value::as_str);
                (k, hc)
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(set
        .iter()
        .enumerate()
        .map(|(i, ep)| {
            let mut item = Obj::new();
            item.insert("networkEndpoint".into(), Value::Object(endpoint_json(ep)));
            if !services.is_empty() {
                let ik = key.sibling(Kind::Instance, &ep.instance);
                let healths: Vec<Value> = services
                    .iter()
                    .map(|(bs, hc)| {
                        let state =
                            super::member_health(store, probed, bs, key, &ik, &ep.ip, i64::from(ep.port));
                        let mut h = json!({"backendService": {"backendService": bs.link()}});
                        if let Some(hc) = hc {
                            h["healthCheck"] = json!({ "healthCheck": hc });
                        }
                        h["healthState"] = state.into();
                        h
                    })
                    .collect();
                item.insert("healths".into(), Value::Array(healths));
            }
            (format!("{i:08}"), item)
        })
        .collect())
}

/// `NetworkEndpoint` as reads show it: no `instance` for a hybrid endpoint, no `port` for a
/// `GCE_VM_IP` one.
fn endpoint_json(ep: &Endpoint) -> Obj {
    let mut o = Obj::new();
    if !ep.instance.is_empty() {
        o.insert("instance".into(), ep.instance.clone().into());
    }
    o.insert("ipAddress".into(), ep.ip.clone().into());
    if ep.port != 0 {
        o.insert("port".into(), ep.port.into());
    }
    o
}
