//! Health checks that probe, and traffic only to what they find healthy.

use std::net::{Ipv4Addr, SocketAddr};

use fake_gce::{InstanceSeed, LoopbackBlock};
use reqwest::Method;
use serde_json::{Value, json};

use super::support::*;
use crate::common::ZONE;

#[tokio::test]
async fn only_healthy_instances_get_traffic_and_get_health_tells() {
    let api = start().await;
    let nodes = LoopbackBlock::claim().expect("a block for the nodes");
    let good = Backend::start(SocketAddr::from((nodes.ip(1), 8080)), "good").await;
    let sick = Backend::start(SocketAddr::from((nodes.ip(2), 8080)), "sick").await;
    sick.set_healthy(false);
    let members = [node(&api, "good", nodes.ip(1)), node(&api, "sick", nodes.ip(2))];
    let hc = health_check(&api, "hc", json!({"healthyThreshold": 2})).await;
    let g = group(&api, "g", &members, 8080).await;
    let bs = backend_service(&api, "bs", &[&g], &hc, "HTTP").await;
    let map = url_map(&api, json!({"name": "um", "defaultService": bs})).await;
    let proxy = http_proxy(&api, "tp", &map).await;
    let ip = forwarding_rule(&api, "fr", &proxy, 80, None).await;
    let addr = serving(&api, &ip, 80);

    wait_health(&api, "bs", &g, &[("good", "HEALTHY"), ("sick", "UNHEALTHY")]).await;
    assert_eq!(get_ok(addr, None, "x", "/").await.backend(), "good");
    for _ in 0..6 {
        let r = get(addr, "x", "/").await;
        assert_ne!(r.backend(), "sick", "an unhealthy instance got traffic");
    }
    assert_eq!(sick.hits(), 0, "an unhealthy instance gets no traffic");

    // It recovers: HEALTHY after the threshold, then it gets its share.
    sick.set_healthy(true);
    wait_health(&api, "bs", &g, &[("good", "HEALTHY"), ("sick", "HEALTHY")]).await;
    eventually("the recovered instance gets traffic", || async {
        (get(addr, "x", "/").await.backend() == "sick").then_some(())
    })
    .await;

    // The admin API's UNHEALTHY wins over the probes, for getHealth and for traffic.
    assert!(api.gce.set_instance_health(ZONE, "good", false));
    let forced = health_of(&api, "bs", &g).await;
    assert_eq!(forced[0], ("good".to_string(), "UNHEALTHY".to_string()));
    let before = good.hits();
    assert_eq!(get_ok(addr, None, "x", "/").await.backend(), "sick");
    for _ in 0..4 {
        assert_ne!(get(addr, "x", "/").await.backend(), "good");
    }
    assert_eq!(good.hits(), before);
}

#[tokio::test]
async fn a_backend_going_down_turns_unhealthy_and_then_502() {
    let api = start().await;
    let nodes = LoopbackBlock::claim().expect("a block for the nodes");
    let backend = Backend::start(SocketAddr::from((nodes.ip(1), 8080)), "only").await;
    let members = [node(&api, "only", nodes.ip(1))];
    let hc = health_check(&api, "hc", json!({"unhealthyThreshold": 3})).await;
    // (A member that misses probes on a busy machine may turn UNHEALTHY early here: the test
    // only relies on it turning UNHEALTHY once its backend is gone.)
    let g = group(&api, "g", &members, 8080).await;
    let bs = backend_service(&api, "bs", &[&g], &hc, "HTTP").await;
    let map = url_map(&api, json!({"name": "um", "defaultService": bs})).await;
    let proxy = http_proxy(&api, "tp", &map).await;
    let ip = forwarding_rule(&api, "fr", &proxy, 80, None).await;
    let addr = serving(&api, &ip, 80);

    wait_health(&api, "bs", &g, &[("only", "HEALTHY")]).await;
    assert_eq!(get_ok(addr, None, "x", "/").await.backend(), "only");

    backend.stop().await;
    wait_health(&api, "bs", &g, &[("only", "UNHEALTHY")]).await;
    let r = get(addr, "x", "/").await;
    assert_eq!(r.status, 502);
    assert_eq!(
        r.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("text/html; charset=UTF-8")
    );
    assert!(r.body.contains("<h1>Error: Server Error</h1>"), "{}", r.body);
    assert!(
        r.body.contains(
            "The server encountered a temporary error and could not complete your request.<p>Please try again in 30 seconds."
        ),
        "{}",
        r.body
    );
    let view = api.get("/_fake/dataplane").await.ok();
    assert_eq!(view["health"][0]["state"], "UNHEALTHY", "{view:#}");
    assert!(view["health"][0]["lastError"].is_string(), "{view:#}");
}

#[tokio::test]
async fn no_healthy_backend_is_a_502_without_a_connection() {
    let api = start().await;
    let nodes = LoopbackBlock::claim().expect("a block for the nodes");
    let backend = Backend::start(SocketAddr::from((nodes.ip(1), 8080)), "sick").await;
    backend.set_healthy(false);
    let members = [
        node(&api, "sick", nodes.ip(1)),
        node(&api, "far", Ipv4Addr::new(10, 128, 0, 9)),
    ];
    let hc = health_check(&api, "hc", json!({})).await;
    let g = group(&api, "g", &members, 8080).await;
    let bs = backend_service(&api, "bs", &[&g], &hc, "HTTP").await;
    let map = url_map(&api, json!({"name": "um", "defaultService": bs})).await;
    let proxy = http_proxy(&api, "tp", &map).await;
    let ip = forwarding_rule(&api, "fr", &proxy, 80, None).await;
    let addr = serving(&api, &ip, 80);

    // Probed, and failing (a non-loopback instance is unreachable, never connected to).
    eventually("both probed", || async {
        let view = api.get("/_fake/dataplane").await.ok();
        let health = view["health"].as_array().cloned().unwrap_or_default();
        (health.len() == 2 && health.iter().all(|h| h["probes"].as_u64() >= Some(2))).then_some(())
    })
    .await;
    assert_eq!(
        health_of(&api, "bs", &g).await,
        [
            ("far".to_string(), "UNHEALTHY".to_string()),
            ("sick".to_string(), "UNHEALTHY".to_string())
        ]
    );
    for _ in 0..3 {
        assert_eq!(get(addr, "x", "/").await.status, 502);
    }
    assert_eq!(backend.hits(), 0, "no request reached an unhealthy backend");
}

#[tokio::test]
async fn health_checks_probe_the_port_their_specification_names() {
    let api = start().await;
    let nodes = LoopbackBlock::claim().expect("a block for the nodes");
    // Traffic on 8080 (always healthy there), health answered on 9000 only.
    let traffic = Backend::start(SocketAddr::from((nodes.ip(1), 8080)), "traffic").await;
    traffic.set_healthy(false);
    let health = Backend::start(SocketAddr::from((nodes.ip(1), 9000)), "health").await;
    let members = [node(&api, "n", nodes.ip(1))];
    let g = group(&api, "g", &members, 8080).await;
    let serving_hc = health_check(&api, "serving", json!({})).await;
    let fixed_hc = health_check(
        &api,
        "fixed",
        json!({"httpHealthCheck": {"portSpecification": "USE_FIXED_PORT", "port": 9000, "requestPath": "/healthz"}}),
    )
    .await;
    let fixed = backend_service(&api, "fixed", &[&g], &fixed_hc, "HTTP").await;
    backend_service(&api, "serving", &[&g], &serving_hc, "HTTP").await;
    wait_health(&api, "fixed", &g, &[("n", "HEALTHY")]).await;
    wait_health(&api, "serving", &g, &[("n", "UNHEALTHY")]).await;

    // Traffic still goes to the serving port.
    let map = url_map(&api, json!({"name": "um", "defaultService": fixed})).await;
    let proxy = http_proxy(&api, "tp", &map).await;
    let ip = forwarding_rule(&api, "fr", &proxy, 8000, None).await;
    let r = get_ok(serving(&api, &ip, 8000), None, "x", "/").await;
    assert_eq!(r.backend(), "traffic", "{}", r.body);
    assert_eq!(health.hits(), 0);
}

/// A probe waits its health check's `timeoutSec` for the answer, however short the probe interval:
/// a backend answering later than the interval stays HEALTHY (its probes one at a time), and one
/// that never answers fails after `timeoutSec`.
#[tokio::test]
async fn a_probe_has_the_whole_timeout_sec_whatever_the_interval() {
    let api = start().await;
    let nodes = LoopbackBlock::claim().expect("a block for the nodes");
    let slow = Backend::start(SocketAddr::from((nodes.ip(1), 8080)), "slow").await;
    let _mute = Backend::start(SocketAddr::from((nodes.ip(2), 8080)), "mute").await;
    let g_slow = group(&api, "slow", &[node(&api, "slow", nodes.ip(1))], 8080).await;
    let g_mute = group(&api, "mute", &[node(&api, "mute", nodes.ip(2))], 8080).await;
    // Ten seconds to answer `/healthz/slow` (Compute wants the interval at least as long; the
    // fake probes every PROBE anyway, shorter than the answer takes).
    assert!(SLOW_HEALTH > PROBE);
    let patient = health_check(
        &api,
        "patient",
        json!({"checkIntervalSec": 10, "timeoutSec": 10,
               "httpHealthCheck": {"portSpecification": "USE_SERVING_PORT", "requestPath": "/healthz/slow"}}),
    )
    .await;
    // One second for `/healthz/never`, which never answers.
    let strict = health_check(
        &api,
        "strict",
        json!({"unhealthyThreshold": 1,
               "httpHealthCheck": {"portSpecification": "USE_SERVING_PORT", "requestPath": "/healthz/never"}}),
    )
    .await;
    backend_service(&api, "slow", &[&g_slow], &patient, "HTTP").await;
    backend_service(&api, "mute", &[&g_mute], &strict, "HTTP").await;

    wait_health(&api, "slow", &g_slow, &[("slow", "HEALTHY")]).await;
    eventually("three probes of the slow backend", || async {
        let h = probed(&api, "slow").await;
        (h.len() == 1 && h[0]["probes"].as_u64() >= Some(3)).then_some(())
    })
    .await;
    assert_eq!(slow.most_checks_at_once(), 1, "probes of one target overlapped");

    let mute = eventually("a probe of the mute backend", || async {
        let h = probed(&api, "mute").await;
        (h.len() == 1 && h[0]["probes"].as_u64() >= Some(1)).then(|| h[0].clone())
    })
    .await;
    assert_eq!(mute["state"], "UNHEALTHY", "{mute:#}");
    assert!(
        mute["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("no answer within 1s")),
        "{mute:#}"
    );
    wait_health(&api, "mute", &g_mute, &[("mute", "UNHEALTHY")]).await;
}

/// The endpoints of one instance in a NEG, on one port at different IPs (pods on one node), are
/// probed and judged each on its own: only the healthy one gets traffic.
#[tokio::test]
async fn neg_endpoints_of_one_instance_each_have_their_health() {
    let api = start().await;
    let nodes = LoopbackBlock::claim().expect("a block for the nodes");
    let (up_ip, down_ip) = (nodes.ip(11), nodes.ip(12));
    let _up = Backend::start(SocketAddr::from((up_ip, 8080)), "up").await;
    let down = Backend::start(SocketAddr::from((down_ip, 8080)), "down").await;
    down.set_healthy(false);
    // The pods' addresses are the node's alias IP ranges.
    api.gce
        .seed_instance_with(&InstanceSeed {
            ip: Some(nodes.ip(1).to_string()),
            alias_ip_ranges: vec![up_ip.to_string(), down_ip.to_string()],
            ..InstanceSeed::new(ZONE, "n")
        })
        .expect("seeded");
    let neg = api
        .create(
            &format!("zones/{ZONE}/networkEndpointGroups"),
            json!({"name": "neg", "defaultPort": 8080}),
        )
        .await["selfLink"]
        .as_str()
        .expect("link")
        .to_string();
    let endpoints: Vec<_> = [up_ip, down_ip]
        .iter()
        .map(|ip| json!({"instance": "n", "ipAddress": ip.to_string()}))
        .collect();
    api.done(
        Method::POST,
        &format!("zones/{ZONE}/networkEndpointGroups/neg/attachNetworkEndpoints"),
        Some(json!({"networkEndpoints": endpoints})),
    )
    .await;
    let hc = health_check(&api, "hc", json!({})).await;
    let bs = api
        .create(
            "global/backendServices",
            json!({"name": "bs", "protocol": "HTTP", "healthChecks": [hc],
                   "backends": [{"group": neg, "balancingMode": "RATE", "maxRatePerEndpoint": 5}]}),
        )
        .await["selfLink"]
        .as_str()
        .expect("link")
        .to_string();

    let want = json!([
        {"ipAddress": up_ip.to_string(), "healthState": "HEALTHY"},
        {"ipAddress": down_ip.to_string(), "healthState": "UNHEALTHY"},
    ]);
    eventually("each endpoint its own health", || async {
        let got = api
            .post("global/backendServices/bs/getHealth", json!({"group": neg}))
            .await
            .ok();
        let got: Vec<Value> = got["healthStatus"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| json!({"ipAddress": s["ipAddress"], "healthState": s["healthState"]}))
            .collect();
        (Value::Array(got) == want).then_some(())
    })
    .await;
    assert_eq!(probed(&api, "bs").await.len(), 2);

    let map = url_map(&api, json!({"name": "um", "defaultService": bs})).await;
    let proxy = http_proxy(&api, "tp", &map).await;
    let ip = forwarding_rule(&api, "fr", &proxy, 80, None).await;
    let addr = serving(&api, &ip, 80);
    for _ in 0..4 {
        assert_eq!(get_ok(addr, None, "x", "/").await.backend(), "up");
    }
    assert_eq!(down.hits(), 0, "the unhealthy endpoint got traffic");
}

/// A member whose probe changes (here the health check's port) starts over UNHEALTHY, as a new
/// target: what the old probes found says nothing of the new port.
#[tokio::test]
async fn a_changed_probe_starts_over_unhealthy() {
    let api = start().await;
    let nodes = LoopbackBlock::claim().expect("a block for the nodes");
    let _web = Backend::start(SocketAddr::from((nodes.ip(1), 8080)), "web").await;
    let g = group(&api, "g", &[node(&api, "n", nodes.ip(1))], 8080).await;
    // Ten failures in a row to turn UNHEALTHY: the old state would outlive the change a while.
    let hc = health_check(&api, "hc", json!({})).await;
    backend_service(&api, "bs", &[&g], &hc, "HTTP").await;
    wait_health(&api, "bs", &g, &[("n", "HEALTHY")]).await;

    // Nothing listens on port 9 of the node's address (the block is the test's own).
    api.done(
        Method::PATCH,
        "global/healthChecks/hc",
        Some(
            json!({"httpHealthCheck": {"portSpecification": "USE_FIXED_PORT", "port": 9,
                                        "requestPath": "/healthz"}}),
        ),
    )
    .await;
    // From the moment the new port is probed, the member is UNHEALTHY (a probe of the old one
    // still under way counts for nothing), and stays so.
    let entry = eventually("the new port probed", || async {
        let h = probed(&api, "bs").await;
        (h.len() == 1 && h[0]["probePort"] == 9).then(|| h[0].clone())
    })
    .await;
    assert_eq!(entry["state"], "UNHEALTHY", "{entry:#}");
    assert_eq!(
        health_of(&api, "bs", &g).await,
        [("n".to_string(), "UNHEALTHY".to_string())]
    );
}
