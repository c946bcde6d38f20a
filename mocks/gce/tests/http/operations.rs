//! Operations: RUNNING then DONE, get and wait, latency, name reservation, failures delivered
//! through the operation, idempotent requestId, listing and deleting operations.

use std::time::Duration;

use fake_gce::{FaultAction, FaultRule, Latency};
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Api, ZONE, config, link, seed_nodes};

fn millis(ts: &Value) -> i64 {
    ts.as_str()
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
        .map(|t| t.as_millisecond())
        .unwrap_or(i64::MIN)
}

#[tokio::test]
async fn a_mutation_returns_a_running_operation_that_becomes_done() {
    let api = Api::start().await;
    let op = api
        .post("global/healthChecks", json!({"name": "hc", "type": "TCP"}))
        .await
        .ok();
    assert_eq!(op["kind"], "compute#operation");
    assert_eq!(op["status"], "RUNNING");
    assert_eq!(op["progress"], 0);
    assert_eq!(op["operationType"], "insert");
    assert_eq!(op["targetLink"], link("global/healthChecks/hc"));
    assert!(op["name"].as_str().is_some_and(|n| n.starts_with("operation-")));
    assert!(
        op["id"]
            .as_str()
            .is_some_and(|s| s.bytes().all(|b| b.is_ascii_digit()))
    );
    assert!(
        op.get("zone").is_none() && op.get("region").is_none(),
        "global operations have no scope"
    );
    assert!(op.get("endTime").is_none());
    let link_ = op["selfLink"].as_str().unwrap_or_default();
    assert_eq!(
        link_,
        link(&format!(
            "global/operations/{}",
            op["name"].as_str().unwrap_or_default()
        ))
    );
    // With no latency the operation is already DONE when polled.
    let got = api.get(link_).await.ok();
    assert_eq!(got["status"], "DONE");
    assert_eq!(got["progress"], 100);
    assert!(got["endTime"].is_string());
    assert!(got.get("error").is_none());
    let hc = api.get("global/healthChecks/hc").await.ok();
    assert_eq!(got["targetId"], hc["id"], "targetId is the new resource's id");
    // wait on a DONE operation answers at once.
    assert_eq!(
        api.post(&format!("{link_}/wait"), json!({})).await.ok()["status"],
        "DONE"
    );
    // Wrong scope or unknown name: 404.
    let name = op["name"].as_str().unwrap_or_default();
    api.get(&format!("zones/{ZONE}/operations/{name}"))
        .await
        .assert_error(404, "notFound");
    api.get("global/operations/operation-nope")
        .await
        .assert_error(404, "notFound");
}

#[tokio::test]
async fn latency_delays_the_effect_and_reserves_the_name() {
    let api = Api::start().await;
    api.gce
        .set_latency(Latency::default().with("healthChecks.insert", Duration::from_millis(300)));
    let op = api
        .post("global/healthChecks", json!({"name": "hc", "type": "TCP"}))
        .await
        .ok();
    // Until DONE the resource does not exist, but its name is taken.
    api.get("global/healthChecks/hc")
        .await
        .assert_error(404, "notFound");
    api.post("global/healthChecks", json!({"name": "hc", "type": "TCP"}))
        .await
        .assert_error(409, "alreadyExists");
    // A reference to it is "not ready", and so is deleting it.
    api.post(
        "global/backendServices",
        json!({"name": "b", "healthChecks": ["global/healthChecks/hc"]}),
    )
    .await
    .assert_error(400, "resourceNotReady");
    api.delete("global/healthChecks/hc")
        .await
        .assert_error(400, "resourceNotReady");
    let polled = api.get(op["selfLink"].as_str().unwrap_or_default()).await.ok();
    assert_eq!(polled["status"], "RUNNING");
    let done = api.wait(&op).await;
    assert!(
        millis(&done["endTime"]) - millis(&done["insertTime"]) >= 300,
        "DONE no earlier than the latency: {done:#}"
    );
    api.get("global/healthChecks/hc").await.ok();
    // Other operations keep the default latency (0).
    let op = api.delete("global/healthChecks/hc").await.ok();
    assert_eq!(
        api.get(op["selfLink"].as_str().unwrap_or_default()).await.ok()["status"],
        "DONE"
    );
}

#[tokio::test]
async fn concurrent_operations_finish_independently() {
    let api = Api::start().await;
    api.gce.set_latency(Latency::uniform(Duration::from_millis(200)));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let req = api
            .client
            .post(api.url("global/healthChecks"))
            .json(&json!({"name": format!("hc{i}"), "type": "TCP"}));
        tasks.spawn(async move { req.send().await.ok()?.json::<Value>().await.ok() });
    }
    let ops: Vec<Value> = tasks.join_all().await.into_iter().flatten().collect();
    assert_eq!(ops.len(), 8);
    for op in &ops {
        assert_eq!(op["status"], "RUNNING");
        let done = api.wait(op).await;
        assert!(
            millis(&done["endTime"]) - millis(&done["insertTime"]) >= 200,
            "{done:#}"
        );
    }
    assert_eq!(
        api.get("global/healthChecks").await.ok()["items"]
            .as_array()
            .map(Vec::len),
        Some(8)
    );
    assert_eq!(api.stats().await["operations"]["succeeded"], 8);
}

#[tokio::test]
async fn wait_is_capped_and_never_finishing_operations_stay_running() {
    let mut cfg = config();
    cfg.operation_wait_cap = Duration::from_millis(200);
    let api = Api::with(cfg).await;
    api.gce
        .add_fault(FaultRule::new("POST", "/global/healthChecks$", FaultAction::NeverFinish).times(1))
        .expect("rule");
    let op = api
        .post("global/healthChecks", json!({"name": "stuck", "type": "TCP"}))
        .await
        .ok();
    let waited = api
        .post(
            &format!("{}/wait", op["selfLink"].as_str().unwrap_or_default()),
            json!({}),
        )
        .await
        .ok();
    assert_eq!(
        waited["status"], "RUNNING",
        "wait returns the running operation at the cap"
    );
    api.get("global/healthChecks/stuck")
        .await
        .assert_error(404, "notFound");
    api.post("global/healthChecks", json!({"name": "stuck", "type": "TCP"}))
        .await
        .assert_error(409, "alreadyExists");
    assert_eq!(api.gce.state()["pendingOperations"], 1);
    // A running operation cannot be deleted; a DONE one can.
    let op_path = op["selfLink"].as_str().unwrap_or_default().to_string();
    api.delete(&op_path).await.assert_error(400, "invalid");
    let ok = api
        .done(
            Method::POST,
            "global/healthChecks",
            Some(json!({"name": "other", "type": "TCP"})),
        )
        .await;
    let r = api.delete(ok["selfLink"].as_str().unwrap_or_default()).await;
    assert_eq!(r.status, 204);
    api.get(ok["selfLink"].as_str().unwrap_or_default())
        .await
        .assert_error(404, "notFound");
}

#[tokio::test]
async fn failed_operations_carry_the_async_error_shape() {
    let api = Api::start().await;
    api.gce
        .add_fault(
            FaultRule::new(
                "POST",
                "/global/urlMaps$",
                FaultAction::FailOperation {
                    status: 412,
                    code: "CONDITION_NOT_MET".into(),
                    message: "Injected.".into(),
                },
            )
            .times(1),
        )
        .expect("rule");
    api.create("global/backendServices", json!({"name": "b"})).await;
    let body = json!({"name": "um", "defaultService": "global/backendServices/b"});
    let op = api.post("global/urlMaps", body.clone()).await.ok();
    assert_eq!(op["status"], "RUNNING", "accepted synchronously");
    let done = api.wait(&op).await;
    assert_eq!(done["status"], "DONE");
    assert_eq!(done["httpErrorStatusCode"], 412);
    assert_eq!(done["httpErrorMessage"], "PRECONDITION FAILED");
    assert_eq!(done["error"]["errors"][0]["code"], "CONDITION_NOT_MET");
    assert_eq!(done["error"]["errors"][0]["message"], "Injected.");
    // Not applied, and the name is free again.
    api.get("global/urlMaps/um").await.assert_error(404, "notFound");
    api.create("global/urlMaps", body).await;
    let s = api.stats().await;
    assert_eq!(s["operations"]["failed"], 1);
    assert_eq!(
        s["rejected"]["injected"], 0,
        "operation faults are not rejections"
    );
}

#[tokio::test]
async fn checks_run_again_when_the_operation_completes() {
    let api = Api::start().await;
    api.create("global/healthChecks", json!({"name": "hc", "type": "TCP"}))
        .await;
    // The health check is deleted slowly; meanwhile a backend service starts using it.
    api.gce
        .set_latency(Latency::default().with("healthChecks.delete", Duration::from_millis(300)));
    let del = api.delete("global/healthChecks/hc").await.ok();
    api.create(
        "global/backendServices",
        json!({"name": "b", "healthChecks": ["global/healthChecks/hc"]}),
    )
    .await;
    let done = api.wait(&del).await;
    assert_eq!(done["httpErrorStatusCode"], 400);
    assert_eq!(done["httpErrorMessage"], "BAD REQUEST");
    assert_eq!(
        done["error"]["errors"][0]["code"],
        "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE"
    );
    assert!(
        done["error"]["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("is already being used by 'projects/p/global/backendServices/b'")),
        "{done:#}"
    );
    api.get("global/healthChecks/hc").await.ok();

    // And the other way round: a slow insert whose reference disappears fails as not found.
    api.gce
        .set_latency(Latency::default().with("backendServices.insert", Duration::from_millis(300)));
    api.create("global/healthChecks", json!({"name": "hc2", "type": "TCP"}))
        .await;
    let ins = api
        .post(
            "global/backendServices",
            json!({"name": "b2", "healthChecks": ["global/healthChecks/hc2"]}),
        )
        .await
        .ok();
    api.done(Method::DELETE, "global/healthChecks/hc2", None).await;
    let done = api.wait(&ins).await;
    assert_eq!(done["httpErrorStatusCode"], 404);
    assert_eq!(done["error"]["errors"][0]["code"], "RESOURCE_NOT_FOUND");
    api.get("global/backendServices/b2")
        .await
        .assert_error(404, "notFound");

    // Two updates with the same fingerprint: the second fails at completion.
    api.gce
        .set_latency(Latency::default().with("backendServices.patch", Duration::from_millis(200)));
    let b = api.get("global/backendServices/b").await.ok();
    let p1 = api
        .patch(
            "global/backendServices/b",
            json!({"timeoutSec": 40, "fingerprint": b["fingerprint"]}),
        )
        .await
        .ok();
    let p2 = api
        .patch(
            "global/backendServices/b",
            json!({"timeoutSec": 50, "fingerprint": b["fingerprint"]}),
        )
        .await
        .ok();
    assert!(api.wait(&p1).await.get("error").is_none());
    let second = api.wait(&p2).await;
    assert_eq!(second["httpErrorStatusCode"], 412);
    assert_eq!(second["error"]["errors"][0]["code"], "CONDITION_NOT_MET");
    assert_eq!(api.get("global/backendServices/b").await.ok()["timeoutSec"], 40);
}

#[tokio::test]
async fn request_id_makes_a_mutation_idempotent() {
    let api = Api::start().await;
    let url = api.url("global/healthChecks?requestId=5f8c7e0a-1b2c-4d3e-8f90-123456789abc");
    let body = json!({"name": "hc", "type": "TCP"});
    let first = api.send(api.client.post(&url).json(&body)).await.ok();
    let again = api.send(api.client.post(&url).json(&body)).await.ok();
    assert_eq!(first["name"], again["name"]);
    assert_eq!(
        again["status"], "DONE",
        "the replay shows the operation as it is now"
    );
    assert_eq!(first["clientOperationId"], "5f8c7e0a-1b2c-4d3e-8f90-123456789abc");
    let s = api.stats().await;
    assert_eq!(s["byKind"]["healthChecks"]["mutations"], 2);
    assert_eq!(s["operations"]["created"], 1);
}

#[tokio::test]
async fn operations_are_listed_per_scope() {
    let api = Api::start().await;
    seed_nodes(&api, 1);
    api.create("global/healthChecks", json!({"name": "a", "type": "TCP"}))
        .await;
    api.create("global/healthChecks", json!({"name": "b", "type": "TCP"}))
        .await;
    api.create(&format!("zones/{ZONE}/instanceGroups"), json!({"name": "ig"}))
        .await;
    let global = api.get("global/operations").await.ok();
    assert_eq!(global["kind"], "compute#operationList");
    assert_eq!(global["items"].as_array().map(Vec::len), Some(2));
    let zonal = api.get(&format!("zones/{ZONE}/operations")).await.ok();
    assert_eq!(zonal["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(zonal["items"][0]["zone"], link(&format!("zones/{ZONE}")));
    let filtered = api
        .get("global/operations?filter=targetLink%20eq%20.*/a")
        .await
        .ok();
    assert_eq!(filtered["items"].as_array().map(Vec::len), Some(1));
    let regional = api.get("regions/us-central1/operations").await.ok();
    assert!(regional.get("items").is_none());
}
