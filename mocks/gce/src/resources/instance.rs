//! Instances: read-only through the API, created by seeding (admin API or [`crate::Config`]),
//! because instance groups and NEGs may only hold instances that exist.

use std::net::{IpAddr, Ipv4Addr};

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
    /// Alias IP ranges, canonical (`10.4.0.0/24`, a single address as `/32`).
    pub alias_ranges: Vec<String>,
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
    if !nic.alias_ranges.is_empty() {
        let ranges: Vec<Value> = nic
            .alias_ranges
            .iter()
            .map(|r| json!({ "ipCidrRange": r }))
            .collect();
        nic0["aliasIpRanges"] = Value::Array(ranges);
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

/// An alias IP range as Compute's `ipCidrRange` takes it: an IPv4 CIDR range (`10.4.0.0/24`)
/// or a single address (`10.4.0.7`, the `/32`); `None` for anything else, or a range with host
/// bits set. The `/24` form (a size Compute allocates from the subnetwork) is not modelled.
pub(crate) fn parse_cidr(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, l.parse::<u8>().ok().filter(|l| *l <= 32)?),
        None => (s, 32),
    };
    let addr: Ipv4Addr = addr.parse().ok()?;
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    (u32::from(addr) & !mask == 0).then_some((addr, len))
}

/// Whether `ip` is within the range `(base, len)`.
fn in_range(ip: IpAddr, (base, len): (Ipv4Addr, u8)) -> bool {
    let IpAddr::V4(ip) = ip else {
        return false;
    };
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    u32::from(ip) & mask == u32::from(base)
}

/// Whether `ip` is an address of the instance's primary interface: its primary internal IP, or
/// within one of its alias IP ranges.
pub(crate) fn owns_ip(obj: &Obj, ip: IpAddr) -> bool {
    if primary_ip(obj).parse::<IpAddr>().ok() == Some(ip) {
        return true;
    }
    obj.get("networkInterfaces")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(|nic| nic.get("aliasIpRanges"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("ipCidrRange").and_then(Value::as_str))
        .filter_map(parse_cidr)
        .any(|range| in_range(ip, range))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_ranges_are_cidrs_or_addresses() {
        assert_eq!(parse_cidr("10.4.0.0/24"), Some((Ipv4Addr::new(10, 4, 0, 0), 24)));
        assert_eq!(parse_cidr("10.4.0.7"), Some((Ipv4Addr::new(10, 4, 0, 7), 32)));
        assert_eq!(parse_cidr("0.0.0.0/0"), Some((Ipv4Addr::UNSPECIFIED, 0)));
        for bad in ["10.4.0.1/24", "/24", "10.4.0.0/33", "fd00::/64", "x", "10.4.0.0/"] {
            assert_eq!(parse_cidr(bad), None, "{bad}");
        }
        let range = (Ipv4Addr::new(127, 9, 0, 0), 16);
        assert!(in_range("127.9.200.1".parse().expect("ip"), range));
        assert!(!in_range("127.10.0.1".parse().expect("ip"), range));
        assert!(!in_range("::1".parse().expect("ip"), range));
    }
}
