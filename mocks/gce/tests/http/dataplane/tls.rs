//! TLS termination: certificates by SNI, HTTP/2 clients, `setSslCertificates`.

use std::net::SocketAddr;

use fake_gce::LoopbackBlock;
use reqwest::Method;
use serde_json::json;

use super::support::*;
use crate::common::install_crypto;

#[tokio::test]
async fn tls_presents_the_certificate_sni_names_and_follows_set_ssl_certificates() {
    install_crypto();
    let api = start().await;
    let nodes = LoopbackBlock::claim().expect("a block for the nodes");
    let _backend = Backend::start(SocketAddr::from((nodes.ip(1), 8080)), "web").await;
    let members = [node(&api, "web", nodes.ip(1))];
    let hc = health_check(&api, "hc", json!({})).await;
    let g = group(&api, "g", &members, 8080).await;
    let bs = backend_service(&api, "bs", &[&g], &hc, "HTTP").await;
    let map = url_map(&api, json!({"name": "um", "defaultService": bs})).await;

    let (a_pem, a_key, a_der) = certificate(&["a.example.com"]);
    let (b_pem, b_key, b_der) = certificate(&["*.b.example.com"]);
    for (name, pem, key) in [("a", &a_pem, &a_key), ("b", &b_pem, &b_key)] {
        api.create(
            "global/sslCertificates",
            json!({"name": name, "certificate": pem, "privateKey": key}),
        )
        .await;
    }
    // A managed certificate has no key here: it cannot serve, and is skipped.
    api.create(
        "global/sslCertificates",
        json!({"name": "managed", "type": "MANAGED", "managed": {"domains": ["m.example.com"]}}),
    )
    .await;
    let proxy = api
        .create(
            "global/targetHttpsProxies",
            json!({"name": "tps", "urlMap": map,
                   "sslCertificates": ["global/sslCertificates/managed", "global/sslCertificates/a", "global/sslCertificates/b"]}),
        )
        .await["selfLink"]
        .as_str()
        .expect("link")
        .to_string();
    let ip = forwarding_rule(&api, "fr", &proxy, 443, None).await;
    let addr = serving(&api, &ip, 443);
    wait_health(&api, "bs", &g, &[("web", "HEALTHY")]).await;

    let (r, leaf) = eventually("200 over TLS", || async {
        let (r, leaf) = tls_get(addr, Some("a.example.com"), "a.example.com", "/").await;
        (r.status == 200).then_some((r, leaf))
    })
    .await;
    assert_eq!(leaf, a_der, "SNI a.example.com");
    assert_eq!(r.json()["proto"], "https");
    assert_eq!(
        tls_get(addr, Some("x.b.example.com"), "h", "/").await.1,
        b_der,
        "wildcard SAN"
    );
    assert_eq!(
        tls_get(addr, Some("other.org"), "h", "/").await.1,
        a_der,
        "no match: the first"
    );
    assert_eq!(tls_get(addr, None, "h", "/").await.1, a_der, "no SNI: the first");

    // An HTTP/2 client (ALPN h2): its `:authority` reaches the backend as `Host`.
    let echo = eventually("200 over HTTP/2", || async {
        let r = h2_get(addr, "a.example.com", "/h2?x=1").await;
        (r.status == 200).then(|| r.json())
    })
    .await;
    assert_eq!(echo["host"], "a.example.com");
    assert_eq!(echo["path"], "/h2?x=1");
    assert_eq!(echo["version"], "HTTP/1.1");

    // New connections get the new list at once.
    api.done(
        Method::POST,
        "targetHttpsProxies/tps/setSslCertificates",
        Some(json!({"sslCertificates": ["global/sslCertificates/b", "global/sslCertificates/a"]})),
    )
    .await;
    assert_eq!(
        tls_get(addr, None, "h", "/").await.1,
        b_der,
        "no SNI: the new first"
    );
    assert_eq!(tls_get(addr, Some("a.example.com"), "h", "/").await.1, a_der);

    // The private key is nowhere to be read.
    let state = api.get("/_fake/state").await.ok().to_string();
    let cert = api.get("global/sslCertificates/a").await.ok().to_string();
    for text in [state, cert] {
        assert!(!text.contains("PRIVATE KEY"), "a private key leaked");
    }
}
