//! The journal: requests and applied changes in order, through HTTP and the Rust API.

use std::time::{Duration, SystemTime};

use fake_gce::{
    AppliedEntry, AppliedStatus, Category, Config, FaultAction, FaultRule, Journal, JournalEntry,
    JournalEvent, Latency, RateLimit, RejectReason, RequestEntry, ResourceChange,
};
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Api, ZONE, config, link, seed_nodes};

fn requests(j: &Journal) -> Vec<(&JournalEntry, &RequestEntry)> {
    j.entries
        .iter()
        .filter_map(|e| match &e.event {
            JournalEvent::Request(r) => Some((e, r)),
            JournalEvent::Applied(_) => None,
        })
        .collect()
}

fn applied(j: &Journal) -> Vec<(&JournalEntry, &AppliedEntry)> {
    j.entries
        .iter()
        .filter_map(|e| match &e.event {
            JournalEvent::Applied(a) => Some((e, a)),
            JournalEvent::Request(_) => None,
        })
        .collect()
}

/// The request entry for `method path` (the only one).
#[track_caller]
fn request<'a>(j: &'a Journal, method: &str, path: &str) -> (&'a JournalEntry, &'a RequestEntry) {
    let found: Vec<_> = requests(j)
        .into_iter()
        .filter(|(_, r)| r.method == method && r.path == path)
        .collect();
    assert_eq!(found.len(), 1, "{method} {path} in {j:#?}");
    found[0]
}

const HC: &str = "/compute/v1/projects/p/global/healthChecks";

#[tokio::test]
async fn requests_carry_their_user_agent_request_id_category_and_status() {
    let api = Api::start().await;
    let client = |ua: &str| reqwest::Client::builder().user_agent(ua).build().expect("client");
    let (a, b) = (client("replica-a/1.0"), client("replica-b/1.0"));
    let hc = json!({"name": "hc", "type": "TCP"});
    let r = api
        .send(
            a.post(api.url("global/healthChecks?requestId=r-1&alt=json"))
                .json(&hc),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = api.send(b.get(api.url("global/healthChecks/hc"))).await;
    assert_eq!(r.status, 200);
    api.get("global/healthChecks/missing")
        .await
        .assert_error(404, "notFound");

    let j = api.gce.journal();
    assert_eq!(j.dropped, 0);
    let (_, insert) = request(&j, "POST", HC);
    assert_eq!(insert.user_agent.as_deref(), Some("replica-a/1.0"));
    assert_eq!(insert.request_id.as_deref(), Some("r-1"));
    assert_eq!(insert.category, Some(Category::Mutations));
    assert!(insert.is_mutation());
    assert_eq!((insert.rejected, insert.status), (None, Some(200)));
    let (_, get) = request(&j, "GET", &format!("{HC}/hc"));
    assert_eq!(get.user_agent.as_deref(), Some("replica-b/1.0"));
    assert_eq!(
        (get.category, get.request_id.as_deref()),
        (Some(Category::Reads), None)
    );
    let (_, missing) = request(&j, "GET", &format!("{HC}/missing"));
    assert_eq!(missing.user_agent, None, "no User-Agent header");
    assert_eq!(missing.status, Some(404));
    assert_eq!(missing.rejected, None, "an API error is not a rejection");
    // "Replica B sent no mutating request", from the journal alone.
    assert!(
        !requests(&j)
            .iter()
            .any(|(_, r)| r.is_mutation() && r.user_agent.as_deref() == Some("replica-b/1.0"))
    );
    let seqs: Vec<u64> = j.entries.iter().map(|e| e.seq).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    assert_eq!(j.next_seq, seqs.last().copied().unwrap_or(0) + 1);
}

#[tokio::test]
async fn an_operation_is_applied_after_its_request_and_says_what_changed() {
    let api = Api::start().await;
    let nodes = seed_nodes(&api, 1);
    api.create("global/healthChecks", json!({"name": "hc", "type": "TCP"}))
        .await;
    api.done(
        Method::PATCH,
        "global/healthChecks/hc",
        Some(json!({"checkIntervalSec": 10})),
    )
    .await;
    let ig = format!("zones/{ZONE}/instanceGroups/ig");
    api.create(&format!("zones/{ZONE}/instanceGroups"), json!({"name": "ig"}))
        .await;
    api.done(
        Method::POST,
        &format!("{ig}/addInstances"),
        Some(json!({"instances": [{"instance": nodes[0]}]})),
    )
    .await;
    api.done(Method::DELETE, "global/healthChecks/hc", None).await;

    let j = api.gce.journal();
    let changes: Vec<(&str, &str, AppliedStatus, ResourceChange)> = applied(&j)
        .iter()
        .map(|(_, a)| {
            (
                a.operation_type.as_str(),
                a.target_link.as_str(),
                a.status,
                a.change,
            )
        })
        .collect();
    let (hc, igl) = (link("global/healthChecks/hc"), link(&ig));
    use AppliedStatus::Done;
    assert_eq!(
        changes,
        [
            ("insert", hc.as_str(), Done, ResourceChange::Created),
            ("patch", hc.as_str(), Done, ResourceChange::Updated),
            ("insert", igl.as_str(), Done, ResourceChange::Created),
            (
                "compute.instanceGroups.addInstances",
                igl.as_str(),
                Done,
                ResourceChange::Updated
            ),
            ("delete", hc.as_str(), Done, ResourceChange::Deleted),
        ]
    );
    // Each change comes after the request that asked for it, and before its answer.
    let (insert_req, insert) = request(&j, "POST", HC);
    let (insert_applied, a) = applied(&j)[0];
    assert!(insert_req.seq < insert_applied.seq);
    assert_eq!(a.error_code, None);
    assert!(insert.answered_elapsed_micros >= Some(insert_applied.elapsed_micros));
    let op = api.gce.state()["operations"]
        .as_object()
        .expect("operations")
        .values()
        .find(|o| o["targetLink"] == hc.as_str() && o["operationType"] == "insert")
        .cloned()
        .expect("insert operation");
    assert_eq!(op["name"].as_str(), Some(a.operation.as_str()));
}

#[tokio::test]
async fn with_latency_the_change_is_applied_later_than_the_request_arrived() {
    let api = Api::with(Config {
        latency: Latency::uniform(Duration::from_millis(150)),
        ..config()
    })
    .await;
    let before = SystemTime::now();
    let op = api
        .post("global/healthChecks", json!({"name": "hc", "type": "TCP"}))
        .await
        .ok();
    let j = api.gce.journal();
    assert!(applied(&j).is_empty(), "still running: {j:#?}");
    let (req, r) = request(&j, "POST", HC);
    assert_eq!(r.status, Some(200));
    api.wait(&op).await;
    let after = SystemTime::now();

    let j = api.gce.journal();
    let (done, a) = applied(&j)[0];
    assert_eq!(
        (a.status, a.change),
        (AppliedStatus::Done, ResourceChange::Created)
    );
    assert!(req.seq < done.seq);
    assert!(before <= req.at && req.at < done.at && done.at <= after);
    let gap = done.at.duration_since(req.at).expect("later");
    assert!(gap >= Duration::from_millis(150), "{gap:?}");
    assert!(done.elapsed_micros >= req.elapsed_micros + 150_000);
    assert!(r.answered_elapsed_micros.expect("answered") < done.elapsed_micros);
    // The wait that saw it DONE was answered after the change.
    let waits: Vec<_> = requests(&j)
        .into_iter()
        .filter(|(_, r)| r.category == Some(Category::OperationPolls))
        .collect();
    let (_, last) = waits.last().expect("a wait");
    assert!(last.answered_elapsed_micros.expect("answered") >= done.elapsed_micros);
}

#[tokio::test]
async fn a_failed_operation_changes_nothing_and_says_why() {
    let api = Api::start().await;
    api.gce
        .add_fault(FaultRule::new(
            "POST",
            "/global/healthChecks$",
            FaultAction::FailOperation {
                status: 503,
                code: "SERVICE_UNAVAILABLE".into(),
                message: "try again".into(),
            },
        ))
        .expect("rule");
    api.failed(
        Method::POST,
        "global/healthChecks",
        Some(json!({"name": "hc", "type": "TCP"})),
    )
    .await;
    // A failure found at completion (the health check is gone by then) has the API's code.
    api.gce.clear_faults();
    api.gce.set_latency(Latency::uniform(Duration::from_millis(100)));
    api.create("global/healthChecks", json!({"name": "hc", "type": "TCP"}))
        .await;
    let bs = api
        .post(
            "global/backendServices",
            json!({"name": "b", "healthChecks": ["global/healthChecks/hc"]}),
        )
        .await
        .ok();
    api.gce.set_latency(Latency::default());
    api.done(Method::DELETE, "global/healthChecks/hc", None).await;
    api.wait(&bs).await;

    let j = api.gce.journal();
    let a = applied(&j);
    let outcome = |i: usize| (a[i].1.status, a[i].1.error_code.as_deref(), a[i].1.change);
    assert_eq!(
        outcome(0),
        (
            AppliedStatus::Failed,
            Some("SERVICE_UNAVAILABLE"),
            ResourceChange::None
        )
    );
    assert_eq!(outcome(1).2, ResourceChange::Created);
    assert_eq!(
        outcome(2).2,
        ResourceChange::Deleted,
        "health check deleted first"
    );
    assert_eq!(a[3].1.target_link, link("global/backendServices/b"));
    assert_eq!(
        outcome(3),
        (
            AppliedStatus::Failed,
            Some("RESOURCE_NOT_FOUND"),
            ResourceChange::None
        )
    );
}

/// Method, category, rejection and status of a request entry.
type Seen<'a> = (&'a str, Option<Category>, Option<RejectReason>, Option<u16>);

#[tokio::test]
async fn synchronous_errors_and_rejections_have_a_request_and_no_applied_entry() {
    let api = Api::with(Config {
        require_token: Some("t".into()),
        ..config()
    })
    .await;
    let auth = |m: Method, path: &str| api.client.request(m, api.url(path)).bearer_auth("t");
    api.gce
        .add_fault(FaultRule::new(
            "POST",
            "/global/healthChecks$",
            FaultAction::Error {
                status: 503,
                reason: "backendError".into(),
                message: "Backend Error".into(),
            },
        ))
        .expect("rule");
    let hc = json!({"name": "hc", "type": "TCP"});
    let injected = api
        .send(auth(Method::POST, "global/healthChecks").json(&hc))
        .await;
    assert_eq!(injected.status, 503);
    let invalid = api
        .send(auth(Method::DELETE, "global/healthChecks/missing"))
        .await;
    assert_eq!(invalid.status, 404);
    assert_eq!(api.get("global/healthChecks").await.status, 401);
    let unknown = api.send(auth(Method::GET, "global/nothingHere")).await;
    assert_eq!(unknown.status, 404);
    api.gce.set_rate_limit(Some(RateLimit::new(0.0, 0)));
    assert_eq!(
        api.send(auth(Method::GET, "global/healthChecks")).await.status,
        403
    );

    let j = api.gce.journal();
    assert!(applied(&j).is_empty(), "{j:#?}");
    let seen: Vec<Seen> = requests(&j)
        .iter()
        .map(|(_, r)| (r.method.as_str(), r.category, r.rejected, r.status))
        .collect();
    use Category::{Lists, Mutations};
    assert_eq!(
        seen,
        [
            ("POST", Some(Mutations), Some(RejectReason::Injected), Some(503)),
            ("DELETE", Some(Mutations), None, Some(404)),
            ("GET", Some(Lists), Some(RejectReason::Unauthenticated), Some(401)),
            ("GET", None, Some(RejectReason::UnknownRoute), Some(404)),
            ("GET", Some(Lists), Some(RejectReason::RateLimited), Some(403)),
        ]
    );
    let s = api.gce.stats();
    assert_eq!((s.rejected.total, s.total.total), (4, 1));
}

#[tokio::test]
async fn a_held_request_is_recorded_on_arrival_and_answered_later() {
    let api = Api::start().await;
    api.gce
        .add_fault(FaultRule::new(
            "POST",
            "/global/healthChecks$",
            FaultAction::Delay { ms: 300 },
        ))
        .expect("rule");
    let url = api.url("global/healthChecks");
    let client = api.client.clone();
    let held = tokio::spawn(async move {
        client
            .post(url)
            .json(&json!({"name": "hc", "type": "TCP"}))
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    let mut pending = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let j = api.gce.journal();
        if let Some((e, r)) = requests(&j).first() {
            pending = Some((e.seq, r.status));
            break;
        }
    }
    assert_eq!(pending.map(|p| p.1), Some(None), "recorded, not answered yet");
    assert_eq!(held.await.expect("task").expect("sent"), 200);
    let j = api.gce.journal();
    let (e, r) = request(&j, "POST", HC);
    assert_eq!((Some(e.seq), r.status), (pending.map(|p| p.0), Some(200)));
    let held_for = r.answered_elapsed_micros.expect("answered") - e.elapsed_micros;
    assert!(held_for >= 300_000, "{held_for}");
    // The change was applied after the delay, i.e. after the arrival was recorded.
    assert!(applied(&j)[0].0.elapsed_micros >= e.elapsed_micros + 300_000);
}

#[tokio::test]
async fn a_full_journal_drops_the_oldest_and_counts_them() {
    let api = Api::with(Config {
        journal_capacity: 4,
        ..config()
    })
    .await;
    for i in 0..7 {
        api.get(&format!("global/urlMaps/u{i}")).await;
    }
    let j = api.gce.journal();
    let seqs: Vec<u64> = j.entries.iter().map(|e| e.seq).collect();
    assert_eq!((seqs, j.dropped, j.next_seq), (vec![4, 5, 6, 7], 3, 8));
    let (_, r) = request(&j, "GET", "/compute/v1/projects/p/global/urlMaps/u6");
    assert_eq!(r.status, Some(404));
}

#[tokio::test]
async fn the_admin_route_matches_the_library_and_since_clear_and_reset_work() {
    let api = Api::start().await;
    api.create("global/healthChecks", json!({"name": "hc", "type": "TCP"}))
        .await;
    api.get("global/healthChecks").await.ok();
    let lib = serde_json::to_value(api.gce.journal()).expect("json");
    let http = api.get("/_fake/journal").await.ok();
    assert_eq!(http, lib, "admin requests are not journaled");
    let first = &http["entries"][0];
    assert_eq!(first["seq"], 1);
    assert_eq!(first["type"], "request");
    assert_eq!(first["path"], HC);
    assert_eq!(first["category"], "mutations");
    assert_eq!(first["status"], 200);
    assert!(first["at"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert!(first["elapsedMicros"].is_u64() && first["answeredElapsedMicros"].is_u64());
    let second = &http["entries"][1];
    assert_eq!(second["type"], "applied");
    assert_eq!(second["operationType"], "insert");
    assert_eq!(second["targetLink"], link("global/healthChecks/hc"));
    assert_eq!(
        (&second["status"], &second["change"]),
        (&json!("done"), &json!("created"))
    );
    assert_eq!(second["errorCode"], Value::Null);
    let parsed: Journal = serde_json::from_value(http.clone()).expect("parses");
    assert_eq!(parsed.entries.len(), api.gce.journal().entries.len());

    let next = http["nextSeq"].as_u64().expect("nextSeq");
    let since = api.get(&format!("/_fake/journal?since={}", next - 1)).await.ok();
    assert_eq!(since["entries"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        since,
        serde_json::to_value(api.gce.journal_since(next - 1)).expect("json")
    );
    let none = api.get(&format!("/_fake/journal?since={next}")).await.ok();
    assert_eq!(none["entries"], json!([]));

    assert_eq!(api.delete("/_fake/journal").await.ok(), json!({}));
    let cleared = api.gce.journal();
    assert_eq!(
        (cleared.entries.len(), cleared.dropped, cleared.next_seq),
        (0, 0, next)
    );
    api.get("global/healthChecks").await.ok();
    assert_eq!(api.gce.journal().entries[0].seq, next, "seq keeps counting");
    api.post("/_fake/reset", json!({})).await.ok();
    assert!(api.gce.journal().entries.is_empty());
    api.gce.clear_journal();
    assert_eq!(api.gce.journal().next_seq, next + 1);
}
