//! `/healthz` of the real binary tells when the controller is wedged, so the kubelet restarts it:
//! a reconcile stuck on a cloud operation that never ends, or watches that keep failing.

mod e2e;

use e2e::*;
use serde_json::json;

const INGRESS: &str = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: web}\nspec:\n  ingressClassName: gce\n  defaultBackend: {service: {name: web, port: {number: 80}}}\n";

async fn healthz(address: &str) -> Option<(u16, String)> {
    let response = reqwest::get(format!("http://{address}/healthz")).await.ok()?;
    Some((response.status().as_u16(), response.text().await.ok()?))
}

#[tokio::test]
async fn a_reconcile_stuck_on_the_cloud_fails_healthz() {
    let mut env = Env::start().await;
    let Some(root) = env.fake_gce_root() else {
        eprintln!("needs the fake Compute API: skipping");
        return;
    };
    // The URL map's operation never finishes.
    let fault = json!({"method": "POST", "path": "/global/urlMaps$", "action": {"type": "neverFinish"}});
    let added = reqwest::Client::new()
        .post(format!("{root}/_fake/faults"))
        .json(&fault)
        .send()
        .await
        .expect("add the fault");
    assert!(added.status().is_success());
    env.start_controller_with(&["--stuck-reconcile-after", "2s", "--gce-operation-timeout", "1h"]);
    let address = env.admin_address().await;
    assert_eq!(healthz(&address).await.map(|(s, _)| s), Some(200));
    env.apply(&service("web")).await;
    env.apply(INGRESS).await;
    let (_, text) = eventually("/healthz failing", WAIT, || async {
        healthz(&address).await.filter(|(status, _)| *status == 503)
    })
    .await;
    assert!(
        text.contains(&format!(
            "the reconcile of Ingress {}/web has run for",
            env.namespace
        )),
        "{text}"
    );
}

#[tokio::test]
async fn watches_failing_for_too_long_fail_healthz() {
    let mut env = Env::start().await;
    env.start_controller_with(&["--leader-elect=false", "--failing-watch-after", "2s"]);
    let address = env.admin_address().await;
    env.apply(&service("web")).await;
    env.apply(INGRESS).await;
    env.wait_address("web").await;
    assert_eq!(healthz(&address).await.map(|(s, _)| s), Some(200));
    if !env.stop_cluster().await {
        eprintln!("needs the fake cluster: skipping");
        return;
    }
    let (_, text) = eventually("/healthz failing", WAIT, || async {
        healthz(&address).await.filter(|(status, _)| *status == 503)
    })
    .await;
    assert!(text.contains("watch has failed for"), "{text}");
}
