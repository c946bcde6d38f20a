//! The data plane: load balancers built through the REST API serve traffic on loopback, to tiny
//! backends each test runs on addresses of a loopback block of its own.
//!
//! Every wait polls a condition until a generous deadline (the machine may be busy); nothing
//! asserts how long something took. Probes time out after the probe interval, so on a starved
//! machine a healthy backend may miss probes: health checks here need many failures in a row
//! (unless a test is about failing), and a request expected to succeed is retried until it
//! does, while what must never happen (traffic to an unhealthy instance) is asserted on every
//! answer.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use fake_gce::{Config, DataPlane, InstanceSeed, LoopbackBlock};
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

use crate::common::{Api, ZONE, config, install_crypto};

/// How long a condition may take to come true on a busy machine.
const PATIENCE: Duration = Duration::from_secs(60);
/// The probe interval of these tests' fakes.
const PROBE: Duration = Duration::from_millis(200);

/// Polls `check` until it returns `Some`, or fails the test after [`PATIENCE`].
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
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
async fn start() -> Api {
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

/// A backend: answers `/healthz` with 200 (503 once told to be unhealthy) and every other path
/// with 200 and a JSON echo of what it got (`/slow` a minute late).
struct Backend {
    healthy: Arc<AtomicBool>,
    /// Requests other than health checks.
    hits: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Backend {
    async fn start(addr: SocketAddr, name: &'static str) -> Backend {
        Self::serve(addr, name, None).await
    }

    /// Over TLS (a self-signed certificate), HTTP/1.1 or HTTP/2 by ALPN.
    async fn start_tls(addr: SocketAddr, name: &'static str) -> Backend {
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
        let healthy = Arc::new(AtomicBool::new(true));
        let hits = Arc::new(AtomicUsize::new(0));
        let (h, n) = (Arc::clone(&healthy), Arc::clone(&hits));
        let task = tokio::spawn(async move {
            // Connections are tasks of this one: stopping the backend ends them too.
            let mut conns = JoinSet::new();
            loop {
                while conns.try_join_next().is_some() {}
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (h, n, tls) = (Arc::clone(&h), Arc::clone(&n), tls.clone());
                conns.spawn(async move {
                    let svc = service_fn(move |req| {
                        // `/slow` answers after a minute: longer than any `timeoutSec` here.
                        let slow = req.uri().path() == "/slow";
                        let reply = answer(&req, name, &h, &n);
                        async move {
                            if slow {
                                tokio::time::sleep(Duration::from_secs(60)).await;
                            }
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
        Backend { healthy, hits, task }
    }

    fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::SeqCst);
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Stops listening (and drops its connections) before returning.
    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

fn answer(
    req: &Request<Incoming>,
    name: &str,
    healthy: &AtomicBool,
    hits: &AtomicUsize,
) -> Response<Full<Bytes>> {
    if req.uri().path() == "/healthz" {
        let status = if healthy.load(Ordering::SeqCst) {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        let mut r = Response::new(Full::new(Bytes::from_static(b"ok")));
        *r.status_mut() = status;
        return r;
    }
    hits.fetch_add(1, Ordering::SeqCst);
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
struct Reply {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// The backend that answered.
    fn backend(&self) -> String {
        self.json()["backend"].as_str().unwrap_or_default().to_string()
    }
}

/// Connects to `addr`, from `from` when given (so that `X-Forwarded-For` is known).
async fn connect(addr: SocketAddr, from: Option<Ipv4Addr>) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    if let Some(ip) = from {
        socket.bind(SocketAddr::from((ip, 0)))?;
    }
    socket.connect(addr).await
}

/// `GET path` with `Host: host` over a new connection.
async fn get(addr: SocketAddr, host: &str, path: &str) -> Reply {
    get_from(addr, None, host, path).await
}

/// `GET path` until it answers 200 (a healthy backend may have missed probes on a busy machine).
async fn get_ok(addr: SocketAddr, from: Option<Ipv4Addr>, host: &str, path: &str) -> Reply {
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
    let resp = sender.send_request(req).await.expect("an answer");
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

/// A TLS handshake with `sni` (none: the address, which sends no SNI), then `GET path`; returns
/// the answer and the leaf certificate presented.
async fn tls_get(addr: SocketAddr, sni: Option<&str>, host: &str, path: &str) -> (Reply, Vec<u8>) {
    let mut config = rustls::ClientConfig::builder()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let name = match sni {
        Some(s) => ServerName::try_from(s.to_string()).expect("DNS name"),
        None => ServerName::IpAddress(addr.ip().into()),
    };
    let stream = connect(addr, None).await.expect("the load balancer accepts");
    let tls = TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .expect("TLS handshake");
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
async fn h2_get(addr: SocketAddr, host: &str, path: &str) -> Reply {
    let mut config = rustls::ClientConfig::builder()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let stream = connect(addr, None).await.expect("the load balancer accepts");
    let name = ServerName::try_from(host.to_string()).expect("DNS name");
    let tls = TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .expect("TLS handshake");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
        .await
        .expect("HTTP/2 handshake");
    tokio::spawn(conn);
    let req = Request::get(format!("https://{host}{path}"))
        .body(Empty::<Bytes>::new())
        .expect("request");
    let resp = sender.send_request(req).await.expect("an answer");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Building load balancers through the API.

/// Seeds instance `name` at `ip`.
fn node(api: &Api, name: &str, ip: Ipv4Addr) -> String {
    api.gce
        .seed_instance_with(&InstanceSeed {
            ip: Some(ip.to_string()),
            ..InstanceSeed::new(ZONE, name)
        })
        .expect("seeded")
}

/// An HTTP health check of `/healthz` on the serving port, HEALTHY after one success and
/// UNHEALTHY after ten failures, with `extra` fields merged in.
async fn health_check(api: &Api, name: &str, extra: Value) -> String {
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
async fn typed_health_check(api: &Api, name: &str, ty: &str, field: &str) -> String {
    let mut body = json!({"name": name, "type": ty, "checkIntervalSec": 1, "timeoutSec": 1,
                          "healthyThreshold": 1, "unhealthyThreshold": 10});
    body[field] = json!({"portSpecification": "USE_SERVING_PORT", "requestPath": "/healthz"});
    api.create("global/healthChecks", body).await["selfLink"]
        .as_str()
        .expect("link")
        .to_string()
}

/// An instance group holding `instances`, its `http` named port at `port`.
async fn group(api: &Api, name: &str, instances: &[String], port: u16) -> String {
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

async fn backend_service(api: &Api, name: &str, groups: &[&str], hc: &str, protocol: &str) -> String {
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

async fn url_map(api: &Api, body: Value) -> String {
    api.create("global/urlMaps", body).await["selfLink"]
        .as_str()
        .expect("link")
        .to_string()
}

async fn http_proxy(api: &Api, name: &str, map: &str) -> String {
    api.create("global/targetHttpProxies", json!({"name": name, "urlMap": map}))
        .await["selfLink"]
        .as_str()
        .expect("link")
        .to_string()
}

/// A forwarding rule to `target` on `port` (at `ip` when given); returns its IP.
async fn forwarding_rule(api: &Api, name: &str, target: &str, port: u16, ip: Option<&str>) -> String {
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
async fn health_of(api: &Api, service: &str, group: &str) -> Vec<(String, String)> {
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
async fn wait_health(api: &Api, service: &str, group: &str, want: &[(&str, &str)]) {
    let want: Vec<(String, String)> = want.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    eventually(&format!("{service} health {want:?}"), || async {
        (health_of(api, service, group).await == want).then_some(())
    })
    .await;
}

/// Where the load balancer at `ip:port` is served.
fn serving(api: &Api, ip: &str, port: u16) -> SocketAddr {
    api.gce
        .serving_address(ip, port)
        .unwrap_or_else(|| panic!("nothing serves {ip}:{port}: {:#}", api.gce.state()))
}

// ---------------------------------------------------------------------------------------------
// The tests.

#[tokio::test]
async fn traffic_follows_host_and_path_rules_with_googles_headers() {
    let api = start().await;
    let nodes = LoopbackBlock::claim().expect("a block for the nodes");
    let block = api.gce.data_plane_block().expect("the data plane runs");
    let web1 = Backend::start(SocketAddr::from((nodes.ip(1), 8080)), "web-1").await;
    let web2 = Backend::start(SocketAddr::from((nodes.ip(2), 8080)), "web-2").await;
    let apis = Backend::start(SocketAddr::from((nodes.ip(3), 9090)), "api").await;
    let web_nodes = [node(&api, "web-1", nodes.ip(1)), node(&api, "web-2", nodes.ip(2))];
    let api_nodes = [node(&api, "api-1", nodes.ip(3))];
    let hc = health_check(&api, "hc", json!({})).await;
    let web_group = group(&api, "web", &web_nodes, 8080).await;
    let api_group = group(&api, "api", &api_nodes, 9090).await;
    let web = backend_service(&api, "web", &[&web_group], &hc, "HTTP").await;
    let apis_bs = backend_service(&api, "api", &[&api_group], &hc, "HTTP").await;
    let map = url_map(
        &api,
        json!({
            "name": "um",
            "defaultService": web,
            "hostRules": [{"hosts": ["shop.example.com"], "pathMatcher": "shop"}],
            "pathMatchers": [{"name": "shop", "defaultService": web,
                              "pathRules": [{"paths": ["/api/*"], "service": apis_bs}]}],
        }),
    )
    .await;
    let proxy = http_proxy(&api, "tp", &map).await;
    let ip = forwarding_rule(&api, "fr", &proxy, 80, None).await;
    let lb: Ipv4Addr = ip.parse().expect("an IPv4 address");
    let [_, a, b, _] = block.octets();
    assert_eq!(
        lb.octets()[..3],
        [127, a, b],
        "the address comes from the data plane's block"
    );
    let addr = serving(&api, &ip, 80);
    assert_eq!(addr.ip(), lb);

    wait_health(
        &api,
        "web",
        &web_group,
        &[("web-1", "HEALTHY"), ("web-2", "HEALTHY")],
    )
    .await;
    wait_health(&api, "api", &api_group, &[("api-1", "HEALTHY")]).await;

    // Host rule and path rule; Host and path (with query) reach the backend as sent.
    let client = nodes.ip(200);
    let r = get_ok(addr, Some(client), "shop.example.com", "/api/items?id=7").await;
    let echo = r.json();
    assert_eq!(echo["backend"], "api");
    assert_eq!(echo["host"], "shop.example.com");
    assert_eq!(echo["path"], "/api/items?id=7");
    // What Google's load balancers add (see the crate docs for the sources).
    assert_eq!(echo["xff"], format!("{client}, {lb}"));
    assert_eq!(echo["proto"], "http");
    assert_eq!(echo["via"], "1.1 google");
    let trace = echo["trace"].as_str().unwrap_or_default();
    assert!(
        trace.split_once('/').is_some_and(|(t, _)| t.len() == 32),
        "{trace}"
    );
    assert_eq!(
        r.headers.get("via").and_then(|v| v.to_str().ok()),
        Some("1.1 google")
    );

    // The path matcher's default, and the map's default for any other host: round robin over
    // the healthy members of the web group.
    for host in ["shop.example.com", "other.example.com"] {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let mut seen = std::collections::BTreeSet::new();
        while seen.len() < 2 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {seen:?} answered {host}"
            );
            seen.insert(get_ok(addr, None, host, "/").await.backend());
        }
        assert_eq!(seen, ["web-1".to_string(), "web-2".to_string()].into());
    }
    assert_eq!(apis.hits(), 1);

    // Edits apply to the next request: the map's default becomes the API service.
    let fingerprint = api.get("global/urlMaps/um").await.ok()["fingerprint"].clone();
    api.done(
        Method::PATCH,
        "global/urlMaps/um",
        Some(json!({"defaultService": apis_bs, "fingerprint": fingerprint})),
    )
    .await;
    assert_eq!(
        get_ok(addr, None, "other.example.com", "/").await.backend(),
        "api"
    );

    // The admin view lists the listener and every probed member.
    let view = api.get("/_fake/dataplane").await.ok();
    assert_eq!(view["block"], block.to_string());
    assert_eq!(view["listeners"][0]["ip"], ip);
    assert_eq!(view["listeners"][0]["port"], 80);
    assert_eq!(view["listeners"][0]["listening"], true);
    assert_eq!(view["health"].as_array().map(Vec::len), Some(3), "{view:#}");
    drop((web1, web2));
}

#[tokio::test]
async fn only_healthy_instances_get_traffic_and_get_health_tells() {
    let api = start().await;
    let nodes = LoopbackBlock::claim().expect("a block for the nodes");
    let good = Backend::start(SocketAddr::from((nodes.ip(1), 8080)), "good").await;
    let sick = Backend::start(SocketAddr::from((nodes.ip(2), 8080)), "sick").await;
    sick.set_healthy(false);
    let members = [node(&api, "good", nodes.ip(1)), node(&api, "sick", nodes.ip(2))];
    let hc = health_check(&api, "hc", json!({"healthyThreshold": 2})).await;
    let g = group(&api, "g", &members, 8080).await;
    let bs = backend_service(&api, "bs", &[&g], &hc, "HTTP").await;
    let map = url_map(&api, json!({"name": "um", "defaultService": bs})).await;
    let proxy = http_proxy(&api, "tp", &map).await;
    let ip = forwarding_rule(&api, "fr", &proxy, 80, None).await;
    let addr = serving(&api, &ip, 80);

    wait_health(&api, "bs", &g, &[("good", "HEALTHY"), ("sick", "UNHEALTHY")]).await;
    assert_eq!(get_ok(addr, None, "x", "/").await.backend(), "good");
    for _ in 0..6 {
        let r = get(addr, "x", "/").await;
        assert_ne!(r.backend(), "sick", "an unhealthy instance got traffic");
    }
    assert_eq!(sick.hits(), 0, "an unhealthy instance gets no traffic");

    // It recovers: HEALTHY after the threshold, then it gets its share.
    sick.set_healthy(true);
    wait_health(&api, "bs", &g, &[("good", "HEALTHY"), ("sick", "HEALTHY")]).await;
    eventually("the recovered instance gets traffic", || async {
        (get(addr, "x", "/").await.backend() == "sick").then_some(())
    })
    .await;

    // The admin API's UNHEALTHY wins over the probes, for getHealth and for traffic.
    assert!(api.gce.set_instance_health(ZONE, "good", false));
    let forced = health_of(&api, "bs", &g).await;
    assert_eq!(forced[0], ("good".to_string(), "UNHEALTHY".to_string()));
    let before = good.hits();
    assert_eq!(get_ok(addr, None, "x", "/").await.backend(), "sick");
    for _ in 0..4 {
        assert_ne!(get(addr, "x", "/").await.backend(), "good");
    }
    assert_eq!(good.hits(), before);
}

#[tokio::test]
async fn a_backend_going_down_turns_unhealthy_and_then_502() {
    let api = start().await;
    let nodes = LoopbackBlock::claim().expect("a block for the nodes");
    let backend = Backend::start(SocketAddr::from((nodes.ip(1), 8080)), "only").await;
    let members = [node(&api, "only", nodes.ip(1))];
    let hc = health_check(&api, "hc", json!({"unhealthyThreshold": 3})).await;
    // (A member that misses probes on a busy machine may turn UNHEALTHY early here: the test
    // only relies on it turning UNHEALTHY once its backend is gone.)
    let g = group(&api, "g", &members, 8080).await;
    let bs = backend_service(&api, "bs", &[&g], &hc, "HTTP").await;
    let map = url_map(&api, json!({"name": "um", "defaultService": bs})).await;
    let proxy = http_proxy(&api, "tp", &map).await;
    let ip = forwarding_rule(&api, "fr", &proxy, 80, None).await;
    let addr = serving(&api, &ip, 80);

    wait_health(&api, "bs", &g, &[("only", "HEALTHY")]).await;
    assert_eq!(get_ok(addr, None, "x", "/").await.backend(), "only");

    backend.stop().await;
    wait_health(&api, "bs", &g, &[("only", "UNHEALTHY")]).await;
    let r = get(addr, "x", "/").await;
    assert_eq!(r.status, 502);
    assert_eq!(
        r.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("text/html; charset=UTF-8")
    );
    assert!(r.body.contains("<h1>Error: Server Error</h1>"), "{}", r.body);
    assert!(
        r.body.contains(
            "The server encountered a temporary error and could not complete your request.<p>Please try again in 30 seconds."
        ),
        "{}",
        r.body
    );
    let view = api.get("/_fake/dataplane").await.ok();
    assert_eq!(view["health"][0]["state"], "UNHEALTHY", "{view:#}");
    assert!(view["health"][0]["lastError"].is_string(), "{view:#}");
}

#[tokio::test]
async fn no_healthy_backend_is_a_502_without_a_connection() {
    let api = start().await;
    let nodes = LoopbackBlock::claim().expect("a block for the nodes");
    let backend = Backend::start(SocketAddr::from((nodes.ip(1), 8080)), "sick").await;
    backend.set_healthy(false);
    let members = [
        node(&api, "sick", nodes.ip(1)),
        node(&api, "far", Ipv4Addr::new(10, 128, 0, 9)),
    ];
    let hc = health_check(&api, "hc", json!({})).await;
    let g = group(&api, "g", &members, 8080).await;
    let bs = backend_service(&api, "bs", &[&g], &hc, "HTTP").await;
    let map = url_map(&api, json!({"name": "um", "defaultService": bs})).await;
    let proxy = http_proxy(&api, "tp", &map).await;
    let ip = forwarding_rule(&api, "fr", &proxy, 80, None).await;
    let addr = serving(&api, &ip, 80);

    // Probed, and failing (a non-loopback instance is unreachable, never connected to).
    eventually("both probed", || async {
        let view = api.get("/_fake/dataplane").await.ok();
        let health = view["health"].as_array().cloned().unwrap_or_default();
        (health.len() == 2 && health.iter().all(|h| h["probes"].as_u64() >= Some(2))).then_some(())
    })
    .await;
    assert_eq!(
        health_of(&api, "bs", &g).await,
        [
            ("far".to_string(), "UNHEALTHY".to_string()),
            ("sick".to_string(), "UNHEALTHY".to_string())
        ]
    );
    for _ in 0..3 {
        assert_eq!(get(addr, "x", "/").await.status, 502);
    }
    assert_eq!(backend.hits(), 0, "no request reached an unhealthy backend");
}

#[tokio::test]
async fn health_checks_probe_the_port_their_specification_names() {
    let api = start().await;
    let nodes = LoopbackBlock::claim().expect("a block for the nodes");
    // Traffic on 8080 (always healthy there), health answered on 9000 only.
    let traffic = Backend::start(SocketAddr::from((nodes.ip(1), 8080)), "traffic").await;
    traffic.set_healthy(false);
    let health = Backend::start(SocketAddr::from((nodes.ip(1), 9000)), "health").await;
    let members = [node(&api, "n", nodes.ip(1))];
    let g = group(&api, "g", &members, 8080).await;
    let serving_hc = health_check(&api, "serving", json!({})).await;
    let fixed_hc = health_check(
        &api,
        "fixed",
        json!({"httpHealthCheck": {"portSpecification": "USE_FIXED_PORT", "port": 9000, "requestPath": "/healthz"}}),
    )
    .await;
    let fixed = backend_service(&api, "fixed", &[&g], &fixed_hc, "HTTP").await;
    backend_service(&api, "serving", &[&g], &serving_hc, "HTTP").await;
    wait_health(&api, "fixed", &g, &[("n", "HEALTHY")]).await;
    wait_health(&api, "serving", &g, &[("n", "UNHEALTHY")]).await;

    // Traffic still goes to the serving port.
    let map = url_map(&api, json!({"name": "um", "defaultService": fixed})).await;
    let proxy = http_proxy(&api, "tp", &map).await;
    let ip = forwarding_rule(&api, "fr", &proxy, 8000, None).await;
    let r = get_ok(serving(&api, &ip, 8000), None, "x", "/").await;
    assert_eq!(r.backend(), "traffic", "{}", r.body);
    assert_eq!(health.hits(), 0);
}

/// A self-signed certificate for `names` (the first is also the CN), as PEM.
fn certificate(names: &[&str]) -> (String, String, Vec<u8>) {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let ck = rcgen::generate_simple_self_signed(names).expect("certificate");
    (
        ck.cert.pem(),
        ck.signing_key.serialize_pem(),
        ck.cert.der().to_vec(),
    )
}

#[tokio::test]
async fn tls_presents_the_certificate_sni_names_and_follows_set_ssl_certificates() {
    install_crypto();
    let api = start().await;
    let nodes = LoopbackBlock::claim().expect("a block for the nodes");
    let _backend = Backend::start(SocketAddr::from((nodes.ip(1), 8080)), "web").await;
    let members = [node(&api, "web", nodes.ip(1))];
    let hc = health_check(&api, "hc", json!({})).await;
    let g = group(&api, "g", &members, 8080).await;
    let bs = backend_service(&api, "bs", &[&g], &hc, "HTTP").await;
    let map = url_map(&api, json!({"name": "um", "defaultService": bs})).await;

    let (a_pem, a_key, a_der) = certificate(&["a.example.com"]);
    let (b_pem, b_key, b_der) = certificate(&["*.b.example.com"]);
    for (name, pem, key) in [("a", &a_pem, &a_key), ("b", &b_pem, &b_key)] {
        api.create(
            "global/sslCertificates",
            json!({"name": name, "certificate": pem, "privateKey": key}),
        )
        .await;
    }
    // A managed certificate has no key here: it cannot serve, and is skipped.
    api.create(
        "global/sslCertificates",
        json!({"name": "managed", "type": "MANAGED", "managed": {"domains": ["m.example.com"]}}),
    )
    .await;
    let proxy = api
        .create(
            "global/targetHttpsProxies",
            json!({"name": "tps", "urlMap": map,
                   "sslCertificates": ["global/sslCertificates/managed", "global/sslCertificates/a", "global/sslCertificates/b"]}),
        )
        .await["selfLink"]
        .as_str()
        .expect("link")
        .to_string();
    let ip = forwarding_rule(&api, "fr", &proxy, 443, None).await;
    let addr = serving(&api, &ip, 443);
    wait_health(&api, "bs", &g, &[("web", "HEALTHY")]).await;

    let (r, leaf) = eventually("200 over TLS", || async {
        let (r, leaf) = tls_get(addr, Some("a.example.com"), "a.example.com", "/").await;
        (r.status == 200).then_some((r, leaf))
    })
    .await;
    assert_eq!(leaf, a_der, "SNI a.example.com");
    assert_eq!(r.json()["proto"], "https");
    assert_eq!(
        tls_get(addr, Some("x.b.example.com"), "h", "/").await.1,
        b_der,
        "wildcard SAN"
    );
    assert_eq!(
        tls_get(addr, Some("other.org"), "h", "/").await.1,
        a_der,
        "no match: the first"
    );
    assert_eq!(tls_get(addr, None, "h", "/").await.1, a_der, "no SNI: the first");

    // An HTTP/2 client (ALPN h2): its `:authority` reaches the backend as `Host`.
    let echo = eventually("200 over HTTP/2", || async {
        let r = h2_get(addr, "a.example.com", "/h2?x=1").await;
        (r.status == 200).then(|| r.json())
    })
    .await;
    assert_eq!(echo["host"], "a.example.com");
    assert_eq!(echo["path"], "/h2?x=1");
    assert_eq!(echo["version"], "HTTP/1.1");

    // New connections get the new list at once.
    api.done(
        Method::POST,
        "targetHttpsProxies/tps/setSslCertificates",
        Some(json!({"sslCertificates": ["global/sslCertificates/b", "global/sslCertificates/a"]})),
    )
    .await;
    assert_eq!(
        tls_get(addr, None, "h", "/").await.1,
        b_der,
        "no SNI: the new first"
    );
    assert_eq!(tls_get(addr, Some("a.example.com"), "h", "/").await.1, a_der);

    // The private key is nowhere to be read.
    let state = api.get("/_fake/state").await.ok().to_string();
    let cert = api.get("global/sslCertificates/a").await.ok().to_string();
    for text in [state, cert] {
        assert!(!text.contains("PRIVATE KEY"), "a private key leaked");
    }
}

#[tokio::test]
async fn a_url_map_redirect_answers_with_its_location() {
    let api = start().await;
    let address = api.create("global/addresses", json!({"name": "ip"})).await["address"]
        .as_str()
        .expect("address")
        .to_string();
    let redirect = url_map(
        &api,
        json!({"name": "redirect", "defaultUrlRedirect": {"httpsRedirect": true, "stripQuery": false}}),
    )
    .await;
    let proxy = http_proxy(&api, "tp", &redirect).await;
    forwarding_rule(&api, "http", &proxy, 80, Some(&address)).await;
    // The HTTPS side on the same address, so that the redirect has somewhere to land.
    let (pem, key, _) = certificate(&["shop.example.com"]);
    api.create(
        "global/sslCertificates",
        json!({"name": "c", "certificate": pem, "privateKey": key}),
    )
    .await;
    let tps = api
        .create(
            "global/targetHttpsProxies",
            json!({"name": "tps", "urlMap": redirect, "sslCertificates": ["global/sslCertificates/c"]}),
        )
        .await["selfLink"]
        .as_str()
        .expect("link")
        .to_string();
    forwarding_rule(&api, "https", &tps, 443, Some(&address)).await;

    let r = get(serving(&api, &address, 80), "shop.example.com", "/cart?id=3").await;
    assert_eq!(r.status, 301, "{}", r.body);
    // Port 443 where it can be bound (root), else where the fake serves it (10443).
    let https_port = serving(&api, &address, 443).port();
    let port = if https_port == 443 {
        String::new()
    } else {
        format!(":{https_port}")
    };
    let location = format!("https://shop.example.com{port}/cart?id=3");
    assert_eq!(
        r.headers.get("location").and_then(|v| v.to_str().ok()),
        Some(location.as_str())
    );
    assert!(r.body.contains("301 Moved"), "{}", r.body);
    assert!(r.body.contains(&location), "{}", r.body);
}

#[tokio::test]
async fn deleting_the_forwarding_rule_closes_its_listener() {
    let api = start().await;
    let map = url_map(
        &api,
        json!({"name": "um", "defaultUrlRedirect": {"hostRedirect": "elsewhere.example.com"}}),
    )
    .await;
    let proxy = http_proxy(&api, "tp", &map).await;
    let ip = api.create("global/addresses", json!({"name": "ip"})).await["address"]
        .as_str()
        .expect("address")
        .to_string();
    forwarding_rule(&api, "fr", &proxy, 8080, Some(&ip)).await;
    let addr = serving(&api, &ip, 8080);
    assert_eq!(get(addr, "x", "/").await.status, 301);

    api.done(Method::DELETE, "global/forwardingRules/fr", None).await;
    assert_eq!(api.gce.serving_address(&ip, 8080), None);
    eventually("the listener closed", || async {
        connect(addr, None).await.is_err().then_some(())
    })
    .await;
    let view = api.get("/_fake/dataplane").await.ok();
    assert_eq!(view["listeners"], json!([]), "{view:#}");

    // A new rule on the same address and port serves again.
    forwarding_rule(&api, "again", &proxy, 8080, Some(&ip)).await;
    assert_eq!(get(serving(&api, &ip, 8080), "x", "/").await.status, 301);
}

#[tokio::test]
async fn non_loopback_addresses_are_never_served() {
    let api = start().await;
    let map = url_map(
        &api,
        json!({"name": "um", "defaultUrlRedirect": {"hostRedirect": "elsewhere.example.com"}}),
    )
    .await;
    let proxy = http_proxy(&api, "tp", &map).await;
    api.create(
        "global/addresses",
        json!({"name": "public", "address": "34.1.2.3"}),
    )
    .await;
    let ip = forwarding_rule(&api, "fr", &proxy, 80, Some("34.1.2.3")).await;
    assert_eq!(ip, "34.1.2.3");
    assert_eq!(api.gce.serving_address(&ip, 80), None);
    let view = api.get("/_fake/dataplane").await.ok();
    assert_eq!(view["listeners"][0]["listening"], false, "{view:#}");
    assert!(
        view["listeners"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("not a loopback address")),
        "{view:#}"
    );
}

#[tokio::test]
async fn backends_speak_https_and_http2() {
    install_crypto();
    let api = start().await;
    let nodes = LoopbackBlock::claim().expect("a block for the nodes");
    let _https = Backend::start_tls(SocketAddr::from((nodes.ip(1), 8443)), "https").await;
    let _h2 = Backend::start_tls(SocketAddr::from((nodes.ip(2), 8443)), "h2").await;
    let g1 = group(&api, "g1", &[node(&api, "n1", nodes.ip(1))], 8443).await;
    let g2 = group(&api, "g2", &[node(&api, "n2", nodes.ip(2))], 8443).await;
    let https_hc = typed_health_check(&api, "https", "HTTPS", "httpsHealthCheck").await;
    let h2_hc = typed_health_check(&api, "h2", "HTTP2", "http2HealthCheck").await;
    let https = backend_service(&api, "https", &[&g1], &https_hc, "HTTPS").await;
    let h2 = backend_service(&api, "h2", &[&g2], &h2_hc, "HTTP2").await;
    let map = url_map(
        &api,
        json!({"name": "um", "defaultService": https,
               "hostRules": [{"hosts": ["h2.example.com"], "pathMatcher": "h2"}],
               "pathMatchers": [{"name": "h2", "defaultService": h2}]}),
    )
    .await;
    let proxy = http_proxy(&api, "tp", &map).await;
    let ip = forwarding_rule(&api, "fr", &proxy, 80, None).await;
    let addr = serving(&api, &ip, 80);
    wait_health(&api, "https", &g1, &[("n1", "HEALTHY")]).await;
    wait_health(&api, "h2", &g2, &[("n2", "HEALTHY")]).await;

    let r = get_ok(addr, None, "tls.example.com", "/a").await;
    assert_eq!(r.backend(), "https", "{}", r.body);
    assert_eq!(r.json()["version"], "HTTP/1.1");
    let r = get_ok(addr, None, "h2.example.com", "/b?c=d").await;
    assert_eq!(r.backend(), "h2", "{}", r.body);
    let echo = r.json();
    assert_eq!(echo["version"], "HTTP/2.0");
    assert_eq!(echo["host"], "h2.example.com");
    assert_eq!(echo["path"], "/b?c=d");
}

#[tokio::test]
async fn with_the_data_plane_off_nothing_listens() {
    let api = Api::start().await;
    assert_eq!(api.gce.data_plane_block(), None);
    let map = url_map(
        &api,
        json!({"name": "um", "defaultUrlRedirect": {"hostRedirect": "elsewhere.example.com"}}),
    )
    .await;
    let proxy = http_proxy(&api, "tp", &map).await;
    let ip = forwarding_rule(&api, "fr", &proxy, 80, None).await;
    assert!(ip.starts_with("34.120."), "{ip}");
    assert_eq!(api.gce.serving_address(&ip, 80), None);
    let view = api.get("/_fake/dataplane").await.ok();
    assert_eq!(view, json!({"block": null, "listeners": [], "health": []}));
}

#[tokio::test]
async fn the_binary_runs_the_data_plane() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    /// Kills the child when the test ends, pass or fail.
    struct Running(std::process::Child);
    impl Drop for Running {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    install_crypto();
    let mut child = Running(
        Command::new(env!("CARGO_BIN_EXE_fake-gce"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--data-plane",
                "--probe-interval-ms",
                "100",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("binary starts"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let lines = tokio::task::spawn_blocking(move || {
        let mut reader = BufReader::new(stdout);
        let mut lines = [String::new(), String::new()];
        for line in &mut lines {
            reader.read_line(line)?;
        }
        Ok::<_, std::io::Error>(lines)
    })
    .await
    .expect("join");
    drop(child);
    let [first, second] = lines.expect("two lines");
    assert!(
        first.starts_with("fake-gce listening on http://127.0.0.1:"),
        "{first}"
    );
    let block = second
        .trim()
        .strip_prefix("fake-gce data plane on ")
        .and_then(|b| b.strip_suffix("/24"))
        .and_then(|b| b.parse::<Ipv4Addr>().ok())
        .unwrap_or_else(|| panic!("{second}"));
    assert_eq!((block.octets()[0], block.octets()[3]), (127, 0));
}

#[tokio::test]
async fn a_backend_slower_than_timeout_sec_is_a_502() {
    let api = start().await;
    let nodes = LoopbackBlock::claim().expect("a block for the nodes");
    let _backend = Backend::start(SocketAddr::from((nodes.ip(1), 8080)), "slow").await;
    let members = [node(&api, "n", nodes.ip(1))];
    let hc = health_check(&api, "hc", json!({})).await;
    let g = group(&api, "g", &members, 8080).await;
    let bs = backend_service(&api, "bs", &[&g], &hc, "HTTP").await;
    let map = url_map(&api, json!({"name": "um", "defaultService": bs})).await;
    let proxy = http_proxy(&api, "tp", &map).await;
    let ip = forwarding_rule(&api, "fr", &proxy, 80, None).await;
    let addr = serving(&api, &ip, 80);
    wait_health(&api, "bs", &g, &[("n", "HEALTHY")]).await;
    assert_eq!(get_ok(addr, None, "x", "/fast").await.backend(), "slow");

    // The service's timeoutSec, changed to 1 s, applies to the next request.
    let fingerprint = api.get("global/backendServices/bs").await.ok()["fingerprint"].clone();
    api.done(
        Method::PATCH,
        "global/backendServices/bs",
        Some(json!({"timeoutSec": 1, "fingerprint": fingerprint})),
    )
    .await;
    let r = get(addr, "x", "/slow").await;
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(r.body.contains("Please try again in 30 seconds."), "{}", r.body);
}
