//! Nodes, references, the snapshot, message format, secrecy of keys, and robustness.

use super::*;
use crate::translate::{cluster_nodes, references};
use k8s_openapi::api::core::v1::Node;

#[test]
fn problem_display_names_ingress_field_and_object() {
    let ingress: Ingress = from_json(ingress(json!({"rules": [
        rule("a.example.com", json!([path("/", "Prefix", svc("echo", 80))])),
        rule("b.example.com", json!([path("/", "Prefix", svc_named("echo", "htp"))])),
    ]})));
    let problems = translate(&ingress, &world(), &config()).err().unwrap_or_default();
    let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            r#"default/test: spec.rules[1].http.paths[0].backend.service.port.name: Service default/echo has no port named "htp""#
        ]
    );
}

#[test]
fn private_keys_never_leave_the_model_in_output() {
    let ingress: Ingress = from_json(ingress(
        json!({"defaultBackend": svc("echo", 80), "tls": [{"secretName": "tls"}]}),
    ));
    let translation = translate(&ingress, &world(), &config()).unwrap_or_else(|p| panic!("{p:?}"));
    let lb = &translation.load_balancer;
    let json = serde_json::to_string(lb).unwrap_or_default();
    assert!(!json.contains("PRIVATE KEY"), "{json}");
    assert!(!format!("{lb:?}").contains("PRIVATE KEY"));
}

fn node(name: &str, provider_id: Option<&str>, labels: Value) -> Node {
    let mut value = json!({"metadata": {"name": name, "labels": labels}, "spec": {}});
    if let Some(id) = provider_id {
        value["spec"]["providerID"] = json!(id);
    }
    from_json(value)
}

#[test]
fn nodes_to_zones_and_instances() {
    let nodes = [
        node("n3", Some("gce://proj/us-central1-b/vm-3"), json!({})),
        node(
            "n1",
            Some("gce://proj/us-central1-a/vm-1"),
            json!({"topology.kubernetes.io/zone": "ignored"}),
        ),
        node(
            "n2",
            None,
            json!({"topology.kubernetes.io/zone": "us-central1-a"}),
        ),
        node(
            "n4",
            Some("kind://docker/kind/n4"),
            json!({"failure-domain.beta.kubernetes.io/zone": "us-central1-b"}),
        ),
        node(
            "n5",
            Some("gce://proj/us-central1-a/vm-5"),
            json!({"node.kubernetes.io/exclude-from-external-load-balancers": ""}),
        ),
        node("n6", Some("gce://broken"), json!({})),
        node("n0", Some("gce://proj/us-central1-b/vm-0"), json!({})),
    ];
    let (got, warnings) = cluster_nodes(&nodes);
    let got: Vec<(&str, &str, &str)> = got
        .iter()
        .map(|n| (n.zone.as_str(), n.name.as_str(), n.instance.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("us-central1-a", "n1", "vm-1"),
            ("us-central1-a", "n2", "n2"),
            ("us-central1-b", "n0", "vm-0"),
            ("us-central1-b", "n3", "vm-3"),
            ("us-central1-b", "n4", "n4"),
        ]
    );
    assert_eq!(
        warnings,
        [
            r#"Node "n6" has no zone (no gce:// providerID and no topology.kubernetes.io/zone label); it takes no load-balancer traffic"#
        ]
    );
}

#[test]
fn references_of_an_ingress() {
    let value = json!({
        "metadata": {"name": "test", "namespace": "shop"},
        "spec": {
            "defaultBackend": svc("web", 80),
            "rules": [
                rule("a.example.com", json!([path("/", "Prefix", svc("api", 80)), path("/x", "Prefix", svc("web", 81))])),
                {"host": "b.example.com"},
            ],
            "tls": [{"secretName": "b"}, {"secretName": "a"}, {"secretName": "b"}, {"hosts": ["x"]}],
        },
    });
    let refs = references(&from_json(value));
    let pairs = |names: &[&str]| -> Vec<(String, String)> {
        names
            .iter()
            .map(|n| ("shop".to_owned(), (*n).to_owned()))
            .collect()
    };
    assert_eq!(refs.services, pairs(&["api", "web"]));
    assert_eq!(refs.secrets, pairs(&["a", "b"]));
    assert_eq!(
        references(&from_json(json!({"metadata": {"name": "x"}}))),
        Default::default()
    );
}

#[test]
fn snapshot_files_objects_by_namespace() {
    use crate::translate::Objects;
    let mut snapshot = Snapshot::new().with_service(service("echo", "NodePort", json!([])));
    let mut elsewhere = service("echo", "ClusterIP", json!([]));
    elsewhere.metadata.namespace = Some("other".into());
    snapshot.insert_service(elsewhere);
    let mut unnamespaced = service("plain", "NodePort", json!([]));
    unnamespaced.metadata.namespace = None;
    snapshot.insert_service(unnamespaced);
    let kind = |ns: &str, name: &str| {
        snapshot
            .service(ns, name)
            .and_then(|s| s.spec.as_ref().and_then(|s| s.type_.clone()))
    };
    assert_eq!(kind("default", "echo").as_deref(), Some("NodePort"));
    assert_eq!(kind("other", "echo").as_deref(), Some("ClusterIP"));
    assert_eq!(kind("default", "plain").as_deref(), Some("NodePort"));
    assert!(snapshot.secret("default", "tls").is_none());
    assert_eq!(
        snapshot
            .with_ingress_class(ingress_class("x", "y", false))
            .ingress_classes()
            .len(),
        1
    );
}

/// Odd and hostile content never panics: it gives a model or problems.
#[test]
fn odd_input_never_panics() {
    let long = "a".repeat(300);
    let specs = [
        json!(null),
        json!({"rules": [{"http": {"paths": []}}]}),
        json!({"rules": [{"host": "", "http": {"paths": [{"pathType": "", "backend": {}}]}}]}),
        json!({"rules": [{"host": long, "http": {"paths": [{"path": "/ü/*", "pathType": "ImplementationSpecific", "backend": svc("echo", 0)}]}}]}),
        json!({"rules": [{"host": "é.example.com", "http": {"paths": [{"path": "/\u{0}", "pathType": "Exact", "backend": svc("echo", -1)}]}}]}),
        json!({"defaultBackend": {"service": {"name": "echo", "port": {"name": ""}}}, "tls": [{"secretName": ""}, {}]}),
        json!({"defaultBackend": svc("echo", 80), "tls": [{"secretName": "garbage"}, {"secretName": "binary"}]}),
        json!({"rules": [{"host": "[::1]:80"}, {"host": "*.*"}, {"host": "-a.com"}, {"host": ":"}]}),
    ];
    let annotations = json!({
        "kubernetes.io/ingress.allow-http": "\u{1F600}",
        "ingress.gcp.kubernetes.io/pre-shared-cert": ",,,\u{0},",
        "cloud-lb-controller.io/redirect-response-code": "99999999999999999999",
        "cloud-lb-controller.io/": "",
        "cloud-lb-controller.io/\u{1F600}": "",
    });
    let mut snapshot = world();
    snapshot.insert_secret(secret("garbage", json!({"tls.crt": "-----BEGIN CERTIFICATE-----\n\u{1F600}\n-----END CERTIFICATE-----", "tls.key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"})));
    let mut binary = secret("binary", json!({}));
    binary.data = Some(
        [
            ("tls.crt".to_owned(), k8s_openapi::ByteString(vec![0xff, 0xfe, 0])),
            ("tls.key".to_owned(), k8s_openapi::ByteString(vec![0x80])),
        ]
        .into(),
    );
    snapshot.insert_secret(binary);
    snapshot.insert_service(service_with(
        "weird",
        "NodePort",
        json!([{"port": 0, "nodePort": 70000}, {"port": 99999, "name": "big"}]),
        json!({"cloud.google.com/app-protocols": "[1,2]", "cloud-lb-controller.io/health-check-port": "0x10"}),
    ));
    for spec in specs {
        for annotated_too in [false, true] {
            let mut value = ingress(spec.clone());
            if annotated_too {
                value["metadata"]["annotations"] = annotations.clone();
            }
            let Ok(ingress) = serde_json::from_value::<Ingress>(value) else {
                continue;
            };
            let _ = translate(&ingress, &snapshot, &config());
            let _ = crate::translate::is_ours(&ingress, &snapshot, &config());
        }
    }
    for backend in [svc("weird", 0), svc("weird", 99999), svc_named("weird", "big")] {
        let ingress: Ingress = from_json(ingress(json!({"defaultBackend": backend})));
        assert!(translate(&ingress, &snapshot, &config()).is_err());
    }
}
