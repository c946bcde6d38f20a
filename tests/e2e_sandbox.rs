//! The README's first command, as a script runs it: `sandbox --exit-when-ready` prints the
//! example Ingress with an address and the announcement's three requests answered; and, as a
//! user runs it, a sandbox that keeps running answers `curl` and serves an Ingress applied with
//! `kubectl`.

mod e2e;

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn the_sandbox_prints_an_address() {
    let kubeconfig = std::env::temp_dir().join(format!("sandbox-smoke-{}.kubeconfig", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_cloud-lb-controller"))
        .args([
            "sandbox",
            "--exit-when-ready",
            "--gce-latency-ms",
            "20",
            "--kubeconfig-out",
        ])
        .arg(&kubeconfig)
        .output()
        .expect("run the sandbox");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "sandbox failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Ingress default/test has an address"), "{stdout}");
    let row = stdout
        .lines()
        .find(|l| l.starts_with("test "))
        .unwrap_or_else(|| panic!("no table row:\n{stdout}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[..3], ["test", "gce", "*"], "{row}");
    assert!(
        cells[3].parse::<std::net::Ipv4Addr>().is_ok(),
        "not an address: {row}"
    );
    for kind in [
        "urlMaps",
        "targetHttpsProxies",
        "sslCertificates",
        "forwardingRules",
    ] {
        assert!(stdout.contains(kind), "{kind} missing from:\n{stdout}");
    }
    // The announcement's three requests, answered through the data plane.
    for line in [
        "HTTP/1.1 301 Moved Permanently",
        "# TLS certificate: CN=echoheaders",
        "served_by=",
        "x-forwarded-proto=https",
    ] {
        assert!(stdout.contains(line), "{line:?} missing from:\n{stdout}");
    }
    assert_eq!(stdout.matches("CLIENT VALUES:").count(), 2, "{stdout}");
    assert!(kubeconfig.exists());
    let _ = std::fs::remove_file(kubeconfig);
}

fn run(command: &mut Command) -> String {
    let out = command.output().expect("run");
    assert!(
        out.status.success(),
        "{command:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stops the sandbox when the test ends, however it ends.
struct Sandbox(Child);

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The README's promise: with the sandbox running, `curl http://ADDRESS/` gives 301 and `curl -sk
/// https://ADDRESS/` the echo, ADDRESS being what `kubectl get ing test` shows (on the mapped
/// ports when not root); and an Ingress applied with kubectl is served the same way.
#[test]
fn the_running_sandbox_serves_curl_and_new_ingresses() {
    if e2e::tool("curl", &["--version"]).is_none() || e2e::tool("kubectl", &["version", "--client"]).is_none()
    {
        return;
    }
    let kubeconfig = std::env::temp_dir().join(format!("sandbox-running-{}.kubeconfig", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_cloud-lb-controller"))
        .args(["sandbox", "--kubeconfig-out"])
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the sandbox");
    let stdout = child.stdout.take().expect("stdout");
    let _sandbox = Sandbox(child);
    // Read until the sandbox says it keeps running; keep the rest drained so it never blocks.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut printed = String::new();
    while !printed.contains("Press Ctrl-C to stop.") {
        match rx.recv_timeout(Duration::from_secs(300)) {
            Ok(line) => {
                printed.push_str(&line);
                printed.push('\n');
            }
            Err(e) => panic!("the sandbox did not get ready ({e}):\n{printed}"),
        }
    }
    // Not root: the sandbox names the ports 80 and 443 are served at.
    let (http_port, https_port) = printed
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix("(not root: the load balancer's ports 80 and 443 are served at ")?;
            let (a, b) = rest.trim_end_matches(')').split_once(" and ")?;
            Some((a.parse::<u16>().ok()?, b.parse::<u16>().ok()?))
        })
        .unwrap_or((80, 443));
    let kubectl = || {
        let mut c = Command::new("kubectl");
        c.env("KUBECONFIG", &kubeconfig);
        c
    };
    let address = run(kubectl().args([
        "get",
        "ing",
        "test",
        "-o",
        "jsonpath={.status.loadBalancer.ingress[0].ip}",
    ]));
    let ip: std::net::Ipv4Addr = address
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("not an address: {address:?}"));
    assert!(
        ip.is_loopback(),
        "{ip}: the sandbox's addresses are loopback ones"
    );

    let code = run(Command::new("curl").args([
        "-s",
        "--noproxy",
        "*",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("http://{ip}:{http_port}/"),
    ]));
    assert_eq!(code, "301");
    let echo =
        run(Command::new("curl").args(["-sk", "--noproxy", "*", &format!("https://{ip}:{https_port}/")]));
    assert!(echo.starts_with("CLIENT VALUES:"), "{echo}");
    assert!(echo.contains("default/echoheaders:8080"), "{echo}");

    // Another Service and Ingress, applied with kubectl, are served the same way.
    let manifest = r#"
apiVersion: v1
kind: Service
metadata: {name: hello, namespace: default}
spec:
  type: NodePort
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: hello, namespace: default}
spec:
  ingressClassName: gce
  defaultBackend: {service: {name: hello, port: {number: 80}}}
"#;
    let mut apply = kubectl()
        .args(["apply", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("kubectl apply");
    apply
        .stdin
        .take()
        .expect("stdin")
        .write_all(manifest.as_bytes())
        .expect("write");
    assert!(apply.wait().expect("kubectl").success());
    // The final condition: the new Ingress's address answers with the new Service's echo (its
    // health checks pass first, so retry until then).
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = String::new();
    while Instant::now() < deadline {
        let address = run(kubectl().args([
            "get",
            "ing",
            "hello",
            "-o",
            "jsonpath={.status.loadBalancer.ingress[0].ip}",
        ]));
        if !address.trim().is_empty() {
            let out = Command::new("curl")
                .args([
                    "-s",
                    "--noproxy",
                    "*",
                    &format!("http://{}:{http_port}/", address.trim()),
                ])
                .output()
                .expect("curl");
            last = String::from_utf8_lossy(&out.stdout).into_owned();
            if last.contains("default/hello:80") {
                let _ = std::fs::remove_file(&kubeconfig);
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("the new Ingress was not served by its Service; last answer:\n{last}");
}
