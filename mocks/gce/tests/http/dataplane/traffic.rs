//! Routing by the URL map, the headers backends get, redirects, backend protocols and timeouts.

use std::net::{Ipv4Addr, SocketAddr};

use fake_gce::LoopbackBlock;
use reqwest::Method;
use serde_json::json;

use super::support::*;
use crate::common::install_crypto;

#[tokio::test]
async fn traffic_follows_host_and_path_rules_with_googles_headers() {
    let api = start().await;
    let nodes = LoopbackBlock::claim().expect("a block for the nodes");
    let block = api.gce.data_plane_block().expect("the data plane runs");
    let web1 = Backend::start(SocketAddr::from((nodes.ip(1), 8080)), "web-1").await;
    let web2 = Backend::start(SocketAddr::from((nodes.ip(2), 8080)), "web-2").await;
    let apis = Backend::start(SocketAddr::from((nodes.ip(3), 9090)), "api").await;
    let web_nodes = [node(&api, "web-1", nodes.ip(1)), node(&api, "web-2", nodes.ip(2))];
    let api_nodes = [node(&api, "api-1", nodes.ip(3))];
    let hc = health_check(&api, "hc", json!({})).await;
    let web_group = group(&api, "web", &web_nodes, 8080).await;
    let api_group = group(&api, "api", &api_nodes, 9090).await;
    let web = backend_service(&api, "web", &[&web_group], &hc, "HTTP").await;
    let apis_bs = backend_service(&api, "api", &[&api_group], &hc, "HTTP").await;
    let map = url_map(
        &api,
        json!({
            "name": "um",
            "defaultService": web,
            "hostRules": [{"hosts": ["shop.example.com"], "pathMatcher": "shop"}],
            "pathMatchers": [{"name": "shop", "defaultService": web,
                              "pathRules": [{"paths": ["/api/*"], "service": apis_bs}]}],
        }),
    )
    .await;
    let proxy = http_proxy(&api, "tp", &map).await;
    let ip = forwarding_rule(&api, "fr", &proxy, 80, None).await;
    let lb: Ipv4Addr = ip.parse().expect("an IPv4 address");
    let [_, a, b, _] = block.octets();
    assert_eq!(
        lb.octets()[..3],
        [127, a, b],
        "the address comes from the data plane's block"
    );
    let addr = serving(&api, &ip, 80);
    assert_eq!(addr.ip(), lb);

    wait_health(
        &api,
        "web",
        &web_group,
        &[("web-1", "HEALTHY"), ("web-2", "HEALTHY")],
    )
    .await;
    wait_health(&api, "api", &api_group, &[("api-1", "HEALTHY")]).await;

    // Host rule and path rule; Host and path (with query) reach the backend as sent.
    let client = nodes.ip(200);
    let r = get_ok(addr, Some(client), "shop.example.com", "/api/items?id=7").await;
    let echo = r.json();
    assert_eq!(echo["backend"], "api");
    assert_eq!(echo["host"], "shop.example.com");
    assert_eq!(echo["path"], "/api/items?id=7");
    // What Google's load balancers add (see the crate docs for the sources).
    assert_eq!(echo["xff"], format!("{client},{lb}"));
    assert_eq!(echo["proto"], "http");
    assert_eq!(echo["via"], "1.1 google");
    let trace = echo["trace"].as_str().unwrap_or_default();
    assert!(
        trace.split_once('/').is_some_and(|(t, _)| t.len() == 32),
        "{trace}"
    );
    assert_eq!(
        r.headers.get("via").and_then(|v| v.to_str().ok()),
        Some("1.1 google")
    );

    // The path matcher's default, and the map's default for any other host: round robin over
    // the healthy members of the web group.
    for host in ["shop.example.com", "other.example.com"] {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let mut seen = std::collections::BTreeSet::new();
        while seen.len() < 2 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {seen:?} answered {host}"
            );
            seen.insert(get_ok(addr, None, host, "/").await.backend());
        }
        assert_eq!(seen, ["web-1".to_string(), "web-2".to_string()].into());
    }
    assert_eq!(apis.hits(), 1);

    // Edits apply to the next request: the map's default becomes the API service.
    let fingerprint = api.get("global/urlMaps/um").await.ok()["fingerprint"].clone();
    api.done(
        Method::PATCH,
        "global/urlMaps/um",
        Some(json!({"defaultService": apis_bs, "fingerprint": fingerprint})),
    )
    .await;
    assert_eq!(
        get_ok(addr, None, "other.example.com", "/").await.backend(),
        "api"
    );

    // The admin view lists the listener and every probed member.
    let view = api.get("/_fake/dataplane").await.ok();
    assert_eq!(view["block"], block.to_string());
    assert_eq!(view["listeners"][0]["ip"], ip);
    assert_eq!(view["listeners"][0]["port"], 80);
    assert_eq!(view["listeners"][0]["listening"], true);
    assert_eq!(view["health"].as_array().map(Vec::len), Some(3), "{view:#}");
    drop((web1, web2));
}

#[tokio::test]
async fn a_url_map_redirect_answers_with_its_location() {
    let api = start().await;
    let address = api.create("global/addresses", json!({"name": "ip"})).await["address"]
        .as_str()
        .expect("address")
        .to_string();
    let redirect = url_map(
        &api,
        json!({"name": "redirect", "defaultUrlRedirect": {"httpsRedirect": true, "stripQuery": false}}),
    )
    .await;
    let proxy = http_proxy(&api, "tp", &redirect).await;
    forwarding_rule(&api, "http", &proxy, 80, Some(&address)).await;
    // The HTTPS side on the same address, so that the redirect has somewhere to land.
    let (pem, key, _) = certificate(&["shop.example.com"]);
    api.create(
        "global/sslCertificates",
        json!({"name": "c", "certificate": pem, "privateKey": key}),
    )
    .await;
    let tps = api
        .create(
            "global/targetHttpsProxies",
            json!({"name": "tps", "urlMap": redirect, "sslCertificates": ["global/sslCertificates/c"]}),
        )
        .await["selfLink"]
        .as_str()
        .expect("link")
        .to_string();
    forwarding_rule(&api, "https", &tps, 443, Some(&address)).await;

    let r = get(serving(&api, &address, 80), "shop.example.com", "/cart?id=3").await;
    assert_eq!(r.status, 301, "{}", r.body);
    // Port 443 where it can be bound (root), else where the fake serves it (10443).
    let https_port = serving(&api, &address, 443).port();
    let port = if https_port == 443 {
        String::new()
    } else {
        format!(":{https_port}")
    };
    let location = format!("https://shop.example.com{port}/cart?id=3");
    assert_eq!(
        r.headers.get("location").and_then(|v| v.to_str().ok()),
        Some(location.as_str())
    );
    assert!(r.body.contains("301 Moved"), "{}", r.body);
    assert!(r.body.contains(&location), "{}", r.body);
}

#[tokio::test]
async fn backends_speak_https_and_http2() {
    install_crypto();
    let api = start().await;
    let nodes = LoopbackBlock::claim().expect("a block for the nodes");
    let _https = Backend::start_tls(SocketAddr::from((nodes.ip(1), 8443)), "https").await;
    let _h2 = Backend::start_tls(SocketAddr::from((nodes.ip(2), 8443)), "h2").await;
    let g1 = group(&api, "g1", &[node(&api, "n1", nodes.ip(1))], 8443).await;
    let g2 = group(&api, "g2", &[node(&api, "n2", nodes.ip(2))], 8443).await;
    let https_hc = typed_health_check(&api, "https", "HTTPS", "httpsHealthCheck").await;
    let h2_hc = typed_health_check(&api, "h2", "HTTP2", "http2HealthCheck").await;
    let https = backend_service(&api, "https", &[&g1], &https_hc, "HTTPS").await;
    let h2 = backend_service(&api, "h2", &[&g2], &h2_hc, "HTTP2").await;
    let map = url_map(
        &api,
        json!({"name": "um", "defaultService": https,
               "hostRules": [{"hosts": ["h2.example.com"], "pathMatcher": "h2"}],
               "pathMatchers": [{"name": "h2", "defaultService": h2}]}),
    )
    .await;
    let proxy = http_proxy(&api, "tp", &map).await;
    let ip = forwarding_rule(&api, "fr", &proxy, 80, None).await;
    let addr = serving(&api, &ip, 80);
    wait_health(&api, "https", &g1, &[("n1", "HEALTHY")]).await;
    wait_health(&api, "h2", &g2, &[("n2", "HEALTHY")]).await;

    let r = get_ok(addr, None, "tls.example.com", "/a").await;
    assert_eq!(r.backend(), "https", "{}", r.body);
    assert_eq!(r.json()["version"], "HTTP/1.1");
    let r = get_ok(addr, None, "h2.example.com", "/b?c=d").await;
    assert_eq!(r.backend(), "h2", "{}", r.body);
    let echo = r.json();
    assert_eq!(echo["version"], "HTTP/2.0");
    assert_eq!(echo["host"], "h2.example.com");
    assert_eq!(echo["path"], "/b?c=d");
}

#[tokio::test]
async fn a_backend_slower_than_timeout_sec_is_a_502() {
    let api = start().await;
    let nodes = LoopbackBlock::claim().expect("a block for the nodes");
    let _backend = Backend::start(SocketAddr::from((nodes.ip(1), 8080)), "slow").await;
    let members = [node(&api, "n", nodes.ip(1))];
    let hc = health_check(&api, "hc", json!({})).await;
    let g = group(&api, "g", &members, 8080).await;
    let bs = backend_service(&api, "bs", &[&g], &hc, "HTTP").await;
    let map = url_map(&api, json!({"name": "um", "defaultService": bs})).await;
    let proxy = http_proxy(&api, "tp", &map).await;
    let ip = forwarding_rule(&api, "fr", &proxy, 80, None).await;
    let addr = serving(&api, &ip, 80);
    wait_health(&api, "bs", &g, &[("n", "HEALTHY")]).await;
    assert_eq!(get_ok(addr, None, "x", "/fast").await.backend(), "slow");

    // The service's timeoutSec, changed to 1 s, applies to the next request.
    let fingerprint = api.get("global/backendServices/bs").await.ok()["fingerprint"].clone();
    api.done(
        Method::PATCH,
        "global/backendServices/bs",
        Some(json!({"timeoutSec": 1, "fingerprint": fingerprint})),
    )
    .await;
    let r = get(addr, "x", "/slow").await;
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(r.body.contains("Please try again in 30 seconds."), "{}", r.body);
}

/// A request naming no host (HTTP/1.0 needs none) or no valid one is for the forwarding rule's
/// IP: a redirect keeping the host names that IP, and the backend gets it as `Host`.
#[tokio::test]
async fn a_request_without_a_host_is_for_the_rules_ip() {
    let api = start().await;
    let nodes = LoopbackBlock::claim().expect("a block for the nodes");
    let _web = Backend::start(SocketAddr::from((nodes.ip(1), 8080)), "web").await;
    let hc = health_check(&api, "hc", json!({})).await;
    let g = group(&api, "g", &[node(&api, "web", nodes.ip(1))], 8080).await;
    let web = backend_service(&api, "web", &[&g], &hc, "HTTP").await;
    let map = url_map(
        &api,
        json!({"name": "um", "defaultService": web,
               "hostRules": [{"hosts": ["*"], "pathMatcher": "all"}],
               "pathMatchers": [{"name": "all", "defaultService": web,
                                 "pathRules": [{"paths": ["/moved/*"],
                                                "urlRedirect": {"pathRedirect": "/new"}}]}]}),
    )
    .await;
    let proxy = http_proxy(&api, "tp", &map).await;
    let ip = forwarding_rule(&api, "fr", &proxy, 80, None).await;
    let addr = serving(&api, &ip, 80);
    let port = match addr.port() {
        80 => String::new(),
        p => format!(":{p}"),
    };
    let location = format!("http://{ip}{port}/new");
    for request in [
        "GET /moved/x HTTP/1.0\r\n\r\n",
        "GET /moved/x HTTP/1.1\r\nHost: not a host\r\nConnection: close\r\n\r\n",
    ] {
        let r = raw(addr, request).await;
        assert_eq!(r.status, 301, "{request:?}: {}", r.body);
        assert_eq!(
            r.headers.get("location").and_then(|v| v.to_str().ok()),
            Some(location.as_str()),
            "{request:?}"
        );
    }

    wait_health(&api, "web", &g, &[("web", "HEALTHY")]).await;
    let echo = eventually("200 for HTTP/1.0 without Host", || async {
        let r = raw(addr, "GET /echo HTTP/1.0\r\n\r\n").await;
        (r.status == 200).then(|| r.json())
    })
    .await;
    assert_eq!(echo["host"], ip);
    assert_eq!(echo["version"], "HTTP/1.1");
}
