//! The sandbox's starting state: nodes, the IngressClass, and the echoheaders example.

use anyhow::Context as _;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use serde_json::json;

const SERVICE: &str = include_str!("../../examples/echoheaders/service.yaml");
const INGRESS: &str = include_str!("../../examples/echoheaders/ingress.yaml");
const FIELD_MANAGER: &str = "sandbox";

/// Applies nodes, the `gce` IngressClass, the example Service, its TLS Secret (made when absent)
/// and the example Ingress; returns what was applied.
pub async fn apply(client: &Client, nodes: &[(&str, &str)], project: &str) -> anyhow::Result<Vec<String>> {
    let mut applied = Vec::new();
    for (zone, name) in nodes {
        let node = json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone}},
            "spec": {"providerID": format!("gce://{project}/{zone}/{name}")},
        });
        crate::manifests::apply(client, &node, FIELD_MANAGER).await?;
    }
    applied.push(format!("{} nodes", nodes.len()));
    let class = json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {"name": "gce"},
        "spec": {"controller": crate::translate::DEFAULT_CONTROLLER_NAME},
    });
    applied.push(crate::manifests::apply(client, &class, FIELD_MANAGER).await?);
    for object in crate::manifests::parse(SERVICE, "examples/echoheaders/service.yaml")? {
        applied.push(crate::manifests::apply(client, &object, FIELD_MANAGER).await?);
    }
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    if secrets.get_opt("tls").await?.is_none() {
        let (cert, key) = self_signed("echoheaders")?;
        let secret = json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "tls", "namespace": "default"},
            "type": "kubernetes.io/tls",
            "stringData": {"tls.crt": cert, "tls.key": key},
        });
        crate::manifests::apply(client, &secret, FIELD_MANAGER).await?;
        applied.push("secret/tls (self-signed, CN=echoheaders)".to_owned());
    }
    for object in crate::manifests::parse(INGRESS, "examples/echoheaders/ingress.yaml")? {
        applied.push(crate::manifests::apply(client, &object, FIELD_MANAGER).await?);
    }
    Ok(applied)
}

/// A self-signed certificate and its key (ECDSA P-256), PEM.
fn self_signed(common_name: &str) -> anyhow::Result<(String, String)> {
    let mut params =
        rcgen::CertificateParams::new(vec![common_name.to_owned()]).context("certificate parameters")?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    let key = rcgen::KeyPair::generate().context("generating a key")?;
    let cert = params.self_signed(&key).context("signing the certificate")?;
    Ok((cert.pem(), key.serialize_pem()))
}
