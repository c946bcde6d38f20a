//! Applying YAML manifests through the Kubernetes API (server-side apply), for the sandbox.

use anyhow::Context as _;
use kube::Client;
use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery::Scope;
use serde_json::Value;

/// The objects of a multi-document YAML text, `List`s expanded, empty documents dropped.
pub fn parse(text: &str, origin: &str) -> anyhow::Result<Vec<Value>> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(text).map_err(|e| anyhow::anyhow!("{origin}: not valid YAML: {e}"))?;
    let mut out = Vec::new();
    for doc in docs.into_iter().filter(|d| !d.is_null()) {
        match doc.get("kind").and_then(Value::as_str) {
            Some(k) if k.ends_with("List") => out.extend(
                doc.get("items")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            ),
            _ => out.push(doc),
        }
    }
    Ok(out)
}

/// Server-side applies one object; returns `kind/name` for messages.
pub async fn apply(client: &Client, object: &Value, field_manager: &str) -> anyhow::Result<String> {
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .context("an object has no apiVersion")?;
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .context("an object has no kind")?;
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .context("an object has no metadata.name")?;
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (resource, capabilities) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .with_context(|| format!("the cluster does not serve {api_version} {kind}"))?;
    let api: Api<DynamicObject> = match capabilities.scope {
        Scope::Cluster => Api::all_with(client.clone(), &resource),
        Scope::Namespaced => {
            let namespace = object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("default");
            Api::namespaced_with(client.clone(), namespace, &resource)
        }
    };
    api.patch(
        name,
        &PatchParams::apply(field_manager).force(),
        &Patch::Apply(object),
    )
    .await
    .with_context(|| format!("applying {kind} {name}"))?;
    Ok(format!("{}/{name}", kind.to_lowercase()))
}
