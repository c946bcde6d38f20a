//! Zonal network endpoint groups (`GCE_VM_IP_PORT`, as GKE's container-native load balancing
//! uses them): what attach and detach accept and refuse.

use fake_gce::InstanceSeed;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Api, ZONE, link};

const NEGS: &str = "zones/us-central1-a/networkEndpointGroups";

/// Seeds node `name` at `ip` with the alias IP ranges `aliases` (its pods' addresses).
fn node(api: &Api, name: &str, ip: &str, aliases: &[&str]) -> String {
    api.gce
        .seed_instance_with(&InstanceSeed {
            ip: Some(ip.to_string()),
            alias_ip_ranges: aliases.iter().map(|a| a.to_string()).collect(),
            ..InstanceSeed::new(ZONE, name)
        })
        .expect("seeded")
}

/// Creates the NEG `name` with `body` merged in; returns its path.
async fn neg(api: &Api, name: &str, body: Value) -> String {
    let mut b = json!({"name": name});
    if let (Some(b), Some(extra)) = (b.as_object_mut(), body.as_object()) {
        b.extend(extra.clone());
    }
    api.create(NEGS, b).await;
    format!("{NEGS}/{name}")
}

async fn attach(api: &Api, neg: &str, endpoints: Value) -> crate::common::Resp {
    api.post(
        &format!("{neg}/attachNetworkEndpoints"),
        json!({ "networkEndpoints": endpoints }),
    )
    .await
}

/// The endpoints of a NEG as `(instance, ip, port)`.
async fn endpoints(api: &Api, neg: &str) -> Vec<(String, String, u64)> {
    let list = api
        .post(&format!("{neg}/listNetworkEndpoints"), json!({}))
        .await
        .ok();
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            let e = &i["networkEndpoint"];
            (
                e["instance"].as_str().unwrap_or_default().to_string(),
                e["ipAddress"].as_str().unwrap_or_default().to_string(),
                e["port"].as_u64().unwrap_or_default(),
            )
        })
        .collect()
}

fn ep(i: &str, ip: &str, port: u16) -> (String, String, u64) {
    (i.to_string(), ip.to_string(), u64::from(port))
}

/// A `GCE_VM_IP_PORT` endpoint is at the instance's primary IP or within its alias IP ranges;
/// another address is refused in Compute's words (kubernetes/ingress-gce#1463).
#[tokio::test]
async fn endpoint_ips_belong_to_their_instance() {
    let api = Api::start().await;
    node(&api, "node-a", "10.128.0.2", &["10.4.0.0/24"]);
    node(&api, "node-b", "10.128.0.3", &["10.4.1.0/24", "10.9.9.9"]);
    let n = neg(&api, "neg", json!({"defaultPort": 8080})).await;

    // Reads show the ranges as Compute does.
    let inst = api.get(&format!("zones/{ZONE}/instances/node-b")).await.ok();
    assert_eq!(
        inst["networkInterfaces"][0]["aliasIpRanges"],
        json!([{"ipCidrRange": "10.4.1.0/24"}, {"ipCidrRange": "10.9.9.9/32"}])
    );

    // Another node's pod, an address of no node, the node's own range for another node.
    for (instance, ip) in [
        ("node-a", "10.4.1.5"),
        ("node-a", "192.168.0.1"),
        ("node-b", "10.4.0.5"),
    ] {
        let r = attach(&api, &n, json!([{"instance": instance, "ipAddress": ip}])).await;
        r.assert_error(400, "invalid");
        assert_eq!(
            r.message(),
            format!(
                "Invalid value for field 'resource.ipAddress': '{ip}'. Specified IP address {ip} \
                 doesn't belong to the (sub)network default or to the instance {instance}."
            )
        );
    }
    assert_eq!(endpoints(&api, &n).await, []);

    // The primary IP (the default), alias addresses, a /32 alias, a port of its own.
    api.done(
        Method::POST,
        &format!("{n}/attachNetworkEndpoints"),
        Some(json!({"networkEndpoints": [
            {"instance": "node-a"},
            {"instance": "node-a", "ipAddress": "10.4.0.7"},
            {"instance": link(&format!("zones/{ZONE}/instances/node-b")), "ipAddress": "10.4.1.200", "port": 9000},
            {"instance": "node-b", "ipAddress": "10.9.9.9"},
        ]})),
    )
    .await;
    assert_eq!(
        endpoints(&api, &n).await,
        [
            ep("node-a", "10.128.0.2", 8080),
            ep("node-a", "10.4.0.7", 8080),
            ep("node-b", "10.4.1.200", 9000),
            ep("node-b", "10.9.9.9", 8080),
        ]
    );

    // A node on another network than the NEG's: its addresses are not the NEG's.
    api.create("global/networks", json!({"name": "other"})).await;
    api.gce
        .seed_instance_with(&InstanceSeed {
            ip: Some("10.200.0.2".into()),
            network: Some("other".into()),
            ..InstanceSeed::new(ZONE, "elsewhere")
        })
        .expect("seeded");
    attach(&api, &n, json!([{"instance": "elsewhere"}]))
        .await
        .assert_error(400, "invalid");

    // Bad alias ranges are refused when seeding, over the admin API too.
    for bad in ["10.4.0.1/24", "/24", "fd00::/64"] {
        let r = api
            .post(
                "/_fake/instances",
                json!({"zone": ZONE, "name": "x", "aliasIpRanges": [bad]}),
            )
            .await;
        assert_eq!(r.status, 400, "{bad}: {:#}", r.body);
    }
    let r = api
        .post(
            "/_fake/instances",
            json!({"zone": ZONE, "name": "x", "ip": "10.128.0.9", "aliasIpRanges": ["10.5.0.0/16"]}),
        )
        .await
        .ok();
    assert!(r["selfLink"].is_string());
    attach(&api, &n, json!([{"instance": "x", "ipAddress": "10.5.3.4"}]))
        .await
        .ok();
}

/// The per-endpoint rules: an instance for `GCE_VM_IP_PORT`, a port or a default port, one
/// endpoint per IP, 500 per call, 10,000 per NEG, and attach/detach of what is (not) there
/// changing nothing.
#[tokio::test]
async fn endpoint_rules() {
    let api = Api::start().await;
    node(&api, "node-a", "10.128.0.2", &["10.4.0.0/18"]);
    let plain = neg(&api, "plain", json!({})).await;
    let n = neg(&api, "neg", json!({"defaultPort": 8080})).await;

    // No instance; no port anywhere; ports out of range; a bad address; an unknown instance;
    // an instance of another zone.
    for (body, status, reason) in [
        (json!({"ipAddress": "10.4.0.1", "port": 80}), 400, "invalid"),
        (
            json!({"instance": "node-a", "ipAddress": "10.4.0.1"}),
            400,
            "invalid",
        ),
        (
            json!({"instance": "node-a", "ipAddress": "10.4.0.1", "port": 0}),
            400,
            "invalid",
        ),
        (
            json!({"instance": "node-a", "ipAddress": "10.4.0.1", "port": 65536}),
            400,
            "invalid",
        ),
        (
            json!({"instance": "node-a", "ipAddress": "10.4.0.x", "port": 80}),
            400,
            "invalid",
        ),
        (json!({"instance": "ghost", "port": 80}), 404, "notFound"),
        (
            json!({"instance": "zones/us-central1-b/instances/node-a", "port": 80}),
            400,
            "invalid",
        ),
    ] {
        attach(&api, &plain, json!([body.clone()]))
            .await
            .assert_error(status, reason);
    }
    let r = attach(&api, &plain, json!([{"ipAddress": "10.4.0.1", "port": 80}])).await;
    assert!(
        r.message().contains("'networkEndpoints[0].instance'"),
        "{}",
        r.message()
    );

    // One endpoint per IP address in a NEG (another port is another endpoint at that IP).
    api.done(
        Method::POST,
        &format!("{n}/attachNetworkEndpoints"),
        Some(json!({"networkEndpoints": [{"instance": "node-a", "ipAddress": "10.4.0.1"}]})),
    )
    .await;
    attach(
        &api,
        &n,
        json!([{"instance": "node-a", "ipAddress": "10.4.0.1", "port": 9090}]),
    )
    .await
    .assert_error(400, "invalid");
    attach(
        &api,
        &n,
        json!([{"instance": "node-a", "ipAddress": "10.4.0.2"}, {"instance": "node-a", "ipAddress": "10.4.0.2", "port": 1}]),
    )
    .await
    .assert_error(400, "invalid");
    // The same address may be in another NEG.
    attach(
        &api,
        &plain,
        json!([{"instance": "node-a", "ipAddress": "10.4.0.1", "port": 9090}]),
    )
    .await
    .ok();

    // Attaching what is attached, detaching what is not: accepted, nothing changes.
    api.done(
        Method::POST,
        &format!("{n}/attachNetworkEndpoints"),
        Some(json!({"networkEndpoints": [{"instance": "node-a", "ipAddress": "10.4.0.1", "port": 8080}]})),
    )
    .await;
    api.done(
        Method::POST,
        &format!("{n}/detachNetworkEndpoints"),
        Some(json!({"networkEndpoints": [{"instance": "node-a", "ipAddress": "10.4.0.99"}]})),
    )
    .await;
    assert_eq!(endpoints(&api, &n).await, [ep("node-a", "10.4.0.1", 8080)]);

    // 500 per call; 10,000 per NEG.
    let batch = |from: usize, n: usize| -> Value {
        let eps: Vec<Value> = (from..from + n)
            .map(|i| json!({"instance": "node-a", "ipAddress": format!("10.4.{}.{}", i / 250 + 1, i % 250 + 1)}))
            .collect();
        Value::Array(eps)
    };
    attach(&api, &n, batch(0, 501)).await.assert_error(400, "invalid");
    api.done(
        Method::POST,
        &format!("{n}/detachNetworkEndpoints"),
        Some(json!({"networkEndpoints": [{"instance": "node-a", "ipAddress": "10.4.0.1"}]})),
    )
    .await;
    for call in 0..20 {
        api.done(
            Method::POST,
            &format!("{n}/attachNetworkEndpoints"),
            Some(json!({ "networkEndpoints": batch(call * 500, 500) })),
        )
        .await;
    }
    assert_eq!(api.get(&n).await.ok()["size"], 10_000);
    attach(&api, &n, batch(10_000, 1))
        .await
        .assert_error(400, "invalid");
}

/// The types: `defaultPort` is refused for `GCE_VM_IP` NEGs, whose endpoints are an instance's
/// primary IP without a port; hybrid endpoints are an address and a port without an instance.
#[tokio::test]
async fn endpoint_types() {
    let api = Api::start().await;
    node(&api, "node-a", "10.128.0.2", &["10.4.0.0/24"]);
    api.post(
        NEGS,
        json!({"name": "vmip", "networkEndpointType": "GCE_VM_IP", "defaultPort": 80}),
    )
    .await
    .assert_error(400, "invalid");
    let vmip = neg(&api, "vmip", json!({"networkEndpointType": "GCE_VM_IP"})).await;
    attach(&api, &vmip, json!([{"instance": "node-a", "port": 80}]))
        .await
        .assert_error(400, "invalid");
    attach(
        &api,
        &vmip,
        json!([{"instance": "node-a", "ipAddress": "10.4.0.1"}]),
    )
    .await
    .assert_error(400, "invalid");
    attach(&api, &vmip, json!([{"instance": "node-a"}])).await.ok();

    let hybrid = neg(
        &api,
        "hybrid",
        json!({"networkEndpointType": "NON_GCP_PRIVATE_IP_PORT", "defaultPort": 443}),
    )
    .await;
    attach(
        &api,
        &hybrid,
        json!([{"instance": "node-a", "ipAddress": "192.168.1.1"}]),
    )
    .await
    .assert_error(400, "invalid");
    attach(&api, &hybrid, json!([{"port": 443}]))
        .await
        .assert_error(400, "invalid");
    api.done(
        Method::POST,
        &format!("{hybrid}/attachNetworkEndpoints"),
        Some(json!({"networkEndpoints": [{"ipAddress": "192.168.1.1"}]})),
    )
    .await;
    assert_eq!(endpoints(&api, &hybrid).await, [ep("", "192.168.1.1", 443)]);
}
