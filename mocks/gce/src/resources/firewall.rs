//! Firewall rules: `update` replaces the rule, `patch` merges; no fingerprint.

use std::net::IpAddr;

use serde_json::{Value, json};

use crate::errors::ApiError;
use crate::json::{
    Obj, as_obj, as_str, default_value, enum_field, int_in_range, opt_array, opt_bool, opt_str,
};
use crate::kinds::Key;
use crate::resources::Cx;

const PROTOCOLS: &[&str] = &["tcp", "udp", "icmp", "esp", "ah", "sctp", "ipip", "all"];

pub(super) fn normalize(cx: &Cx, obj: &mut Obj) -> Result<Vec<Key>, ApiError> {
    opt_str(obj, "description", "resource.description")?;
    // "If not specified when creating a firewall rule, the default network is used:
    // global/networks/default" (discovery document, Firewall.network); it must exist.
    let network = cx.network_field(obj, Some("global/networks/default"))?;
    let direction = enum_field(
        obj,
        "direction",
        "resource.direction",
        &["INGRESS", "EGRESS"],
        Some("INGRESS"),
    )?;
    int_in_range(obj, "priority", "resource.priority", Some(1000), 0, 65535)?;
    default_value(obj, "disabled", false.into());
    opt_bool(obj, "disabled", "resource.disabled")?;
    let allowed = opt_array(obj, "allowed", "resource.allowed")?.len();
    let denied = opt_array(obj, "denied", "resource.denied")?.len();
    if (allowed == 0) == (denied == 0) {
        return Err(ApiError::invalid_field(
            "resource.allowed",
            "",
            "Exactly one of allowed or denied must be specified.",
        ));
    }
    for list in ["allowed", "denied"] {
        for (i, rule) in opt_array(obj, list, &format!("resource.{list}"))?
            .iter()
            .enumerate()
        {
            check_rule(
                as_obj(rule, &format!("resource.{list}[{i}]"))?,
                &format!("resource.{list}[{i}]"),
            )?;
        }
    }
    for f in ["sourceRanges", "destinationRanges"] {
        for (i, r) in opt_array(obj, f, &format!("resource.{f}"))?.iter().enumerate() {
            let field = format!("resource.{f}[{i}]");
            let r = as_str(r, &field)?;
            if !valid_cidr(r) {
                return Err(ApiError::invalid_field(
                    &field,
                    r,
                    "Must be a CIDR address range that is contained in the address space.",
                ));
            }
        }
    }
    for f in [
        "sourceTags",
        "targetTags",
        "sourceServiceAccounts",
        "targetServiceAccounts",
    ] {
        for (i, t) in opt_array(obj, f, &format!("resource.{f}"))?.iter().enumerate() {
            as_str(t, &format!("resource.{f}[{i}]"))?;
        }
    }
    let has_source = ["sourceRanges", "sourceTags", "sourceServiceAccounts"]
        .iter()
        .any(|f| {
            obj.get(*f)
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty())
        });
    if direction.as_deref() == Some("INGRESS") && !has_source {
        obj.insert("sourceRanges".into(), json!(["0.0.0.0/0"]));
    }
    default_value(obj, "logConfig", json!({"enable": false}));
    Ok(network.into_iter().collect())
}

fn check_rule(rule: &Obj, field: &str) -> Result<(), ApiError> {
    let pf = format!("{field}.IPProtocol");
    let proto = opt_str(rule, "IPProtocol", &pf)?
        .ok_or_else(|| ApiError::invalid_field(&pf, "", "A protocol must be specified."))?;
    let numeric = proto.parse::<u8>().is_ok();
    if !numeric && !PROTOCOLS.contains(&proto) {
        return Err(ApiError::invalid_field(&pf, proto, "Unknown protocol."));
    }
    let ports = opt_array(rule, "ports", &format!("{field}.ports"))?;
    if !ports.is_empty() && !matches!(proto, "tcp" | "udp" | "sctp" | "all") {
        return Err(ApiError::invalid_field(
            &format!("{field}.ports"),
            proto,
            "Ports can only be specified for tcp, udp, sctp and all.",
        ));
    }
    for (i, p) in ports.iter().enumerate() {
        let f = format!("{field}.ports[{i}]");
        let p = as_str(p, &f)?;
        if !valid_port_spec(p) {
            return Err(ApiError::invalid_field(
                &f,
                p,
                "Must be a port or a port range like 30000-32767.",
            ));
        }
    }
    Ok(())
}

fn valid_port_spec(s: &str) -> bool {
    let port = |p: &str| {
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u32>().is_ok_and(|n| n <= 65535)
    };
    match s.split_once('-') {
        Some((a, b)) => port(a) && port(b) && a.parse::<u32>().ok() <= b.parse::<u32>().ok(),
        None => port(s),
    }
}

/// `10.0.0.0/8`, `::/0`, or a bare address.
fn valid_cidr(s: &str) -> bool {
    let (ip, len) = match s.split_once('/') {
        Some((ip, len)) => (ip, Some(len)),
        None => (s, None),
    };
    let Ok(ip) = ip.parse::<IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    len.is_none_or(|l| l.parse::<u8>().is_ok_and(|n| n <= max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_and_port_specs() {
        assert!(valid_cidr("130.211.0.0/22"));
        assert!(valid_cidr("35.191.0.0/16"));
        assert!(valid_cidr("::/0"));
        assert!(valid_cidr("10.0.0.1"));
        assert!(!valid_cidr("10.0.0.0/33"));
        assert!(!valid_cidr("nope/8"));
        assert!(valid_port_spec("80"));
        assert!(valid_port_spec("30000-32767"));
        assert!(!valid_port_spec("32767-30000"));
        assert!(!valid_port_spec("70000"));
    }
}
