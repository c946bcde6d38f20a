//! Container-native load balancing with real traffic: fake-kube's pod simulator runs the pods
//! (addresses from each node's podCIDR, the VMs' alias ranges in fake-gce), echo servers stand in
//! for their containers, and fake-gce's data plane probes and proxies to the NEG endpoints.

mod common;

use common::*;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use std::time::Duration;

/// A pod of `app: web` on `node`, serving 8080.
fn pod(name: &str, node: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: default, labels: {{app: web}}}}
spec:
  nodeName: {node}
  containers:
  - name: web
    image: echo
    ports: [{{containerPort: 8080, name: http}}]
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_get_addresses_in_their_nodes_alias_ranges_and_serve() {
    let h = Harness::start_pods(PodCluster {
        probe_interval: Some(Duration::from_millis(200)),
        ..Default::default()
    })
    .await;
    h.apply(&pod("web-1", "node-a2")).await;
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "default");
    let ip = eventually("web-1 has an address", WAIT, || async {
        pods.get("web-1").await.ok()?.status?.pod_ip
    })
    .await;
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
