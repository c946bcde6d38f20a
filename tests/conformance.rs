//! Traffic conformance: generated Ingresses are built by the controller (in-process, through
//! fake-kube), served by fake-gce's data plane on loopback, and every generated request must land
//! where the Kubernetes Ingress specification says it must — on the right Service, redirected
//! when the redirect is on, over TLS with a certificate that covers the host.
//!
//! The oracle below is written from the specification (networking.k8s.io/v1 `Ingress`:
//! "Path types", "Multiple matches", "Hostname wildcards"), independently of the translator
//! and of the data plane's URL-map matching. Seeded and bounded: `CONFORMANCE_SEED` (default
//! 20261201) and `CONFORMANCE_CASES` (default 40) choose the cases; a failure prints the
//! Ingress, the request, what was expected and what came back.

mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

const SERVICES: usize = 4;
/// Ingresses built at once.
const BATCH: usize = 6;

/// Hosts an Ingress rule may name ("" is no host).
const RULE_HOSTS: [&str; 5] = [
    "",
    "foo.example.com",
    "bar.example.com",
    "*.example.com",
    "a.b.example.org",
];
/// Hosts requests are sent to: each rule host, a name under the wildcard, one two labels under
/// it, and a stranger.
const REQUEST_HOSTS: [&str; 6] = [
    "foo.example.com",
    "bar.example.com",
    "baz.example.com",
    "x.y.example.com",
    "a.b.example.org",
    "other.test",
];
/// Exact and Prefix paths a rule may name.
const PATHS: [&str; 7] = ["/", "/foo", "/foo/bar", "/foo/", "/bar", "/foo/bar/baz", "/ab"];
/// ImplementationSpecific paths (the cloud's own patterns: exact, or a `/*` glob).
const GLOBS: [&str; 4] = ["/img", "/img/*", "/api/*", "/static/css"];
/// Paths requests are sent to.
const REQUEST_PATHS: [&str; 22] = [
    "/",
    "/foo",
    "/foo/",
    "/foo/bar",
    "/foo/bar/",
    "/foobar",
    "/foo/bar/baz",
    "/foo/barx",
    "/foo/x",
    "/bar",
    "/bar/x",
    "/barn",
    "/ab",
    "/ab/c",
    "/img",
    "/img/",
    "/img/a.png",
    "/api",
    "/api/v1/x",
    "/static/css",
    "/zzz",
    "/foo/bar?x=1&y=2",
];
/// TLS Secrets (created once) and the names their certificates cover.
const CERTS: [(&str, &str); 3] = [
    ("tls-foo", "foo.example.com"),
    ("tls-wild", "*.example.com"),
    ("tls-org", "a.b.example.org"),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PathType {
    Exact,
    Prefix,
    ImplementationSpecific,
}

#[derive(Clone, Debug)]
struct Path {
    path: String,
    kind: PathType,
    service: usize,
}

#[derive(Clone, Debug)]
struct Rule {
    host: String,
    paths: Vec<Path>,
}

#[derive(Clone, Debug)]
struct Case {
    name: String,
    default: Option<usize>,
    rules: Vec<Rule>,
    /// Secrets, in the order the Ingress lists them.
    tls: Vec<usize>,
    redirect: bool,
}

/// Where a request must land.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Service(usize),
    /// No Service of the Ingress serves it (no rule matches and there is no default backend).
    NotServed,
}

/// A small deterministic generator (SplitMix64): no dependency, same cases for the same seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

fn env_or(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn generate(rng: &mut Rng, index: usize) -> Case {
    let default = rng.chance(75).then(|| rng.below(SERVICES));
    let mut rules: Vec<Rule> = Vec::new();
    for _ in 0..1 + rng.below(3) {
        let host = RULE_HOSTS[rng.below(RULE_HOSTS.len())].to_owned();
        let mut paths: Vec<Path> = Vec::new();
        for _ in 0..1 + rng.below(4) {
            let glob = rng.chance(20);
            let (path, kind) = if glob {
                (GLOBS[rng.below(GLOBS.len())], PathType::ImplementationSpecific)
            } else {
                let path = PATHS[rng.below(PATHS.len())];
                let kind = if rng.chance(50) {
                    PathType::Exact
                } else {
                    PathType::Prefix
                };
                // A Prefix "/foo/" is the same as "/foo": keep the trailing slash for Exact.
                let path = if kind == PathType::Prefix && path == "/foo/" {
                    "/foo"
                } else {
                    path
                };
                (path, kind)
            };
            paths.push(Path {
                path: path.to_owned(),
                kind,
                service: rng.below(SERVICES),
            });
        }
        rules.push(Rule { host, paths });
    }
    // One Service per (host, path, type): Kubernetes allows duplicates, but they say nothing
    // about which wins, so the generator never makes them.
    let mut seen = std::collections::BTreeSet::new();
    for rule in &mut rules {
        rule.paths
            .retain(|p| seen.insert((rule.host.clone(), p.path.clone(), format!("{:?}", p.kind))));
    }
    rules.retain(|r| !r.paths.is_empty());
    let mut tls: Vec<usize> = (0..CERTS.len()).filter(|_| rng.chance(40)).collect();
    if !tls.is_empty() {
        // The order the Ingress lists them in decides which is the proxy's first certificate.
        let first = rng.below(tls.len());
        tls.rotate_left(first);
    }
    let redirect = !tls.is_empty() && rng.chance(50);
    Case {
        name: format!("case-{index}"),
        default,
        rules,
        tls,
        redirect,
    }
}

impl Case {
    fn manifest(&self) -> Value {
        let backend = |s: usize| json!({"service": {"name": format!("svc-{s}"), "port": {"number": 80}}});
        let rules: Vec<Value> = self
            .rules
            .iter()
            .map(|r| {
                let paths: Vec<Value> = r
                    .paths
                    .iter()
                    .map(|p| json!({"path": p.path, "pathType": format!("{:?}", p.kind), "backend": backend(p.service)}))
                    .collect();
                let mut rule = json!({"http": {"paths": paths}});
                if !r.host.is_empty() {
                    rule["host"] = json!(r.host);
                }
                rule
            })
            .collect();
        let mut spec = json!({"ingressClassName": "gce", "rules": rules});
        if let Some(d) = self.default {
            spec["defaultBackend"] = backend(d);
        }
        if !self.tls.is_empty() {
            spec["tls"] = self
                .tls
                .iter()
                .map(|&i| json!({"secretName": CERTS[i].0, "hosts": [CERTS[i].1]}))
                .collect();
        }
        let mut annotations = serde_json::Map::new();
        if self.redirect {
            annotations.insert(
                cloud_lb_controller::annotations::REDIRECT_TO_HTTPS.to_owned(),
                json!("true"),
            );
        }
        json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": self.name, "namespace": "default", "annotations": annotations},
            "spec": spec,
        })
    }

    /// The oracle: the Kubernetes Ingress specification's answer for `host` and `path`.
    fn expect(&self, host: &str, path: &str) -> Expect {
        let path = path.split('?').next().unwrap_or(path);
        let host = host.to_ascii_lowercase();
        // "Precise matches take precedence over wildcard matches"; a rule without a host matches
        // every request. The most specific host decides: its paths, or the default backend.
        // A wildcard stands for exactly one DNS label in Kubernetes ("*.foo.com" matches
        // "bar.foo.com", not "baz.bar.foo.com"), but a URL map's "*.foo.com" also matches deeper
        // names and nothing in a URL map can tell them apart: the documented deviation
        // (docs/routing.md), so deeper names are expected where Google sends them.
        let exact: Vec<&Rule> = self.rules.iter().filter(|r| r.host == host).collect();
        let wildcard: Vec<&Rule> = self
            .rules
            .iter()
            .filter(|r| {
                r.host.strip_prefix("*.").is_some_and(|suffix| {
                    host.strip_suffix(suffix)
                        .and_then(|head| head.strip_suffix('.'))
                        .is_some_and(|head| !head.is_empty())
                })
            })
            .collect();
        let any: Vec<&Rule> = self.rules.iter().filter(|r| r.host.is_empty()).collect();
        let rules = [exact, wildcard, any]
            .into_iter()
            .find(|r| !r.is_empty())
            .unwrap_or_default();
        // "If two or more paths still equally match a request, precedence will be given to
        // paths with an exact path type over prefix path type"; otherwise the longest matching
        // path wins.
        let best = rules
            .iter()
            .flat_map(|r| &r.paths)
            .filter_map(|p| matches(p, path).map(|len| (len, p.kind == PathType::Exact, p.service)))
            .max_by_key(|(len, exact, _)| (*len, *exact));
        match (best, self.default) {
            (Some((_, _, service)), _) => Expect::Service(service),
            (None, Some(d)) => Expect::Service(d),
            (None, None) => Expect::NotServed,
        }
    }

    /// The certificates the Ingress gives that cover `host` (RFC 6125: a wildcard is one label).
    fn covering(&self, host: &str) -> Vec<&'static str> {
        self.tls
            .iter()
            .map(|&i| CERTS[i].1)
            .filter(|name| covers(name, host))
            .collect()
    }
}

/// The length a path matches with, per the path types. `Prefix` matches element-wise: `/foo`
/// matches `/foo` and `/foo/bar`, never `/foobar`. `ImplementationSpecific` is this
/// controller's documented meaning: the cloud's pattern, exact or with a final `/*` glob.
fn matches(p: &Path, request: &str) -> Option<usize> {
    match p.kind {
        PathType::Exact => (request == p.path).then_some(p.path.len()),
        PathType::Prefix => {
            let prefix = p.path.trim_end_matches('/');
            if prefix.is_empty() {
                return Some(1);
            }
            (request == prefix || request.starts_with(&format!("{prefix}/"))).then_some(prefix.len())
        }
        PathType::ImplementationSpecific => match p.path.strip_suffix('*') {
            Some(stem) => request.starts_with(stem).then_some(p.path.len()),
            None => (request == p.path).then_some(p.path.len()),
        },
    }
}

fn covers(name: &str, host: &str) -> bool {
    match name.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
        None => name == host,
    }
}

/// What came back.
#[derive(Debug)]
struct Answer {
    status: u16,
    location: Option<String>,
    served_by: Option<String>,
    certificate_names: Vec<String>,
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "status {}", self.status)?;
        if let Some(l) = &self.location {
            write!(f, ", Location {l}")?;
        }
        if let Some(s) = &self.served_by {
            write!(f, ", served by {s}")?;
        }
        if !self.certificate_names.is_empty() {
            write!(f, ", certificate for {:?}", self.certificate_names)?;
        }
        Ok(())
    }
}

/// One client per load balancer: every request host resolves to its address (the URL keeps
/// the host, so `Host` and SNI are the host's), no redirect followed, any certificate taken.
fn client(http: SocketAddr, https: SocketAddr) -> reqwest::Client {
    assert!(
        http.ip().is_loopback() && https.ip().is_loopback(),
        "only loopback is contacted"
    );
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .tls_danger_accept_invalid_certs(true)
        .tls_info(true)
        .no_proxy()
        .timeout(Duration::from_secs(10));
    for host in REQUEST_HOSTS {
        builder = builder.resolve(host, http);
    }
    builder.build().expect("client")
}

async fn send(client: &reqwest::Client, url: &str) -> Answer {
    let response = match client.get(url).send().await {
        Ok(r) => r,
        Err(e) => panic!("GET {url}: {e}"),
    };
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned);
    let certificate_names = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate())
        .map(dns_names)
        .unwrap_or_default();
    let body = response.text().await.unwrap_or_default();
    let served_by = cloud_lb_controller::sandbox::echo::field(&body, "served_by").map(str::to_owned);
    Answer {
        status,
        location,
        served_by,
        certificate_names,
    }
}

fn dns_names(der: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return vec!["(unparsable)".to_owned()];
    };
    cert.subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    x509_parser::extensions::GeneralName::DNSName(d) => Some((*d).to_owned()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The Service an echo answer names (`node-a1 default/svc-2:80 (…)` → 2).
fn service_of(served_by: &str) -> Option<usize> {
    let rest = served_by.split(" default/svc-").nth(1)?;
    rest.split(':').next()?.parse().ok()
}

/// Checks one request; `Err` describes a mismatch.
fn judge(case: &Case, scheme: &str, host: &str, path: &str, answer: &Answer) -> Result<(), String> {
    if scheme == "http" && case.redirect {
        let location = answer.location.as_deref().unwrap_or("");
        let wanted_prefix = format!("https://{host}");
        let keeps_path = location
            .strip_prefix(&wanted_prefix)
            .map(|rest| rest.trim_start_matches(|c: char| c == ':' || c.is_ascii_digit()))
            == Some(path);
        return if answer.status == 301 && keeps_path {
            Ok(())
        } else {
            Err(format!("expected 301 to https://{host}{path}"))
        };
    }
    if scheme == "https" {
        let covering = case.covering(host);
        if !covering.is_empty()
            && !answer
                .certificate_names
                .iter()
                .any(|n| covering.contains(&n.as_str()))
        {
            return Err(format!(
                "expected a certificate covering {host} (one of {covering:?})"
            ));
        }
        if covering.is_empty() {
            let first = CERTS[case.tls[0]].1;
            if !answer.certificate_names.iter().any(|n| n == first) {
                return Err(format!(
                    "no certificate covers {host}: expected the first one, for {first:?}"
                ));
            }
        }
    }
    match case.expect(host, path) {
        Expect::Service(s) => {
            let got = answer.served_by.as_deref().and_then(service_of);
            if answer.status == 200 && got == Some(s) {
                Ok(())
            } else {
                Err(format!("expected svc-{s}"))
            }
        }
        Expect::NotServed => {
            // The default backend service has no backends: Google answers 502 itself.
            if answer.served_by.is_none() && answer.status == 502 {
                Ok(())
            } else {
                Err("expected no Service to serve it (502 from the load balancer)".to_owned())
            }
        }
    }
}

/// Waits until the Ingress is Ready with every backend of a Service HEALTHY: the condition under
/// which the load balancer serves each of them.
async fn wait_serving(h: &Harness, case: &Case) -> String {
    let names = namer();
    let services: Vec<String> = (0..SERVICES)
        .map(|s| names.backend("default", &format!("svc-{s}"), 80))
        .collect();
    eventually(
        &format!("{} Ready with healthy backends", case.name),
        Duration::from_secs(90),
        || async {
            let address = h.address(&case.name).await?;
            if h.state(&case.name).await.as_deref() != Some("Ready") {
                return None;
            }
            let raw = h
                .annotation(&case.name, cloud_lb_controller::annotations::BACKENDS)
                .await?;
            let health: BTreeMap<String, String> = serde_json::from_str(&raw).ok()?;
            let ours = health.iter().filter(|(name, _)| services.contains(name));
            ours.clone()
                .all(|(_, state)| state == "HEALTHY")
                .then_some(address)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_generated_request_lands_where_the_ingress_spec_says() {
    let seed = env_or("CONFORMANCE_SEED", 20_261_201);
    let cases = env_or("CONFORMANCE_CASES", 40) as usize;
    let h = Harness::start_serving(Duration::from_millis(200)).await;
    for s in 0..SERVICES {
        h.apply(&format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: svc-{s}, namespace: default}}\nspec:\n  type: NodePort\n  ports:\n  - {{name: http, port: 80, targetPort: 8080, protocol: TCP}}\n"
        ))
        .await;
    }
    for (secret, name) in CERTS {
        h.tls_secret(secret, name).await;
    }
    let controller = h.spawn_controller(&["--cluster-uid", CLUSTER_UID, "--health-interval", "1s"]);

    let mut rng = Rng(seed);
    let all: Vec<Case> = (0..cases).map(|i| generate(&mut rng, i)).collect();
    let (mut requests, mut failures) = (0usize, Vec::new());
    for batch in all.chunks(BATCH) {
        for case in batch {
            h.apply_value(case.manifest()).await;
        }
        for case in batch {
            let address = wait_serving(&h, case).await;
            let serving = |port| {
                h.gce
                    .serving_address(&address, port)
                    .unwrap_or_else(|| panic!("{}: nothing serves {address}:{port}", case.name))
            };
            let http = serving(80);
            let https = (!case.tls.is_empty()).then(|| serving(443));
            let plain = client(http, http);
            let tls = https.map(|a| client(a, a));
            for host in REQUEST_HOSTS {
                for path in REQUEST_PATHS {
                    let mut targets = vec![("http", &plain, http)];
                    if let (Some(tls), Some(addr)) = (&tls, https) {
                        targets.push(("https", tls, addr));
                    }
                    for (scheme, client, addr) in targets {
                        let url = format!("{scheme}://{host}:{}{path}", addr.port());
                        let answer = send(client, &url).await;
                        requests += 1;
                        if let Err(why) = judge(case, scheme, host, path, &answer) {
                            failures.push(format!(
                                "{}: {scheme}://{host}{path}: {why}; got {answer}\n  Ingress: {}",
                                case.name,
                                case.manifest()
                            ));
                        }
                    }
                }
            }
        }
    }
    controller.stop().await;
    println!(
        "conformance: {cases} generated Ingresses, {requests} requests checked (CONFORMANCE_SEED={seed})"
    );
    assert!(
        failures.is_empty(),
        "{} of {requests} requests did not land where the Ingress spec says:\n{}",
        failures.len(),
        failures.iter().take(40).cloned().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn the_oracle_follows_the_specification() {
    let case = Case {
        name: "t".into(),
        default: Some(0),
        rules: vec![
            Rule {
                host: "foo.example.com".into(),
                paths: vec![
                    Path {
                        path: "/foo".into(),
                        kind: PathType::Prefix,
                        service: 1,
                    },
                    Path {
                        path: "/foo".into(),
                        kind: PathType::Exact,
                        service: 2,
                    },
                    Path {
                        path: "/foo/bar".into(),
                        kind: PathType::Prefix,
                        service: 3,
                    },
                ],
            },
            Rule {
                host: "*.example.com".into(),
                paths: vec![Path {
                    path: "/".into(),
                    kind: PathType::Prefix,
                    service: 2,
                }],
            },
        ],
        tls: vec![],
        redirect: false,
    };
    let table = [
        ("foo.example.com", "/foo", Expect::Service(2)),
        ("foo.example.com", "/foo/", Expect::Service(1)),
        ("foo.example.com", "/foo/x", Expect::Service(1)),
        ("foo.example.com", "/foobar", Expect::Service(0)),
        ("foo.example.com", "/foo/bar/baz", Expect::Service(3)),
        ("foo.example.com", "/other", Expect::Service(0)),
        ("baz.example.com", "/anything", Expect::Service(2)),
        ("x.y.example.com", "/anything", Expect::Service(2)),
        ("example.com", "/", Expect::Service(0)),
        ("other.test", "/foo", Expect::Service(0)),
    ];
    for (host, path, want) in table {
        assert_eq!(case.expect(host, path), want, "{host}{path}");
    }
}
