//! The reliability suite: the real controller binary against fake-kube and fake-gce in this
//! process, under injected faults, `kill -9`, leadership changes and foreign resources. Every
//! random choice comes from a seed, every wait is for the condition asserted, and every figure is
//! read from the fakes' own records (fake-gce's journal, fake-kube's request log).
//!
//! Each scenario returns [`Figures`]; the tests in `tests/reliability.rs` run a short profile
//! and assert on them, and an ignored test runs a long profile and prints them as a table.
#![allow(dead_code)]

#[path = "../support/wait.rs"]
mod wait;
pub use wait::eventually;
#[path = "../support/journal.rs"]
mod journal;
pub use journal::*;

use fake_gce::{FakeGce, FaultAction, FaultRule, InstanceSeed, JournalEvent, Latency, RejectReason};
use fake_kube::FakeKube;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{DeleteParams, ListParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

pub const PROJECT: &str = "reliability";
pub const TOKEN: &str = "reliability-token";
pub const NAMESPACE: &str = "default";
const NODES: [(&str, &str); 3] = [
    ("us-central1-a", "node-a1"),
    ("us-central1-a", "node-a2"),
    ("us-central1-b", "node-b1"),
];
/// Generous: the machines are shared, and the long profile creates hundreds of Ingresses.
pub const WAIT: Duration = Duration::from_secs(
    // Generous for the long profile; a short failure message sooner when asked.
    300,
);

/// What a scenario measured.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    pub scenario: &'static str,
    pub ingresses: usize,
    pub kills: usize,
    /// Compute requests the fake received, and how many of them it failed on purpose (a
    /// synchronous 5xx/429, or an operation failed at completion).
    pub requests: usize,
    pub faults: usize,
    pub mutations: usize,
    /// Seconds until every Ingress was Ready, and until every one was gone with its resources.
    pub converge_secs: f64,
    pub delete_secs: f64,
    /// The most resources of one kind one Ingress had at any moment (certificates counted
    /// apart: one per TLS Secret at rest, one more while it rotates).
    pub max_per_kind: usize,
    pub max_certificates: usize,
    /// Resources of ours left at the end.
    pub leaks: usize,
    /// Moments a forwarding rule of ours existed without the firewall rule (replayed).
    pub firewall_gaps: usize,
    /// Free-form: what else the scenario checked.
    pub notes: String,
}

impl Figures {
    /// The figures as a Markdown table.
    pub fn table(all: &[Figures]) -> String {
        let mut out = String::from(
            "| scenario | Ingresses | kills | Compute requests | faults injected | mutations | converged (s) | deleted (s) | max per kind | max certs | leaks | firewall gaps | notes |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        );
        for f in all {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} ({:.1} %) | {} | {:.1} | {:.1} | {} | {} | {} | {} | {} |\n",
                f.scenario,
                f.ingresses,
                f.kills,
                f.requests,
                f.faults,
                100.0 * f.faults as f64 / f.requests.max(1) as f64,
                f.mutations,
                f.converge_secs,
                f.delete_secs,
                f.max_per_kind,
                f.max_certificates,
                f.leaks,
                f.firewall_gaps,
                f.notes
            ));
        }
        out
    }
}

/// A small seeded generator (SplitMix64): the same seed, the same choices.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi` (milliseconds, say).
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo).max(1)
    }
}

/// One Ingress of a scenario: its Services, and whether it has TLS.
#[derive(Clone, Debug)]
pub struct Spec {
    pub name: String,
    pub services: usize,
    pub tls: bool,
}

/// `n` Ingresses: 1–3 Services each, a third with TLS.
pub fn specs(n: usize) -> Vec<Spec> {
    (0..n)
        .map(|i| Spec {
            name: format!("ing-{i}"),
            services: 1 + i % 3,
            tls: i % 3 == 0,
        })
        .collect()
}

/// The fakes, and the controller replicas running against them.
pub struct Cluster {
    pub kube: FakeKube,
    pub gce: FakeGce,
    pub client: Client,
    pub kubeconfig: PathBuf,
    pub cluster_uid: String,
    dir: PathBuf,
}

static N: AtomicU32 = AtomicU32::new(0);

impl Cluster {
    /// Both fakes, with the cluster's nodes and their VMs.
    pub async fn start(seed: u64, latency: Duration) -> Cluster {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let gce = FakeGce::start(fake_gce::Config {
            project_id: PROJECT.into(),
            require_token: Some(TOKEN.into()),
            instances: NODES.iter().map(|(z, n)| InstanceSeed::new(z, n)).collect(),
            seed,
            ..fake_gce::Config::default()
        })
        .await
        .expect("fake-gce");
        gce.set_latency(Latency::uniform(latency));
        let kube = FakeKube::start(fake_kube::Config::default())
            .await
            .expect("fake-kube");
        let id = format!(
            "reliability-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(&id);
        std::fs::create_dir_all(&dir).expect("a directory for logs");
        let kubeconfig = dir.join("kubeconfig");
        kube.write_kubeconfig(&kubeconfig).expect("kubeconfig");
        let client = Client::try_from(kube::Config::new(kube.url().parse().expect("url"))).expect("client");
        let cluster = Cluster {
            kube,
            gce,
            client,
            kubeconfig,
            cluster_uid: format!("{id}-uid"),
            dir,
        };
        for (zone, name) in NODES {
            cluster
                .apply(json!({
                    "apiVersion": "v1", "kind": "Node",
                    "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone}},
                    "spec": {"providerID": format!("gce://{PROJECT}/{zone}/{name}")},
                }))
                .await;
        }
        cluster
    }

    /// Server-side applies one object.
    pub async fn apply(&self, doc: Value) {
        cloud_lb_controller::manifests::apply(&self.client, &doc, "reliability")
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
    }

    /// Starts the controller binary as replica `identity`.
    pub fn spawn(&self, identity: &str, extra: &[&str]) -> Replica {
        let log = self.dir.join(format!("{identity}.log"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let base = self.gce.base_url();
        let child = Command::new(env!("CARGO_BIN_EXE_cloud-lb-controller"))
            .arg("run")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args([
                "--gce-endpoint",
                &base,
                "--gce-project",
                PROJECT,
                "--gce-access-token",
                TOKEN,
            ])
            .args(["--cluster-uid", &self.cluster_uid, "--identity", identity])
            .args(["--metrics-addr", "127.0.0.1:0", "--health-addr", "127.0.0.1:0"])
            .args([
                "--gce-qps",
                "200",
                "--gce-burst",
                "200",
                "--gce-removal-grace",
                "0s",
            ])
            .args(if extra.contains(&"--resync-period") {
                &[][..]
            } else {
                &["--resync-period", "1h"][..]
            })
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(file.try_clone().expect("log"))
            .stderr(file)
            .spawn()
            .expect("spawn the controller");
        Replica {
            child: Some(child),
            identity: identity.to_owned(),
            log,
        }
    }

    /// Creates the Services, Secrets and Ingresses of `specs`.
    pub async fn create(&self, specs: &[Spec]) {
        for spec in specs {
            for s in 0..spec.services {
                self.apply(json!({
                    "apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": format!("{}-svc-{s}", spec.name), "namespace": NAMESPACE},
                    "spec": {"type": "NodePort", "selector": {"app": spec.name}, "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]},
                }))
                .await;
            }
            if spec.tls {
                self.tls_secret(spec).await;
            }
            self.apply(ingress(spec)).await;
        }
    }

    /// Writes (or rotates) the TLS Secret of `spec` with a fresh certificate.
    pub async fn tls_secret(&self, spec: &Spec) {
        let host = format!("{}.example.com", spec.name);
        let ck = rcgen::generate_simple_self_signed(vec![host]).expect("certificate");
        self.apply(json!({
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": format!("{}-tls", spec.name), "namespace": NAMESPACE},
            "stringData": {"tls.crt": ck.cert.pem(), "tls.key": ck.signing_key.serialize_pem()},
        }))
        .await;
    }

    pub fn ingresses(&self) -> Api<Ingress> {
        Api::namespaced(self.client.clone(), NAMESPACE)
    }

    /// The state annotation of every Ingress, parsed, by name.
    pub async fn states(&self) -> BTreeMap<String, Value> {
        let Ok(list) = self.ingresses().list(&ListParams::default()).await else {
            return BTreeMap::new();
        };
        list.items
            .into_iter()
            .filter_map(|i| {
                let state = i
                    .metadata
                    .annotations?
                    .get(cloud_lb_controller::annotations::STATE)?
                    .clone();
                Some((i.metadata.name?, serde_json::from_str(&state).ok()?))
            })
            .collect()
    }

    /// Waits until every one of `specs` is Ready and `accept` holds for its state.
    pub async fn wait_ready(&self, specs: &[Spec], accept: impl Fn(&str, &Value) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let states = self.states().await;
            let waiting: Vec<(&String, Option<&Value>)> = specs
                .iter()
                .map(|s| (&s.name, states.get(&s.name)))
                .filter(|(name, st)| !st.is_some_and(|st| st["state"] == "Ready" && accept(name, st)))
                .collect();
            if waiting.is_empty() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} of {} Ingresses not Ready, e.g. {:?}\n{}",
                waiting.len(),
                specs.len(),
                waiting.first(),
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Deletes every Ingress of `specs`.
    pub async fn delete(&self, specs: &[Spec]) {
        for spec in specs {
            let _ = self
                .ingresses()
                .delete(&spec.name, &DeleteParams::default())
                .await;
        }
    }

    /// Waits until no Ingress is left and nothing of this cluster is in the cloud but `keep`.
    pub async fn wait_gone(&self, keep: &BTreeSet<String>) {
        eventually("every Ingress and its resources gone", WAIT, || async {
            let left = self
                .ingresses()
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .len();
            (left == 0 && self.ours(keep).is_empty()).then_some(())
        })
        .await;
    }

    /// Paths of every resource in the fake but the VMs and `keep`.
    pub fn ours(&self, keep: &BTreeSet<String>) -> Vec<String> {
        let state = self.gce.state();
        state["resources"]
            .as_object()
            .map(|r| {
                r.keys()
                    .filter(|p| !p.contains("/instances/") && !keep.contains(*p))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// What the fakes recorded of a scenario: requests, faults, mutations, the replay of the
    /// journal, and what is left but `keep`.
    pub fn figures(&self, scenario: &'static str, ingresses: usize, keep: &BTreeSet<String>) -> Figures {
        let (requests, faults, mutations) = self.counts();
        let (max_per_kind, max_certificates, firewall_gaps) = self.replay();
        Figures {
            scenario,
            ingresses,
            requests,
            faults,
            mutations,
            max_per_kind,
            max_certificates,
            leaks: self.ours(keep).len(),
            firewall_gaps,
            ..Figures::default()
        }
    }

    /// Requests, injected faults and mutations so far, from the journal.
    pub fn counts(&self) -> (usize, usize, usize) {
        let journal = self.gce.journal();
        let (mut requests, mut faults, mut mutations) = (0, 0, 0);
        for entry in &journal.entries {
            match &entry.event {
                JournalEvent::Request(r) => {
                    requests += 1;
                    faults += usize::from(r.rejected == Some(RejectReason::Injected));
                    mutations += usize::from(r.is_mutation() && r.rejected.is_none());
                }
                JournalEvent::Applied(a) => {
                    // An operation failed on purpose (the fake's own failures carry other codes).
                    faults += usize::from(a.error_code.as_deref() == Some("INTERNAL_ERROR"));
                }
            }
        }
        (requests, faults, mutations)
    }

    /// Replays the journal: the most resources of one kind one Ingress had at once (and of
    /// certificates), and whether a forwarding rule ever stood without the firewall rule.
    pub fn replay(&self) -> (usize, usize, usize) {
        let journal = self.gce.journal();
        assert_eq!(journal.dropped, 0, "the journal overflowed: raise its capacity");
        let mut live: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
        let (mut max, mut max_certs) = (0, 0);
        for change in creations_and_deletions(&journal) {
            let Some(key) = lb_of(&change.collection, &change.name) else {
                continue;
            };
            let set = live.entry(key).or_default();
            replay(set, &change);
            if change.collection == "sslCertificates" {
                max_certs = max_certs.max(set.len());
            } else {
                max = max.max(set.len());
            }
        }
        let gaps = usize::from(firewall_always_covers_forwarding_rules(&journal).is_err());
        (max, max_certs, gaps)
    }

    /// The Lease's holder.
    pub async fn leader(&self, lease: &str) -> Option<String> {
        let api: Api<Lease> = Api::namespaced(self.client.clone(), "kube-system");
        api.get_opt(lease).await.ok()??.spec?.holder_identity
    }

    /// Moments of the controller's log files, for a failure message.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        if let Ok(dir) = std::fs::read_dir(&self.dir) {
            for entry in dir
                .flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
            {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                out.push_str(&format!("--- {} (last lines)\n", entry.path().display()));
                for line in tail.into_iter().rev() {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        out
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// (`kind`, Ingress) of a per-load-balancer resource name
/// (`clb-<c8>-<kind>-<ns>-<name>-<h8>`, certificates `clb-<c8>-cr-<h8>-<sha>`), or `None`.
fn lb_of(collection: &str, name: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = name.split('-').collect();
    let kind = *parts.get(2)?;
    match kind {
        "cr" => Some((collection.to_owned(), parts.get(3)?.to_string())),
        "um" | "rm" | "tp" | "ts" | "fr" | "fs" | "ad" => {
            Some((format!("{collection}/{kind}"), parts.last()?.to_string()))
        }
        _ => None,
    }
}

/// The Ingress of `spec`: default backend its first Service, paths to the others, TLS if any.
pub fn ingress(spec: &Spec) -> Value {
    let service =
        |s: usize| json!({"service": {"name": format!("{}-svc-{s}", spec.name), "port": {"number": 80}}});
    let paths: Vec<Value> = (1..spec.services)
        .map(|s| json!({"path": format!("/p{s}"), "pathType": "Prefix", "backend": service(s)}))
        .collect();
    let mut body = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": spec.name, "namespace": NAMESPACE},
        "spec": {"ingressClassName": "gce", "defaultBackend": service(0)},
    });
    if !paths.is_empty() {
        body["spec"]["rules"] =
            json!([{"host": format!("{}.example.com", spec.name), "http": {"paths": paths}}]);
    }
    if spec.tls {
        body["spec"]["tls"] = json!([{"secretName": format!("{}-tls", spec.name)}]);
    }
    body
}

/// One controller process.
pub struct Replica {
    child: Option<Child>,
    pub identity: String,
    pub log: PathBuf,
}

impl Replica {
    fn pid(&self) -> String {
        self.child
            .as_ref()
            .map(|c| c.id().to_string())
            .unwrap_or_default()
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.pid()])
            .stderr(Stdio::null())
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal} failed");
    }

    /// `kill -9`, and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes it (SIGSTOP): as a long pause or a partition would, it does nothing at all.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    /// SIGTERM: a graceful stop.
    pub fn terminate(&self) {
        self.signal("-TERM");
    }

    /// Whether it has exited.
    pub fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|c| c.try_wait().ok().flatten().is_some())
    }

    /// The User-Agent of its requests contains this.
    pub fn agent(&self) -> String {
        format!("({})", self.identity)
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The fault rules of the soak: ≥10 % of all Compute requests answered 503 or 429, and ≥5 % of
/// the mutations accepted but their operation failed.
pub fn soak_faults(seed: u64) -> Vec<FaultRule> {
    let any = |action: FaultAction, p: f64, salt: u64| FaultRule {
        method: None,
        path: Some("/compute/".into()),
        after: 0,
        times: None,
        probability: Some(p),
        seed: Some(seed.wrapping_add(salt)),
        action,
    };
    vec![
        any(
            FaultAction::Error {
                status: 503,
                reason: "backendError".into(),
                message: "Backend Error".into(),
            },
            0.06,
            1,
        ),
        any(
            FaultAction::Error {
                status: 429,
                reason: "rateLimitExceeded".into(),
                message: "Rate Limit Exceeded".into(),
            },
            0.06,
            2,
        ),
        any(
            FaultAction::FailOperation {
                status: 500,
                code: "INTERNAL_ERROR".into(),
                message: "Internal error.".into(),
            },
            0.06,
            3,
        ),
    ]
}

/// The flags of a single replica that restarts at once (no lease to wait for).
pub const SINGLE: [&str; 1] = ["--leader-elect=false"];

/// Fault soak: `n` Ingresses under injected faults converge, then are deleted leaving nothing.
pub async fn fault_soak(n: usize, seed: u64) -> Figures {
    let cluster = Cluster::start(seed, Duration::ZERO).await;
    for rule in soak_faults(seed) {
        cluster.gce.add_fault(rule).expect("fault");
    }
    let specs = specs(n);
    let _replica = cluster.spawn("soak", &SINGLE);
    let start = Instant::now();
    cluster.create(&specs).await;
    cluster.wait_ready(&specs, |_, _| true).await;
    let converge_secs = start.elapsed().as_secs_f64();
    let start = Instant::now();
    cluster.delete(&specs).await;
    cluster.wait_gone(&BTreeSet::new()).await;
    let delete_secs = start.elapsed().as_secs_f64();
    Figures {
        converge_secs,
        delete_secs,
        ..cluster.figures("fault soak", n, &BTreeSet::new())
    }
}

/// Crash: `n` Ingresses created, their certificates rotated, then deleted, while the controller
/// is killed (`kill -9`) `kills` times at random moments spread over the three phases.
pub async fn crash(n: usize, kills: usize, seed: u64) -> Figures {
    let mut rng = Rng::new(seed);
    // Operations take a while, so that a kill lands in the middle of a chain.
    let cluster = Cluster::start(seed, Duration::from_millis(40)).await;
    let specs = specs(n);
    let mut replica = cluster.spawn("crash", &SINGLE);
    let per_phase = [kills / 3, kills / 3, kills - 2 * (kills / 3)];
    let mut killed = 0;

    let start = Instant::now();
    let creating = cluster.create(&specs);
    let (_, r) = tokio::join!(creating, kill_a_few(&cluster, per_phase[0], replica, &mut rng));
    replica = r;
    killed += per_phase[0];
    cluster.wait_ready(&specs, |_, _| true).await;
    let converge_secs = start.elapsed().as_secs_f64();

    // Rotation: each TLS Secret gets a new certificate; Ready again once the state judged it.
    let before = cluster.states().await;
    let tls: Vec<Spec> = specs.iter().filter(|s| s.tls).cloned().collect();
    let rotating = async {
        for spec in &tls {
            cluster.tls_secret(spec).await;
        }
    };
    let (_, r) = tokio::join!(rotating, kill_a_few(&cluster, per_phase[1], replica, &mut rng));
    replica = r;
    killed += per_phase[1];
    cluster
        .wait_ready(&specs, |name, state| {
            !tls.iter().any(|s| s.name == name)
                || before
                    .get(name)
                    .is_none_or(|b| b["observedInputs"] != state["observedInputs"])
        })
        .await;
    // The old certificates are gone: one per TLS Ingress.
    eventually("one certificate per TLS Ingress", WAIT, || async {
        let certs = cluster
            .ours(&BTreeSet::new())
            .iter()
            .filter(|p| p.contains("/sslCertificates/"))
            .count();
        (certs == tls.len()).then_some(())
    })
    .await;

    let start = Instant::now();
    let deleting = cluster.delete(&specs);
    let (_, r) = tokio::join!(deleting, kill_a_few(&cluster, per_phase[2], replica, &mut rng));
    let _replica = r;
    killed += per_phase[2];
    cluster.wait_gone(&BTreeSet::new()).await;
    let delete_secs = start.elapsed().as_secs_f64();

    Figures {
        converge_secs,
        delete_secs,
        kills: killed,
        notes: "kills spread over creation, certificate rotation and deletion".into(),
        ..cluster.figures("crash (kill -9)", n, &BTreeSet::new())
    }
}

/// Kills `replica` (`kill -9`) `count` times at random moments, starting it again each time.
async fn kill_a_few(cluster: &Cluster, count: usize, mut replica: Replica, rng: &mut Rng) -> Replica {
    for _ in 0..count {
        tokio::time::sleep(Duration::from_millis(rng.between(100, 900))).await;
        replica.kill9();
        replica = cluster.spawn("crash", &SINGLE);
    }
    replica
}

/// Leadership: the leader is frozen (SIGSTOP) mid-provisioning until the standby has taken the
/// lease, then thawed: it must send no Compute mutation after the standby took over. Then the
/// new leader is stopped gracefully (SIGTERM) mid-provisioning: its last mutation must come
/// before it releases the lease.
pub async fn leadership(n: usize, seed: u64) -> Figures {
    const LEASE: &str = "cloud-lb-controller";
    let leases = [
        "--leader-elect-lease-duration",
        "3s",
        "--leader-elect-renew-deadline",
        "2s",
        "--leader-elect-retry-period",
        "250ms",
    ];
    // Slow operations: when the leader freezes, many of its operations are under way, each one
    // followed by another write as soon as it is done.
    let cluster = Cluster::start(seed, Duration::from_millis(300)).await;
    let mut a = cluster.spawn("replica-a", &leases);
    eventually("replica-a leads", WAIT, || async {
        (cluster.leader(LEASE).await.as_deref() == Some("replica-a")).then_some(())
    })
    .await;
    let mut b = cluster.spawn("replica-b", &leases);
    let all = specs(2 * n);
    let (first, second) = all.split_at(n);
    let start = Instant::now();
    cluster.create(first).await;
    let mutations_of = |agent: &str| -> Vec<SystemTime> {
        cluster
            .gce
            .journal()
            .entries
            .iter()
            .filter_map(|e| match &e.event {
                JournalEvent::Request(r)
                    if r.is_mutation() && r.user_agent.as_deref().is_some_and(|u| u.contains(agent)) =>
                {
                    Some(e.at)
                }
                _ => None,
            })
            .collect()
    };
    // Mid-provisioning: writes made, and many operations under way.
    eventually("replica-a at work", WAIT, || async {
        let pending = cluster.gce.state()["pendingOperations"].as_u64().unwrap_or(0);
        (mutations_of(&a.agent()).len() >= 10 && pending >= 6).then_some(())
    })
    .await;
    a.freeze();
    let frozen_at = SystemTime::now();
    eventually("replica-b leads", WAIT, || async {
        (cluster.leader(LEASE).await.as_deref() == Some("replica-b")).then_some(())
    })
    .await;
    // The moment the lease passed: replica-b's first successful write of it after the freeze.
    let took_over = cluster
        .kube
        .requests()
        .into_iter()
        .filter(|r| {
            r.resource == "leases"
                && matches!(r.verb.as_str(), "update" | "create" | "patch")
                && r.status < 300
                && r.received_at > frozen_at
                && r.user_agent.as_deref().is_some_and(|u| u.contains("(replica-b)"))
        })
        .map(|r| r.received_at)
        .min()
        .expect("replica-b wrote the lease");
    tokio::time::sleep(Duration::from_millis(500)).await;
    a.thaw();
    eventually("replica-a exits, having lost the lease", WAIT, || {
        let done = a.exited();
        async move { done.then_some(()) }
    })
    .await;
    cluster.wait_ready(first, |_, _| true).await;
    let a_late = mutations_of(&a.agent())
        .into_iter()
        .filter(|t| *t >= took_over)
        .count();
    let a_total = mutations_of(&a.agent()).len();

    // A graceful handover: replica-c waits; replica-b is stopped while it provisions.
    let _c = cluster.spawn("replica-c", &leases);
    let second_started = SystemTime::now();
    cluster.create(second).await;
    eventually("replica-b at work on the second batch", WAIT, || async {
        let busy = mutations_of(&b.agent())
            .into_iter()
            .filter(|t| *t > second_started)
            .count();
        (busy >= 5).then_some(())
    })
    .await;
    b.terminate();
    eventually("replica-b exits", WAIT, || {
        let done = b.exited();
        async move { done.then_some(()) }
    })
    .await;
    let released = cluster
        .kube
        .requests()
        .into_iter()
        .filter(|r| {
            r.resource == "leases"
                && r.verb == "update"
                && r.status < 300
                && r.user_agent.as_deref().is_some_and(|u| u.contains("(replica-b)"))
        })
        .map(|r| r.received_at)
        .max()
        .expect("replica-b's last lease write");
    let b_late = mutations_of(&b.agent())
        .into_iter()
        .filter(|t| *t >= released)
        .count();
    cluster.wait_ready(&all, |_, _| true).await;
    let converge_secs = start.elapsed().as_secs_f64();
    eventually("replica-c leads", WAIT, || async {
        (cluster.leader(LEASE).await.as_deref() == Some("replica-c")).then_some(())
    })
    .await;

    let start = Instant::now();
    cluster.delete(&all).await;
    cluster.wait_gone(&BTreeSet::new()).await;
    let delete_secs = start.elapsed().as_secs_f64();
    let figures = Figures {
        converge_secs,
        delete_secs,
        notes: format!(
            "frozen leader: {a_total} mutations, {a_late} after the lease passed; stopped leader: {b_late} after its release"
        ),
        ..cluster.figures("leadership", all.len(), &BTreeSet::new())
    };
    assert_eq!(
        a_late,
        0,
        "the frozen leader wrote after losing the lease\n{}",
        cluster.logs()
    );
    assert_eq!(
        b_late,
        0,
        "the stopped leader wrote after releasing the lease\n{}",
        cluster.logs()
    );
    figures
}

/// Foreign resources: things under our naming pattern that are not ours (no ownership record,
/// or another cluster's) stay byte-identical through resyncs, collections and a teardown.
pub async fn foreign(n: usize, seed: u64) -> Figures {
    let cluster = Cluster::start(seed, Duration::ZERO).await;
    let tag = cloud::gce::names::Namer::new(&cluster.cluster_uid)
        .cluster_tag()
        .to_owned();
    let other =
        json!({"managedBy": "cloud-lb-controller", "cluster": "another-cluster", "ingress": "default/ing-0"})
            .to_string();
    let link = |path: &str| format!("https://www.googleapis.com/compute/v1/projects/{PROJECT}/{path}");
    let objects = [
        (
            "global/healthChecks",
            json!({"name": format!("clb-{tag}-be-default-ing-0-svc-0-80-zzzzzzzz"), "type": "TCP", "tcpHealthCheck": {"port": 80}}),
        ),
        (
            "global/healthChecks",
            json!({"name": format!("clb-{tag}-be-foreign"), "description": other, "type": "TCP", "tcpHealthCheck": {"port": 81}}),
        ),
        (
            "global/backendServices",
            json!({"name": format!("clb-{tag}-be-foreign"), "description": other, "loadBalancingScheme": "EXTERNAL_MANAGED", "healthChecks": [link(&format!("global/healthChecks/clb-{tag}-be-foreign"))]}),
        ),
        (
            "global/urlMaps",
            json!({"name": format!("clb-{tag}-um-default-ing-0-foreign0"), "defaultService": link(&format!("global/backendServices/clb-{tag}-be-foreign"))}),
        ),
        (
            "global/targetHttpProxies",
            json!({"name": format!("clb-{tag}-tp-default-ing-0-foreign0"), "description": other, "urlMap": link(&format!("global/urlMaps/clb-{tag}-um-default-ing-0-foreign0"))}),
        ),
        (
            "global/addresses",
            json!({"name": format!("clb-{tag}-ad-default-ing-0-foreign0"), "description": other}),
        ),
        (
            "global/firewalls",
            json!({"name": format!("clb-{tag}-fw-foreign"), "network": "global/networks/default", "sourceRanges": ["10.0.0.0/8"], "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}]}),
        ),
        (
            "zones/us-central1-a/instanceGroups",
            json!({"name": format!("clb-{tag}-ig-foreign"), "description": other}),
        ),
    ];
    let http = reqwest::Client::new();
    let mut keep = BTreeSet::new();
    for (collection, body) in &objects {
        let url = format!("{}projects/{PROJECT}/{collection}", cluster.gce.base_url());
        let op: Value = http
            .post(&url)
            .bearer_auth(TOKEN)
            .json(body)
            .send()
            .await
            .expect("insert")
            .json()
            .await
            .expect("operation");
        assert!(op["kind"] == "compute#operation", "{collection}: {op}");
        keep.insert(format!(
            "projects/{PROJECT}/{collection}/{}",
            body["name"].as_str().unwrap_or_default()
        ));
    }
    let snapshot = |cluster: &Cluster| -> BTreeMap<String, Value> {
        keep.iter()
            .map(|p| (p.clone(), cluster.gce.resource(p).unwrap_or(Value::Null)))
            .collect()
    };
    eventually("the foreign resources created", WAIT, || async {
        snapshot(&cluster).values().all(|v| !v.is_null()).then_some(())
    })
    .await;
    let before = snapshot(&cluster);

    // A short resync: every Ingress is checked against the cloud, and garbage collected, often.
    let _replica = cluster.spawn("foreign", &["--leader-elect=false", "--resync-period", "1s"]);
    let specs = specs(n);
    let start = Instant::now();
    cluster.create(&specs).await;
    cluster.wait_ready(&specs, |_, _| true).await;
    let converge_secs = start.elapsed().as_secs_f64();
    let rounds = |cluster: &Cluster| {
        cluster
            .gce
            .journal()
            .entries
            .iter()
            .filter(|e| matches!(&e.event, JournalEvent::Request(r) if r.method == "GET" && r.path.ends_with("/global/forwardingRules")))
            .count()
    };
    let seen = rounds(&cluster);
    eventually("several resyncs and collections", WAIT, || async {
        (rounds(&cluster) >= seen + 4).then_some(())
    })
    .await;
    let start = Instant::now();
    cluster.delete(&specs).await;
    cluster.wait_gone(&keep).await;
    let delete_secs = start.elapsed().as_secs_f64();
    let after = snapshot(&cluster);
    let changed: Vec<&String> = before.keys().filter(|k| before[*k] != after[*k]).collect();
    assert!(changed.is_empty(), "foreign resources changed: {changed:?}");
    Figures {
        converge_secs,
        delete_secs,
        notes: format!(
            "{} foreign resources byte-identical after {} resyncs",
            keep.len(),
            rounds(&cluster) - seen
        ),
        ..cluster.figures("foreign resources", n, &keep)
    }
}
