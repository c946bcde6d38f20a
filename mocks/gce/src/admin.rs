//! The knobs: Rust methods on the shared state, and the same operations as the JSON admin API
//! under `/_fake/` (routes listed in the crate documentation).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, get, post, put};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::config::{InstanceSeed, Latency};
use crate::errors::ApiError;
use crate::faults::{FaultError, FaultRule, FaultStatus};
use crate::http::{JSON, json_response, text};
use crate::journal::Journal;
use crate::ratelimit::{RateLimit, TokenBucket};
use crate::state::Shared;
use crate::stats::Stats;

impl Shared {
    pub(crate) fn set_latency(&self, latency: Latency) {
        self.lock().knobs.latency = latency;
    }

    pub(crate) fn latency(&self) -> Latency {
        self.lock().knobs.latency.clone()
    }

    pub(crate) fn add_fault(&self, rule: FaultRule) -> Result<u64, FaultError> {
        let mut st = self.lock();
        let seed = st.knobs.seed;
        st.knobs.faults.add(rule, seed)
    }

    pub(crate) fn faults(&self) -> Vec<FaultStatus> {
        self.lock().knobs.faults.list()
    }

    pub(crate) fn remove_fault(&self, id: u64) -> bool {
        self.lock().knobs.faults.remove(id)
    }

    pub(crate) fn clear_faults(&self) {
        self.lock().knobs.faults.clear();
    }

    pub(crate) fn set_quota(&self, kind: &str, limit: Option<u64>) {
        let mut st = self.lock();
        match limit {
            Some(n) => st.knobs.quotas.insert(kind.to_string(), n),
            None => st.knobs.quotas.remove(kind),
        };
    }

    pub(crate) fn quotas(&self) -> BTreeMap<String, u64> {
        self.lock().knobs.quotas.clone()
    }

    pub(crate) fn set_rate_limit(&self, limit: Option<RateLimit>) {
        self.lock().knobs.bucket = limit.map(TokenBucket::new);
    }

    pub(crate) fn rate_limit(&self) -> Option<RateLimit> {
        self.lock().knobs.bucket.as_ref().map(|b| b.limit.clone())
    }

    pub(crate) fn seed_instance(&self, seed: &InstanceSeed) -> Result<String, ApiError> {
        let mut st = self.lock();
        let link = st.seed_instance(&self.config.project_id, seed);
        // An instance's IP is what its probes and traffic go to.
        self.data_plane_sync(&mut st);
        link
    }

    pub(crate) fn remove_instance(&self, project: Option<&str>, zone: &str, name: &str) -> bool {
        let project = project.unwrap_or(&self.config.project_id);
        let mut st = self.lock();
        let removed = st.remove_instance(project, zone, name);
        self.data_plane_sync(&mut st);
        removed
    }

    pub(crate) fn set_instance_health(
        &self,
        project: Option<&str>,
        zone: &str,
        name: &str,
        healthy: bool,
    ) -> bool {
        let project = project.unwrap_or(&self.config.project_id);
        self.lock().set_instance_health(project, zone, name, healthy)
    }

    pub(crate) fn set_endpoint_health(
        &self,
        project: Option<&str>,
        zone: &str,
        neg: &str,
        ip: &str,
        port: u32,
        healthy: bool,
    ) -> bool {
        let project = project.unwrap_or(&self.config.project_id);
        self.lock()
            .set_endpoint_health(project, zone, neg, ip, port, healthy)
    }

    pub(crate) fn stats(&self) -> Stats {
        self.lock().stats.clone()
    }

    pub(crate) fn reset_stats(&self) {
        self.lock().stats = Stats::default();
    }

    pub(crate) fn journal(&self, since: u64) -> Journal {
        self.lock().journal.snapshot(since)
    }

    pub(crate) fn clear_journal(&self) {
        self.lock().journal.clear();
    }

    pub(crate) fn dump(&self) -> Value {
        self.lock().dump()
    }
}

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/stats", get(stats).delete(reset_stats))
        .route("/stats/reset", post(reset_stats))
        .route("/state", get(state))
        .route("/journal", get(journal).delete(clear_journal))
        .route("/reset", post(reset))
        .route("/latency", get(get_latency).put(put_latency))
        .route("/faults", get(list_faults).post(add_fault).delete(clear_faults))
        .route("/faults/{id}", delete(remove_fault))
        .route("/quotas", get(get_quotas))
        .route("/quotas/{kind}", put(put_quota).delete(delete_quota))
        .route(
            "/rate-limit",
            get(get_rate_limit).put(put_rate_limit).delete(delete_rate_limit),
        )
        .route("/instances", post(seed_instance))
        .route("/instances/{zone}/{name}", delete(remove_instance))
        .route("/instances/{zone}/{name}/health", put(set_health))
        .route("/endpoints/{zone}/{neg}/health", put(set_endpoint_health))
        .route("/dataplane", get(dataplane))
}

fn ok(v: Value) -> Response {
    json_response(StatusCode::OK, &v, "v1")
}

fn fail(status: StatusCode, message: impl std::fmt::Display) -> Response {
    json_response(status, &json!({"error": message.to_string()}), "v1")
}

/// Parses a JSON body; the error is the message for a 400.
fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| e.to_string())
}

fn to_json<T: serde::Serialize>(v: &T) -> Response {
    match serde_json::to_value(v) {
        Ok(v) => ok(v),
        Err(e) => fail(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

async fn stats(State(s): State<Arc<Shared>>) -> Response {
    to_json(&s.stats())
}

async fn reset_stats(State(s): State<Arc<Shared>>) -> Response {
    s.reset_stats();
    ok(json!({}))
}

#[derive(Deserialize)]
struct SinceQuery {
    #[serde(default)]
    since: u64,
}

/// Serialized straight to text: a full journal is large.
async fn journal(State(s): State<Arc<Shared>>, Query(q): Query<SinceQuery>) -> Response {
    match serde_json::to_string(&s.journal(q.since)) {
        Ok(body) => text(StatusCode::OK, JSON, body),
        Err(e) => fail(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

async fn clear_journal(State(s): State<Arc<Shared>>) -> Response {
    s.clear_journal();
    ok(json!({}))
}

async fn state(State(s): State<Arc<Shared>>) -> Response {
    ok(s.dump())
}

async fn dataplane(State(s): State<Arc<Shared>>) -> Response {
    ok(s.data_plane_view())
}

async fn reset(State(s): State<Arc<Shared>>) -> Response {
    s.reset();
    ok(json!({}))
}

async fn get_latency(State(s): State<Arc<Shared>>) -> Response {
    to_json(&s.latency())
}

async fn put_latency(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    match parse::<Latency>(&body) {
        Ok(l) => {
            s.set_latency(l);
            to_json(&s.latency())
        }
        Err(e) => fail(StatusCode::BAD_REQUEST, e),
    }
}

async fn list_faults(State(s): State<Arc<Shared>>) -> Response {
    to_json(&s.faults())
}

async fn add_fault(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let rule = match parse::<FaultRule>(&body) {
        Ok(r) => r,
        Err(e) => return fail(StatusCode::BAD_REQUEST, e),
    };
    match s.add_fault(rule) {
        Ok(id) => ok(json!({ "id": id })),
        Err(e) => fail(StatusCode::BAD_REQUEST, e),
    }
}

async fn clear_faults(State(s): State<Arc<Shared>>) -> Response {
    s.clear_faults();
    ok(json!({}))
}

async fn remove_fault(State(s): State<Arc<Shared>>, Path(id): Path<u64>) -> Response {
    if s.remove_fault(id) {
        ok(json!({}))
    } else {
        fail(StatusCode::NOT_FOUND, format!("no fault rule {id}"))
    }
}

async fn get_quotas(State(s): State<Arc<Shared>>) -> Response {
    to_json(&s.quotas())
}

#[derive(Deserialize)]
struct QuotaBody {
    limit: u64,
}

async fn put_quota(State(s): State<Arc<Shared>>, Path(kind): Path<String>, body: Bytes) -> Response {
    match parse::<QuotaBody>(&body) {
        Ok(q) => {
            s.set_quota(&kind, Some(q.limit));
            to_json(&s.quotas())
        }
        Err(e) => fail(StatusCode::BAD_REQUEST, e),
    }
}

async fn delete_quota(State(s): State<Arc<Shared>>, Path(kind): Path<String>) -> Response {
    s.set_quota(&kind, None);
    to_json(&s.quotas())
}

async fn get_rate_limit(State(s): State<Arc<Shared>>) -> Response {
    to_json(&s.rate_limit())
}

async fn put_rate_limit(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    match parse::<RateLimit>(&body) {
        Ok(l) if l.qps >= 0.0 && l.qps.is_finite() => {
            s.set_rate_limit(Some(l));
            to_json(&s.rate_limit())
        }
        Ok(_) => fail(StatusCode::BAD_REQUEST, "qps must be a finite number >= 0"),
        Err(e) => fail(StatusCode::BAD_REQUEST, e),
    }
}

async fn delete_rate_limit(State(s): State<Arc<Shared>>) -> Response {
    s.set_rate_limit(None);
    ok(json!(null))
}

async fn seed_instance(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let seed = match parse::<InstanceSeed>(&body) {
        Ok(i) => i,
        Err(e) => return fail(StatusCode::BAD_REQUEST, e),
    };
    match s.seed_instance(&seed) {
        Ok(link) => ok(json!({ "selfLink": link })),
        Err(e) => fail(StatusCode::BAD_REQUEST, e.message),
    }
}

#[derive(Deserialize)]
struct ProjectQuery {
    project: Option<String>,
}

async fn remove_instance(
    State(s): State<Arc<Shared>>,
    Path((zone, name)): Path<(String, String)>,
    Query(q): Query<ProjectQuery>,
) -> Response {
    if s.remove_instance(q.project.as_deref(), &zone, &name) {
        ok(json!({}))
    } else {
        fail(StatusCode::NOT_FOUND, format!("no instance {zone}/{name}"))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HealthBody {
    health_state: String,
}

/// `healthState` HEALTHY or UNHEALTHY, as a bool.
fn healthy(state: &str) -> Option<bool> {
    match state {
        "HEALTHY" => Some(true),
        "UNHEALTHY" => Some(false),
        _ => None,
    }
}

fn bad_health_state() -> Response {
    fail(
        StatusCode::BAD_REQUEST,
        "healthState must be HEALTHY or UNHEALTHY",
    )
}

async fn set_health(
    State(s): State<Arc<Shared>>,
    Path((zone, name)): Path<(String, String)>,
    Query(q): Query<ProjectQuery>,
    body: Bytes,
) -> Response {
    let healthy = match parse::<HealthBody>(&body).map(|h| healthy(&h.health_state)) {
        Ok(Some(h)) => h,
        Ok(None) => return bad_health_state(),
        Err(e) => return fail(StatusCode::BAD_REQUEST, e),
    };
    if s.set_instance_health(q.project.as_deref(), &zone, &name, healthy) {
        ok(json!({}))
    } else {
        fail(StatusCode::NOT_FOUND, format!("no instance {zone}/{name}"))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EndpointHealthBody {
    ip_address: String,
    port: u32,
    health_state: String,
}

async fn set_endpoint_health(
    State(s): State<Arc<Shared>>,
    Path((zone, neg)): Path<(String, String)>,
    Query(q): Query<ProjectQuery>,
    body: Bytes,
) -> Response {
    let b = match parse::<EndpointHealthBody>(&body) {
        Ok(b) => b,
        Err(e) => return fail(StatusCode::BAD_REQUEST, e),
    };
    let Some(healthy) = healthy(&b.health_state) else {
        return bad_health_state();
    };
    if s.set_endpoint_health(q.project.as_deref(), &zone, &neg, &b.ip_address, b.port, healthy) {
        ok(json!({}))
    } else {
        fail(
            StatusCode::NOT_FOUND,
            format!(
                "no endpoint {}:{} in network endpoint group {zone}/{neg}",
                b.ip_address, b.port
            ),
        )
    }
}
