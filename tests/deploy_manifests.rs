//! The manifests in `deploy/` are real: every object parses into its Kubernetes type with no
//! unknown field; the Deployment is hardened and configures the controller through flags it
//! has; `kubectl kustomize` renders the files unchanged and `kubectl apply` accepts them against
//! fake-kube; the Helm chart renders (with Helm's own engine) the same objects.
//!
//! kubectl: under `CI=true` a missing kubectl fails; elsewhere those tests are skipped with a
//! message. Helm: the library named by `HELM_SDK_LIB` (see `tests/helm/render.py` and
//! `.ci/run`); likewise required under `CI=true`, skipped elsewhere.

mod deploy_files;

use clap::{CommandFactory, Parser as _};
use cloud_lb_controller::cli::{Cli, Command as CliCommand, RunArgs};
use deploy_files::{base_objects, deploy_dir, documents, documents_of, object};
use fake_kube::FakeKube;
use k8s_openapi::api::{apps, core, networking, policy, rbac};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

// --- Every YAML parses into its type ----------------------------------------------------------

fn round_trip<T: DeserializeOwned + Serialize>(doc: &Value, what: &str) {
    let typed: T = serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{what}: {e}"));
    let back = serde_json::to_value(&typed).expect("serialize");
    // Fields the type does not know are dropped on the way: a typo shows as a difference.
    assert_eq!(
        &back, doc,
        "{what}: fields unknown to the type (or of the wrong shape)"
    );
}

/// Parses an object into the k8s-openapi type its apiVersion and kind name.
fn typed(doc: &Value, what: &str) {
    let what = format!("{what}: {} {}", doc["kind"], doc["metadata"]["name"]);
    match (
        doc["apiVersion"].as_str().unwrap_or(""),
        doc["kind"].as_str().unwrap_or(""),
    ) {
        ("v1", "ServiceAccount") => round_trip::<core::v1::ServiceAccount>(doc, &what),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => round_trip::<rbac::v1::ClusterRole>(doc, &what),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            round_trip::<rbac::v1::ClusterRoleBinding>(doc, &what)
        }
        ("rbac.authorization.k8s.io/v1", "Role") => round_trip::<rbac::v1::Role>(doc, &what),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => round_trip::<rbac::v1::RoleBinding>(doc, &what),
        ("apps/v1", "Deployment") => round_trip::<apps::v1::Deployment>(doc, &what),
        ("policy/v1", "PodDisruptionBudget") => round_trip::<policy::v1::PodDisruptionBudget>(doc, &what),
        ("networking.k8s.io/v1", "IngressClass") => round_trip::<networking::v1::IngressClass>(doc, &what),
        (api, kind) => panic!("{what}: no test knows {api} {kind}; add it to `typed`"),
    }
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

#[test]
fn every_yaml_in_deploy_parses_into_its_kubernetes_type() {
    let mut files = Vec::new();
    yaml_files(&deploy_dir(), &mut files);
    files.sort();
    let listed = deploy_files::resource_files();
    let mut objects = 0;
    for file in &files {
        let rel = file
            .strip_prefix(deploy_dir())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        match rel.as_str() {
            "kustomization.yaml" => {
                assert_eq!(documents(file)[0]["kind"], "Kustomization");
            }
            _ if rel.contains("/templates/") => {
                // Helm templates are YAML only once rendered: see the Helm tests below.
            }
            _ if rel.starts_with("helm/") && rel.ends_with("/Chart.yaml") => {
                let chart = &documents(file)[0];
                assert_eq!(chart["apiVersion"], "v2");
                assert_eq!(
                    chart["appVersion"],
                    env!("CARGO_PKG_VERSION"),
                    "the chart's appVersion"
                );
            }
            _ if rel.starts_with("helm/") && rel.ends_with("/values.yaml") => {
                assert!(documents(file)[0].is_object(), "{rel} is a mapping");
            }
            _ => {
                let docs = documents(file);
                assert!(listed.contains(file), "{rel} is not listed in kustomization.yaml");
                assert!(!docs.is_empty(), "{rel} holds no object");
                for doc in &docs {
                    typed(doc, &rel);
                    objects += 1;
                }
            }
        }
    }
    assert_eq!(objects, base_objects().len());
    assert_eq!(
        objects, 8,
        "ServiceAccount, ClusterRole(Binding), Role(Binding), Deployment, PDB, IngressClass"
    );
}

// --- The Deployment and the controller's flags ------------------------------------------------

/// The `run` flag each environment variable sets: (long flag, takes a value).
fn run_env_flags() -> BTreeMap<String, (String, bool)> {
    let cli = Cli::command();
    let run = cli.find_subcommand("run").expect("run");
    run.get_arguments()
        .filter_map(|a| {
            let env = a.get_env()?.to_string_lossy().into_owned();
            let long = a.get_long()?.to_owned();
            Some((env, (long, a.get_action().takes_values())))
        })
        .collect()
}

/// The container's args and env as the controller would see them, turned into flags and parsed
/// by the real command line (env values the Downward API fills are given a sample).
fn parse_container(container: &Value) -> RunArgs {
    let flags = run_env_flags();
    let mut argv: Vec<String> = vec!["cloud-lb-controller".into()];
    argv.extend(
        container["args"]
            .as_array()
            .expect("args")
            .iter()
            .map(|a| a.as_str().expect("arg").to_owned()),
    );
    for env in container["env"].as_array().expect("env") {
        let name = env["name"].as_str().expect("name");
        if name == "GOOGLE_APPLICATION_CREDENTIALS" {
            // Read by the Google credential chain, not by the command line.
            continue;
        }
        let (long, takes_value) = flags
            .get(name)
            .unwrap_or_else(|| panic!("env {name} sets no flag of `cloud-lb-controller run`"));
        let value = match (&env["value"], &env["valueFrom"]) {
            (Value::String(v), _) => v.clone(),
            (_, from) if from["fieldRef"]["fieldPath"] == "metadata.name" => "pod-abc".into(),
            _ => panic!("env {name}: neither a value nor the pod name"),
        };
        if *takes_value {
            argv.push(format!("--{long}={value}"));
        } else if value == "true" {
            argv.push(format!("--{long}"));
        }
    }
    match Cli::try_parse_from(&argv) {
        Ok(Cli {
            command: CliCommand::Run(args),
        }) => *args,
        Ok(_) => panic!("not `run`: {argv:?}"),
        Err(e) => panic!("{argv:?}: {e}"),
    }
}

fn container(deployment: &Value) -> &Value {
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers");
    assert_eq!(containers.len(), 1);
    &containers[0]
}

fn env_value<'a>(container: &'a Value, name: &str) -> Option<&'a str> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str())
}

#[test]
fn the_deployment_is_hardened_and_configures_the_controller() {
    let objects = base_objects();
    let d = object(&objects, "Deployment", "cloud-lb-controller");
    assert_eq!(d["metadata"]["namespace"], "kube-system");
    let spec = &d["spec"];
    assert_eq!(spec["replicas"], 2, "a leader and a standby");
    let pod = &spec["template"]["spec"];
    let labels = &spec["template"]["metadata"]["labels"];
    assert_eq!(&spec["selector"]["matchLabels"], labels);
    assert_eq!(pod["serviceAccountName"], "cloud-lb-controller");
    assert!(pod["priorityClassName"].as_str().is_some_and(|p| !p.is_empty()));
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");

    let c = container(d);
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    for kind in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(c["resources"][kind][resource].is_string(), "{kind}.{resource}");
        }
    }

    // The probes and ports are where the controller serves them by default.
    let args = parse_container(c);
    let port = |name: &str| {
        c["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("port {name}"))["containerPort"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(port("health"), u64::from(args.health_addr.port()));
    assert_eq!(port("metrics"), u64::from(args.metrics_addr.port()));
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["livenessProbe"]["httpGet"]["port"], "health");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["readinessProbe"]["httpGet"]["port"], "health");

    // Leader election on, identity from the pod name, Lease and ConfigMap where the Role is.
    assert!(args.leader_elect);
    assert_eq!(args.identity.as_deref(), Some("pod-abc"));
    assert_eq!(args.leader_election_namespace, "kube-system");
    assert_eq!(
        args.gce.project.as_deref(),
        Some("PROJECT_ID"),
        "the documented placeholder"
    );
    assert_eq!(args.gce.network, "default");
    let role = object(&objects, "Role", "cloud-lb-controller");
    assert_eq!(role["metadata"]["namespace"], args.leader_election_namespace);
    let named: Vec<&str> = role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["resourceNames"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    assert!(named.contains(&args.leader_election_id.as_str()));
    assert!(named.contains(&cloud_lb_controller::cluster_uid::CONFIG_MAP));

    // The PodDisruptionBudget covers these pods and always lets one go.
    let pdb = object(&objects, "PodDisruptionBudget", "cloud-lb-controller");
    assert_eq!(&pdb["spec"]["selector"]["matchLabels"], labels);
    assert_eq!(pdb["spec"]["minAvailable"], 1);
}

#[test]
fn bindings_tie_the_roles_to_the_service_account_and_the_class_names_the_controller() {
    let objects = base_objects();
    let sa = object(&objects, "ServiceAccount", "cloud-lb-controller");
    assert_eq!(sa["metadata"]["namespace"], "kube-system");
    assert!(
        sa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"]
            .as_str()
            .is_some_and(|a| a.ends_with(".iam.gserviceaccount.com")),
        "the Workload Identity placeholder"
    );
    let subject =
        json!([{"kind": "ServiceAccount", "name": "cloud-lb-controller", "namespace": "kube-system"}]);
    for (kind, role_kind) in [("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")] {
        let b = object(&objects, kind, "cloud-lb-controller");
        assert_eq!(b["subjects"], subject, "{kind}");
        assert_eq!(b["roleRef"]["kind"], role_kind);
        assert_eq!(b["roleRef"]["apiGroup"], "rbac.authorization.k8s.io");
        object(&objects, role_kind, b["roleRef"]["name"].as_str().unwrap());
        if kind == "RoleBinding" {
            assert_eq!(b["metadata"]["namespace"], "kube-system");
        }
    }

    let class = object(
        &objects,
        "IngressClass",
        cloud_lb_controller::translate::DEFAULT_LEGACY_CLASS,
    );
    assert_eq!(
        class["spec"]["controller"],
        cloud_lb_controller::translate::DEFAULT_CONTROLLER_NAME
    );
    assert_ne!(
        class["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"], "true",
        "not the default class unless the user opts in"
    );
}

// --- kubectl: kustomize, and apply against fake-kube ------------------------------------------

/// kubectl with its own kubeconfig and cache directory.
struct Kubectl {
    bin: PathBuf,
    dir: PathBuf,
}

impl Kubectl {
    fn new(kube: Option<&FakeKube>) -> Option<Kubectl> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let bin = deploy_files::kubectl()?;
        let dir = std::env::temp_dir().join(format!(
            "clc-deploy-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        if let Some(kube) = kube {
            kube.write_kubeconfig(dir.join("kubeconfig")).unwrap();
        }
        Some(Kubectl { bin, dir })
    }

    /// Runs kubectl off the async runtime (fake-kube serves on it).
    async fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("KUBECONFIG", self.dir.join("kubeconfig"))
            .env("KUBECACHEDIR", self.dir.join("cache"))
            .env("HOME", &self.dir)
            .stdin(Stdio::null());
        tokio::task::spawn_blocking(move || cmd.output().expect("kubectl runs"))
            .await
            .unwrap()
    }

    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Kubectl {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Objects keyed by kind/namespace/name.
fn keyed(objects: &[Value]) -> BTreeMap<String, Value> {
    let map: BTreeMap<String, Value> = objects
        .iter()
        .map(|o| {
            (
                format!(
                    "{}/{}/{}",
                    o["kind"].as_str().unwrap_or(""),
                    o["metadata"]["namespace"].as_str().unwrap_or(""),
                    o["metadata"]["name"].as_str().unwrap_or("")
                ),
                o.clone(),
            )
        })
        .collect();
    assert_eq!(map.len(), objects.len(), "duplicate objects");
    map
}

#[tokio::test]
async fn kubectl_kustomize_renders_the_files_unchanged() {
    let Some(kubectl) = Kubectl::new(None) else { return };
    let rendered = kubectl.ok(&["kustomize", "deploy/"]).await;
    let docs = documents_of(&rendered, "kubectl kustomize deploy/");
    for doc in &docs {
        typed(doc, "kubectl kustomize deploy/");
    }
    assert_eq!(keyed(&docs), keyed(&base_objects()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_accepts_every_object_against_fake_kube() {
    let kube = FakeKube::start(fake_kube::Config::default())
        .await
        .expect("fake-kube");
    let Some(kubectl) = Kubectl::new(Some(&kube)) else {
        return;
    };
    let objects = base_objects();

    let dry = kubectl.ok(&["apply", "--dry-run=client", "-k", "deploy/"]).await;
    let lines: Vec<&str> = dry.lines().collect();
    assert_eq!(lines.len(), objects.len(), "{dry}");
    assert!(lines.iter().all(|l| l.ends_with(" created (dry run)")), "{dry}");
    assert!(
        kube.get(
            "apps/v1",
            "Deployment",
            Some("kube-system"),
            "cloud-lb-controller"
        )
        .is_none(),
        "a dry run creates nothing"
    );

    // For real (fake-kube validates strictly, as kubectl asks), then read every object back.
    let applied = kubectl.ok(&["apply", "-k", "deploy/"]).await;
    assert_eq!(
        applied.lines().filter(|l| l.ends_with(" created")).count(),
        objects.len(),
        "{applied}"
    );
    for o in &objects {
        let stored = kube
            .get(
                o["apiVersion"].as_str().unwrap(),
                o["kind"].as_str().unwrap(),
                o["metadata"]["namespace"].as_str(),
                o["metadata"]["name"].as_str().unwrap(),
            )
            .unwrap_or_else(|| panic!("{} {} not stored", o["kind"], o["metadata"]["name"]));
        for field in ["spec", "rules", "roleRef", "subjects"] {
            if !o[field].is_null() {
                assert_eq!(stored[field], o[field], "{} {field}", o["kind"]);
            }
        }
    }
    // Applying again changes nothing. (kubectl reports the PodDisruptionBudget "configured"
    // on every apply, as against a real cluster: its compiled-in patch strategy for
    // spec.selector is "replace", so the patch always carries the selector. The server sees
    // the same value and changes nothing.)
    let version = kube.resource_version();
    let again = kubectl.ok(&["apply", "-k", "deploy/"]).await;
    assert!(
        again
            .lines()
            .all(|l| l.ends_with(" unchanged")
                || l == "poddisruptionbudget.policy/cloud-lb-controller configured"),
        "{again}"
    );
    assert_eq!(
        kube.resource_version(),
        version,
        "the second apply changed something"
    );
}

// --- Helm ------------------------------------------------------------------------------------

const CHART: &str = "deploy/helm/cloud-lb-controller";

/// The Helm library (`HELM_SDK_LIB`), or `None` (skip) when it is not installed outside CI.
fn helm_library() -> Option<String> {
    match std::env::var("HELM_SDK_LIB") {
        Ok(path) if Path::new(&path).is_file() => Some(path),
        other => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "HELM_SDK_LIB ({other:?}) must name Helm's library when CI=true (see .ci/run)"
            );
            eprintln!("skipping: HELM_SDK_LIB is not set (see .ci/run for how to install Helm's library)");
            None
        }
    }
}

/// Installs the chart with Helm into a fresh fake-kube and returns the rendered objects and
/// that cluster.
async fn helm_install(lib: &str, namespace: &str, values: &Value) -> (Vec<Value>, FakeKube) {
    let kube = FakeKube::start(fake_kube::Config::default())
        .await
        .expect("fake-kube");
    static N: AtomicUsize = AtomicUsize::new(0);
    let kubeconfig = std::env::temp_dir().join(format!(
        "clc-helm-{}-{}.kubeconfig",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    kube.write_kubeconfig(&kubeconfig).unwrap();
    let mut cmd = Command::new("python3");
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("tests/helm/render.py")
        .arg(lib)
        .arg(&kubeconfig)
        .arg(namespace)
        .arg(CHART)
        .arg(values.to_string())
        .stdin(Stdio::null());
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("python3 runs"))
        .await
        .unwrap();
    let _ = std::fs::remove_file(&kubeconfig);
    assert!(
        out.status.success(),
        "helm install failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest = String::from_utf8_lossy(&out.stdout).into_owned();
    (documents_of(&manifest, "the chart's manifest"), kube)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_helm_chart_with_default_values_renders_the_kustomize_objects() {
    let Some(lib) = helm_library() else { return };
    let (objects, kube) = helm_install(&lib, "kube-system", &json!({})).await;
    for o in &objects {
        typed(o, "the chart");
        // Helm created it through the API, as `helm install` does.
        assert!(
            kube.get(
                o["apiVersion"].as_str().unwrap(),
                o["kind"].as_str().unwrap(),
                o["metadata"]["namespace"].as_str(),
                o["metadata"]["name"].as_str().unwrap()
            )
            .is_some(),
            "{} not created",
            o["kind"]
        );
    }
    let chart = keyed(&objects);
    let base = keyed(&base_objects());
    assert_eq!(chart.keys().collect::<Vec<_>>(), base.keys().collect::<Vec<_>>());
    for (key, o) in &chart {
        assert_eq!(o, &base[key], "{key} differs from the kustomize base");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_values_reach_the_controller() {
    let Some(lib) = helm_library() else { return };
    let values = json!({
        "image": {"repository": "europe-docker.pkg.dev/acme/lb/cloud-lb-controller", "tag": "0.2.0"},
        "replicas": 3,
        "gce": {
            "project": "acme-prod",
            "network": "shared-vpc",
            "targetTags": ["gke-prod-node", "web"],
            "qps": 5,
            "burst": 10,
            "healthQps": 0.5,
            "classic": true,
            "credentialsSecret": "gce-key"
        },
        "zones": ["europe-west1-b", "europe-west1-c"],
        "clusterUID": "prod-1",
        "healthInterval": "1m",
        "workloadIdentity": {"gcpServiceAccount": ""},
        "ingressClass": {"default": true},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "2", "memory": "512Mi"}},
        "extraArgs": ["--resync-period=30m"]
    });
    let (objects, _kube) = helm_install(&lib, "lb-system", &values).await;
    let d = object(&objects, "Deployment", "cloud-lb-controller");
    assert_eq!(d["metadata"]["namespace"], "lb-system");
    assert_eq!(d["spec"]["replicas"], 3);
    let c = container(d);
    assert_eq!(
        c["image"],
        "europe-docker.pkg.dev/acme/lb/cloud-lb-controller:0.2.0"
    );
    assert_eq!(c["resources"], values["resources"]);
    let args = parse_container(c);
    assert_eq!(args.gce.project.as_deref(), Some("acme-prod"));
    assert_eq!(args.gce.network, "shared-vpc");
    assert_eq!(args.gce.target_tags, ["gke-prod-node", "web"]);
    assert_eq!(args.gce.qps, 5.0);
    assert_eq!(args.gce.burst, 10);
    assert_eq!(args.gce.health_qps, 0.5);
    assert_eq!(args.health_interval, std::time::Duration::from_secs(60));
    assert!(args.gce.classic);
    assert_eq!(args.zones, ["europe-west1-b", "europe-west1-c"]);
    assert_eq!(args.cluster_uid.as_deref(), Some("prod-1"));
    assert_eq!(
        args.leader_election_namespace, "lb-system",
        "the Lease goes where the Role is"
    );
    assert_eq!(args.resync_period, std::time::Duration::from_secs(1800));
    assert_eq!(
        env_value(c, "GOOGLE_APPLICATION_CREDENTIALS"),
        Some("/var/run/secrets/google/key.json")
    );
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["volumes"][0]["secret"]["secretName"], "gce-key");
    assert_eq!(c["volumeMounts"][0]["mountPath"], "/var/run/secrets/google");

    let sa = object(&objects, "ServiceAccount", "cloud-lb-controller");
    assert!(
        sa["metadata"].get("annotations").is_none(),
        "no Workload Identity annotation"
    );
    let role = object(&objects, "Role", "cloud-lb-controller");
    assert_eq!(role["metadata"]["namespace"], "lb-system");
    // The cluster UID is seeded from the namespace the ConfigMap lives in.
    let cluster_role = object(&objects, "ClusterRole", "cloud-lb-controller");
    assert!(
        cluster_role["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["resources"] == json!(["namespaces"]) && r["resourceNames"] == json!(["lb-system"])),
        "{cluster_role}"
    );
    let binding = object(&objects, "ClusterRoleBinding", "cloud-lb-controller");
    assert_eq!(binding["subjects"][0]["namespace"], "lb-system");
    let class = object(&objects, "IngressClass", "gce");
    assert_eq!(
        class["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"],
        "true"
    );
}

#[test]
fn helm_lint_passes() {
    let Some(lib) = helm_library() else { return };
    let out = Command::new("python3")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["tests/helm/render.py", "--lint", &lib, CHART])
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("lint report");
    assert_eq!(report["TotalChartsLinted"], 1);
    assert!(
        report["Errors"].as_array().is_none_or(|e| e.is_empty()),
        "{report}"
    );
    // Severity 1 is information (e.g. "icon is recommended"); 2 and above are warnings and errors.
    let serious: Vec<&Value> = report["Messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["Severity"].as_u64().unwrap_or(0) > 1)
        .collect();
    assert!(serious.is_empty(), "{report}");
}

// --- The Dockerfile -----------------------------------------------------------------------------

/// No Docker engine runs here, so the image is not built in tests; what the Deployment relies on
/// is checked in the text: the user, the toolchain, the entry point and the ports.
#[test]
fn the_dockerfile_agrees_with_the_deployment_and_the_workspace() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).expect("Dockerfile");
    let instruction = |name: &str| -> Vec<String> {
        dockerfile
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("{name} ")))
            .map(str::to_owned)
            .collect()
    };
    let froms = instruction("FROM");
    assert!(froms.len() >= 2, "multi-stage: {froms:?}");
    assert!(froms.last().unwrap().contains("distroless"), "{froms:?}");

    let objects = base_objects();
    let pod = &object(&objects, "Deployment", "cloud-lb-controller")["spec"]["template"]["spec"];
    let user = format!(
        "{}:{}",
        pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]
    );
    assert_eq!(
        instruction("USER"),
        [user],
        "the image's user is the Deployment's"
    );

    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("Cargo.toml");
    let rust_version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .expect("rust-version")
        .trim_matches('"');
    assert_eq!(
        instruction("ARG"),
        [format!("RUST_VERSION={rust_version}")],
        "the builder's toolchain is the workspace's minimum"
    );
    assert_eq!(
        instruction("ENTRYPOINT"),
        [r#"["/usr/local/bin/cloud-lb-controller"]"#]
    );
    let args = parse_container(container(object(&objects, "Deployment", "cloud-lb-controller")));
    assert_eq!(
        instruction("EXPOSE"),
        [format!(
            "{} {}",
            args.metrics_addr.port(),
            args.health_addr.port()
        )]
    );
}
