//! The GCE provider against the fake Compute API, over HTTP: building, updating and deleting
//! load balancers, and its behaviour under faults, foreign resources and quotas.

mod common;

use cloud::model::*;
use cloud::{ErrorCategory, Provider, ResourceKind};
use common::*;
use fake_gce::{FaultAction, FaultRule};
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn http_only_load_balancer_is_built_and_wired() {
    let env = Env::start(&[30080]).await;
    let lb = lb("default", "web", vec![backend("default", "echo", 80, 30080)]);
    let status = env.provider.ensure(&lb).await.expect("ensure");

    assert!(status.changed);
    let address = env.get("addresses", &status.names(ResourceKind::Address)[0]);
    assert_eq!(address["address"], status.address.as_str());
    assert_eq!(
        env.counts(),
        vec![
            ("addresses", 1),
            ("healthChecks", 1),
            ("backendServices", 1),
            ("urlMaps", 1),
            ("targetHttpProxies", 1),
            ("targetHttpsProxies", 0),
            ("sslCertificates", 0),
            ("forwardingRules", 1),
        ]
    );
    let rule = env.get(
        "forwardingRules",
        &status.names(ResourceKind::HttpForwardingRule)[0],
    );
    assert_eq!(rule["IPAddress"], status.address.as_str());
    assert_eq!(rule["portRange"], "80-80");
    assert_eq!(
        name(&rule["target"]),
        status.names(ResourceKind::TargetHttpProxy)[0]
    );
    let proxy = env.get(
        "targetHttpProxies",
        &status.names(ResourceKind::TargetHttpProxy)[0],
    );
    assert_eq!(name(&proxy["urlMap"]), status.names(ResourceKind::UrlMap)[0]);
    let map = env.get("urlMaps", &status.names(ResourceKind::UrlMap)[0]);
    let be = &status.names(ResourceKind::BackendService)[0];
    assert_eq!(name(&map["defaultService"]), *be);
    let service = env.get("backendServices", be);
    assert_eq!(service["portName"], "port30080");
    assert_eq!(name(&service["healthChecks"][0]), *be);
    let groups: Vec<String> = service["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["group"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(groups.len(), 2, "one instance group per zone: {groups:?}");
    assert!(
        groups.iter().any(|g| g.contains("/zones/us-central1-a/"))
            && groups.iter().any(|g| g.contains("/zones/us-central1-b/"))
    );
    // Every resource records its owner.
    for (_, r) in env.resources().iter().filter(|(p, _)| p.contains("/global/")) {
        assert!(
            r["description"].as_str().unwrap_or_default().contains(CLUSTER),
            "{r}"
        );
    }
}

#[tokio::test]
async fn infrastructure_holds_the_nodes_and_named_ports() {
    let env = Env::start(&[30080, 30081]).await;
    let ig = env.provider.namer().instance_group();
    let state = env.gce.state();
    for (zone, expected) in [("us-central1-a", 2), ("us-central1-b", 1)] {
        let path = format!("projects/{PROJECT}/zones/{zone}/instanceGroups/{ig}");
        let group = env.gce.resource(&path).expect("group");
        let ports: Vec<&str> = group["namedPorts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(ports, vec!["port30080", "port30081"]);
        assert_eq!(
            state["members"][&path].as_array().map(Vec::len),
            Some(expected),
            "{zone}"
        );
    }
    let fw = env.get("firewalls", &env.provider.namer().firewall());
    assert_eq!(fw["sourceRanges"], json!(["130.211.0.0/22", "35.191.0.0/16"]));
    assert_eq!(
        fw["allowed"],
        json!([{"IPProtocol": "tcp", "ports": ["30080-30081"]}])
    );

    // A node leaves, a port is added: the same groups follow.
    let mut infra = env.infra.clone();
    infra.nodes.retain(|n| n.name != "node-a2");
    infra.node_ports.insert(31000);
    env.provider.ensure_infrastructure(&infra).await.unwrap();
    let state = env.gce.state();
    let a = format!("projects/{PROJECT}/zones/us-central1-a/instanceGroups/{ig}");
    assert_eq!(state["members"][&a].as_array().map(Vec::len), Some(1));
    let fw = env.get("firewalls", &env.provider.namer().firewall());
    assert_eq!(fw["allowed"][0]["ports"], json!(["30080-30081", "31000"]));
}

#[tokio::test]
async fn https_with_two_certificates_and_the_redirect() {
    let env = Env::start(&[30080]).await;
    let certs = vec![
        certificate("default/tls-a", "a.example.com"),
        certificate("default/tls-b", "b.example.com"),
    ];
    let mut lb = with_https(
        lb("default", "tls", vec![backend("default", "echo", 80, 30080)]),
        certs,
    );
    lb.frontends.redirect_to_https = Some(RedirectCode::MovedPermanently);
    let status = env.provider.ensure(&lb).await.expect("ensure");

    let https = env.get(
        "targetHttpsProxies",
        &status.names(ResourceKind::TargetHttpsProxy)[0],
    );
    let attached: Vec<String> = https["sslCertificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(name)
        .collect();
    assert_eq!(attached, status.names(ResourceKind::SslCertificate));
    assert_eq!(attached.len(), 2);
    assert_eq!(name(&https["urlMap"]), status.names(ResourceKind::UrlMap)[0]);
    // :80 goes to the redirect map, which routes nothing.
    let http = env.get(
        "targetHttpProxies",
        &status.names(ResourceKind::TargetHttpProxy)[0],
    );
    let redirect = env.get("urlMaps", &name(&http["urlMap"]));
    assert_eq!(
        status.names(ResourceKind::RedirectUrlMap),
        [name(&http["urlMap"])]
    );
    assert_eq!(redirect["defaultUrlRedirect"]["httpsRedirect"], true);
    assert_eq!(
        redirect["defaultUrlRedirect"]["redirectResponseCode"],
        "MOVED_PERMANENTLY_DEFAULT"
    );
    // Both rules share the one address.
    let fr = env.get(
        "forwardingRules",
        &status.names(ResourceKind::HttpForwardingRule)[0],
    );
    let fs = env.get(
        "forwardingRules",
        &status.names(ResourceKind::HttpsForwardingRule)[0],
    );
    assert_eq!(fr["IPAddress"], fs["IPAddress"]);
    assert_eq!(fs["portRange"], "443-443");
    assert_eq!(env.names("addresses").len(), 1);

    // Redirect off: the HTTP proxy serves the routing map again and the redirect map goes.
    lb.frontends.redirect_to_https = None;
    let status = env.provider.ensure(&lb).await.unwrap();
    let http = env.get(
        "targetHttpProxies",
        &status.names(ResourceKind::TargetHttpProxy)[0],
    );
    assert_eq!(name(&http["urlMap"]), status.names(ResourceKind::UrlMap)[0]);
    assert_eq!(env.names("urlMaps").len(), 1);
}

#[tokio::test]
async fn named_static_address_is_used_and_never_deleted() {
    let env = Env::start(&[30080]).await;
    // The user reserved it: plant it through the API as a user would.
    let client = reqwest::Client::new();
    let url = format!("{}projects/{PROJECT}/global/addresses", env.gce.base_url());
    let op: Value = client
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&json!({"name": "my-static-ip"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(op["name"].is_string());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let static_ip = env.get("addresses", "my-static-ip")["address"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut lb = lb("default", "static", vec![backend("default", "echo", 80, 30080)]);
    lb.address = AddressRequest::Static {
        name: "my-static-ip".into(),
    };
    let status = env.provider.ensure(&lb).await.expect("ensure");
    assert_eq!(status.address, static_ip);
    assert_eq!(env.names("addresses").len(), 1, "no address of our own");

    env.provider.delete(&lb.key).await.unwrap();
    assert_eq!(
        env.names("addresses").into_iter().collect::<Vec<_>>(),
        ["my-static-ip"]
    );

    // A name that does not exist is the user's to fix.
    lb.address = AddressRequest::Static {
        name: "missing-ip".into(),
    };
    let err = env.provider.ensure(&lb).await.unwrap_err();
    assert_eq!(err.category, ErrorCategory::User);
    assert!(err.message.contains("missing-ip"), "{}", err.message);
}

#[tokio::test]
async fn paths_hosts_and_node_ports_change_in_place() {
    let env = Env::start(&[30080, 30081, 30090]).await;
    let mut lb = lb(
        "default",
        "routes",
        vec![
            backend("default", "a", 80, 30080),
            backend("default", "b", 80, 30081),
        ],
    );
    let status = env.provider.ensure(&lb).await.unwrap();
    let ip = status.address.clone();
    let map_name = status.names(ResourceKind::UrlMap)[0].clone();
    let map = env.get("urlMaps", &map_name);
    assert_eq!(map["hostRules"][0]["hosts"], json!(["app.example.com"]));
    assert_eq!(
        map["pathMatchers"][0]["pathRules"][0]["paths"],
        json!(["/b1", "/b1/*"])
    );

    // A new host and an Exact path; the URL map is updated, everything else kept.
    lb.routes.hosts.push(HostRule {
        host: HostMatch::Wildcard("example.org".into()),
        paths: vec![PathRule {
            path: "/exact".into(),
            kind: PathMatch::Exact,
            backend: lb.backends[0].key.clone(),
        }],
    });
    env.gce.reset_stats();
    let status = env.provider.ensure(&lb).await.unwrap();
    assert_eq!(status.address, ip);
    let stats = env.gce.stats();
    assert_eq!(stats.total.mutations, 1, "only the URL map: {stats:?}");
    assert_eq!(stats.kind("urlMaps").mutations, 1);
    let map = env.get("urlMaps", &map_name);
    assert_eq!(map["hostRules"][1]["hosts"], json!(["*.example.org"]));
    assert_eq!(map["pathMatchers"][1]["pathRules"][0]["paths"], json!(["/exact"]));

    // The Service's node port changes: the backend service follows, nothing else.
    lb.backends[1].target = BackendTarget::NodePort { node_port: 30090 };
    env.gce.reset_stats();
    env.provider.ensure(&lb).await.unwrap();
    assert_eq!(env.gce.stats().total.mutations, 1);
    let be = env.provider.namer().backend("default", "b", 80);
    assert_eq!(env.get("backendServices", &be)["portName"], "port30090");

    // Backend b is no longer used: its backend service and health check go.
    lb.routes.hosts.remove(0);
    lb.backends.retain(|b| b.key.service == "a");
    env.provider.ensure(&lb).await.unwrap();
    assert!(env.try_get("backendServices", &be).is_none());
    assert!(env.try_get("healthChecks", &be).is_none());
    assert_eq!(env.names("backendServices").len(), 1);
}

#[tokio::test]
async fn certificate_rotation_never_leaves_the_proxy_without_a_certificate() {
    let env = Env::start_with(fake_config(), &[30080], |_| {}).await;
    env.gce
        .set_latency(fake_gce::Latency::uniform(Duration::from_millis(30)));
    let old = certificate("default/tls", "rotate.example.com");
    let mut lb = with_https(
        lb("default", "rotate", vec![backend("default", "echo", 80, 30080)]),
        vec![old],
    );
    let status = env.provider.ensure(&lb).await.unwrap();
    let proxy_name = status.names(ResourceKind::TargetHttpsProxy)[0].clone();
    let old_name = status.names(ResourceKind::SslCertificate)[0].clone();

    // Watch the proxy as the rotation runs: it must always name at least one certificate,
    // and every certificate it names must exist.
    let new = certificate("default/tls", "rotate.example.com");
    lb.frontends.https.as_mut().unwrap().certificates = vec![new];
    let watcher = {
        let path = format!("projects/{PROJECT}/global/targetHttpsProxies/{proxy_name}");
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let d = done.clone();
        let gce = &env.gce;
        let watch = async move {
            let mut observations = 0;
            while !d.load(std::sync::atomic::Ordering::Relaxed) {
                let proxy = gce.resource(&path).expect("proxy exists throughout");
                let certs = proxy["sslCertificates"].as_array().cloned().unwrap_or_default();
                assert!(!certs.is_empty(), "the proxy had no certificate");
                for c in &certs {
                    assert!(
                        gce.resource(c.as_str().unwrap()).is_some(),
                        "the proxy named a missing certificate {c}"
                    );
                }
                observations += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            observations
        };
        (done, watch)
    };
    let (done, watch) = watcher;
    let rotate = async {
        let status = env.provider.ensure(&lb).await.unwrap();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        status
    };
    let (status, observations) = tokio::join!(rotate, watch);
    assert!(observations > 10, "watched {observations} times");
    let new_name = status.names(ResourceKind::SslCertificate)[0].clone();
    assert_ne!(new_name, old_name);
    assert_eq!(
        env.names("sslCertificates").into_iter().collect::<Vec<_>>(),
        [new_name]
    );
}

#[tokio::test]
async fn turning_http_off_removes_only_the_http_rule_and_proxy() {
    let env = Env::start(&[30080]).await;
    let mut lb = with_https(
        lb("default", "noplain", vec![backend("default", "echo", 80, 30080)]),
        vec![certificate("default/tls", "x.example.com")],
    );
    let before = env.provider.ensure(&lb).await.unwrap();
    lb.frontends.http = false;
    env.gce.reset_stats();
    let after = env.provider.ensure(&lb).await.unwrap();
    assert_eq!(after.address, before.address, "the address is kept");
    assert!(after.names(ResourceKind::HttpForwardingRule).is_empty());
    assert!(env.names("targetHttpProxies").is_empty());
    assert_eq!(env.names("forwardingRules").len(), 1);
    let stats = env.gce.stats();
    assert_eq!(
        stats.total.mutations, 2,
        "delete the rule, then the proxy: {stats:?}"
    );
}

#[tokio::test]
async fn delete_leaves_nothing_but_foreign_resources() {
    let env = Env::start(&[30080, 30081]).await;
    // A resource of someone else, with a name nothing like ours.
    let client = reqwest::Client::new();
    let url = format!("{}projects/{PROJECT}/global/healthChecks", env.gce.base_url());
    client
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&json!({"name": "users-own-check", "type": "TCP", "tcpHealthCheck": {"port": 22}}))
        .send()
        .await
        .unwrap();

    let a = with_https(
        lb(
            "default",
            "a",
            vec![
                backend("default", "shared", 80, 30080),
                backend("default", "only-a", 80, 30081),
            ],
        ),
        vec![certificate("default/tls", "a.example.com")],
    );
    let b = lb("other", "b", vec![backend("default", "shared", 80, 30080)]);
    env.provider.ensure(&a).await.unwrap();
    env.provider.ensure(&b).await.unwrap();
    assert_eq!(
        env.names("backendServices").len(),
        2,
        "the shared backend exists once"
    );

    env.provider.delete(&a.key).await.unwrap();
    let shared = env.provider.namer().backend("default", "shared", 80);
    assert!(
        env.try_get("backendServices", &shared).is_some(),
        "still used by b"
    );
    assert!(
        env.try_get(
            "backendServices",
            &env.provider.namer().backend("default", "only-a", 80)
        )
        .is_none()
    );

    env.provider.delete(&b.key).await.unwrap();
    env.provider.delete(&b.key).await.expect("deleting twice is fine");
    let infra = ClusterInfra {
        nodes: nodes(),
        ..Default::default()
    };
    env.provider.ensure_infrastructure(&infra).await.unwrap();
    let left: Vec<String> = env
        .resources()
        .keys()
        .filter(|p| !p.contains("/instances/"))
        .cloned()
        .collect();
    assert_eq!(
        left,
        vec![format!("projects/{PROJECT}/global/healthChecks/users-own-check")]
    );
}

#[tokio::test]
async fn a_resource_with_our_name_but_a_foreign_description_is_left_untouched() {
    let env = Env::start(&[30080]).await;
    let lb = lb("default", "taken", vec![backend("default", "echo", 80, 30080)]);
    let taken = env
        .provider
        .namer()
        .lb(cloud::gce::names::LbPart::HttpProxy, "default", "taken");
    // Someone made a URL map and a proxy under the name our proxy would have.
    let client = reqwest::Client::new();
    let base = env.gce.base_url();
    let post = |coll: &str, body: Value| {
        client
            .post(format!("{base}projects/{PROJECT}/global/{coll}"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
    };
    post("backendServices", json!({"name": "their-service"}))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    post("urlMaps", json!({"name": "their-map", "defaultService": format!("projects/{PROJECT}/global/backendServices/their-service")})).await.unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    post("targetHttpProxies", json!({"name": taken, "description": "made by hand", "urlMap": format!("projects/{PROJECT}/global/urlMaps/their-map")})).await.unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    let before = env.get("targetHttpProxies", &taken);

    let err = env.provider.ensure(&lb).await.unwrap_err();
    assert_eq!(err.category, ErrorCategory::User);
    assert!(
        err.message.contains(&taken) && err.message.contains("not managed"),
        "{}",
        err.message
    );
    assert_eq!(env.get("targetHttpProxies", &taken), before, "not modified");

    env.provider.delete(&lb.key).await.unwrap();
    assert_eq!(env.get("targetHttpProxies", &taken), before, "not deleted");
    assert!(env.names("urlMaps").contains("their-map"));
}

#[tokio::test]
async fn transient_failures_are_retried_to_success() {
    let env = Env::start(&[30080]).await;
    env.gce
        .add_fault(
            FaultRule::new(
                "POST",
                ".*/global/backendServices$",
                FaultAction::Error {
                    status: 503,
                    reason: "backendError".into(),
                    message: "Backend Error".into(),
                },
            )
            .times(2),
        )
        .unwrap();
    env.gce
        .add_fault(
            FaultRule::new(
                "POST",
                ".*/global/urlMaps$",
                FaultAction::Error {
                    status: 403,
                    reason: "rateLimitExceeded".into(),
                    message: "Rate Limit Exceeded".into(),
                },
            )
            .times(1),
        )
        .unwrap();
    env.gce
        .add_fault(
            FaultRule::new(
                "POST",
                ".*/global/targetHttpProxies$",
                FaultAction::FailOperation {
                    status: 500,
                    code: "INTERNAL_ERROR".into(),
                    message: "try again".into(),
                },
            )
            .times(1),
        )
        .unwrap();
    env.gce
        .add_fault(
            FaultRule::new(
                "GET",
                ".*/global/forwardingRules.*",
                FaultAction::Error {
                    status: 500,
                    reason: "internalError".into(),
                    message: "oops".into(),
                },
            )
            .times(1),
        )
        .unwrap();
    let lb = lb("default", "flaky", vec![backend("default", "echo", 80, 30080)]);
    let status = env.provider.ensure(&lb).await.expect("retried to success");
    assert!(!status.address.is_empty());
    let stats = env.gce.stats();
    assert_eq!(stats.rejected.injected, 4, "{stats:?}");
    assert_eq!(stats.operations.failed, 1);
    assert_eq!(
        env.names("targetHttpProxies").len(),
        1,
        "no duplicate after the failed operation"
    );
    for f in env.gce.faults() {
        assert_eq!(Some(f.fired), f.rule.times, "every fault fired: {f:?}");
    }
}

#[tokio::test]
async fn quota_exceeded_is_the_users_to_fix() {
    let env = Env::start(&[30080]).await;
    env.gce.set_quota("backendServices", Some(0));
    let err = env
        .provider
        .ensure(&lb(
            "default",
            "quota",
            vec![backend("default", "echo", 80, 30080)],
        ))
        .await
        .unwrap_err();
    assert_eq!(err.category, ErrorCategory::User, "{}", err.message);
    assert!(err.message.to_lowercase().contains("quota"), "{}", err.message);
}

#[tokio::test]
async fn an_interrupted_ensure_converges_without_duplicates() {
    let env = Env::start(&[30080]).await;
    env.gce
        .set_latency(fake_gce::Latency::uniform(Duration::from_millis(40)));
    let lb = with_https(
        lb(
            "default",
            "crash",
            vec![
                backend("default", "echo", 80, 30080),
                backend("default", "two", 80, 30080),
            ],
        ),
        vec![certificate("default/tls", "c.example.com")],
    );
    // The process dies while the chain is half built: as soon as a first resource exists (the
    // chain is several 40 ms operations deep, so the forwarding rules are far from done).
    let run = env.provider.ensure(&lb);
    let first_built = async {
        while !env.counts().iter().any(|(_, n)| *n > 0) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::select! {
        _ = run => panic!("the whole chain was built before a first resource was seen"),
        () = first_built => {}
    }
    // Operations already accepted finish on their own.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let partial = env.counts();
    assert!(
        partial.iter().any(|(_, n)| *n > 0),
        "something was built: {partial:?}"
    );
    assert!(
        env.names("forwardingRules").is_empty(),
        "not everything: {partial:?}"
    );

    // A new process (no memory of the first) finishes the job.
    let restarted = new_provider(&env.gce, |_| {});
    restarted.ensure_infrastructure(&env.infra).await.unwrap();
    let status = restarted.ensure(&lb).await.expect("converges");
    assert_eq!(
        env.counts(),
        vec![
            ("addresses", 1),
            ("healthChecks", 2),
            ("backendServices", 2),
            ("urlMaps", 1),
            ("targetHttpProxies", 1),
            ("targetHttpsProxies", 1),
            ("sslCertificates", 1),
            ("forwardingRules", 2),
        ]
    );
    env.gce.reset_stats();
    let again = restarted.ensure(&lb).await.unwrap();
    assert_eq!(again.address, status.address);
    assert_eq!(env.gce.stats().total.mutations, 0);
}

#[tokio::test]
async fn an_unchanged_load_balancer_costs_no_writes_and_reads_per_kind() {
    let env = Env::start(&[30080, 30081, 30082, 30083, 30084]).await;
    let one = lb("default", "one", vec![backend("default", "s0", 80, 30080)]);
    let five = with_https(
        lb(
            "default",
            "five",
            (0..5)
                .map(|i| backend("default", &format!("s{i}"), 80, 30080 + i))
                .collect(),
        ),
        vec![certificate("default/tls", "five.example.com")],
    );
    let mut reads = Vec::new();
    for lb in [&one, &five] {
        env.provider.ensure(lb).await.unwrap();
        env.gce.reset_stats();
        let status = env.provider.ensure(lb).await.unwrap();
        assert!(!status.changed);
        let stats = env.gce.stats();
        assert_eq!(stats.total.mutations, 0, "{stats:?}");
        assert_eq!(stats.total.operation_polls, 0);
        reads.push((stats.total.reads, stats.total.lists));
    }
    // One list per kind, whatever the number of resources.
    assert_eq!(reads[0], (0, 8));
    assert_eq!(reads[1], reads[0]);
}

#[tokio::test]
async fn list_owned_finds_every_load_balancer_of_this_cluster_only() {
    let env = Env::start(&[30080]).await;
    env.provider
        .ensure(&lb("default", "one", vec![backend("default", "s", 80, 30080)]))
        .await
        .unwrap();
    env.provider
        .ensure(&lb("prod", "two", vec![backend("default", "s", 80, 30080)]))
        .await
        .unwrap();
    // Another cluster in the same project, on VMs of its own (Compute lets a VM be in one
    // load-balanced instance group only).
    env.gce.seed_instance("us-central1-a", "other-node").unwrap();
    let other = new_provider(&env.gce, |c| c.cluster_uid = "another-cluster".into());
    let other_infra = ClusterInfra {
        nodes: vec![Node {
            zone: "us-central1-a".into(),
            name: "other-node".into(),
            instance: "other-node".into(),
        }],
        node_ports: [30080].into_iter().collect(),
        endpoint_ports: Default::default(),
    };
    other.ensure_infrastructure(&other_infra).await.unwrap();
    other
        .ensure(&lb("default", "theirs", vec![backend("default", "s", 80, 30080)]))
        .await
        .unwrap();

    let owned: Vec<String> = env
        .provider
        .list_owned()
        .await
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(owned, ["default/one", "prod/two"]);
    assert_eq!(other.list_owned().await.unwrap().len(), 1);
}

#[tokio::test]
async fn concurrent_load_balancers_share_one_backend() {
    let env = Env::start(&[30080]).await;
    env.gce
        .set_latency(fake_gce::Latency::uniform(Duration::from_millis(10)));
    let lbs: Vec<LoadBalancer> = (0..6)
        .map(|i| {
            lb(
                "default",
                &format!("lb{i}"),
                vec![backend("default", "shared", 80, 30080)],
            )
        })
        .collect();
    let results = futures::future::join_all(lbs.iter().map(|lb| env.provider.ensure(lb))).await;
    for r in results {
        r.expect("every ensure succeeds");
    }
    assert_eq!(env.names("backendServices").len(), 1);
    assert_eq!(env.names("healthChecks").len(), 1);
    assert_eq!(env.names("urlMaps").len(), 6);
}

#[tokio::test]
async fn a_forbidden_firewall_write_yields_the_command_an_admin_must_run() {
    let gce = fake_gce::FakeGce::start(fake_config()).await.unwrap();
    gce.add_fault(FaultRule::new(
        "POST",
        ".*/global/firewalls$",
        FaultAction::Error {
            status: 403,
            reason: "forbidden".into(),
            message: "Required 'compute.firewalls.create' permission".into(),
        },
    ))
    .unwrap();
    let provider = new_provider(&gce, |c| c.target_tags = vec!["gke-node".into()]);
    let infra = ClusterInfra {
        nodes: nodes(),
        node_ports: [30080, 30081].into_iter().collect(),
        endpoint_ports: Default::default(),
    };
    let status = provider
        .ensure_infrastructure(&infra)
        .await
        .expect("the rest of the infrastructure is built");
    let fw = provider.namer().firewall();
    let description =
        format!(r#"{{"managedBy":"cloud-lb-controller","cluster":"{CLUSTER}","ingress":"shared"}}"#);
    let command = format!(
        "gcloud compute firewall-rules create {fw} --project {PROJECT} --network default --direction INGRESS \
         --description '{description}' --source-ranges 130.211.0.0/22,35.191.0.0/16 --allow tcp:30080-30081 \
         --target-tags gke-node"
    );
    assert!(status.warnings.is_empty(), "{:?}", status.warnings);
    let change = status
        .firewall_change
        .expect("the command an administrator must run");
    assert!(change.contains(&command), "{change}");
    // An administrator runs it (exactly, as given): the controller then recognises the rule as its own.
    let client = reqwest::Client::new();
    let url = format!("{}projects/{PROJECT}/global/firewalls", gce.base_url());
    let rule = json!({
        "name": fw, "network": format!("projects/{PROJECT}/global/networks/default"), "direction": "INGRESS",
        "description": description, "sourceRanges": ["130.211.0.0/22", "35.191.0.0/16"],
        "allowed": [{"IPProtocol": "tcp", "ports": ["30080-30081"]}], "targetTags": ["gke-node"],
    });
    gce.clear_faults();
    client
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&rule)
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    let again = provider.ensure_infrastructure(&infra).await.unwrap();
    assert_eq!(again.firewall_change, None);
    // Load balancers are still built: the instance groups exist.
    provider
        .ensure(&lb("default", "xpn", vec![backend("default", "echo", 80, 30080)]))
        .await
        .expect("ensure");
}

#[tokio::test]
async fn a_stale_fingerprint_is_read_again_and_the_update_retried() {
    let env = Env::start(&[30080]).await;
    let mut lb = lb(
        "default",
        "conflict",
        vec![
            backend("default", "a", 80, 30080),
            backend("default", "b", 80, 30080),
        ],
    );
    let status = env.provider.ensure(&lb).await.unwrap();
    env.gce
        .add_fault(
            FaultRule::new(
                "PUT",
                ".*/global/urlMaps/.*",
                FaultAction::Error {
                    status: 412,
                    reason: "conditionNotMet".into(),
                    message: "Invalid fingerprint.".into(),
                },
            )
            .times(1),
        )
        .unwrap();
    lb.routes.hosts[0].paths[0].path = "/moved".into();
    env.gce.reset_stats();
    env.provider.ensure(&lb).await.expect("retried after re-reading");
    let map = env.get("urlMaps", &status.names(ResourceKind::UrlMap)[0]);
    assert_eq!(
        map["pathMatchers"][0]["pathRules"][0]["paths"],
        json!(["/moved", "/moved/*"])
    );
    let stats = env.gce.stats();
    assert_eq!(stats.rejected.injected, 1);
    assert_eq!(
        stats.kind("urlMaps").reads,
        1,
        "one fresh read after the conflict: {stats:?}"
    );
}

#[tokio::test]
async fn a_name_taken_by_our_own_earlier_write_is_adopted() {
    let env = Env::start_with(fake_config(), &[30080], |c| {
        c.max_staleness = Duration::from_secs(3600)
    })
    .await;
    let target = lb("default", "adopt", vec![backend("default", "echo", 80, 30080)]);
    // This provider's snapshot is taken now, before the load balancer exists (and it writes
    // nothing the target uses, so it has no reason to read again)...
    env.provider
        .ensure(&lb(
            "default",
            "other",
            vec![backend("default", "unrelated", 80, 30080)],
        ))
        .await
        .unwrap();
    // ...then another instance of the controller (a previous leader) builds it.
    let previous = new_provider(&env.gce, |_| {});
    previous.ensure_infrastructure(&env.infra).await.unwrap();
    let built = previous.ensure(&target).await.unwrap();
    let before = env.counts();
    // Our stale snapshot says nothing exists: every insert meets "already exists" and adopts.
    env.gce.reset_stats();
    let status = env.provider.ensure(&target).await.expect("adopted");
    assert_eq!(status.address, built.address);
    assert_eq!(env.counts(), before, "no duplicates");
    let stats = env.gce.stats();
    assert_eq!(stats.total.lists, 0, "the stale snapshot was used: {stats:?}");
    assert_eq!(
        stats.kind("urlMaps").mutations,
        1,
        "one insert, refused: {stats:?}"
    );
    assert_eq!(stats.operations.created, 0, "nothing was created: {stats:?}");
}

#[tokio::test]
async fn a_certificate_the_cloud_refuses_names_its_secret() {
    let env = Env::start(&[30080]).await;
    let mut cert = certificate("default/bad-tls", "bad.example.com");
    cert.private_key = certificate("default/other", "other.example.com").private_key;
    let lb = with_https(
        lb("default", "badcert", vec![backend("default", "echo", 80, 30080)]),
        vec![cert],
    );
    let err = env.provider.ensure(&lb).await.unwrap_err();
    assert_eq!(err.category, ErrorCategory::User, "{}", err.message);
    assert!(err.message.contains("default/bad-tls"), "{}", err.message);
}

#[tokio::test]
async fn a_dry_run_writes_nothing() {
    let env = Env::start(&[30080]).await;
    let dry = new_provider(&env.gce, |c| c.compute.dry_run = true);
    dry.ensure_infrastructure(&env.infra).await.unwrap();
    env.gce.reset_stats();
    let status = dry
        .ensure(&lb("default", "dry", vec![backend("default", "echo", 80, 30080)]))
        .await
        .expect("dry run");
    assert!(status.address.is_empty(), "no address is reserved in a dry run");
    assert_eq!(env.gce.stats().total.mutations, 0);
    assert!(env.names("urlMaps").is_empty());
}

#[tokio::test]
async fn shared_vpc_puts_the_firewall_rule_in_the_host_project() {
    // In a Shared VPC the service project's VMs are on the host project's network (fake-gce
    // refuses to group VMs of another network, as Compute does).
    let mut config = fake_config();
    for node in &mut config.instances {
        node.network = Some("projects/host-project/global/networks/default".into());
    }
    let gce = fake_gce::FakeGce::start(config).await.unwrap();
    let provider = new_provider(&gce, |c| c.network_project = Some("host-project".into()));
    let infra = ClusterInfra {
        nodes: nodes(),
        node_ports: [30080].into_iter().collect(),
        endpoint_ports: Default::default(),
    };
    provider.ensure_infrastructure(&infra).await.unwrap();
    let fw = provider.namer().firewall();
    let rule = gce
        .resource(&format!("projects/host-project/global/firewalls/{fw}"))
        .expect("the rule, in the host project");
    assert!(
        rule["network"]
            .as_str()
            .unwrap()
            .ends_with("projects/host-project/global/networks/default")
    );
    assert!(
        gce.resource(&format!("projects/{PROJECT}/global/firewalls/{fw}"))
            .is_none()
    );
    let ig = provider.namer().instance_group();
    let group = gce
        .resource(&format!(
            "projects/{PROJECT}/zones/us-central1-a/instanceGroups/{ig}"
        ))
        .unwrap();
    assert!(
        group["network"]
            .as_str()
            .unwrap()
            .ends_with("projects/host-project/global/networks/default")
    );
    // Teardown removes it from there too.
    provider
        .ensure_infrastructure(&ClusterInfra {
            nodes: nodes(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        gce.resource(&format!("projects/host-project/global/firewalls/{fw}"))
            .is_none()
    );
}

#[tokio::test]
async fn a_node_without_a_vm_is_left_out_with_a_warning() {
    let gce = fake_gce::FakeGce::start(fake_config()).await.unwrap();
    let provider = new_provider(&gce, |_| {});
    let mut infra = ClusterInfra {
        nodes: nodes(),
        node_ports: [30080].into_iter().collect(),
        endpoint_ports: Default::default(),
    };
    infra.nodes.push(Node {
        zone: "us-central1-a".into(),
        name: "ghost".into(),
        instance: "ghost".into(),
    });
    let status = provider
        .ensure_infrastructure(&infra)
        .await
        .expect("the other nodes are used");
    assert_eq!(status.warnings.len(), 1, "{:?}", status.warnings);
    assert!(
        status.warnings[0].contains("node ghost"),
        "{}",
        status.warnings[0]
    );
    let ig = provider.namer().instance_group();
    let members =
        &gce.state()["members"][format!("projects/{PROJECT}/zones/us-central1-a/instanceGroups/{ig}")];
    assert_eq!(members.as_array().map(Vec::len), Some(2));
    provider
        .ensure(&lb("default", "ok", vec![backend("default", "echo", 80, 30080)]))
        .await
        .expect("ensure");
}

#[tokio::test]
async fn a_stuck_operation_does_not_hold_up_other_load_balancers() {
    let env = Env::start_with(fake_config(), &[30080], |c| {
        c.compute.operation_timeout = Duration::from_secs(20)
    })
    .await;
    let b = lb("default", "b", vec![backend("default", "b", 80, 30080)]);
    env.provider.ensure(&b).await.unwrap();
    let stuck = lb("default", "stuck", vec![backend("default", "s", 80, 30080)]);
    let um = env
        .provider
        .namer()
        .lb(cloud::gce::names::LbPart::UrlMap, "default", "stuck");
    env.gce
        .add_fault(FaultRule::new("POST", ".*/global/urlMaps$", FaultAction::NeverFinish).times(1))
        .unwrap();
    let pending = env.provider.ensure(&stuck);
    let others = async {
        // Wait until the stuck pass holds its backend and waits on its URL map...
        eventually(|| env.gce.state()["pendingOperations"].as_u64() == Some(1)).await;
        // ...then a deletion (which sweeps backends) and an unrelated ensure still go through.
        env.provider.delete(&b.key).await.expect("delete");
        env.provider
            .ensure(&lb("default", "c", vec![backend("default", "c", 80, 30080)]))
            .await
            .expect("ensure");
    };
    tokio::select! {
        _ = pending => panic!("the stuck pass finished"),
        r = tokio::time::timeout(Duration::from_secs(15), others) => r.expect("blocked behind the stuck operation"),
    }
    assert!(env.try_get("urlMaps", &um).is_none());
    assert!(
        env.try_get(
            "backendServices",
            &env.provider.namer().backend("default", "b", 80)
        )
        .is_none(),
        "b's backend swept"
    );
}

async fn eventually(mut check: impl FnMut() -> bool) {
    for _ in 0..500 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition never held");
}

#[tokio::test]
async fn deleting_and_recreating_at_once_builds_everything_again() {
    let env = Env::start_with(fake_config(), &[30080], |c| {
        c.max_staleness = Duration::from_secs(3600)
    })
    .await;
    let keep = lb("default", "keep", vec![backend("default", "shared", 80, 30080)]);
    let again = lb("default", "again", vec![backend("default", "shared", 80, 30080)]);
    env.provider.ensure(&keep).await.unwrap();
    env.provider.ensure(&again).await.unwrap();
    env.provider.delete(&again.key).await.unwrap();
    let after = env.provider.ensure(&again).await.unwrap();
    assert!(!after.address.is_empty());
    for kind in [
        ResourceKind::HttpForwardingRule,
        ResourceKind::TargetHttpProxy,
        ResourceKind::Address,
    ] {
        let name = &after.names(kind)[0];
        let collection = match kind {
            ResourceKind::HttpForwardingRule => "forwardingRules",
            ResourceKind::TargetHttpProxy => "targetHttpProxies",
            _ => "addresses",
        };
        assert!(
            env.try_get(collection, name).is_some(),
            "{collection}/{name} was not re-created"
        );
    }
    let rule = env.get(
        "forwardingRules",
        &after.names(ResourceKind::HttpForwardingRule)[0],
    );
    assert_eq!(rule["IPAddress"], after.address.as_str());
}

#[tokio::test]
async fn a_dropped_backend_is_swept_even_when_a_later_step_fails() {
    let env = Env::start(&[30080, 30081]).await;
    let mut model = lb("default", "switch", vec![backend("default", "one", 80, 30080)]);
    env.provider.ensure(&model).await.unwrap();
    // Switch to another Service and turn HTTPS on; the HTTPS proxy fails once.
    model.backends = vec![backend("default", "two", 80, 30081)];
    model.routes.default_backend = Some(model.backends[0].key.clone());
    let model = with_https(model, vec![certificate("default/tls", "s.example.com")]);
    env.gce
        .add_fault(
            FaultRule::new(
                "POST",
                ".*/global/targetHttpsProxies$",
                FaultAction::Error {
                    status: 400,
                    reason: "invalid".into(),
                    message: "no".into(),
                },
            )
            .times(1),
        )
        .unwrap();
    assert!(env.provider.ensure(&model).await.is_err());
    let one = env.provider.namer().backend("default", "one", 80);
    assert!(
        env.try_get("backendServices", &one).is_none(),
        "the dropped backend service leaked"
    );
    assert!(
        env.try_get("healthChecks", &one).is_none(),
        "the dropped health check leaked"
    );
    env.provider.ensure(&model).await.expect("the next pass finishes");
}

#[tokio::test]
async fn a_health_check_left_without_its_backend_service_is_collected() {
    let env = Env::start(&[30080]).await;
    env.gce.set_quota("backendServices", Some(0));
    let model = lb("default", "orphan", vec![backend("default", "echo", 80, 30080)]);
    assert!(env.provider.ensure(&model).await.is_err());
    assert_eq!(
        env.names("healthChecks").len(),
        1,
        "the health check was created before the quota hit"
    );
    env.provider.collect_garbage().await.unwrap();
    assert!(env.names("healthChecks").is_empty());
}

#[tokio::test]
async fn changing_the_scheme_is_refused_rather_than_an_outage() {
    let env = Env::start(&[30080]).await;
    let model = lb("default", "scheme", vec![backend("default", "echo", 80, 30080)]);
    env.provider.ensure(&model).await.unwrap();
    let before = env.counts();
    let classic = new_provider(&env.gce, |c| c.scheme = cloud::gce::Scheme::External);
    classic.ensure_infrastructure(&env.infra).await.unwrap();
    env.gce.reset_stats();
    let err = classic.ensure(&model).await.unwrap_err();
    assert_eq!(err.category, ErrorCategory::User);
    assert!(
        err.message.contains("EXTERNAL_MANAGED") && err.message.contains("--gce-classic"),
        "{}",
        err.message
    );
    assert_eq!(env.counts(), before);
    assert_eq!(
        env.gce.stats().total.mutations,
        0,
        "nothing was deleted or changed"
    );
}

/// One host with `n` paths `/p0`… of `kind`, all to the default backend.
fn many_paths(name: &str, n: usize, kind: PathMatch) -> LoadBalancer {
    let mut model = lb("default", name, vec![backend("default", "echo", 80, 30080)]);
    let echo = model.backends[0].key.clone();
    model.routes.hosts = vec![HostRule {
        host: HostMatch::Exact("app.example.com".into()),
        paths: (0..n)
            .map(|i| PathRule {
                path: format!("/p{i}"),
                kind,
                backend: echo.clone(),
            })
            .collect(),
    }];
    model
}

#[test]
fn the_fake_holds_url_maps_to_the_documented_limits() {
    // fake_gce promises the same values as the provider's documented limits.
    let fake = fake_gce::UrlMapLimits::default();
    let documented = cloud::gce::Limits::DOCUMENTED;
    assert_eq!(fake.max_host_rules, documented.host_rules_per_url_map);
    assert_eq!(fake.max_path_matchers, documented.path_matchers_per_url_map);
    assert_eq!(
        fake.max_path_rules_per_matcher,
        documented.path_rules_per_path_matcher
    );
    assert_eq!(
        fake.max_path_patterns_per_matcher,
        documented.patterns_per_path_matcher
    );
    assert_eq!(fake.max_services, documented.services_per_url_map);
    assert_eq!(fake.max_size_bytes, documented.url_map_bytes);
    assert_eq!(
        fake_gce::Config::default().max_ssl_certificates_per_proxy,
        documented.certificates_per_https_proxy
    );
}

#[tokio::test]
async fn a_load_balancer_over_the_limits_is_refused_before_any_call() {
    // Issue 11, item 7: one host with 1,000 Prefix paths needs 2,000 URL-map path patterns.
    let env = Env::start(&[30080]).await;
    let model = many_paths("huge", 1000, PathMatch::Prefix);
    env.gce.reset_stats();
    let violations = env.provider.check(&model).unwrap_err();
    assert_eq!(violations.len(), 1, "{violations:?}");
    let v = &violations[0];
    assert_eq!(v.limit, cloud::provider::LimitKind::PathPatternsPerHost);
    assert_eq!(v.host.as_deref(), Some("app.example.com"));
    assert_eq!((v.actual, v.max), (2000, 1000));

    let err = env.provider.ensure(&model).await.unwrap_err();
    assert_eq!(err.category, ErrorCategory::User, "{}", err.message);
    assert!(
        err.message.contains("app.example.com") && err.message.contains("1000 paths"),
        "{}",
        err.message
    );
    assert_eq!(env.gce.stats().total.total, 0, "not one call");
    assert!(env.names("addresses").is_empty(), "no address reserved");

    // The same paths as Exact ones fit the counts but not the size of one URL map.
    let exact = many_paths("huge", 1000, PathMatch::Exact);
    let kinds: Vec<_> = env
        .provider
        .check(&exact)
        .unwrap_err()
        .iter()
        .map(|v| v.limit)
        .collect();
    assert_eq!(kinds, vec![cloud::provider::LimitKind::RoutingTableSize]);
    // Some of them fit.
    env.provider
        .check(&many_paths("fits", 100, PathMatch::Prefix))
        .unwrap();
}

#[tokio::test]
async fn a_url_map_compute_finds_too_large_is_the_users_to_fix() {
    // Compute's own limit lower than the provider's: the check lets it through, the API says 413.
    let mut config = fake_config();
    config.url_map_limits.max_path_rules_per_matcher = 2;
    let env = Env::start_with(config, &[30080], |_| {}).await;
    let model = many_paths("three", 3, PathMatch::Exact);
    env.provider.check(&model).expect("within the documented limits");
    let err = env.provider.ensure(&model).await.unwrap_err();
    assert_eq!(err.category, ErrorCategory::User, "{}", err.message);
    assert!(err.message.contains("fieldSizeTooLarge"), "{}", err.message);
    assert!(
        err.message.contains("too many hosts or paths for one URL map"),
        "{}",
        err.message
    );
    assert!(env.names("urlMaps").is_empty());

    // The same refusal delivered by a failed operation.
    let env = Env::start(&[30080]).await;
    env.gce
        .add_fault(FaultRule::new(
            "POST",
            ".*/global/urlMaps$",
            FaultAction::FailOperation {
                status: 413,
                code: "FIELD_SIZE_TOO_LARGE".into(),
                message:
                    "Value for field 'resource' is too large: maximum size 65536 byte(s); actual size 70000."
                        .into(),
            },
        ))
        .unwrap();
    let err = env.provider.ensure(&model).await.unwrap_err();
    assert_eq!(err.category, ErrorCategory::User, "{}", err.message);
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn what_the_size_check_accepts_the_api_accepts() {
    // The provider counts the URL map as stored (server fields included); the fake counts the
    // same object before it adds its selfLink and fingerprint: never more. So a map exactly at
    // the provider's limit passes the fake set to the same limit, and one byte more is refused
    // before any call.
    let probe = Env::start(&[30080]).await;
    let model = many_paths("sized", 40, PathMatch::Prefix);
    let status = probe.provider.ensure(&model).await.unwrap();
    let stored = probe.get("urlMaps", &status.names(ResourceKind::UrlMap)[0]);
    let stored_len = serde_json::to_vec(&stored).unwrap().len();
    let mut map: cloud::gce::wire::UrlMap = serde_json::from_value(stored.clone()).unwrap();
    let self_link = stored["selfLink"].as_str().unwrap().to_owned();
    for k in ["kind", "id", "creationTimestamp", "selfLink"] {
        map.extra.remove(k);
    }
    map.fingerprint = None;
    let counted = cloud::gce::limits::stored_size(&map, &self_link);
    assert!(
        counted >= stored_len && counted - stored_len < 64,
        "counted {counted}, stored {stored_len}"
    );

    let mut config = fake_config();
    config.url_map_limits.max_size_bytes = counted;
    let limits = cloud::gce::Limits {
        url_map_bytes: counted,
        ..cloud::gce::Limits::DOCUMENTED
    };
    let env = Env::start_with(config, &[30080], |c| c.limits = Some(limits)).await;
    env.provider.check(&model).expect("at the limit");
    env.provider.ensure(&model).await.expect("the API takes it too");
    let mut longer = model.clone();
    longer.routes.hosts[0].paths[0].path.push('x');
    let violations = env.provider.check(&longer).unwrap_err();
    assert_eq!(violations[0].limit, cloud::provider::LimitKind::RoutingTableSize);
    assert_eq!(violations[0].actual, counted + 2, "two patterns, one byte each");
}

#[tokio::test]
async fn a_port_another_controller_opened_stays_for_the_removal_grace() {
    let gce = fake_gce::FakeGce::start(fake_config()).await.unwrap();
    let grace = |c: &mut cloud::gce::GceConfig| c.removal_grace = Duration::from_secs(60);
    let main = new_provider(&gce, grace);
    let canary = new_provider(&gce, |c| {
        grace(c);
        c.controller = Some("example.com/canary".into());
    });
    let infra = |ports: &[u16]| ClusterInfra {
        nodes: nodes(),
        node_ports: ports.iter().copied().collect(),
        endpoint_ports: Default::default(),
    };
    main.ensure_infrastructure(&infra(&[30080])).await.unwrap();
    main.ensure(&lb("default", "a", vec![backend("default", "a", 80, 30080)]))
        .await
        .unwrap();
    // The canary opens 30090 for a backend service it has not created yet...
    canary.ensure_infrastructure(&infra(&[30090])).await.unwrap();
    // ...and the main controller, which knows nothing of it, passes over the infrastructure.
    let status = main.ensure_infrastructure(&infra(&[30080])).await.unwrap();
    let fw = main.namer().firewall();
    let rule = gce
        .resource(&format!("projects/{PROJECT}/global/firewalls/{fw}"))
        .unwrap();
    assert_eq!(rule["allowed"][0]["ports"], serde_json::json!(["30080", "30090"]));
    assert!(status.recheck_after.is_some_and(|d| d <= Duration::from_secs(60)));

    // Without a grace it would have gone at once.
    let hasty = new_provider(&gce, |_| {});
    hasty.ensure_infrastructure(&infra(&[30080])).await.unwrap();
    let rule = gce
        .resource(&format!("projects/{PROJECT}/global/firewalls/{fw}"))
        .unwrap();
    assert_eq!(rule["allowed"][0]["ports"], serde_json::json!(["30080"]));
}

#[tokio::test]
async fn a_pass_that_only_adds_ports_reads_nothing_it_does_not_need() {
    let gce = fake_gce::FakeGce::start(fake_config()).await.unwrap();
    let provider = new_provider(&gce, |_| {});
    let infra = |ports: &[u16]| ClusterInfra {
        nodes: nodes(),
        node_ports: ports.iter().copied().collect(),
        endpoint_ports: Default::default(),
    };
    let fw = provider.namer().firewall();
    let allowed = || {
        gce.resource(&format!("projects/{PROJECT}/global/firewalls/{fw}"))
            .unwrap()["allowed"][0]["ports"]
            .clone()
    };
    let uses_lists = |gce: &fake_gce::FakeGce| {
        let stats = gce.stats();
        stats.kind("backendServices").lists + stats.kind("globalForwardingRules").lists
    };
    provider.ensure_infrastructure(&infra(&[30080])).await.unwrap();

    // A new port: nothing can go, so what uses the ports is not listed.
    gce.reset_stats();
    provider
        .ensure_infrastructure(&infra(&[30080, 30090]))
        .await
        .unwrap();
    assert_eq!(uses_lists(&gce), 0);
    assert_eq!(allowed(), json!(["30080", "30090"]));

    // A port no longer asked for: the cloud is read, and as nothing uses it, it goes.
    gce.reset_stats();
    provider.ensure_infrastructure(&infra(&[30090])).await.unwrap();
    assert_eq!(uses_lists(&gce), 2);
    assert_eq!(allowed(), json!(["30090"]));
}

/// The getHealth requests of the journal since `since`: (backend service, group) paths.
fn health_queries(env: &Env, since: u64) -> Vec<(String, String)> {
    env.gce
        .journal_since(since)
        .entries
        .iter()
        .filter_map(|e| match &e.event {
            fake_gce::JournalEvent::Request(r) if r.path.ends_with("/getHealth") => {
                Some((r.method.clone(), r.path.clone()))
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn backend_health_asks_each_group_once_and_writes_nothing() {
    let env = Env::start(&[30080]).await;
    let mut lb = lb("default", "web", vec![backend("default", "echo", 80, 30080)]);
    // No default backend of its own: the provider adds one, which has no groups.
    lb.routes.default_backend = None;
    let status = env.provider.ensure(&lb).await.expect("ensure");
    let echo = env.provider.namer().backend("default", "echo", 80);
    let default = env.provider.namer().default_backend();
    assert_eq!(
        status.backend_ports,
        std::collections::BTreeMap::from([(echo.clone(), BackendKey::new("default", "echo", 80))]),
        "the default backend serves no Service port"
    );
    let mut names = status.names(ResourceKind::BackendService).to_vec();
    names.sort();
    assert_eq!(names, {
        let mut n = vec![echo.clone(), default.clone()];
        n.sort();
        n
    });
    names.push("clb-not-there".into());

    env.gce.reset_stats();
    let since = env.gce.journal().next_seq;
    let health = env.provider.backend_health(&names).await.expect("health");
    assert_eq!(
        health[&echo],
        cloud::BackendHealth::Healthy { healthy: 3, total: 3 }
    );
    assert_eq!(
        health[&default],
        cloud::BackendHealth::Unknown {
            reason: cloud::UnknownHealth::NoInstances
        }
    );
    assert_eq!(
        health["clb-not-there"],
        cloud::BackendHealth::Unknown {
            reason: cloud::UnknownHealth::NotFound
        }
    );
    // One query per group of each backend service (two zones), none for the group-less one;
    // the groups come from one list of the backend services.
    let queries = health_queries(&env, since);
    assert_eq!(queries.len(), 2, "{queries:?}");
    assert!(queries.iter().all(|(m, p)| m == "POST" && p.contains(&echo)));
    let stats = env.gce.stats();
    assert_eq!(stats.total.mutations, 0, "{stats:?}");
    assert_eq!(stats.kind("backendServices").lists, 1, "{stats:?}");

    for (zone, node) in [
        ("us-central1-a", "node-a1"),
        ("us-central1-a", "node-a2"),
        ("us-central1-b", "node-b1"),
    ] {
        assert!(env.gce.set_instance_health(zone, node, false));
    }
    let sick = env
        .provider
        .backend_health(std::slice::from_ref(&echo))
        .await
        .expect("health");
    assert_eq!(sick[&echo], cloud::BackendHealth::Unhealthy { total: 3 });
    env.gce.set_instance_health("us-central1-b", "node-b1", true);
    let back = env
        .provider
        .backend_health(std::slice::from_ref(&echo))
        .await
        .expect("health");
    assert_eq!(
        back[&echo],
        cloud::BackendHealth::Healthy { healthy: 1, total: 3 }
    );
}

#[tokio::test]
async fn backend_health_needs_no_write_permission_and_survives_a_failing_group() {
    let env = Env::start(&[30080]).await;
    let lb = lb("default", "web", vec![backend("default", "echo", 80, 30080)]);
    env.provider.ensure(&lb).await.expect("ensure");
    let echo = env.provider.namer().backend("default", "echo", 80);
    // A replica that may not write (a standby, a leader whose lease lapsed) still reads.
    let reader = new_provider(&env.gce, |c| c.compute.fence = cloud::WriteFence::shut());
    let health = reader
        .backend_health(std::slice::from_ref(&echo))
        .await
        .expect("health");
    assert_eq!(
        health[&echo],
        cloud::BackendHealth::Healthy { healthy: 3, total: 3 }
    );

    // A transient failure is retried like any read.
    env.gce
        .add_fault(
            FaultRule::new(
                "POST",
                ".*/getHealth$",
                FaultAction::Error {
                    status: 503,
                    reason: "backendError".into(),
                    message: "Backend Error".into(),
                },
            )
            .times(1),
        )
        .unwrap();
    let health = reader
        .backend_health(std::slice::from_ref(&echo))
        .await
        .expect("health");
    assert_eq!(
        health[&echo],
        cloud::BackendHealth::Healthy { healthy: 3, total: 3 }
    );

    // A group whose health cannot be read makes the backend Unknown unless another group has a
    // healthy instance; the failure is told.
    for (zone, node) in [
        ("us-central1-a", "node-a1"),
        ("us-central1-a", "node-a2"),
        ("us-central1-b", "node-b1"),
    ] {
        env.gce.set_instance_health(zone, node, false);
    }
    env.gce
        .add_fault(FaultRule::new(
            "POST",
            ".*/getHealth$",
            FaultAction::Error {
                status: 403,
                reason: "forbidden".into(),
                message: "Required 'compute.backendServices.get' permission".into(),
            },
        ))
        .unwrap();
    let health = reader
        .backend_health(std::slice::from_ref(&echo))
        .await
        .expect("health");
    match &health[&echo] {
        cloud::BackendHealth::Unknown {
            reason: cloud::UnknownHealth::ReadFailed { message, retryable },
        } => {
            assert!(!retryable);
            assert!(
                message.contains(&echo) && message.contains("forbidden"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
}
