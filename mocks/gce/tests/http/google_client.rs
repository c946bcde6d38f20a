//! An independent client: Google's own `google-cloud-compute` Python library (REST transport)
//! builds a whole global external HTTP(S) load balancer on the fake, reads it back, tries the
//! deletes Compute refuses while a resource is in use, and tears it down
//! (`mocks/gce/tests/google_client/l7_chain.py`, which lists every deviation it finds).
//!
//! The packages live where `.ci/run` installs them: `GCE_PYTHON_PATH`, else
//! `target/gce-python` of the workspace. Without them the test is skipped, except under
//! `CI=true`, where that is a failure.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::Api;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/google_client/l7_chain.py");

/// The directory holding `google/cloud/compute_v1`, or `None` (skip) outside CI.
fn python_path() -> Option<PathBuf> {
    let dir = match std::env::var_os("GCE_PYTHON_PATH") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/gce-python"),
    };
    if dir.join("google/cloud/compute_v1/__init__.py").is_file() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "google-cloud-compute is not installed in {} (CI=true); see .ci/run",
        dir.display()
    );
    eprintln!(
        "skipping: google-cloud-compute is not installed in {} (see .ci/run, or set GCE_PYTHON_PATH)",
        dir.display()
    );
    None
}

#[tokio::test]
async fn google_cloud_compute_builds_and_deletes_an_l7_chain() {
    let Some(pythonpath) = python_path() else {
        return;
    };
    let api = Api::start().await;
    let endpoint = api.gce.endpoint();
    // The script's output goes to a file (stdout and stderr interleaved as written), so that a
    // failure shows all of it.
    let log_path = std::env::temp_dir().join(format!(
        "fake-gce-google-client-{}-{}.log",
        std::process::id(),
        endpoint.rsplit(':').next().unwrap_or("0")
    ));
    let log = File::create(&log_path).expect("log file");
    let mut child = Command::new("python3")
        .arg(SCRIPT)
        .args(["--endpoint", &endpoint, "--project", "p"])
        .env("PYTHONPATH", &pythonpath)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .spawn()
        .expect("python3 starts");
    // The fake answers on this runtime: wait for the child without blocking it.
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for python3") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    let _ = std::fs::remove_file(&log_path);
    match status {
        Some(s) if s.success() => eprintln!("{output}"),
        Some(s) => panic!("l7_chain.py found deviations from Compute ({s}):\n{output}"),
        None => panic!("l7_chain.py did not finish within 300 s:\n{output}"),
    }
}
