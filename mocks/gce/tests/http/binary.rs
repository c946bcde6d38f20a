//! The `fake-gce` binary: flags, the printed address, and a first operation.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use crate::common::install_crypto;

/// Kills the child when the test ends, pass or fail.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn binary_serves_and_counts() {
    install_crypto();
    let child = Command::new(env!("CARGO_BIN_EXE_fake-gce"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--instance",
            "us-central1-a/node-1=10.1.2.3",
            "--quota",
            "urlMaps=0",
            "--latency",
            "healthChecks.insert=50",
            "--fault",
            r#"{"method":"GET","path":"/boom$","action":{"type":"error","status":502}}"#,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let mut child = Running(child);
    let stdout = child.0.stdout.take().expect("stdout");
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await
    .expect("join")
    .expect("first line");
    let endpoint = line
        .trim()
        .strip_prefix("fake-gce listening on ")
        .expect("address line")
        .to_string();
    let client = reqwest::Client::new();
    let base = format!("{endpoint}/compute/v1/projects/fake-project");

    let op: Value = client
        .post(format!("{base}/global/healthChecks"))
        .json(&json!({"name": "hc", "type": "HTTP"}))
        .send()
        .await
        .expect("insert")
        .json()
        .await
        .expect("operation");
    assert_eq!(op["status"], "RUNNING");
    let name = op["name"].as_str().expect("name");
    let done: Value = client
        .post(format!("{base}/global/operations/{name}/wait"))
        .send()
        .await
        .expect("wait")
        .json()
        .await
        .expect("operation");
    assert_eq!(done["status"], "DONE");
    let stats: Value = client
        .get(format!("{endpoint}/_fake/stats"))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    assert_eq!(stats["byKind"]["healthChecks"]["mutations"], 1);
    assert_eq!(stats["byKind"]["globalOperations"]["operationPolls"], 1);

    // The flags took effect.
    let inst: Value = client
        .get(format!("{base}/zones/us-central1-a/instances/node-1"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(inst["networkInterfaces"][0]["networkIP"], "10.1.2.3");
    // The quota fails the insert's operation, as Compute does.
    let op: Value = client
        .post(format!("{base}/global/urlMaps"))
        .json(&json!({"name": "um", "defaultUrlRedirect": {"httpsRedirect": true}}))
        .send()
        .await
        .expect("insert")
        .json()
        .await
        .expect("operation");
    let name = op["name"].as_str().expect("name");
    let quota: Value = client
        .post(format!("{base}/global/operations/{name}/wait"))
        .send()
        .await
        .expect("wait")
        .json()
        .await
        .expect("operation");
    assert_eq!(quota["httpErrorStatusCode"], 403, "{quota:#}");
    assert_eq!(quota["error"]["errors"][0]["code"], "QUOTA_EXCEEDED");
    let boom = client
        .get(format!("{base}/global/urlMaps/boom"))
        .send()
        .await
        .expect("get");
    assert_eq!(boom.status(), 502);
    let latency: Value = client
        .get(format!("{endpoint}/_fake/latency"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(latency["perOperation"]["healthChecks.insert"], 50);
}

#[test]
fn bad_flags_are_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_fake-gce"))
        .args(["--listen", "127.0.0.1:0", "--fault", "{not json"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let out = Command::new(env!("CARGO_BIN_EXE_fake-gce"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--fault",
            r#"{"path":"(","action":{"type":"neverFinish"}}"#,
        ])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("fault rule 0"));
}
