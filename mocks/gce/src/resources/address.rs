//! Addresses (global and regional): reserved IPs that forwarding rules use. `status` and
//! `users` are computed on read from the forwarding rules that reference the address.

use std::net::IpAddr;

use crate::errors::ApiError;
use crate::json::{Obj, check_labels, enum_field, opt_str};
use crate::kinds::{Key, Scope};
use crate::resources::Cx;
use crate::store::Store;

pub(super) fn normalize(cx: &Cx, obj: &mut Obj) -> Result<Vec<Key>, ApiError> {
    check_labels(obj, "resource.labels")?;
    opt_str(obj, "description", "resource.description")?;
    enum_field(
        obj,
        "addressType",
        "resource.addressType",
        &["EXTERNAL", "INTERNAL"],
        Some("EXTERNAL"),
    )?;
    enum_field(obj, "ipVersion", "resource.ipVersion", &["IPV4", "IPV6"], None)?;
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
            "Global addresses only support the PREMIUM network tier.",
        ));
    }
    if let Some(ip) = opt_str(obj, "address", "resource.address")?
        && ip.parse::<IpAddr>().is_err()
    {
        return Err(ApiError::invalid_field(
            "resource.address",
            ip,
            "Invalid IP address specified.",
        ));
    }
    Ok(Vec::new())
}

/// Reserves an IP when the client named none.
pub(super) fn allocate(store: &mut Store, obj: &mut Obj) {
    if obj.get("address").and_then(|v| v.as_str()).is_some() {
        return;
    }
    let internal = obj.get("addressType").and_then(|v| v.as_str()) == Some("INTERNAL");
    let v6 = obj.get("ipVersion").and_then(|v| v.as_str()) == Some("IPV6");
    let ip = if internal {
        store.allocate_internal_ip()
    } else if v6 {
        store.allocate_ipv6()
    } else {
        store.allocate_external_ip()
    };
    obj.insert("address".into(), ip.into());
}
