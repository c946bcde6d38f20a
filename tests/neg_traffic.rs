//! Container-native load balancing with real traffic: fake-kube's pod simulator runs the pods
//! (addresses from each node's podCIDR, the VMs' alias ranges in fake-gce), echo servers stand in
//! for their containers, and fake-gce's data plane probes and proxies to the NEG endpoints.

mod common;

use common::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_get_addresses_in_their_nodes_alias_ranges_and_serve() {
    let h = Harness::start_pods(PodCluster {
        probe_interval: Some(Duration::from_millis(200)),
        ..Default::default()
    })
    .await;
    h.apply(&web_pod("web-1", "node-a2", WebPod::default())).await;
    let ip = h.pod_ip("web-1").await;
    // node-a2 is the second node: its range is .80/28, hosts .81 to .94.
    let ip: std::net::Ipv4Addr = ip.parse().expect("IPv4");
    assert!(
        (81..=94).contains(&ip.octets()[3]),
        "{ip} is not in node-a2's pod range"
    );
    let addr: std::net::SocketAddr = format!("{ip}:8080").parse().expect("address");
    let servers = h.pod_servers.as_ref().expect("serving");
    eventually("web-1 is served", WAIT, || async {
        servers.serving().contains(&addr).then_some(())
    })
    .await;
    let answer = reqwest::get(format!("http://{addr}/x"))
        .await
        .expect("get")
        .text()
        .await
        .expect("text");
    assert!(
        answer.contains("served_by=pod default/web-1 container web"),
        "{answer}"
    );
}

/// Whether the pod's NEG readiness condition is True.
async fn gate_true(h: &Harness, name: &str) -> bool {
    h.gate(name).await.is_some_and(|(status, _)| status == "True")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        // A new connection per request: each is balanced afresh.
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// Sends requests to `addr` one after another until `stop`, recording who answered and every
/// failure.
fn load(
    addr: std::net::SocketAddr,
    stop: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<(usize, Vec<String>, Vec<String>)> {
    assert!(addr.ip().is_loopback(), "only loopback is contacted, not {addr}");
    tokio::spawn(async move {
        let client = client();
        let (mut sent, mut served_by, mut failures) = (0, Vec::new(), Vec::new());
        while !stop.is_cancelled() {
            sent += 1;
            match client.get(format!("http://{addr}/")).send().await {
                Ok(r) if r.status() == 200 => {
                    let text = r.text().await.unwrap_or_default();
                    let by = cloud_lb_controller::sandbox::echo::field(&text, "served_by")
                        .unwrap_or("")
                        .to_owned();
                    served_by.push(by);
                }
                Ok(r) => failures.push(format!("request {sent}: status {}", r.status())),
                Err(e) => failures.push(format!("request {sent}: {e}")),
            }
        }
        (sent, served_by, failures)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_update_behind_negs_never_fails_a_request() {
    let h = Harness::start_pods(PodCluster {
        probe_interval: Some(Duration::from_millis(200)),
        termination: fake_kube::Termination::Manual,
    })
    .await;
    h.apply(&web_pod("web-old-1", "node-a1", GATED)).await;
    h.apply(&web_pod("web-old-2", "node-b1", GATED)).await;
    h.apply(WEB_NEG).await;
    h.apply(&web_ingress("web")).await;
    let controller = h.spawn_controller(&["--cluster-uid", CLUSTER_UID, "--health-interval", "1s"]);

    eventually("web is Ready", WAIT, || async {
        (h.state("web").await? == "Ready").then_some(())
    })
    .await;
    for pod in ["web-old-1", "web-old-2"] {
        eventually(&format!("{pod}'s gate is True"), WAIT, || async {
            gate_true(&h, pod).await.then_some(())
        })
        .await;
    }
    let address = h.address("web").await.expect("an address");
    let http = h.gce.serving_address(&address, 80).expect("served");

    // Settled before the load starts: the health check follows the pods' readiness probe (a
    // first reconcile may have come before the EndpointSlices named the pods), and both
    // endpoints pass it.
    eventually(
        "the health check follows the probe, both endpoints healthy",
        WAIT,
        || async {
            let healthy = h.neg_health().await;
            (h.health_check_paths() == ["/healthz"] && healthy.len() == 2 && healthy.values().all(|ok| *ok))
                .then_some(())
        },
    )
    .await;

    // At every sample, at least one endpoint is attached and healthy.
    let stop = tokio_util::sync::CancellationToken::new();
    let load = load(http, stop.clone());
    let watch = {
        let stop = stop.clone();
        let h = &h;
        async move {
            let mut samples = 0;
            while !stop.is_cancelled() {
                let endpoints = h.neg_health().await;
                assert!(
                    endpoints.values().any(|healthy| *healthy),
                    "no healthy endpoint attached: {endpoints:?}"
                );
                samples += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            samples
        }
    };
    let roll = async {
        // One by one: a new pod, Ready only once the load balancer serves it; then an old one
        // goes, detached before it stops serving. (The probe stays the same: an edited probe is
        // `the_health_check_follows_an_edited_readiness_probe`.)
        for (old, new, node) in [
            ("web-old-1", "web-new-1", "node-a2"),
            ("web-old-2", "web-new-2", "node-b1"),
        ] {
            h.apply(&web_pod(new, node, GATED)).await;
            let new_ip = h.pod_ip(new).await;
            eventually(&format!("{new}'s gate is True"), WAIT, || async {
                gate_true(&h, new).await.then_some(())
            })
            .await;
            assert_eq!(
                h.neg_health().await.get(&format!("{new_ip}:8080")),
                Some(&true),
                "the gate went True before the endpoint was healthy"
            );
            let old_ip = h.pod_ip(old).await;
            h.pods().delete(old, &Default::default()).await.expect("delete");
            eventually(&format!("{old} is detached"), WAIT, || async {
                (!h.neg_health().await.contains_key(&format!("{old_ip}:8080"))).then_some(())
            })
            .await;
            h.kube.finish_termination("default", old).expect("finish");
        }
        stop.cancel();
    };
    let (samples, ()) = tokio::join!(watch, roll);
    let (sent, served_by, failures) = load.await.expect("load");
    assert!(
        failures.is_empty(),
        "{} of {sent} requests failed: {failures:?}",
        failures.len()
    );
    eprintln!("rolling update: {sent} requests, {samples} samples of the NEGs, none failed");
    assert!(samples > 0 && sent > 0);
    assert!(
        served_by.last().is_some_and(|b| b.contains("web-new-")),
        "{:?}",
        served_by.last()
    );

    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_a_service_from_node_ports_to_negs_keeps_the_address_and_every_request() {
    let h = Harness::start_pods(PodCluster {
        probe_interval: Some(Duration::from_millis(200)),
        ..Default::default()
    })
    .await;
    h.apply(&web_pod("web-1", "node-a1", WebPod::default())).await;
    h.apply(&web_pod("web-2", "node-b1", WebPod::default())).await;
    // First through node ports: the same Service, type NodePort, no NEG annotation.
    let node_port_web = WEB_NEG.replace("type: ClusterIP", "type: NodePort").replace(
        "\n  annotations: {cloud.google.com/neg: '{\"ingress\": true}'}",
        "",
    );
    assert!(!node_port_web.contains("cloud.google.com/neg"));
    h.apply(&node_port_web).await;
    h.apply(&web_ingress("web")).await;
    let controller = h.spawn_controller(&["--cluster-uid", CLUSTER_UID, "--health-interval", "1s"]);
    let client = client();
    let served_by = |addr: std::net::SocketAddr| {
        let client = client.clone();
        async move {
            let r = client.get(format!("http://{addr}/")).send().await.ok()?;
            (r.status() == 200).then_some(())?;
            let text = r.text().await.ok()?;
            cloud_lb_controller::sandbox::echo::field(&text, "served_by").map(str::to_owned)
        }
    };
    let address = eventually("web has an address", WAIT, || async { h.address("web").await }).await;
    let http = h.gce.serving_address(&address, 80).expect("served");
    eventually("a node serves web", WAIT, || async {
        served_by(http).await.filter(|b| b.starts_with("node-"))
    })
    .await;
    let groups_before = h.gce_names("backendServices");

    let stop = tokio_util::sync::CancellationToken::new();
    let load = load(http, stop.clone());
    h.apply(&WEB_NEG.replace("type: ClusterIP", "type: NodePort"))
        .await;
    eventually("pods serve web straight", WAIT, || async {
        served_by(http).await.filter(|b| b.starts_with("pod "))
    })
    .await;
    eventually("the node-port backend is gone", WAIT, || async {
        let now = h.gce_names("backendServices");
        now.is_disjoint(&groups_before).then_some(())
    })
    .await;
    stop.cancel();
    let (sent, by, failures) = load.await.expect("load");
    let through_nodes = by.iter().filter(|b| b.starts_with("node-")).count();
    eprintln!(
        "switch: {sent} requests, {through_nodes} through node ports, the rest straight to pods, none failed"
    );
    assert!(
        failures.is_empty(),
        "{} of {sent} requests failed: {failures:?}",
        failures.len()
    );
    assert_eq!(
        h.address("web").await.as_deref(),
        Some(address.as_str()),
        "the address changed"
    );
    controller.stop().await;
}
