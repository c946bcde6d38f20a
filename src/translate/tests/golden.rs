//! The seed example, translated and compared with `testdata/seed.json`.
//!
//! A NodePort Service `echoheaders` on port 8080, a TLS Secret `tls` holding the committed test
//! certificate (`testdata/seed.crt`, `testdata/seed.key`), and an Ingress `test` with
//! `tls: [{secretName: tls}]` and the default backend `echoheaders:8080`. Set `UPDATE_GOLDEN=1`
//! to rewrite the JSON after an intended change, and review the diff.

use super::*;

fn seed() -> (Ingress, Snapshot) {
    let mut snapshot = Snapshot::new();
    snapshot.insert_service(service(
        "echoheaders",
        "NodePort",
        json!([{"name": "http", "port": 8080, "targetPort": 8080, "nodePort": 30301, "protocol": "TCP"}]),
    ));
    snapshot.insert_secret(tls_secret("tls", &testdata("seed.crt"), &testdata("seed.key")));
    let ingress = from_json(json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": "test",
            "namespace": "default",
            "uid": "6d4b2a1e-0c1f-4b8e-9f5a-3c2d1e0f9a8b",
            "annotations": {"kubernetes.io/ingress.class": "gce"},
        },
        "spec": {
            "tls": [{"secretName": "tls"}],
            "defaultBackend": {"service": {"name": "echoheaders", "port": {"number": 8080}}},
        },
    }));
    (ingress, snapshot)
}

#[test]
fn seed_example_matches_golden_model() {
    let (ingress, snapshot) = seed();
    assert!(crate::translate::is_ours(&ingress, &snapshot, &config()));
    let translation = translate(&ingress, &snapshot, &config()).unwrap_or_else(|p| panic!("{p:#?}"));
    assert!(translation.warnings.is_empty(), "{:#?}", translation.warnings);
    let got = serde_json::to_string_pretty(&translation.load_balancer).unwrap_or_default() + "\n";
    let path = format!("{}/src/translate/testdata/seed.json", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &got).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
    let want = testdata("seed.json");
    assert_eq!(
        got, want,
        "the model differs from {path}; rerun with UPDATE_GOLDEN=1 if the change is intended"
    );
    // The key was read (the JSON shows it redacted).
    let https = translation
        .load_balancer
        .frontends
        .https
        .as_ref()
        .map(|h| h.certificates[0].private_key.expose());
    assert_eq!(https, Some(testdata("seed.key").as_str()));
}

/// Writes `testdata/seed.crt` and `seed.key`: run once with `--ignored` (already done; the
/// committed files are what the golden model hashes).
#[test]
#[ignore = "generates the committed test certificate"]
fn generate_seed_certificate() {
    let spec = Spec {
        names: &["echo.example.com"],
        not_before: (2025, 1, 1),
        not_after: (2125, 1, 1),
    };
    let pair = self_signed(&spec, &rcgen::PKCS_ECDSA_P256_SHA256);
    let dir = format!("{}/src/translate/testdata", env!("CARGO_MANIFEST_DIR"));
    std::fs::write(format!("{dir}/seed.crt"), pair.chain).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(format!("{dir}/seed.key"), pair.key).unwrap_or_else(|e| panic!("{e}"));
}
