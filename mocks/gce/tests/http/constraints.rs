//! Rules Compute enforces across resources, and its limits and quotas: one load-balanced
//! instance group per instance, one load-balancing scheme along forwarding rule → proxy → URL
//! map → backend services, URL-map limits and size accounting, resource quotas per project and
//! region. Each with the code, status and message Compute gives (sources in the crate docs).

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Api, ZONE, config, link, seed_nodes};

const IN_TWO_GROUPS: &str = "INSTANCE_IN_MULTIPLE_LOAD_BALANCED_IGS";

fn ig(name: &str) -> String {
    format!("zones/{ZONE}/instanceGroups/{name}")
}

async fn group(api: &Api, name: &str, nodes: &[&str]) {
    api.create(&format!("zones/{ZONE}/instanceGroups"), json!({"name": name}))
        .await;
    if !nodes.is_empty() {
        add(api, name, nodes).await;
    }
}

fn members(nodes: &[&str]) -> Value {
    let list: Vec<Value> = nodes
        .iter()
        .map(|n| json!({"instance": link(&format!("zones/{ZONE}/instances/{n}"))}))
        .collect();
    json!({ "instances": list })
}

async fn add(api: &Api, group: &str, nodes: &[&str]) {
    api.done(
        Method::POST,
        &format!("{}/addInstances", ig(group)),
        Some(members(nodes)),
    )
    .await;
}

fn service(name: &str, groups: &[&str]) -> Value {
    let backends: Vec<Value> = groups
        .iter()
        .map(|g| json!({"group": link(&ig(g)), "balancingMode": "UTILIZATION"}))
        .collect();
    json!({"name": name, "healthChecks": ["global/healthChecks/hc"], "backends": backends})
}

/// The failed DONE operation's only error: (code, message), with its HTTP status.
fn op_error(done: &Value) -> (String, String, u64) {
    let e = &done["error"]["errors"][0];
    (
        e["code"].as_str().unwrap_or_default().to_string(),
        e["message"].as_str().unwrap_or_default().to_string(),
        done["httpErrorStatusCode"].as_u64().unwrap_or_default(),
    )
}

fn in_two_groups_message(node: &str) -> String {
    format!(
        "Validation failed for instance 'projects/p/zones/{ZONE}/instances/{node}': instance may \
         belong to at most one load-balanced instance group"
    )
}

#[tokio::test]
async fn a_backend_service_may_not_make_an_instance_load_balanced_twice() {
    let api = Api::start().await;
    seed_nodes(&api, 3);
    api.create("global/healthChecks", json!({"name": "hc", "type": "TCP"}))
        .await;
    // Groups may share instances while at most one of them is load-balanced.
    group(&api, "ig-a", &["node-0", "node-1"]).await;
    group(&api, "ig-b", &["node-0"]).await;
    group(&api, "ig-c", &["node-2"]).await;
    api.create("global/backendServices", service("bs-a", &["ig-a"]))
        .await;

    // The insert is accepted; its operation fails, and nothing is created.
    let done = api
        .failed(
            Method::POST,
            "global/backendServices",
            Some(service("bs-b", &["ig-b"])),
        )
        .await;
    assert_eq!(
        op_error(&done),
        (IN_TWO_GROUPS.into(), in_two_groups_message("node-0"), 400),
        "{done:#}"
    );
    assert_eq!(done["httpErrorMessage"], "BAD REQUEST");
    api.get("global/backendServices/bs-b")
        .await
        .assert_error(404, "notFound");
    // Both groups in one new service: the same.
    let done = api
        .failed(
            Method::POST,
            "global/backendServices",
            Some(service("bs-ab", &["ig-b", "ig-a"])),
        )
        .await;
    assert_eq!(op_error(&done).0, IN_TWO_GROUPS);
    // Adding ig-b to the service that already balances ig-a: the same, through an update.
    let a = api.get("global/backendServices/bs-a").await.ok();
    let mut both = service("bs-a", &["ig-a", "ig-b"]);
    both["fingerprint"] = a["fingerprint"].clone();
    let done = api
        .failed(Method::PUT, "global/backendServices/bs-a", Some(both))
        .await;
    assert_eq!(op_error(&done).0, IN_TWO_GROUPS);

    // Several services may share one group, and groups without common instances are fine.
    api.create("global/backendServices", service("bs-a2", &["ig-a", "ig-c"]))
        .await;
    // Once ig-a is no longer balanced by anyone, ig-b may be.
    for name in ["bs-a", "bs-a2"] {
        api.done(Method::DELETE, &format!("global/backendServices/{name}"), None)
            .await;
    }
    api.create("global/backendServices", service("bs-b", &["ig-b"]))
        .await;
    // A patch that swaps the group also checks: ig-a is now the second one.
    let b = api.get("global/backendServices/bs-b").await.ok();
    let done = api
        .failed(
            Method::PATCH,
            "global/backendServices/bs-b",
            Some(json!({"fingerprint": b["fingerprint"],
                        "backends": service("x", &["ig-b", "ig-a"])["backends"]})),
        )
        .await;
    assert_eq!(op_error(&done).0, IN_TWO_GROUPS);
    let swapped = json!({"fingerprint": b["fingerprint"], "backends": service("x", &["ig-a"])["backends"]});
    api.done(Method::PATCH, "global/backendServices/bs-b", Some(swapped))
        .await;
    assert_eq!(api.stats().await["operations"]["failed"], 4);
}

#[tokio::test]
async fn instances_of_a_load_balanced_group_may_not_join_another() {
    let api = Api::start().await;
    seed_nodes(&api, 3);
    api.create("global/healthChecks", json!({"name": "hc", "type": "TCP"}))
        .await;
    group(&api, "ig-a", &["node-0"]).await;
    group(&api, "ig-b", &["node-1"]).await;
    api.create("global/backendServices", service("bs-a", &["ig-a"]))
        .await;
    api.create("global/backendServices", service("bs-b", &["ig-b"]))
        .await;

    let done = api
        .failed(
            Method::POST,
            &format!("{}/addInstances", ig("ig-b")),
            Some(members(&["node-2", "node-0"])),
        )
        .await;
    assert_eq!(
        op_error(&done),
        (IN_TWO_GROUPS.into(), in_two_groups_message("node-0"), 400),
        "{done:#}"
    );
    assert_eq!(done["operationType"], "compute.instanceGroups.addInstances");
    assert!(
        done["zone"].as_str().is_some_and(|z| z.ends_with(ZONE)),
        "{done:#}"
    );
    // Nothing was added, not even the instance that was free.
    let listed = api
        .post(&format!("{}/listInstances", ig("ig-b")), json!({}))
        .await
        .ok();
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1), "{listed:#}");

    // A group no backend service uses takes it; that group cannot then be balanced.
    group(&api, "ig-c", &["node-0"]).await;
    let done = api
        .failed(
            Method::POST,
            "global/backendServices",
            Some(service("bs-c", &["ig-c"])),
        )
        .await;
    assert_eq!(op_error(&done).0, IN_TWO_GROUPS);
    // Out of ig-a, node-0 may join ig-b.
    api.done(
        Method::POST,
        &format!("{}/removeInstances", ig("ig-a")),
        Some(members(&["node-0"])),
    )
    .await;
    add(&api, "ig-b", &["node-0", "node-2"]).await;
}

// ---------------------------------------------------------------------------------------------
// Load-balancing schemes

async fn scheme_setup(api: &Api) {
    api.create("global/backendServices", json!({"name": "classic"}))
        .await;
    api.create(
        "global/backendServices",
        json!({"name": "managed", "loadBalancingScheme": "EXTERNAL_MANAGED"}),
    )
    .await;
    for (map, svc) in [("um-classic", "classic"), ("um-managed", "managed")] {
        api.create(
            "global/urlMaps",
            json!({"name": map, "defaultService": format!("global/backendServices/{svc}")}),
        )
        .await;
    }
    api.create(
        "global/urlMaps",
        json!({"name": "um-redirect", "defaultUrlRedirect": {"httpsRedirect": true}}),
    )
    .await;
    for (proxy, map) in [
        ("tp-classic", "um-classic"),
        ("tp-managed", "um-managed"),
        ("tp-redirect", "um-redirect"),
        ("tp-redirect2", "um-redirect"),
    ] {
        api.create(
            "global/targetHttpProxies",
            json!({"name": proxy, "urlMap": format!("global/urlMaps/{map}")}),
        )
        .await;
    }
}

fn rule(name: &str, proxy: &str, scheme: &str) -> Value {
    json!({"name": name, "target": format!("global/targetHttpProxies/{proxy}"),
           "loadBalancingScheme": scheme, "portRange": "80"})
}

#[tokio::test]
async fn a_forwarding_rule_has_the_scheme_of_the_backend_services_it_reaches() {
    let api = Api::start().await;
    scheme_setup(&api).await;

    // Compute's exact answer (cloud-foundation-fabric#1065).
    let r = api
        .post(
            "global/forwardingRules",
            rule("fr", "tp-classic", "EXTERNAL_MANAGED"),
        )
        .await;
    r.assert_error(400, "invalid");
    assert_eq!(
        r.message(),
        "Invalid value for field 'resource.backendService': ''. Load balancing scheme \
         EXTERNAL_MANAGED does not match the backend service load balancing scheme EXTERNAL."
    );
    // The default scheme is EXTERNAL.
    let r = api
        .post(
            "global/forwardingRules",
            json!({"name": "fr", "target": "global/targetHttpProxies/tp-managed"}),
        )
        .await;
    r.assert_error(400, "invalid");
    assert!(
        r.message().contains(
            "Load balancing scheme EXTERNAL does not match the backend service load balancing \
             scheme EXTERNAL_MANAGED."
        ),
        "{}",
        r.message()
    );
    api.create(
        "global/forwardingRules",
        rule("fr-classic", "tp-classic", "EXTERNAL"),
    )
    .await;
    api.create(
        "global/forwardingRules",
        rule("fr-managed", "tp-managed", "EXTERNAL_MANAGED"),
    )
    .await;
    // A redirect-only map goes with either scheme.
    api.create(
        "global/forwardingRules",
        rule("fr-redirect", "tp-redirect", "EXTERNAL_MANAGED"),
    )
    .await;
    api.create(
        "global/forwardingRules",
        rule("fr-redirect2", "tp-redirect2", "EXTERNAL"),
    )
    .await;

    // setTarget to a proxy of the other scheme: the same refusal.
    let r = api
        .post(
            "global/forwardingRules/fr-classic/setTarget",
            json!({"target": "global/targetHttpProxies/tp-managed"}),
        )
        .await;
    r.assert_error(400, "invalid");
    assert!(
        r.message()
            .contains("does not match the backend service load balancing scheme EXTERNAL_MANAGED"),
        "{}",
        r.message()
    );
    api.done(
        Method::POST,
        "global/forwardingRules/fr-classic/setTarget",
        Some(json!({"target": "global/targetHttpProxies/tp-classic"})),
    )
    .await;
}

#[tokio::test]
async fn a_url_map_or_proxy_in_use_cannot_switch_to_the_other_scheme() {
    let api = Api::start().await;
    scheme_setup(&api).await;
    api.create(
        "global/forwardingRules",
        rule("fr-classic", "tp-classic", "EXTERNAL"),
    )
    .await;
    api.create(
        "global/forwardingRules",
        rule("fr-redirect", "tp-redirect", "EXTERNAL_MANAGED"),
    )
    .await;

    // One URL map, one scheme: refused whether or not a forwarding rule uses it.
    let r = api
        .post(
            "global/urlMaps",
            json!({"name": "mixed", "defaultService": "global/backendServices/classic",
                   "hostRules": [{"hosts": ["a.example.com"], "pathMatcher": "pm"}],
                   "pathMatchers": [{"name": "pm", "defaultService": "global/backendServices/classic",
                                     "pathRules": [{"paths": ["/m"], "service": "global/backendServices/managed"}]}]}),
        )
        .await;
    r.assert_error(400, "invalid");
    assert!(
        r.message().contains("different load balancing schemes"),
        "{}",
        r.message()
    );

    // update (PUT) and patch of a map a classic rule reaches.
    let um = api.get("global/urlMaps/um-classic").await.ok();
    let r = api
        .put(
            "global/urlMaps/um-classic",
            json!({"name": "um-classic", "fingerprint": um["fingerprint"],
                   "defaultService": "global/backendServices/managed"}),
        )
        .await;
    r.assert_error(400, "invalid");
    assert!(
        r.message().contains(
            "Load balancing scheme EXTERNAL of forwarding rule \
             'projects/p/global/forwardingRules/fr-classic' does not match the backend service \
             load balancing scheme EXTERNAL_MANAGED."
        ),
        "{}",
        r.message()
    );
    api.patch(
        "global/urlMaps/um-classic",
        json!({"fingerprint": um["fingerprint"], "defaultService": "global/backendServices/managed"}),
    )
    .await
    .assert_error(400, "invalid");
    // Nor may the redirect-only map of a managed rule start reaching a classic service.
    let redirect = api.get("global/urlMaps/um-redirect").await.ok();
    api.put(
        "global/urlMaps/um-redirect",
        json!({"name": "um-redirect", "fingerprint": redirect["fingerprint"],
               "defaultService": "global/backendServices/classic"}),
    )
    .await
    .assert_error(400, "invalid");

    // setUrlMap and patch of a proxy in use.
    let r = api
        .post(
            "targetHttpProxies/tp-classic/setUrlMap",
            json!({"urlMap": "global/urlMaps/um-managed"}),
        )
        .await;
    r.assert_error(400, "invalid");
    assert!(
        r.message().starts_with("Invalid value for field 'urlMap'"),
        "{}",
        r.message()
    );
    let tp = api.get("global/targetHttpProxies/tp-classic").await.ok();
    api.patch(
        "global/targetHttpProxies/tp-classic",
        json!({"fingerprint": tp["fingerprint"], "urlMap": "global/urlMaps/um-managed"}),
    )
    .await
    .assert_error(400, "invalid");
    // To and from a redirect-only map is always fine; a proxy no rule uses may switch freely.
    api.done(
        Method::POST,
        "targetHttpProxies/tp-classic/setUrlMap",
        Some(json!({"urlMap": "global/urlMaps/um-redirect"})),
    )
    .await;
    api.done(
        Method::POST,
        "targetHttpProxies/tp-classic/setUrlMap",
        Some(json!({"urlMap": "global/urlMaps/um-classic"})),
    )
    .await;
    api.done(
        Method::POST,
        "targetHttpProxies/tp-managed/setUrlMap",
        Some(json!({"urlMap": "global/urlMaps/um-classic"})),
    )
    .await;
    // The same change is fine once no rule of the other scheme reaches the map.
    api.done(Method::DELETE, "global/forwardingRules/fr-classic", None)
        .await;
    api.done(Method::DELETE, "global/targetHttpProxies/tp-managed", None)
        .await;
    api.done(
        Method::PUT,
        "global/urlMaps/um-classic",
        Some(json!({"name": "um-classic", "fingerprint": um["fingerprint"],
                    "defaultService": "global/backendServices/managed"})),
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// URL-map limits

#[tokio::test]
async fn path_patterns_per_matcher_and_services_per_url_map_are_limited() {
    let mut cfg = config();
    cfg.url_map_limits.max_path_patterns_per_matcher = 3;
    cfg.url_map_limits.max_services = 2;
    let api = Api::with(cfg).await;
    for s in ["a", "b", "c"] {
        api.create("global/backendServices", json!({"name": s})).await;
    }
    let map = |rules: Value, default: &str| {
        json!({"name": "um", "defaultService": format!("global/backendServices/{default}"),
               "hostRules": [{"hosts": ["x.example.com"], "pathMatcher": "pm"}],
               "pathMatchers": [{"name": "pm", "defaultService": "global/backendServices/a",
                                 "pathRules": rules}]})
    };
    // Four patterns in two path rules (a Prefix path needs two): over 3.
    let four = json!([{"paths": ["/p", "/p/*"], "service": "global/backendServices/b"},
                      {"paths": ["/q", "/q/*"], "service": "global/backendServices/b"}]);
    let r = api.post("global/urlMaps", map(four, "a")).await;
    r.assert_error(413, "fieldSizeTooLarge");
    assert_eq!(
        r.message(),
        "Value for field 'resource.pathMatchers[0].pathRules[].paths' is too large: maximum size 3 \
         element(s); actual size 4."
    );
    let three = json!([{"paths": ["/p", "/p/*"], "service": "global/backendServices/b"},
                       {"paths": ["/q"], "service": "global/backendServices/b"}]);
    api.create("global/urlMaps", map(three.clone(), "a")).await;
    // A third distinct backend service: over 2.
    let um = api.get("global/urlMaps/um").await.ok();
    let mut third = map(three, "c");
    third["fingerprint"] = um["fingerprint"].clone();
    let r = api.put("global/urlMaps/um", third).await;
    r.assert_error(413, "fieldSizeTooLarge");
    assert_eq!(
        r.message(),
        "Value for field 'resource' is too large: maximum size 2 backend service(s); actual size 3."
    );
}

#[tokio::test]
async fn the_size_counts_the_stored_map_the_same_way_on_insert_update_and_patch() {
    let body = json!({"name": "um", "defaultService": "global/backendServices/a",
                      "description": "0123456789"});
    // The size the fake counts for this map, from its refusal on a fake with a 1-byte limit;
    // then another fake (same seed, same calls) set exactly to that size.
    let sized = |limit: usize| {
        let mut cfg = config();
        cfg.url_map_limits.max_size_bytes = limit;
        cfg
    };
    let probe = Api::with(sized(1)).await;
    probe.create("global/backendServices", json!({"name": "a"})).await;
    let r = probe.post("global/urlMaps", body.clone()).await;
    r.assert_error(413, "fieldSizeTooLarge");
    let size: usize = r
        .message()
        .strip_prefix("Value for field 'resource' is too large: maximum size 1 byte(s); actual size ")
        .and_then(|rest| rest.strip_suffix('.'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a size in {:?}", r.message()));
    let api = Api::with(sized(size)).await;
    api.create("global/backendServices", json!({"name": "a"})).await;
    // At the limit: accepted.
    let stored = api.create("global/urlMaps", body.clone()).await;
    // A patch starts from the stored map (with its selfLink and fingerprint): same count.
    api.done(
        Method::PATCH,
        "global/urlMaps/um",
        Some(json!({"fingerprint": stored["fingerprint"], "description": "9876543210"})),
    )
    .await;
    let stored = api.get("global/urlMaps/um").await.ok();
    let mut update = body.clone();
    update["fingerprint"] = stored["fingerprint"].clone();
    api.done(Method::PUT, "global/urlMaps/um", Some(update)).await;
    // One byte more is refused, with the size in the message.
    let stored = api.get("global/urlMaps/um").await.ok();
    let r = api
        .patch(
            "global/urlMaps/um",
            json!({"fingerprint": stored["fingerprint"], "description": "01234567890"}),
        )
        .await;
    r.assert_error(413, "fieldSizeTooLarge");
    assert_eq!(
        r.message(),
        format!(
            "Value for field 'resource' is too large: maximum size {size} byte(s); actual size {}.",
            size + 1
        )
    );
}

// ---------------------------------------------------------------------------------------------
// Quotas

#[tokio::test]
async fn an_exceeded_quota_fails_the_insert_operation_per_project() {
    let api = Api::start().await;
    api.gce.set_quota("backendServices", Some(1));
    api.create("global/backendServices", json!({"name": "a"})).await;
    // Accepted, then the operation fails: QUOTA_EXCEEDED, 403, with its quotaInfo.
    let done = api
        .failed(Method::POST, "global/backendServices", Some(json!({"name": "b"})))
        .await;
    assert_eq!(
        op_error(&done),
        (
            "QUOTA_EXCEEDED".into(),
            "Quota 'BACKEND_SERVICES' exceeded.  Limit: 1.0 globally.".into(),
            403
        ),
        "{done:#}"
    );
    assert_eq!(done["httpErrorMessage"], "FORBIDDEN");
    assert_eq!(
        done["error"]["errors"][0]["errorDetails"][0]["quotaInfo"],
        json!({"metricName": "compute.googleapis.com/backend_services",
               "limitName": "BACKEND-SERVICES-per-project", "limit": 1})
    );
    api.get("global/backendServices/b")
        .await
        .assert_error(404, "notFound");
    // Another project has its own count.
    api.done(
        Method::POST,
        "/compute/v1/projects/q/global/backendServices",
        Some(json!({"name": "b"})),
    )
    .await;
    // A regional backend service counts in its region, not against the global collection.
    api.done(
        Method::POST,
        "regions/us-central1/backendServices",
        Some(json!({"name": "b", "loadBalancingScheme": "INTERNAL_MANAGED"})),
    )
    .await;
    // Freed by a delete.
    api.done(Method::DELETE, "global/backendServices/a", None).await;
    api.create("global/backendServices", json!({"name": "b"})).await;
}

#[tokio::test]
async fn zonal_collections_count_per_region() {
    let api = Api::start().await;
    api.gce.set_quota("instanceGroups", Some(1));
    api.create("zones/us-central1-a/instanceGroups", json!({"name": "ig"}))
        .await;
    let done = api
        .failed(
            Method::POST,
            "zones/us-central1-b/instanceGroups",
            Some(json!({"name": "ig"})),
        )
        .await;
    assert_eq!(
        op_error(&done),
        (
            "QUOTA_EXCEEDED".into(),
            "Quota 'INSTANCE_GROUPS' exceeded.  Limit: 1.0 in region us-central1.".into(),
            403
        ),
        "{done:#}"
    );
    assert_eq!(
        done["error"]["errors"][0]["errorDetails"][0]["quotaInfo"]["dimensions"],
        json!({"region": "us-central1"})
    );
    // Another region has its own count.
    api.create("zones/europe-west1-b/instanceGroups", json!({"name": "ig"}))
        .await;
    // Addresses count against STATIC_ADDRESSES.
    api.gce.set_quota("globalAddresses", Some(0));
    let done = api
        .failed(Method::POST, "global/addresses", Some(json!({"name": "ip"})))
        .await;
    assert_eq!(
        op_error(&done).1,
        "Quota 'STATIC_ADDRESSES' exceeded.  Limit: 0.0 globally."
    );
}
