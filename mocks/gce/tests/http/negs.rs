//! Zonal network endpoint groups (`GCE_VM_IP_PORT`, as GKE's container-native load balancing
//! uses them): what attach and detach accept and refuse.

use std::net::SocketAddr;

use fake_gce::{Config, InstanceSeed, LoopbackBlock};
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Api, ZONE, link};
use crate::dataplane::support::{
    self, Backend, eventually, forwarding_rule, get, get_ok, health_check, http_proxy, probed, serving,
    url_map,
};

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

/// `(ipAddress, port, [(backendService, healthCheck, healthState)])` per endpoint, as
/// `listNetworkEndpoints` with `healthStatus` `status` shows them; `None` where an item has no
/// `healths`.
async fn listed_health(
    api: &Api,
    neg: &str,
    status: &str,
) -> Vec<(String, u64, Option<Vec<(String, String, String)>>)> {
    let list = api
        .post(
            &format!("{neg}/listNetworkEndpoints"),
            json!({ "healthStatus": status }),
        )
        .await
        .ok();
    assert_eq!(list["kind"], "compute#networkEndpointGroupsListNetworkEndpoints");
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            let healths = i.get("healths").map(|h| {
                h.as_array()
                    .into_iter()
                    .flatten()
                    .map(|h| {
                        (
                            s(&h["backendService"]["backendService"]),
                            s(&h["healthCheck"]["healthCheck"]),
                            s(&h["healthState"]),
                        )
                    })
                    .collect()
            });
            (
                s(&i["networkEndpoint"]["ipAddress"]),
                i["networkEndpoint"]["port"].as_u64().unwrap_or_default(),
                healths,
            )
        })
        .collect()
}

/// `(ipAddress, port, healthState)` per endpoint, as `getHealth` of `service` reports them.
async fn reported_health(api: &Api, service: &str, neg: &str) -> Vec<(String, u64, String)> {
    let got = api
        .post(
            &format!("global/backendServices/{service}/getHealth"),
            json!({ "group": neg }),
        )
        .await
        .ok();
    got["healthStatus"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| {
            (
                h["ipAddress"].as_str().unwrap_or_default().to_string(),
                h["port"].as_u64().unwrap_or_default(),
                h["healthState"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// `listNetworkEndpoints` with `healthStatus: SHOW`: one health per backend service using the
/// NEG, naming it and its health check, in the state `getHealth` reports; none with `SKIP` or
/// while no backend service uses the NEG.
#[tokio::test]
async fn listed_health_is_per_backend_service_and_agrees_with_get_health() {
    let api = Api::start().await;
    node(&api, "node-a", "10.128.0.2", &["10.4.0.0/24"]);
    node(&api, "node-b", "10.128.0.3", &[]);
    let n = neg(&api, "neg", json!({"defaultPort": 8080})).await;
    api.done(
        Method::POST,
        &format!("{n}/attachNetworkEndpoints"),
        Some(json!({"networkEndpoints": [
            {"instance": "node-a", "ipAddress": "10.4.0.7"},
            {"instance": "node-a", "ipAddress": "10.4.0.8"},
            {"instance": "node-b"},
        ]})),
    )
    .await;
    let unused = listed_health(&api, &n, "SHOW").await;
    assert_eq!(unused.len(), 3);
    assert!(unused.iter().all(|(_, _, h)| h.is_none()), "{unused:?}");

    for hc in ["hc1", "hc2"] {
        api.create("global/healthChecks", json!({"name": hc, "type": "HTTP"}))
            .await;
    }
    for (bs, hc) in [("bs1", "hc1"), ("bs2", "hc2")] {
        api.create(
            "global/backendServices",
            json!({"name": bs, "healthChecks": [format!("global/healthChecks/{hc}")],
                   "backends": [{"group": n, "balancingMode": "RATE", "maxRatePerEndpoint": 5}]}),
        )
        .await;
    }
    // node-b is down (the admin API): its endpoint, and only it, is UNHEALTHY for both.
    assert!(api.gce.set_instance_health(ZONE, "node-b", false));
    let health = |bs: &str, hc: &str, state: &str| {
        (
            link(&format!("global/backendServices/{bs}")),
            link(&format!("global/healthChecks/{hc}")),
            state.to_string(),
        )
    };
    let both = |state: &str| Some(vec![health("bs1", "hc1", state), health("bs2", "hc2", state)]);
    let mut listed = listed_health(&api, &n, "SHOW").await;
    listed.sort();
    assert_eq!(
        listed,
        [
            ("10.128.0.3".to_string(), 8080, both("UNHEALTHY")),
            ("10.4.0.7".to_string(), 8080, both("HEALTHY")),
            ("10.4.0.8".to_string(), 8080, both("HEALTHY")),
        ]
    );
    for (i, bs) in ["bs1", "bs2"].iter().enumerate() {
        let mut reported = reported_health(&api, bs, &link(&n)).await;
        reported.sort();
        let from_list: Vec<(String, u64, String)> = listed
            .iter()
            .map(|(ip, port, h)| (ip.clone(), *port, h.as_ref().expect("healths")[i].2.clone()))
            .collect();
        assert_eq!(reported, from_list, "{bs}");
    }
    // SKIP (the default) shows none.
    let skipped = listed_health(&api, &n, "SKIP").await;
    assert!(skipped.iter().all(|(_, _, h)| h.is_none()), "{skipped:?}");
    api.post(
        &format!("{n}/listNetworkEndpoints"),
        json!({"healthStatus": "MAYBE"}),
    )
    .await
    .assert_error(400, "invalid");
}

/// With the data plane on, two endpoints of one instance (pods of one node, one port) are
/// probed each on its own, and `listNetworkEndpoints` reports what `getHealth` does: the pod
/// that answers its health check HEALTHY, the one that does not UNHEALTHY.
#[tokio::test]
async fn listed_health_follows_the_probes() {
    let api = support::start().await;
    let pods = LoopbackBlock::claim().expect("a block for the pods");
    let (up_ip, down_ip) = (pods.ip(11), pods.ip(12));
    let _up = Backend::start(SocketAddr::from((up_ip, 8080)), "up").await;
    let down = Backend::start(SocketAddr::from((down_ip, 8080)), "down").await;
    down.set_healthy(false);
    node(
        &api,
        "n",
        &pods.ip(1).to_string(),
        &[&format!("{}/24", pods.base())],
    );
    let n = neg(&api, "neg", json!({"defaultPort": 8080})).await;
    api.done(
        Method::POST,
        &format!("{n}/attachNetworkEndpoints"),
        Some(json!({"networkEndpoints": [
            {"instance": "n", "ipAddress": up_ip.to_string()},
            {"instance": "n", "ipAddress": down_ip.to_string()},
        ]})),
    )
    .await;
    let hc = health_check(&api, "hc", json!({})).await;
    api.create(
        "global/backendServices",
        json!({"name": "bs", "protocol": "HTTP", "healthChecks": [hc],
               "backends": [{"group": n, "balancingMode": "RATE", "maxRatePerEndpoint": 5}]}),
    )
    .await;

    let want = |ip: std::net::Ipv4Addr, state: &str| (ip.to_string(), 8080, state.to_string());
    let mut expected = vec![want(up_ip, "HEALTHY"), want(down_ip, "UNHEALTHY")];
    expected.sort();
    eventually(
        "getHealth: the up pod HEALTHY, the down one UNHEALTHY",
        || async {
            let mut got = reported_health(&api, "bs", &link(&n)).await;
            got.sort();
            (got == expected).then_some(())
        },
    )
    .await;
    eventually("listNetworkEndpoints says the same", || async {
        let mut got: Vec<(String, u64, String)> = listed_health(&api, &n, "SHOW")
            .await
            .into_iter()
            .filter_map(|(ip, port, h)| {
                let h = h?;
                (h.len() == 1 && h[0].1 == hc).then(|| (ip, port, h[0].2.clone()))
            })
            .collect();
        got.sort();
        (got == expected).then_some(())
    })
    .await;
    assert_eq!(probed(&api, "bs").await.len(), 2);
}

/// `GET projects/p/aggregated/networkEndpointGroups`: zonal and regional NEGs keyed by scope, a
/// warning for each empty scope, `filter` and paging as a list; counted as lists of
/// `networkEndpointGroups`.
#[tokio::test]
async fn aggregated_list() {
    let api = Api::with(Config {
        zones: vec!["us-central1-a".into(), "europe-west1-b".into()],
        ..crate::common::config()
    })
    .await;
    node(&api, "node-a", "10.128.0.2", &[]);
    let a = neg(&api, "neg-a", json!({"defaultPort": 80})).await;
    attach(&api, &a, json!([{"instance": "node-a"}])).await.ok();
    neg(&api, "neg-b", json!({})).await;
    api.create(
        "regions/us-central1/networkEndpointGroups",
        json!({"name": "neg-r", "networkEndpointType": "SERVERLESS",
               "cloudRun": {"service": "hello"}}),
    )
    .await;
    api.gce.reset_stats();

    let all = api.get("aggregated/networkEndpointGroups").await.ok();
    assert_eq!(all["kind"], "compute#networkEndpointGroupAggregatedList");
    assert_eq!(all["id"], "projects/p/aggregated/networkEndpointGroups");
    assert_eq!(all["selfLink"], link("aggregated/networkEndpointGroups"));
    assert!(all.get("nextPageToken").is_none());
    let scopes: Vec<&String> = all["items"]
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    assert_eq!(
        scopes,
        [
            "regions/europe-west1",
            "regions/us-central1",
            "zones/europe-west1-b",
            "zones/us-central1-a"
        ]
    );
    assert_eq!(
        all["items"]["zones/europe-west1-b"],
        json!({"warning": {"code": "NO_RESULTS_ON_PAGE",
                           "message": "There are no results for scope 'zones/europe-west1-b' on this page.",
                           "data": [{"key": "scope", "value": "zones/europe-west1-b"}]}})
    );
    let zonal = &all["items"]["zones/us-central1-a"]["networkEndpointGroups"];
    assert_eq!(zonal[0]["name"], "neg-a");
    assert_eq!(zonal[0]["kind"], "compute#networkEndpointGroup");
    assert_eq!(zonal[0]["size"], 1);
    assert_eq!(zonal[1]["name"], "neg-b");
    assert_eq!(
        all["items"]["regions/us-central1"]["networkEndpointGroups"][0]["selfLink"],
        link("regions/us-central1/networkEndpointGroups/neg-r")
    );

    // Paging counts NEGs across scopes; a filter applies to all of them.
    let first = api
        .get("aggregated/networkEndpointGroups?maxResults=2")
        .await
        .ok();
    let token = first["nextPageToken"].as_str().expect("a second page");
    let second = api
        .get(&format!(
            "aggregated/networkEndpointGroups?maxResults=2&pageToken={token}"
        ))
        .await
        .ok();
    assert!(second.get("nextPageToken").is_none());
    let names = |l: &Value| -> Vec<String> {
        l["items"]
            .as_object()
            .into_iter()
            .flatten()
            .flat_map(|(_, s)| s["networkEndpointGroups"].as_array().cloned().unwrap_or_default())
            .filter_map(|n| n["name"].as_str().map(str::to_string))
            .collect()
    };
    let mut seen = names(&first);
    seen.extend(names(&second));
    assert_eq!(seen, ["neg-r", "neg-a", "neg-b"]);
    let filtered = api
        .get("aggregated/networkEndpointGroups?filter=name%20eq%20neg-b")
        .await
        .ok();
    assert_eq!(names(&filtered), ["neg-b"]);
    assert_eq!(
        filtered["items"]["regions/us-central1"]["warning"]["code"],
        "NO_RESULTS_ON_PAGE"
    );
    assert_eq!(api.stats().await["byKind"]["networkEndpointGroups"]["lists"], 4);
}

/// A backend service does not mix instance groups and zonal NEGs, nor NEGs of incompatible
/// types ("Backend services overview"); zonal and hybrid NEGs go together.
#[tokio::test]
async fn backend_kinds_are_not_mixed() {
    let api = Api::start().await;
    node(&api, "node-a", "10.128.0.2", &[]);
    api.create(
        &format!("zones/{ZONE}/instanceGroups"),
        json!({"name": "ig", "namedPorts": [{"name": "http", "port": 80}]}),
    )
    .await;
    let ig = link(&format!("zones/{ZONE}/instanceGroups/ig"));
    let zonal = link(&neg(&api, "zonal", json!({"defaultPort": 80})).await);
    let hybrid = link(
        &neg(
            &api,
            "hybrid",
            json!({"networkEndpointType": "NON_GCP_PRIVATE_IP_PORT", "defaultPort": 80}),
        )
        .await,
    );
    let vmip = link(&neg(&api, "vmip", json!({"networkEndpointType": "GCE_VM_IP"})).await);
    api.create("global/healthChecks", json!({"name": "hc", "type": "HTTP"}))
        .await;
    let backend = |g: &str| {
        if g.contains("instanceGroups") {
            json!({"group": g})
        } else {
            json!({"group": g, "balancingMode": "RATE", "maxRatePerEndpoint": 5})
        }
    };
    let service = |name: &str, groups: &[&str]| {
        let backends: Vec<Value> = groups.iter().map(|g| backend(g)).collect();
        json!({"name": name, "healthChecks": ["global/healthChecks/hc"], "backends": backends})
    };

    for (i, groups) in [
        vec![ig.as_str(), zonal.as_str()],
        vec![zonal.as_str(), ig.as_str()],
        vec![zonal.as_str(), vmip.as_str()],
        vec![hybrid.as_str(), zonal.as_str(), ig.as_str()],
    ]
    .into_iter()
    .enumerate()
    {
        let r = api
            .post("global/backendServices", service("mixed", &groups))
            .await;
        r.assert_error(400, "invalid");
        let bad = groups.len() - 1;
        assert!(
            r.message().starts_with(&format!(
                "Invalid value for field 'resource.backends[{bad}].group': '{}'. A backend service cannot mix backends of different types",
                groups[bad]
            )),
            "case {i}: {}",
            r.message()
        );
    }
    assert_eq!(api.get("global/backendServices/mixed").await.status, 404);

    // Zonal and hybrid NEGs together; instance groups alone.
    api.create(
        "global/backendServices",
        service("negs", &[zonal.as_str(), hybrid.as_str()]),
    )
    .await;
    let igs = api
        .create("global/backendServices", service("igs", &[ig.as_str()]))
        .await;
    // Adding a NEG to the instance groups' service is refused too, by patch and by update.
    let r = api
        .patch(
            "global/backendServices/igs",
            json!({"backends": [backend(&ig), backend(&zonal)], "fingerprint": igs["fingerprint"]}),
        )
        .await;
    r.assert_error(400, "invalid");
    let mut whole = igs.clone();
    whole["backends"] = json!([backend(&ig), backend(&zonal)]);
    api.put("global/backendServices/igs", whole)
        .await
        .assert_error(400, "invalid");
    let igs_now = api.get("global/backendServices/igs").await.ok();
    assert_eq!(igs_now["backends"].as_array().map(Vec::len), Some(1));
}

/// The admin API forces one endpoint's health: that endpoint, and not another of the same
/// instance, is UNHEALTHY for `getHealth` and `listNetworkEndpoints` until lifted; the
/// override goes with the endpoint.
#[tokio::test]
async fn admin_endpoint_health() {
    let api = Api::start().await;
    node(&api, "node-a", "10.128.0.2", &["10.4.0.0/24"]);
    let n = neg(&api, "neg", json!({"defaultPort": 8080})).await;
    let pods = json!([
        {"instance": "node-a", "ipAddress": "10.4.0.7"},
        {"instance": "node-a", "ipAddress": "10.4.0.8"},
    ]);
    api.done(
        Method::POST,
        &format!("{n}/attachNetworkEndpoints"),
        Some(json!({ "networkEndpoints": pods })),
    )
    .await;
    api.create("global/healthChecks", json!({"name": "hc", "type": "HTTP"}))
        .await;
    api.create(
        "global/backendServices",
        json!({"name": "bs", "healthChecks": ["global/healthChecks/hc"],
               "backends": [{"group": n, "balancingMode": "RATE", "maxRatePerEndpoint": 5}]}),
    )
    .await;
    let states = || async {
        let reported = reported_health(&api, "bs", &link(&n)).await;
        let listed: Vec<(String, u64, String)> = listed_health(&api, &n, "SHOW")
            .await
            .into_iter()
            .map(|(ip, port, h)| (ip, port, h.expect("healths")[0].2.clone()))
            .collect();
        assert_eq!(reported, listed, "getHealth and listNetworkEndpoints agree");
        reported
            .into_iter()
            .map(|(ip, _, state)| format!("{ip} {state}"))
            .collect::<Vec<_>>()
    };
    assert_eq!(states().await, ["10.4.0.7 HEALTHY", "10.4.0.8 HEALTHY"]);

    assert!(api.gce.set_endpoint_health(ZONE, "neg", "10.4.0.7", 8080, false));
    assert_eq!(states().await, ["10.4.0.7 UNHEALTHY", "10.4.0.8 HEALTHY"]);
    let state = api.get("/_fake/state").await.ok();
    assert_eq!(
        state["unhealthyEndpoints"],
        json!([{"networkEndpointGroup": "projects/p/zones/us-central1-a/networkEndpointGroups/neg",
                "ipAddress": "10.4.0.7", "port": 8080}])
    );
    // Over HTTP.
    let route = format!("/_fake/endpoints/{ZONE}/neg/health");
    api.put(
        &route,
        json!({"ipAddress": "10.4.0.8", "port": 8080, "healthState": "UNHEALTHY"}),
    )
    .await
    .ok();
    assert_eq!(states().await, ["10.4.0.7 UNHEALTHY", "10.4.0.8 UNHEALTHY"]);
    api.put(
        &route,
        json!({"ipAddress": "10.4.0.7", "port": 8080, "healthState": "HEALTHY"}),
    )
    .await
    .ok();
    assert_eq!(states().await, ["10.4.0.7 HEALTHY", "10.4.0.8 UNHEALTHY"]);
    // Not an endpoint of the NEG (another port, another address, another NEG); a bad state.
    for (path, body) in [
        (
            &route,
            json!({"ipAddress": "10.4.0.8", "port": 80, "healthState": "UNHEALTHY"}),
        ),
        (
            &route,
            json!({"ipAddress": "10.4.0.9", "port": 8080, "healthState": "UNHEALTHY"}),
        ),
        (
            &format!("/_fake/endpoints/{ZONE}/nope/health"),
            json!({"ipAddress": "10.4.0.8", "port": 8080, "healthState": "UNHEALTHY"}),
        ),
    ] {
        assert_eq!(api.put(path, body).await.status, 404);
    }
    assert!(!api.gce.set_endpoint_health(ZONE, "neg", "not-an-ip", 8080, false));
    assert_eq!(
        api.put(
            &route,
            json!({"ipAddress": "10.4.0.8", "port": 8080, "healthState": "DRAINING"})
        )
        .await
        .status,
        400
    );

    // Detached, the endpoint's override goes: attached again, it is HEALTHY.
    for verb in ["detachNetworkEndpoints", "attachNetworkEndpoints"] {
        api.done(
            Method::POST,
            &format!("{n}/{verb}"),
            Some(json!({"networkEndpoints": [{"instance": "node-a", "ipAddress": "10.4.0.8"}]})),
        )
        .await;
    }
    assert_eq!(states().await, ["10.4.0.7 HEALTHY", "10.4.0.8 HEALTHY"]);
    assert_eq!(
        api.get("/_fake/state").await.ok()["unhealthyEndpoints"],
        json!([])
    );
}

/// Traffic goes to the attached endpoints whose probes pass and the admin API did not force
/// UNHEALTHY: not to a pod that is not attached, not to one failing its health check, not to
/// one forced UNHEALTHY (from the moment the call returns), not to one detached (from the
/// moment its operation is DONE).
#[tokio::test]
async fn traffic_goes_only_to_healthy_attached_endpoints() {
    let api = support::start().await;
    let pods = LoopbackBlock::claim().expect("a block for the pods");
    let ip = |h: u8| pods.ip(h);
    let up1 = Backend::start(SocketAddr::from((ip(11), 8080)), "up1").await;
    let up2 = Backend::start(SocketAddr::from((ip(12), 8080)), "up2").await;
    let sick = Backend::start(SocketAddr::from((ip(13), 8080)), "sick").await;
    let stray = Backend::start(SocketAddr::from((ip(14), 8080)), "stray").await;
    sick.set_healthy(false);
    node(&api, "n", &ip(1).to_string(), &[&format!("{}/24", pods.base())]);
    let n = neg(&api, "neg", json!({"defaultPort": 8080})).await;
    let endpoint = |h: u8| json!({"instance": "n", "ipAddress": ip(h).to_string()});
    api.done(
        Method::POST,
        &format!("{n}/attachNetworkEndpoints"),
        Some(json!({"networkEndpoints": [endpoint(11), endpoint(12), endpoint(13)]})),
    )
    .await;
    let hc = health_check(&api, "hc", json!({})).await;
    let bs = api
        .create(
            "global/backendServices",
            json!({"name": "bs", "protocol": "HTTP", "healthChecks": [hc],
                   "backends": [{"group": n, "balancingMode": "RATE", "maxRatePerEndpoint": 5}]}),
        )
        .await["selfLink"]
        .as_str()
        .expect("link")
        .to_string();
    let map = url_map(&api, json!({"name": "um", "defaultService": bs})).await;
    let proxy = http_proxy(&api, "tp", &map).await;
    let lb = forwarding_rule(&api, "fr", &proxy, 80, None).await;
    let addr = serving(&api, &lb, 80);

    let mut want = vec![
        (ip(11).to_string(), 8080, "HEALTHY".to_string()),
        (ip(12).to_string(), 8080, "HEALTHY".to_string()),
        (ip(13).to_string(), 8080, "UNHEALTHY".to_string()),
    ];
    want.sort();
    eventually("up1 and up2 HEALTHY, sick UNHEALTHY", || async {
        let mut got = reported_health(&api, "bs", &link(&n)).await;
        got.sort();
        (got == want).then_some(())
    })
    .await;
    // Both healthy pods serve, in turn.
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..6 {
        let b = get_ok(addr, None, "x", "/").await.backend();
        assert!(b == "up1" || b == "up2", "{b}");
        seen.insert(b);
    }
    assert_eq!(seen.len(), 2, "{seen:?}");

    // up1 forced UNHEALTHY: from now on only up2.
    assert!(
        api.gce
            .set_endpoint_health(ZONE, "neg", &ip(11).to_string(), 8080, false)
    );
    let hits = up1.hits();
    for _ in 0..6 {
        assert_eq!(get_ok(addr, None, "x", "/").await.backend(), "up2");
    }
    assert_eq!(up1.hits(), hits);

    // up2 detached: nothing healthy is attached, the load balancer answers 502.
    api.done(
        Method::POST,
        &format!("{n}/detachNetworkEndpoints"),
        Some(json!({"networkEndpoints": [endpoint(12)]})),
    )
    .await;
    let hits = up2.hits();
    assert_eq!(get(addr, "x", "/").await.status, 502);
    assert_eq!(up2.hits(), hits);

    // up1 lifted: it serves again.
    assert!(
        api.gce
            .set_endpoint_health(ZONE, "neg", &ip(11).to_string(), 8080, true)
    );
    assert_eq!(get_ok(addr, None, "x", "/").await.backend(), "up1");
    assert_eq!(sick.hits(), 0, "the pod failing its health check got traffic");
    assert_eq!(stray.hits(), 0, "a pod not attached got traffic");
}

/// A NEG a backend service uses cannot be deleted; once no backend service uses it, it can
/// (its endpoints, and their forced health, go with it).
#[tokio::test]
async fn a_neg_in_use_is_not_deletable() {
    let api = Api::start().await;
    node(&api, "node-a", "10.128.0.2", &[]);
    let n = neg(&api, "neg", json!({"defaultPort": 80})).await;
    attach(&api, &n, json!([{"instance": "node-a"}])).await.ok();
    api.create("global/healthChecks", json!({"name": "hc", "type": "HTTP"}))
        .await;
    let bs = api
        .create(
            "global/backendServices",
            json!({"name": "bs", "healthChecks": ["global/healthChecks/hc"],
                   "backends": [{"group": n, "balancingMode": "RATE", "maxRatePerEndpoint": 5}]}),
        )
        .await;
    assert!(api.gce.set_endpoint_health(ZONE, "neg", "10.128.0.2", 80, false));
    let r = api.delete(&n).await;
    r.assert_error(400, "resourceInUseByAnotherResource");
    assert_eq!(
        r.message(),
        format!(
            "The networkEndpointGroup resource 'projects/p/{n}' is already being used by 'projects/p/global/backendServices/bs'"
        )
    );
    api.done(
        Method::PATCH,
        "global/backendServices/bs",
        Some(json!({"backends": [], "fingerprint": bs["fingerprint"]})),
    )
    .await;
    api.done(Method::DELETE, &n, None).await;
    assert_eq!(api.get(&n).await.status, 404);
    assert_eq!(
        api.get("/_fake/state").await.ok()["unhealthyEndpoints"],
        json!([])
    );
}
