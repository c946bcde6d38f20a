//! Forwarding rules (global and regional). `portRange` "80" reads back as "80-80"; `IPAddress`
//! may name a reserved address (by IP, URL or partial path) and always reads back as the IP;
//! without one the rule gets an ephemeral IP when it is created. `setTarget` keeps the IP.

use std::net::IpAddr;

use serde_json::Value;

use crate::errors::ApiError;
use crate::json::{Obj, check_labels, enum_field, opt_str, show};
use crate::kinds::{Key, Kind, Scope};
use crate::resources::Cx;
use crate::store::{Entry, Store};

const TARGETS: &[Kind] = &[Kind::TargetHttpProxy, Kind::TargetHttpsProxy];

/// Fields fixed at creation: a patch that changes one is refused.
const IMMUTABLE: &[&str] = &[
    "IPAddress",
    "IPProtocol",
    "portRange",
    "target",
    "loadBalancingScheme",
    "network",
    "ipVersion",
];

pub(super) fn normalize(cx: &Cx, obj: &mut Obj, old: Option<&Obj>) -> Result<Vec<Key>, ApiError> {
    opt_str(obj, "description", "resource.description")?;
    check_labels(obj, "resource.labels")?;
    let proto = enum_field(
        obj,
        "IPProtocol",
        "resource.IPProtocol",
        &["TCP", "UDP", "ESP", "AH", "SCTP", "ICMP", "L3_DEFAULT"],
        Some("TCP"),
    )?;
    enum_field(
        obj,
        "loadBalancingScheme",
        "resource.loadBalancingScheme",
        &[
            "EXTERNAL",
            "EXTERNAL_MANAGED",
            "INTERNAL",
            "INTERNAL_MANAGED",
            "INTERNAL_SELF_MANAGED",
        ],
        Some("EXTERNAL"),
    )?;
    let tier = enum_field(
        obj,
        "networkTier",
        "resource.networkTier",
        &["PREMIUM", "STANDARD"],
        Some("PREMIUM"),
    )?;
    if cx.key.scope == Scope::Global && tier.as_deref() == Some("STANDARD") {
        return Err(ApiError::invalid_field(
            "resource.networkTier",
            "STANDARD",
            "Global forwarding rules only support the PREMIUM network tier.",
        ));
    }
    enum_field(obj, "ipVersion", "resource.ipVersion", &["IPV4", "IPV6"], None)?;
    // Not used by global external load balancing, but a network named must exist.
    let network = cx.network_refs(obj, None)?;
    let target = cx
        .ref_field(obj, "target", "resource.target", TARGETS)?
        .ok_or_else(|| {
            ApiError::invalid_field(
                "resource.target",
                "",
                "No target or backend service specified for forwarding rule.",
            )
        })?;
    if proto.as_deref() != Some("TCP") {
        return Err(ApiError::invalid_field(
            "resource.IPProtocol",
            proto.as_deref().unwrap_or_default(),
            "Forwarding rules that point to target proxies must use TCP.",
        ));
    }
    let (lo, hi) = match opt_str(obj, "portRange", "resource.portRange")? {
        Some(s) => parse_port_range(s)?,
        None if target.kind == Kind::TargetHttpsProxy => (443, 443),
        None => (80, 80),
    };
    obj.insert("portRange".into(), format!("{lo}-{hi}").into());

    let mut refs = vec![target];
    refs.extend(network);
    if let Some(addr) = address(cx, obj, old)? {
        refs.push(addr);
    }
    if let Some(old) = old {
        for f in IMMUTABLE {
            if old.get(*f) != obj.get(*f) {
                let v = obj.get(*f).map(show).unwrap_or_default();
                return Err(ApiError::invalid_field(
                    &format!("resource.{f}"),
                    &v,
                    "This field cannot be changed on an existing forwarding rule.",
                ));
            }
        }
    }
    conflicts(cx, obj, (lo, hi))?;
    Ok(refs)
}

/// Resolves `IPAddress` to a numeric IP; returns the reserved address it uses, if any.
fn address(cx: &Cx, obj: &mut Obj, old: Option<&Obj>) -> Result<Option<Key>, ApiError> {
    let Some(given) = opt_str(obj, "IPAddress", "resource.IPAddress")?.map(str::to_string) else {
        return Ok(None);
    };
    if given.is_empty() {
        obj.shift_remove("IPAddress");
        return Ok(None);
    }
    let addr_coll = crate::kinds::CollKey {
        project: cx.key.project.clone(),
        scope: cx.key.scope.clone(),
        kind: Kind::Address,
    };
    if given.parse::<IpAddr>().is_ok() {
        let reserved = cx.store.collection(&addr_coll).and_then(|m| {
            m.iter()
                .find(|(_, e)| e.obj.get("address").and_then(Value::as_str) == Some(given.as_str()))
                .map(|(name, _)| addr_coll.key(name))
        });
        // An ephemeral IP the rule already holds is fine on patch.
        let own_ip = old.and_then(|o| o.get("IPAddress")).and_then(Value::as_str) == Some(given.as_str());
        return match reserved {
            Some(k) => Ok(Some(k)),
            None if own_ip => Ok(None),
            None => Err(ApiError::invalid_field(
                "resource.IPAddress",
                &given,
                "Specified IP address is not reserved in this project.",
            )),
        };
    }
    if !given.contains('/') {
        return Err(ApiError::invalid_field(
            "resource.IPAddress",
            &given,
            "Invalid IP address specified.",
        ));
    }
    let key = cx.parse_ref(&given, "resource.IPAddress", &[Kind::Address])?;
    if key.scope != cx.key.scope {
        return Err(ApiError::invalid_field(
            "resource.IPAddress",
            &given,
            "The address must be in the same scope as the forwarding rule.",
        ));
    }
    let entry = cx.lookup(&key)?;
    let ip = entry.obj.get("address").cloned().unwrap_or(Value::Null);
    obj.insert("IPAddress".into(), ip);
    Ok(Some(key))
}

/// Two rules may not share an IP and protocol with overlapping port ranges.
fn conflicts(cx: &Cx, obj: &Obj, (lo, hi): (u32, u32)) -> Result<(), ApiError> {
    let Some(ip) = obj.get("IPAddress").and_then(Value::as_str) else {
        return Ok(());
    };
    let Some(rules) = cx.store.collection(&cx.key.coll()) else {
        return Ok(());
    };
    for (name, e) in rules {
        if *name == cx.key.name || e.obj.get("IPAddress").and_then(Value::as_str) != Some(ip) {
            continue;
        }
        if e.obj.get("IPProtocol") != obj.get("IPProtocol") {
            continue;
        }
        let other = e.obj.get("portRange").and_then(Value::as_str).unwrap_or_default();
        if let Ok((olo, ohi)) = parse_port_range(other)
            && olo <= hi
            && lo <= ohi
        {
            return Err(ApiError::invalid_field(
                "resource.portRange",
                &format!("{lo}-{hi}"),
                &format!(
                    "The port range conflicts with forwarding rule '{}' on IP address {ip}.",
                    cx.key.coll().key(name).path()
                ),
            ));
        }
    }
    Ok(())
}

/// `80` or `80-90`.
fn parse_port_range(s: &str) -> Result<(u32, u32), ApiError> {
    let bad = || {
        ApiError::invalid_field(
            "resource.portRange",
            s,
            "Must be a port or a port range like 80-90.",
        )
    };
    let port = |p: &str| -> Result<u32, ApiError> {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        p.parse::<u32>()
            .ok()
            .filter(|n| (1..=65535).contains(n))
            .ok_or_else(bad)
    };
    let (lo, hi) = match s.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => {
            let p = port(s)?;
            (p, p)
        }
    };
    if lo > hi {
        return Err(bad());
    }
    Ok((lo, hi))
}

/// `setTarget`: the new target must be of the same type as the current one.
pub(super) fn set_target(cx: &Cx, entry: &mut Entry, body: &Obj) -> Result<(), ApiError> {
    let s = opt_str(body, "target", "target")?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::invalid_field("target", "", "A target must be specified."))?;
    let new = cx.parse_ref(s, "target", TARGETS)?;
    let current = entry
        .refs
        .iter()
        .find(|k| TARGETS.contains(&k.kind))
        .map(|k| k.kind);
    if current.is_some_and(|k| k != new.kind) {
        return Err(ApiError::invalid_field(
            "target",
            s,
            "The new target must be of the same type as the current target.",
        ));
    }
    entry.obj.insert("target".into(), new.link().into());
    entry.refs.retain(|k| !TARGETS.contains(&k.kind));
    entry.refs.push(new);
    Ok(())
}

/// An ephemeral IP for a rule created without one.
pub(super) fn allocate(store: &mut Store, obj: &mut Obj) {
    if obj.get("IPAddress").and_then(Value::as_str).is_some() {
        return;
    }
    let v6 = obj.get("ipVersion").and_then(Value::as_str) == Some("IPV6");
    let ip = if v6 {
        store.allocate_ipv6()
    } else {
        store.allocate_external_ip()
    };
    obj.insert("IPAddress".into(), ip.into());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges_normalise() {
        assert_eq!(parse_port_range("80").ok(), Some((80, 80)));
        assert_eq!(parse_port_range("80-90").ok(), Some((80, 90)));
        for bad in ["", "x", "90-80", "0", "70000", "80-", "-80"] {
            assert!(parse_port_range(bad).is_err(), "{bad}");
        }
    }
}
