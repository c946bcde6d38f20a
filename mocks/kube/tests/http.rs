//! The wire protocol directly: error bodies, content negotiation, discovery, and edge cases a
//! typed client never produces.

mod common;

use axum::http::{HeaderMap, Request};
use common::start;
use fake_kube::FakeKube;
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

struct Reply {
    code: u16,
    headers: HeaderMap,
    body: Value,
}

async fn call(client: &Client, method: &str, uri: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let response = client
        .send(req.body(Body::from(body.to_vec())).unwrap())
        .await
        .unwrap();
    let code = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect_bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    Reply { code, headers, body }
}

const JSON: (&str, &str) = ("content-type", "application/json");
const CMS: &str = "/api/v1/namespaces/default/configmaps";

fn assert_status(reply: &Reply, code: u16, reason: &str) {
    assert_eq!(reply.code, code, "{}", reply.body);
    assert_eq!(reply.body["kind"], "Status", "{}", reply.body);
    assert_eq!(reply.body["code"], code);
    assert_eq!(reply.body["reason"], reason, "{}", reply.body);
    assert_eq!(reply.body["status"], "Failure");
}

async fn seed_config_map(kube: &FakeKube) {
    kube.create(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"a": "1"}}),
    )
    .unwrap();
}

#[tokio::test]
async fn malformed_requests_get_400_and_change_nothing() {
    let (kube, client) = start().await;
    seed_config_map(&kube).await;
    let rv = kube.resource_version();
    let cm = |extra: Value| {
        let mut v = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}});
        if let (Some(m), Value::Object(e)) = (v.as_object_mut(), extra) {
            m.extend(e);
        }
        v.to_string().into_bytes()
    };
    let cases: Vec<(&str, String, Vec<u8>)> = vec![
        ("POST", CMS.into(), b"{".to_vec()),
        ("POST", CMS.into(), b"[1, 2]".to_vec()),
        ("POST", CMS.into(), b"".to_vec()),
        ("POST", CMS.into(), br#"{"metadata": {"name": "x"}}"#.to_vec()),
        (
            "POST",
            CMS.into(),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}})
                .to_string()
                .into_bytes(),
        ),
        (
            "POST",
            CMS.into(),
            cm(json!({"metadata": {"name": "x", "namespace": "kube-system"}})),
        ),
        (
            "POST",
            CMS.into(),
            cm(json!({"metadata": {"name": "x", "resourceVersion": "5"}})),
        ),
        ("POST", CMS.into(), cm(json!({"data": {"a": 5}}))),
        ("PUT", format!("{CMS}/cm"), cm(json!({}))),
        ("POST", format!("{CMS}?dryRun=Maybe"), cm(json!({}))),
        ("POST", format!("{CMS}?fieldValidation=Loose"), cm(json!({}))),
        ("GET", format!("{CMS}?labelSelector=a%20in%20b"), Vec::new()),
        ("GET", format!("{CMS}?limit=ten"), Vec::new()),
        ("GET", format!("{CMS}?watch=true&resourceVersion=abc"), Vec::new()),
        ("GET", format!("{CMS}?watch=maybe"), Vec::new()),
        ("DELETE", format!("{CMS}/cm"), b"{not json".to_vec()),
    ];
    for (method, uri, body) in cases {
        let reply = call(&client, method, &uri, &[JSON], &body).await;
        assert_eq!(
            reply.code,
            400,
            "{method} {uri} {}: {}",
            String::from_utf8_lossy(&body),
            reply.body
        );
        assert_status(&reply, 400, "BadRequest");
    }
    let patch = |ct: &'static str, body: &'static [u8]| (ct, body);
    for (ct, body) in [
        patch("application/merge-patch+json", b"{"),
        patch("application/json-patch+json", br#"{"op": "add"}"#),
        patch(
            "application/json-patch+json",
            br#"[{"op": "teleport", "path": "/a"}]"#,
        ),
        patch(
            "application/strategic-merge-patch+json",
            br#"{"$patch": "explode"}"#,
        ),
        patch(
            "application/merge-patch+json",
            br#"{"metadata": {"name": "renamed"}}"#,
        ),
        patch(
            "application/apply-patch+yaml",
            br#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other"}}"#,
        ),
        patch(
            "application/apply-patch+yaml",
            br#"{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "cm"}}"#,
        ),
        patch("application/apply-patch+yaml", b"a: [unclosed"),
    ] {
        let reply = call(
            &client,
            "PATCH",
            &format!("{CMS}/cm?fieldManager=t"),
            &[("content-type", ct)],
            body,
        )
        .await;
        assert_status(&reply, 400, "BadRequest");
    }
    let unsupported = call(
        &client,
        "PATCH",
        &format!("{CMS}/cm"),
        &[("content-type", "text/plain")],
        b"{}",
    )
    .await;
    assert_status(&unsupported, 415, "UnsupportedMediaType");
    let unsupported = call(
        &client,
        "POST",
        CMS,
        &[("content-type", "application/xml")],
        b"<x/>",
    )
    .await;
    assert_status(&unsupported, 415, "UnsupportedMediaType");
    assert_eq!(kube.resource_version(), rv, "nothing was stored");
    assert_eq!(kube.list("v1", "ConfigMap", Some("default")).len(), 1);
}

#[tokio::test]
async fn json_patch_failures_are_422_and_atomic() {
    let (kube, client) = start().await;
    seed_config_map(&kube).await;
    let before = kube.get("v1", "ConfigMap", Some("default"), "cm").unwrap();
    let body = json!([
        {"op": "add", "path": "/data/b", "value": "2"},
        {"op": "test", "path": "/data/a", "value": "not 1"},
    ]);
    let reply = call(
        &client,
        "PATCH",
        &format!("{CMS}/cm"),
        &[("content-type", "application/json-patch+json")],
        body.to_string().as_bytes(),
    )
    .await;
    assert_status(&reply, 422, "Invalid");
    assert_eq!(
        kube.get("v1", "ConfigMap", Some("default"), "cm").unwrap(),
        before
    );
}

#[tokio::test]
async fn unknown_kinds_and_paths_are_404() {
    let (_kube, client) = start().await;
    for uri in [
        "/apis/batch/v1/namespaces/default/jobs",
        "/api/v1/namespaces/default/pods/x/log",
        "/api/v1/namespaces/default/configmaps/x/status",
        "/apis/networking.k8s.io/v1/namespaces/default/ingresses/x/scale",
        "/api/v1/configmaps/x",
        "/apis/nope.example.com",
        "/apis/nope.example.com/v1",
        "/api/v2",
        "/openapi/v3/apis/batch/v1",
        "/openapi/v2",
        "/nonsense",
    ] {
        let reply = call(&client, "GET", uri, &[], b"").await;
        assert_status(&reply, 404, "NotFound");
    }
    let reply = call(&client, "DELETE", "/apis", &[], b"").await;
    assert_status(&reply, 405, "MethodNotAllowed");
    let reply = call(&client, "POST", &format!("{CMS}/cm"), &[JSON], b"{}").await;
    assert_status(&reply, 405, "MethodNotAllowed");
}

#[tokio::test]
async fn invalid_objects_name_their_fields() {
    let (kube, client) = start().await;
    let rv = kube.resource_version();
    let ingress = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "Bad_Name", "labels": {"ok": "not ok!"}},
        "spec": {"rules": [{"host": "10.0.0.1", "http": {"paths": [{"path": "/", "backend": {"service": {"name": "web", "port": {"number": 80, "name": "http"}}}}]}}]}
    });
    let reply = call(
        &client,
        "POST",
        "/apis/networking.k8s.io/v1/namespaces/default/ingresses",
        &[JSON],
        ingress.to_string().as_bytes(),
    )
    .await;
    assert_status(&reply, 422, "Invalid");
    let details = &reply.body["details"];
    assert_eq!(details["kind"], "Ingress");
    assert_eq!(details["group"], "networking.k8s.io");
    let fields: Vec<&str> = details["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "metadata.name",
            "metadata.labels",
            "spec.rules[0].host",
            "spec.rules[0].http.paths[0].pathType",
            "spec.rules[0].http.paths[0].backend.service.port",
        ]
    );
    assert!(
        reply.body["message"]
            .as_str()
            .unwrap()
            .starts_with("Ingress.networking.k8s.io \"Bad_Name\" is invalid: [")
    );

    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "tls"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}});
    let reply = call(
        &client,
        "POST",
        "/api/v1/namespaces/default/secrets",
        &[JSON],
        secret.to_string().as_bytes(),
    )
    .await;
    assert_status(&reply, 422, "Invalid");
    assert_eq!(reply.body["details"]["causes"][0]["field"], "data[tls.key]");
    assert_eq!(kube.resource_version(), rv);
}

#[tokio::test]
async fn field_validation_modes() {
    let (kube, client) = start().await;
    let body = |name: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "1"}, "colour": "blue"})
            .to_string()
    };
    let strict = call(
        &client,
        "POST",
        &format!("{CMS}?fieldValidation=Strict"),
        &[JSON],
        body("s").as_bytes(),
    )
    .await;
    assert_status(&strict, 400, "BadRequest");
    assert!(
        strict.body["message"]
            .as_str()
            .unwrap()
            .contains("unknown field \"colour\"")
    );

    let warned = call(&client, "POST", CMS, &[JSON], body("w").as_bytes()).await;
    assert_eq!(warned.code, 201);
    let warning = warned.headers.get("warning").unwrap().to_str().unwrap();
    assert_eq!(warning, r#"299 - "unknown field \"colour\"""#);
    assert!(warned.body.get("colour").is_none(), "unknown fields are dropped");

    let ignored = call(
        &client,
        "POST",
        &format!("{CMS}?fieldValidation=Ignore"),
        &[JSON],
        body("i").as_bytes(),
    )
    .await;
    assert_eq!(ignored.code, 201);
    assert!(ignored.headers.get("warning").is_none());
    assert!(kube.get("v1", "ConfigMap", Some("default"), "i").is_some());
}

#[tokio::test]
async fn writes_honour_dry_run_preconditions_and_yaml() {
    let (kube, client) = start().await;
    seed_config_map(&kube).await;
    let rv = kube.resource_version();
    let new = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dry"}}).to_string();
    let reply = call(
        &client,
        "POST",
        &format!("{CMS}?dryRun=All"),
        &[JSON],
        new.as_bytes(),
    )
    .await;
    assert_eq!(reply.code, 201);
    assert!(reply.body["metadata"]["uid"].is_string());
    assert!(kube.get("v1", "ConfigMap", Some("default"), "dry").is_none());
    assert_eq!(kube.resource_version(), rv);

    let precondition = json!({"preconditions": {"uid": "not-the-uid"}}).to_string();
    let reply = call(
        &client,
        "DELETE",
        &format!("{CMS}/cm"),
        &[JSON],
        precondition.as_bytes(),
    )
    .await;
    assert_status(&reply, 409, "Conflict");
    assert!(kube.get("v1", "ConfigMap", Some("default"), "cm").is_some());

    let yaml = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: gen-\ndata:\n  k: v\n";
    let reply = call(
        &client,
        "POST",
        CMS,
        &[("content-type", "application/yaml")],
        yaml,
    )
    .await;
    assert_eq!(reply.code, 201, "{}", reply.body);
    let name = reply.body["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");

    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"user": "admin"}});
    let reply = call(
        &client,
        "POST",
        "/api/v1/namespaces/default/secrets",
        &[JSON],
        secret.to_string().as_bytes(),
    )
    .await;
    assert_eq!(reply.body["data"]["user"], "YWRtaW4=");
    assert_eq!(reply.body["type"], "Opaque");
    assert!(reply.body.get("stringData").is_none());
}

#[tokio::test]
async fn discovery_documents() {
    let (_kube, client) = start().await;
    let version = call(&client, "GET", "/version", &[], b"").await;
    assert_eq!(version.body["major"], "1");

    let legacy = call(&client, "GET", "/api", &[], b"").await;
    assert_eq!(legacy.body["versions"], json!(["v1"]));
    let groups = call(&client, "GET", "/apis", &[], b"").await;
    let names: Vec<&str> = groups.body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "networking.k8s.io",
            "coordination.k8s.io",
            "events.k8s.io",
            "discovery.k8s.io",
            "rbac.authorization.k8s.io",
            "apps",
            "policy",
            "scheduling.k8s.io"
        ]
    );
    let networking = call(&client, "GET", "/apis/networking.k8s.io/v1", &[], b"").await;
    let resources: Vec<&str> = networking.body["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(resources, ["ingresses", "ingresses/status", "ingressclasses"]);

    let accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
    let aggregated = call(&client, "GET", "/apis", &[("accept", accept)], b"").await;
    assert_eq!(
        aggregated.headers["content-type"],
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    );
    assert_eq!(aggregated.body["kind"], "APIGroupDiscoveryList");

    let openapi = call(&client, "GET", "/openapi/v3", &[], b"").await;
    let url = openapi.body["paths"]["apis/networking.k8s.io/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap()
        .to_string();
    let doc = call(&client, "GET", &url, &[], b"").await;
    assert_eq!(doc.body["openapi"], "3.0.0");
    assert_eq!(call(&client, "GET", "/healthz", &[], b"").await.code, 200);
}

#[tokio::test]
async fn tables_and_metadata_renderings() {
    let (kube, client) = start().await;
    kube.apply_yaml(
        "apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
spec:
  ingressClassName: gce
  defaultBackend: {service: {name: web, port: {number: 80}}}
",
    )
    .unwrap();
    let table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
    let uri = "/apis/networking.k8s.io/v1/namespaces/default/ingresses";
    let reply = call(&client, "GET", uri, &[("accept", table)], b"").await;
    assert_eq!(reply.body["kind"], "Table");
    let columns: Vec<&str> = reply.body["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["Name", "Class", "Hosts", "Address", "Ports", "Age"]);
    let row = &reply.body["rows"][0];
    assert_eq!(row["cells"][0], "web");
    assert_eq!(row["cells"][2], "*");
    assert_eq!(row["object"]["kind"], "PartialObjectMetadata");

    let reply = call(
        &client,
        "GET",
        &format!("{uri}/web?includeObject=Object"),
        &[("accept", table)],
        b"",
    )
    .await;
    assert_eq!(reply.body["rows"][0]["object"]["kind"], "Ingress");

    let meta = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
    let reply = call(&client, "GET", uri, &[("accept", meta)], b"").await;
    assert_eq!(reply.body["kind"], "PartialObjectMetadataList");
    assert!(reply.body["items"][0].get("spec").is_none());

    let reply = call(
        &client,
        "GET",
        uri,
        &[("accept", "application/vnd.kubernetes.protobuf")],
        b"",
    )
    .await;
    assert_status(&reply, 406, "NotAcceptable");
}
