//! A fake cluster and a fake Compute API on loopback, the controller run in-process against
//! them, and helpers to drive and observe both — all over HTTP.
#![allow(dead_code)]

#[path = "../support/wait.rs"]
mod wait;
pub use wait::eventually;
mod pods;
#[allow(unused_imports)] // not every test file runs pods
pub use pods::*;
#[path = "../support/journal.rs"]
mod journal;
#[allow(unused_imports)] // not every test file replays the journal
pub use journal::*;

use clap::Parser;
use cloud_lb_controller::cli::{Cli, Command, RunArgs};
use cloud_lb_controller::sandbox::node_ports::{self, NodePorts};
use cloud_lb_controller::sandbox::pod_servers::PodServers;
use fake_gce::{FakeGce, InstanceSeed};
use fake_kube::FakeKube;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Node, Secret, Service};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const PROJECT: &str = "test-project";
pub const TOKEN: &str = "test-token";
/// Nodes of the fake cluster: (zone, name).
pub const NODES: [(&str, &str); 3] = [
    ("us-central1-a", "node-a1"),
    ("us-central1-a", "node-a2"),
    ("us-central1-b", "node-b1"),
];

pub struct Harness {
    pub kube: FakeKube,
    pub gce: FakeGce,
    pub client: Client,
    pub kubeconfig: PathBuf,
    /// With [`Harness::start_serving`]: the nodes' echo servers behind every node port.
    pub serving: Option<Serving>,
    /// With [`Harness::start_pods`] and a data plane: echo servers on the pods' container ports.
    pub pod_servers: Option<PodServers>,
    pod_block: Option<fake_gce::LoopbackBlock>,
}

/// What [`Harness::start_pods`] sets up.
#[derive(Clone, Debug)]
pub struct PodCluster {
    /// Run fake-gce's data plane, probing at this interval: load balancers serve, node ports
    /// and pods' container ports are served by echo servers.
    pub probe_interval: Option<Duration>,
    /// When deleted pods finish.
    pub termination: fake_kube::Termination,
}

impl Default for PodCluster {
    fn default() -> Self {
        PodCluster {
            probe_interval: None,
            termination: fake_kube::Termination::After(Duration::from_millis(200)),
        }
    }
}

/// Node `index`'s pod range (its `spec.podCIDR`, and its VM's alias IP range) in `block`: a /28
/// from `.64` on, 14 pod addresses per node, apart from the nodes' own addresses (`.1` on).
pub fn pod_cidr(block: &fake_gce::LoopbackBlock, index: usize) -> String {
    let host = 64 + 16 * u8::try_from(index).expect("few nodes");
    format!("{}/28", block.ip(host))
}

/// The data plane's backends: the nodes' loopback addresses and the echo servers on them.
pub struct Serving {
    pub node_ports: NodePorts,
    /// The nodes' addresses, in the order of [`NODES`].
    pub node_ips: Vec<std::net::IpAddr>,
    _block: fake_gce::LoopbackBlock,
}

/// A controller running in this process.
pub struct Running {
    pub cancel: CancellationToken,
    pub handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Stops it as SIGTERM would.
    pub async fn stop(self) {
        self.cancel.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(30), self.handle).await;
    }

    /// Stops it as a crash would: no cleanup, no lease release.
    pub fn kill(self) {
        self.handle.abort();
    }
}

impl Harness {
    pub async fn start() -> Harness {
        Self::start_with(None).await
    }

    /// With fake-gce's data plane: load balancers serve on loopback, the nodes have loopback
    /// addresses, every node port of every Service is served there by an echo server naming
    /// the node and the Service, and health checks probe every `probe_interval`.
    pub async fn start_serving(probe_interval: Duration) -> Harness {
        let block = fake_gce::LoopbackBlock::claim().expect("a loopback block for the nodes");
        let names: Vec<&str> = NODES.iter().map(|(_, n)| *n).collect();
        let nodes = node_ports::Node::on_block(&block, &names);
        let node_ips: Vec<std::net::IpAddr> = nodes.iter().map(|n| n.ip).collect();
        let mut h = Self::start_with(Some((
            node_ips.clone(),
            fake_gce::DataPlane {
                probe_interval: Some(probe_interval),
                ..Default::default()
            },
        )))
        .await;
        h.serving = Some(Serving {
            node_ports: NodePorts::start(h.client.clone(), nodes),
            node_ips,
            _block: block,
        });
        h
    }

    /// With fake-kube's pod simulator: pods on [`NODES`] get addresses from their node's
    /// [`pod_cidr`], which fake-gce knows as the VM's alias IP range, so NEG endpoints are
    /// accepted. With `probe_interval`, also the data plane of [`Harness::start_serving`] and an
    /// echo server on every pod's container ports.
    pub async fn start_pods(cluster: PodCluster) -> Harness {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let block = fake_gce::LoopbackBlock::claim().expect("a loopback block for the nodes");
        let names: Vec<&str> = NODES.iter().map(|(_, n)| *n).collect();
        let nodes = node_ports::Node::on_block(&block, &names);
        let cidrs: Vec<String> = (0..NODES.len()).map(|i| pod_cidr(&block, i)).collect();
        let data_plane = cluster.probe_interval.map(|interval| fake_gce::DataPlane {
            probe_interval: Some(interval),
            ..Default::default()
        });
        let serving = data_plane.is_some();
        let gce = FakeGce::start(fake_gce::Config {
            project_id: PROJECT.into(),
            require_token: Some(TOKEN.into()),
            instances: NODES
                .iter()
                .zip(&nodes)
                .zip(&cidrs)
                .map(|(((z, n), node), cidr)| InstanceSeed {
                    ip: Some(node.ip.to_string()),
                    alias_ip_ranges: vec![cidr.clone()],
                    ..InstanceSeed::new(z, n)
                })
                .collect(),
            data_plane,
            ..fake_gce::Config::default()
        })
        .await
        .expect("fake-gce");
        let kube = FakeKube::start(fake_kube::Config {
            simulate_pods: Some(fake_kube::PodSimulation {
                termination: cluster.termination,
                ..Default::default()
            }),
            ..fake_kube::Config::default()
        })
        .await
        .expect("fake-kube");
        let mut h = Self::connect(kube, gce).await;
        for ((zone, name), cidr) in NODES.iter().zip(&cidrs) {
            h.apply(&format!(
                "apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  labels: {{topology.kubernetes.io/zone: {zone}}}\nspec:\n  providerID: gce://{PROJECT}/{zone}/{name}\n  podCIDR: {cidr}\n"
            ))
            .await;
        }
        if serving {
            let node_ips = nodes.iter().map(|n| n.ip).collect();
            h.serving = Some(Serving {
                node_ports: NodePorts::start(h.client.clone(), nodes),
                node_ips,
                _block: block,
            });
            h.pod_servers = Some(PodServers::start(h.client.clone()));
        } else {
            // Claimed for the harness's life: the pods' addresses are in it.
            h.pod_block = Some(block);
        }
        h
    }

    async fn start_with(data_plane: Option<(Vec<std::net::IpAddr>, fake_gce::DataPlane)>) -> Harness {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (ips, data_plane) = match data_plane {
            Some((ips, dp)) => (ips.into_iter().map(|ip| Some(ip.to_string())).collect(), Some(dp)),
            None => (vec![None; NODES.len()], None),
        };
        let gce = FakeGce::start(fake_gce::Config {
            project_id: PROJECT.into(),
            require_token: Some(TOKEN.into()),
            instances: NODES
                .iter()
                .zip(ips)
                .map(|((z, n), ip)| InstanceSeed {
                    ip,
                    ..InstanceSeed::new(z, n)
                })
                .collect(),
            data_plane,
            ..fake_gce::Config::default()
        })
        .await
        .expect("fake-gce");
        let kube = FakeKube::start(fake_kube::Config::default())
            .await
            .expect("fake-kube");
        let h = Self::connect(kube, gce).await;
        for (zone, name) in NODES {
            h.apply(&format!(
                "apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  labels: {{topology.kubernetes.io/zone: {zone}}}\nspec:\n  providerID: gce://{PROJECT}/{zone}/{name}\n"
            ))
            .await;
        }
        h
    }

    /// A harness on these fakes, with a kubeconfig and a client for the fake cluster.
    async fn connect(kube: FakeKube, gce: FakeGce) -> Harness {
        static N: AtomicU32 = AtomicU32::new(0);
        let kubeconfig = std::env::temp_dir().join(format!(
            "clc-test-{}-{}.kubeconfig",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        kube.write_kubeconfig(&kubeconfig).expect("kubeconfig");
        let config = kube::Config::new(kube.url().parse().expect("url"));
        let client = Client::try_from(config).expect("client");
        Harness {
            kube,
            gce,
            client,
            kubeconfig,
            serving: None,
            pod_servers: None,
            pod_block: None,
        }
    }

    /// `run` arguments pointing at the fakes, with short leader-election timings.
    pub fn args(&self, extra: &[&str]) -> RunArgs {
        let kubeconfig = self.kubeconfig.to_string_lossy().into_owned();
        let base = self.gce.base_url();
        let mut argv = vec![
            "cloud-lb-controller",
            "run",
            "--kubeconfig",
            &kubeconfig,
            "--gce-endpoint",
            &base,
            "--gce-project",
            PROJECT,
            "--gce-access-token",
            TOKEN,
            "--metrics-addr",
            "127.0.0.1:0",
            "--health-addr",
            "127.0.0.1:0",
            "--resync-period",
            "1h",
            "--leader-elect-lease-duration",
            "2s",
            "--leader-elect-renew-deadline",
            "1500ms",
            "--leader-elect-retry-period",
            "200ms",
        ];
        // Teardowns are looked at once unless a test says otherwise.
        if !extra.contains(&"--gce-removal-grace") {
            argv.extend_from_slice(&["--gce-removal-grace", "0s"]);
        }
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).expect("arguments").command {
            Command::Run(args) => *args,
            _ => unreachable!(),
        }
    }

    pub fn spawn_controller(&self, extra: &[&str]) -> Running {
        let args = self.args(extra);
        let cancel = CancellationToken::new();
        let handle = tokio::spawn(cloud_lb_controller::run::run(args, cancel.clone()));
        Running { cancel, handle }
    }

    /// Server-side applies every document of `yaml`, through the API.
    pub async fn apply(&self, yaml: &str) {
        let docs: Vec<Value> = serde_saphyr::from_multiple(yaml).expect("yaml");
        for doc in docs.into_iter().filter(|d| !d.is_null()) {
            self.apply_value(doc).await;
        }
    }

    pub async fn apply_value(&self, doc: Value) {
        let kind = doc["kind"].as_str().expect("kind").to_owned();
        let name = doc["metadata"]["name"].as_str().expect("name").to_owned();
        let namespace = doc["metadata"]["namespace"].as_str().map(str::to_owned);
        let resource = match kind.as_str() {
            "Service" => ApiResource::erase::<Service>(&()),
            "Secret" => ApiResource::erase::<Secret>(&()),
            "Ingress" => ApiResource::erase::<Ingress>(&()),
            "IngressClass" => ApiResource::erase::<IngressClass>(&()),
            "Node" => ApiResource::erase::<Node>(&()),
            "Pod" => ApiResource::erase::<k8s_openapi::api::core::v1::Pod>(&()),
            other => panic!("unsupported kind {other}"),
        };
        let cluster_scoped = matches!(kind.as_str(), "IngressClass" | "Node");
        let api: Api<DynamicObject> = if cluster_scoped {
            Api::all_with(self.client.clone(), &resource)
        } else {
            Api::namespaced_with(
                self.client.clone(),
                namespace.as_deref().unwrap_or("default"),
                &resource,
            )
        };
        api.patch(&name, &PatchParams::apply("test").force(), &Patch::Apply(&doc))
            .await
            .unwrap_or_else(|e| panic!("apply {kind} {name}: {e}"));
    }

    /// A TLS Secret with a fresh self-signed certificate for `host`.
    pub async fn tls_secret(&self, name: &str, host: &str) {
        let ck = rcgen::generate_simple_self_signed(vec![host.to_owned()]).expect("certificate");
        let secret = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            type_: Some("kubernetes.io/tls".into()),
            data: Some(BTreeMap::from([
                ("tls.crt".to_owned(), ByteString(ck.cert.pem().into_bytes())),
                (
                    "tls.key".to_owned(),
                    ByteString(ck.signing_key.serialize_pem().into_bytes()),
                ),
            ])),
            ..Default::default()
        };
        let mut doc = serde_json::to_value(&secret).expect("json");
        doc["apiVersion"] = "v1".into();
        doc["kind"] = "Secret".into();
        self.apply_value(doc).await;
    }

    pub fn ingresses(&self) -> Api<Ingress> {
        Api::namespaced(self.client.clone(), "default")
    }

    pub async fn ingress(&self, name: &str) -> Option<Ingress> {
        self.ingresses().get_opt(name).await.expect("get ingress")
    }

    /// The Ingress's address, if it has one.
    pub async fn address(&self, name: &str) -> Option<String> {
        let ing = self.ingress(name).await?;
        ing.status?.load_balancer?.ingress?.first()?.ip.clone()
    }

    pub async fn annotation(&self, name: &str, key: &str) -> Option<String> {
        self.ingress(name).await?.metadata.annotations?.get(key).cloned()
    }

    /// The state annotation's `state` field.
    pub async fn state(&self, name: &str) -> Option<String> {
        let raw = self
            .annotation(name, cloud_lb_controller::annotations::STATE)
            .await?;
        serde_json::from_str::<Value>(&raw).ok()?["state"]
            .as_str()
            .map(str::to_owned)
    }

    /// Events about the Ingress `name`: (type, reason, note).
    pub async fn events(&self, name: &str) -> Vec<(String, String, String)> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), "default");
        api.list(&Default::default())
            .await
            .expect("events")
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .map(|e| {
                (
                    e.type_.unwrap_or_default(),
                    e.reason.unwrap_or_default(),
                    e.note.unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Names of the global resources of a Compute collection.
    pub fn gce_names(&self, collection: &str) -> BTreeSet<String> {
        let marker = format!("/global/{collection}/");
        let state = self.gce.state();
        state["resources"]
            .as_object()
            .map(|r| {
                r.keys()
                    .filter_map(|p| p.split_once(&marker).map(|(_, n)| n.to_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn gce_resource(&self, collection: &str, name: &str) -> Option<Value> {
        self.gce
            .resource(&format!("projects/{PROJECT}/global/{collection}/{name}"))
    }

    /// Every Compute resource path except the seeded instances.
    pub fn gce_paths(&self) -> Vec<String> {
        let state = self.gce.state();
        state["resources"]
            .as_object()
            .map(|r| r.keys().filter(|p| !p.contains("/instances/")).cloned().collect())
            .unwrap_or_default()
    }
}

pub const WAIT: Duration = Duration::from_secs(30);

pub const ECHO: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: default}
spec:
  type: NodePort
  selector: {app: echo}
  ports:
  - {name: http, port: 80, targetPort: 8080, protocol: TCP}
"#;

/// An Ingress of our class, default backend `echo:80`.
pub fn ingress(name: &str) -> String {
    format!(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: {name}, namespace: default}}
spec:
  ingressClassName: gce
  defaultBackend:
    service: {{name: echo, port: {{number: 80}}}}
"#
    )
}

/// The cluster UID tests pass with `--cluster-uid` when they need the controller's names.
pub const CLUSTER_UID: &str = "test-cluster-uid";

/// Names the controller gives with [`CLUSTER_UID`].
pub fn namer() -> cloud::gce::names::Namer {
    cloud::gce::names::Namer::new(CLUSTER_UID)
}

impl Harness {
    /// Sends a Compute request as a user would (`path` under the project, e.g.
    /// `global/firewalls`) and waits for its operation; the answer's status.
    pub async fn gce_call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> u16 {
        let http = reqwest::Client::new();
        let url = format!("{}projects/{PROJECT}/{path}", self.gce.base_url());
        let mut request = http.request(method, url).bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("compute request");
        let status = response.status().as_u16();
        let op: Value = response.json().await.unwrap_or_default();
        if let Some(link) = op["selfLink"]
            .as_str()
            .filter(|_| op["kind"] == "compute#operation")
        {
            let wait = format!(
                "{}/wait",
                link.replace("https://www.googleapis.com/compute/v1/", &self.gce.base_url())
            );
            http.post(wait).bearer_auth(TOKEN).send().await.expect("wait");
        }
        status
    }
}
