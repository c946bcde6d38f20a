//! End to end, through the real binary: HTTP, TLS with the redirect, hosts and paths, updates,
//! and deletion leaving only what was never ours.

mod e2e;

use cloud_lb_controller::annotations as keys;
use e2e::*;
use serde_json::{Value, json};

#[tokio::test]
async fn an_http_ingress_gets_an_address_and_deleting_it_leaves_only_foreign_resources() {
    let mut env = Env::start().await;
    let foreign = format!("foreign-{}", env.namespace);
    env.gce.create("healthChecks", json!({"name": foreign, "description": "a user's", "type": "TCP", "tcpHealthCheck": {"port": 22}})).await;
    env.start_controller();
    env.apply(&service("web")).await;
    env.apply(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: web}\nspec:\n  ingressClassName: gce\n  defaultBackend: {service: {name: web, port: {number: 80}}}\n",
    )
    .await;
    let ip = env.wait_address("web").await;
    let rule = env
        .annotated("web", keys::FORWARDING_RULE, "forwardingRules")
        .await;
    assert_eq!(rule["IPAddress"], ip.as_str());
    let map = env.annotated("web", keys::URL_MAP, "urlMaps").await;
    let backends: serde_json::Map<String, Value> =
        serde_json::from_str(&env.annotation("web", keys::BACKENDS).await.unwrap()).unwrap();
    assert_eq!(name_of(&map["defaultService"]), *backends.keys().next().unwrap());
    assert!(env.annotation("web", keys::HTTPS_FORWARDING_RULE).await.is_none());

    env.delete_ingress("web").await;
    let left = eventually("every resource of this cluster gone", WAIT, || async {
        let left = env.gce.owned_by(&env.cluster_uid).await;
        left.is_empty().then_some(left)
    })
    .await;
    assert!(left.is_empty());
    assert!(
        env.gce.get("healthChecks", &foreign).await.is_some(),
        "the foreign health check stays"
    );
}

#[tokio::test]
async fn the_tls_example_with_the_redirect() {
    let mut env = Env::start().await;
    env.start_controller();
    env.apply(&service("echoheaders")).await;
    env.apply(&tls_secret("tls", "echoheaders")).await;
    env.apply(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: test
  annotations: {cloud-lb-controller.io/redirect-to-https: "true"}
spec:
  ingressClassName: gce
  tls: [{secretName: tls}]
  defaultBackend: {service: {name: echoheaders, port: {number: 80}}}
"#,
    )
    .await;
    let ip = env.wait_address("test").await;
    let https = env
        .annotated("test", keys::HTTPS_TARGET_PROXY, "targetHttpsProxies")
        .await;
    let cert = env.annotation("test", keys::SSL_CERT).await.unwrap();
    assert_eq!(
        https["sslCertificates"]
            .as_array()
            .map(|c| c.iter().map(name_of).collect::<Vec<_>>()),
        Some(vec![cert])
    );
    let http = env
        .annotated("test", keys::TARGET_PROXY, "targetHttpProxies")
        .await;
    let redirect = env.gce.get("urlMaps", &name_of(&http["urlMap"])).await.unwrap();
    assert_eq!(redirect["defaultUrlRedirect"]["httpsRedirect"], true);
    assert_eq!(
        Some(name_of(&http["urlMap"])),
        env.annotation("test", keys::REDIRECT_URL_MAP).await
    );
    let r80 = env
        .annotated("test", keys::FORWARDING_RULE, "forwardingRules")
        .await;
    let r443 = env
        .annotated("test", keys::HTTPS_FORWARDING_RULE, "forwardingRules")
        .await;
    assert_eq!(
        (r80["IPAddress"].as_str(), r80["portRange"].as_str()),
        (Some(ip.as_str()), Some("80-80"))
    );
    assert_eq!(
        (r443["IPAddress"].as_str(), r443["portRange"].as_str()),
        (Some(ip.as_str()), Some("443-443"))
    );
    env.delete_ingress("test").await;
}

#[tokio::test]
async fn hosts_and_paths_are_read_back_from_the_url_map() {
    let mut env = Env::start().await;
    env.start_controller();
    env.apply(&service("api")).await;
    env.apply(&service("web")).await;
    env.apply(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: routes}
spec:
  ingressClassName: gce
  defaultBackend: {service: {name: web, port: {number: 80}}}
  rules:
  - host: shop.example.com
    http:
      paths:
      - {path: /api, pathType: Prefix, backend: {service: {name: api, port: {number: 80}}}}
      - {path: /api, pathType: Exact, backend: {service: {name: web, port: {number: 80}}}}
  - host: "*.example.org"
    http:
      paths:
      - {path: /static/*, pathType: ImplementationSpecific, backend: {service: {name: web, port: {number: 80}}}}
  - http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: api, port: {number: 80}}}}
"#,
    )
    .await;
    env.wait_address("routes").await;
    let map = env.annotated("routes", keys::URL_MAP, "urlMaps").await;
    let hosts: Vec<Value> = map["hostRules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["hosts"].clone())
        .collect();
    assert_eq!(
        hosts,
        vec![
            json!(["shop.example.com"]),
            json!(["*.example.org"]),
            json!(["*"])
        ]
    );
    let backends: serde_json::Map<String, Value> =
        serde_json::from_str(&env.annotation("routes", keys::BACKENDS).await.unwrap()).unwrap();
    let service_of = |backend: &str| {
        backends
            .keys()
            .find(|k| k.contains(&format!("-{backend}-80-")))
            .cloned()
            .unwrap()
    };
    let paths = |i: usize| -> Vec<(Value, String)> {
        map["pathMatchers"][i]["pathRules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["paths"].clone(), name_of(&r["service"])))
            .collect()
    };
    // Exact wins on /api itself; Prefix keeps everything below it.
    assert_eq!(
        paths(0),
        vec![
            (json!(["/api/*"]), service_of("api")),
            (json!(["/api"]), service_of("web"))
        ]
    );
    assert_eq!(paths(1), vec![(json!(["/static/*"]), service_of("web"))]);
    assert_eq!(paths(2), vec![(json!(["/*"]), service_of("api"))]);
    assert_eq!(name_of(&map["defaultService"]), service_of("web"));
    env.delete_ingress("routes").await;
}

#[tokio::test]
async fn updates_follow_the_ingress_and_keep_the_address() {
    let mut env = Env::start().await;
    env.start_controller();
    env.apply(&service("one")).await;
    env.apply(&service("two")).await;
    env.apply(&tls_secret("tls", "app.example.com")).await;
    let ingress = |backend: &str, path: &str, allow_http: &str| {
        format!(
            r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: app
  annotations: {{kubernetes.io/ingress.allow-http: "{allow_http}"}}
spec:
  ingressClassName: gce
  tls: [{{secretName: tls}}]
  defaultBackend: {{service: {{name: one, port: {{number: 80}}}}}}
  rules:
  - host: app.example.com
    http:
      paths:
      - {{path: {path}, pathType: Prefix, backend: {{service: {{name: {backend}, port: {{number: 80}}}}}}}}
"#
        )
    };
    env.apply(&ingress("one", "/a", "true")).await;
    let ip = env.wait_address("app").await;
    let map_name = env.annotation("app", keys::URL_MAP).await.unwrap();
    let path_rule = |map: &Value| {
        (
            map["pathMatchers"][0]["pathRules"][0]["paths"].clone(),
            name_of(&map["pathMatchers"][0]["pathRules"][0]["service"]),
        )
    };

    // A path changes.
    env.apply(&ingress("one", "/b", "true")).await;
    eventually("the new path", WAIT, || async {
        (path_rule(&env.gce.get("urlMaps", &map_name).await?).0 == json!(["/b", "/b/*"])).then_some(())
    })
    .await;
    // Its backend changes.
    env.apply(&ingress("two", "/b", "true")).await;
    eventually("the new backend", WAIT, || async {
        path_rule(&env.gce.get("urlMaps", &map_name).await?)
            .1
            .contains("-two-80-")
            .then_some(())
    })
    .await;
    // The certificate is rotated.
    let old_cert = env.annotation("app", keys::SSL_CERT).await.unwrap();
    env.apply(&tls_secret("tls", "app.example.com")).await;
    let new_cert = eventually("the new certificate", WAIT, || async {
        env.annotation("app", keys::SSL_CERT)
            .await
            .filter(|c| *c != old_cert)
    })
    .await;
    eventually("the old certificate deleted", WAIT, || async {
        env.gce
            .get("sslCertificates", &old_cert)
            .await
            .is_none()
            .then_some(())
    })
    .await;
    assert!(env.gce.get("sslCertificates", &new_cert).await.is_some());
    // Plain HTTP is turned off: the :80 rule and proxy go, HTTPS stays.
    let http_rule = env.annotation("app", keys::FORWARDING_RULE).await.unwrap();
    env.apply(&ingress("two", "/b", "false")).await;
    eventually("the HTTP rule gone", WAIT, || async {
        (env.gce.get("forwardingRules", &http_rule).await.is_none()
            && env.annotation("app", keys::FORWARDING_RULE).await.is_none())
        .then_some(())
    })
    .await;
    assert!(env.annotation("app", keys::HTTPS_FORWARDING_RULE).await.is_some());
    assert_eq!(env.address("app").await, Some(ip), "the address never changed");
    env.delete_ingress("app").await;
}
