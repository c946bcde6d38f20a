//! One client connection of a listener: TLS termination for a target HTTPS proxy, then each
//! request routed by the URL map ([`route`]) and answered with a redirect, a 404, or the
//! response of a healthy backend (502 when there is none, or it fails).

use std::collections::hash_map::RandomState;
use std::convert::Infallible;
use std::hash::{BuildHasher, Hasher};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri, Version};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use super::backends::{self, Member};
use super::listen::ConnCtx;
use super::net::{self, BoxError, Wire};
use super::route::{self, Decision, Redirect};
use super::{Plane, pages};
use crate::json::Obj;
use crate::kinds::{Kind, parse_ref};
use crate::state::Shared;
use crate::store::Store;

/// What every response body of the data plane is.
type ProxyBody = BoxBody<Bytes, BoxError>;

/// A client that connects and never completes its TLS handshake is dropped after this long.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an HTTP/1 client connection may go without a request: Google's client HTTP
/// keepalive timeout, 610 s by default ("External Application Load Balancer overview",
/// <https://cloud.google.com/load-balancing/docs/https>, timeouts; "Request distribution for
/// external Application Load Balancers",
/// <https://cloud.google.com/load-balancing/docs/https/request-distribution>; the default of
/// `TargetHttpProxy.httpKeepAliveTimeoutSec`, which is not modelled). hyper runs its header-read timer from the moment a connection waits for a request
/// until the request's headers are in, so this one timer is both the idle timeout between
/// requests and the bound on a client that never finishes its headers.
const CLIENT_KEEPALIVE: Duration = Duration::from_secs(610);
/// `timeoutSec` of a backend service that has none (Compute's default).
const DEFAULT_TIMEOUT_SECS: u64 = 30;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_CLOUD_TRACE_CONTEXT: HeaderName = HeaderName::from_static("x-cloud-trace-context");
/// What Google's load balancers add to `Via`, on requests and responses.
const VIA_GOOGLE: HeaderValue = HeaderValue::from_static("1.1 google");

/// Serves one accepted connection: HTTP/1.1 (and HTTP/2: by ALPN over TLS, by prior knowledge
/// in the clear). An HTTP/1 connection waiting [`CLIENT_KEEPALIVE`] for a request (or for the
/// rest of its headers) is closed; so is a connection that sends nothing that long. HTTP/2
/// connections have no idle timeout here.
pub(super) async fn serve_connection(stream: TcpStream, peer: SocketAddr, ctx: Arc<ConnCtx>) {
    let _ = stream.set_nodelay(true);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(CLIENT_KEEPALIVE);
    let per_request = Arc::clone(&ctx);
    let service = service_fn(move |req| {
        let ctx = Arc::clone(&per_request);
        async move { Ok::<_, Infallible>(handle(req, peer, &ctx).await) }
    });
    match &ctx.tls {
        Some(acceptor) => {
            let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await else {
                return;
            };
            // The protocol is the one ALPN chose (HTTP/2 over TLS needs it, RFC 9113 §3.2), so
            // HTTP/1's timer runs from the start rather than after a guess from the first bytes.
            let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
            let builder = if h2 {
                builder.http2_only()
            } else {
                builder.http1_only()
            };
            let _ = builder.serve_connection(TokioIo::new(tls), service).await;
        }
        None => {
            // The version is told from the first bytes, before HTTP/1's timer runs: a client
            // that sends nothing is bounded here.
            let first = tokio::time::timeout(CLIENT_KEEPALIVE, stream.peek(&mut [0u8; 1])).await;
            if !matches!(first, Ok(Ok(n)) if n > 0) {
                return;
            }
            let _ = builder.serve_connection(TokioIo::new(stream), service).await;
        }
    }
}

/// One request: the forwarding rule, its proxy and its URL map as stored now, then the route.
async fn handle(req: Request<Incoming>, peer: SocketAddr, ctx: &ConnCtx) -> Response<ProxyBody> {
    let Some(shared) = ctx.shared.upgrade() else {
        return bad_gateway();
    };
    let Some(plane) = shared.dataplane.as_ref() else {
        return bad_gateway();
    };
    let scheme = if ctx.tls.is_some() { "https" } else { "http" };
    let host = request_host(&req, ctx.lb_ip);
    let url_map = {
        let st = shared.lock();
        url_map_of(&st.store, ctx)
    };
    let Some(url_map) = url_map else {
        return html(StatusCode::NOT_FOUND, pages::not_found(req.uri().path()));
    };
    let decision = route::route(
        &url_map,
        &route::Request {
            scheme,
            host: &host,
            path: req.uri().path(),
            query: req.uri().query(),
        },
    );
    match decision {
        Decision::Redirect(r) => redirect(&r, |p| plane.public_port(ctx.lb_ip, p)),
        Decision::NoRoute => html(StatusCode::NOT_FOUND, pages::not_found(req.uri().path())),
        Decision::Service(link) => forward(&shared, plane, ctx, &link, req, peer, scheme).await,
    }
}

/// The host a request names, for routing and redirects: its `Host` header, or the `:authority`
/// of an HTTP/2 request. None (HTTP/1.0 needs no `Host`), or not a host (`Host: a b`): the
/// forwarding rule's IP, the address the client reached, so that a redirect that keeps the host
/// names a place (not `https:///path`).
fn request_host<B>(req: &Request<B>, lb_ip: Ipv4Addr) -> String {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_string()))
        .filter(|h| is_host(h))
        .unwrap_or_else(|| lb_ip.to_string())
}

/// Whether `h` is a `host[:port]` (an authority without user information).
fn is_host(h: &str) -> bool {
    !h.is_empty() && !h.contains('@') && h.parse::<hyper::http::uri::Authority>().is_ok()
}

/// The URL map behind the listener's forwarding rule: rule → target proxy → `urlMap`.
fn url_map_of(store: &Store, ctx: &ConnCtx) -> Option<Obj> {
    let project = &ctx.rule.project;
    let link = |obj: &Obj, field: &str| {
        obj.get(field)
            .and_then(Value::as_str)
            .and_then(|l| parse_ref(l, project))
    };
    let rule = store.get(&ctx.rule)?;
    let proxy_key = link(&rule.obj, "target")?;
    if !matches!(proxy_key.kind, Kind::TargetHttpProxy | Kind::TargetHttpsProxy) {
        return None;
    }
    let proxy = store.get(&proxy_key)?;
    let map_key = link(&proxy.obj, "urlMap")?;
    store.get(&map_key).map(|e| e.obj.clone())
}

/// Where a request to `service` goes.
struct Pick {
    wire: Wire,
    timeout: Duration,
    addr: SocketAddrV4,
}

/// A healthy member of the backend service `link`, round robin over all of them (every group
/// alike: balancing modes and capacities other than a drained group are not modelled); `None`
/// when there is none (or the service's protocol is not HTTP, HTTPS or HTTP2).
fn pick(shared: &Shared, plane: &Plane, project: &str, link: &str) -> Option<Pick> {
    let service = parse_ref(link, project)?;
    let (wire, timeout, members) = {
        let st = shared.lock();
        let entry = st.store.get(&service)?;
        let wire = Wire::parse(
            entry
                .obj
                .get("protocol")
                .and_then(Value::as_str)
                .unwrap_or("HTTP"),
        )?;
        let secs = entry.obj.get("timeoutSec").and_then(Value::as_u64);
        let members: Vec<Member> = backends::members(&st.store, &service, &entry.obj)
            .into_iter()
            // The admin API's UNHEALTHY (instance or endpoint) wins over the probes.
            .filter(|m| !m.drained && !m.forced_down)
            .collect();
        (
            wire,
            Duration::from_secs(secs.unwrap_or(DEFAULT_TIMEOUT_SECS)),
            members,
        )
    };
    let healthy: Vec<Member> = {
        let health = plane.health();
        members
            .into_iter()
            .filter(|m| health.is_healthy(&service, &m.instance, &m.ip, m.port))
            .collect()
    };
    if healthy.is_empty() {
        return None;
    }
    let m = healthy.get(plane.next_index(&service, healthy.len()))?;
    let ip = net::loopback(&m.ip).ok()?;
    Some(Pick {
        wire,
        timeout,
        addr: SocketAddrV4::new(ip, m.port),
    })
}

/// Sends the request to a healthy backend and streams its answer back; 502 without a healthy
/// backend (no connection is attempted), when the backend fails, or when `timeoutSec` passes
/// before its response headers (a body still streaming then is cut).
async fn forward(
    shared: &Shared,
    plane: &Plane,
    ctx: &ConnCtx,
    link: &str,
    req: Request<Incoming>,
    peer: SocketAddr,
    scheme: &str,
) -> Response<ProxyBody> {
    let Some(pick) = pick(shared, plane, &ctx.rule.project, link) else {
        return bad_gateway();
    };
    let deadline = Instant::now() + pick.timeout;
    let upstream = match upstream_request(req, peer, ctx.lb_ip, scheme, &pick) {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!("data plane: cannot forward to {}: {e}", pick.addr);
            return bad_gateway();
        }
    };
    let sent = tokio::time::timeout_at(
        deadline,
        net::send(&plane.clients, pick.wire, pick.addr, upstream),
    )
    .await;
    let resp = match sent {
        Ok(Ok(resp)) => resp,
        Ok(Err(e)) => {
            tracing::debug!("data plane: backend {}: {e}", pick.addr);
            return bad_gateway();
        }
        Err(_) => {
            tracing::debug!("data plane: backend {} timed out", pick.addr);
            return bad_gateway();
        }
    };
    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.append(header::VIA, VIA_GOOGLE);
    let body = DeadlineBody {
        inner: body,
        deadline: Box::pin(tokio::time::sleep_until(deadline)),
    };
    Response::from_parts(parts, body.boxed())
}

/// The request as the backend gets it: `Host` and path as sent, hop-by-hop headers dropped,
/// and the headers Google's load balancers add. A request without a host (HTTP/1.0 needs none)
/// gets the forwarding rule's IP: what reaches the backend is HTTP/1.1, which must carry one.
fn upstream_request<B>(
    req: Request<B>,
    peer: SocketAddr,
    lb_ip: Ipv4Addr,
    scheme: &str,
    pick: &Pick,
) -> Result<Request<B>, hyper::http::Error> {
    let (mut parts, body) = req.into_parts();
    let host = parts
        .headers
        .get(header::HOST)
        .cloned()
        .or_else(|| {
            parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        })
        .or_else(|| HeaderValue::from_str(&lb_ip.to_string()).ok());
    strip_hop_by_hop(&mut parts.headers);
    let headers = &mut parts.headers;
    // Google's format ("External Application Load Balancer overview", X-Forwarded-For header):
    // `<client-ip>,<load-balancer-ip>`, after `<supplied-value>,` when the client sent one
    // (several header lines are one list, RFC 9110 §5.3: joined as such).
    let supplied: Vec<&str> = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let mut xff = supplied.join(", ");
    if !xff.is_empty() {
        xff.push(',');
    }
    xff.push_str(&format!("{},{lb_ip}", peer.ip()));
    headers.insert(X_FORWARDED_FOR, HeaderValue::from_str(&xff)?);
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_str(scheme)?);
    headers.append(header::VIA, VIA_GOOGLE);
    if !headers.contains_key(&X_CLOUD_TRACE_CONTEXT) {
        headers.insert(X_CLOUD_TRACE_CONTEXT, HeaderValue::from_str(&trace_context())?);
    }
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    match pick.wire {
        Wire::Http2 => {
            // HTTP/2 carries the host as `:authority`.
            let fallback = lb_ip.to_string();
            let authority = host.as_ref().and_then(|h| h.to_str().ok()).unwrap_or(&fallback);
            parts.uri = Uri::builder()
                .scheme("https")
                .authority(authority)
                .path_and_query(path)
                .build()?;
            parts.version = Version::HTTP_2;
            parts.headers.remove(header::HOST);
        }
        Wire::Http | Wire::Https => {
            parts.uri = Uri::try_from(path)?;
            parts.version = Version::HTTP_11;
            if let Some(h) = host {
                parts.headers.insert(header::HOST, h);
            }
        }
    }
    Ok(Request::from_parts(parts, body))
}

/// Drops the headers of one hop (RFC 9110 §7.6.1), and those `Connection` names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        headers.remove(n);
    }
    for n in [
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(n);
    }
}

/// `TRACE_ID/SPAN_ID;o=0`: a 32-hex-digit trace id, a decimal span id, not sampled.
fn trace_context() -> String {
    format!("{:016x}{:016x}/{};o=0", random_u64(), random_u64(), random_u64())
}

/// A random number from the standard library's randomly keyed hasher.
fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

/// A URL-map redirect: its status, `Location` (ports through the privileged-port mapping, so
/// that following it reaches this fake), and Google's small HTML body.
fn redirect(r: &Redirect, map_port: impl Fn(u16) -> u16) -> Response<ProxyBody> {
    let location = r.location(map_port);
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::MOVED_PERMANENTLY);
    let mut resp = html(status, pages::redirect(status.as_u16(), &location));
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

fn bad_gateway() -> Response<ProxyBody> {
    html(StatusCode::BAD_GATEWAY, pages::SERVER_ERROR_502.to_string())
}

fn html(status: StatusCode, body: String) -> Response<ProxyBody> {
    let mut resp = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed(),
    );
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=UTF-8"),
    );
    resp
}

/// A backend's response body, cut when the backend service's `timeoutSec` (counted from the
/// request) passes.
struct DeadlineBody {
    inner: Incoming,
    deadline: Pin<Box<Sleep>>,
}

impl Body for DeadlineBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err("the backend service's timeoutSec passed".into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_go() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("close, x-private"));
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("5"));
        h.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        let left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["x-kept"]);
    }

    fn pick(wire: Wire) -> Pick {
        Pick {
            wire,
            timeout: Duration::from_secs(1),
            addr: SocketAddrV4::new(Ipv4Addr::new(127, 9, 9, 1), 8080),
        }
    }

    #[test]
    fn the_backend_gets_googles_headers_and_the_request_as_sent() {
        let req = Request::get("/a/b?c=d")
            .header(header::HOST, "shop.example.com")
            .header("x-forwarded-for", "1.2.3.4")
            .header(header::CONNECTION, "keep-alive")
            .body(())
            .expect("request");
        let peer = SocketAddr::from(([127, 0, 0, 1], 50000));
        let lb = Ipv4Addr::new(127, 5, 6, 1);
        let up = upstream_request(req, peer, lb, "https", &pick(Wire::Http)).expect("forwardable");
        let h = |n: &str| {
            up.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        assert_eq!(up.uri(), "/a/b?c=d");
        assert_eq!(h("host").as_deref(), Some("shop.example.com"));
        assert_eq!(
            h("x-forwarded-for").as_deref(),
            Some("1.2.3.4,127.0.0.1,127.5.6.1")
        );
        assert_eq!(h("x-forwarded-proto").as_deref(), Some("https"));
        assert_eq!(h("via").as_deref(), Some("1.1 google"));
        assert!(h("x-cloud-trace-context").is_some());
        assert_eq!(h("connection"), None);

        // A trace context the client sent is kept; HTTP/2 carries the host as the authority.
        let req = Request::get("/x")
            .header(header::HOST, "h2.example.com")
            .header("x-cloud-trace-context", "abc/1;o=1")
            .body(())
            .expect("request");
        let up = upstream_request(req, peer, lb, "http", &pick(Wire::Http2)).expect("forwardable");
        assert_eq!(up.uri(), "https://h2.example.com/x");
        assert_eq!(up.version(), Version::HTTP_2);
        assert!(up.headers().get(header::HOST).is_none());
        assert_eq!(
            up.headers()
                .get("x-cloud-trace-context")
                .and_then(|v| v.to_str().ok()),
            Some("abc/1;o=1")
        );
    }

    #[test]
    fn a_request_without_a_host_is_for_the_rules_ip() {
        let lb = Ipv4Addr::new(127, 5, 6, 1);
        let host = |h: Option<&str>| {
            let mut req = Request::get("/p");
            if let Some(h) = h {
                req = req.header(header::HOST, h);
            }
            request_host(&req.body(()).expect("request"), lb)
        };
        assert_eq!(host(Some("shop.example.com:8080")), "shop.example.com:8080");
        for bad in [None, Some(""), Some("a b"), Some("user@host"), Some("a/b")] {
            assert_eq!(host(bad), "127.5.6.1", "{bad:?}");
        }
        // HTTP/2: the authority.
        let req = Request::get("https://h2.example.com/p")
            .body(())
            .expect("request");
        assert_eq!(request_host(&req, lb), "h2.example.com");

        // The backend gets the IP as `Host` (HTTP/1.1 must carry one), or as `:authority`.
        let peer = SocketAddr::from(([127, 0, 0, 1], 50000));
        for wire in [Wire::Http, Wire::Http2] {
            let req = Request::get("/p")
                .version(Version::HTTP_10)
                .body(())
                .expect("request");
            let up = upstream_request(req, peer, lb, "http", &pick(wire)).expect("forwardable");
            let sent = match wire {
                Wire::Http2 => up.uri().authority().map(|a| a.to_string()),
                _ => up
                    .headers()
                    .get(header::HOST)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
            };
            assert_eq!(sent.as_deref(), Some("127.5.6.1"), "{wire:?}");
        }
    }

    #[test]
    fn trace_contexts_have_googles_shape() {
        let t = trace_context();
        let (trace, rest) = t.split_once('/').expect("slash");
        assert_eq!(trace.len(), 32);
        assert!(trace.bytes().all(|b| b.is_ascii_hexdigit()));
        let (span, options) = rest.split_once(';').expect("options");
        assert!(span.parse::<u64>().is_ok());
        assert_eq!(options, "o=0");
        assert_ne!(trace_context(), t);
    }
}
