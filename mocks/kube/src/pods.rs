//! core/v1 Pods: what the apiserver's pod strategy does on every write, beyond the generic rules
//! in `store`.
//!
//! Sources, all in kubernetes/kubernetes unless said otherwise:
//! - `pkg/registry/core/pod/strategy.go`: `PrepareForCreate` (status reset to `phase: Pending`
//!   and the computed `qosClass`; `generation: 1`), `podStatusStrategy.PrepareForUpdate` (a
//!   status write keeps the spec and backfills an empty `qosClass`), `CheckGracefulDelete` (see
//!   [`grace_period`]), `ToSelectableFields` (the field selectors in `kinds.rs`);
//! - `pkg/apis/core/v1/defaults.go`: `SetDefaults_Pod`, `SetDefaults_PodSpec`,
//!   `SetDefaults_Container`, `SetDefaults_Probe`, `SetDefaults_HTTPGetAction`, the volume and
//!   `ObjectFieldSelector` defaults, and `ContainerPort.protocol`'s `+default="TCP"` in
//!   `k8s.io/api/core/v1/types.go` (see [`apply_defaults`]);
//! - `pkg/apis/core/helper/qos/qos.go`: `ComputePodQOS` (see [`qos_class`]);
//! - `pkg/apis/core/validation/validation.go`: `ValidatePodCreate`, `ValidatePodUpdate`,
//!   `ValidatePodStatusUpdate` (see [`validate`] and [`update_causes`]);
//! - KEP-563 (IPv4/IPv6 dual-stack), "V1 to Core (Internal) Conversion": `status.podIP` and
//!   `status.podIPs[0]` are kept in step, and `hostIP`/`hostIPs` likewise (KEP-2681).
//!
//! What is left out is listed in the crate docs.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{Map, Value, json};

use crate::defaults::Allocator;
use crate::error::Cause;
use crate::validation::{check_str, dns1123_label, dns1123_subdomain, items, port_name, qualified_name};

/// `v1.DefaultTerminationGracePeriodSeconds`.
pub(crate) const DEFAULT_GRACE_SECONDS: i64 = 30;

/// `pod updates may not change fields other than …` lists these (`updatablePodSpecFields` in
/// `pkg/apis/core/validation/validation.go`).
const UPDATABLE_POD_SPEC_FIELDS: &[&str] = &[
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
];

const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
const DNS_POLICIES: &[&str] = &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
const PROTOCOLS: &[&str] = &["TCP", "UDP", "SCTP"];
const SCHEMES: &[&str] = &["HTTP", "HTTPS"];
/// Conditions whose type need not be a qualified name (`validatePodConditions`).
const SYSTEM_CONDITIONS: &[&str] = &["PodScheduled", "Ready", "Initialized"];
const MAX_INT32: i64 = i32::MAX as i64;

fn obj_mut<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Map<String, Value>> {
    v.get_mut(key).and_then(Value::as_object_mut)
}

fn set_default(map: &mut Map<String, Value>, key: &str, value: Value) {
    if map.get(key).is_none_or(|v| v.is_null() || v.as_str() == Some("")) {
        map.insert(key.to_string(), value);
    }
}

/// `imagePullPolicy` from the image's tag: `Always` for `:latest` or no tag (and no digest),
/// else `IfNotPresent` (`SetDefaults_Container`, tag as `parsers.ParseImageName` reads it).
fn pull_policy(image: &str) -> &'static str {
    let (name, digest) = match image.split_once('@') {
        Some((n, _)) => (n, true),
        None => (image, false),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    let tag = last.split_once(':').map(|(_, t)| t);
    match tag {
        Some("latest") => "Always",
        None if !digest => "Always",
        _ => "IfNotPresent",
    }
}

fn default_http_get(handler: &mut Value) {
    if let Some(get) = obj_mut(handler, "httpGet") {
        set_default(get, "path", json!("/"));
        set_default(get, "scheme", json!("HTTP"));
    }
}

fn default_probe(probe: &mut Value) {
    let Some(map) = probe.as_object_mut() else {
        return;
    };
    for (key, value) in [
        ("timeoutSeconds", 1),
        ("periodSeconds", 10),
        ("successThreshold", 1),
        ("failureThreshold", 3),
    ] {
        if map.get(key).and_then(Value::as_i64).unwrap_or(0) == 0 {
            map.insert(key.into(), json!(value));
        }
    }
    default_http_get(probe);
}

fn default_container(c: &mut Value, host_network: bool, requests_from_limits: bool) {
    let Some(map) = c.as_object_mut() else {
        return;
    };
    let image = map.get("image").and_then(Value::as_str).unwrap_or("").to_string();
    set_default(map, "imagePullPolicy", json!(pull_policy(&image)));
    set_default(map, "terminationMessagePath", json!("/dev/termination-log"));
    set_default(map, "terminationMessagePolicy", json!("File"));
    if let Some(ports) = map.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            set_default(p, "protocol", json!("TCP"));
            if host_network && p.get("hostPort").and_then(Value::as_i64).unwrap_or(0) == 0 {
                let port = p.get("containerPort").cloned().unwrap_or(Value::Null);
                p.insert("hostPort".into(), port);
            }
        }
    }
    for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
        if let Some(p) = map.get_mut(probe).filter(|p| p.is_object()) {
            default_probe(p);
        }
    }
    if let Some(lifecycle) = map.get_mut("lifecycle").filter(|l| l.is_object()) {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = lifecycle.get_mut(hook) {
                default_http_get(h);
            }
        }
    }
    for env in map
        .get_mut("env")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if let Some(field_ref) = env
            .pointer_mut("/valueFrom/fieldRef")
            .and_then(Value::as_object_mut)
        {
            set_default(field_ref, "apiVersion", json!("v1"));
        }
    }
    if requests_from_limits
        && let Some(resources) = map.get_mut("resources").and_then(Value::as_object_mut)
        && let Some(limits) = resources.get("limits").and_then(Value::as_object).cloned()
    {
        let requests = resources.entry("requests").or_insert_with(|| json!({}));
        if let Some(requests) = requests.as_object_mut() {
            for (k, v) in limits {
                requests.entry(k).or_insert(v);
            }
        }
    }
}

/// The defaults the apiserver fills in when it decodes a Pod (`pkg/apis/core/v1/defaults.go`).
pub(crate) fn apply_defaults(pod: &mut Value) {
    if !pod.get("spec").is_some_and(Value::is_object) {
        return;
    }
    let spec = &mut pod["spec"];
    let host_network = spec.get("hostNetwork").and_then(Value::as_bool) == Some(true);
    if let Some(map) = spec.as_object_mut() {
        set_default(map, "dnsPolicy", json!("ClusterFirst"));
        set_default(map, "restartPolicy", json!("Always"));
        if map.get("securityContext").is_none_or(Value::is_null) {
            map.insert("securityContext".into(), json!({}));
        }
        if map
            .get("terminationGracePeriodSeconds")
            .is_none_or(Value::is_null)
        {
            map.insert(
                "terminationGracePeriodSeconds".into(),
                json!(DEFAULT_GRACE_SECONDS),
            );
        }
        set_default(map, "schedulerName", json!("default-scheduler"));
        if map.get("enableServiceLinks").is_none_or(Value::is_null) {
            map.insert("enableServiceLinks".into(), json!(true));
        }
    }
    for (list, requests_from_limits) in [
        ("containers", true),
        ("initContainers", true),
        ("ephemeralContainers", false),
    ] {
        for c in spec
            .get_mut(list)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            default_container(
                c,
                host_network && list != "ephemeralContainers",
                requests_from_limits,
            );
        }
    }
    for volume in spec
        .get_mut("volumes")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        let Some(map) = volume.as_object_mut() else {
            continue;
        };
        if map.keys().all(|k| k == "name") {
            map.insert("emptyDir".into(), json!({}));
        }
        for source in ["secret", "configMap", "downwardAPI", "projected"] {
            if let Some(s) = map.get_mut(source).and_then(Value::as_object_mut) {
                set_default(s, "defaultMode", json!(420));
            }
        }
    }
}

/// A resource quantity as a number (`k8s.io/apimachinery/pkg/api/resource`), for comparisons.
pub(crate) fn parse_quantity(s: &str) -> Option<f64> {
    const SUFFIXES: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1_048_576.0),
        ("Gi", 1_073_741_824.0),
        ("Ti", 1_099_511_627_776.0),
        ("Pi", 1_125_899_906_842_624.0),
        ("Ei", 1_152_921_504_606_846_976.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    let s = s.trim();
    let (number, factor) = SUFFIXES
        .iter()
        .find_map(|(suffix, f)| s.strip_suffix(suffix).map(|n| (n, *f)))
        .unwrap_or((s, 1.0));
    let valid = !number.is_empty()
        && number
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '+' | '-' | 'e' | 'E'));
    if !valid {
        return None;
    }
    number.parse::<f64>().ok().map(|n| n * factor)
}

fn quantity_of(v: &Value) -> Option<f64> {
    match v {
        Value::String(s) => parse_quantity(s),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

/// `ComputePodQOS` over containers and init containers (ephemeral containers have no resources):
/// `BestEffort` without any cpu or memory request or limit, `Guaranteed` when every container
/// limits both and the summed requests equal the summed limits, else `Burstable`. Runs after
/// defaulting, so requests already default to limits.
pub(crate) fn qos_class(pod: &Value) -> &'static str {
    let mut requests: BTreeMap<String, f64> = BTreeMap::new();
    let mut limits: BTreeMap<String, f64> = BTreeMap::new();
    let mut guaranteed = true;
    let containers = items(pod.pointer("/spec/containers"))
        .iter()
        .chain(items(pod.pointer("/spec/initContainers")));
    for c in containers {
        let mut limited = Vec::new();
        for (section, sums) in [("requests", &mut requests), ("limits", &mut limits)] {
            let list = c
                .pointer(&format!("/resources/{section}"))
                .and_then(Value::as_object);
            for (name, q) in list.into_iter().flatten() {
                if name != "cpu" && name != "memory" {
                    continue;
                }
                let Some(q) = quantity_of(q).filter(|q| *q > 0.0) else {
                    continue;
                };
                *sums.entry(name.clone()).or_insert(0.0) += q;
                if section == "limits" {
                    limited.push(name.clone());
                }
            }
        }
        if !(limited.iter().any(|n| n == "cpu") && limited.iter().any(|n| n == "memory")) {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    let equal = requests.iter().all(|(name, r)| {
        limits
            .get(name)
            .is_some_and(|l| (l - r).abs() <= f64::EPSILON * l.abs().max(1.0))
    });
    if guaranteed && equal && requests.len() == limits.len() {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// Keeps `ip` and `ips[0].ip` in step, as the v1↔internal conversion does (KEP-563): a lone
/// singular value becomes the list, a differing singular value wins, a lone list sets the
/// singular value.
fn sync_ips(status: &mut Map<String, Value>, single: &str, plural: &str) {
    let one = status
        .get(single)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(String::from);
    let first = status
        .get(plural)
        .and_then(Value::as_array)
        .and_then(|l| l.first())
        .and_then(|p| p.get("ip"))
        .and_then(Value::as_str)
        .map(String::from);
    match (one, first) {
        (Some(one), Some(first)) if one != first => {
            status.insert(plural.into(), json!([{"ip": one}]));
        }
        (Some(one), None) => {
            status.insert(plural.into(), json!([{"ip": one}]));
        }
        (None, Some(first)) => {
            status.insert(single.into(), json!(first));
        }
        _ => {}
    }
}

/// Kind-specific write preparation (`PrepareForCreate` / `PrepareForUpdate` and defaulting).
pub(crate) fn prepare(pod: &mut Value, old: Option<&Value>, _: &mut Allocator) -> Result<(), Vec<Cause>> {
    apply_defaults(pod);
    let Some(old) = old else {
        let qos = qos_class(pod);
        pod["status"] = json!({"phase": "Pending", "qosClass": qos});
        return Ok(());
    };
    let mut causes = Vec::new();
    if let Some(status) = pod.get_mut("status").and_then(Value::as_object_mut) {
        sync_ips(status, "podIP", "podIPs");
        sync_ips(status, "hostIP", "hostIPs");
        let old_qos = old.pointer("/status/qosClass").cloned().unwrap_or(Value::Null);
        match status
            .get("qosClass")
            .filter(|q| q.as_str().is_some_and(|s| !s.is_empty()))
        {
            None => {
                if !old_qos.is_null() {
                    status.insert("qosClass".into(), old_qos);
                }
            }
            Some(q) if !old_qos.is_null() && *q != old_qos => {
                causes.push(Cause::invalid("status.qosClass", q, "field is immutable"));
            }
            Some(_) => {}
        }
    }
    causes.extend(update_causes(
        pod.get("spec").unwrap_or(&Value::Null),
        old.get("spec").unwrap_or(&Value::Null),
    ));
    if causes.is_empty() { Ok(()) } else { Err(causes) }
}

fn toleration_matches_but_seconds(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            m.shift_remove("tolerationSeconds");
        }
        v
    };
    strip(a) == strip(b)
}

/// Renders what an update changed in the spec, one line per top-level field (the real message
/// carries a go-cmp diff of the internal structs; this says the same in JSON).
fn spec_diff(old: &Value, new: &Value) -> String {
    let empty = Map::new();
    let o = old.as_object().unwrap_or(&empty);
    let n = new.as_object().unwrap_or(&empty);
    let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut lines = Vec::new();
    for k in keys {
        let (a, b) = (o.get(k), n.get(k));
        if a != b {
            if let Some(a) = a {
                lines.push(format!("- {k}: {a}"));
            }
            if let Some(b) = b {
                lines.push(format!("+ {k}: {b}"));
            }
        }
    }
    lines.join("\n")
}

/// What `ValidatePodUpdate` refuses in a spec change: only images, `activeDeadlineSeconds`
/// (set once, then only lowered), added tolerations, removed scheduling gates and a negative
/// `terminationGracePeriodSeconds` set to 1 may change. Runs on the defaulted spec, as the real
/// comparison does.
pub(crate) fn update_causes(new: &Value, old: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    for list in ["containers", "initContainers"] {
        if items(new.get(list)).len() != items(old.get(list)).len() {
            causes.push(Cause::forbidden(
                format!("spec.{list}"),
                "pod updates may not add or remove containers",
            ));
            return causes;
        }
    }
    let new_ads = new.get("activeDeadlineSeconds").filter(|v| !v.is_null());
    let old_ads = old.get("activeDeadlineSeconds").filter(|v| !v.is_null());
    match (new_ads.and_then(Value::as_i64), old_ads.and_then(Value::as_i64)) {
        (Some(n), Some(o)) if o < n => causes.push(Cause::invalid(
            "spec.activeDeadlineSeconds",
            &json!(n),
            "must be less than or equal to previous value",
        )),
        (None, Some(_)) => causes.push(Cause::invalid(
            "spec.activeDeadlineSeconds",
            &Value::Null,
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }
    let new_tolerations = items(new.get("tolerations"));
    for old_t in items(old.get("tolerations")) {
        if !new_tolerations
            .iter()
            .any(|t| toleration_matches_but_seconds(t, old_t))
        {
            causes.push(Cause::forbidden(
                "spec.tolerations",
                "existing toleration can not be modified except its tolerationSeconds",
            ));
        }
    }
    let old_gates = items(old.get("schedulingGates"));
    for (i, gate) in items(new.get("schedulingGates")).iter().enumerate() {
        if !old_gates.contains(gate) {
            let name = gate.get("name").and_then(Value::as_str).unwrap_or("");
            causes.push(Cause::forbidden(
                format!("spec.schedulingGates[{i}]"),
                &format!("only deletion is allowed, but found new scheduling gate '{name}'"),
            ));
        }
    }
    if new == old {
        return causes;
    }
    let mut munged = new.clone();
    if let Some(m) = munged.as_object_mut() {
        for list in ["containers", "initContainers"] {
            if let Some(cs) = m.get_mut(list).and_then(Value::as_array_mut) {
                for (i, c) in cs.iter_mut().enumerate() {
                    let old_image = old
                        .get(list)
                        .and_then(|l| l.get(i))
                        .and_then(|c| c.get("image"))
                        .cloned();
                    if let (Some(c), Some(image)) = (c.as_object_mut(), old_image) {
                        c.insert("image".into(), image);
                    }
                }
            }
        }
        for field in ["activeDeadlineSeconds", "schedulingGates", "tolerations"] {
            match old.get(field) {
                Some(v) => m.insert(field.into(), v.clone()),
                None => m.shift_remove(field),
            };
        }
        let old_grace = old.get("terminationGracePeriodSeconds").and_then(Value::as_i64);
        let new_grace = m.get("terminationGracePeriodSeconds").and_then(Value::as_i64);
        if old_grace.is_some_and(|g| g < 0) && new_grace == Some(1) {
            m.insert("terminationGracePeriodSeconds".into(), json!(old_grace));
        }
    }
    if munged != *old {
        causes.push(Cause::forbidden(
            "spec",
            &format!(
                "pod updates may not change fields other than {}\n{}",
                UPDATABLE_POD_SPEC_FIELDS.join(","),
                spec_diff(old, &munged)
            ),
        ));
    }
    causes
}

fn check_port_number(causes: &mut Vec<Cause>, field: &str, v: &Value) {
    if !v.as_i64().is_some_and(|n| (1..=65535).contains(&n)) {
        causes.push(Cause::invalid(field, v, "must be between 1 and 65535, inclusive"));
    }
}

/// `ValidatePortNumOrName`: a probe's port is a number in range or an IANA service name.
fn check_port_num_or_name(causes: &mut Vec<Cause>, field: &str, v: Option<&Value>) {
    match v {
        None | Some(Value::Null) => causes.push(Cause::required(field, "")),
        Some(n @ Value::Number(_)) => check_port_number(causes, field, n),
        Some(s @ Value::String(_)) => check_str(causes, field, s, port_name),
        Some(other) => causes.push(Cause::invalid(field, other, "must be a number or a name")),
    }
}

fn check_non_negative(causes: &mut Vec<Cause>, field: &str, v: Option<&Value>) {
    if let Some(n) = v.and_then(Value::as_i64).filter(|n| *n < 0) {
        causes.push(Cause::invalid(
            field,
            &json!(n),
            "must be greater than or equal to 0",
        ));
    }
}

/// `validateProbe` and `validateHandler`: one handler, sane numbers.
fn check_probe(causes: &mut Vec<Cause>, field: &str, probe: &Value, must_succeed_once: bool) {
    let handlers: Vec<&str> = ["exec", "httpGet", "tcpSocket", "grpc"]
        .into_iter()
        .filter(|h| probe.get(*h).is_some_and(|v| !v.is_null()))
        .collect();
    match handlers.as_slice() {
        [] => causes.push(Cause::required(field, "must specify a handler type")),
        [_] => {}
        [_, extras @ ..] => {
            for extra in extras {
                causes.push(Cause::forbidden(
                    format!("{field}.{extra}"),
                    "may not specify more than 1 handler type",
                ));
            }
        }
    }
    if let Some(get) = probe.get("httpGet").filter(|v| v.is_object()) {
        check_port_num_or_name(causes, &format!("{field}.httpGet.port"), get.get("port"));
        if let Some(scheme) = get
            .get("scheme")
            .filter(|s| s.as_str().is_some_and(|s| !s.is_empty()))
            && !scheme.as_str().is_some_and(|s| SCHEMES.contains(&s))
        {
            causes.push(Cause::not_supported(
                format!("{field}.httpGet.scheme"),
                scheme,
                SCHEMES,
            ));
        }
    }
    if let Some(tcp) = probe.get("tcpSocket").filter(|v| v.is_object()) {
        check_port_num_or_name(causes, &format!("{field}.tcpSocket.port"), tcp.get("port"));
    }
    if let Some(grpc) = probe.get("grpc").filter(|v| v.is_object()) {
        check_port_number(
            causes,
            &format!("{field}.grpc.port"),
            grpc.get("port").unwrap_or(&Value::Null),
        );
    }
    for key in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        check_non_negative(causes, &format!("{field}.{key}"), probe.get(key));
    }
    if must_succeed_once
        && let Some(n) = probe.get("successThreshold").and_then(Value::as_i64)
        && n != 1
    {
        causes.push(Cause::invalid(
            format!("{field}.successThreshold"),
            &json!(n),
            "must be 1",
        ));
    }
}

/// `validateContainers` / `validateInitContainers`, the parts a fake needs: names, images,
/// ports, probes, requests within limits. `port_names` collects port names pod-wide.
fn check_containers(
    causes: &mut Vec<Cause>,
    field: &str,
    list: &[Value],
    names: &mut Vec<String>,
    port_names: &mut Vec<String>,
) {
    for (i, c) in list.iter().enumerate() {
        let cfield = format!("{field}[{i}]");
        match c.get("name") {
            Some(Value::String(n)) if !n.is_empty() => {
                if let Some(why) = dns1123_label(n) {
                    causes.push(Cause::invalid(format!("{cfield}.name"), &json!(n), &why));
                } else if names.contains(n) {
                    causes.push(Cause::duplicate(format!("{cfield}.name"), &json!(n)));
                }
                names.push(n.clone());
            }
            _ => causes.push(Cause::required(format!("{cfield}.name"), "")),
        }
        if c.get("image").and_then(Value::as_str).is_none_or(str::is_empty) {
            causes.push(Cause::required(format!("{cfield}.image"), ""));
        }
        for (j, p) in items(c.get("ports")).iter().enumerate() {
            let pfield = format!("{cfield}.ports[{j}]");
            match p.get("containerPort") {
                None | Some(Value::Null) => {
                    causes.push(Cause::required(format!("{pfield}.containerPort"), ""))
                }
                Some(n) if n.as_i64() == Some(0) => {
                    causes.push(Cause::required(format!("{pfield}.containerPort"), ""))
                }
                Some(n) => check_port_number(causes, &format!("{pfield}.containerPort"), n),
            }
            if let Some(h) = p.get("hostPort").filter(|h| h.as_i64().is_some_and(|n| n != 0)) {
                check_port_number(causes, &format!("{pfield}.hostPort"), h);
            }
            if let Some(name) = p
                .get("name")
                .filter(|n| n.as_str().is_some_and(|s| !s.is_empty()))
            {
                check_str(causes, &format!("{pfield}.name"), name, port_name);
                let n = name.as_str().unwrap_or("").to_string();
                if port_names.contains(&n) {
                    causes.push(Cause::duplicate(format!("{pfield}.name"), name));
                }
                port_names.push(n);
            }
            if let Some(proto) = p.get("protocol").filter(|v| !v.is_null())
                && !proto.as_str().is_some_and(|s| PROTOCOLS.contains(&s))
            {
                causes.push(Cause::not_supported(
                    format!("{pfield}.protocol"),
                    proto,
                    PROTOCOLS,
                ));
            }
        }
        for (probe, once) in [
            ("readinessProbe", false),
            ("livenessProbe", true),
            ("startupProbe", true),
        ] {
            if let Some(p) = c.get(probe).filter(|p| p.is_object()) {
                check_probe(causes, &format!("{cfield}.{probe}"), p, once);
            }
        }
        let requests = c.pointer("/resources/requests").and_then(Value::as_object);
        let limits = c.pointer("/resources/limits").and_then(Value::as_object);
        if let (Some(requests), Some(limits)) = (requests, limits) {
            for (name, req) in requests {
                let (Some(r), Some(lim)) = (quantity_of(req), limits.get(name)) else {
                    continue;
                };
                if quantity_of(lim).is_some_and(|l| r > l) {
                    let shown = lim.as_str().map(String::from).unwrap_or_else(|| lim.to_string());
                    causes.push(Cause::invalid(
                        format!("{cfield}.resources.requests"),
                        req,
                        &format!("must be less than or equal to {name} limit of {shown}"),
                    ));
                }
            }
        }
    }
}

fn check_ips(causes: &mut Vec<Cause>, status: &Value, plural: &str) {
    let mut seen = Vec::new();
    for (i, entry) in items(status.get(plural)).iter().enumerate() {
        let field = format!("status.{plural}[{i}].ip");
        let ip = entry.get("ip").cloned().unwrap_or(Value::Null);
        match ip.as_str().map(str::parse::<IpAddr>) {
            Some(Ok(addr)) => {
                if seen.contains(&addr) {
                    causes.push(Cause::duplicate(field, &ip));
                } else if seen.iter().any(|s: &IpAddr| s.is_ipv4() == addr.is_ipv4()) {
                    causes.push(Cause::invalid(
                        format!("status.{plural}"),
                        &status.get(plural).cloned().unwrap_or(Value::Null),
                        "may specify no more than one IP for each IP family",
                    ));
                }
                seen.push(addr);
            }
            _ => causes.push(Cause::invalid(field, &ip, "must be a valid IP address")),
        }
    }
}

/// core/v1 Pod validation (`ValidatePodCreate`, the spec part of `ValidatePodUpdate`, and
/// `ValidatePodStatusUpdate`'s conditions and IPs).
pub(crate) fn validate(pod: &Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    let spec = pod.get("spec").cloned().unwrap_or(Value::Null);
    let containers = items(spec.get("containers"));
    if containers.is_empty() {
        causes.push(Cause::required("spec.containers", ""));
    }
    let mut names = Vec::new();
    let mut port_names = Vec::new();
    check_containers(causes, "spec.containers", containers, &mut names, &mut port_names);
    check_containers(
        causes,
        "spec.initContainers",
        items(spec.get("initContainers")),
        &mut names,
        &mut port_names,
    );
    if old.is_none() {
        if !items(spec.get("ephemeralContainers")).is_empty() {
            causes.push(Cause::forbidden(
                "spec.ephemeralContainers",
                "cannot be set on create",
            ));
        }
        let node = spec.get("nodeName").and_then(Value::as_str).unwrap_or("");
        if !node.is_empty() && !items(spec.get("schedulingGates")).is_empty() {
            causes.push(Cause::forbidden(
                "spec.nodeName",
                "cannot be set until all schedulingGates have been cleared",
            ));
        }
    }
    for (key, allowed) in [("restartPolicy", RESTART_POLICIES), ("dnsPolicy", DNS_POLICIES)] {
        if let Some(v) = spec.get(key).filter(|v| !v.is_null() && v.as_str() != Some(""))
            && !v.as_str().is_some_and(|s| allowed.contains(&s))
        {
            causes.push(Cause::not_supported(format!("spec.{key}"), v, allowed));
        }
    }
    for (i, gate) in items(spec.get("readinessGates")).iter().enumerate() {
        let field = format!("spec.readinessGates[{i}].conditionType");
        match gate.get("conditionType") {
            Some(t) => check_str(causes, &field, t, qualified_name),
            None => causes.push(Cause::required(field, "")),
        }
    }
    if let Some(node) = spec
        .get("nodeName")
        .filter(|n| n.as_str().is_some_and(|s| !s.is_empty()))
    {
        check_str(causes, "spec.nodeName", node, dns1123_subdomain);
    }
    for key in ["hostname", "subdomain"] {
        if let Some(v) = spec
            .get(key)
            .filter(|n| n.as_str().is_some_and(|s| !s.is_empty()))
        {
            check_str(causes, &format!("spec.{key}"), v, dns1123_label);
        }
    }
    if let Some(ads) = spec.get("activeDeadlineSeconds").filter(|v| !v.is_null())
        && !ads.as_i64().is_some_and(|n| (1..=MAX_INT32).contains(&n))
    {
        causes.push(Cause::invalid(
            "spec.activeDeadlineSeconds",
            ads,
            &format!("must be between 1 and {MAX_INT32}, inclusive"),
        ));
    }
    if old.is_some()
        && let Some(status) = pod.get("status")
    {
        // The real validator names this path `metadata.conditions[i].Type`
        // (`validatePodConditions(..., fldPath.Child("conditions"))` with `fldPath` still at
        // `metadata`); kept as is so clients see the same field.
        for (i, c) in items(status.get("conditions")).iter().enumerate() {
            let ty = c.get("type").cloned().unwrap_or(Value::Null);
            if ty.as_str().is_some_and(|t| SYSTEM_CONDITIONS.contains(&t)) {
                continue;
            }
            check_str(
                causes,
                &format!("metadata.conditions[{i}].Type"),
                &ty,
                qualified_name,
            );
        }
        check_ips(causes, status, "podIPs");
        check_ips(causes, status, "hostIPs");
    }
}

/// `CheckGracefulDelete`: the grace period a DELETE gets. The request's `gracePeriodSeconds`,
/// else `spec.terminationGracePeriodSeconds` (defaulted to 30), else 0; 0 for a pod that was
/// never scheduled (no `spec.nodeName`) or has finished (`Succeeded`/`Failed`); a negative value
/// becomes 1.
pub(crate) fn grace_period(pod: &Value, requested: Option<i64>) -> i64 {
    let mut period = requested
        .or_else(|| {
            pod.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
        })
        .unwrap_or(0);
    let node = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if node.is_empty() {
        period = 0;
    }
    let phase = pod.pointer("/status/phase").and_then(Value::as_str).unwrap_or("");
    if phase == "Succeeded" || phase == "Failed" {
        period = 0;
    }
    if period < 0 { 1 } else { period }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(spec: Value) -> Value {
        json!({"metadata": {"name": "p", "namespace": "d"}, "spec": spec})
    }

    fn causes_of(p: &Value, old: Option<&Value>) -> Vec<String> {
        let mut c = Vec::new();
        validate(p, old, &mut c);
        c.into_iter()
            .map(|c| format!("{}|{}", c.field, c.reason))
            .collect()
    }

    #[test]
    fn defaults_match_the_apiserver() {
        let mut p = pod(json!({"hostNetwork": true, "containers": [{
            "name": "web", "image": "nginx",
            "ports": [{"containerPort": 8080}],
            "readinessProbe": {"httpGet": {"port": 8080}},
            "resources": {"limits": {"cpu": "1"}},
        }]}));
        apply_defaults(&mut p);
        let c = &p["spec"]["containers"][0];
        assert_eq!(c["imagePullPolicy"], "Always");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(c["ports"][0]["hostPort"], 8080);
        assert_eq!(c["readinessProbe"]["periodSeconds"], 10);
        assert_eq!(c["readinessProbe"]["timeoutSeconds"], 1);
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/");
        assert_eq!(c["readinessProbe"]["httpGet"]["scheme"], "HTTP");
        assert_eq!(c["resources"]["requests"]["cpu"], "1");
        assert_eq!(p["spec"]["terminationGracePeriodSeconds"], 30);
        assert_eq!(p["spec"]["restartPolicy"], "Always");
        assert_eq!(p["spec"]["schedulerName"], "default-scheduler");
        assert_eq!(pull_policy("nginx:1.27"), "IfNotPresent");
        assert_eq!(pull_policy("nginx:latest"), "Always");
        assert_eq!(pull_policy("registry:5000/nginx"), "Always");
        assert_eq!(pull_policy("nginx@sha256:abc"), "IfNotPresent");
    }

    #[test]
    fn qos_classes() {
        let with = |resources: Value| {
            let mut p = pod(json!({"containers": [{"name": "a", "image": "x", "resources": resources}]}));
            apply_defaults(&mut p);
            qos_class(&p)
        };
        assert_eq!(with(json!({})), "BestEffort");
        assert_eq!(with(json!({"requests": {"cpu": "100m"}})), "Burstable");
        assert_eq!(
            with(json!({"limits": {"cpu": "0.1", "memory": "64Mi"}, "requests": {"cpu": "100m"}})),
            "Guaranteed"
        );
        assert_eq!(
            with(json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"memory": "1G"}})),
            "Burstable"
        );
        assert_eq!(parse_quantity("1Ki"), Some(1024.0));
        assert_eq!(parse_quantity("1e3"), Some(1000.0));
        assert_eq!(parse_quantity("x"), None);
    }

    #[test]
    fn validation_names_fields() {
        let bad = pod(
            json!({"restartPolicy": "Sometimes", "readinessGates": [{"conditionType": "bad type"}],
            "containers": [
                {"name": "a", "image": "x", "ports": [{"containerPort": 70000, "name": "http"}]},
                {"name": "a", "ports": [{"containerPort": 80, "name": "http"}],
                 "readinessProbe": {"httpGet": {"port": 80}, "tcpSocket": {"port": 80}}},
            ]}),
        );
        assert_eq!(
            causes_of(&bad, None),
            [
                "spec.containers[0].ports[0].containerPort|FieldValueInvalid",
                "spec.containers[1].name|FieldValueDuplicate",
                "spec.containers[1].image|FieldValueRequired",
                "spec.containers[1].ports[0].name|FieldValueDuplicate",
                "spec.containers[1].readinessProbe.tcpSocket|FieldValueForbidden",
                "spec.restartPolicy|FieldValueNotSupported",
                "spec.readinessGates[0].conditionType|FieldValueInvalid",
            ]
        );
        assert_eq!(
            causes_of(&pod(json!({})), None),
            ["spec.containers|FieldValueRequired"]
        );
    }

    #[test]
    fn spec_updates_are_limited() {
        let mut old = pod(json!({"containers": [{"name": "a", "image": "x:1"}]}));
        apply_defaults(&mut old);
        let spec = |p: &Value| p["spec"].clone();
        let mut image = old.clone();
        image["spec"]["containers"][0]["image"] = json!("x:2");
        assert!(update_causes(&spec(&image), &spec(&old)).is_empty());
        let mut gates = old.clone();
        gates["spec"]["readinessGates"] = json!([{"conditionType": "example.com/ready"}]);
        let causes = update_causes(&spec(&gates), &spec(&old));
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "spec");
        assert!(
            causes[0]
                .message
                .contains("pod updates may not change fields other than")
        );
        assert!(
            causes[0].message.contains("readinessGates"),
            "{}",
            causes[0].message
        );
        let mut more = old.clone();
        more["spec"]["containers"] = json!([{"name": "a", "image": "x"}, {"name": "b", "image": "x"}]);
        assert_eq!(
            update_causes(&spec(&more), &spec(&old))[0].field,
            "spec.containers"
        );
    }

    #[test]
    fn status_ips_stay_in_step() {
        let mut s = Map::new();
        s.insert("podIP".into(), json!("10.0.0.1"));
        sync_ips(&mut s, "podIP", "podIPs");
        assert_eq!(s["podIPs"], json!([{"ip": "10.0.0.1"}]));
        let mut s = Map::new();
        s.insert("podIPs".into(), json!([{"ip": "10.0.0.2"}]));
        sync_ips(&mut s, "podIP", "podIPs");
        assert_eq!(s["podIP"], "10.0.0.2");
    }

    #[test]
    fn grace_periods() {
        let scheduled = json!({"spec": {"nodeName": "n", "terminationGracePeriodSeconds": 45}});
        assert_eq!(grace_period(&scheduled, None), 45);
        assert_eq!(grace_period(&scheduled, Some(0)), 0);
        assert_eq!(grace_period(&scheduled, Some(-5)), 1);
        assert_eq!(
            grace_period(&json!({"spec": {"terminationGracePeriodSeconds": 45}}), None),
            0
        );
        let done = json!({"spec": {"nodeName": "n"}, "status": {"phase": "Succeeded"}});
        assert_eq!(grace_period(&done, Some(10)), 0);
    }
}
