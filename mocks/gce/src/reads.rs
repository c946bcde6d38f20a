//! Calls that change nothing: get, list, operations get/list, zones, and the non-mutating POSTs.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::config::Limits;
use crate::errors::ApiError;
use crate::json::Obj;
use crate::kinds::{CollKey, Key, Kind, LINK_BASE, Scope, region_of_zone};
use crate::list::{ListParams, envelope};
use crate::operations::OpKey;
use crate::resources::{self, Cx};
use crate::store::Store;

/// `GET` of one resource.
pub(crate) fn get(store: &Store, key: &Key) -> Result<Obj, ApiError> {
    store
        .render_key(key)
        .ok_or_else(|| ApiError::not_found(&key.path()))
}

/// `GET` of a collection.
pub(crate) fn list(store: &Store, coll: &CollKey, params: &ListParams) -> Result<Obj, ApiError> {
    let items = store.entries(coll).map(|(name, e)| (name, (name, e)));
    let (page, next) = params.page_by(items, |(name, e)| ((), store.render(&coll.key(name), &e)))?;
    let items = page.into_iter().map(|((), v)| v).collect();
    Ok(envelope(
        &coll.kind.wire_list_kind(),
        &coll.path(),
        &coll.link(),
        items,
        next,
    ))
}

/// `GET .../operations/{name}`.
pub(crate) fn get_operation(store: &Store, key: &OpKey) -> Result<Obj, ApiError> {
    store
        .ops
        .get(key)
        .map(|e| e.obj.clone())
        .ok_or_else(|| ApiError::not_found(&key.path()))
}

/// `GET .../operations`.
pub(crate) fn list_operations(
    store: &Store,
    project: &str,
    scope: &Scope,
    params: &ListParams,
) -> Result<Obj, ApiError> {
    let items = store
        .ops
        .list(project, scope)
        .into_iter()
        .flatten()
        .map(|(name, e)| (name.clone(), e.obj.clone()));
    let (items, next) = params.page(items)?;
    let coll = CollKey {
        project: project.to_string(),
        scope: scope.clone(),
        kind: Kind::Operation,
    };
    Ok(envelope(
        &Kind::Operation.wire_list_kind(),
        &coll.path(),
        &coll.link(),
        items,
        next,
    ))
}

fn zone_json(project: &str, zone: &str) -> Obj {
    // A stable id per zone name, so that reads agree with each other.
    let id = crate::ids::stable_id(zone);
    let mut o = Obj::new();
    o.insert("kind".into(), "compute#zone".into());
    o.insert("id".into(), id.to_string().into());
    o.insert("creationTimestamp".into(), "1969-12-31T16:00:00.000-08:00".into());
    o.insert("name".into(), zone.into());
    o.insert("description".into(), zone.into());
    o.insert("status".into(), "UP".into());
    o.insert(
        "region".into(),
        format!("{LINK_BASE}projects/{project}/regions/{}", region_of_zone(zone)).into(),
    );
    o.insert(
        "selfLink".into(),
        format!("{LINK_BASE}projects/{project}/zones/{zone}").into(),
    );
    o.insert("supportsPzs".into(), false.into());
    o
}

/// `GET .../zones/{zone}`.
pub(crate) fn zone(store: &Store, project: &str, zone: &str) -> Result<Obj, ApiError> {
    if !store.zones.contains(zone) {
        return Err(ApiError::not_found(&format!("projects/{project}/zones/{zone}")));
    }
    Ok(zone_json(project, zone))
}

/// `GET .../zones`.
pub(crate) fn zones(store: &Store, project: &str, params: &ListParams) -> Result<Obj, ApiError> {
    let items = store.zones.iter().map(|z| (z.clone(), zone_json(project, z)));
    let (items, next) = params.page(items)?;
    Ok(envelope(
        "compute#zoneList",
        &format!("projects/{project}/zones"),
        &format!("{LINK_BASE}projects/{project}/zones"),
        items,
        next,
    ))
}

/// `GET projects/p/aggregated/{instanceGroups|instances|networkEndpointGroups}`: the project's
/// resources of `kind` across scopes, paged as one list (`maxResults` counts resources, not
/// scopes), in `items` keyed by scope (`zones/z`; for instance groups and NEGs also
/// `regions/r`, where managed regional groups and regional NEGs live). A scope with nothing on
/// this page carries the `NO_RESULTS_ON_PAGE` warning instead, as Compute answers
/// (forseti-security's recorded responses, `tests/common/gcp_api/test_data/fake_compute_responses.py`).
/// NEGs: `compute#networkEndpointGroupAggregatedList` of `NetworkEndpointGroupsScopedList`
/// (`{networkEndpointGroups: […]}` or `{warning}`), the API reference's
/// `networkEndpointGroups.aggregatedList`; global NEGs are not modelled, so there is no
/// `global` key.
pub(crate) fn aggregated_list(
    store: &Store,
    project: &str,
    kind: Kind,
    params: &ListParams,
) -> Result<Obj, ApiError> {
    let mut scopes: BTreeSet<String> = store.zones.iter().map(|z| format!("zones/{z}")).collect();
    if matches!(kind, Kind::InstanceGroup | Kind::NetworkEndpointGroup) {
        scopes.extend(
            store
                .zones
                .iter()
                .map(|z| format!("regions/{}", region_of_zone(z))),
        );
    }
    // The project's collections of `kind` in scope order, chained into one list in (scope,
    // name) order; only the page is rendered.
    let mut colls: Vec<_> = store
        .all()
        .filter(|(c, _)| c.project == project && c.kind == kind)
        .map(|(c, entries)| (c, c.scope.path(), entries))
        .collect();
    colls.sort_by(|a, b| a.1.cmp(&b.1));
    scopes.extend(colls.iter().map(|(_, scope, _)| scope.clone()));
    let items = colls.iter().flat_map(|(coll, scope, entries)| {
        // \u{1} sorts below every character of a name.
        entries
            .iter()
            .map(move |(name, e)| (format!("{scope}\u{1}{name}"), (*coll, scope, name, e)))
    });
    let (page, next) = params.page_by(items, |(coll, scope, name, e)| {
        (scope, store.render(&coll.key(name), e))
    })?;
    let mut by_scope: BTreeMap<&String, Vec<Value>> = BTreeMap::new();
    for (scope, v) in page {
        by_scope.entry(scope).or_default().push(v);
    }
    let field = kind.collection();
    let mut items = Obj::new();
    for scope in scopes {
        let mut scoped = Obj::new();
        match by_scope.remove(&scope) {
            Some(list) => {
                scoped.insert(field.into(), Value::Array(list));
            }
            None => {
                scoped.insert(
                    "warning".into(),
                    serde_json::json!({
                        "code": "NO_RESULTS_ON_PAGE",
                        "message": format!("There are no results for scope '{scope}' on this page."),
                        "data": [{"key": "scope", "value": scope}],
                    }),
                );
            }
        }
        items.insert(scope, Value::Object(scoped));
    }
    let path = format!("projects/{project}/aggregated/{field}");
    let mut o = Obj::new();
    o.insert(
        "kind".into(),
        format!("compute#{}AggregatedList", kind.singular()).into(),
    );
    o.insert("id".into(), path.clone().into());
    o.insert("items".into(), Value::Object(items));
    if let Some(t) = next {
        o.insert("nextPageToken".into(), t.into());
    }
    o.insert("selfLink".into(), format!("{LINK_BASE}{path}").into());
    Ok(o)
}

/// `POST .../instanceGroups/{name}/listInstances` and
/// `POST .../networkEndpointGroups/{name}/listNetworkEndpoints`.
pub(crate) fn list_members(
    store: &Store,
    key: &Key,
    body: &Obj,
    params: &ListParams,
    probed: Option<&crate::dataplane::HealthTable>,
) -> Result<Obj, ApiError> {
    let (items, kind, verb) = if key.kind == Kind::InstanceGroup {
        (
            resources::list_instances(store, key, body)?,
            "compute#instanceGroupsListInstances",
            "listInstances",
        )
    } else {
        (
            resources::list_endpoints(store, key, body, probed)?,
            "compute#networkEndpointGroupsListNetworkEndpoints",
            "listNetworkEndpoints",
        )
    };
    let (items, next) = params.page(items.into_iter())?;
    Ok(envelope(
        kind,
        &format!("{}/{verb}", key.path()),
        &format!("{}/{verb}", key.link()),
        items,
        next,
    ))
}

/// `POST .../backendServices/{name}/getHealth`.
pub(crate) fn get_health(
    store: &Store,
    key: &Key,
    body: &Obj,
    probed: Option<&crate::dataplane::HealthTable>,
) -> Result<Obj, ApiError> {
    resources::get_health(store, key, body, probed)
}

/// `POST .../urlMaps/{name}/validate`.
pub(crate) fn validate_url_map(
    store: &Store,
    limits: &Limits,
    key: &Key,
    body: &Obj,
) -> Result<Obj, ApiError> {
    get(store, key)?;
    let cx = Cx {
        store,
        limits,
        key,
        own: None,
    };
    resources::url_map::validate(&cx, body)
}

/// `GET .../sslPolicies/listAvailableFeatures`.
pub(crate) fn ssl_features() -> Obj {
    resources::ssl_policy::available_features()
}

/// Resolves a numeric id in a path to the resource's name (the real API accepts both).
pub(crate) fn resolve_id(store: &Store, key: &mut Key) {
    if key.name.is_empty() || !key.name.bytes().all(|b| b.is_ascii_digit()) {
        return;
    }
    let found = store
        .entries(&key.coll())
        .find(|(_, e)| e.obj.get("id").and_then(Value::as_str) == Some(key.name.as_str()))
        .map(|(n, _)| n.to_string());
    if let Some(name) = found {
        key.name = name;
    }
}
