//! Least privilege, checked: the controller runs through the flows of its life against
//! fake-kube (which records every request), and the ClusterRole and Role in `deploy/` must allow
//! every request it made — and grant nothing it never used.

mod common;
mod deploy_files;

use common::*;
use deploy_files::{Access, Grant, Scope};
use fake_kube::RequestRecord;
use kube::api::{DeleteParams, Patch, PatchParams};
use std::collections::BTreeSet;

/// The User-Agent prefix of the controller's requests (`cloud-lb-controller/VERSION (IDENTITY)`).
const AGENT: &str = "cloud-lb-controller/";

fn access(r: &RequestRecord) -> Access {
    Access {
        verb: r.verb.clone(),
        group: r.group.clone(),
        resource: match &r.subresource {
            Some(sub) => format!("{}/{sub}", r.resource),
            None => r.resource.clone(),
        },
        namespace: r.namespace.clone(),
        name: r.name.clone(),
    }
}

fn tls_ingress(name: &str) -> String {
    ingress(name)
        .replace(
            "namespace: default}",
            "namespace: default, annotations: {cloud-lb-controller.io/redirect-to-https: \"true\"}}",
        )
        .replace("spec:\n", "spec:\n  tls: [{secretName: tls}]\n")
}

/// Waits until the Ingress's state annotation is `state` for its current generation.
async fn settled(h: &Harness, name: &str, state: &str) {
    eventually(&format!("{name} {state}"), WAIT, || async {
        let ing = h.ingress(name).await?;
        let raw = ing
            .metadata
            .annotations
            .as_ref()?
            .get(cloud_lb_controller::annotations::STATE)?;
        let v: serde_json::Value = serde_json::from_str(raw).ok()?;
        (v["state"] == state && v["observedGeneration"] == ing.metadata.generation.unwrap_or(0)).then_some(())
    })
    .await;
}

/// Every flow of the controller's life, by two replicas and then a restarted one.
async fn exercise(h: &Harness) {
    h.apply(ECHO).await;
    h.tls_secret("tls", "secure.example.com").await;
    h.apply(&ingress("web")).await;
    h.apply(&tls_ingress("secure")).await;
    h.apply(&ingress("bad").replace("port: {number: 80}", "port: {name: htp}"))
        .await;

    // First start: no cluster-UID ConfigMap yet, no Lease yet. A second replica stands by.
    let a = h.spawn_controller(&["--identity", "replica-a"]);
    eventually("web's address", WAIT, || h.address("web")).await;
    eventually("secure's address", WAIT, || h.address("secure")).await;
    let b = h.spawn_controller(&["--identity", "replica-b"]);
    eventually("a Translate warning", WAIT, || async {
        h.events("bad")
            .await
            .into_iter()
            .find(|(_, r, _)| r == "Translate")
    })
    .await;

    // The bad Ingress fixed, then broken the same way again: the same Warning, folded into a
    // series with the first.
    h.apply(&ingress("bad")).await;
    settled(h, "bad", "Ready").await;
    h.apply(&ingress("bad").replace("port: {number: 80}", "port: {name: htp}"))
        .await;
    eventually("the repeated Warning folded into the first", WAIT, || async {
        h.kube
            .requests()
            .iter()
            .any(|r| r.verb == "patch" && r.group == "events.k8s.io")
            .then_some(())
    })
    .await;

    // An endpoint backend whose pod carries the load balancer's readiness gate: the controller
    // reads EndpointSlices and pods, and writes the pod's condition (False: not ready yet).
    neg_backend_with_a_gated_pod(h).await;

    // An update of the Ingress's rules.
    h.apply(&ingress("web").replace(
        "spec:\n",
        "spec:\n  rules:\n  - host: a.example.com\n    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: echo, port: {number: 80}}}}]}\n",
    ))
    .await;
    settled(h, "web", "Ready").await;

    // A certificate rotation.
    let cert = eventually("a certificate", WAIT, || {
        h.annotation("secure", cloud_lb_controller::annotations::SSL_CERT)
    })
    .await;
    h.tls_secret("tls", "secure.example.com").await;
    eventually("the new certificate", WAIT, || async {
        h.annotation("secure", cloud_lb_controller::annotations::SSL_CERT)
            .await
            .filter(|c| *c != cert)
    })
    .await;

    // A node-port change.
    h.apply(&ECHO.replace("protocol: TCP}", "protocol: TCP, nodePort: 31999}"))
        .await;
    eventually("the backend on the new node port", WAIT, || async {
        h.gce.state().to_string().contains("port31999").then_some(())
    })
    .await;

    // The class changed away: the controller lets the Ingress go.
    h.apply(&tls_ingress("secure").replace("ingressClassName: gce", "ingressClassName: other"))
        .await;
    eventually("secure let go", WAIT, || async {
        let ing = h.ingress("secure").await?;
        ing.metadata
            .finalizers
            .as_ref()
            .is_none_or(|f| f.is_empty())
            .then_some(())
    })
    .await;

    // Deletion.
    h.ingresses()
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    eventually("web gone", WAIT, || async {
        h.ingress("web").await.is_none().then_some(())
    })
    .await;

    // The leader leaves (releasing the Lease); the standby takes over and serves new work.
    a.stop().await;
    h.apply(&ingress("third")).await;
    eventually("third's address (from replica-b)", WAIT, || h.address("third")).await;
    b.stop().await;

    // Deleted while no controller ran, its finalizer removed by hand: a restarted controller
    // collects the orphaned load balancer at start-up.
    let unfinalize = serde_json::json!({"metadata": {"finalizers": null}});
    h.ingresses()
        .patch("third", &PatchParams::default(), &Patch::Merge(&unfinalize))
        .await
        .unwrap();
    h.ingresses()
        .delete("third", &DeleteParams::default())
        .await
        .unwrap();
    let before = h.gce_names("urlMaps").len();
    let c = h.spawn_controller(&["--identity", "replica-c"]);
    eventually("the orphan collected", WAIT, || async {
        (h.gce_names("urlMaps").len() < before).then_some(())
    })
    .await;
    c.stop().await;
}

/// A ClusterIP Service served through NEGs, an EndpointSlice listing its one pod (not ready),
/// the pod with the readiness gate, and an Ingress using it; once the Ingress has its load
/// balancer, deletes it and waits for the gate's condition (the pod is let go: nothing will
/// serve it).
async fn neg_backend_with_a_gated_pod(h: &Harness) {
    use k8s_openapi::api::core::v1::Pod;
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    let gate = "cloud.google.com/load-balancer-neg-ready";
    h.apply(
        r#"
apiVersion: v1
kind: Service
metadata:
  name: negs
  namespace: default
  annotations: {cloud.google.com/neg: '{"ingress": true}'}
spec:
  type: ClusterIP
  selector: {app: negs}
  ports:
  - {name: http, port: 80, targetPort: 8080, protocol: TCP}
"#,
    )
    .await;
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "negs-1", "namespace": "default", "labels": {"app": "negs"}},
        "spec": {
            "nodeName": "node-a1",
            "readinessGates": [{"conditionType": gate}],
            "containers": [{"name": "web", "image": "web:1", "ports": [{"containerPort": 8080}]}]
        }
    }))
    .unwrap();
    let pods: kube::Api<Pod> = kube::Api::namespaced(h.client.clone(), "default");
    pods.create(&Default::default(), &pod).await.expect("pod");
    let slice: EndpointSlice = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "negs-abc", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "negs"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": [{
            "addresses": ["10.244.0.5"], "nodeName": "node-a1",
            "conditions": {"ready": false, "serving": false, "terminating": false},
            "targetRef": {"kind": "Pod", "name": "negs-1", "namespace": "default"}
        }]
    }))
    .unwrap();
    let slices: kube::Api<EndpointSlice> = kube::Api::namespaced(h.client.clone(), "default");
    slices.create(&Default::default(), &slice).await.expect("slice");
    h.apply(&ingress("negs").replace("name: echo", "name: negs"))
        .await;
    eventually("the negs Ingress's address", WAIT, || h.address("negs")).await;
    h.ingresses()
        .delete("negs", &Default::default())
        .await
        .expect("delete");
    eventually("the pod's readiness-gate condition", WAIT, || async {
        let pod = pods.get_opt("negs-1").await.ok()??;
        pod.status?.conditions?.into_iter().find(|c| c.type_ == gate)
    })
    .await;
}

#[tokio::test]
async fn the_deployed_rbac_rules_are_exactly_what_the_controller_uses() {
    let h = Harness::start().await;
    exercise(&h).await;

    let records: Vec<RequestRecord> = h
        .kube
        .requests()
        .into_iter()
        .filter(|r| r.user_agent.as_deref().is_some_and(|a| a.starts_with(AGENT)))
        .collect();
    assert!(
        !records.is_empty(),
        "no request carried the controller's User-Agent"
    );
    let agents: BTreeSet<&str> = records.iter().filter_map(|r| r.user_agent.as_deref()).collect();
    assert_eq!(agents.len(), 3, "three replicas' requests: {agents:?}");
    let other: Vec<&RequestRecord> = records.iter().filter(|r| !r.is_resource_request()).collect();
    assert!(
        other.is_empty(),
        "requests outside the resource API (need nonResourceURLs): {other:?}"
    );
    let used: BTreeSet<Access> = records.iter().map(access).collect();

    let objects = deploy_files::base_objects();
    let grants = deploy_files::grants(&objects);

    // Every request is allowed.
    let denied: Vec<String> = used
        .iter()
        .filter(|a| !grants.iter().any(|g| g.allows(a)))
        .map(ToString::to_string)
        .collect();
    // Every grant was needed.
    let unused: Vec<String> = grants
        .iter()
        .filter(|g| !used.iter().any(|a| g.allows(a)))
        .map(ToString::to_string)
        .collect();
    // A cluster-wide grant on a namespaced resource must have been used outside kube-system,
    // or the Role would do.
    let too_wide: Vec<String> = grants
        .iter()
        .filter(|g| g.scope == Scope::Cluster && g.resource != "namespaces" && g.resource != "nodes")
        .filter(|g| {
            used.iter()
                .filter(|a| g.allows(a))
                .all(|a| a.namespace.as_deref() == Some("kube-system"))
        })
        .map(ToString::to_string)
        .collect();

    let summary: BTreeSet<String> = used
        .iter()
        .map(|a| {
            let mut a = a.clone();
            // Names matter only where a rule names them.
            if !grants.iter().any(|g: &Grant| g.name.is_some() && g.allows(&a)) {
                a.name = None;
            }
            if a.namespace.as_deref() != Some("kube-system") && a.namespace.is_some() {
                a.namespace = Some("<ingress namespace>".into());
            }
            a.to_string()
        })
        .collect();
    eprintln!(
        "the controller used:\n  {}",
        summary.into_iter().collect::<Vec<_>>().join("\n  ")
    );

    assert!(
        denied.is_empty(),
        "requests deploy/ does not allow:\n  {}",
        denied.join("\n  ")
    );
    assert!(unused.is_empty(), "grants never used:\n  {}", unused.join("\n  "));
    assert!(
        too_wide.is_empty(),
        "cluster-wide grants used only in kube-system:\n  {}",
        too_wide.join("\n  ")
    );
}
