//! The HTTP layer: routing of Kubernetes API paths, content negotiation (JSON, `Table`,
//! `PartialObjectMetadata`, aggregated discovery), query parameters, and request records.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::header::{ACCEPT, CONTENT_TYPE, USER_AGENT};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::discovery;
use crate::error::ApiError;
use crate::kinds::{self, KINDS, Kind, KindId};
use crate::openapi;
use crate::patch::PatchType;
use crate::records::RequestRecord;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::{DeleteOptions, FieldValidation, Filter, ListPage, Store, Sub, WriteOptions, Written};
use crate::table::{self, IncludeObject};
use crate::watch::{self as watching, Encoding, Start, WatchSpec};

/// Largest request body accepted (the real apiserver's limit is 3 MiB).
const MAX_BODY: usize = 3 * 1024 * 1024;

/// A watch without `timeoutSeconds` ends after this long (real servers pick 30–60 minutes).
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// State shared by all requests.
pub(crate) struct Shared {
    store: Mutex<Store>,
    records: Mutex<Vec<RequestRecord>>,
    /// Latest resourceVersion; watches wait on it.
    pub notify: watch::Receiver<u64>,
    /// Becomes true when the server shuts down, ending open watches.
    pub shutdown: watch::Receiver<bool>,
    pub bookmark_interval: Duration,
    /// Whether to keep request records.
    pub record_requests: bool,
    /// `http://host:port`, for `serverAddressByClientCIDRs`.
    pub server_address: String,
}

impl Shared {
    pub fn new(
        store: Store,
        notify: watch::Receiver<u64>,
        shutdown: watch::Receiver<bool>,
        bookmark_interval: Duration,
        record_requests: bool,
        server_address: String,
    ) -> Self {
        Shared {
            store: Mutex::new(store),
            records: Mutex::new(Vec::new()),
            notify,
            shutdown,
            bookmark_interval,
            record_requests,
            server_address,
        }
    }

    /// Locks the store. A panic while holding the lock is a bug; the data is still consistent
    /// because writes are committed last, so a poisoned lock is simply taken over.
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn records(&self) -> MutexGuard<'_, Vec<RequestRecord>> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The axum router: one fallback handler, because the paths are data-driven.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

/// A request for an API resource.
#[derive(Debug, Clone)]
struct ResourcePath {
    kind: KindId,
    namespace: Option<String>,
    name: Option<String>,
    sub: Sub,
    /// The deprecated `/watch/` path prefix.
    watch_prefix: bool,
}

#[derive(Debug)]
enum Route {
    Version,
    Health,
    Api,
    Apis,
    Group(String),
    Resources(String, String),
    OpenApiRoot,
    OpenApiDoc(String, String),
    Resource(ResourcePath),
    /// A resource path whose resource or subresource is not served.
    UnknownResource(String, String, String, Option<String>),
    NotFound,
}

fn resource_route(group: &str, version: &str, rest: &[&str]) -> Route {
    let (watch_prefix, rest) = match rest.split_first() {
        Some((&"watch", tail)) => (true, tail),
        _ => (false, rest),
    };
    let namespaced_kind = rest
        .get(2)
        .and_then(|r| kinds::find(group, version, r))
        .filter(|id| KINDS[*id].namespaced);
    let (kind_name, namespace, tail) = match (rest, namespaced_kind) {
        (["namespaces", ns, res, tail @ ..], Some(_)) => (*res, Some((*ns).to_string()), tail),
        ([res, tail @ ..], _) => (*res, None, tail),
        ([], _) => return Route::NotFound,
    };
    let unknown = |sub: Option<&str>| {
        Route::UnknownResource(
            group.to_string(),
            version.to_string(),
            kind_name.to_string(),
            sub.map(String::from),
        )
    };
    let Some(kind) = kinds::find(group, version, kind_name) else {
        return unknown(None);
    };
    if namespace.is_none() && KINDS[kind].namespaced && !tail.is_empty() {
        // A namespaced object addressed without its namespace.
        return unknown(None);
    }
    let (name, sub) = match tail {
        [] => (None, Sub::Main),
        [name] => (Some((*name).to_string()), Sub::Main),
        [name, "status"] if KINDS[kind].status => (Some((*name).to_string()), Sub::Status),
        [_, sub] => return unknown(Some(sub)),
        _ => return unknown(None),
    };
    Route::Resource(ResourcePath {
        kind,
        namespace,
        name,
        sub,
        watch_prefix,
    })
}

fn route(path: &str) -> Route {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        ["version"] => Route::Version,
        ["healthz" | "livez" | "readyz", ..] => Route::Health,
        ["api"] => Route::Api,
        ["apis"] => Route::Apis,
        ["api", v] => Route::Resources(String::new(), (*v).to_string()),
        ["apis", g] => Route::Group((*g).to_string()),
        ["apis", g, v] => Route::Resources((*g).to_string(), (*v).to_string()),
        ["api", v, rest @ ..] => resource_route("", v, rest),
        ["apis", g, v, rest @ ..] => resource_route(g, v, rest),
        ["openapi", "v3"] => Route::OpenApiRoot,
        ["openapi", "v3", "api", v] => Route::OpenApiDoc(String::new(), (*v).to_string()),
        ["openapi", "v3", "apis", g, v] => Route::OpenApiDoc((*g).to_string(), (*v).to_string()),
        _ => Route::NotFound,
    }
}

/// Query parameters, in order; the last occurrence of a key wins.
struct Params(Vec<(String, String)>);

impl Params {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some("true" | "1" | "True") => Ok(Some(true)),
            Some("false" | "0" | "False" | "") => Ok(Some(false)),
            Some(other) => Err(ApiError::bad_request(format!(
                "{key} must be true or false, not {other:?}"
            ))),
        }
    }
}

/// How a response body is rendered, from `Accept`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Json,
    Meta,
    Table,
}

fn negotiate(accept: &str) -> Result<Format, ApiError> {
    if accept.trim().is_empty() {
        return Ok(Format::Json);
    }
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        let params: Vec<(&str, &str)> = parts.filter_map(|p| p.split_once('=')).collect();
        let param = |k: &str| params.iter().find(|(pk, _)| *pk == k).map(|(_, v)| *v);
        let json_like = matches!(media, "application/json" | "application/*" | "*/*");
        if !json_like {
            continue;
        }
        match param("as") {
            None => return Ok(Format::Json),
            Some(as_) => {
                let meta_group =
                    param("g") == Some("meta.k8s.io") && matches!(param("v"), Some("v1" | "v1beta1"));
                match as_ {
                    "Table" if meta_group => return Ok(Format::Table),
                    "PartialObjectMetadata" | "PartialObjectMetadataList" if meta_group => {
                        return Ok(Format::Meta);
                    }
                    _ => continue,
                }
            }
        }
    }
    Err(ApiError::not_acceptable(accept))
}

fn content_type(format: Format) -> &'static str {
    match format {
        Format::Json => "application/json",
        Format::Meta => "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
        Format::Table => "application/json;as=Table;g=meta.k8s.io;v=v1",
    }
}

fn respond(status: StatusCode, content_type: &str, body: impl Into<Body>, warnings: &[String]) -> Response {
    let mut response = (status, body.into()).into_response();
    let headers = response.headers_mut();
    if let Ok(ct) = HeaderValue::from_str(content_type) {
        headers.insert(CONTENT_TYPE, ct);
    }
    for w in warnings {
        let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            headers.append("warning", v);
        }
    }
    response
}

fn json_response(status: StatusCode, value: &Value) -> Response {
    respond(status, "application/json", value.to_string(), &[])
}

pub(crate) fn error_response(e: &ApiError) -> Response {
    let status = StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(status, &e.to_status())
}

fn header(parts: &Parts, name: axum::http::header::HeaderName) -> &str {
    parts
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let route = route(parts.uri.path());
    let mut record = RequestRecord {
        verb: parts.method.as_str().to_lowercase(),
        group: String::new(),
        version: String::new(),
        resource: String::new(),
        subresource: None,
        namespace: None,
        name: None,
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(String::from),
        user_agent: parts
            .headers
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(String::from),
        status: 0,
        received_at: std::time::SystemTime::now(),
    };
    let response = match dispatch(&shared, &parts, body, route, &mut record).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    };
    record.status = response.status().as_u16();
    if shared.record_requests {
        shared.records().push(record);
    }
    response
}

async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| ApiError::too_large(MAX_BODY))
}

async fn dispatch(
    shared: &Arc<Shared>,
    parts: &Parts,
    body: Body,
    route: Route,
    record: &mut RequestRecord,
) -> Result<Response, ApiError> {
    let accept = header(parts, ACCEPT);
    if let Route::Resource(rp) = &route {
        let kind = &KINDS[rp.kind];
        record.group = kind.group.to_string();
        record.version = kind.version.to_string();
        record.resource = kind.resource.to_string();
        record.subresource = (rp.sub == Sub::Status).then(|| "status".to_string());
        record.namespace = rp.namespace.clone();
        record.name = rp.name.clone();
    }
    if let Route::UnknownResource(g, v, r, sub) = &route {
        record.group = g.clone();
        record.version = v.clone();
        record.resource = r.clone();
        record.subresource = sub.clone();
    }
    let params = Params(
        Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|e| ApiError::bad_request(format!("malformed query string: {e}")))?
            .0,
    );
    if let Route::Resource(rp) = route {
        return resource(shared, parts, body, rp, &params, record).await;
    }
    if parts.method != Method::GET && !matches!(route, Route::UnknownResource(..) | Route::NotFound) {
        return Err(ApiError::method_not_allowed(parts.method.as_str()));
    }
    let aggregated = discovery::aggregated_version(accept);
    Ok(match route {
        Route::Version => json_response(StatusCode::OK, &discovery::version()),
        Route::Health => respond(StatusCode::OK, "text/plain; charset=utf-8", "ok", &[]),
        Route::Api | Route::Apis => {
            let core = matches!(route, Route::Api);
            match aggregated {
                Some(v) => respond(
                    StatusCode::OK,
                    &discovery::aggregated_content_type(v),
                    discovery::aggregated(core, v).to_string(),
                    &[],
                ),
                None if core => {
                    json_response(StatusCode::OK, &discovery::api_versions(&shared.server_address))
                }
                None => json_response(StatusCode::OK, &discovery::api_group_list()),
            }
        }
        Route::Group(g) => json_response(
            StatusCode::OK,
            &discovery::api_group(&g).ok_or_else(ApiError::no_route)?,
        ),
        Route::Resources(g, v) => json_response(
            StatusCode::OK,
            &discovery::resource_list(&g, &v).ok_or_else(ApiError::no_route)?,
        ),
        Route::OpenApiRoot => json_response(StatusCode::OK, &openapi::root()),
        Route::OpenApiDoc(g, v) => json_response(
            StatusCode::OK,
            &openapi::document(&g, &v).ok_or_else(ApiError::no_route)?,
        ),
        Route::Resource(_) | Route::UnknownResource(..) | Route::NotFound => return Err(ApiError::no_route()),
    })
}

fn write_options(params: &Params) -> Result<WriteOptions, ApiError> {
    let dry_run = match params.get("dryRun") {
        None | Some("") => false,
        Some("All") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "dryRun must be All, not {other:?}"
            )));
        }
    };
    let field_validation = match params.get("fieldValidation") {
        None | Some("") => FieldValidation::Warn,
        Some("Strict") => FieldValidation::Strict,
        Some("Warn") => FieldValidation::Warn,
        Some("Ignore") => FieldValidation::Ignore,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "fieldValidation must be Strict, Warn or Ignore, not {other:?}"
            )));
        }
    };
    let field_manager = params
        .get("fieldManager")
        .filter(|m| !m.is_empty())
        .map(String::from);
    if field_manager.as_ref().is_some_and(|m| m.len() > 128) {
        return Err(ApiError::bad_request(
            "fieldManager must be at most 128 characters",
        ));
    }
    Ok(WriteOptions {
        dry_run,
        field_validation,
        field_manager,
    })
}

/// Parses a write body as JSON, or as YAML when the content type says so or (for apply) when it
/// is not JSON.
fn parse_object(parts: &Parts, bytes: &[u8], yaml_fallback: bool) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    let ct = header(parts, CONTENT_TYPE);
    let yaml = ct.starts_with("application/yaml") || ct.starts_with("application/apply-patch+yaml");
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => Ok(v),
        Err(json_err) if yaml || yaml_fallback => {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| ApiError::bad_request("the request body is not UTF-8"))?;
            serde_saphyr::from_str::<Value>(text).map_err(|e| {
                ApiError::bad_request(format!("the body is neither JSON ({json_err}) nor YAML ({e})"))
            })
        }
        Err(e) => Err(ApiError::bad_request(format!(
            "couldn't decode the body as JSON: {e}"
        ))),
    }
}

fn check_write_content_type(parts: &Parts) -> Result<(), ApiError> {
    let ct = header(parts, CONTENT_TYPE);
    let media = ct.split(';').next().unwrap_or("").trim();
    match media {
        "" | "application/json" | "application/yaml" | "*/*" => Ok(()),
        // kubectl's `create <kind>` generators send protobuf; say how to get there with JSON.
        "application/vnd.kubernetes.protobuf" => {
            let mut e = ApiError::unsupported_media_type(media);
            e.message.push_str(
                " (fake-kube speaks JSON only; instead of `kubectl create <kind> ...` use \
                 `kubectl create <kind> ... --dry-run=client -o yaml | kubectl apply -f -`)",
            );
            Err(e)
        }
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

fn render_one(kind: &Kind, object: &Value, format: Format, include: IncludeObject) -> Value {
    match format {
        Format::Json => object.clone(),
        Format::Meta => table::partial_metadata(object),
        Format::Table => {
            let rv = object
                .pointer("/metadata/resourceVersion")
                .cloned()
                .unwrap_or(Value::Null);
            let row = table::row(kind, object, include, jiff::Timestamp::now());
            table::table(kind, vec![row], json!({"resourceVersion": rv}), true)
        }
    }
}

fn written_response(kind: &Kind, w: Written, format: Format) -> Response {
    let status = if w.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = render_one(kind, &w.object, format, IncludeObject::Metadata);
    respond(status, content_type(format), body.to_string(), &w.warnings)
}

/// Serializes a list without building one big `Value`.
fn list_body(kind: &Kind, page: &ListPage, format: Format, include: IncludeObject) -> Vec<u8> {
    let mut metadata = json!({"resourceVersion": page.resource_version.to_string()});
    if let Some(token) = &page.continue_token {
        metadata["continue"] = json!(token);
        if let Some(remaining) = page.remaining {
            metadata["remainingItemCount"] = json!(remaining);
        }
    }
    if format == Format::Table {
        let now = jiff::Timestamp::now();
        let rows = page
            .items
            .iter()
            .map(|o| table::row(kind, o, include, now))
            .collect();
        return table::table(kind, rows, metadata, true).to_string().into_bytes();
    }
    let (list_kind, api_version) = match format {
        Format::Meta => (
            "PartialObjectMetadataList".to_string(),
            "meta.k8s.io/v1".to_string(),
        ),
        _ => (format!("{}List", kind.kind), kind.api_version()),
    };
    let mut buf = Vec::with_capacity(256 + page.items.len() * 1024);
    buf.extend_from_slice(b"{\"kind\":");
    buf.extend_from_slice(json!(list_kind).to_string().as_bytes());
    buf.extend_from_slice(b",\"apiVersion\":");
    buf.extend_from_slice(json!(api_version).to_string().as_bytes());
    buf.extend_from_slice(b",\"metadata\":");
    buf.extend_from_slice(metadata.to_string().as_bytes());
    buf.extend_from_slice(b",\"items\":[");
    for (i, item) in page.items.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        // Writing a `Value` into a Vec cannot fail.
        let _ = match format {
            Format::Meta => serde_json::to_writer(&mut buf, &table::partial_metadata(item)),
            _ => serde_json::to_writer(&mut buf, &**item),
        };
    }
    buf.extend_from_slice(b"]}");
    buf
}

fn filter(kind: &Kind, rp: &ResourcePath, params: &Params) -> Result<Filter, ApiError> {
    let mut fields = FieldSelector::parse(params.get("fieldSelector").unwrap_or(""), kind)?;
    if let Some(name) = &rp.name {
        // `GET .../name?watch=true`, the deprecated single-object watch.
        fields = FieldSelector::name(name);
    }
    Ok(Filter {
        namespace: rp.namespace.clone(),
        labels: LabelSelector::parse(params.get("labelSelector").unwrap_or(""))?,
        fields,
    })
}

fn parse_rv(value: &str) -> Result<u64, ApiError> {
    value
        .parse()
        .map_err(|_| ApiError::bad_request(format!("invalid resource version {value:?}")))
}

async fn resource(
    shared: &Arc<Shared>,
    parts: &Parts,
    body: Body,
    rp: ResourcePath,
    params: &Params,
    record: &mut RequestRecord,
) -> Result<Response, ApiError> {
    let kind = &KINDS[rp.kind];
    let format = negotiate(header(parts, ACCEPT))?;
    let include = IncludeObject::parse(params.get("includeObject"))?;
    let is_watch = rp.watch_prefix || params.flag("watch")?.unwrap_or(false);
    let ns = rp.namespace.as_deref();
    let method = parts.method.clone();
    record.verb = match (&method, &rp.name) {
        (&Method::GET, _) if is_watch => "watch",
        (&Method::GET, Some(_)) => "get",
        (&Method::GET, None) => "list",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, Some(_)) => "delete",
        (&Method::DELETE, None) => "deletecollection",
        _ => record.verb.as_str(),
    }
    .to_string();

    match (method, rp.name.clone()) {
        (Method::GET, _) if is_watch => watch(shared, kind, &rp, params, format, include),
        (Method::GET, Some(name)) => {
            let object = shared.store().get(rp.kind, ns, &name)?;
            let body = render_one(kind, &object, format, include);
            Ok(respond(
                StatusCode::OK,
                content_type(format),
                body.to_string(),
                &[],
            ))
        }
        (Method::GET, None) => {
            let filter = filter(kind, &rp, params)?;
            let limit = match params.get("limit") {
                None | Some("") => None,
                Some(l) => Some(
                    l.parse::<usize>()
                        .map_err(|_| ApiError::bad_request(format!("limit must be a number, not {l:?}")))?,
                ),
            };
            let continue_token = params.get("continue").filter(|c| !c.is_empty());
            let page = {
                let store = shared.store();
                if params.get("resourceVersionMatch") == Some("Exact")
                    && let Some(rv) = params.get("resourceVersion")
                    && parse_rv(rv)? != store.resource_version()
                {
                    return Err(ApiError::expired(format!(
                        "resourceVersion {rv} is not the current one; this server keeps no snapshots"
                    )));
                }
                store.list(rp.kind, &filter, limit, continue_token)?
            };
            Ok(respond(
                StatusCode::OK,
                content_type(format),
                list_body(kind, &page, format, include),
                &[],
            ))
        }
        (Method::POST, None) => {
            check_write_content_type(parts)?;
            let opts = write_options(params)?;
            let object = parse_object(parts, &read_body(body).await?, false)?;
            let written = shared.store().create(rp.kind, ns, object, &opts)?;
            Ok(written_response(kind, written, format))
        }
        (Method::PUT, Some(name)) => {
            check_write_content_type(parts)?;
            let opts = write_options(params)?;
            let object = parse_object(parts, &read_body(body).await?, false)?;
            let written = shared.store().update(rp.kind, ns, &name, rp.sub, object, &opts)?;
            Ok(written_response(kind, written, format))
        }
        (Method::PATCH, Some(name)) => {
            let ct = header(parts, CONTENT_TYPE);
            let ty = PatchType::from_content_type(ct).ok_or_else(|| ApiError::unsupported_media_type(ct))?;
            let opts = write_options(params)?;
            let force = params.flag("force")?.unwrap_or(false);
            if force && ty != PatchType::Apply {
                return Err(ApiError::bad_request("force may only be set for apply patches"));
            }
            let patch = parse_object(parts, &read_body(body).await?, ty == PatchType::Apply)?;
            let written = shared
                .store()
                .patch(rp.kind, ns, &name, rp.sub, ty, &patch, &opts)?;
            Ok(written_response(kind, written, format))
        }
        (Method::DELETE, name) => {
            let opts = delete_options(params, &read_body(body).await?)?;
            match name {
                Some(name) => {
                    let object = shared.store().delete(rp.kind, ns, &name, &opts)?;
                    let body = render_one(kind, &object, format, include);
                    Ok(respond(
                        StatusCode::OK,
                        content_type(format),
                        body.to_string(),
                        &[],
                    ))
                }
                None => {
                    let filter = filter(kind, &rp, params)?;
                    let (items, rv) = {
                        let mut store = shared.store();
                        let items = store.delete_collection(rp.kind, &filter, &opts)?;
                        (items, store.resource_version())
                    };
                    let page = ListPage {
                        items,
                        resource_version: rv,
                        continue_token: None,
                        remaining: None,
                    };
                    Ok(respond(
                        StatusCode::OK,
                        content_type(format),
                        list_body(kind, &page, format, include),
                        &[],
                    ))
                }
            }
        }
        (method, _) => Err(ApiError::method_not_allowed(method.as_str())),
    }
}

fn delete_options(params: &Params, body: &[u8]) -> Result<DeleteOptions, ApiError> {
    let grace =
        match params.get("gracePeriodSeconds") {
            None | Some("") => None,
            Some(g) => Some(g.parse::<i64>().map_err(|_| {
                ApiError::bad_request(format!("gracePeriodSeconds must be a number, not {g:?}"))
            })?),
        };
    let mut opts = DeleteOptions {
        dry_run: params.get("dryRun") == Some("All"),
        grace_period_seconds: grace,
        ..DeleteOptions::default()
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(opts);
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("couldn't decode the DeleteOptions body: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::bad_request("DeleteOptions must be a JSON object"));
    }
    let pre = value.get("preconditions");
    opts.uid = pre
        .and_then(|p| p.get("uid"))
        .and_then(Value::as_str)
        .map(String::from);
    opts.resource_version = pre
        .and_then(|p| p.get("resourceVersion"))
        .and_then(Value::as_str)
        .map(String::from);
    if let Some(dry) = value.get("dryRun").and_then(Value::as_array) {
        opts.dry_run |= dry.iter().any(|d| d == "All");
    }
    match value.get("gracePeriodSeconds") {
        None | Some(Value::Null) => {}
        Some(g) => {
            opts.grace_period_seconds = Some(g.as_i64().ok_or_else(|| {
                ApiError::bad_request(format!("gracePeriodSeconds must be an integer, not {g}"))
            })?);
        }
    }
    Ok(opts)
}

fn watch(
    shared: &Arc<Shared>,
    kind: &Kind,
    rp: &ResourcePath,
    params: &Params,
    format: Format,
    include: IncludeObject,
) -> Result<Response, ApiError> {
    let filter = filter(kind, rp, params)?;
    let bookmarks = params.flag("allowWatchBookmarks")?.unwrap_or(false);
    let send_initial = params.flag("sendInitialEvents")?;
    if send_initial == Some(true) {
        if params.get("resourceVersionMatch") != Some("NotOlderThan") {
            return Err(ApiError::bad_request(
                "sendInitialEvents requires resourceVersionMatch=NotOlderThan",
            ));
        }
        if !bookmarks {
            return Err(ApiError::bad_request(
                "sendInitialEvents requires allowWatchBookmarks=true",
            ));
        }
    }
    let current = shared.store().resource_version();
    let start = match (
        params
            .get("resourceVersion")
            .filter(|v| !v.is_empty() && *v != "0"),
        send_initial,
    ) {
        (_, Some(true)) => Start::Snapshot,
        (None, Some(false)) => Start::After(current),
        (None, None) => Start::Snapshot,
        (Some(rv), _) => Start::After(parse_rv(rv)?),
    };
    let timeout = match params.get("timeoutSeconds") {
        None | Some("") | Some("0") => DEFAULT_WATCH_TIMEOUT,
        Some(t) => Duration::from_secs(
            t.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("timeoutSeconds must be a number, not {t:?}")))?,
        ),
    };
    let encoding = match format {
        Format::Json => Encoding::Json,
        Format::Meta => Encoding::Meta,
        Format::Table => Encoding::Table(include),
    };
    let spec = WatchSpec {
        kind: kinds::find(kind.group, kind.version, kind.resource).unwrap_or(rp.kind),
        filter,
        start,
        bookmarks,
        initial_events_end: send_initial == Some(true),
        timeout,
        encoding,
    };
    let stream = watching::start(shared.clone(), spec);
    Ok(respond(
        StatusCode::OK,
        content_type(format),
        Body::from_stream(stream),
        &[],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let r = |p: &str| format!("{:?}", route(p));
        assert!(r("/api/v1/namespaces/default/services/web").contains("name: Some(\"web\")"));
        assert!(r("/api/v1/namespaces/default").contains("name: Some(\"default\")"));
        assert!(r("/api/v1/namespaces/default/status").contains("Status"));
        assert!(r("/apis/networking.k8s.io/v1/ingresses").contains("namespace: None"));
        assert!(r("/apis/networking.k8s.io/v1/namespaces/a/ingresses/b/status").contains("Status"));
        assert!(
            r("/apis/networking.k8s.io/v1/namespaces/a/ingresses/b/scale").starts_with("UnknownResource")
        );
        assert!(r("/api/v1/namespaces/a/configmaps/b/status").starts_with("UnknownResource"));
        assert!(r("/api/v1/pods").contains("namespace: None"));
        assert!(r("/api/v1/namespaces/a/pods/p/status").contains("Status"));
        assert!(r("/api/v1/namespaces/a/pods/p/log").starts_with("UnknownResource"));
        assert!(r("/apis/batch/v1/namespaces/a/jobs").starts_with("UnknownResource"));
        assert!(
            r("/api/v1/services/x").starts_with("UnknownResource"),
            "namespaced kind without namespace"
        );
        assert!(r("/api/v1/nodes/n1").contains("name: Some(\"n1\")"));
        assert!(r("/api/v1/watch/namespaces/a/secrets").contains("watch_prefix: true"));
        assert!(matches!(route("/apis"), Route::Apis));
        assert!(matches!(route("/nonsense"), Route::NotFound));
    }

    #[test]
    fn accept_negotiation() {
        assert_eq!(negotiate("").unwrap(), Format::Json);
        assert_eq!(negotiate("application/json").unwrap(), Format::Json);
        assert_eq!(
            negotiate("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json").unwrap(),
            Format::Table
        );
        assert_eq!(
            negotiate("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1").unwrap(),
            Format::Meta
        );
        assert_eq!(
            negotiate("application/vnd.kubernetes.protobuf, application/json").unwrap(),
            Format::Json
        );
        assert!(negotiate("application/vnd.kubernetes.protobuf").is_err());
        assert!(negotiate("application/json;as=Unknown;g=x;v=v1").is_err());
    }
}
