//! The README's first command, as a script runs it: `sandbox --exit-when-ready` prints the
//! example Ingress with an address.

use std::process::Command;

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
    assert!(kubeconfig.exists());
    let _ = std::fs::remove_file(kubeconfig);
}
