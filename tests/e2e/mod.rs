//! End-to-end support: the real `cloud-lb-controller` binary, spawned, against a cluster and a
//! Compute API reached over HTTP only.
//!
//! By default both are fakes started in this process (fake-kube with three nodes, fake-gce with
//! the matching instances). Point the suite elsewhere with:
//! - `E2E_KUBECONFIG`: a real cluster (kind, GKE…). Nodes are not created; each test works in a
//!   namespace of its own, which it deletes at the end.
//! - `E2E_GCE_ENDPOINT` (+ `E2E_GCE_PROJECT`, `E2E_GCE_ACCESS_TOKEN`): a real or external Compute
//!   API. Each test uses a cluster UID of its own, and checks only resources recording it.
#![allow(dead_code)]

#[path = "../support/wait.rs"]
mod wait;
pub use wait::eventually;
#[path = "../support/journal.rs"]
mod journal;
#[allow(unused_imports)] // not every test file replays the journal
pub use journal::*;

use cloud_lb_controller::sandbox::node_ports::{Node, NodePorts};
use fake_gce::{FakeGce, InstanceSeed};
use fake_kube::FakeKube;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

pub const WAIT: Duration = Duration::from_secs(60);
const NODES: [(&str, &str); 2] = [("us-central1-a", "e2e-node-a"), ("us-central1-b", "e2e-node-b")];

/// The Compute API, as a client sees it.
pub struct Gce {
    http: reqwest::Client,
    pub base: String,
    pub project: String,
    token: String,
}

impl Gce {
    fn url(&self, path: &str) -> String {
        format!("{}projects/{}/{path}", self.base, self.project)
    }

    /// Every item of a global collection (`urlMaps`, `forwardingRules`…).
    pub async fn list(&self, collection: &str) -> Vec<Value> {
        self.list_path(&format!("global/{collection}")).await
    }

    async fn list_path(&self, path: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut request = self.http.get(self.url(path)).bearer_auth(&self.token);
            if let Some(t) = &token {
                request = request.query(&[("pageToken", t)]);
            }
            let page: Value = request.send().await.expect("list").json().await.expect("json");
            items.extend(page["items"].as_array().cloned().unwrap_or_default());
            match page["nextPageToken"].as_str() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => return items,
            }
        }
    }

    /// One global resource, if it exists.
    pub async fn get(&self, collection: &str, name: &str) -> Option<Value> {
        let response = self
            .http
            .get(self.url(&format!("global/{collection}/{name}")))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("get");
        response
            .status()
            .is_success()
            .then_some(response.json().await.expect("json"))
    }

    /// Creates a global resource as a user would, and waits for it.
    pub async fn create(&self, collection: &str, body: Value) {
        let op: Value = self
            .http
            .post(self.url(&format!("global/{collection}")))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .expect("insert")
            .json()
            .await
            .expect("json");
        let name = op["name"].as_str().expect("an operation").to_owned();
        self.http
            .post(self.url(&format!("global/operations/{name}/wait")))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("wait");
    }

    /// Every resource (global kinds and the zonal instance groups) whose description records
    /// `cluster`: `collection/name`.
    pub async fn owned_by(&self, cluster: &str) -> Vec<String> {
        let mut out = Vec::new();
        for collection in [
            "forwardingRules",
            "targetHttpProxies",
            "targetHttpsProxies",
            "urlMaps",
            "sslCertificates",
            "addresses",
            "backendServices",
            "healthChecks",
            "firewalls",
        ] {
            for item in self.list(collection).await {
                if item["description"].as_str().unwrap_or_default().contains(cluster) {
                    out.push(format!(
                        "{collection}/{}",
                        item["name"].as_str().unwrap_or_default()
                    ));
                }
            }
        }
        for zone in self.list_path("zones").await {
            let zone = zone["name"].as_str().unwrap_or_default().to_owned();
            for item in self.list_path(&format!("zones/{zone}/instanceGroups")).await {
                if item["description"].as_str().unwrap_or_default().contains(cluster) {
                    out.push(format!(
                        "zones/{zone}/instanceGroups/{}",
                        item["name"].as_str().unwrap_or_default()
                    ));
                }
            }
        }
        out
    }
}

/// A cluster, a Compute API, and the controller binary running against them.
pub struct Env {
    _kube: Option<FakeKube>,
    _gce: Option<FakeGce>,
    pub kubeconfig: PathBuf,
    pub client: Client,
    pub gce: Gce,
    pub namespace: String,
    pub cluster_uid: String,
    controller: Option<Child>,
    pub log: PathBuf,
    /// With [`Env::start_serving`]: echo servers behind the nodes' node ports.
    serving: Option<(
        cloud_lb_controller::sandbox::node_ports::NodePorts,
        fake_gce::LoopbackBlock,
    )>,
}

static N: AtomicU32 = AtomicU32::new(0);

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

impl Env {
    pub async fn start() -> Env {
        Self::start_with(None).await
    }

    /// With fake-gce's data plane: the load balancers serve on loopback, the nodes have loopback
    /// addresses and every node port is served there by an echo server naming the node and the
    /// Service; health checks probe every `probe_interval`. `None` when the suite is pointed at
    /// an external Compute API or cluster (there is no data plane to reach then).
    pub async fn start_serving(probe_interval: Duration) -> Option<Env> {
        if std::env::var_os("E2E_GCE_ENDPOINT").is_some() || std::env::var_os("E2E_KUBECONFIG").is_some() {
            eprintln!("an external cluster or Compute API: no data plane to send traffic to, skipping");
            return None;
        }
        let block = fake_gce::LoopbackBlock::claim().expect("a loopback block for the nodes");
        let names: Vec<&str> = NODES.iter().map(|(_, n)| *n).collect();
        let nodes = Node::on_block(&block, &names);
        let ips = nodes.iter().map(|n| n.ip).collect();
        let mut env = Self::start_with(Some((ips, probe_interval))).await;
        env.serving = Some((NodePorts::start(env.client.clone(), nodes), block));
        Some(env)
    }

    /// Takes a node's echo servers down (its node ports refuse connections) or brings them back.
    pub async fn set_node_serving(&self, node: &str, serving: bool) {
        let (node_ports, _) = self.serving.as_ref().expect("started with start_serving");
        node_ports.set_serving(node, serving).await;
    }

    /// The nodes' names.
    pub fn node_names(&self) -> Vec<&'static str> {
        NODES.iter().map(|(_, n)| *n).collect()
    }

    /// The state annotation, parsed.
    pub async fn state(&self, name: &str) -> Option<Value> {
        let raw = self
            .annotation(name, cloud_lb_controller::annotations::STATE)
            .await?;
        serde_json::from_str(&raw).ok()
    }

    /// Where the fake's data plane serves the load balancer at `address` on `port`.
    pub fn serving_address(&self, address: &str, port: u16) -> std::net::SocketAddr {
        self.fake_gce()
            .and_then(|g| g.serving_address(address, port))
            .unwrap_or_else(|| panic!("nothing serves {address}:{port}"))
    }

    async fn start_with(serving: Option<(Vec<std::net::IpAddr>, Duration)>) -> Env {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let id = unique("e2e");
        let (fake_kube, kubeconfig) = match std::env::var_os("E2E_KUBECONFIG") {
            Some(path) => (None, PathBuf::from(path)),
            None => {
                let kube = FakeKube::start(fake_kube::Config::default())
                    .await
                    .expect("fake-kube");
                let path = std::env::temp_dir().join(format!("{id}.kubeconfig"));
                kube.write_kubeconfig(&path).expect("kubeconfig");
                (Some(kube), path)
            }
        };
        let (fake_gce, gce) = match std::env::var("E2E_GCE_ENDPOINT") {
            Ok(endpoint) => (
                None,
                Gce {
                    http: reqwest::Client::new(),
                    base: endpoint,
                    project: std::env::var("E2E_GCE_PROJECT").expect("E2E_GCE_PROJECT with E2E_GCE_ENDPOINT"),
                    token: std::env::var("E2E_GCE_ACCESS_TOKEN").unwrap_or_default(),
                },
            ),
            Err(_) => {
                let ips: Vec<Option<String>> = match &serving {
                    Some((ips, _)) => ips.iter().map(|ip| Some(ip.to_string())).collect(),
                    None => vec![None; NODES.len()],
                };
                let gce = FakeGce::start(fake_gce::Config {
                    project_id: "e2e-project".into(),
                    require_token: Some("e2e-token".into()),
                    instances: NODES
                        .iter()
                        .zip(ips)
                        .map(|((z, n), ip)| InstanceSeed {
                            ip,
                            ..InstanceSeed::new(z, n)
                        })
                        .collect(),
                    data_plane: serving.as_ref().map(|(_, probe_interval)| fake_gce::DataPlane {
                        probe_interval: Some(*probe_interval),
                        ..Default::default()
                    }),
                    ..fake_gce::Config::default()
                })
                .await
                .expect("fake-gce");
                let api = Gce {
                    http: reqwest::Client::new(),
                    base: gce.base_url(),
                    project: "e2e-project".into(),
                    token: "e2e-token".into(),
                };
                (Some(gce), api)
            }
        };
        let client = cloud_lb_controller::run::kube_client(Some(&kubeconfig), "e2e")
            .await
            .expect("client");
        let env = Env {
            _kube: fake_kube,
            _gce: fake_gce,
            kubeconfig,
            client,
            gce,
            namespace: id.clone(),
            cluster_uid: format!("{id}-uid"),
            controller: None,
            log: std::env::temp_dir().join(format!("{id}.log")),
            serving: None,
        };
        if env._kube.is_some() {
            for (zone, name) in NODES {
                env.apply_value(json!({
                    "apiVersion": "v1", "kind": "Node",
                    "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone}},
                    "spec": {"providerID": format!("gce://{}/{zone}/{name}", env.gce.project)},
                }))
                .await;
            }
        }
        let namespaces: Api<Namespace> = Api::all(env.client.clone());
        let ns = Namespace {
            metadata: kube::api::ObjectMeta {
                name: Some(env.namespace.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .expect("namespace");
        env
    }

    /// Spawns the controller binary, watching this test's namespace only.
    pub fn start_controller(&mut self) {
        self.start_controller_with(&[]);
    }

    /// The same, with more flags.
    pub fn start_controller_with(&mut self, extra: &[&str]) {
        let log = std::fs::File::create(&self.log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_cloud-lb-controller"))
            .args(["run", "--kubeconfig"])
            .arg(&self.kubeconfig)
            .args([
                "--gce-endpoint",
                &self.gce.base,
                "--gce-project",
                &self.gce.project,
                "--gce-access-token",
                &self.gce.token,
            ])
            .args([
                "--cluster-uid",
                &self.cluster_uid,
                "--watch-namespace",
                &self.namespace,
            ])
            .args([
                "--leader-election-id",
                &self.namespace,
                "--metrics-addr",
                "127.0.0.1:0",
                "--health-addr",
                "127.0.0.1:0",
                // Teardowns are looked at once (the grace has tests of its own).
                "--gce-removal-grace",
                "0s",
            ])
            .args(extra)
            .env(
                "RUST_LOG",
                std::env::var("E2E_RUST_LOG").unwrap_or_else(|_| "info".to_owned()),
            )
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn the controller");
        self.controller = Some(child);
    }

    /// Applies YAML documents in this test's namespace (server-side apply).
    pub async fn apply(&self, yaml: &str) {
        for doc in cloud_lb_controller::manifests::parse(yaml, "test").expect("yaml") {
            self.apply_value(doc).await;
        }
    }

    pub async fn apply_value(&self, mut doc: Value) {
        if !matches!(doc["kind"].as_str(), Some("Node" | "IngressClass" | "Namespace")) {
            doc["metadata"]["namespace"] = Value::String(self.namespace.clone());
        }
        cloud_lb_controller::manifests::apply(&self.client, &doc, "e2e")
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
    }

    pub fn ingresses(&self) -> Api<Ingress> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    pub async fn ingress(&self, name: &str) -> Option<Ingress> {
        self.ingresses().get_opt(name).await.expect("get")
    }

    pub async fn address(&self, name: &str) -> Option<String> {
        self.ingress(name)
            .await?
            .status?
            .load_balancer?
            .ingress?
            .first()?
            .ip
            .clone()
    }

    pub async fn annotation(&self, name: &str, key: &str) -> Option<String> {
        self.ingress(name).await?.metadata.annotations?.get(key).cloned()
    }

    pub async fn wait_address(&self, name: &str) -> String {
        eventually(
            &format!("an address for {name} (controller log: {})", self.log.display()),
            WAIT,
            || self.address(name),
        )
        .await
    }

    /// The resource named by one of the Ingress's annotations.
    pub async fn annotated(&self, ingress: &str, key: &str, collection: &str) -> Value {
        let name = self
            .annotation(ingress, key)
            .await
            .unwrap_or_else(|| panic!("no {key} on {ingress}"));
        self.gce
            .get(collection, &name)
            .await
            .unwrap_or_else(|| panic!("{collection}/{name} does not exist"))
    }

    pub async fn delete_ingress(&self, name: &str) {
        self.ingresses()
            .delete(name, &DeleteParams::default())
            .await
            .expect("delete");
        eventually(&format!("{name} deleted"), WAIT, || async {
            self.ingress(name).await.is_none().then_some(())
        })
        .await;
    }

    /// `kubectl` with this environment's kubeconfig, or `None` when kubectl is missing outside
    /// CI (under `CI=true` a missing kubectl fails the test).
    pub fn kubectl(&self) -> Option<Command> {
        tool("kubectl", &["version", "--client"])?;
        let mut c = Command::new("kubectl");
        c.env("KUBECONFIG", &self.kubeconfig)
            .arg("--namespace")
            .arg(&self.namespace);
        Some(c)
    }

    /// Runs `kubectl ARGS` (with `stdin` when given) off the async runtime, which the in-process
    /// fakes need to answer it; `None` when kubectl is missing outside CI.
    pub async fn kubectl_run(&self, args: &[&str], stdin: Option<&str>) -> Option<std::process::Output> {
        let mut command = self.kubectl()?;
        command.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        if stdin.is_some() {
            command.stdin(Stdio::piped());
        }
        let input = stdin.map(str::to_owned);
        let output = tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut child = command.spawn().expect("spawn kubectl");
            if let (Some(input), Some(mut pipe)) = (input, child.stdin.take()) {
                pipe.write_all(input.as_bytes()).expect("write to kubectl");
            }
            child.wait_with_output().expect("kubectl")
        })
        .await
        .expect("kubectl task");
        Some(output)
    }

    /// Where the controller serves `/healthz` (from its log), once it does.
    pub async fn admin_address(&self) -> String {
        eventually("the admin server's address in the log", WAIT, || async {
            let log = self.controller_log();
            let line = log.lines().find(|l| l.contains("admin server listening"))?;
            let start = line.find("address=")? + "address=".len();
            Some(line[start..].split_whitespace().next()?.to_owned())
        })
        .await
    }

    /// Kills the controller as a crash would (SIGKILL), and reaps it.
    pub fn kill_controller(&mut self) {
        if let Some(mut child) = self.controller.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The fake Compute API, when it is the fake.
    pub fn fake_gce(&self) -> Option<&FakeGce> {
        self._gce.as_ref()
    }

    /// The fake Compute API's own root (admin routes under `/_fake/`), when it is the fake.
    pub fn fake_gce_root(&self) -> Option<String> {
        self._gce.as_ref().map(|g| g.endpoint())
    }

    /// Stops the fake cluster (its open watches end, new connections are refused); `false` when
    /// the cluster is a real one.
    pub async fn stop_cluster(&mut self) -> bool {
        match self._kube.take() {
            Some(kube) => {
                kube.shutdown().await;
                true
            }
            None => false,
        }
    }

    /// The controller's log so far, for failure messages.
    pub fn controller_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(mut child) = self.controller.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// `Some(())` when the command `name` runs (`name ARGS`); `None` when it is missing outside CI
/// (the test skips), a failure under `CI=true`, where `.ci/run` installs it.
pub fn tool(name: &str, args: &[&str]) -> Option<()> {
    let found = Command::new(name)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{name} is not installed (CI=true)"
        );
        eprintln!("{name} is not installed: skipping");
    }
    found.then_some(())
}

/// A self-signed certificate and key for `host`, PEM.
pub fn certificate(host: &str) -> (String, String) {
    let ck = rcgen::generate_simple_self_signed(vec![host.to_owned()]).expect("certificate");
    (ck.cert.pem(), ck.signing_key.serialize_pem())
}

/// A TLS Secret as YAML.
pub fn tls_secret(name: &str, host: &str) -> String {
    let (cert, key) = certificate(host);
    serde_json::to_string(&json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "kubernetes.io/tls",
        "stringData": {"tls.crt": cert, "tls.key": key},
    }))
    .expect("json")
}

/// NodePort Services `name` on port 80.
pub fn service(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec:\n  type: NodePort\n  selector: {{app: {name}}}\n  ports:\n  - {{port: 80, targetPort: 8080, protocol: TCP}}\n"
    )
}

/// The last segment of a link.
pub fn name_of(link: &Value) -> String {
    link.as_str()
        .unwrap_or_default()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned()
}
