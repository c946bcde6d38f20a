//! The knobs, through the Rust API and the `/_fake/` admin API: faults, quotas, rate limits,
//! latency, counters, token check, state dump and reset.

use fake_gce::{Config, FaultAction, FaultRule, InstanceSeed, RateLimit};
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Api, ZONE, config, link};

fn error_503() -> FaultAction {
    FaultAction::Error {
        status: 503,
        reason: "backendError".into(),
        message: "Backend Error".into(),
    }
}

#[tokio::test]
async fn synchronous_faults_fire_in_their_window() {
    let api = Api::start().await;
    let id = api
        .gce
        .add_fault(
            FaultRule::new("POST", "/global/healthChecks$", error_503())
                .after(1)
                .times(2),
        )
        .expect("rule");
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for i in 0..4 {
            v.push(
                api.post(
                    "global/healthChecks",
                    json!({"name": format!("h{i}"), "type": "TCP"}),
                )
                .await
                .status,
            );
        }
        v
    };
    assert_eq!(statuses, [200, 503, 503, 200]);
    let r = api
        .post("global/healthChecks", json!({"name": "x", "type": "TCP"}))
        .await;
    assert_eq!(r.status, 200, "window over");
    // Gets are not matched by a POST rule.
    api.get("global/healthChecks/h0").await.ok();
    let faults = api.gce.faults();
    assert_eq!((faults[0].id, faults[0].matched, faults[0].fired), (id, 5, 2));
    let s = api.gce.stats();
    assert_eq!(s.rejected.injected, 2);
    assert_eq!(
        s.kind("healthChecks").mutations,
        3,
        "rejected requests are not counted as calls"
    );
    assert!(api.gce.remove_fault(id));
    assert!(!api.gce.remove_fault(id));
}

#[tokio::test]
async fn injected_errors_have_the_real_shape_and_delays_hold_the_answer() {
    let api = Api::start().await;
    api.gce
        .add_fault(FaultRule::new(
            "GET",
            "urlMaps/slow$",
            FaultAction::Error {
                status: 429,
                reason: "rateLimitExceeded".into(),
                message: "Slow down".into(),
            },
        ))
        .expect("rule");
    let r = api.get("global/urlMaps/slow").await;
    r.assert_error(429, "rateLimitExceeded");
    assert_eq!(r.message(), "Slow down");
    api.gce.clear_faults();
    api.gce
        .add_fault(FaultRule::new(
            "GET",
            "urlMaps/slow$",
            FaultAction::Delay { ms: 150 },
        ))
        .expect("rule");
    let started = std::time::Instant::now();
    api.get("global/urlMaps/slow").await.assert_error(404, "notFound");
    assert!(
        started.elapsed().as_millis() >= 150,
        "a delay never answers early"
    );
}

#[tokio::test]
async fn probabilistic_faults_are_reproducible_with_a_seed() {
    async fn run() -> Vec<u16> {
        let api = Api::start().await;
        let mut rule = FaultRule::new("GET", "", error_503()).probability(0.5);
        rule.seed = Some(7);
        api.gce.add_fault(rule).expect("rule");
        let mut out = Vec::new();
        for _ in 0..32 {
            out.push(api.get("global/urlMaps").await.status);
        }
        out
    }
    let a = run().await;
    assert_eq!(a, run().await);
    assert!(a.contains(&503) && a.contains(&200), "{a:?}");
}

#[tokio::test]
async fn faults_through_the_admin_api() {
    let api = Api::start().await;
    let added = api
        .post(
            "/_fake/faults",
            json!({"method": "DELETE", "path": "healthChecks", "times": 1,
                   "action": {"type": "error", "status": 500, "reason": "internalError"}}),
        )
        .await
        .ok();
    let id = added["id"].as_u64().expect("id");
    api.create("global/healthChecks", json!({"name": "hc", "type": "TCP"}))
        .await;
    api.delete("global/healthChecks/hc")
        .await
        .assert_error(500, "internalError");
    let list = api.get("/_fake/faults").await.ok();
    assert_eq!(list[0]["fired"], 1);
    assert_eq!(list[0]["rule"]["action"]["type"], "error");
    assert_eq!(api.delete(&format!("/_fake/faults/{id}")).await.status, 200);
    assert_eq!(api.delete(&format!("/_fake/faults/{id}")).await.status, 404);
    // Operation faults over the admin API.
    api.post("/_fake/faults", json!({"path": "healthChecks/hc$", "action": {"type": "failOperation", "code": "RESOURCE_NOT_READY", "status": 400}}))
        .await
        .ok();
    let failed = api.failed(Method::DELETE, "global/healthChecks/hc", None).await;
    assert_eq!(failed["error"]["errors"][0]["code"], "RESOURCE_NOT_READY");
    api.get("global/healthChecks/hc").await.ok();
    assert_eq!(api.delete("/_fake/faults").await.status, 200);
    assert_eq!(api.get("/_fake/faults").await.ok(), json!([]));
    // Bad rules are refused.
    assert_eq!(
        api.post(
            "/_fake/faults",
            json!({"path": "(", "action": {"type": "neverFinish"}})
        )
        .await
        .status,
        400
    );
    assert_eq!(
        api.post("/_fake/faults", json!({"action": {"type": "explode"}}))
            .await
            .status,
        400
    );
    assert_eq!(
        api.post(
            "/_fake/faults",
            json!({"probability": 3, "action": {"type": "neverFinish"}})
        )
        .await
        .status,
        400
    );
}

#[tokio::test]
async fn quotas_refuse_inserts_beyond_the_limit() {
    let api = Api::start().await;
    api.gce.set_quota("backendServices", Some(2));
    api.create("global/backendServices", json!({"name": "a"})).await;
    api.create("global/backendServices", json!({"name": "b"})).await;
    // Compute accepts the insert and fails its operation: QUOTA_EXCEEDED, 403.
    let done = api
        .failed(Method::POST, "global/backendServices", Some(json!({"name": "c"})))
        .await;
    assert_eq!(done["error"]["errors"][0]["code"], "QUOTA_EXCEEDED");
    assert_eq!(
        done["error"]["errors"][0]["message"],
        "Quota 'BACKEND_SERVICES' exceeded.  Limit: 2.0 globally."
    );
    assert_eq!(done["httpErrorStatusCode"], 403);
    // Other collections are unaffected; deleting frees quota.
    api.create("global/healthChecks", json!({"name": "a", "type": "TCP"}))
        .await;
    api.done(Method::DELETE, "global/backendServices/a", None).await;
    api.create("global/backendServices", json!({"name": "c"})).await;
    // Through the admin API.
    let q = api
        .put("/_fake/quotas/globalForwardingRules", json!({"limit": 0}))
        .await
        .ok();
    assert_eq!(q["globalForwardingRules"], 0);
    api.create(
        "global/urlMaps",
        json!({"name": "um", "defaultService": "global/backendServices/b"}),
    )
    .await;
    api.create(
        "global/targetHttpProxies",
        json!({"name": "tp", "urlMap": "global/urlMaps/um"}),
    )
    .await;
    let done = api
        .failed(
            Method::POST,
            "global/forwardingRules",
            Some(json!({"name": "fr", "target": "global/targetHttpProxies/tp"})),
        )
        .await;
    assert_eq!(done["error"]["errors"][0]["code"], "QUOTA_EXCEEDED");
    api.delete("/_fake/quotas/globalForwardingRules").await.ok();
    api.create(
        "global/forwardingRules",
        json!({"name": "fr", "target": "global/targetHttpProxies/tp"}),
    )
    .await;
    assert_eq!(api.get("/_fake/quotas").await.ok(), json!({"backendServices": 2}));
}

#[tokio::test]
async fn rate_limit_refuses_with_403_when_the_bucket_is_empty() {
    let api = Api::start().await;
    api.gce.set_rate_limit(Some(RateLimit::new(0.0, 3)));
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(api.get("global/urlMaps").await.status);
    }
    assert_eq!(&statuses[..3], [200, 200, 200]);
    let r = api.get("global/urlMaps").await;
    r.assert_error(403, "rateLimitExceeded");
    let s = api.gce.stats();
    assert_eq!(s.rejected.rate_limited, 2);
    assert_eq!(s.total.lists, 3);
    // Limit mutations only, answering 429, via the admin API.
    let set = api
        .put(
            "/_fake/rate-limit",
            json!({"qps": 0, "burst": 1, "categories": ["mutations"], "status": 429}),
        )
        .await
        .ok();
    assert_eq!(set["burst"], 1);
    api.get("global/urlMaps").await.ok();
    api.post("global/healthChecks", json!({"name": "a", "type": "TCP"}))
        .await
        .ok();
    api.post("global/healthChecks", json!({"name": "b", "type": "TCP"}))
        .await
        .assert_error(429, "rateLimitExceeded");
    api.delete("/_fake/rate-limit").await.ok();
    assert_eq!(api.get("/_fake/rate-limit").await.ok(), Value::Null);
    api.post("global/healthChecks", json!({"name": "b", "type": "TCP"}))
        .await
        .ok();
    assert_eq!(
        api.put("/_fake/rate-limit", json!({"qps": -1, "burst": 1}))
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn counters_count_each_call_once_in_its_category() {
    let api = Api::start().await;
    api.gce.seed_instance(ZONE, "node-0").expect("seed");
    let ig = format!("zones/{ZONE}/instanceGroups/ig");
    let op = api
        .post("global/healthChecks", json!({"name": "hc", "type": "TCP"}))
        .await
        .ok(); // mutation
    api.get(op["selfLink"].as_str().unwrap_or_default()).await.ok(); // poll
    api.post(
        &format!("{}/wait", op["selfLink"].as_str().unwrap_or_default()),
        json!({}),
    )
    .await
    .ok(); // poll
    api.post("global/healthChecks", json!({"name": "hc", "type": "TCP"}))
        .await
        .assert_error(409, "alreadyExists"); // mutation
    api.get("global/healthChecks/hc").await.ok(); // read
    api.get("global/healthChecks/nope")
        .await
        .assert_error(404, "notFound"); // read
    api.get("global/healthChecks").await.ok(); // list
    api.post(&format!("zones/{ZONE}/instanceGroups"), json!({"name": "ig"}))
        .await
        .ok(); // mutation
    api.post(&format!("{ig}/listInstances"), json!({})).await.ok(); // list
    api.post(
        "global/backendServices",
        json!({"name": "b", "healthChecks": ["global/healthChecks/hc"], "backends": [{"group": link(&ig)}]}),
    )
    .await
    .ok(); // mutation
    api.post("global/backendServices/b/getHealth", json!({"group": link(&ig)}))
        .await
        .ok(); // read
    api.get("global/operations").await.ok(); // list
    api.get(&format!("zones/{ZONE}")).await.ok(); // read
    api.get("global/nope").await; // unknown route
    api.get("/computeMetadata/v1/project/project-id").await; // metadata (header missing, still counted)
    api.get("/_fake/state").await.ok(); // admin: not counted
    assert_eq!(api.get("/_fake/nope").await.status, 404); // not a Compute path: not counted

    let s = api.stats().await;
    let k = |kind: &str| s["byKind"][kind].clone();
    assert_eq!(
        k("healthChecks"),
        json!({"reads": 2, "lists": 1, "mutations": 2, "operationPolls": 0, "total": 5})
    );
    assert_eq!(
        k("globalOperations"),
        json!({"reads": 0, "lists": 1, "mutations": 0, "operationPolls": 2, "total": 3})
    );
    assert_eq!(
        k("instanceGroups"),
        json!({"reads": 0, "lists": 1, "mutations": 1, "operationPolls": 0, "total": 2})
    );
    assert_eq!(
        k("backendServices"),
        json!({"reads": 1, "lists": 0, "mutations": 1, "operationPolls": 0, "total": 2})
    );
    assert_eq!(
        k("zones"),
        json!({"reads": 1, "lists": 0, "mutations": 0, "operationPolls": 0, "total": 1})
    );
    assert_eq!(
        s["total"],
        json!({"reads": 4, "lists": 3, "mutations": 4, "operationPolls": 2, "total": 13})
    );
    assert_eq!(s["rejected"]["unknownRoute"], 1);
    assert_eq!(s["rejected"]["total"], 1);
    assert_eq!(
        s["operations"],
        json!({"created": 3, "succeeded": 3, "failed": 0})
    );
    assert_eq!(s["metadata"], 1);
    // Reset, over HTTP and in Rust.
    assert_eq!(api.delete("/_fake/stats").await.status, 200);
    assert_eq!(api.gce.stats(), fake_gce::Stats::default());
    api.get("global/healthChecks").await.ok();
    assert_eq!(api.gce.stats().total.lists, 1);
    api.gce.reset_stats();
    assert_eq!(api.gce.stats().total.total, 0);
}

#[tokio::test]
async fn a_required_token_is_checked() {
    let api = Api::with(Config {
        require_token: Some("s3cret".into()),
        ..config()
    })
    .await;
    let r = api.get("global/urlMaps").await;
    r.assert_error(401, "required");
    let wrong = api
        .send(api.client.get(api.url("global/urlMaps")).bearer_auth("nope"))
        .await;
    wrong.assert_error(401, "authError");
    let ok = api
        .send(api.client.get(api.url("global/urlMaps")).bearer_auth("s3cret"))
        .await;
    assert_eq!(ok.status, 200);
    assert_eq!(api.gce.stats().rejected.unauthenticated, 2);
    // The admin API and the metadata server need no token; the metadata server hands it out.
    let token = api
        .send(
            api.client
                .get(api.url("/computeMetadata/v1/instance/service-accounts/default/token"))
                .header("Metadata-Flavor", "Google"),
        )
        .await
        .ok();
    assert_eq!(token["access_token"], "s3cret");
}

#[tokio::test]
async fn state_dump_instances_and_reset() {
    let cfg = Config {
        instances: vec![InstanceSeed {
            ip: Some("10.0.0.9".into()),
            ..InstanceSeed::new("zone-x-a", "seeded")
        }],
        ..config()
    };
    let api = Api::with(cfg).await;
    // Seeding a zone that did not exist creates it.
    let inst = api.get("zones/zone-x-a/instances/seeded").await.ok();
    assert_eq!(inst["networkInterfaces"][0]["networkIP"], "10.0.0.9");
    let added = api
        .post(
            "/_fake/instances",
            json!({"zone": ZONE, "name": "n1", "tags": ["gke-node"]}),
        )
        .await
        .ok();
    assert_eq!(added["selfLink"], link(&format!("zones/{ZONE}/instances/n1")));
    assert_eq!(
        api.post("/_fake/instances", json!({"zone": ZONE, "name": "Bad"}))
            .await
            .status,
        400
    );
    assert_eq!(
        api.get(&format!("zones/{ZONE}/instances/n1")).await.ok()["tags"]["items"],
        json!(["gke-node"])
    );
    api.create(&format!("zones/{ZONE}/instanceGroups"), json!({"name": "ig"}))
        .await;
    api.done(
        Method::POST,
        &format!("zones/{ZONE}/instanceGroups/ig/addInstances"),
        Some(json!({"instances": [{"instance": link(&format!("zones/{ZONE}/instances/n1"))}]})),
    )
    .await;
    let state = api.get("/_fake/state").await.ok();
    let igp = format!("projects/p/zones/{ZONE}/instanceGroups/ig");
    assert_eq!(state["resources"][&igp]["size"], 1);
    assert_eq!(
        state["members"][&igp],
        json!([link(&format!("zones/{ZONE}/instances/n1"))])
    );
    assert_eq!(state["operations"].as_object().map(|o| o.len()), Some(2));
    assert_eq!(
        api.gce.resource(&igp).map(|r| r["name"].clone()),
        Some(json!("ig"))
    );
    // Removing an instance over the admin API.
    assert_eq!(
        api.delete(&format!("/_fake/instances/{ZONE}/n1?project=p"))
            .await
            .status,
        200
    );
    assert_eq!(
        api.delete(&format!("/_fake/instances/{ZONE}/n1?project=p"))
            .await
            .status,
        404
    );
    // Latency over the admin API.
    let l = api
        .put(
            "/_fake/latency",
            json!({"defaultMs": 5, "perOperation": {"urlMaps.insert": 7}}),
        )
        .await
        .ok();
    assert_eq!(l["perOperation"]["urlMaps.insert"], 7);
    assert_eq!(api.gce.latency().default_ms, 5);
    // Reset: back to the start configuration.
    assert_eq!(api.post("/_fake/reset", json!({})).await.status, 200);
    let state = api.gce.state();
    let names: Vec<&String> = state["resources"]
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    assert_eq!(names, ["projects/p/zones/zone-x-a/instances/seeded"]);
    assert_eq!(api.gce.latency().default_ms, 0);
    assert_eq!(api.gce.stats().total.total, 0);
}
