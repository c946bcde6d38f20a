//! What the data-plane tests share: a fake with the data plane on, tiny backends on loopback,
//! clients for the load balancer, and builders of load balancers through the REST API.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use fake_gce::{Config, DataPlane, InstanceSeed};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HOST, HeaderMap};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use reqwest::Method;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::common::{Api, ZONE, config};

/// How long a condition may take to come true on a busy machine.
pub(crate) const PATIENCE: Duration = Duration::from_secs(60);
/// The probe interval of these tests' fakes.
pub(crate) const PROBE: Duration = Duration::from_millis(200);

/// Polls `check` until it returns `Some`, or fails the test after [`PATIENCE`].
pub(crate) async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A fake with the data plane on, probing every [`PROBE`].
pub(crate) async fn start() -> Api {
    Api::with(Config {
        data_plane: Some(DataPlane {
            probe_interval: Some(PROBE),
            ..DataPlane::default()
        }),
        ..config()
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// Backends: tiny HTTP servers on instance addresses.

/// A backend: answers `/healthz` (and every path under it) with 200, 503 once told to be
/// unhealthy, and every other path with 200 and a JSON echo of what it got. Some paths answer
/// late: `/slow` a minute late (longer than any `timeoutSec` here), `/healthz/slow` after
/// [`SLOW_HEALTH`], `/healthz/never` after an hour.
pub(crate) struct Backend {
    state: Arc<BackendState>,
    task: JoinHandle<()>,
}

/// How long `/healthz/slow` takes: longer than [`PROBE`], far shorter than a `timeoutSec`.
pub(crate) const SLOW_HEALTH: Duration = Duration::from_millis(600);

#[derive(Default)]
struct BackendState {
    unhealthy: AtomicBool,
    /// Requests other than health checks.
    hits: AtomicUsize,
    /// Health checks being answered now, and the most at once so far.
    checking: AtomicUsize,
    most_checking: AtomicUsize,
}

/// Counts a health check in `checking` while it lives (also when the prober gives up on it).
struct Checking(Arc<BackendState>);

impl Checking {
    fn new(state: &Arc<BackendState>) -> Checking {
        let now = state.checking.fetch_add(1, Ordering::SeqCst) + 1;
        state.most_checking.fetch_max(now, Ordering::SeqCst);
        Checking(Arc::clone(state))
    }
}

impl Drop for Checking {
    fn drop(&mut self) {
        self.0.checking.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Backend {
    pub(crate) async fn start(addr: SocketAddr, name: &'static str) -> Backend {
        Self::serve(addr, name, None).await
    }

    /// Over TLS (a self-signed certificate), HTTP/1.1 or HTTP/2 by ALPN.
    pub(crate) async fn start_tls(addr: SocketAddr, name: &'static str) -> Backend {
        let ck = rcgen::generate_simple_self_signed(vec!["backend.internal".to_string()]).expect("cert");
        let key = rustls::pki_types::PrivateKeyDer::try_from(ck.signing_key.serialize_der()).expect("key");
        let mut config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![ck.cert.der().clone()], key)
            .expect("server config");
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Self::serve(addr, name, Some(TlsAcceptor::from(Arc::new(config)))).await
    }

    async fn serve(addr: SocketAddr, name: &'static str, tls: Option<TlsAcceptor>) -> Backend {
        let listener = TcpListener::bind(addr).await.expect("backend binds");
        let state = Arc::new(BackendState::default());
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            // Connections are tasks of this one: stopping the backend ends them too.
            let mut conns = JoinSet::new();
            loop {
                while conns.try_join_next().is_some() {}
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (state, tls) = (Arc::clone(&shared), tls.clone());
                conns.spawn(async move {
                    let svc = service_fn(move |req| {
                        let path = req.uri().path();
                        let delay = match path {
                            "/slow" => Some(Duration::from_secs(60)),
                            "/healthz/slow" => Some(SLOW_HEALTH),
                            "/healthz/never" => Some(Duration::from_secs(3600)),
                            _ => None,
                        };
                        let checking = path.starts_with("/healthz").then(|| Checking::new(&state));
                        let reply = answer(&req, name, &state);
                        async move {
                            if let Some(d) = delay {
                                tokio::time::sleep(d).await;
                            }
                            drop(checking);
                            Ok::<_, std::convert::Infallible>(reply)
                        }
                    });
                    let builder = auto::Builder::new(TokioExecutor::new());
                    match tls {
                        Some(acceptor) => {
                            if let Ok(s) = acceptor.accept(stream).await {
                                let _ = builder.serve_connection(TokioIo::new(s), svc).await;
                            }
                        }
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                        }
                    }
                });
            }
        });
        Backend { state, task }
    }

    pub(crate) fn set_healthy(&self, healthy: bool) {
        self.state.unhealthy.store(!healthy, Ordering::SeqCst);
    }

    pub(crate) fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }

    /// The most health checks this backend was answering at once.
    pub(crate) fn most_checks_at_once(&self) -> usize {
        self.state.most_checking.load(Ordering::SeqCst)
    }

    /// Stops listening (and drops its connections) before returning.
    pub(crate) async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

fn answer(req: &Request<Incoming>, name: &str, state: &BackendState) -> Response<Full<Bytes>> {
    if req.uri().path().starts_with("/healthz") {
        let status = if state.unhealthy.load(Ordering::SeqCst) {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::OK
        };
        let mut r = Response::new(Full::new(Bytes::from_static(b"ok")));
        *r.status_mut() = status;
        return r;
    }
    state.hits.fetch_add(1, Ordering::SeqCst);
    let header = |n: &str| {
        req.headers()
            .get_all(n)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let host = match req.uri().authority() {
        Some(a) => a.to_string(),
        None => header("host"),
    };
    let body = json!({
        "backend": name,
        "host": host,
        "path": req.uri().path_and_query().map(|p| p.as_str()),
        "version": format!("{:?}", req.version()),
        "xff": header("x-forwarded-for"),
        "proto": header("x-forwarded-proto"),
        "via": header("via"),
        "trace": header("x-cloud-trace-context"),
    });
    Response::new(Full::new(Bytes::from(body.to_string())))
}

// ---------------------------------------------------------------------------------------------
// Clients.

/// An answer of the load balancer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// The backend that answered.
    pub(crate) fn backend(&self) -> String {
        self.json()["backend"].as_str().unwrap_or_default().to_string()
    }
}

/// Connects to `addr`, from `from` when given (so that `X-Forwarded-For` is known).
pub(crate) async fn connect(addr: SocketAddr, from: Option<Ipv4Addr>) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    if let Some(ip) = from {
        socket.bind(SocketAddr::from((ip, 0)))?;
    }
    socket.connect(addr).await
}

/// `GET path` with `Host: host` over a new connection.
pub(crate) async fn get(addr: SocketAddr, host: &str, path: &str) -> Reply {
    get_from(addr, None, host, path).await
}

/// `GET path` until it answers 200 (a healthy backend may have missed probes on a busy machine).
pub(crate) async fn get_ok(addr: SocketAddr, from: Option<Ipv4Addr>, host: &str, path: &str) -> Reply {
    eventually(&format!("200 for {host}{path}"), || async {
        let r = get_from(addr, from, host, path).await;
        (r.status == 200).then_some(r)
    })
    .await
}

async fn get_from(addr: SocketAddr, from: Option<Ipv4Addr>, host: &str, path: &str) -> Reply {
    let stream = connect(addr, from).await.expect("the load balancer accepts");
    exchange(TokioIo::new(stream), host, path).await
}

async fn exchange<IO>(io: IO, host: &str, path: &str) -> Reply
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .expect("HTTP handshake");
    tokio::spawn(conn);
    let req = Request::get(path)
        .header(HOST, host)
        .body(Empty::<Bytes>::new())
        .expect("request");
    reply(sender.send_request(req).await.expect("an answer")).await
}

/// Reads a whole answer.
async fn reply(resp: Response<Incoming>) -> Reply {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// Accepts any certificate: the tests look at which one was presented.
#[derive(Debug)]
struct AnyCert;

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Sends `request` as written (raw bytes, for requests a client library would not send) on a new
/// connection and reads the answer until the load balancer closes (`Connection: close`, or
/// HTTP/1.0).
pub(crate) async fn raw(addr: SocketAddr, request: &str) -> Reply {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = connect(addr, None).await.expect("the load balancer accepts");
    stream.write_all(request.as_bytes()).await.expect("sent");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("an answer");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {answer}"));
    let mut headers = HeaderMap::new();
    for line in lines {
        if let Some((name, value)) = line.split_once(':')
            && let (Ok(n), Ok(v)) = (
                hyper::header::HeaderName::from_bytes(name.trim().as_bytes()),
                hyper::header::HeaderValue::from_str(value.trim()),
            )
        {
            headers.append(n, v);
        }
    }
    Reply {
        status,
        headers,
        body: body.to_string(),
    }
}

/// A TLS connection to `addr` that accepts any certificate, offering `alpn`; `sni`: the server
/// name to send (none: the address, which sends no SNI).
async fn tls_connect(
    addr: SocketAddr,
    sni: Option<&str>,
    alpn: &[u8],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut config = rustls::ClientConfig::builder()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert))
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let name = match sni {
        Some(s) => ServerName::try_from(s.to_string()).expect("DNS name"),
        None => ServerName::IpAddress(addr.ip().into()),
    };
    let stream = connect(addr, None).await.expect("the load balancer accepts");
    TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .expect("TLS handshake")
}

/// A TLS handshake with `sni` (none: the address, which sends no SNI), then `GET path`; returns
/// the answer and the leaf certificate presented.
pub(crate) async fn tls_get(addr: SocketAddr, sni: Option<&str>, host: &str, path: &str) -> (Reply, Vec<u8>) {
    let tls = tls_connect(addr, sni, b"http/1.1").await;
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .expect("a certificate");
    (exchange(TokioIo::new(tls), host, path).await, leaf)
}

/// `GET https://host/path` over HTTP/2 (TLS with SNI `host`, ALPN `h2`).
pub(crate) async fn h2_get(addr: SocketAddr, host: &str, path: &str) -> Reply {
    let tls = tls_connect(addr, Some(host), b"h2").await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
        .await
        .expect("HTTP/2 handshake");
    tokio::spawn(conn);
    let req = Request::get(format!("https://{host}{path}"))
        .body(Empty::<Bytes>::new())
        .expect("request");
    reply(sender.send_request(req).await.expect("an answer")).await
}

// ---------------------------------------------------------------------------------------------
// Building load balancers through the API.

/// Seeds instance `name` at `ip`.
pub(crate) fn node(api: &Api, name: &str, ip: Ipv4Addr) -> String {
    api.gce
        .seed_instance_with(&InstanceSeed {
            ip: Some(ip.to_string()),
            ..InstanceSeed::new(ZONE, name)
        })
        .expect("seeded")
}

/// An HTTP health check of `/healthz` on the serving port, HEALTHY after one success and
/// UNHEALTHY after ten failures, with `extra` fields merged in.
pub(crate) async fn health_check(api: &Api, name: &str, extra: Value) -> String {
    let mut body = json!({
        "name": name,
        "type": "HTTP",
        "checkIntervalSec": 1,
        "timeoutSec": 1,
        "healthyThreshold": 1,
        "unhealthyThreshold": 10,
        "httpHealthCheck": {"portSpecification": "USE_SERVING_PORT", "requestPath": "/healthz"},
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    api.create("global/healthChecks", body).await["selfLink"]
        .as_str()
        .expect("link")
        .to_string()
}

/// A health check of type `ty` (settings in `field`) of `/healthz` on the serving port.
pub(crate) async fn typed_health_check(api: &Api, name: &str, ty: &str, field: &str) -> String {
    let mut body = json!({"name": name, "type": ty, "checkIntervalSec": 1, "timeoutSec": 1,
                          "healthyThreshold": 1, "unhealthyThreshold": 10});
    body[field] = json!({"portSpecification": "USE_SERVING_PORT", "requestPath": "/healthz"});
    api.create("global/healthChecks", body).await["selfLink"]
        .as_str()
        .expect("link")
        .to_string()
}

/// An instance group holding `instances`, its `http` named port at `port`.
pub(crate) async fn group(api: &Api, name: &str, instances: &[String], port: u16) -> String {
    let g = api
        .create(
            &format!("zones/{ZONE}/instanceGroups"),
            json!({"name": name, "namedPorts": [{"name": "http", "port": port}]}),
        )
        .await;
    let items: Vec<Value> = instances.iter().map(|i| json!({"instance": i})).collect();
    api.done(
        Method::POST,
        &format!("zones/{ZONE}/instanceGroups/{name}/addInstances"),
        Some(json!({"instances": items})),
    )
    .await;
    g["selfLink"].as_str().expect("link").to_string()
}

pub(crate) async fn backend_service(
    api: &Api,
    name: &str,
    groups: &[&str],
    hc: &str,
    protocol: &str,
) -> String {
    let backends: Vec<Value> = groups.iter().map(|g| json!({"group": g})).collect();
    api.create(
        "global/backendServices",
        json!({"name": name, "protocol": protocol, "healthChecks": [hc], "backends": backends, "timeoutSec": 10}),
    )
    .await["selfLink"]
        .as_str()
        .expect("link")
        .to_string()
}

pub(crate) async fn url_map(api: &Api, body: Value) -> String {
    api.create("global/urlMaps", body).await["selfLink"]
        .as_str()
        .expect("link")
        .to_string()
}

pub(crate) async fn http_proxy(api: &Api, name: &str, map: &str) -> String {
    api.create("global/targetHttpProxies", json!({"name": name, "urlMap": map}))
        .await["selfLink"]
        .as_str()
        .expect("link")
        .to_string()
}

/// A forwarding rule to `target` on `port` (at `ip` when given); returns its IP.
pub(crate) async fn forwarding_rule(
    api: &Api,
    name: &str,
    target: &str,
    port: u16,
    ip: Option<&str>,
) -> String {
    let mut body = json!({"name": name, "target": target, "portRange": port.to_string()});
    if let Some(ip) = ip {
        body["IPAddress"] = ip.into();
    }
    api.create("global/forwardingRules", body).await["IPAddress"]
        .as_str()
        .expect("IPAddress")
        .to_string()
}

/// The health `getHealth` reports, by instance name.
pub(crate) async fn health_of(api: &Api, service: &str, group: &str) -> Vec<(String, String)> {
    let got = api
        .post(
            &format!("global/backendServices/{service}/getHealth"),
            json!({"group": group}),
        )
        .await
        .ok();
    got["healthStatus"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let instance = s["instance"].as_str().unwrap_or_default();
            let name = instance.rsplit('/').next().unwrap_or_default().to_string();
            (name, s["healthState"].as_str().unwrap_or_default().to_string())
        })
        .collect()
}

/// Waits until `getHealth` reports exactly `want`.
pub(crate) async fn wait_health(api: &Api, service: &str, group: &str, want: &[(&str, &str)]) {
    let want: Vec<(String, String)> = want.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    eventually(&format!("{service} health {want:?}"), || async {
        (health_of(api, service, group).await == want).then_some(())
    })
    .await;
}

/// The admin view's health entries of the backend service `service`.
pub(crate) async fn probed(api: &Api, service: &str) -> Vec<Value> {
    let view = api.get("/_fake/dataplane").await.ok();
    let suffix = format!("/backendServices/{service}");
    view["health"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|h| h["backendService"].as_str().is_some_and(|s| s.ends_with(&suffix)))
        .cloned()
        .collect()
}

/// Where the load balancer at `ip:port` is served.
pub(crate) fn serving(api: &Api, ip: &str, port: u16) -> SocketAddr {
    api.gce
        .serving_address(ip, port)
        .unwrap_or_else(|| panic!("nothing serves {ip}:{port}: {:#}", api.gce.state()))
}

/// A self-signed certificate for `names` (the first is also the CN), as PEM.
pub(crate) fn certificate(names: &[&str]) -> (String, String, Vec<u8>) {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let ck = rcgen::generate_simple_self_signed(names).expect("certificate");
    (
        ck.cert.pem(),
        ck.signing_key.serialize_pem(),
        ck.cert.der().to_vec(),
    )
}
