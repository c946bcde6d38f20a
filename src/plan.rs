//! `plan`: translate Ingress manifests offline and print the cloud resources they would become.
//!
//! No cluster and no cloud is contacted; Services, Secrets, IngressClasses, and for
//! container-native backends EndpointSlices, Pods and Nodes, come from the same files. The
//! output is JSON: per Ingress, its problems, its warnings, and either the Compute objects in
//! creation order or (with `--model`) the provider-neutral model; where each backend's health
//! check comes from (`healthChecks`: the pods' readiness probe, or defaults and why); and for
//! each endpoint backend the endpoints it would be served by (`endpoints`). Private keys are
//! never printed.

use crate::cli::PlanArgs;
use crate::translate::{self, Objects as _, Snapshot};
use anyhow::Context as _;
use cloud::Provider;
use cloud::gce::{GceConfig, GceProvider, StaticToken};
use k8s_openapi::api::networking::v1::Ingress;
use serde_json::{Value, json};
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

pub fn run(args: &PlanArgs) -> anyhow::Result<()> {
    let mut documents = Vec::new();
    for file in &args.files {
        documents.extend(load(file)?);
    }
    let (snapshot, ingresses, skipped) = sort(documents)?;
    for s in &skipped {
        eprintln!(
            "skipped {s}: plan reads Ingresses, Services, Secrets, IngressClasses, EndpointSlices, Pods \
             and Nodes"
        );
    }
    let node_objects: Vec<_> = snapshot.nodes().iter().map(|n| (**n).clone()).collect();
    let (nodes, node_warnings) = translate::cluster_nodes(&node_objects);
    for w in &node_warnings {
        eprintln!("{w}");
    }
    let provider = GceProvider::new(
        GceConfig::new(&args.project, &args.cluster_uid),
        Arc::new(StaticToken(String::new())),
    )?;
    let config = translate::Config::default();
    let mut out = Vec::new();
    let mut failed = false;
    for ingress in &ingresses {
        let name = format!(
            "{}/{}",
            ingress.metadata.namespace.as_deref().unwrap_or("default"),
            ingress.metadata.name.as_deref().unwrap_or_default()
        );
        let ours = translate::is_ours(ingress, &snapshot, &config);
        let translated = translate::translate(ingress, &snapshot, &config).and_then(|t| {
            provider
                .check(&t.load_balancer)
                .map_err(|violations| translate::limit_problems(ingress, &violations))?;
            Ok(t)
        });
        let entry = match translated {
            Ok(t) => {
                let body = if args.model {
                    serde_json::to_value(&t.load_balancer)?
                } else {
                    provider.plan(&t.load_balancer)?
                };
                let health_checks: serde_json::Map<String, Value> = t
                    .health_checks
                    .iter()
                    .map(|(key, origin)| Ok((key.to_string(), serde_json::to_value(origin)?)))
                    .collect::<anyhow::Result<_>>()?;
                let endpoints: serde_json::Map<String, Value> = t
                    .load_balancer
                    .endpoint_backends()
                    .map(|key| {
                        let plan = translate::endpoint_plan(key, &snapshot, &nodes);
                        (key.to_string(), endpoints_json(&plan))
                    })
                    .collect();
                json!({
                    "ingress": name,
                    "servedByThisController": ours,
                    "warnings": t.warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    (if args.model { "model" } else { "resources" }): body,
                    "healthChecks": health_checks,
                    "endpoints": endpoints,
                })
            }
            Err(problems) => {
                failed = true;
                json!({
                    "ingress": name,
                    "servedByThisController": ours,
                    "errors": problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
                })
            }
        };
        out.push(entry);
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    if failed {
        anyhow::bail!("some Ingresses are invalid (see \"errors\")");
    }
    if ingresses.is_empty() {
        anyhow::bail!("no Ingress in the given files");
    }
    Ok(())
}

/// An endpoint backend's endpoints, readiness-gated pods and notes.
fn endpoints_json(plan: &translate::EndpointPlan) -> Value {
    json!({
        "attached": plan.set.endpoints,
        "gatedPods": plan.gated.iter().map(|g| json!({
            "pod": format!("{}/{}", g.namespace, g.name),
            "endpoint": g.endpoint,
            "attached": g.attached,
            "gate": g.condition,
        })).collect::<Vec<_>>(),
        "notes": plan.notes,
    })
}

/// The YAML documents of a file (`-`: standard input), lists expanded.
fn load(path: &Path) -> anyhow::Result<Vec<Value>> {
    let text = if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    crate::manifests::parse(&text, &path.display().to_string())
}

/// Files the objects by kind.
fn sort(documents: Vec<Value>) -> anyhow::Result<(Snapshot, Vec<Ingress>, Vec<String>)> {
    let mut snapshot = Snapshot::new();
    let mut ingresses = Vec::new();
    let mut skipped = Vec::new();
    for doc in documents {
        let api_version = doc
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let kind = doc
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let name = doc
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
        let what = format!("{kind} {name}");
        match (api_version.as_str(), kind.as_str()) {
            ("v1", "Service") => {
                snapshot.insert_service(serde_json::from_value(doc).with_context(|| what.clone())?)
            }
            ("v1", "Secret") => {
                snapshot.insert_secret(serde_json::from_value(doc).with_context(|| what.clone())?)
            }
            ("v1", "Pod") => snapshot.insert_pod(serde_json::from_value(doc).with_context(|| what.clone())?),
            ("v1", "Node") => {
                snapshot.insert_node(serde_json::from_value(doc).with_context(|| what.clone())?)
            }
            ("discovery.k8s.io/v1", "EndpointSlice") => {
                snapshot.insert_endpoint_slice(serde_json::from_value(doc).with_context(|| what.clone())?)
            }
            ("networking.k8s.io/v1", "IngressClass") => {
                snapshot.insert_ingress_class(serde_json::from_value(doc).with_context(|| what.clone())?)
            }
            ("networking.k8s.io/v1", "Ingress") => {
                ingresses.push(serde_json::from_value(doc).with_context(|| what.clone())?)
            }
            _ => skipped.push(format!("{api_version} {what}")),
        }
    }
    Ok((snapshot, ingresses, skipped))
}
