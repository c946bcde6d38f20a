//! Table-driven tests of the translator: each case is a row with a name, an Ingress (and any
//! change to the objects around it), and the exact errors, or the exact warnings and a check
//! of the model, expected.

mod annotation_cases;
mod backend_cases;
mod class_cases;
mod golden;
mod neg_cases;
mod other;
mod probe_cases;
mod routing_cases;
mod tls_cases;

use super::{Config, Snapshot, Translation, translate};
use cloud::model::LoadBalancer;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use rcgen::{CertificateParams, DnType, IsCa, Issuer, KeyPair, date_time_ymd};
use serde_json::{Value, json};
use std::sync::OnceLock;

/// The fixed "now" of every test: 2026-06-01T00:00:00Z.
pub(super) fn now() -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_780_272_000).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

pub(super) fn config() -> Config {
    Config {
        now: now(),
        ..Config::default()
    }
}

/// One row of a table.
pub(super) struct Case {
    pub name: &'static str,
    /// The whole Ingress, usually built with [`ingress`].
    pub ingress: Value,
    /// Changes to the [`world`] the Ingress is translated against.
    pub world: fn(&mut Snapshot),
    /// Changes to the configuration (limits).
    pub config: fn(&mut Config),
    pub expect: Expect,
}

pub(super) enum Expect {
    /// Translation fails with exactly these (field, message) errors, in order.
    Errors(Vec<(String, String)>),
    /// Translation succeeds with exactly these warnings, and the model passes `check`.
    Ok {
        warnings: Vec<(String, String)>,
        check: Check,
    },
}

/// What a successful row checks.
pub(super) enum Check {
    /// The load balancer.
    Model(fn(&LoadBalancer)),
    /// The whole translation (health-check origins too).
    Translation(fn(&Translation)),
}

/// A row with the default world and configuration.
pub(super) fn case(name: &'static str, ingress: Value, expect: Expect) -> Case {
    Case {
        name,
        ingress,
        world: |_| {},
        config: |_| {},
        expect,
    }
}

/// Expect exactly these errors.
pub(super) fn errors<const N: usize>(rows: [(&str, &str); N]) -> Expect {
    Expect::Errors(
        rows.iter()
            .map(|(f, m)| ((*f).to_owned(), (*m).to_owned()))
            .collect(),
    )
}

/// Expect success with exactly these warnings and a model passing `check`.
pub(super) fn ok<const N: usize>(warnings: [(&str, &str); N], check: fn(&LoadBalancer)) -> Expect {
    Expect::Ok {
        warnings: warnings
            .iter()
            .map(|(f, m)| ((*f).to_owned(), (*m).to_owned()))
            .collect(),
        check: Check::Model(check),
    }
}

/// Expect success with exactly these warnings and a translation passing `check`.
pub(super) fn ok_translation<const N: usize>(warnings: [(&str, &str); N], check: fn(&Translation)) -> Expect {
    Expect::Ok {
        warnings: warnings
            .iter()
            .map(|(f, m)| ((*f).to_owned(), (*m).to_owned()))
            .collect(),
        check: Check::Translation(check),
    }
}

/// Runs every row, then fails once listing every row that did not behave.
pub(super) fn run(cases: Vec<Case>) -> usize {
    let count = cases.len();
    let mut failures = Vec::new();
    for case in cases {
        let mut snapshot = world();
        (case.world)(&mut snapshot);
        let mut config = config();
        (case.config)(&mut config);
        let ingress: Ingress = match serde_json::from_value(case.ingress.clone()) {
            Ok(ingress) => ingress,
            Err(e) => {
                failures.push(format!("{}: the Ingress does not deserialize: {e}", case.name));
                continue;
            }
        };
        let result = translate(&ingress, &snapshot, &config);
        match (case.expect, result) {
            (Expect::Errors(expected), Err(problems)) => {
                let got: Vec<(String, String)> = problems
                    .iter()
                    .map(|p| (p.field.clone(), p.message.clone()))
                    .collect();
                if got != expected {
                    failures.push(format!(
                        "{}:\n  expected errors {expected:#?}\n  got {got:#?}",
                        case.name
                    ));
                }
                let id = format!(
                    "{}/{}",
                    case.ingress["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or("default"),
                    case.ingress["metadata"]["name"].as_str().unwrap_or("")
                );
                if let Some(p) = problems.iter().find(|p| p.ingress != id) {
                    failures.push(format!("{}: problem names {:?}", case.name, p.ingress));
                }
            }
            (Expect::Errors(expected), Ok(t)) => failures.push(format!(
                "{}:\n  expected errors {expected:#?}\n  got a load balancer with warnings {:#?}",
                case.name, t.warnings
            )),
            (Expect::Ok { .. }, Err(problems)) => failures.push(format!(
                "{}:\n  expected success, got errors {:#?}",
                case.name,
                problems.iter().map(ToString::to_string).collect::<Vec<_>>()
            )),
            (Expect::Ok { warnings, check }, Ok(t)) => {
                let got: Vec<(String, String)> = t
                    .warnings
                    .iter()
                    .map(|p| (p.field.clone(), p.message.clone()))
                    .collect();
                if got != warnings {
                    failures.push(format!(
                        "{}:\n  expected warnings {warnings:#?}\n  got {got:#?}",
                        case.name
                    ));
                }
                let checked = std::panic::catch_unwind(|| match check {
                    Check::Model(check) => check(&t.load_balancer),
                    Check::Translation(check) => check(&t),
                });
                let lb = t.load_balancer;
                if let Err(panic) = checked {
                    let message = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                        .unwrap_or_default();
                    failures.push(format!("{}: model check failed: {message}", case.name));
                }
                let sorted = lb.backends.windows(2).all(|w| w[0].key < w[1].key);
                if !sorted {
                    failures.push(format!("{}: backends not sorted and unique", case.name));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    count
}

// --- Building Ingresses ----------------------------------------------------------------------

/// An Ingress `default/test` with this spec.
pub(super) fn ingress(spec: Value) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "test", "namespace": "default", "uid": "uid-1"},
        "spec": spec,
    })
}

/// An Ingress `default/test` with these annotations and this spec.
pub(super) fn annotated(annotations: Value, spec: Value) -> Value {
    let mut ingress = ingress(spec);
    ingress["metadata"]["annotations"] = annotations;
    ingress
}

/// A Service backend by port number.
pub(super) fn svc(name: &str, port: i32) -> Value {
    json!({"service": {"name": name, "port": {"number": port}}})
}

/// A Service backend by port name.
pub(super) fn svc_named(name: &str, port: &str) -> Value {
    json!({"service": {"name": name, "port": {"name": port}}})
}

/// One `http.paths[]` entry.
pub(super) fn path(path: &str, path_type: &str, backend: Value) -> Value {
    json!({"path": path, "pathType": path_type, "backend": backend})
}

/// One rule for `host` with these paths.
pub(super) fn rule(host: &str, paths: Value) -> Value {
    json!({"host": host, "http": {"paths": paths}})
}

/// The spec most cases start from: a default backend only.
pub(super) fn default_only() -> Value {
    json!({"defaultBackend": svc("echo", 80)})
}

// --- The objects around the Ingress ----------------------------------------------------------

/// The Services, Secret and IngressClass every case starts with.
///
/// - `echo`: NodePort; port 80 `http` (node port 30080), port 443 `https` with appProtocol
///   https (30443);
/// - `other`: NodePort; port 8080 unnamed (30081);
/// - `lb`: LoadBalancer; port 80 `web` (30082);
/// - `internal`: ClusterIP; port 80;
/// - Secret `tls`: an ECDSA P-256 certificate for `a.example.com` and `*.example.com`;
/// - IngressClass `ours` with our controller.
pub(super) fn world() -> Snapshot {
    let mut snapshot = Snapshot::new();
    snapshot.insert_service(service(
        "echo",
        "NodePort",
        json!([
            {"name": "http", "port": 80, "nodePort": 30080},
            {"name": "https", "port": 443, "nodePort": 30443, "appProtocol": "https"},
        ]),
    ));
    snapshot.insert_service(service(
        "other",
        "NodePort",
        json!([{"port": 8080, "nodePort": 30081}]),
    ));
    snapshot.insert_service(service(
        "lb",
        "LoadBalancer",
        json!([{"name": "web", "port": 80, "nodePort": 30082}]),
    ));
    snapshot.insert_service(service("internal", "ClusterIP", json!([{"port": 80}])));
    let pair = ecdsa_pair();
    snapshot.insert_secret(tls_secret("tls", &pair.chain, &pair.key));
    snapshot.insert_ingress_class(ingress_class("ours", super::DEFAULT_CONTROLLER_NAME, false));
    snapshot
}

/// A Service in `default`.
pub(super) fn service(name: &str, kind: &str, ports: Value) -> Service {
    service_with(name, kind, ports, json!({}))
}

/// A Service in `default` with annotations.
pub(super) fn service_with(name: &str, kind: &str, ports: Value, annotations: Value) -> Service {
    from_json(json!({
        "metadata": {"name": name, "namespace": "default", "annotations": annotations},
        "spec": {"type": kind, "ports": ports},
    }))
}

/// A pod `default/name` created at `created` (RFC 3339), controlled by ReplicaSet `rs-1`, with
/// these containers; a JSON value, to adjust before [`from_json`].
pub(super) fn pod_json(name: &str, created: &str, containers: Value) -> Value {
    json!({
        "metadata": {
            "name": name,
            "namespace": "default",
            "creationTimestamp": created,
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs-1", "uid": "u", "controller": true},
            ],
        },
        "spec": {"containers": containers},
    })
}

/// An IPv4 EndpointSlice `default/name` of Service `service` with these ports and endpoints.
pub(super) fn endpoint_slice(name: &str, service: &str, ports: Value, endpoints: Value) -> EndpointSlice {
    from_json(json!({
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": service},
        },
        "addressType": "IPv4",
        "ports": ports,
        "endpoints": endpoints,
    }))
}

/// One EndpointSlice endpoint of pod `default/pod` on `node`; `ready: None` leaves the
/// condition out.
pub(super) fn endpoint(ip: &str, node: &str, pod: &str, ready: Option<bool>) -> Value {
    let mut value = json!({
        "addresses": [ip],
        "nodeName": node,
        "targetRef": {"kind": "Pod", "namespace": "default", "name": pod},
        "conditions": {},
    });
    if let Some(ready) = ready {
        value["conditions"]["ready"] = json!(ready);
    }
    value
}

/// A TLS Secret in `default`.
pub(super) fn tls_secret(name: &str, crt: &str, key: &str) -> Secret {
    secret(name, json!({"tls.crt": crt, "tls.key": key}))
}

/// A Secret in `default` with this string data (stored as `data`, as the API returns it).
pub(super) fn secret(name: &str, string_data: Value) -> Secret {
    let mut secret: Secret = from_json(json!({
        "metadata": {"name": name, "namespace": "default"},
        "type": "kubernetes.io/tls",
    }));
    if let Value::Object(map) = string_data {
        let data = map
            .into_iter()
            .map(|(k, v)| {
                (
                    k,
                    k8s_openapi::ByteString(v.as_str().unwrap_or_default().as_bytes().to_vec()),
                )
            })
            .collect();
        secret.data = Some(data);
    }
    secret
}

pub(super) fn ingress_class(name: &str, controller: &str, default: bool) -> IngressClass {
    let annotations = if default {
        json!({"ingressclass.kubernetes.io/is-default-class": "true"})
    } else {
        json!({})
    };
    from_json(
        json!({"metadata": {"name": name, "annotations": annotations}, "spec": {"controller": controller}}),
    )
}

pub(super) fn from_json<T: serde::de::DeserializeOwned>(value: Value) -> T {
    match serde_json::from_value(value) {
        Ok(v) => v,
        Err(e) => panic!("test fixture does not deserialize: {e}"),
    }
}

// --- Certificates (rcgen) --------------------------------------------------------------------

/// A PEM chain and its key.
#[derive(Clone)]
pub(super) struct Pair {
    pub chain: String,
    pub key: String,
}

/// What a test certificate looks like.
pub(super) struct Spec<'a> {
    pub names: &'a [&'a str],
    pub not_before: (i32, u8, u8),
    pub not_after: (i32, u8, u8),
}

impl Default for Spec<'_> {
    fn default() -> Self {
        Self {
            names: &["a.example.com", "*.example.com"],
            not_before: (2020, 1, 1),
            not_after: (2100, 1, 1),
        }
    }
}

fn params(spec: &Spec<'_>) -> CertificateParams {
    let names: Vec<String> = spec.names.iter().map(|s| (*s).to_owned()).collect();
    let mut params = CertificateParams::new(names).unwrap_or_default();
    let (y, m, d) = spec.not_before;
    params.not_before = date_time_ymd(y, m, d);
    let (y, m, d) = spec.not_after;
    params.not_after = date_time_ymd(y, m, d);
    params
}

/// A self-signed certificate for `spec` with a new key of `algorithm`.
pub(super) fn self_signed(spec: &Spec<'_>, algorithm: &'static rcgen::SignatureAlgorithm) -> Pair {
    let key = KeyPair::generate_for(algorithm).unwrap_or_else(|e| panic!("key generation: {e}"));
    self_signed_with(spec, &key)
}

/// A self-signed certificate for `spec` with `key`.
pub(super) fn self_signed_with(spec: &Spec<'_>, key: &KeyPair) -> Pair {
    let cert = params(spec)
        .self_signed(key)
        .unwrap_or_else(|e| panic!("self-signing: {e}"));
    Pair {
        chain: cert.pem(),
        key: key.serialize_pem(),
    }
}

/// The default ECDSA P-256 certificate (made once per test run).
pub(super) fn ecdsa_pair() -> Pair {
    static PAIR: OnceLock<Pair> = OnceLock::new();
    PAIR.get_or_init(|| self_signed(&Spec::default(), &rcgen::PKCS_ECDSA_P256_SHA256))
        .clone()
}

/// A leaf for `a.example.com` issued by an intermediate, issued by a root: (leaf + intermediate
/// PEM, leaf key PEM, intermediate PEM, leaf PEM).
pub(super) fn chain() -> (Pair, String, String) {
    let ca = |cn: &str| {
        let mut p = params(&Spec {
            names: &[],
            ..Spec::default()
        });
        p.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, cn);
        p
    };
    let root_key = new_key();
    let root = Issuer::new(ca("Test Root"), root_key);
    let intermediate_key = new_key();
    let intermediate_params = ca("Test Intermediate");
    let intermediate = intermediate_params
        .signed_by(&intermediate_key, &root)
        .unwrap_or_else(|e| panic!("intermediate: {e}"));
    let intermediate_issuer = Issuer::new(intermediate_params, intermediate_key);
    let leaf_key = new_key();
    let leaf = params(&Spec {
        names: &["a.example.com"],
        ..Spec::default()
    })
    .signed_by(&leaf_key, &intermediate_issuer)
    .unwrap_or_else(|e| panic!("leaf: {e}"));
    let pair = Pair {
        chain: format!("{}{}", leaf.pem(), intermediate.pem()),
        key: leaf_key.serialize_pem(),
    };
    (pair, intermediate.pem(), leaf.pem())
}

pub(super) fn new_key() -> KeyPair {
    KeyPair::generate().unwrap_or_else(|e| panic!("key generation: {e}"))
}

/// A committed test fixture under `src/translate/testdata/`.
pub(super) fn testdata(name: &str) -> String {
    let path = format!("{}/src/translate/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}
