//! The Compute REST client: authentication, rate limits, retries, and waiting on operations.
//!
//! Every mutation returns an Operation; [`Compute::mutate`] returns only once it is DONE, and
//! turns a failed operation into an [`ApiError`] like a synchronous one. Transient failures
//! (no response, 5xx, rate limits) are retried with exponential backoff and jitter: a request
//! that got no answer is re-sent with the same `requestId`, which the API uses to recognise a
//! duplicate; a failed operation is re-tried as a new request.

use super::api_error::ApiError;
use super::limiter::{RateLimits, TokenBucket};
use super::links::{Links, zone_of};
use super::token::TokenSource;
use super::wire::{ListPage, Operation};
use backon::{ExponentialBuilder, Retryable};
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How hard to retry.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// Retries after the first attempt.
    pub max_retries: usize,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            min_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(16),
            max_retries: 6,
        }
    }
}

/// The class of a call, for rate limiting and for the observer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallClass {
    Read,
    List,
    Mutation,
    OperationPoll,
}

impl CallClass {
    pub fn as_str(self) -> &'static str {
        match self {
            CallClass::Read => "read",
            CallClass::List => "list",
            CallClass::Mutation => "mutation",
            CallClass::OperationPoll => "operation-poll",
        }
    }
}

/// One finished HTTP call, reported to the observer (for metrics).
#[derive(Clone, Debug)]
pub struct CallRecord {
    /// `urlMaps.insert`, `forwardingRules.setTarget`, `operations.wait`…
    pub operation: String,
    pub class: CallClass,
    /// `ok`, or the failure's category.
    pub result: &'static str,
    pub duration: Duration,
}

/// Receives a [`CallRecord`] for every HTTP call.
pub type CallObserver = Arc<dyn Fn(&CallRecord) + Send + Sync>;

/// Settings of the client.
#[derive(Clone)]
pub struct ComputeSettings {
    pub rate_limits: RateLimits,
    pub retry: RetryPolicy,
    /// Per-request timeout (except operation waits, which the server holds open longer).
    pub request_timeout: Duration,
    /// Give up waiting on one operation after this long.
    pub operation_timeout: Duration,
    /// Log mutations instead of sending them.
    pub dry_run: bool,
    pub observer: Option<CallObserver>,
    /// Checked immediately before every mutation is sent (each retry too): a replica that may no
    /// longer write sends nothing.
    pub fence: crate::WriteFence,
    /// Sent as `User-Agent`, so that the cloud's audit logs tell replicas apart; default
    /// `cloud-lb-controller/VERSION`.
    pub user_agent: Option<String>,
}

impl Default for ComputeSettings {
    fn default() -> Self {
        Self {
            rate_limits: RateLimits::default(),
            retry: RetryPolicy::default(),
            request_timeout: Duration::from_secs(30),
            operation_timeout: Duration::from_secs(600),
            dry_run: false,
            observer: None,
            fence: crate::WriteFence::open(),
            user_agent: None,
        }
    }
}

/// The longest the API holds an operation `wait` open, plus slack.
const WAIT_REQUEST_TIMEOUT: Duration = Duration::from_secs(150);
const PAGE_SIZE: &str = "500";
/// The reason given to an operation we stopped waiting for.
const OPERATION_TIMEOUT: &str = "operationTimeout";

/// A Compute API client for one project.
pub struct Compute {
    http: reqwest::Client,
    links: Links,
    tokens: Arc<dyn TokenSource>,
    reads: TokenBucket,
    mutations: TokenBucket,
    polls: TokenBucket,
    health: TokenBucket,
    settings: ComputeSettings,
}

impl Compute {
    pub fn new(
        links: Links,
        tokens: Arc<dyn TokenSource>,
        settings: ComputeSettings,
    ) -> Result<Self, crate::Error> {
        let http = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .user_agent(
                settings
                    .user_agent
                    .clone()
                    .unwrap_or_else(|| concat!("cloud-lb-controller/", env!("CARGO_PKG_VERSION")).to_owned()),
            )
            .build()
            .map_err(|e| crate::Error::bug(format!("building the HTTP client: {e}")).with_source(e))?;
        Ok(Self {
            http,
            links,
            tokens,
            reads: TokenBucket::new(settings.rate_limits.reads),
            mutations: TokenBucket::new(settings.rate_limits.mutations),
            polls: TokenBucket::new(settings.rate_limits.operation_polls),
            health: TokenBucket::new(settings.rate_limits.health_queries),
            settings,
        })
    }

    pub fn links(&self) -> &Links {
        &self.links
    }

    pub fn dry_run(&self) -> bool {
        self.settings.dry_run
    }

    /// GETs one resource; `None` when it does not exist.
    pub async fn get<T: DeserializeOwned>(&self, op: &str, url: &str) -> Result<Option<T>, ApiError> {
        match self
            .call(op, CallClass::Read, Method::GET, url, &[], None::<&()>, None)
            .await
        {
            Ok(body) => decode(&body).map(Some),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A health query (`backendServices.getHealth`): a POST that changes nothing, so it is a
    /// read (metered, retried and never fenced like one), held to
    /// [`RateLimits::health_queries`] as well.
    pub async fn health_query<T: DeserializeOwned, B: Serialize + Sync>(
        &self,
        op: &str,
        url: &str,
        body: &B,
    ) -> Result<T, ApiError> {
        self.health.acquire().await;
        let body = self
            .call(op, CallClass::Read, Method::POST, url, &[], Some(body), None)
            .await?;
        decode(&body)
    }

    /// Lists a collection, every page, optionally filtered (`name eq REGEX`).
    pub async fn list<T: DeserializeOwned>(
        &self,
        op: &str,
        url: &str,
        filter: Option<&str>,
    ) -> Result<Vec<T>, ApiError> {
        self.pages(op, Method::GET, url, filter, None::<&()>).await
    }

    /// An aggregated list (`projects/P/aggregated/networkEndpointGroups`): the items of every
    /// scope, every page, optionally filtered; `field` is the key of each scope's items.
    pub async fn aggregated<T: DeserializeOwned>(
        &self,
        op: &str,
        url: &str,
        filter: Option<&str>,
        field: &str,
    ) -> Result<Vec<T>, ApiError> {
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query: Vec<(&str, &str)> = vec![("maxResults", PAGE_SIZE)];
            if let Some(f) = filter {
                query.push(("filter", f));
            }
            if let Some(t) = token.as_deref() {
                query.push(("pageToken", t));
            }
            let body = self
                .call(op, CallClass::List, Method::GET, url, &query, None::<&()>, None)
                .await?;
            let page: AggregatedPage = decode(&body)?;
            for scoped in page.items.into_values() {
                if let Some(list) = scoped.get(field) {
                    let list: Vec<T> = serde_json::from_value(list.clone()).map_err(|e| ApiError {
                        status: 200,
                        reason: "unexpectedResponse".into(),
                        message: format!("cannot read the response: {e}"),
                        from_operation: false,
                        retry_after: None,
                    })?;
                    items.extend(list);
                }
            }
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(next) => token = Some(next),
                None => return Ok(items),
            }
        }
    }

    /// A list served by POST (`instanceGroups.listInstances`).
    pub async fn post_list<T: DeserializeOwned, B: Serialize + Sync>(
        &self,
        op: &str,
        url: &str,
        body: &B,
    ) -> Result<Vec<T>, ApiError> {
        self.pages(op, Method::POST, url, None, Some(body)).await
    }

    async fn pages<T: DeserializeOwned, B: Serialize + Sync>(
        &self,
        op: &str,
        method: Method,
        url: &str,
        filter: Option<&str>,
        body: Option<&B>,
    ) -> Result<Vec<T>, ApiError> {
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query: Vec<(&str, &str)> = vec![("maxResults", PAGE_SIZE)];
            if let Some(f) = filter {
                query.push(("filter", f));
            }
            if let Some(t) = token.as_deref() {
                query.push(("pageToken", t));
            }
            let body = self
                .call(op, CallClass::List, method.clone(), url, &query, body, None)
                .await?;
            let page: ListPage<T> = decode(&body)?;
            items.extend(page.items);
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(next) => token = Some(next),
                None => return Ok(items),
            }
        }
    }

    /// Sends a mutation and waits until its operation is DONE.
    pub async fn mutate<B: Serialize + Sync>(
        &self,
        op: &str,
        method: Method,
        url: &str,
        body: Option<&B>,
    ) -> Result<(), ApiError> {
        if self.settings.dry_run {
            tracing::info!(operation = op, url, "dry run: mutation not sent");
            return Ok(());
        }
        let attempt = || async {
            let request_id = request_id();
            let query = [("requestId", request_id.as_str())];
            let body = self
                .call(op, CallClass::Mutation, method.clone(), url, &query, body, None)
                .await?;
            let operation: Operation = decode(&body)?;
            self.wait(op, operation).await
        };
        // The request itself was retried inside; here only a failed operation is tried again, as a
        // new request. An operation that never finished is not: it would only hang again.
        attempt
            .retry(self.backoff())
            .when(|e: &ApiError| e.from_operation && e.reason != OPERATION_TIMEOUT && is_retryable(e))
            .await
    }

    /// Polls `operation` with `wait` until it is DONE; its error, if it failed.
    async fn wait(&self, op: &str, mut operation: Operation) -> Result<(), ApiError> {
        let deadline = Instant::now() + self.settings.operation_timeout;
        let wait_op = format!("{op}:wait");
        loop {
            if operation.status == "DONE" {
                return match ApiError::from_operation(&operation) {
                    Some(e) => Err(e),
                    None => Ok(()),
                };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || operation.name.is_empty() {
                return Err(ApiError {
                    status: 504,
                    reason: OPERATION_TIMEOUT.to_owned(),
                    message: format!(
                        "operation {} did not finish within {:?}",
                        operation.name, self.settings.operation_timeout
                    ),
                    from_operation: true,
                    retry_after: None,
                });
            }
            let url = self.links.operation_wait_url(
                operation.self_link.as_deref(),
                operation.zone.as_deref().and_then(zone_of),
                &operation.name,
            );
            let timeout = left.min(WAIT_REQUEST_TIMEOUT);
            let body = self
                .call(
                    &wait_op,
                    CallClass::OperationPoll,
                    Method::POST,
                    &url,
                    &[],
                    None::<&()>,
                    Some(timeout),
                )
                .await;
            // The request may have taken effect; a retry as a new request meets an "already
            // exists" or "not found" that the callers handle.
            operation = decode(&body.map_err(|e| ApiError {
                from_operation: true,
                ..e
            })?)?;
        }
    }

    /// One HTTP exchange with retries of transient failures; the body of a 2xx answer.
    #[allow(clippy::too_many_arguments)]
    async fn call<B: Serialize + Sync>(
        &self,
        op: &str,
        class: CallClass,
        method: Method,
        url: &str,
        query: &[(&str, &str)],
        body: Option<&B>,
        timeout: Option<Duration>,
    ) -> Result<Vec<u8>, ApiError> {
        let once = || async {
            let bucket = match class {
                CallClass::Read | CallClass::List => &self.reads,
                CallClass::Mutation => &self.mutations,
                CallClass::OperationPoll => &self.polls,
            };
            bucket.acquire().await;
            let started = Instant::now();
            let fenced = (class == CallClass::Mutation).then_some((&self.settings.fence, op));
            let result = self.send(method.clone(), url, query, body, timeout, fenced).await;
            if let Some(observer) = &self.settings.observer {
                let result = match &result {
                    Ok(_) => "ok",
                    Err(e) => e.category().as_str(),
                };
                observer(&CallRecord {
                    operation: op.to_owned(),
                    class,
                    result,
                    duration: started.elapsed(),
                });
            }
            result
        };
        once.retry(self.backoff())
            .when(is_retryable)
            .adjust(|e: &ApiError, delay| e.retry_after.or(delay))
            .notify(|e: &ApiError, delay| tracing::debug!(operation = op, error = %e, ?delay, "retrying"))
            .await
    }

    async fn send<B: Serialize + Sync>(
        &self,
        method: Method,
        url: &str,
        query: &[(&str, &str)],
        body: Option<&B>,
        timeout: Option<Duration>,
        fence: Option<(&crate::WriteFence, &str)>,
    ) -> Result<Vec<u8>, ApiError> {
        let token = self
            .tokens
            .token()
            .await
            .map_err(|e| ApiError::transport(e.message))?;
        let mut request = self.http.request(method, url).bearer_auth(token).query(query);
        if let Some(body) = body {
            request = request.json(body);
        }
        let mut timeout = timeout;
        // A write is checked last thing before it goes, and may not outlive the permission.
        if let Some((fence, op)) = fence {
            match fence.remaining() {
                Some(left) if left.is_zero() => {
                    return Err(ApiError::fenced(format!(
                        "{op}: not sent, this replica no longer holds the leader lease"
                    )));
                }
                Some(left) => timeout = Some(timeout.unwrap_or(self.settings.request_timeout).min(left)),
                None => {}
            }
        }
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        let response = request
            .send()
            .await
            .map_err(|e| ApiError::transport(transport_message(&e)))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ApiError::transport(transport_message(&e)))?;
        if status.is_success() {
            Ok(bytes.to_vec())
        } else {
            Err(ApiError::from_response(status.as_u16(), &bytes, retry_after))
        }
    }

    fn backoff(&self) -> ExponentialBuilder {
        let retry = self.settings.retry;
        ExponentialBuilder::default()
            .with_min_delay(retry.min_delay)
            .with_max_delay(retry.max_delay)
            .with_max_times(retry.max_retries)
            .with_jitter()
    }
}

/// A page of an aggregated list: scope (`zones/Z`) → `{<field>: [...]}` or a warning.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct AggregatedPage {
    #[serde(default)]
    items: std::collections::BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    next_page_token: Option<String>,
}

fn is_retryable(e: &ApiError) -> bool {
    e.is_transient() || e.is_rate_limited()
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError {
        status: 200,
        reason: "unexpectedResponse".into(),
        message: format!("cannot read the response: {e}"),
        from_operation: false,
        retry_after: None,
    })
}

/// reqwest's message and its cause chain.
fn transport_message(e: &reqwest::Error) -> String {
    let mut message = if e.is_timeout() {
        "request timed out".to_owned()
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

/// A random UUID (version 4 form) for the API's request deduplication.
fn request_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let random = |salt: u64| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(n);
        h.write_u64(salt);
        h.finish()
    };
    let (a, b) = (random(1), random(2));
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_uuid_shaped_and_distinct() {
        let a = request_id();
        let b = request_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'4');
    }
}
