//! Validation of objects before they are stored: names, metadata and per-kind rules.
//!
//! Validators read raw JSON defensively (a field of the wrong type is reported, never unwrapped),
//! so they can run before the typed decoding and name the offending field precisely.

use std::net::IpAddr;

use serde_json::Value;

use crate::error::Cause;
use crate::kinds::{Kind, NameRule};

const LABEL_MAX: usize = 63;
const SUBDOMAIN_MAX: usize = 253;
const ANNOTATIONS_MAX: usize = 256 * 1024;

fn is_alnum_lower(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn dns_label_shape(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| is_alnum_lower(c) || c == '-')
        && s.starts_with(is_alnum_lower)
        && s.ends_with(is_alnum_lower)
}

/// RFC 1123 label; `None` when valid, else why not.
pub(crate) fn dns1123_label(s: &str) -> Option<String> {
    if s.len() > LABEL_MAX {
        return Some(format!("must be no more than {LABEL_MAX} characters"));
    }
    if !dns_label_shape(s) {
        return Some(
            "must be a lowercase RFC 1123 label: lowercase letters, digits and '-', \
             starting and ending with a letter or digit"
                .into(),
        );
    }
    None
}

/// RFC 1035 label (a DNS-1123 label that starts with a letter).
pub(crate) fn dns1035_label(s: &str) -> Option<String> {
    if s.len() > LABEL_MAX {
        return Some(format!("must be no more than {LABEL_MAX} characters"));
    }
    if !dns_label_shape(s) || !s.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Some(
            "must be a lowercase RFC 1035 label: lowercase letters, digits and '-', \
             starting with a letter and ending with a letter or digit"
                .into(),
        );
    }
    None
}

/// RFC 1123 subdomain.
pub(crate) fn dns1123_subdomain(s: &str) -> Option<String> {
    if s.len() > SUBDOMAIN_MAX {
        return Some(format!("must be no more than {SUBDOMAIN_MAX} characters"));
    }
    if s.is_empty() || !s.split('.').all(dns_label_shape) {
        return Some(
            "must be a lowercase RFC 1123 subdomain: dot-separated parts of lowercase letters, \
             digits and '-', each starting and ending with a letter or digit"
                .into(),
        );
    }
    None
}

/// A subdomain optionally prefixed by `*.`.
fn wildcard_or_subdomain(s: &str) -> Option<String> {
    dns1123_subdomain(s.strip_prefix("*.").unwrap_or(s))
}

fn name_part(s: &str) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric();
    !s.is_empty()
        && s.len() <= LABEL_MAX
        && s.chars().all(|c| ok(c) || c == '-' || c == '_' || c == '.')
        && s.starts_with(ok)
        && s.ends_with(ok)
}

/// A qualified name such as a label key: `[prefix/]name`.
pub(crate) fn qualified_name(s: &str) -> Option<String> {
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    if let Some(p) = prefix
        && (p.is_empty() || dns1123_subdomain(p).is_some())
    {
        return Some("prefix part must be a lowercase RFC 1123 subdomain".into());
    }
    if !name_part(name) {
        return Some(
            "name part must be at most 63 characters of letters, digits, '-', '_' or '.', \
             starting and ending with a letter or digit"
                .into(),
        );
    }
    None
}

/// A label value: empty, or at most 63 characters shaped like a qualified name's name part.
pub(crate) fn label_value(s: &str) -> Option<String> {
    if s.is_empty() || name_part(s) {
        None
    } else {
        Some(
            "must be empty or at most 63 characters of letters, digits, '-', '_' or '.', \
             starting and ending with a letter or digit"
                .into(),
        )
    }
}

/// A key of a ConfigMap or Secret.
fn config_key(s: &str) -> Option<String> {
    let ok = !s.is_empty()
        && s.len() <= SUBDOMAIN_MAX
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    (!ok).then(|| "must consist of letters, digits, '-', '_' or '.'".into())
}

/// An IANA service (port) name.
pub(crate) fn port_name(s: &str) -> Option<String> {
    let ok = !s.is_empty()
        && s.len() <= 15
        && dns_label_shape(s)
        && !s.contains("--")
        && s.chars().any(|c| c.is_ascii_lowercase());
    (!ok).then(|| {
        "must be at most 15 lowercase letters, digits or single '-', with at least one letter".into()
    })
}

pub(crate) fn check_str(causes: &mut Vec<Cause>, field: &str, v: &Value, rule: fn(&str) -> Option<String>) {
    match v.as_str() {
        Some(s) => {
            if let Some(why) = rule(s) {
                causes.push(Cause::invalid(field, v, &why));
            }
        }
        None => causes.push(Cause::invalid(field, v, "must be a string")),
    }
}

pub(crate) fn items(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

const STANDARD_FINALIZERS: &[&str] = &["kubernetes", "orphan", "foregroundDeletion"];

/// Rules every kind shares: name, labels, annotations, finalizers.
pub(crate) fn metadata(kind: &Kind, obj: &Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    let meta = obj.get("metadata").cloned().unwrap_or(Value::Null);
    match meta.get("name") {
        Some(Value::String(n)) if !n.is_empty() => {
            let why = match kind.name_rule {
                NameRule::Subdomain => dns1123_subdomain(n),
                NameRule::Label => dns1123_label(n),
                NameRule::Dns1035 => dns1035_label(n),
            };
            if let Some(why) = why {
                causes.push(Cause::invalid("metadata.name", &meta["name"], &why));
            }
        }
        _ => causes.push(Cause::required(
            "metadata.name",
            "name or generateName is required",
        )),
    }
    if let Some(labels) = meta.get("labels").and_then(Value::as_object) {
        for (k, v) in labels {
            if let Some(why) = qualified_name(k) {
                causes.push(Cause::invalid("metadata.labels", &Value::String(k.clone()), &why));
            }
            match v.as_str() {
                Some(s) => {
                    if let Some(why) = label_value(s) {
                        causes.push(Cause::invalid("metadata.labels", v, &why));
                    }
                }
                None => causes.push(Cause::invalid("metadata.labels", v, "must be a string")),
            }
        }
    }
    if let Some(annotations) = meta.get("annotations").and_then(Value::as_object) {
        let mut total = 0;
        for (k, v) in annotations {
            total += k.len() + v.as_str().map_or(0, str::len);
            if let Some(why) = qualified_name(&k.to_lowercase()) {
                causes.push(Cause::invalid(
                    "metadata.annotations",
                    &Value::String(k.clone()),
                    &why,
                ));
            }
        }
        if total > ANNOTATIONS_MAX {
            causes.push(Cause::too_long("metadata.annotations", ANNOTATIONS_MAX));
        }
    }
    let finalizers = items(meta.get("finalizers"));
    for (i, f) in finalizers.iter().enumerate() {
        let field = format!("metadata.finalizers[{i}]");
        match f.as_str() {
            Some(s) if STANDARD_FINALIZERS.contains(&s) => {}
            Some(s) if s.contains('/') && qualified_name(s).is_none() => {}
            _ => causes.push(Cause::invalid(
                field,
                f,
                "a finalizer must be a standard name or a domain-qualified name (example.com/name)",
            )),
        }
    }
    if let Some(old) = old
        && old.pointer("/metadata/deletionTimestamp").is_some()
    {
        let before = items(old.pointer("/metadata/finalizers"));
        if finalizers.iter().any(|f| !before.contains(f)) {
            causes.push(Cause::forbidden(
                "metadata.finalizers",
                "no new finalizers can be added if the object is being deleted",
            ));
        }
    }
}

fn backend(b: &Value, field: &str, causes: &mut Vec<Cause>) {
    let service = b.get("service").filter(|v| !v.is_null());
    let resource = b.get("resource").filter(|v| !v.is_null());
    match (service, resource) {
        (Some(_), Some(_)) => causes.push(Cause::invalid(
            field,
            b,
            "cannot set both a service backend and a resource backend",
        )),
        (None, None) => causes.push(Cause::required(
            field,
            "a backend needs either `service` or `resource`",
        )),
        (Some(svc), None) => {
            match svc.get("name") {
                Some(n) => check_str(causes, &format!("{field}.service.name"), n, dns1035_label),
                None => causes.push(Cause::required(format!("{field}.service.name"), "")),
            }
            let port = svc.get("port").cloned().unwrap_or(Value::Null);
            let pfield = format!("{field}.service.port");
            let number = port.get("number").filter(|v| !v.is_null());
            let name = port
                .get("name")
                .filter(|v| !v.is_null() && v.as_str() != Some(""));
            match (number, name) {
                (Some(_), Some(_)) => causes.push(Cause::invalid(
                    pfield,
                    &port,
                    "cannot set both port name and port number",
                )),
                (None, None) => causes.push(Cause::required(pfield, "port name or number is required")),
                (Some(n), None) => {
                    if !n.as_i64().is_some_and(|n| (1..=65535).contains(&n)) {
                        causes.push(Cause::invalid(
                            format!("{pfield}.number"),
                            n,
                            "must be between 1 and 65535, inclusive",
                        ));
                    }
                }
                (None, Some(n)) => check_str(causes, &format!("{pfield}.name"), n, port_name),
            }
        }
        (None, Some(res)) => {
            for key in ["kind", "name"] {
                if str_of(res, key).is_none_or(str::is_empty) {
                    causes.push(Cause::required(format!("{field}.resource.{key}"), ""));
                }
            }
        }
    }
}

const PATH_TYPES: &[&str] = &["Exact", "Prefix", "ImplementationSpecific"];

/// networking.k8s.io/v1 Ingress.
pub(crate) fn ingress(obj: &Value, _old: Option<&Value>, causes: &mut Vec<Cause>) {
    let spec = obj
        .get("spec")
        .cloned()
        .unwrap_or_else(|| Value::Object(Default::default()));
    let rules = items(spec.get("rules"));
    let default = spec.get("defaultBackend").filter(|v| !v.is_null());
    if default.is_none() && rules.is_empty() {
        causes.push(Cause::invalid(
            "spec",
            &spec,
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    if let Some(b) = default {
        backend(b, "spec.defaultBackend", causes);
    }
    if let Some(class) = spec.get("ingressClassName").filter(|v| !v.is_null()) {
        check_str(causes, "spec.ingressClassName", class, dns1123_subdomain);
    }
    for (i, rule) in rules.iter().enumerate() {
        let rfield = format!("spec.rules[{i}]");
        if let Some(host) = rule
            .get("host")
            .filter(|h| h.as_str() != Some("") && !h.is_null())
        {
            let hfield = format!("{rfield}.host");
            match host.as_str() {
                Some(h) if h.parse::<IpAddr>().is_ok() => causes.push(Cause::invalid(
                    hfield,
                    host,
                    "must be a DNS name, not an IP address",
                )),
                _ => check_str(causes, &hfield, host, wildcard_or_subdomain),
            }
        }
        let Some(http) = rule.get("http").filter(|v| !v.is_null()) else {
            continue;
        };
        let paths = items(http.get("paths"));
        if paths.is_empty() {
            causes.push(Cause::required(format!("{rfield}.http.paths"), ""));
        }
        for (j, p) in paths.iter().enumerate() {
            let pfield = format!("{rfield}.http.paths[{j}]");
            let path = p.get("path").and_then(Value::as_str).unwrap_or("");
            match p.get("pathType") {
                None | Some(Value::Null) => causes.push(Cause::required(
                    format!("{pfield}.pathType"),
                    "pathType must be specified",
                )),
                Some(t) if !t.as_str().is_some_and(|t| PATH_TYPES.contains(&t)) => {
                    causes.push(Cause::not_supported(format!("{pfield}.pathType"), t, PATH_TYPES))
                }
                Some(t) => {
                    let strict = t.as_str() != Some("ImplementationSpecific");
                    if (strict || !path.is_empty()) && !path.starts_with('/') {
                        causes.push(Cause::invalid(
                            format!("{pfield}.path"),
                            &Value::String(path.into()),
                            "must be an absolute path",
                        ));
                    } else if strict {
                        for bad in ["//", "/./", "/../", "%2f", "%2F"] {
                            if path.contains(bad) {
                                causes.push(Cause::invalid(
                                    format!("{pfield}.path"),
                                    &Value::String(path.into()),
                                    &format!("must not contain '{bad}'"),
                                ));
                            }
                        }
                    }
                }
            }
            match p.get("backend") {
                Some(b) if !b.is_null() => backend(b, &format!("{pfield}.backend"), causes),
                _ => causes.push(Cause::required(format!("{pfield}.backend"), "")),
            }
        }
    }
    for (i, tls) in items(spec.get("tls")).iter().enumerate() {
        for (j, host) in items(tls.get("hosts")).iter().enumerate() {
            check_str(
                causes,
                &format!("spec.tls[{i}].hosts[{j}]"),
                host,
                wildcard_or_subdomain,
            );
        }
        if let Some(secret) = tls
            .get("secretName")
            .filter(|v| !v.is_null() && v.as_str() != Some(""))
        {
            check_str(
                causes,
                &format!("spec.tls[{i}].secretName"),
                secret,
                dns1123_subdomain,
            );
        }
    }
}

/// networking.k8s.io/v1 IngressClass.
pub(crate) fn ingress_class(obj: &Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    let controller = obj.pointer("/spec/controller");
    match controller.and_then(Value::as_str) {
        None | Some("") => causes.push(Cause::required("spec.controller", "")),
        Some(c) => {
            let valid = c.len() <= 250
                && c.split_once('/')
                    .is_some_and(|(domain, path)| dns1123_subdomain(domain).is_none() && !path.is_empty());
            if !valid {
                causes.push(Cause::invalid(
                    "spec.controller",
                    &Value::String(c.into()),
                    "must be a domain-prefixed path of at most 250 characters (example.com/controller)",
                ));
            }
        }
    }
    if let Some(old) = old {
        let before = old.pointer("/spec/controller");
        if before.is_some() && before != controller {
            causes.push(Cause::invalid(
                "spec.controller",
                controller.unwrap_or(&Value::Null),
                "field is immutable",
            ));
        }
    }
}

const SERVICE_TYPES: &[&str] = &["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"];
const PROTOCOLS: &[&str] = &["TCP", "UDP", "SCTP"];

/// core/v1 Service (node-port range and uniqueness are checked when allocating).
pub(crate) fn service(obj: &Value, _old: Option<&Value>, causes: &mut Vec<Cause>) {
    let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    let ty = spec
        .get("type")
        .cloned()
        .unwrap_or(Value::String("ClusterIP".into()));
    if !ty.as_str().is_some_and(|t| SERVICE_TYPES.contains(&t)) {
        causes.push(Cause::not_supported("spec.type", &ty, SERVICE_TYPES));
    }
    if ty.as_str() == Some("ExternalName") {
        match spec.get("externalName") {
            Some(n) => check_str(causes, "spec.externalName", n, dns1123_subdomain),
            None => causes.push(Cause::required("spec.externalName", "")),
        }
    }
    let ports = items(spec.get("ports"));
    if ports.is_empty()
        && ty.as_str() != Some("ExternalName")
        && spec.get("clusterIP") != Some(&"None".into())
    {
        causes.push(Cause::required("spec.ports", ""));
    }
    let mut seen_names = Vec::new();
    let mut seen_ports = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let field = format!("spec.ports[{i}]");
        let port = p.get("port").cloned().unwrap_or(Value::Null);
        if !port.as_i64().is_some_and(|n| (1..=65535).contains(&n)) {
            causes.push(Cause::invalid(
                format!("{field}.port"),
                &port,
                "must be between 1 and 65535, inclusive",
            ));
        }
        let protocol = p.get("protocol").cloned().unwrap_or(Value::String("TCP".into()));
        if !protocol.as_str().is_some_and(|t| PROTOCOLS.contains(&t)) {
            causes.push(Cause::not_supported(
                format!("{field}.protocol"),
                &protocol,
                PROTOCOLS,
            ));
        }
        match p.get("name").filter(|n| n.as_str() != Some("")) {
            Some(n) => {
                check_str(causes, &format!("{field}.name"), n, port_name);
                if seen_names.contains(n) {
                    causes.push(Cause::duplicate(format!("{field}.name"), n));
                }
                seen_names.push(n.clone());
            }
            None if ports.len() > 1 => causes.push(Cause::required(
                format!("{field}.name"),
                "a name is required when a service has more than one port",
            )),
            None => {}
        }
        let key = (port.clone(), protocol.clone());
        if seen_ports.contains(&key) {
            causes.push(Cause::duplicate(field.clone(), &p.clone()));
        }
        seen_ports.push(key);
        match p.get("targetPort") {
            Some(Value::Number(n)) if !n.as_i64().is_some_and(|n| (1..=65535).contains(&n)) => {
                causes.push(Cause::invalid(
                    format!("{field}.targetPort"),
                    &Value::Number(n.clone()),
                    "must be between 1 and 65535, inclusive",
                ))
            }
            Some(t @ Value::String(_)) => check_str(causes, &format!("{field}.targetPort"), t, port_name),
            _ => {}
        }
    }
}

/// core/v1 Secret.
pub(crate) fn secret(obj: &Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    let mut keys = Vec::new();
    for section in ["data", "stringData"] {
        if let Some(map) = obj.get(section).and_then(Value::as_object) {
            for k in map.keys() {
                if let Some(why) = config_key(k) {
                    causes.push(Cause::invalid(
                        format!("{section}[{k}]"),
                        &Value::String(k.clone()),
                        &why,
                    ));
                }
                keys.push(k.as_str());
            }
        }
    }
    let ty = obj.get("type").and_then(Value::as_str).unwrap_or("Opaque");
    if ty == "kubernetes.io/tls" {
        for key in ["tls.crt", "tls.key"] {
            if !keys.contains(&key) {
                causes.push(Cause::required(format!("data[{key}]"), ""));
            }
        }
    }
    if let Some(old) = old {
        let before = old.get("type").and_then(Value::as_str).unwrap_or("Opaque");
        if before != ty {
            causes.push(Cause::invalid(
                "type",
                &Value::String(ty.into()),
                "field is immutable",
            ));
        }
    }
}

/// core/v1 ConfigMap.
pub(crate) fn config_map(obj: &Value, _old: Option<&Value>, causes: &mut Vec<Cause>) {
    let data = obj.get("data").and_then(Value::as_object);
    let binary = obj.get("binaryData").and_then(Value::as_object);
    for (section, map) in [("data", data), ("binaryData", binary)] {
        for k in map.into_iter().flat_map(|m| m.keys()) {
            if let Some(why) = config_key(k) {
                causes.push(Cause::invalid(
                    format!("{section}[{k}]"),
                    &Value::String(k.clone()),
                    &why,
                ));
            }
        }
    }
    if let (Some(d), Some(b)) = (data, binary) {
        for k in d.keys().filter(|k| b.contains_key(*k)) {
            causes.push(Cause::duplicate(format!("data[{k}]"), &Value::String(k.clone())));
        }
    }
}

/// events.k8s.io/v1 Event: the fields the API requires of new-style events.
pub(crate) fn event_v1(obj: &Value, _old: Option<&Value>, causes: &mut Vec<Cause>) {
    for key in [
        "eventTime",
        "reportingController",
        "reportingInstance",
        "action",
        "reason",
    ] {
        if obj.get(key).is_none_or(|v| v.is_null() || v.as_str() == Some("")) {
            causes.push(Cause::required(key, ""));
        }
    }
}

/// Paths of fields present in `input` (non-null) but absent from the typed round trip `output`.
pub(crate) fn unknown_fields(input: &Value, output: &Value) -> Vec<String> {
    fn walk(input: &Value, output: &Value, path: &str, out: &mut Vec<String>) {
        match (input, output) {
            (Value::Object(a), Value::Object(b)) => {
                for (k, v) in a {
                    if v.is_null() {
                        continue;
                    }
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    match b.get(k) {
                        Some(bv) => walk(v, bv, &p, out),
                        None => out.push(p),
                    }
                }
            }
            (Value::Array(a), Value::Array(b)) => {
                for (i, (x, y)) in a.iter().zip(b).enumerate() {
                    walk(x, y, &format!("{path}[{i}]"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(input, output, "", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn causes(f: fn(&Value, Option<&Value>, &mut Vec<Cause>), obj: Value) -> Vec<String> {
        let mut c = Vec::new();
        f(&obj, None, &mut c);
        c.into_iter()
            .map(|c| format!("{}|{}", c.field, c.reason))
            .collect()
    }

    #[test]
    fn names() {
        assert!(dns1123_subdomain("a.b-c.d").is_none());
        assert!(dns1123_subdomain("A").is_some());
        assert!(dns1123_subdomain("a..b").is_some());
        assert!(dns1123_label("a.b").is_some());
        assert!(dns1035_label("1abc").is_some());
        assert!(dns1035_label("abc-1").is_none());
        assert!(qualified_name("example.com/my_key").is_none());
        assert!(qualified_name("/x").is_some());
        assert!(qualified_name("a/b/c").is_some());
        assert!(label_value("").is_none());
        assert!(label_value("-x").is_some());
        assert!(port_name("http").is_none());
        assert!(port_name("80").is_some());
    }

    #[test]
    fn ingress_needs_backend_or_rules() {
        assert_eq!(causes(ingress, json!({"spec": {}})), ["spec|FieldValueInvalid"]);
        assert_eq!(causes(ingress, json!({})), ["spec|FieldValueInvalid"]);
    }

    #[test]
    fn ingress_rules() {
        let ing = json!({"spec": {"rules": [
            {"host": "1.2.3.4", "http": {"paths": [
                {"path": "x", "pathType": "Prefix", "backend": {"service": {"name": "s", "port": {"number": 0}}}},
                {"path": "/", "backend": {"service": {"name": "s", "port": {}}}},
                {"path": "/", "pathType": "Fuzzy", "backend": {}},
            ]}},
            {"host": "*.example.com", "http": {"paths": []}},
        ], "tls": [{"hosts": ["Bad_Host"], "secretName": "tls"}]}});
        assert_eq!(
            causes(ingress, ing),
            [
                "spec.rules[0].host|FieldValueInvalid",
                "spec.rules[0].http.paths[0].path|FieldValueInvalid",
                "spec.rules[0].http.paths[0].backend.service.port.number|FieldValueInvalid",
                "spec.rules[0].http.paths[1].pathType|FieldValueRequired",
                "spec.rules[0].http.paths[1].backend.service.port|FieldValueRequired",
                "spec.rules[0].http.paths[2].pathType|FieldValueNotSupported",
                "spec.rules[0].http.paths[2].backend|FieldValueRequired",
                "spec.rules[1].http.paths|FieldValueRequired",
                "spec.tls[0].hosts[0]|FieldValueInvalid",
            ]
        );
    }

    #[test]
    fn service_ports() {
        let svc = json!({"spec": {"type": "NodePort", "ports": [
            {"port": 80}, {"port": 80, "name": "x", "protocol": "ICMP"}
        ]}});
        assert_eq!(
            causes(service, svc),
            [
                "spec.ports[0].name|FieldValueRequired",
                "spec.ports[1].protocol|FieldValueNotSupported",
            ]
        );
        assert_eq!(
            causes(service, json!({"spec": {}})),
            ["spec.ports|FieldValueRequired"]
        );
    }

    #[test]
    fn tls_secret_needs_keys() {
        let s = json!({"type": "kubernetes.io/tls", "data": {"tls.crt": ""}});
        assert_eq!(causes(secret, s), ["data[tls.key]|FieldValueRequired"]);
    }

    #[test]
    fn unknown_field_paths() {
        let input = json!({"spec": {"a": 1, "b": null, "list": [{"x": 1, "y": 2}]}, "extra": true});
        let output = json!({"spec": {"a": 1, "list": [{"x": 1}]}});
        assert_eq!(unknown_fields(&input, &output), ["spec.list[0].y", "extra"]);
    }
}
