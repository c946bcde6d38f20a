//! Rules across resources, checked on the object a mutation would store, after its own fields,
//! references and quota were checked:
//!
//! - load-balancing scheme consistency along forwarding rule → target proxy → URL map →
//!   backend services (synchronous `invalid`, as Compute answers a forwarding rule insert);
//! - an instance in at most one load-balanced instance group (inside the operation,
//!   `INSTANCE_IN_MULTIPLE_LOAD_BALANCED_IGS`, as Compute reports it today).
//!
//! Where each rule and its wording come from: the crate documentation, "Semantics and errors".

use std::collections::BTreeMap;

use serde_json::Value;

use crate::errors::ApiError;
use crate::json::Obj;
use crate::kinds::{Key, Kind};
use crate::mutation::{CustomVerb, Verb};
use crate::resources::Cx;
use crate::store::{Entry, Members};

/// Checks the rules that involve other resources than the one changed.
pub(crate) fn check(cx: &Cx, verb: Verb, entry: &Entry) -> Result<(), ApiError> {
    match cx.key.kind {
        Kind::UrlMap => url_map_schemes(cx, entry),
        Kind::TargetHttpProxy | Kind::TargetHttpsProxy => proxy_scheme(cx, verb, entry),
        Kind::ForwardingRule => forwarding_rule_scheme(cx, entry),
        // Compute validates group membership inside the operation.
        Kind::BackendService => cx.in_operation(|| backend_service_groups(cx, entry)),
        Kind::InstanceGroup if verb == Verb::Custom(CustomVerb::AddInstances) => {
            cx.in_operation(|| added_instances(cx, entry))
        }
        _ => Ok(()),
    }
}

fn is_proxy(kind: Kind) -> bool {
    matches!(kind, Kind::TargetHttpProxy | Kind::TargetHttpsProxy)
}

/// A resource's `loadBalancingScheme` (written with its default `EXTERNAL` on create).
fn scheme_of(obj: &Obj) -> &str {
    obj.get("loadBalancingScheme")
        .and_then(Value::as_str)
        .unwrap_or("EXTERNAL")
}

/// The schemes of the backend services among `refs`, each with the first service that has it.
fn service_schemes(cx: &Cx, refs: &[Key]) -> BTreeMap<String, Key> {
    let mut out = BTreeMap::new();
    for k in refs.iter().filter(|k| k.kind == Kind::BackendService) {
        if let Some(e) = cx.store.get(k) {
            out.entry(scheme_of(&e.obj).to_string())
                .or_insert_with(|| k.clone());
        }
    }
    out
}

/// The scheme of the backend services a stored URL map reaches; `None` when it reaches none
/// (a redirect-only map), which goes with any scheme. A stored map reaches one scheme (checked
/// on every write of the map, and a backend service's scheme never changes): its first backend
/// service tells.
fn stored_map_scheme<'s>(cx: &Cx<'s>, map: &Key) -> Option<&'s str> {
    let entry = cx.store.get(map)?;
    entry
        .refs
        .iter()
        .filter(|k| k.kind == Kind::BackendService)
        .find_map(|k| cx.store.get(k))
        .map(|e| scheme_of(&e.obj))
}

/// The URL map a stored proxy uses.
fn url_map_of(cx: &Cx, proxy: &Key) -> Option<Key> {
    let entry = cx.store.get(proxy)?;
    entry.refs.iter().find(|k| k.kind == Kind::UrlMap).cloned()
}

/// Compute's words for a forwarding rule whose scheme differs from its backend services'.
fn mismatch(
    field: &str,
    value: &str,
    rule_scheme: &str,
    service_scheme: &str,
    rule: Option<&Key>,
) -> ApiError {
    let of_rule = rule
        .map(|r| format!(" of forwarding rule '{}'", r.path()))
        .unwrap_or_default();
    ApiError::invalid_field(
        field,
        value,
        &format!(
            "Load balancing scheme {rule_scheme}{of_rule} does not match the backend service load \
             balancing scheme {service_scheme}."
        ),
    )
}

/// The forwarding rules using `proxy` must all have `scheme`.
fn rules_of_proxy_match(
    cx: &Cx,
    proxy: &Key,
    scheme: &str,
    field: &str,
    value: &str,
) -> Result<(), ApiError> {
    for rule in cx
        .store
        .referrers(proxy)
        .filter(|k| k.kind == Kind::ForwardingRule)
    {
        if let Some(e) = cx.store.get(rule) {
            let rule_scheme = scheme_of(&e.obj);
            if rule_scheme != scheme {
                return Err(mismatch(field, value, rule_scheme, scheme, Some(rule)));
            }
        }
    }
    Ok(())
}

/// A URL map reaches backend services of one scheme, and that scheme is the scheme of every
/// forwarding rule whose proxy uses the map.
fn url_map_schemes(cx: &Cx, entry: &Entry) -> Result<(), ApiError> {
    let schemes = service_schemes(cx, &entry.refs);
    if schemes.len() > 1 {
        let list: Vec<String> = schemes
            .iter()
            .map(|(scheme, k)| format!("'{}' is {scheme}", k.path()))
            .collect();
        return Err(ApiError::invalid_field(
            "resource",
            &cx.key.path(),
            &format!(
                "A URL map cannot reference backend services of different load balancing schemes: {}.",
                list.join(", ")
            ),
        ));
    }
    let Some(scheme) = schemes.into_keys().next() else {
        return Ok(());
    };
    let link = cx.key.link();
    for proxy in cx.store.referrers(cx.key).filter(|k| is_proxy(k.kind)) {
        rules_of_proxy_match(cx, proxy, &scheme, "resource", &link)?;
    }
    Ok(())
}

/// A proxy used by forwarding rules may only switch to a URL map of their scheme.
fn proxy_scheme(cx: &Cx, verb: Verb, entry: &Entry) -> Result<(), ApiError> {
    let Some(map) = entry.refs.iter().find(|k| k.kind == Kind::UrlMap) else {
        return Ok(());
    };
    let Some(scheme) = stored_map_scheme(cx, map) else {
        return Ok(());
    };
    let field = match verb {
        Verb::Custom(CustomVerb::SetUrlMap) => "urlMap",
        _ => "resource.urlMap",
    };
    rules_of_proxy_match(cx, cx.key, scheme, field, &map.link())
}

/// A forwarding rule's scheme is the scheme of the backend services its proxy's URL map
/// reaches.
fn forwarding_rule_scheme(cx: &Cx, entry: &Entry) -> Result<(), ApiError> {
    let Some(proxy) = entry.refs.iter().find(|k| is_proxy(k.kind)) else {
        return Ok(());
    };
    let Some(scheme) = url_map_of(cx, proxy).and_then(|m| stored_map_scheme(cx, &m)) else {
        return Ok(());
    };
    let rule_scheme = scheme_of(&entry.obj);
    if rule_scheme != scheme {
        // Compute's exact answer to such an insert names this field, with an empty value.
        return Err(mismatch("resource.backendService", "", rule_scheme, scheme, None));
    }
    Ok(())
}

/// Compute's words for an instance that would be in two load-balanced groups.
fn in_two_groups(group: &Key, instance: &str) -> ApiError {
    let instance = group.sibling(Kind::Instance, instance);
    ApiError::new(
        400,
        "instanceInMultipleLoadBalancedIgs",
        format!(
            "Validation failed for instance '{}': instance may belong to at most one load-balanced \
             instance group",
            instance.path()
        ),
    )
}

/// Whether a group is used by a backend service other than `except`.
fn balanced_by_other(cx: &Cx, group: &Key, except: &Key) -> bool {
    cx.store
        .referrers(group)
        .any(|r| r.kind == Kind::BackendService && r != except)
}

/// The first of `names` (instances of `group`) that another load-balanced group also holds:
/// for each, only the groups holding it are looked at.
fn shared_instance<'n>(
    cx: &Cx,
    group: &Key,
    names: impl IntoIterator<Item = &'n String>,
    balanced: impl Fn(&Key) -> bool,
) -> Option<&'n String> {
    names.into_iter().find(|n| {
        cx.store
            .groups_holding(&group.sibling(Kind::Instance, n))
            .any(|other| other != group && balanced(other))
    })
}

/// A backend service makes its instance groups load-balanced: none of their instances may be
/// in another load-balanced group (one used by any backend service, this one included).
fn backend_service_groups(cx: &Cx, entry: &Entry) -> Result<(), ApiError> {
    let groups: Vec<&Key> = entry
        .refs
        .iter()
        .filter(|k| k.kind == Kind::InstanceGroup)
        .collect();
    for group in &groups {
        let Some(Members::Instances(names)) = cx.store.get(group).map(|e| &e.members) else {
            continue;
        };
        let balanced = |k: &Key| groups.contains(&k) || balanced_by_other(cx, k, cx.key);
        if let Some(name) = shared_instance(cx, group, names, balanced) {
            return Err(in_two_groups(group, name));
        }
    }
    Ok(())
}

/// Instances added to a load-balanced group may not be in another load-balanced group.
fn added_instances(cx: &Cx, entry: &Entry) -> Result<(), ApiError> {
    let group = cx.key;
    let is_balanced = cx.store.referrers(group).any(|r| r.kind == Kind::BackendService);
    if !is_balanced {
        return Ok(());
    }
    let Members::Instances(now) = &entry.members else {
        return Ok(());
    };
    let before = match cx.store.get(group).map(|e| &e.members) {
        Some(Members::Instances(s)) => Some(s),
        _ => None,
    };
    let added = now.iter().filter(|n| before.is_none_or(|b| !b.contains(*n)));
    let balanced = |k: &Key| cx.store.referrers(k).any(|r| r.kind == Kind::BackendService);
    match shared_instance(cx, group, added, balanced) {
        Some(name) => Err(in_two_groups(group, name)),
        None => Ok(()),
    }
}
