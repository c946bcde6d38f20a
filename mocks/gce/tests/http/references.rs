//! References in every form Compute accepts, answered as full links; networks (existence,
//! sharing, in use, other projects); aggregated lists; regional operations.

use fake_gce::{Config, InstanceSeed};
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Api, LINK, ZONE, cert, config, link};

/// Every form of a reference to `path` (relative to project `p`) that Compute accepts.
fn forms(path: &str) -> Vec<String> {
    vec![
        format!("https://www.googleapis.com/compute/v1/projects/p/{path}"),
        format!("https://compute.googleapis.com/compute/v1/projects/p/{path}"),
        format!("https://compute.googleapis.com/compute/beta/projects/p/{path}"),
        format!("https://www.googleapis.com/compute/alpha/projects/p/{path}"),
        format!("projects/p/{path}"),
        path.to_string(),
    ]
}

const REGION: &str = "us-central1";

#[tokio::test]
async fn every_reference_field_takes_every_form_and_answers_full_links() {
    let api = Api::start().await;
    let (pem, key) = cert("example.com");
    let n = forms("x").len();
    for i in 0..n {
        api.gce.seed_instance(ZONE, &format!("node-{i}")).expect("seeded");
    }
    for i in 0..n {
        let f = |path: &str| forms(path)[i].clone();
        let ctx = format!("form {i}: {}", f("global/x/y"));
        let net = f("global/networks/default");
        let sub = f(&format!("regions/{REGION}/subnetworks/default"));

        // Instance groups: network, subnetwork, addInstances.
        let ig = api
            .create(
                &format!("zones/{ZONE}/instanceGroups"),
                json!({"name": format!("ig{i}"), "network": net, "subnetwork": sub,
                       "namedPorts": [{"name": "http", "port": 30080}]}),
            )
            .await;
        assert_eq!(ig["network"], link("global/networks/default"), "{ctx}");
        assert_eq!(
            ig["subnetwork"],
            link(&format!("regions/{REGION}/subnetworks/default")),
            "{ctx}"
        );
        let ig_path = format!("zones/{ZONE}/instanceGroups/ig{i}");
        api.done(
            Method::POST,
            &format!("{ig_path}/addInstances"),
            Some(json!({"instances": [{"instance": f(&format!("zones/{ZONE}/instances/node-{i}"))}]})),
        )
        .await;
        let members = api
            .post(&format!("{ig_path}/listInstances"), json!({}))
            .await
            .ok();
        assert_eq!(
            members["items"][0]["instance"],
            link(&format!("zones/{ZONE}/instances/node-{i}")),
            "{ctx}"
        );

        // NEGs: network, subnetwork.
        let neg = api
            .create(
                &format!("zones/{ZONE}/networkEndpointGroups"),
                json!({"name": format!("neg{i}"), "network": net, "subnetwork": sub, "defaultPort": 8080}),
            )
            .await;
        assert_eq!(neg["network"], link("global/networks/default"), "{ctx}");
        assert_eq!(
            neg["subnetwork"],
            link(&format!("regions/{REGION}/subnetworks/default")),
            "{ctx}"
        );

        // Firewall: network.
        let fw = api
            .create(
                "global/firewalls",
                json!({"name": format!("fw{i}"), "network": net, "allowed": [{"IPProtocol": "tcp"}]}),
            )
            .await;
        assert_eq!(fw["network"], link("global/networks/default"), "{ctx}");

        // Backend services: healthChecks, backends[].group (instance group and NEG).
        api.create(
            "global/healthChecks",
            json!({"name": format!("hc{i}"), "type": "HTTP"}),
        )
        .await;
        let bs = api
            .create(
                "global/backendServices",
                json!({"name": format!("bs{i}"), "healthChecks": [f(&format!("global/healthChecks/hc{i}"))],
                       "backends": [{"group": f(&ig_path)}]}),
            )
            .await;
        assert_eq!(
            bs["healthChecks"],
            json!([link(&format!("global/healthChecks/hc{i}"))]),
            "{ctx}"
        );
        assert_eq!(bs["backends"][0]["group"], link(&ig_path), "{ctx}");
        let neg_path = format!("zones/{ZONE}/networkEndpointGroups/neg{i}");
        let bsn = api
            .create(
                "global/backendServices",
                json!({"name": format!("bsn{i}"), "healthChecks": [f(&format!("global/healthChecks/hc{i}"))],
                       "backends": [{"group": f(&neg_path), "balancingMode": "RATE", "maxRatePerEndpoint": 10}]}),
            )
            .await;
        assert_eq!(bsn["backends"][0]["group"], link(&neg_path), "{ctx}");
        // getHealth names its group in any form too.
        let health = api
            .post(
                &format!("global/backendServices/bs{i}/getHealth"),
                json!({"group": f(&ig_path)}),
            )
            .await
            .ok();
        assert_eq!(
            health["healthStatus"][0]["instance"],
            link(&format!("zones/{ZONE}/instances/node-{i}")),
            "{ctx}"
        );

        // URL maps: defaultService, path matchers, path rules.
        let svc = f(&format!("global/backendServices/bs{i}"));
        let um = api
            .create(
                "global/urlMaps",
                json!({"name": format!("um{i}"), "defaultService": svc,
                       "hostRules": [{"hosts": ["example.com"], "pathMatcher": "pm"}],
                       "pathMatchers": [{"name": "pm", "defaultService": svc,
                                         "pathRules": [{"paths": ["/x"], "service": svc}]}]}),
            )
            .await;
        let want = link(&format!("global/backendServices/bs{i}"));
        assert_eq!(um["defaultService"], want, "{ctx}");
        assert_eq!(um["pathMatchers"][0]["defaultService"], want, "{ctx}");
        assert_eq!(um["pathMatchers"][0]["pathRules"][0]["service"], want, "{ctx}");

        // Target proxies: urlMap, sslCertificates, sslPolicy, and their set* verbs.
        api.create(
            "global/sslCertificates",
            json!({"name": format!("cert{i}"), "certificate": pem, "privateKey": key}),
        )
        .await;
        api.create("global/sslPolicies", json!({"name": format!("pol{i}")}))
            .await;
        let tp = api
            .create(
                "global/targetHttpsProxies",
                json!({"name": format!("tps{i}"), "urlMap": f(&format!("global/urlMaps/um{i}")),
                       "sslCertificates": [f(&format!("global/sslCertificates/cert{i}"))],
                       "sslPolicy": f(&format!("global/sslPolicies/pol{i}"))}),
            )
            .await;
        assert_eq!(tp["urlMap"], link(&format!("global/urlMaps/um{i}")), "{ctx}");
        assert_eq!(
            tp["sslCertificates"],
            json!([link(&format!("global/sslCertificates/cert{i}"))]),
            "{ctx}"
        );
        assert_eq!(
            tp["sslPolicy"],
            link(&format!("global/sslPolicies/pol{i}")),
            "{ctx}"
        );
        api.done(
            Method::POST,
            &format!("targetHttpsProxies/tps{i}/setUrlMap"),
            Some(json!({"urlMap": f(&format!("global/urlMaps/um{i}"))})),
        )
        .await;
        api.done(
            Method::POST,
            &format!("targetHttpsProxies/tps{i}/setSslCertificates"),
            Some(json!({"sslCertificates": [f(&format!("global/sslCertificates/cert{i}"))]})),
        )
        .await;
        api.done(
            Method::POST,
            &format!("global/targetHttpsProxies/tps{i}/setSslPolicy"),
            Some(json!({"sslPolicy": f(&format!("global/sslPolicies/pol{i}"))})),
        )
        .await;
        let tp = api.get(&format!("global/targetHttpsProxies/tps{i}")).await.ok();
        assert_eq!(tp["urlMap"], link(&format!("global/urlMaps/um{i}")), "{ctx}");
        assert_eq!(
            tp["sslCertificates"],
            json!([link(&format!("global/sslCertificates/cert{i}"))]),
            "{ctx}"
        );
        assert_eq!(
            tp["sslPolicy"],
            link(&format!("global/sslPolicies/pol{i}")),
            "{ctx}"
        );
        api.create(
            "global/targetHttpsProxies",
            json!({"name": format!("tps{i}b"), "urlMap": f(&format!("global/urlMaps/um{i}")),
                   "sslCertificates": [f(&format!("global/sslCertificates/cert{i}"))]}),
        )
        .await;

        // Forwarding rules: target, IPAddress (a link), network; setTarget.
        let addr = api
            .create("global/addresses", json!({"name": format!("addr{i}")}))
            .await;
        let fr = api
            .create(
                "global/forwardingRules",
                json!({"name": format!("fr{i}"), "target": f(&format!("global/targetHttpsProxies/tps{i}")),
                       "IPAddress": f(&format!("global/addresses/addr{i}")), "portRange": "443",
                       "network": net}),
            )
            .await;
        assert_eq!(
            fr["target"],
            link(&format!("global/targetHttpsProxies/tps{i}")),
            "{ctx}"
        );
        assert_eq!(
            fr["IPAddress"], addr["address"],
            "{ctx}: IPAddress reads back as the IP"
        );
        assert_eq!(fr["network"], link("global/networks/default"), "{ctx}");
        api.done(
            Method::POST,
            &format!("global/forwardingRules/fr{i}/setTarget"),
            Some(json!({"target": f(&format!("global/targetHttpsProxies/tps{i}b"))})),
        )
        .await;
        let fr = api.get(&format!("global/forwardingRules/fr{i}")).await.ok();
        assert_eq!(
            fr["target"],
            link(&format!("global/targetHttpsProxies/tps{i}b")),
            "{ctx}"
        );
        // The reference index follows the canonical form: the address is in use.
        let addr = api.get(&format!("global/addresses/addr{i}")).await.ok();
        assert_eq!(
            addr["users"],
            json!([link(&format!("global/forwardingRules/fr{i}"))]),
            "{ctx}"
        );
    }
    // No stored or answered field keeps a partial or foreign-host form.
    fn strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::String(s) => out.push(s),
            Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
            Value::Object(o) => o.values().for_each(|v| strings(v, out)),
            _ => {}
        }
    }
    let state = api.gce.state();
    let mut all = Vec::new();
    strings(&state["resources"], &mut all);
    for s in all {
        let partial = ["projects/", "global/", "zones/", "regions/"]
            .iter()
            .any(|p| s.starts_with(p));
        let foreign = s.contains("compute.googleapis.com")
            || s.contains("/compute/beta/")
            || s.contains("/compute/alpha/");
        assert!(!partial && !foreign, "a stored field keeps {s}");
    }
}

#[tokio::test]
async fn references_to_another_project_stay_in_that_project() {
    let api = Api::start().await;
    api.gce
        .seed_instance_with(&InstanceSeed {
            network: Some("projects/host/global/networks/default".into()),
            ..InstanceSeed::new(ZONE, "shared-node")
        })
        .expect("seeded on the host's network");
    api.gce.seed_instance(ZONE, "local-node").expect("seeded");
    // A Shared VPC: the firewall rule in the host project, the group in ours on the host's
    // network; every project starts with its `default` network.
    let host_net = format!("{LINK}projects/host/global/networks/default");
    let fw = api
        .send(
            api.client
                .post(format!("{}projects/host/global/firewalls", api.gce.base_url()))
                .json(&json!({"name": "fw", "network": "global/networks/default",
                              "allowed": [{"IPProtocol": "tcp"}]})),
        )
        .await
        .ok();
    api.wait(&fw).await;
    let rule = api
        .get(&format!("{LINK}projects/host/global/firewalls/fw"))
        .await
        .ok();
    assert_eq!(
        rule["network"], host_net,
        "relative to the project of the request"
    );
    let ig = api
        .create(
            &format!("zones/{ZONE}/instanceGroups"),
            json!({"name": "ig", "network": "projects/host/global/networks/default"}),
        )
        .await;
    assert_eq!(ig["network"], host_net);
    let add = |who: &str| json!({"instances": [{"instance": format!("zones/{ZONE}/instances/{who}")}]});
    api.done(
        Method::POST,
        &format!("zones/{ZONE}/instanceGroups/ig/addInstances"),
        Some(add("shared-node")),
    )
    .await;
    let r = api
        .post(
            &format!("zones/{ZONE}/instanceGroups/ig/addInstances"),
            add("local-node"),
        )
        .await;
    r.assert_error(400, "wrongNetwork");
    assert_eq!(
        r.message(),
        format!(
            "Resource 'projects/p/zones/{ZONE}/instances/local-node' is expected to be in the network \
             'projects/host/global/networks/default' but is in the network 'projects/p/global/networks/default'."
        )
    );
    // A reference to another project's resource is looked up there.
    let r = api
        .post(
            "global/backendServices",
            json!({"name": "bs", "healthChecks": ["projects/other/global/healthChecks/hc"]}),
        )
        .await;
    r.assert_error(404, "notFound");
    assert_eq!(
        r.message(),
        "The resource 'projects/other/global/healthChecks/hc' was not found"
    );
    // The host's network cannot go while the group and the rule use it.
    let failed = api
        .failed(
            Method::DELETE,
            &format!("{LINK}projects/host/global/networks/default"),
            None,
        )
        .await;
    assert_eq!(
        failed["error"]["errors"][0]["code"],
        "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE"
    );
}

#[tokio::test]
async fn bad_references_are_refused_in_the_api_wording() {
    let api = Api::start().await;
    api.create("global/healthChecks", json!({"name": "hc", "type": "HTTP"}))
        .await;
    api.create("global/backendServices", json!({"name": "bs"})).await;
    api.create(
        "global/urlMaps",
        json!({"name": "um", "defaultService": "global/backendServices/bs"}),
    )
    .await;
    let malformed = "The URL is malformed.";
    for (value, why) in [
        ("not a url", malformed.to_string()),
        ("hc", malformed.to_string()),
        ("global/nope/hc", malformed.to_string()),
        ("zones/us-central1-a/healthChecks/hc", malformed.to_string()),
        ("projects/p/global/healthChecks", malformed.to_string()),
        (
            "https://www.googleapis.com/compute/v2/projects/p/global/healthChecks/hc",
            malformed.to_string(),
        ),
        (
            "https://storage.googleapis.com/storage/v1/b/hc",
            malformed.to_string(),
        ),
        (
            "global/urlMaps/um",
            "Unexpected resource collection 'urlMaps'.".to_string(),
        ),
        (
            "global/backendBuckets/b",
            "Unexpected resource collection 'backendBuckets'.".to_string(),
        ),
    ] {
        let r = api
            .post(
                "global/backendServices",
                json!({"name": "b2", "healthChecks": [value]}),
            )
            .await;
        r.assert_error(400, "invalid");
        assert_eq!(
            r.message(),
            format!("Invalid value for field 'resource.healthChecks[0]': '{value}'. {why}"),
            "{value}"
        );
    }
    // A URL map where a backend service is expected, in a backend's group.
    let r = api
        .post(
            "global/backendServices",
            json!({"name": "b2", "healthChecks": ["global/healthChecks/hc"],
                   "backends": [{"group": "global/urlMaps/um"}]}),
        )
        .await;
    r.assert_error(400, "invalid");
    assert!(
        r.message().ends_with("Unexpected resource collection 'urlMaps'."),
        "{}",
        r.message()
    );
    // A subnetwork where a network is expected, and the other way round.
    let r = api
        .post(
            "global/firewalls",
            json!({"name": "fw", "network": "regions/us-central1/subnetworks/default",
                   "allowed": [{"IPProtocol": "tcp"}]}),
        )
        .await;
    r.assert_error(400, "invalid");
    assert!(
        r.message()
            .ends_with("Unexpected resource collection 'subnetworks'."),
        "{}",
        r.message()
    );
    let r = api
        .post(
            &format!("zones/{ZONE}/instanceGroups"),
            json!({"name": "ig", "subnetwork": "global/networks/default"}),
        )
        .await;
    r.assert_error(400, "invalid");
    assert!(
        r.message()
            .ends_with("Unexpected resource collection 'networks'."),
        "{}",
        r.message()
    );
    let r = api
        .post(
            &format!("zones/{ZONE}/instanceGroups"),
            json!({"name": "ig", "subnetwork": "global/subnetworks/default"}),
        )
        .await;
    r.assert_error(400, "invalid");
    assert!(r.message().ends_with(malformed), "{}", r.message());
}

#[tokio::test]
async fn networks_exist_are_listed_and_cannot_go_while_used() {
    let api = Api::start().await;
    let default = api.get("global/networks/default").await.ok();
    assert_eq!(default["kind"], "compute#network");
    assert_eq!(default["selfLink"], link("global/networks/default"));
    assert_eq!(default["autoCreateSubnetworks"], true);
    assert_eq!(default["routingConfig"]["routingMode"], "REGIONAL");
    assert!(
        default["subnetworks"]
            .as_array()
            .is_some_and(|s| s.contains(&json!(link(&format!("regions/{REGION}/subnetworks/default")))))
    );
    // Unknown networks are refused wherever a network is named.
    let nope = "The resource 'projects/p/global/networks/nope' was not found";
    for (path, body) in [
        (
            "global/firewalls".to_string(),
            json!({"name": "fw", "network": "global/networks/nope", "allowed": [{"IPProtocol": "tcp"}]}),
        ),
        (
            format!("zones/{ZONE}/instanceGroups"),
            json!({"name": "ig", "network": "global/networks/nope"}),
        ),
        (
            format!("zones/{ZONE}/networkEndpointGroups"),
            json!({"name": "neg", "network": "global/networks/nope", "defaultPort": 80}),
        ),
    ] {
        let r = api.post(&path, body).await;
        r.assert_error(404, "notFound");
        assert_eq!(r.message(), nope, "{path}");
    }
    // Create one (custom mode), use it, try to delete it.
    let vpc = api
        .create(
            "global/networks",
            json!({"name": "vpc", "autoCreateSubnetworks": false}),
        )
        .await;
    assert_eq!(vpc["mtu"], 1460);
    assert!(
        vpc.get("subnetworks").is_none(),
        "custom mode: no subnetworks of its own"
    );
    api.post("global/networks", json!({"name": "vpc"}))
        .await
        .assert_error(409, "alreadyExists");
    let list = api.get("global/networks").await.ok();
    assert_eq!(list["kind"], "compute#networkList");
    let names: Vec<&str> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["name"].as_str())
        .collect();
    assert_eq!(names, ["default", "vpc"]);
    api.create(
        "global/firewalls",
        json!({"name": "fw", "network": "global/networks/vpc", "allowed": [{"IPProtocol": "tcp"}]}),
    )
    .await;
    // Compute reports a network in use through the operation ("Error waiting for Deleting
    // Network: The network resource ... is already being used by ...").
    let failed = api.failed(Method::DELETE, "global/networks/vpc", None).await;
    assert_eq!(
        failed["error"]["errors"][0],
        json!({"code": "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE",
               "message": "The network resource 'projects/p/global/networks/vpc' is already being used by 'projects/p/global/firewalls/fw'"})
    );
    assert_eq!(failed["httpErrorStatusCode"], 400);
    api.get("global/networks/vpc").await.ok();
    api.done(Method::DELETE, "global/firewalls/fw", None).await;
    api.done(Method::DELETE, "global/networks/vpc", None).await;
    api.get("global/networks/vpc").await.assert_error(404, "notFound");
    // The default network of a seeded instance is in use too.
    api.gce.seed_instance(ZONE, "node").expect("seeded");
    let failed = api.failed(Method::DELETE, "global/networks/default", None).await;
    assert!(
        failed["error"]["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.ends_with(&format!("'projects/p/zones/{ZONE}/instances/node'"))),
        "{failed:#}"
    );
    // Networks are counted like any collection and kept apart in the state dump.
    assert!(api.stats().await["byKind"]["networks"]["mutations"].as_u64() >= Some(4));
    let state = api.gce.state();
    assert!(state["networks"]["projects/p/global/networks/default"].is_object());
    assert!(state["resources"]["projects/p/global/networks/default"].is_null());
}

#[tokio::test]
async fn every_project_has_its_start_networks_without_a_write() {
    let api = Api::with(Config {
        networks: vec!["default".into(), "second".into()],
        ..config()
    })
    .await;
    let stored = || api.gce.state()["networks"].clone();
    let before = stored();
    assert!(
        before["projects/p/global/networks/second"].is_object(),
        "{before:#}"
    );
    // Reads in a project never written show its networks, always the same, and store nothing.
    let q = |path: &str| format!("{LINK}projects/q/global/networks{path}");
    let default = api.get(&q("/default")).await.ok();
    assert_eq!(default["selfLink"], q("/default"));
    assert_eq!(default["autoCreateSubnetworks"], true);
    assert_eq!(api.get(&q("/default")).await.ok(), default);
    let id = default["id"].as_str().expect("id");
    assert_eq!(api.get(&q(&format!("/{id}"))).await.ok(), default, "by id");
    let list = api.get(&q("")).await.ok();
    let names: Vec<&str> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["name"].as_str())
        .collect();
    assert_eq!(names, ["default", "second"]);
    assert_eq!(list["items"][0], default);
    api.post(&q(""), json!({"name": "default"}))
        .await
        .assert_error(409, "alreadyExists");
    assert_eq!(stored(), before, "reads and refused writes store nothing");
    // A firewall rule there uses the network without storing it; it cannot go while used.
    api.done(
        Method::POST,
        &format!("{LINK}projects/q/global/firewalls"),
        Some(json!({"name": "fw", "allowed": [{"IPProtocol": "tcp"}]})),
    )
    .await;
    assert_eq!(stored(), before);
    api.failed(Method::DELETE, &q("/default"), None).await;
    // Deleting one stores the others of the project, unchanged.
    let second = api.get(&q("/second")).await.ok();
    api.done(
        Method::DELETE,
        &format!("{LINK}projects/q/global/firewalls/fw"),
        None,
    )
    .await;
    api.done(Method::DELETE, &q("/default"), None).await;
    api.get(&q("/default")).await.assert_error(404, "notFound");
    let after = stored();
    assert_eq!(after["projects/q/global/networks/second"], second, "{after:#}");
    assert!(after["projects/q/global/networks/default"].is_null());
    assert_eq!(api.get(&q("/second")).await.ok(), second);
    // They count against the quota of their collection, stored or not.
    api.gce.set_quota("networks", Some(2));
    let done = api
        .failed(
            Method::POST,
            &format!("{LINK}projects/r/global/networks"),
            Some(json!({"name": "third"})),
        )
        .await;
    assert_eq!(done["error"]["errors"][0]["code"], "QUOTA_EXCEEDED", "{done:#}");
}

#[tokio::test]
async fn configured_networks_replace_the_default_one() {
    let api = Api::with(Config {
        networks: vec!["projects/host/global/networks/shared".into()],
        instances: vec![InstanceSeed {
            network: Some("projects/host/global/networks/shared".into()),
            subnetwork: Some(format!("projects/host/regions/{REGION}/subnetworks/nodes")),
            ..InstanceSeed::new(ZONE, "node")
        }],
        ..config()
    })
    .await;
    api.get("global/networks/default")
        .await
        .assert_error(404, "notFound");
    let r = api
        .post(
            "global/firewalls",
            json!({"name": "fw", "allowed": [{"IPProtocol": "tcp"}]}),
        )
        .await;
    r.assert_error(404, "notFound");
    assert_eq!(
        r.message(),
        "The resource 'projects/p/global/networks/default' was not found",
        "a firewall rule without a network is on `default`"
    );
    let node = api.get(&format!("zones/{ZONE}/instances/node")).await.ok();
    assert_eq!(
        node["networkInterfaces"][0]["network"],
        format!("{LINK}projects/host/global/networks/shared")
    );
    // A group without a network takes its first instance's network and subnetwork.
    api.create(&format!("zones/{ZONE}/instanceGroups"), json!({"name": "ig"}))
        .await;
    api.done(
        Method::POST,
        &format!("zones/{ZONE}/instanceGroups/ig/addInstances"),
        Some(json!({"instances": [{"instance": format!("zones/{ZONE}/instances/node")}]})),
    )
    .await;
    let ig = api.get(&format!("zones/{ZONE}/instanceGroups/ig")).await.ok();
    assert_eq!(
        ig["network"],
        format!("{LINK}projects/host/global/networks/shared")
    );
    assert_eq!(
        ig["subnetwork"],
        format!("{LINK}projects/host/regions/{REGION}/subnetworks/nodes")
    );
    // Seeding on a network that does not exist fails.
    let e = api
        .gce
        .seed_instance_with(&InstanceSeed {
            network: Some("nowhere".into()),
            ..InstanceSeed::new(ZONE, "lost")
        })
        .expect_err("no such network");
    assert_eq!(e.status, 404);
    // After a reset the configured state is back.
    api.gce.reset();
    api.get(&format!("{LINK}projects/host/global/networks/shared"))
        .await
        .ok();
}

#[tokio::test]
async fn instances_of_a_group_share_its_subnetwork() {
    let api = Api::start().await;
    api.gce.seed_instance(ZONE, "a").expect("seeded");
    api.gce
        .seed_instance_with(&InstanceSeed {
            subnetwork: Some(format!("regions/{REGION}/subnetworks/other")),
            ..InstanceSeed::new(ZONE, "b")
        })
        .expect("seeded");
    api.create(
        &format!("zones/{ZONE}/instanceGroups"),
        json!({"name": "ig", "network": "global/networks/default",
               "subnetwork": format!("regions/{REGION}/subnetworks/default")}),
    )
    .await;
    let add = |who: &str| json!({"instances": [{"instance": format!("zones/{ZONE}/instances/{who}")}]});
    api.done(
        Method::POST,
        &format!("zones/{ZONE}/instanceGroups/ig/addInstances"),
        Some(add("a")),
    )
    .await;
    let r = api
        .post(&format!("zones/{ZONE}/instanceGroups/ig/addInstances"), add("b"))
        .await;
    r.assert_error(400, "wrongSubnetwork");
    assert_eq!(
        r.message(),
        format!(
            "Resource 'projects/p/zones/{ZONE}/instances/b' is expected to be in the subnetwork \
             'projects/p/regions/{REGION}/subnetworks/default' but is in the subnetwork \
             'projects/p/regions/{REGION}/subnetworks/other'."
        )
    );
}

fn scoped_names(list: &Value, field: &str) -> Vec<String> {
    list["items"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(_, scoped)| scoped[field].as_array().cloned().unwrap_or_default())
        .filter_map(|i| i["name"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn aggregated_lists_have_the_api_shape_and_page() {
    let api = Api::with(Config {
        zones: vec![
            "us-central1-a".into(),
            "us-central1-b".into(),
            "europe-west1-b".into(),
        ],
        ..config()
    })
    .await;
    for (zone, name) in [
        ("us-central1-a", "a1"),
        ("us-central1-a", "a2"),
        ("us-central1-b", "b1"),
    ] {
        api.gce.seed_instance(zone, name).expect("seeded");
        api.create(
            &format!("zones/{zone}/instanceGroups"),
            json!({"name": format!("ig-{name}")}),
        )
        .await;
    }
    api.gce.reset_stats();
    let all = api.get("aggregated/instanceGroups").await.ok();
    assert_eq!(all["kind"], "compute#instanceGroupAggregatedList");
    assert_eq!(all["id"], "projects/p/aggregated/instanceGroups");
    assert_eq!(all["selfLink"], link("aggregated/instanceGroups"));
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
            "zones/us-central1-a",
            "zones/us-central1-b"
        ]
    );
    assert_eq!(
        all["items"]["zones/europe-west1-b"],
        json!({"warning": {"code": "NO_RESULTS_ON_PAGE",
                           "message": "There are no results for scope 'zones/europe-west1-b' on this page.",
                           "data": [{"key": "scope", "value": "zones/europe-west1-b"}]}})
    );
    let in_a = &all["items"]["zones/us-central1-a"]["instanceGroups"];
    assert_eq!(in_a[0]["name"], "ig-a1");
    assert_eq!(in_a[0]["kind"], "compute#instanceGroup");
    assert_eq!(in_a[0]["size"], 0);
    assert_eq!(scoped_names(&all, "instanceGroups"), ["ig-a1", "ig-a2", "ig-b1"]);

    // Paging counts resources across scopes; every page names every scope.
    let mut seen = Vec::new();
    let mut url = "aggregated/instanceGroups?maxResults=2&returnPartialSuccess=true".to_string();
    let mut pages = 0;
    loop {
        let page = api.get(&url).await.ok();
        pages += 1;
        assert_eq!(page["items"].as_object().map(|o| o.len()), Some(5));
        let names = scoped_names(&page, "instanceGroups");
        assert!(names.len() <= 2);
        seen.extend(names);
        match page["nextPageToken"].as_str() {
            Some(t) => url = format!("aggregated/instanceGroups?maxResults=2&pageToken={t}"),
            None => break,
        }
    }
    assert_eq!(pages, 2);
    assert_eq!(seen, ["ig-a1", "ig-a2", "ig-b1"]);
    let second_page_a = api
        .get("aggregated/instanceGroups?maxResults=1&filter=name%20eq%20ig-b.*")
        .await
        .ok();
    assert_eq!(scoped_names(&second_page_a, "instanceGroups"), ["ig-b1"]);
    assert_eq!(
        second_page_a["items"]["zones/us-central1-a"]["warning"]["code"],
        "NO_RESULTS_ON_PAGE"
    );
    api.get("aggregated/instanceGroups?pageToken=garbage")
        .await
        .assert_error(400, "invalid");

    // Instances: zones only.
    let inst = api.get("aggregated/instances").await.ok();
    assert_eq!(inst["kind"], "compute#instanceAggregatedList");
    assert_eq!(inst["id"], "projects/p/aggregated/instances");
    assert_eq!(scoped_names(&inst, "instances"), ["a1", "a2", "b1"]);
    assert!(
        inst["items"]
            .as_object()
            .is_some_and(|o| o.keys().all(|k| k.starts_with("zones/")))
    );
    assert_eq!(
        inst["items"]["zones/us-central1-b"]["instances"][0]["selfLink"],
        link("zones/us-central1-b/instances/b1")
    );

    // Counted as lists of their collection.
    let stats = api.stats().await;
    assert_eq!(stats["byKind"]["instanceGroups"]["lists"], 5);
    assert_eq!(stats["byKind"]["instances"]["lists"], 1);
    // An aggregated list the fake does not have is the front end's 404.
    let r = api.get("aggregated/firewalls").await;
    assert_eq!(r.status, 404);
    assert!(r.body.is_null(), "HTML, not JSON");
}

#[tokio::test]
async fn regional_operations_are_got_waited_and_listed() {
    let api = Api::start().await;
    let op = api
        .post(
            &format!("regions/{REGION}/healthChecks"),
            json!({"name": "hc", "type": "TCP"}),
        )
        .await
        .ok();
    assert_eq!(op["region"], link(&format!("regions/{REGION}")));
    let name = op["name"].as_str().unwrap_or_default().to_string();
    assert_eq!(
        op["selfLink"],
        link(&format!("regions/{REGION}/operations/{name}"))
    );
    let got = api.get(&format!("regions/{REGION}/operations/{name}")).await.ok();
    assert_eq!(got["status"], "DONE");
    let waited = api.wait(&op).await;
    assert_eq!(
        waited["targetLink"],
        link(&format!("regions/{REGION}/healthChecks/hc"))
    );
    let list = api.get(&format!("regions/{REGION}/operations")).await.ok();
    assert_eq!(list["items"][0]["name"], name.as_str());
    // Not in another scope.
    api.get(&format!("global/operations/{name}"))
        .await
        .assert_error(404, "notFound");
}
