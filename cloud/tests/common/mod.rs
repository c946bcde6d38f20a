//! A fake Compute API and a provider pointed at it, plus model builders.
#![allow(dead_code)]

use cloud::Provider;
use cloud::gce::{ComputeSettings, GceConfig, GceProvider, RateLimits, RetryPolicy, StaticToken};
use cloud::model::*;
use fake_gce::{Config, FakeGce, InstanceSeed};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

pub const PROJECT: &str = "test-project";
pub const CLUSTER: &str = "cluster-0001";
pub const TOKEN: &str = "test-token";

pub struct Env {
    pub gce: FakeGce,
    pub provider: GceProvider,
    pub infra: ClusterInfra,
}

/// Nodes in two zones.
pub fn nodes() -> Vec<Node> {
    vec![
        Node {
            zone: "us-central1-a".into(),
            name: "node-a1".into(),
            instance: "node-a1".into(),
        },
        Node {
            zone: "us-central1-a".into(),
            name: "node-a2".into(),
            instance: "node-a2".into(),
        },
        Node {
            zone: "us-central1-b".into(),
            name: "node-b1".into(),
            instance: "node-b1".into(),
        },
    ]
}

pub fn fake_config() -> Config {
    Config {
        project_id: PROJECT.into(),
        require_token: Some(TOKEN.into()),
        instances: nodes()
            .iter()
            .map(|n| InstanceSeed::new(&n.zone, &n.instance))
            .collect(),
        ..Config::default()
    }
}

/// Settings for tests: fresh reads every pass, fast retries, no client-side rate limit.
pub fn provider_config(gce: &FakeGce) -> GceConfig {
    let mut config = GceConfig::new(PROJECT, CLUSTER);
    config.endpoint = gce.base_url();
    config.max_staleness = Duration::ZERO;
    // Tests that tear down look at once; the grace has its own test.
    config.removal_grace = Duration::ZERO;
    config.compute = ComputeSettings {
        rate_limits: RateLimits::UNLIMITED,
        retry: RetryPolicy {
            min_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(50),
            max_retries: 6,
        },
        operation_timeout: Duration::from_secs(30),
        ..ComputeSettings::default()
    };
    config
}

pub fn new_provider(gce: &FakeGce, tweak: impl FnOnce(&mut GceConfig)) -> GceProvider {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = provider_config(gce);
    tweak(&mut config);
    GceProvider::new(config, Arc::new(StaticToken(TOKEN.into()))).expect("provider")
}

impl Env {
    /// A fake with nodes in two zones and a provider whose infrastructure is in place for `ports`.
    pub async fn start(ports: &[u16]) -> Env {
        Self::start_with(fake_config(), ports, |_| {}).await
    }

    pub async fn start_with(config: Config, ports: &[u16], tweak: impl FnOnce(&mut GceConfig)) -> Env {
        let gce = FakeGce::start(config).await.expect("fake-gce");
        let provider = new_provider(&gce, tweak);
        let infra = ClusterInfra {
            nodes: nodes(),
            node_ports: ports.iter().copied().collect(),
            endpoint_ports: Default::default(),
        };
        provider
            .ensure_infrastructure(&infra)
            .await
            .expect("infrastructure");
        Env { gce, provider, infra }
    }

    /// Every resource of the fake, by path (`projects/p/global/urlMaps/x`).
    pub fn resources(&self) -> serde_json::Map<String, Value> {
        self.gce
            .state()
            .get("resources")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    }

    /// Names of the global resources of a collection (`urlMaps`, `forwardingRules`…).
    pub fn names(&self, collection: &str) -> BTreeSet<String> {
        let marker = format!("/global/{collection}/");
        self.resources()
            .keys()
            .filter_map(|p| p.split_once(&marker).map(|(_, n)| n.to_owned()))
            .collect()
    }

    /// One global resource.
    pub fn get(&self, collection: &str, name: &str) -> Value {
        self.gce
            .resource(&format!("projects/{PROJECT}/global/{collection}/{name}"))
            .unwrap_or_else(|| panic!("no {collection}/{name}"))
    }

    pub fn try_get(&self, collection: &str, name: &str) -> Option<Value> {
        self.gce
            .resource(&format!("projects/{PROJECT}/global/{collection}/{name}"))
    }

    /// How many global resources exist in all, per collection, for the LB kinds.
    pub fn counts(&self) -> Vec<(&'static str, usize)> {
        [
            "addresses",
            "healthChecks",
            "backendServices",
            "urlMaps",
            "targetHttpProxies",
            "targetHttpsProxies",
            "sslCertificates",
            "forwardingRules",
        ]
        .into_iter()
        .map(|c| (c, self.names(c).len()))
        .collect()
    }
}

pub fn backend(namespace: &str, service: &str, port: u16, node_port: u16) -> Backend {
    Backend {
        key: BackendKey::new(namespace, service, port),
        target: BackendTarget::NodePort { node_port },
        protocol: BackendProtocol::Http,
        health_check: HealthCheck::default(),
        timeout_sec: 30,
        connection_draining_timeout_sec: 0,
    }
}

/// An HTTP-only load balancer whose default backend is the first of `backends`, with a host
/// rule routing `/b<i>` to each further backend.
pub fn lb(namespace: &str, name: &str, backends: Vec<Backend>) -> LoadBalancer {
    let mut sorted = backends.clone();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let paths: Vec<PathRule> = backends
        .iter()
        .enumerate()
        .skip(1)
        .map(|(i, b)| PathRule {
            path: format!("/b{i}"),
            kind: PathMatch::Prefix,
            backend: b.key.clone(),
        })
        .collect();
    let hosts = if paths.is_empty() {
        Vec::new()
    } else {
        vec![HostRule {
            host: HostMatch::Exact("app.example.com".into()),
            paths,
        }]
    };
    LoadBalancer {
        key: LoadBalancerKey::new(namespace, name, "uid-1"),
        frontends: Frontends {
            http: true,
            https: None,
            redirect_to_https: None,
        },
        address: AddressRequest::Ephemeral,
        routes: RoutingTable {
            default_backend: backends.first().map(|b| b.key.clone()),
            hosts,
        },
        backends: sorted,
    }
}

/// A self-signed certificate for `host`, as the translator would hand it over.
pub fn certificate(source: &str, host: &str) -> Certificate {
    let ck = rcgen::generate_simple_self_signed(vec![host.to_owned()]).expect("certificate");
    let digest = Sha256::digest(ck.cert.der().as_ref());
    Certificate {
        source: source.into(),
        chain_pem: ck.cert.pem(),
        private_key: PrivateKeyPem::new(ck.signing_key.serialize_pem()),
        sha256: digest.iter().map(|b| format!("{b:02x}")).collect(),
        dns_names: vec![host.into()],
        not_after: "2100-01-01T00:00:00Z".into(),
    }
}

pub fn with_https(mut lb: LoadBalancer, certificates: Vec<Certificate>) -> LoadBalancer {
    lb.frontends.https = Some(HttpsFrontend {
        certificates,
        pre_shared_certificates: vec![],
        ssl_policy: None,
    });
    lb
}

/// The last segment of a link.
pub fn name(link: &Value) -> String {
    link.as_str()
        .unwrap_or_default()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned()
}
