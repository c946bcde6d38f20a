//! Project resource quotas (`QUOTA_EXCEEDED`), per project and, for regional and zonal
//! collections, per region.
//!
//! Compute reports an exceeded resource quota through the operation of the insert: the insert
//! is accepted, and its operation ends DONE with `error.errors[{code: "QUOTA_EXCEEDED",
//! message: "Quota 'BACKEND_SERVICES' exceeded.  Limit: 5.0 globally.", errorDetails:
//! [{quotaInfo}]}]` and `httpErrorStatusCode` 403. Sources: the crate documentation,
//! "Semantics and errors".

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::errors::ApiError;
use crate::kinds::{Key, Scope, region_of_zone};
use crate::store::Store;

/// Where a quota is counted: the project (global resources) or one region of it (regional
/// resources, and zonal ones by the region of their zone).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Area<'a> {
    Global,
    Region(&'a str),
}

fn area(scope: &Scope) -> Area<'_> {
    match scope {
        Scope::Global => Area::Global,
        Scope::Region(r) => Area::Region(r),
        Scope::Zone(z) => Area::Region(region_of_zone(z)),
    }
}

/// Checks the quota set on the collection of `key` (by its discovery name: `backendServices`,
/// `globalForwardingRules`, `instanceGroups`, ...) against the resources of that kind stored in
/// the same project and the same area. Called when the insert's operation completes, so the
/// insert itself is not stored yet and other running inserts do not count.
pub(crate) fn check(store: &Store, quotas: &BTreeMap<String, u64>, key: &Key) -> Result<(), ApiError> {
    let Some(&limit) = quotas.get(key.api_name()) else {
        return Ok(());
    };
    let here = area(&key.scope);
    let used: usize = store
        .all()
        .filter(|(c, _)| c.project == key.project && c.kind == key.kind && area(&c.scope) == here)
        .map(|(_, m)| m.len())
        .sum::<usize>()
        // The networks a project starts with count before they are stored.
        + store.virtual_count(&key.coll());
    if (used as u64) < limit {
        return Ok(());
    }
    let metric = key.kind.quota_metric();
    let mut info = Map::new();
    info.insert(
        "metricName".into(),
        format!("compute.googleapis.com/{}", metric.to_ascii_lowercase()).into(),
    );
    let where_ = match here {
        Area::Global => {
            info.insert(
                "limitName".into(),
                format!("{}-per-project", metric.replace('_', "-")).into(),
            );
            "globally".to_string()
        }
        Area::Region(r) => {
            info.insert(
                "limitName".into(),
                format!("{}-per-project-region", metric.replace('_', "-")).into(),
            );
            info.insert("dimensions".into(), json!({ "region": r }));
            format!("in region {r}")
        }
    };
    info.insert("limit".into(), json!(limit));
    Err(ApiError::quota_exceeded(&metric, limit, &where_)
        .with_details(vec![json!({ "quotaInfo": Value::Object(info) })]))
}
