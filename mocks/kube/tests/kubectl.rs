//! The fake through the real kubectl. Under `CI=true` a missing kubectl fails these tests;
//! elsewhere they are skipped with a message. `KUBECTL` may name the binary to use.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{eventually, start};
use fake_kube::FakeKube;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Client, Resource};
use serde_json::json;

const MANIFEST: &str = "apiVersion: v1
kind: Service
metadata:
  name: web
  labels: {app: web}
spec:
  type: NodePort
  selector: {app: web}
  ports:
  - name: http
    port: 80
    targetPort: 8080
---
apiVersion: v1
kind: Secret
metadata:
  name: web-tls
type: kubernetes.io/tls
data:
  tls.crt: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==
  tls.key: LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCg==
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
spec:
  ingressClassName: gce
  tls:
  - hosts: [web.example.com]
    secretName: web-tls
  rules:
  - host: web.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: web
            port:
              number: 80
";

/// The kubectl binary, or `None` (skip) when absent outside CI.
fn kubectl_binary() -> Option<PathBuf> {
    let bin = std::env::var_os("KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| "kubectl".into());
    let works = Command::new(&bin)
        .args(["version", "--client"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if works {
        return Some(bin);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "kubectl ({}) is required when CI=true",
        bin.display()
    );
    eprintln!("skipping: kubectl ({}) not found", bin.display());
    None
}

/// kubectl pointed at one fake, with its own kubeconfig and discovery cache.
struct Kubectl {
    bin: PathBuf,
    dir: PathBuf,
}

impl Kubectl {
    fn new(kube: &FakeKube) -> Option<Self> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let bin = kubectl_binary()?;
        let dir = std::env::temp_dir().join(format!(
            "fake-kube-kubectl-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        kube.write_kubeconfig(dir.join("kubeconfig")).unwrap();
        Some(Kubectl { bin, dir })
    }

    fn file(&self, name: &str, contents: &str) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path.display().to_string()
    }

    /// Runs kubectl off the async runtime (the fake serves on it).
    async fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .env("KUBECONFIG", self.dir.join("kubeconfig"))
            .env("KUBECACHEDIR", self.dir.join("cache"))
            .env("HOME", &self.dir)
            .stdin(Stdio::null());
        tokio::task::spawn_blocking(move || cmd.output().expect("kubectl runs"))
            .await
            .unwrap()
    }

    /// Runs kubectl and returns its stdout, failing the test if it fails.
    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// Runs kubectl expecting failure and returns its stderr.
    async fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(!out.status.success(), "kubectl {args:?} should fail");
        String::from_utf8_lossy(&out.stderr).to_string()
    }
}

impl Drop for Kubectl {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn set_address(client: &Client, ip: &str) {
    let api: Api<Ingress> = Api::namespaced(client.clone(), "default");
    api.patch_status(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"loadBalancer": {"ingress": [{"ip": ip}]}}})),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_get_describe_delete() {
    let (kube, client) = start().await;
    let Some(kubectl) = Kubectl::new(&kube) else {
        return;
    };
    let manifest = kubectl.file("app.yaml", MANIFEST);

    let out = kubectl.ok(&["apply", "-f", &manifest]).await;
    for line in [
        "service/web created",
        "secret/web-tls created",
        "ingress.networking.k8s.io/web created",
    ] {
        assert!(out.contains(line), "{out}");
    }
    let svc = kube.get("v1", "Service", Some("default"), "web").unwrap();
    let node_port = svc["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
    assert!(kube.get("v1", "Secret", Some("default"), "web-tls").is_some());

    // The controller's side: an address in status, and an Event.
    set_address(&client, "203.0.113.7").await;
    let ing: Api<Ingress> = Api::namespaced(client.clone(), "default");
    let reference = ing.get("web").await.unwrap().object_ref(&());
    Recorder::new(client.clone(), "cloud-lb-controller".into())
        .publish(
            &Event {
                type_: EventType::Normal,
                reason: "Provisioned".into(),
                note: Some("load balancer ready".into()),
                action: "Provision".into(),
                secondary: None,
            },
            &reference,
        )
        .await
        .unwrap();

    let out = kubectl.ok(&["get", "ing"]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        row[..6],
        ["web", "gce", "web.example.com", "203.0.113.7", "80,", "443"],
        "{out}"
    );

    let out = kubectl
        .ok(&["get", "svc", "web", "-o", "jsonpath={.spec.ports[0].nodePort}"])
        .await;
    assert_eq!(out, node_port.to_string());
    let out = kubectl.ok(&["get", "svc", "web"]).await;
    assert!(out.contains(&format!("80:{node_port}/TCP")), "{out}");

    let out = kubectl.ok(&["describe", "ing", "web"]).await;
    for needle in [
        "203.0.113.7",
        "web-tls terminates web.example.com",
        "Provisioned",
        "load balancer ready",
    ] {
        assert!(out.contains(needle), "describe lacks {needle:?}:\n{out}");
    }

    // Client-side apply again: unchanged, then a strategic merge patch.
    let out = kubectl.ok(&["apply", "-f", &manifest]).await;
    assert!(out.contains("ingress.networking.k8s.io/web unchanged"), "{out}");
    let changed = kubectl.file("changed.yaml", &MANIFEST.replace("path: /\n", "path: /api\n"));
    let out = kubectl.ok(&["apply", "-f", &changed]).await;
    assert!(out.contains("ingress.networking.k8s.io/web configured"), "{out}");
    let stored = kube
        .get("networking.k8s.io/v1", "Ingress", Some("default"), "web")
        .unwrap();
    assert_eq!(stored["spec"]["rules"][0]["http"]["paths"][0]["path"], "/api");
    assert_eq!(stored["metadata"]["generation"], 2);
    assert_eq!(
        stored["status"]["loadBalancer"]["ingress"][0]["ip"], "203.0.113.7",
        "apply keeps status"
    );

    let out = kubectl.ok(&["apply", "--server-side", "-f", &manifest]).await;
    assert!(
        out.contains("ingress.networking.k8s.io/web serverside-applied"),
        "{out}"
    );
    let stored = kube
        .get("networking.k8s.io/v1", "Ingress", Some("default"), "web")
        .unwrap();
    assert_eq!(stored["spec"]["rules"][0]["http"]["paths"][0]["path"], "/");

    kube.clear_requests();
    let out = kubectl.ok(&["delete", "-f", &manifest]).await;
    assert!(out.contains("ingress.networking.k8s.io \"web\" deleted"), "{out}");
    assert!(
        kube.get("networking.k8s.io/v1", "Ingress", Some("default"), "web")
            .is_none()
    );
    assert!(kube.get("v1", "Service", Some("default"), "web").is_none());
    assert!(kube.get("v1", "Secret", Some("default"), "web-tls").is_none());
    let records = kube.requests();
    for resource in ["services", "secrets", "ingresses"] {
        assert!(
            records
                .iter()
                .any(|r| r.verb == "delete" && r.resource == resource),
            "{records:?}"
        );
    }
    assert!(records.iter().all(|r| {
        r.user_agent
            .as_deref()
            .is_some_and(|ua| ua.starts_with("kubectl"))
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_manifests_are_rejected_with_the_field() {
    let (kube, _client) = start().await;
    let Some(kubectl) = Kubectl::new(&kube) else {
        return;
    };
    let rv = kube.resource_version();

    let empty = kubectl.file(
        "empty.yaml",
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: empty}\nspec: {ingressClassName: gce}\n",
    );
    let err = kubectl.fails(&["apply", "-f", &empty]).await;
    assert!(err.contains("spec: Invalid value"), "{err}");
    assert!(
        err.contains("either `defaultBackend` or `rules` must be specified"),
        "{err}"
    );

    let typo = kubectl.file(
        "typo.yaml",
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: typo}\nspec:\n  defaultBakend: {service: {name: web, port: {number: 80}}}\n",
    );
    let err = kubectl.fails(&["create", "-f", &typo]).await;
    assert!(err.contains("unknown field \"spec.defaultBakend\""), "{err}");
    assert_eq!(kube.resource_version(), rv, "nothing was stored");

    let err = kubectl.fails(&["get", "cronjobs"]).await;
    assert!(err.contains("cronjobs"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_waits_for_finalizers() {
    let (kube, client) = start().await;
    let Some(kubectl) = Kubectl::new(&kube) else {
        return;
    };
    kube.apply_yaml(MANIFEST).unwrap();
    let api: Api<Ingress> = Api::namespaced(client.clone(), "default");
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/cleanup"]}})),
    )
    .await
    .unwrap();

    let delete = tokio::spawn(async move {
        let out = kubectl.ok(&["delete", "ing", "web", "--timeout=60s"]).await;
        (kubectl, out)
    });
    eventually("the deletion to be marked", || {
        let api = api.clone();
        async move {
            api.get("web")
                .await
                .unwrap()
                .metadata
                .deletion_timestamp
                .map(|_| ())
        }
    })
    .await;
    // kubectl is now waiting on a watch for the object to go.
    eventually("kubectl to watch", || {
        let watching = kube
            .requests()
            .iter()
            .any(|r| r.verb == "watch" && r.resource == "ingresses");
        async move { watching.then_some(()) }
    })
    .await;
    assert!(
        !delete.is_finished(),
        "kubectl delete returned while a finalizer remained"
    );

    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    let (_kubectl, out) = delete.await.unwrap();
    assert!(out.contains("\"web\" deleted"), "{out}");
    assert!(api.get_opt("web").await.unwrap().is_none());
}

const POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: web-1
  labels: {app: web}
spec:
  nodeName: n1
  readinessGates:
  - conditionType: cloud.google.com/load-balancer-neg-ready
  containers:
  - name: web
    image: nginx:1.27
    ports:
    - {name: http, containerPort: 8080}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_apply_and_get_wide() {
    let (kube, client) = start().await;
    let Some(kubectl) = Kubectl::new(&kube) else {
        return;
    };
    let manifest = kubectl.file("pod.yaml", POD);
    let out = kubectl.ok(&["apply", "-f", &manifest]).await;
    assert!(out.contains("pod/web-1 created"), "{out}");
    let out = kubectl.ok(&["apply", "-f", &manifest]).await;
    assert!(out.contains("pod/web-1 unchanged"), "{out}");
    let newer = kubectl.file("newer.yaml", &POD.replace("nginx:1.27", "nginx:1.28"));
    let out = kubectl.ok(&["apply", "-f", &newer]).await;
    assert!(out.contains("pod/web-1 configured"), "{out}");
    let gated = kubectl.file("gated.yaml", &POD.replace("load-balancer-neg-ready", "other"));
    let err = kubectl.fails(&["apply", "-f", &gated]).await;
    assert!(
        err.contains("pod updates may not change fields other than"),
        "{err}"
    );

    let out = kubectl.ok(&["get", "pods"]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        "{out}"
    );
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>()[..4],
        ["web-1", "0/1", "Pending", "0"]
    );

    // What a kubelet and a NEG controller would write.
    let api: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), "default");
    let status = json!({"status": {
        "phase": "Running", "podIP": "10.0.0.7",
        "conditions": [
            {"type": "Ready", "status": "True"},
            {"type": "cloud.google.com/load-balancer-neg-ready", "status": "True"},
        ],
        "containerStatuses": [{"name": "web", "image": "nginx:1.28", "imageID": "", "ready": true,
            "restartCount": 0, "started": true, "state": {"running": {"startedAt": "2025-01-01T00:00:00Z"}}}],
    }});
    api.patch_status("web-1", &PatchParams::default(), &Patch::Merge(status))
        .await
        .unwrap();
    let out = kubectl.ok(&["get", "pods", "-o", "wide"]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        [
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED",
            "NODE",
            "READINESS",
            "GATES"
        ],
        "{out}"
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(row[..4], ["web-1", "1/1", "Running", "0"], "{out}");
    assert_eq!(row[5..], ["10.0.0.7", "n1", "<none>", "1/1"], "{out}");
    let out = kubectl
        .ok(&[
            "get",
            "pods",
            "--field-selector",
            "spec.nodeName=n1",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(out.trim(), "pod/web-1");

    let out = kubectl
        .ok(&["delete", "pod", "web-1", "--grace-period=0", "--force"])
        .await;
    assert!(out.contains("\"web-1\" force deleted"), "{out}");
    assert!(kube.get("v1", "Pod", Some("default"), "web-1").is_none());
}
