//! The cluster's identity in cloud resource names, kept in a ConfigMap so it never changes
//! (a changed UID would orphan every cloud resource), created once from the kube-system
//! namespace's UID — as ingress-gce keeps `kube-system/ingress-uid`.

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, PostParams};
use std::collections::BTreeMap;

/// Name of the ConfigMap.
pub const CONFIG_MAP: &str = "cloud-lb-controller-uid";
/// Its key.
const KEY: &str = "uid";

/// Reads the cluster UID, creating the ConfigMap from the namespace's UID the first time.
pub async fn load_or_create(client: Client, namespace: &str) -> Result<String, kube::Error> {
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    if let Some(uid) = read(&maps).await? {
        return Ok(uid);
    }
    let namespaces: Api<Namespace> = Api::all(client);
    let ns = namespaces.get(namespace).await?;
    let uid = ns.metadata.uid.unwrap_or_default();
    let map = ConfigMap {
        metadata: ObjectMeta {
            name: Some(CONFIG_MAP.to_owned()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(KEY.to_owned(), uid.clone())])),
        ..Default::default()
    };
    match maps.create(&PostParams::default(), &map).await {
        Ok(_) => {
            tracing::info!(
                uid,
                "recorded the cluster UID in ConfigMap {namespace}/{CONFIG_MAP}"
            );
            Ok(uid)
        }
        // Another replica was first: use what it wrote.
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(read(&maps).await?.unwrap_or(uid)),
        Err(e) => Err(e),
    }
}

async fn read(maps: &Api<ConfigMap>) -> Result<Option<String>, kube::Error> {
    Ok(maps
        .get_opt(CONFIG_MAP)
        .await?
        .and_then(|m| m.data)
        .and_then(|d| d.get(KEY).cloned())
        .filter(|u| !u.is_empty()))
}
