//! A minimal OpenAPI v3 description, just enough for kubectl.
//!
//! kubectl 1.32 validates `create`/`apply` input with `--validate=strict` by default. It first asks
//! the OpenAPI v3 document of the object's group/version whether the PATCH operation for that kind
//! accepts the `fieldValidation` query parameter; when it does, kubectl leaves validation to the
//! server (sending `fieldValidation=Strict`, which this server honours by rejecting unknown fields)
//! and never needs schemas. So each document lists the paths, their operations tagged with
//! `x-kubernetes-group-version-kind`, and the query parameters, with empty schemas.
//!
//! The PATCH request bodies deliberately do not list `application/strategic-merge-patch+json`:
//! kubectl then computes client-side apply patches from its compiled-in Go types, which carry the
//! exact patch strategies, instead of from schemas this document does not have.

use serde_json::{Map, Value, json};

use crate::kinds::{KINDS, group_versions};

/// `api/v1` or `apis/GROUP/VERSION`: the key of a group/version in the root document.
fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// FNV-1a, to give each document a stable `hash=` for kubectl's cache.
fn hash(s: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016X}")
}

/// `/openapi/v3`: where each group/version's document lives.
pub(crate) fn root() -> Value {
    let mut paths = Map::new();
    for (g, v) in group_versions() {
        let doc = document(g, v).map(|d| d.to_string()).unwrap_or_default();
        let path = gv_path(g, v);
        paths.insert(
            path.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={}", hash(&doc))}),
        );
    }
    json!({"paths": paths})
}

fn query_param(name: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}})
}

fn path_param(name: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "schema": {"type": "string", "uniqueItems": true}})
}

/// An operation; kubectl looks for query parameters on the operation itself.
fn operation(action: &str, gvk: &Value, body_types: &[&str], params: &[Value]) -> Value {
    let mut op = json!({
        "operationId": action,
        "parameters": params,
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
    });
    if !body_types.is_empty() {
        let content: Map<String, Value> = body_types
            .iter()
            .map(|t| ((*t).to_string(), json!({"schema": {}})))
            .collect();
        op["requestBody"] = json!({"content": content, "required": true});
    }
    op
}

const WRITE_PARAMS: &[&str] = &["dryRun", "fieldManager", "fieldValidation", "pretty"];
const PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
];

/// `/openapi/v3/api/v1` or `/openapi/v3/apis/GROUP/VERSION`, if served.
pub(crate) fn document(group: &str, version: &str) -> Option<Value> {
    let mut paths = Map::new();
    for k in KINDS.iter().filter(|k| k.group == group && k.version == version) {
        let gvk = json!({"group": group, "version": version, "kind": k.kind});
        let prefix = if k.namespaced {
            format!(
                "/{}/namespaces/{{namespace}}/{}",
                gv_path(group, version),
                k.resource
            )
        } else {
            format!("/{}/{}", gv_path(group, version), k.resource)
        };
        let scope: Vec<Value> = if k.namespaced {
            vec![path_param("namespace")]
        } else {
            Vec::new()
        };
        let mut collection_params = scope.clone();
        collection_params.extend(WRITE_PARAMS.iter().map(|p| query_param(p)));
        let c = &collection_params;
        paths.insert(
            prefix.clone(),
            json!({
                "get": operation("list", &gvk, &[], c),
                "post": operation("post", &gvk, &["*/*"], c),
                "delete": operation("deletecollection", &gvk, &[], c),
            }),
        );
        let mut item_params = scope.clone();
        item_params.push(path_param("name"));
        item_params.extend(WRITE_PARAMS.iter().map(|p| query_param(p)));
        item_params.push(query_param("force"));
        let i = &item_params;
        let item = json!({
            "get": operation("get", &gvk, &[], i),
            "put": operation("put", &gvk, &["*/*"], i),
            "patch": operation("patch", &gvk, PATCH_TYPES, i),
            "delete": operation("delete", &gvk, &[], i),
        });
        paths.insert(format!("{prefix}/{{name}}"), item.clone());
        if k.status {
            paths.insert(format!("{prefix}/{{name}}/status"), item);
        }
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (fake-kube)", "version": format!("v{}.{}.0", crate::discovery::MAJOR, crate::discovery::MINOR)},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_declare_field_validation_on_patch() {
        let doc = document("networking.k8s.io", "v1").unwrap();
        let item = &doc["paths"]["/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses/{name}"];
        assert_eq!(
            item["patch"]["x-kubernetes-group-version-kind"]["kind"],
            "Ingress"
        );
        let params = item["patch"]["parameters"].as_array().unwrap();
        assert!(
            params
                .iter()
                .any(|p| p["name"] == "fieldValidation" && p["in"] == "query")
        );
        let root = root();
        assert!(
            root["paths"]["api/v1"]["serverRelativeURL"]
                .as_str()
                .unwrap()
                .starts_with("/openapi/v3/api/v1?hash=")
        );
        assert!(document("batch", "v1").is_none());
    }
}
