//! The HTTP layer: the router, and the pipeline every Compute request goes through
//! (token check → routing → rate limit → faults → counters → method).

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::errors::ApiError;
use crate::faults::{OpFault, Outcome};
use crate::journal::{JournalEvent, RequestEntry};
use crate::json::{Obj, parse_body};
use crate::kinds::{LINK_BASE, valid_name};
use crate::list::ListParams;
use crate::mutation::{MutationReq, Verb};
use crate::routes::{Call, Route};
use crate::state::Shared;
use crate::stats::RejectReason;
use crate::{admin, metadata, reads};

/// The whole application: Compute routes, the metadata server and the admin API.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .nest("/_fake", admin::router())
        .merge(metadata::router())
        .fallback(compute)
        .with_state(shared)
}

pub(crate) const JSON: &str = "application/json; charset=UTF-8";

/// A JSON response; self links are rewritten to the API version the client called.
pub(crate) fn json_response(status: StatusCode, body: &Value, version: &str) -> Response {
    let mut text = body.to_string();
    if version != "v1" {
        text = text.replace(
            LINK_BASE,
            &format!("https://www.googleapis.com/compute/{version}/"),
        );
    }
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(JSON))],
        text,
    )
        .into_response()
}

/// A synchronous API error.
pub(crate) fn error_response(e: &ApiError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(status, &e.to_sync_body(), "v1")
}

/// What Google's front end answers for a path it does not know: an HTML 404, not JSON.
fn unknown_route(path: &str) -> Response {
    let body = format!(
        "<!DOCTYPE html>\n<html lang=en><title>Error 404 (Not Found)</title>\
         <p><b>404.</b> The requested URL <code>{}</code> was not found on this server.</p></html>\n",
        path.replace('<', "&lt;")
    );
    (
        StatusCode::NOT_FOUND,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=UTF-8"),
        )],
        body,
    )
        .into_response()
}

/// 401 in the real shape, when a token is required.
fn unauthenticated(missing: bool) -> Response {
    let (reason, message) = if missing {
        (
            "required",
            "Request is missing required authentication credential. Expected OAuth 2 access token.",
        )
    } else {
        ("authError", "Invalid Credentials")
    };
    let mut r = error_response(&ApiError::new(401, reason, message));
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"https://accounts.google.com/\""),
    );
    r
}

async fn compute(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    // Only Compute paths are counted, journaled and token-checked; anything else (a mistyped
    // admin route, say) is a plain 404.
    if !path.starts_with("/compute/") {
        return unknown_route(path);
    }
    let query: Vec<(String, String)> = Query::try_from_uri(&uri).map(|q| q.0).unwrap_or_default();
    let route = crate::routes::parse(&method, path);
    let entry = RequestEntry {
        method: method.to_string(),
        path: path.to_string(),
        request_id: query_value(&query, "requestId").map(str::to_string),
        user_agent: headers
            .get(header::USER_AGENT)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
        category: route.as_ref().map(|r| r.call.category()),
        rejected: None,
        status: None,
        answered_elapsed_micros: None,
    };
    let (seq, admitted) = admit(&shared, &method, path, &headers, route, entry);
    let response = match admitted {
        Ok((route, outcome)) => serve(&shared, route, outcome, &query, &body).await,
        Err(rejected) => rejected,
    };
    shared.lock().journal.answer(seq, response.status().as_u16());
    response
}

/// The checks before a method runs (token, route, rate limit, faults), decided and recorded
/// (counters, journal) under one lock. Returns the journal `seq` of the request, and either
/// the route with the faults that fired or the rejection to answer.
fn admit(
    shared: &Shared,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    route: Option<Route>,
    mut entry: RequestEntry,
) -> (u64, Result<(Route, Outcome), Response>) {
    let token_missing = shared.config.require_token.as_ref().and_then(|token| {
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        (sent != Some(token.as_str())).then_some(sent.is_none())
    });
    let mut st = shared.lock();
    let result = match (token_missing, route) {
        (Some(missing), _) => Err((RejectReason::Unauthenticated, unauthenticated(missing))),
        (None, None) => Err((RejectReason::UnknownRoute, unknown_route(path))),
        (None, Some(route)) => {
            let category = route.call.category();
            let limited = st
                .knobs
                .bucket
                .as_mut()
                .and_then(|b| (!b.try_take(category, Instant::now())).then_some(b.limit.status));
            match limited {
                Some(status) => Err((
                    RejectReason::RateLimited,
                    error_response(&ApiError::rate_limited(status)),
                )),
                None => {
                    let outcome =
                        st.knobs
                            .faults
                            .evaluate(method.as_str(), path, route.call.creates_operation());
                    if outcome.error.is_some() {
                        st.stats.reject(RejectReason::Injected);
                        entry.rejected = Some(RejectReason::Injected);
                    } else {
                        st.stats.record(category, route.call.api_name());
                    }
                    Ok((route, outcome))
                }
            }
        }
    };
    let result = result.map_err(|(why, response)| {
        st.stats.reject(why);
        entry.rejected = Some(why);
        response
    });
    let seq = st.journal.push(JournalEvent::Request(entry));
    (seq, result)
}

/// Runs an admitted request: the fault delay, an injected error, or the method.
async fn serve(
    shared: &Arc<Shared>,
    route: Route,
    outcome: Outcome,
    query: &[(String, String)],
    body: &Bytes,
) -> Response {
    if !outcome.delay.is_zero() {
        tokio::time::sleep(outcome.delay).await;
    }
    if let Some(e) = outcome.error {
        return error_response(&e);
    }
    let version = route.version;
    match handle(shared, route, query, body, outcome.op_fault).await {
        Ok(Reply::Json(obj)) => json_response(StatusCode::OK, &Value::Object(obj), version),
        Ok(Reply::Empty) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error_response(&e),
    }
}

enum Reply {
    Json(Obj),
    Empty,
}

fn query_value<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// The name in a path must be a valid name or a numeric id.
fn check_path_name(name: &str) -> Result<(), ApiError> {
    if valid_name(name) || (!name.is_empty() && name.len() <= 20 && name.bytes().all(|b| b.is_ascii_digit()))
    {
        return Ok(());
    }
    Err(ApiError::invalid(format!(
        "Invalid value '{name}'. Values must match the following regular expression: \
         '[a-z](?:[-a-z0-9]{{0,61}}[a-z0-9])?|[1-9][0-9]{{0,19}}'"
    )))
}

async fn handle(
    shared: &Arc<Shared>,
    route: Route,
    query: &[(String, String)],
    raw_body: &Bytes,
    fault: Option<OpFault>,
) -> Result<Reply, ApiError> {
    let call = route.call;
    if let Some(zone) = call.zone() {
        let known = shared.lock().store.zones.contains(zone);
        if !known {
            return Err(ApiError::invalid_field("zone", zone, "Unknown zone."));
        }
    }
    match call {
        Call::OpWait(key) => wait(shared, key).await.map(Reply::Json),
        Call::Insert(coll) => {
            let body = parse_body(raw_body)?;
            let name = match body.get("name") {
                None | Some(Value::Null) => {
                    return Err(ApiError::new(
                        400,
                        "required",
                        "Required field 'resource.name' not specified",
                    ));
                }
                Some(Value::String(s)) if valid_name(s) => s.clone(),
                Some(v) => return Err(ApiError::invalid_name("resource.name", &crate::json::show(v))),
            };
            mutate(shared, coll.key(&name), Verb::Insert, body, query, fault)
        }
        Call::Mutate(mut key, verb) => {
            check_path_name(&key.name)?;
            let body = if verb == Verb::Delete {
                Obj::new()
            } else {
                parse_body(raw_body)?
            };
            reads::resolve_id(&shared.lock().store, &mut key);
            mutate(shared, key, verb, body, query, fault)
        }
        Call::OpDelete(key) => {
            let mut st = shared.lock();
            match st.store.ops.get(&key) {
                None => Err(ApiError::not_found(&key.path())),
                Some(e) if !e.is_done() => Err(ApiError::invalid(format!(
                    "The operation '{}' is not done and cannot be deleted.",
                    key.path()
                ))),
                Some(_) => {
                    st.store.ops.remove(&key);
                    Ok(Reply::Empty)
                }
            }
        }
        Call::Get(mut key) => {
            check_path_name(&key.name)?;
            read(shared, |store| {
                reads::resolve_id(store, &mut key);
                reads::get(store, &key)
            })
        }
        Call::List(coll) => {
            let params = ListParams::parse(query)?;
            read(shared, |store| reads::list(store, &coll, &params))
        }
        Call::GetHealth(key) => {
            let body = parse_body(raw_body)?;
            read(shared, |store| {
                // Lock order: the state, then the probe results.
                let probed = shared.dataplane.as_ref().map(|p| p.health());
                reads::get_health(store, &key, &body, probed.as_deref())
            })
        }
        Call::Validate(key) => {
            let body = parse_body(raw_body)?;
            read(shared, |store| {
                reads::validate_url_map(store, &shared.limits, &key, &body)
            })
        }
        Call::ListInstances(key) | Call::ListEndpoints(key) => {
            let (body, params) = (parse_body(raw_body)?, ListParams::parse(query)?);
            read(shared, |store| {
                // Lock order: the state, then the probe results.
                let probed = shared.dataplane.as_ref().map(|p| p.health());
                reads::list_members(store, &key, &body, &params, probed.as_deref())
            })
        }
        Call::ListAvailableFeatures(_) => Ok(Reply::Json(reads::ssl_features())),
        Call::OpGet(key) => read(shared, |store| reads::get_operation(store, &key)),
        Call::OpList { project, scope } => {
            let params = ListParams::parse(query)?;
            read(shared, |store| {
                reads::list_operations(store, &project, &scope, &params)
            })
        }
        Call::ZoneGet { project, zone } => read(shared, |store| reads::zone(store, &project, &zone)),
        Call::ZoneList { project } => {
            let params = ListParams::parse(query)?;
            read(shared, |store| reads::zones(store, &project, &params))
        }
        Call::AggregatedList { project, kind } => {
            let params = ListParams::parse(query)?;
            read(shared, |store| {
                reads::aggregated_list(store, &project, kind, &params)
            })
        }
    }
}

/// Runs a read under the lock.
fn read(
    shared: &Shared,
    f: impl FnOnce(&crate::store::Store) -> Result<Obj, ApiError>,
) -> Result<Reply, ApiError> {
    f(&shared.lock().store).map(Reply::Json)
}

fn mutate(
    shared: &Arc<Shared>,
    key: crate::kinds::Key,
    verb: Verb,
    body: Obj,
    query: &[(String, String)],
    fault: Option<OpFault>,
) -> Result<Reply, ApiError> {
    let (response, schedule) = {
        let mut st = shared.lock();
        let new_id = st.store.rng.id();
        let req = MutationReq {
            key,
            verb,
            body,
            new_id,
        };
        let done = st.mutate(&shared.limits, req, query_value(query, "requestId"), fault);
        // Under the same lock: an operation seen DONE has its listeners bound already.
        shared.data_plane_sync(&mut st);
        done?
    };
    if let Some(s) = schedule {
        shared.spawn_completion(s);
    }
    Ok(Reply::Json(response))
}

/// `POST .../operations/{name}/wait`: returns when the operation is DONE or the cap passes.
async fn wait(shared: &Arc<Shared>, key: crate::operations::OpKey) -> Result<Obj, ApiError> {
    let deadline = tokio::time::Instant::now() + shared.config.operation_wait_cap;
    let mut rx = {
        let st = shared.lock();
        let op = st
            .store
            .ops
            .get(&key)
            .ok_or_else(|| ApiError::not_found(&key.path()))?;
        if op.is_done() {
            return Ok(op.obj.clone());
        }
        op.done.subscribe()
    };
    // A closed channel means the operation was forgotten (reset); the lookup below says so.
    let _ = tokio::time::timeout_at(deadline, rx.wait_for(|done| *done)).await;
    reads::get_operation(&shared.lock().store, &key)
}

/// A plain-text response (metadata server).
pub(crate) fn text(status: StatusCode, content_type: &'static str, body: String) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}
