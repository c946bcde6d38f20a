//! Backend services (global and regional), and `getHealth`.

use serde_json::{Value, json};

use crate::dataplane::HealthTable;
use crate::errors::ApiError;
use crate::json::{
    Obj, as_obj, as_str, default_value, enum_field, int_in_range, opt_array, opt_f64, opt_obj, opt_str,
};
use crate::kinds::{Key, Kind, Scope};
use crate::resources::Cx;
use crate::store::{Members, Store};

const PROTOCOLS: &[&str] = &[
    "HTTP",
    "HTTPS",
    "HTTP2",
    "TCP",
    "SSL",
    "UDP",
    "GRPC",
    "UNSPECIFIED",
];
const SCHEMES: &[&str] = &[
    "EXTERNAL",
    "EXTERNAL_MANAGED",
    "INTERNAL",
    "INTERNAL_MANAGED",
    "INTERNAL_SELF_MANAGED",
];
const AFFINITIES: &[&str] = &[
    "NONE",
    "CLIENT_IP",
    "CLIENT_IP_PROTO",
    "CLIENT_IP_PORT_PROTO",
    "GENERATED_COOKIE",
    "HEADER_FIELD",
    "HTTP_COOKIE",
    "CLIENT_IP_NO_DESTINATION",
    "STRONG_COOKIE_AFFINITY",
];
const BALANCING_MODES: &[&str] = &["UTILIZATION", "RATE", "CONNECTION", "CUSTOM_METRICS"];

pub(super) fn normalize(cx: &Cx, obj: &mut Obj, old: Option<&Obj>) -> Result<Vec<Key>, ApiError> {
    default_value(obj, "description", "".into());
    opt_str(obj, "description", "resource.description")?;
    enum_field(obj, "protocol", "resource.protocol", PROTOCOLS, Some("HTTP"))?;
    let scheme = enum_field(
        obj,
        "loadBalancingScheme",
        "resource.loadBalancingScheme",
        SCHEMES,
        Some("EXTERNAL"),
    )?;
    if let Some(old_scheme) = old
        .and_then(|o| o.get("loadBalancingScheme"))
        .and_then(Value::as_str)
        && scheme.as_deref() != Some(old_scheme)
    {
        return Err(ApiError::invalid_field(
            "resource.loadBalancingScheme",
            scheme.as_deref().unwrap_or_default(),
            "The load balancing scheme of a backend service cannot be changed.",
        ));
    }
    int_in_range(obj, "port", "resource.port", Some(80), 1, 65535)?;
    default_value(obj, "portName", "http".into());
    opt_str(obj, "portName", "resource.portName")?;
    int_in_range(obj, "timeoutSec", "resource.timeoutSec", Some(30), 1, 86_400)?;
    enum_field(
        obj,
        "sessionAffinity",
        "resource.sessionAffinity",
        AFFINITIES,
        Some("NONE"),
    )?;
    int_in_range(
        obj,
        "affinityCookieTtlSec",
        "resource.affinityCookieTtlSec",
        Some(0),
        0,
        1_209_600,
    )?;
    let mut draining = opt_obj(obj, "connectionDraining", "resource.connectionDraining")?
        .cloned()
        .unwrap_or_default();
    int_in_range(
        &mut draining,
        "drainingTimeoutSec",
        "resource.connectionDraining.drainingTimeoutSec",
        Some(0),
        0,
        3600,
    )?;
    obj.insert("connectionDraining".into(), Value::Object(draining));
    default_value(obj, "enableCDN", false.into());
    if let Some(log) = opt_obj(obj, "logConfig", "resource.logConfig")?
        && let Some(rate) = opt_f64(log, "sampleRate", "resource.logConfig.sampleRate")?
        && !(0.0..=1.0).contains(&rate)
    {
        return Err(ApiError::invalid_field(
            "resource.logConfig.sampleRate",
            &rate.to_string(),
            "Must be between 0 and 1.",
        ));
    }

    let mut refs = cx.ref_list(
        obj,
        "healthChecks",
        "resource.healthChecks",
        &[Kind::HealthCheck, Kind::HttpHealthCheck],
    )?;
    if refs.len() > 1 {
        return Err(ApiError::invalid_field(
            "resource.healthChecks",
            &refs.len().to_string(),
            "At most one health check can be specified.",
        ));
    }
    let groups = backends(cx, obj)?;
    if !groups.is_empty() && refs.is_empty() {
        return Err(ApiError::invalid_field(
            "resource.healthChecks",
            "",
            "A health check must be specified for a backend service with backends.",
        ));
    }
    refs.extend(groups);
    Ok(refs)
}

/// Validates `backends[]`, fills their defaults and returns the groups they reference.
fn backends(cx: &Cx, obj: &mut Obj) -> Result<Vec<Key>, ApiError> {
    let items = opt_array(obj, "backends", "resource.backends")?.to_vec();
    if items.len() > cx.limits.max_backends {
        return Err(ApiError::invalid_field(
            "resource.backends",
            &items.len().to_string(),
            &format!(
                "A backend service can have at most {} backends.",
                cx.limits.max_backends
            ),
        ));
    }
    let mut groups: Vec<Key> = Vec::with_capacity(items.len());
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let field = format!("resource.backends[{i}]");
        let mut b = as_obj(item, &field)?.clone();
        let gfield = format!("{field}.group");
        let group = match b.get("group") {
            Some(v) => as_str(v, &gfield)?.to_string(),
            None => {
                return Err(ApiError::invalid_field(
                    &gfield,
                    "",
                    "A backend group must be specified.",
                ));
            }
        };
        // The field's documentation asks for a fully-qualified URL, but Compute takes partial
        // paths here too (Terraform's acceptance tests send a NEG's `id`,
        // `projects/p/zones/z/networkEndpointGroups/n`) and answers with the full URL.
        let key = cx.parse_ref(
            &group,
            &gfield,
            &[Kind::InstanceGroup, Kind::NetworkEndpointGroup],
        )?;
        if groups.contains(&key) {
            return Err(ApiError::invalid_field(
                &gfield,
                &group,
                "Duplicate backend group in the backend service.",
            ));
        }
        b.insert("group".into(), key.link().into());
        let neg = key.kind == Kind::NetworkEndpointGroup;
        let explicit_mode = b.get("balancingMode").is_some_and(|v| !v.is_null());
        let mode = enum_field(
            &mut b,
            "balancingMode",
            &format!("{field}.balancingMode"),
            BALANCING_MODES,
            Some(if neg { "RATE" } else { "UTILIZATION" }),
        )?;
        if neg && mode.as_deref() == Some("UTILIZATION") {
            return Err(ApiError::invalid_field(
                &format!("{field}.balancingMode"),
                "UTILIZATION",
                "Balancing mode UTILIZATION is not supported for network endpoint groups.",
            ));
        }
        if explicit_mode && mode.as_deref() == Some("RATE") {
            let has_rate = ["maxRate", "maxRatePerInstance", "maxRatePerEndpoint"]
                .iter()
                .any(|f| b.get(*f).is_some_and(|v| !v.is_null()));
            if !has_rate {
                return Err(ApiError::invalid_field(
                    &field,
                    "RATE",
                    "One of maxRate, maxRatePerInstance or maxRatePerEndpoint must be set with balancing mode RATE.",
                ));
            }
        }
        let scaler = match opt_f64(&b, "capacityScaler", &format!("{field}.capacityScaler"))? {
            Some(s) => s,
            None => {
                b.insert("capacityScaler".into(), json!(1));
                1.0
            }
        };
        if !(scaler == 0.0 || (0.1..=1.0).contains(&scaler)) {
            return Err(ApiError::invalid_field(
                &format!("{field}.capacityScaler"),
                &scaler.to_string(),
                "Must be 0 or between 0.1 and 1.",
            ));
        }
        if let Some(u) = opt_f64(&b, "maxUtilization", &format!("{field}.maxUtilization"))?
            && !(0.0..=1.0).contains(&u)
        {
            return Err(ApiError::invalid_field(
                &format!("{field}.maxUtilization"),
                &u.to_string(),
                "Must be between 0 and 1.",
            ));
        }
        groups.push(key);
        out.push(Value::Object(b));
    }
    one_kind_of_backend(cx, &groups)?;
    if out.is_empty() {
        obj.shift_remove("backends");
    } else {
        obj.insert("backends".into(), Value::Array(out));
    }
    Ok(groups)
}

/// What a backend group is, for the rule that a backend service's backends are of one kind:
/// `(kind, description)`, `None` for a NEG that does not exist (its reference gives the 404).
fn backend_kind(cx: &Cx, group: &Key) -> Option<(&'static str, String)> {
    if group.kind == Kind::InstanceGroup {
        return Some(("instance groups", "an instance group".to_string()));
    }
    let entry = cx.store.get(group)?;
    let ty = entry
        .obj
        .get("networkEndpointType")
        .and_then(Value::as_str)
        .unwrap_or("GCE_VM_IP_PORT");
    let kind = match ty {
        // Zonal NEGs and hybrid connectivity NEGs may be combined.
        "GCE_VM_IP_PORT" | "NON_GCP_PRIVATE_IP_PORT" => "zonal or hybrid NEGs",
        "GCE_VM_IP" => "GCE_VM_IP NEGs",
        "SERVERLESS" => "serverless NEGs",
        "PRIVATE_SERVICE_CONNECT" => "Private Service Connect NEGs",
        _ => "internet NEGs",
    };
    Some((kind, format!("a network endpoint group of type {ty}")))
}

/// A backend service's backends are all of one kind: instance groups (managed or not), or
/// `GCE_VM_IP_PORT` zonal NEGs and `NON_GCP_PRIVATE_IP_PORT` hybrid NEGs (either or both), or
/// NEGs of one other type. Sources: "Backend services overview",
/// <https://cloud.google.com/load-balancing/docs/backend-service>, table "Backend services and
/// supported backend types" (for the global external and classic Application Load Balancers,
/// "each backend service supports one of the following backend combinations": all instance
/// group backends; all zonal NEGs; all hybrid connectivity NEGs; a combination of zonal and
/// hybrid NEGs; all serverless NEGs; …), and its earlier wording ("all backends must either be
/// instance groups or network endpoint groups … you cannot associate instance groups and
/// network endpoint groups with the same backend service"); the zonal NEG overview ("When
/// used as a backend for a backend service, all other backends in backend service must be
/// zonal NEGs"). Refused synchronously, 400 `invalid` naming the first backend that differs
/// from `backends[0]`; Google's words are not public, these are the fake's.
fn one_kind_of_backend(cx: &Cx, groups: &[Key]) -> Result<(), ApiError> {
    let mut first: Option<(usize, &str, String)> = None;
    for (i, g) in groups.iter().enumerate() {
        let Some((kind, what)) = backend_kind(cx, g) else {
            continue;
        };
        match &first {
            None => first = Some((i, kind, what)),
            Some((_, k, _)) if *k == kind => {}
            Some((j, _, first_what)) => {
                return Err(ApiError::invalid_field(
                    &format!("resource.backends[{i}].group"),
                    &g.link(),
                    &format!(
                        "A backend service cannot mix backends of different types: backends[{i}] is {what}, backends[{j}] {first_what}. Its backends must all be instance groups, or all zonal (GCE_VM_IP_PORT) and hybrid (NON_GCP_PRIVATE_IP_PORT) network endpoint groups, or all network endpoint groups of one other type."
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// `POST .../backendServices/{name}/getHealth`: one entry per instance (instance group) or
/// endpoint (NEG) of the named backend group. `probed`: the data plane's probe results, when it
/// runs; an instance the admin API marked UNHEALTHY is UNHEALTHY either way.
pub(crate) fn get_health(
    store: &Store,
    key: &Key,
    body: &Obj,
    probed: Option<&HealthTable>,
) -> Result<Obj, ApiError> {
    let entry = store.get(key).ok_or_else(|| ApiError::not_found(&key.path()))?;
    let group = opt_str(body, "group", "resourceGroupReference.group")?.ok_or_else(|| {
        ApiError::invalid_field("resourceGroupReference.group", "", "A group must be specified.")
    })?;
    let gkey = crate::kinds::parse_ref(group, &key.project)
        .filter(|g| entry.refs.contains(g) && g.kind != Kind::HealthCheck && g.kind != Kind::HttpHealthCheck)
        .ok_or_else(|| {
            ApiError::invalid_field(
                "resourceGroupReference.group",
                group,
                "The group is not a backend of this backend service.",
            )
        })?;
    let gentry = store
        .get(&gkey)
        .ok_or_else(|| ApiError::not_found(&gkey.path()))?;
    let Scope::Zone(zone) = &gkey.scope else {
        return Ok(health_response(Vec::new()));
    };
    let instance = |name: &str| Key {
        project: gkey.project.clone(),
        scope: Scope::Zone(zone.clone()),
        kind: Kind::Instance,
        name: name.to_string(),
    };
    let state = |k: &Key, ip: &str, port: i64| member_health(store, probed, key, &gkey, k, ip, port);
    let mut statuses = Vec::new();
    match &gentry.members {
        Members::Instances(names) => {
            let port = serving_port(&entry.obj, &gentry.obj);
            for name in names {
                let ik = instance(name);
                let ip = store
                    .get(&ik)
                    .map(|e| super::instance::primary_ip(&e.obj))
                    .unwrap_or_default();
                statuses.push(json!({
                    "ipAddress": ip,
                    "port": port,
                    "instance": ik.link(),
                    "healthState": state(&ik, &ip, port),
                }));
            }
        }
        Members::Endpoints(endpoints) => {
            for ep in endpoints {
                let ik = instance(&ep.instance);
                let mut status = json!({"ipAddress": ep.ip, "port": ep.port});
                // A hybrid endpoint has no instance.
                if !ep.instance.is_empty() {
                    status["instance"] = ik.link().into();
                }
                status["healthState"] = state(&ik, &ep.ip, i64::from(ep.port)).into();
                statuses.push(status);
            }
        }
        Members::None => {}
    }
    Ok(health_response(statuses))
}

/// The health Compute reports for the member `instance` of the backend service `service` in
/// its backend `group`, served at `ip:port` (an instance of a group on its serving port, or a
/// NEG endpoint): `getHealth` and `listNetworkEndpoints` (`healthStatus: SHOW`) both answer
/// from here, so they agree with each other and with the traffic the data plane sends. An
/// instance, or a NEG endpoint, the admin API forced UNHEALTHY ([`forced_down`]) is UNHEALTHY;
/// otherwise, with the data plane off, HEALTHY; with it on, as probed (`probed`), UNHEALTHY
/// until the health check's `healthyThreshold` is met.
pub(crate) fn member_health(
    store: &Store,
    probed: Option<&HealthTable>,
    service: &Key,
    group: &Key,
    instance: &Key,
    ip: &str,
    port: i64,
) -> &'static str {
    let healthy = !forced_down(store, group, instance, ip, port)
        && probed.is_none_or(|t| u16::try_from(port).is_ok_and(|p| t.is_healthy(service, instance, ip, p)));
    if healthy { "HEALTHY" } else { "UNHEALTHY" }
}

/// Whether the admin API forced the member UNHEALTHY: its instance
/// ([`crate::FakeGce::set_instance_health`]), or this endpoint of the NEG `group`
/// ([`crate::FakeGce::set_endpoint_health`]). Forced UNHEALTHY wins over the probes, for
/// `getHealth`, `listNetworkEndpoints` and traffic.
pub(crate) fn forced_down(store: &Store, group: &Key, instance: &Key, ip: &str, port: i64) -> bool {
    store.unhealthy.contains(instance)
        || (group.kind == Kind::NetworkEndpointGroup
            && u32::try_from(port).is_ok_and(|p| store.endpoint_forced_down(group, ip, p)))
}

fn health_response(statuses: Vec<Value>) -> Obj {
    let mut o = Obj::new();
    o.insert("kind".into(), "compute#backendServiceGroupHealth".into());
    if !statuses.is_empty() {
        o.insert("healthStatus".into(), Value::Array(statuses));
    }
    o
}

/// The port traffic goes to: the group's named port matching the service's `portName`,
/// else the service's `port`.
pub(crate) fn serving_port(service: &Obj, group: &Obj) -> i64 {
    let port_name = service.get("portName").and_then(Value::as_str);
    let named = group
        .get("namedPorts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|np| np.get("name").and_then(Value::as_str) == port_name)
        .and_then(|np| np.get("port"))
        .and_then(Value::as_i64);
    named
        .or_else(|| service.get("port").and_then(Value::as_i64))
        .unwrap_or(80)
}
