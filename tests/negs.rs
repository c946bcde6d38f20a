//! Endpoint backends (container-native load balancing) through both fakes over HTTP, with the
//! controller in-process: fake-kube plays the kubelets and the EndpointSlice controller,
//! fake-gce holds the network endpoint groups. A ClusterIP Service annotated
//! `cloud.google.com/neg: '{"ingress": true}'` becomes NEGs holding exactly its ready endpoints;
//! the pods' load-balancer readiness gate follows their endpoints' health; an Ingress whose
//! Service has no ready endpoint is `Degraded`; a malformed annotation is a Warning.

mod common;

use cloud_lb_controller::annotations as keys;
use common::*;
use kube::Api;
use kube::api::DeleteParams;
use serde_json::Value;
use std::collections::BTreeSet;

/// A harness whose fake-kube runs pods (kubelets, EndpointSlice controller) on nodes whose VMs
/// take the pods' addresses (their alias ranges), deleted pods terminating for their grace period.
async fn start() -> Harness {
    Harness::start_pods(PodCluster {
        termination: fake_kube::Termination::GracePeriod,
        ..Default::default()
    })
    .await
}

/// [`start`] with fake-gce's data plane: the load balancer's health checks really probe the
/// pods, whose containers echo servers stand in for (see `PodServers::set_serving`).
async fn start_probing() -> Harness {
    Harness::start_pods(PodCluster {
        probe_interval: Some(std::time::Duration::from_millis(200)),
        termination: fake_kube::Termination::GracePeriod,
    })
    .await
}

/// On a [`start_probing`] cluster: the NEG Service `web`, its one gated pod `web-1` whose
/// container does not answer (the load balancer's probes fail until the test says otherwise),
/// and the Ingress `web`. Returns the pod's address.
async fn web_with_a_silent_gated_pod(h: &Harness) -> String {
    let servers = h.pod_servers.as_ref().expect("pods served");
    servers.set_serving("default/web-1", false).await;
    h.apply(WEB_NEG).await;
    h.apply(&web_pod("web-1", "node-a1", GATED)).await;
    let ip = h.pod_ip("web-1").await;
    h.apply(&web_ingress("web")).await;
    ip
}

fn controller(h: &Harness, extra: &[&str]) -> Running {
    let mut args = vec!["--leader-elect=false", "--cluster-uid", CLUSTER_UID];
    args.extend_from_slice(extra);
    h.spawn_controller(&args)
}

/// The state annotation, parsed.
async fn state_of(h: &Harness, name: &str) -> Value {
    h.annotation(name, keys::STATE)
        .await
        .and_then(|raw| serde_json::from_str(&raw).ok())
        .unwrap_or_default()
}

/// How many times an Event with `reason` was published about `ingress` (repeats folded into a
/// series count).
async fn times_told(h: &Harness, ingress: &str, reason: &str) -> i32 {
    let api: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(h.client.clone(), "default");
    api.list(&Default::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter(|e| {
            e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(ingress)
                && e.reason.as_deref() == Some(reason)
        })
        .map(|e| e.series.map_or(1, |s| s.count))
        .sum()
}

async fn wait_event(h: &Harness, ingress: &str, reason: &str) -> (String, String, String) {
    eventually(&format!("a {reason} Event about {ingress}"), WAIT, || async {
        h.events(ingress).await.into_iter().find(|(_, r, _)| r == reason)
    })
    .await
}

#[tokio::test]
async fn a_neg_service_is_served_by_exactly_its_ready_endpoints() {
    let h = start().await;
    h.apply(WEB_NEG).await;
    for (name, node) in [("web-1", "node-a1"), ("web-2", "node-a2"), ("web-3", "node-b1")] {
        h.apply(&web_pod(name, node, WebPod::default())).await;
    }
    let mut ips = Vec::new();
    for name in ["web-1", "web-2", "web-3"] {
        ips.push(h.pod_ip(name).await);
    }
    h.apply(&web_ingress("web")).await;
    let c = controller(&h, &[]);
    eventually("web's address", WAIT, || h.address("web")).await;

    let all: BTreeSet<String> = ips.iter().map(|ip| format!("{ip}:8080")).collect();
    h.wait_attached("the three pods attached", &all).await;
    // One NEG per zone holding the pods of that zone.
    let negs: BTreeSet<String> = h.attached().into_iter().map(|(neg, _, _)| neg).collect();
    assert_eq!(negs.len(), 2, "{negs:?}");
    assert!(
        negs.iter()
            .any(|n| n.contains("/zones/us-central1-b/networkEndpointGroups/")),
        "{negs:?}"
    );
    // No instance group is needed for a backend served at its endpoints.
    assert!(
        !h.gce_paths().iter().any(|p| p.contains("/instanceGroups/")),
        "{:?}",
        h.gce_paths()
    );
    eventually("Ready", WAIT, || async {
        (state_of(&h, "web").await["state"] == "Ready").then_some(())
    })
    .await;
    // The health checkers may reach the pods' port.
    eventually("the firewall rule opens the pod port", WAIT, || async {
        h.gce_names("firewalls")
            .iter()
            .filter_map(|n| h.gce_resource("firewalls", n))
            .any(|fw| {
                fw["allowed"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|a| a["ports"].as_array().cloned().unwrap_or_default())
                    .any(|p| p == "8080")
            })
            .then_some(())
    })
    .await;

    // A pod that is no longer ready is detached.
    h.kube
        .set_containers_ready("default", "web-2", false)
        .expect("web-2 unready");
    let two: BTreeSet<String> = [&ips[0], &ips[2]].iter().map(|ip| format!("{ip}:8080")).collect();
    h.wait_attached("web-2 detached once unready", &two).await;

    // Scaling down: a deleted pod is detached while it terminates.
    h.pods()
        .delete("web-3", &DeleteParams::default())
        .await
        .expect("delete web-3");
    let one: BTreeSet<String> = [format!("{}:8080", ips[0])].into();
    h.wait_attached("web-3 detached while terminating", &one).await;

    // Ready again: attached again.
    h.kube
        .set_containers_ready("default", "web-2", true)
        .expect("web-2 ready");
    let back: BTreeSet<String> = [&ips[0], &ips[1]].iter().map(|ip| format!("{ip}:8080")).collect();
    h.wait_attached("web-2 attached again", &back).await;

    // A restarted controller reads the NEGs again (one list per zone) and writes nothing.
    c.stop().await;
    h.gce.reset_stats();
    let c = controller(&h, &[]);
    eventually(
        "the restarted controller re-read both zones' NEGs",
        WAIT,
        || async { (h.gce.stats().kind("networkEndpointGroups").lists >= 2).then_some(()) },
    )
    .await;
    assert_eq!(h.attached_addresses(), back);
    let stats = h.gce.stats();
    assert_eq!(
        stats.total.mutations, 0,
        "nothing changed, nothing written: {stats:?}"
    );
    c.stop().await;
}

#[tokio::test]
async fn the_readiness_gate_follows_the_endpoints_health_in_the_load_balancer() {
    let h = start_probing().await;
    let ip = web_with_a_silent_gated_pod(&h).await;
    let c = controller(&h, &["--pod-status-qps", "100"]);

    // The pod is not Ready (its gate holds it), yet its endpoint is attached: the load
    // balancer's health check decides. Its container does not answer yet: the probes fail,
    // and the gate says so.
    let endpoint = format!("{ip}:8080");
    h.wait_attached("the gated pod attached", &[endpoint.clone()].into())
        .await;
    let (status, message) = eventually("the gate False", WAIT, || async {
        h.gate("web-1")
            .await
            .filter(|(s, m)| s == "False" && m.contains("health check"))
    })
    .await;
    assert_eq!(status, "False");
    assert!(message.contains(&endpoint), "{message}");

    // It answers: the gate turns True, and the pod Ready.
    let servers = h.pod_servers.as_ref().expect("pods served");
    servers.set_serving("default/web-1", true).await;
    eventually("the gate True", WAIT, || async {
        h.gate("web-1").await.filter(|(s, _)| s == "True")
    })
    .await;
    eventually("the pod Ready", WAIT, || async {
        let pod = h.pods().get_opt("web-1").await.ok()??;
        pod.status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "Ready" && c.status == "True")
    })
    .await;

    // A pod without the gate is never written to.
    h.apply(&web_pod("web-2", "node-a2", WebPod::default())).await;
    let ip2 = h.pod_ip("web-2").await;
    h.wait_attached("both attached", &[endpoint.clone(), format!("{ip2}:8080")].into())
        .await;
    assert_eq!(h.gate("web-2").await, None);
    c.stop().await;
}

#[tokio::test]
async fn no_ready_endpoint_degrades_the_ingress_until_one_comes() {
    let h = start().await;
    h.apply(WEB_NEG).await;
    h.apply(&web_ingress("web")).await;
    let c = controller(&h, &[]);
    eventually("web's address", WAIT, || h.address("web")).await;
    let state = eventually("Degraded NoReadyEndpoints", WAIT, || async {
        let st = state_of(&h, "web").await;
        (st["state"] == "Degraded" && st["reason"] == "NoReadyEndpoints").then_some(st)
    })
    .await;
    assert!(
        state["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Service default/web port 80 has no ready endpoint"),
        "{state}"
    );
    let (kind, _, note) = wait_event(&h, "web", "NoReadyEndpoints").await;
    assert_eq!(kind, "Warning");
    assert!(note.contains("Service default/web port 80"), "{note}");

    h.apply(&web_pod("web-1", "node-b1", WebPod::default())).await;
    h.pod_ip("web-1").await;
    eventually("Ready again", WAIT, || async {
        (state_of(&h, "web").await["state"] == "Ready").then_some(())
    })
    .await;
    let (kind, _, _) = wait_event(&h, "web", "EndpointsReady").await;
    assert_eq!(kind, "Normal");
    assert_eq!(times_told(&h, "web", "NoReadyEndpoints").await, 1, "told once");
    c.stop().await;
}

#[tokio::test]
async fn a_malformed_neg_annotation_is_a_warning_naming_it_and_the_service() {
    let h = start().await;
    h.apply(&ECHO.replace(
        "metadata: {name: echo, namespace: default}",
        "metadata: {name: echo, namespace: default, annotations: {cloud.google.com/neg: '{\"ingress\": tru'}}",
    ))
    .await;
    h.apply(&ingress("echo")).await;
    let c = controller(&h, &[]);
    // The load balancer is still built, through the node port.
    eventually("echo's address", WAIT, || h.address("echo")).await;
    let (kind, _, note) = eventually("a Warning about the annotation", WAIT, || async {
        h.events("echo")
            .await
            .into_iter()
            .find(|(k, _, n)| k == "Warning" && n.contains("cloud.google.com/neg"))
    })
    .await;
    assert_eq!(kind, "Warning");
    assert!(note.contains("echo"), "names the Service: {note}");
    c.stop().await;
}

#[tokio::test]
async fn the_health_check_follows_the_readiness_probe_and_is_told_once() {
    let h = start().await;
    h.apply(WEB_NEG).await;
    h.apply(&web_pod("web-1", "node-a1", WebPod::default())).await;
    h.pod_ip("web-1").await;
    h.apply(&web_ingress("web")).await;
    let c = controller(&h, &[]);
    eventually("web's address", WAIT, || h.address("web")).await;
    let (kind, _, note) = wait_event(&h, "web", "HealthCheckFromProbe").await;
    assert_eq!(kind, "Normal");
    assert!(
        note.contains("readinessProbe of container web in pod default/web-1") && note.contains("/healthz"),
        "{note}"
    );
    let checks = h.gce_names("healthChecks");
    assert!(
        checks.iter().any(|n| h
            .gce_resource("healthChecks", n)
            .is_some_and(|hc| hc.to_string().contains("/healthz"))),
        "{checks:?}"
    );
    // A restart tells nothing again.
    c.stop().await;
    let c = controller(&h, &[]);
    h.apply(&web_pod("web-2", "node-a2", WebPod::default())).await;
    h.pod_ip("web-2").await;
    eventually("web-2 attached", WAIT, || async {
        (h.attached().len() == 2).then_some(())
    })
    .await;
    eventually("Ready", WAIT, || async {
        (state_of(&h, "web").await["state"] == "Ready").then_some(())
    })
    .await;
    assert_eq!(
        times_told(&h, "web", "HealthCheckFromProbe").await,
        1,
        "told once, not again after a restart"
    );
    c.stop().await;
}

#[tokio::test]
async fn an_exec_readiness_probe_keeps_the_default_health_check_and_says_why() {
    let h = start().await;
    h.apply(WEB_NEG).await;
    let exec_pod = web_pod("web-1", "node-a1", WebPod::default()).replace(
        "      httpGet: {path: /healthz, port: http}",
        "      exec: {command: [cat, /tmp/ready]}",
    );
    assert!(exec_pod.contains("exec:"), "{exec_pod}");
    h.apply(&exec_pod).await;
    h.pod_ip("web-1").await;
    h.apply(&web_ingress("web")).await;
    let c = controller(&h, &[]);
    eventually("web's address", WAIT, || h.address("web")).await;
    let (kind, _, note) = wait_event(&h, "web", "HealthCheckProbeIgnored").await;
    assert_eq!(kind, "Warning");
    assert!(
        note.contains("default/web-1") && note.contains("exec") && note.contains("Service default/web"),
        "names the pod, the probe's kind and the Service: {note}"
    );
    // The health check probes the default path.
    assert_eq!(h.health_check_paths(), ["/"]);
    c.stop().await;
}

#[tokio::test]
async fn deleting_the_ingress_lets_its_gated_pods_go() {
    let h = start_probing().await;
    // Its container never answers: the load balancer never sees it healthy.
    let ip = web_with_a_silent_gated_pod(&h).await;
    let c = controller(&h, &[]);
    h.wait_attached("the gated pod attached", &[format!("{ip}:8080")].into())
        .await;
    // The gate holds the pod.
    eventually("the gate False", WAIT, || async {
        h.gate("web-1")
            .await
            .filter(|(s, m)| s == "False" && m.contains("health check"))
    })
    .await;

    // No load balancer of ours serves the Service any more: nothing will set the gate, so it
    // is let go.
    h.ingresses()
        .delete("web", &Default::default())
        .await
        .expect("delete");
    let (_, message) = eventually("the gate True once the Ingress is gone", WAIT, || async {
        h.gate("web-1").await.filter(|(s, _)| s == "True")
    })
    .await;
    assert!(
        message.contains("Service default/web port 80 is no longer served"),
        "{message}"
    );
    eventually("the NEGs gone", WAIT, || async {
        h.attached().is_empty().then_some(())
    })
    .await;
    c.stop().await;
}

/// The requests to fake-gce since journal sequence `since` that wrote the firewall rule.
fn firewall_writes(h: &Harness, since: u64) -> Vec<String> {
    h.gce
        .journal_since(since)
        .entries
        .into_iter()
        .filter_map(|e| match e.event {
            fake_gce::JournalEvent::Request(r) if r.path.contains("/firewalls") && r.method != "GET" => {
                Some(format!("{} {}", r.method, r.path))
            }
            _ => None,
        })
        .collect()
}

/// Whether the cluster's firewall rule lets the load balancer reach port 8080.
fn firewall_opens_8080(h: &Harness) -> bool {
    h.gce_resource("firewalls", &namer().firewall())
        .is_some_and(|fw| {
            fw["allowed"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|a| a["ports"].as_array().cloned().unwrap_or_default())
                .any(|p| p == "8080")
        })
}

#[tokio::test]
async fn after_a_restart_the_endpoints_of_an_ingress_in_error_still_follow_its_pods() {
    let h = start().await;
    h.apply(WEB_NEG).await;
    for (name, node) in [("web-1", "node-a1"), ("web-2", "node-b1")] {
        h.apply(&web_pod(name, node, WebPod::default())).await;
    }
    let (ip1, ip2) = (h.pod_ip("web-1").await, h.pod_ip("web-2").await);
    h.apply(&web_ingress("web")).await;
    // Another load balancer, on a node port: the firewall rule never goes empty (which it never
    // is written to be), so that a pod port dropped would show.
    h.apply(ECHO).await;
    h.apply(&ingress("echo")).await;
    let c = controller(&h, &[]);
    eventually("web's address", WAIT, || h.address("web")).await;
    eventually("echo's address", WAIT, || h.address("echo")).await;
    let both: BTreeSet<String> = [&ip1, &ip2].iter().map(|ip| format!("{ip}:8080")).collect();
    h.wait_attached("both pods attached", &both).await;
    eventually("the firewall rule opens the pod port", WAIT, || async {
        firewall_opens_8080(&h).then_some(())
    })
    .await;

    // A bad edit: the Ingress no longer translates, its load balancer keeps serving.
    h.apply(&web_ingress("web").replace("number: 80", "number: 81"))
        .await;
    eventually("the Error state", WAIT, || async {
        (h.state("web").await.as_deref() == Some("Error")).then_some(())
    })
    .await;

    // A restart (removal grace 0 s), then a rollout: a new pod, an old one deleted.
    c.stop().await;
    let since = h.gce.journal().next_seq;
    let c = controller(&h, &[]);
    h.apply(&web_pod("web-3", "node-a2", WebPod::default())).await;
    let ip3 = h.pod_ip("web-3").await;
    h.pods()
        .delete("web-1", &DeleteParams::default())
        .await
        .expect("delete web-1");
    let rolled: BTreeSet<String> = [&ip2, &ip3].iter().map(|ip| format!("{ip}:8080")).collect();
    h.wait_attached("the NEGs follow the rollout", &rolled).await;
    assert_eq!(h.state("web").await.as_deref(), Some("Error"));
    // The pod port never left the firewall: no pass of the restarted controller wrote it.
    assert!(firewall_opens_8080(&h));
    assert_eq!(firewall_writes(&h, since), Vec::<String>::new());
    c.stop().await;
}

#[tokio::test]
async fn the_health_check_follows_an_edited_readiness_probe() {
    let h = start().await;
    h.apply(WEB_NEG).await;
    h.apply(&web_pod("web-1", "node-a1", WebPod::default())).await;
    h.pod_ip("web-1").await;
    h.apply(&web_ingress("web")).await;
    let c = controller(&h, &[]);
    eventually("the health check follows /healthz", WAIT, || async {
        (h.health_check_paths() == ["/healthz"]).then_some(())
    })
    .await;
    // A rollout whose pods probe another path: once they serve (and the old pod is gone), the
    // health check follows, where ingress-gce keeps what it read at creation.
    let edited = WebPod {
        probe_path: "/ready",
        ..Default::default()
    };
    h.apply(&web_pod("web-2", "node-a2", edited)).await;
    h.pod_ip("web-2").await;
    h.pods()
        .delete("web-1", &DeleteParams::default())
        .await
        .expect("delete web-1");
    eventually("the health check follows /ready", WAIT, || async {
        (h.health_check_paths() == ["/ready"]).then_some(())
    })
    .await;
    let (kind, _, _) = eventually("an Event about the new probe", WAIT, || async {
        h.events("web")
            .await
            .into_iter()
            .find(|(_, r, n)| r == "HealthCheckFromProbe" && n.contains("/ready"))
    })
    .await;
    assert_eq!(kind, "Normal");
    c.stop().await;
}
