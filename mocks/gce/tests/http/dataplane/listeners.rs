//! Listeners: opened and closed with forwarding rules, only on addresses the data plane may use.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use fake_gce::{Latency, LoopbackBlock};
use reqwest::Method;
use serde_json::json;

use super::support::*;
use crate::common::{Api, install_crypto};

#[tokio::test]
async fn deleting_the_forwarding_rule_closes_its_listener() {
    let api = start().await;
    let map = url_map(
        &api,
        json!({"name": "um", "defaultUrlRedirect": {"hostRedirect": "elsewhere.example.com"}}),
    )
    .await;
    let proxy = http_proxy(&api, "tp", &map).await;
    let ip = api.create("global/addresses", json!({"name": "ip"})).await["address"]
        .as_str()
        .expect("address")
        .to_string();
    forwarding_rule(&api, "fr", &proxy, 8080, Some(&ip)).await;
    let addr = serving(&api, &ip, 8080);
    assert_eq!(get(addr, "x", "/").await.status, 301);

    api.done(Method::DELETE, "global/forwardingRules/fr", None).await;
    assert_eq!(api.gce.serving_address(&ip, 8080), None);
    eventually("the listener closed", || async {
        connect(addr, None).await.is_err().then_some(())
    })
    .await;
    let view = api.get("/_fake/dataplane").await.ok();
    assert_eq!(view["listeners"], json!([]), "{view:#}");

    // A new rule on the same address and port serves again.
    forwarding_rule(&api, "again", &proxy, 8080, Some(&ip)).await;
    assert_eq!(get(serving(&api, &ip, 8080), "x", "/").await.status, 301);
}

#[tokio::test]
async fn non_loopback_addresses_are_never_served() {
    let api = start().await;
    let map = url_map(
        &api,
        json!({"name": "um", "defaultUrlRedirect": {"hostRedirect": "elsewhere.example.com"}}),
    )
    .await;
    let proxy = http_proxy(&api, "tp", &map).await;
    api.create(
        "global/addresses",
        json!({"name": "public", "address": "34.1.2.3"}),
    )
    .await;
    let ip = forwarding_rule(&api, "fr", &proxy, 80, Some("34.1.2.3")).await;
    assert_eq!(ip, "34.1.2.3");
    assert_eq!(api.gce.serving_address(&ip, 80), None);
    let view = api.get("/_fake/dataplane").await.ok();
    assert_eq!(view["listeners"][0]["listening"], false, "{view:#}");
    assert!(
        view["listeners"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("not a loopback address")),
        "{view:#}"
    );
}

#[tokio::test]
async fn with_the_data_plane_off_nothing_listens() {
    let api = Api::start().await;
    assert_eq!(api.gce.data_plane_block(), None);
    let map = url_map(
        &api,
        json!({"name": "um", "defaultUrlRedirect": {"hostRedirect": "elsewhere.example.com"}}),
    )
    .await;
    let proxy = http_proxy(&api, "tp", &map).await;
    let ip = forwarding_rule(&api, "fr", &proxy, 80, None).await;
    assert!(ip.starts_with("34.120."), "{ip}");
    assert_eq!(api.gce.serving_address(&ip, 80), None);
    let view = api.get("/_fake/dataplane").await.ok();
    assert_eq!(view, json!({"block": null, "listeners": [], "health": []}));
}

#[tokio::test]
async fn the_binary_runs_the_data_plane() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    /// Kills the child when the test ends, pass or fail.
    struct Running(std::process::Child);
    impl Drop for Running {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    install_crypto();
    let mut child = Running(
        Command::new(env!("CARGO_BIN_EXE_fake-gce"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--data-plane",
                "--probe-interval-ms",
                "100",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("binary starts"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let lines = tokio::task::spawn_blocking(move || {
        let mut reader = BufReader::new(stdout);
        let mut lines = [String::new(), String::new()];
        for line in &mut lines {
            reader.read_line(line)?;
        }
        Ok::<_, std::io::Error>(lines)
    })
    .await
    .expect("join");
    drop(child);
    let [first, second] = lines.expect("two lines");
    assert!(
        first.starts_with("fake-gce listening on http://127.0.0.1:"),
        "{first}"
    );
    let block = second
        .trim()
        .strip_prefix("fake-gce data plane on ")
        .and_then(|b| b.strip_suffix("/24"))
        .and_then(|b| b.parse::<Ipv4Addr>().ok())
        .unwrap_or_else(|| panic!("{second}"));
    assert_eq!((block.octets()[0], block.octets()[3]), (127, 0));
}

/// An operation still pending when the fake is dropped applies later (its timer holds the
/// state), but opens nothing: the listener of a forwarding rule inserted just before never
/// listens.
#[tokio::test]
async fn a_rule_applied_after_the_fake_is_dropped_opens_nothing() {
    let api = start().await;
    let block = api.gce.data_plane_block().expect("the data plane runs");
    let map = url_map(
        &api,
        json!({"name": "um", "defaultUrlRedirect": {"hostRedirect": "elsewhere.example.com"}}),
    )
    .await;
    let proxy = http_proxy(&api, "tp", &map).await;
    let ip = api.create("global/addresses", json!({"name": "ip"})).await["address"]
        .as_str()
        .expect("address")
        .to_string();
    api.gce.set_latency(
        Latency::default()
            .with("globalForwardingRules.insert", Duration::from_millis(200))
            // Keeps the state (and the block's claim) alive well past the insert.
            .with("healthChecks.insert", Duration::from_secs(2)),
    );
    let insert = api
        .post(
            "global/forwardingRules",
            json!({"name": "fr", "target": proxy, "portRange": "8080", "IPAddress": ip}),
        )
        .await
        .ok();
    assert_eq!(insert["status"], "RUNNING", "{insert:#}");
    let later = api
        .post("global/healthChecks", json!({"name": "later", "type": "HTTP"}))
        .await
        .ok();
    assert_eq!(later["status"], "RUNNING", "{later:#}");
    let addr = SocketAddr::from((ip.parse::<Ipv4Addr>().expect("IPv4"), 8080));
    drop(api);

    // The state goes (and with it the block's claim) once the last pending operation applied;
    // the insert applied before that, and nothing may listen on its address meanwhile.
    let _claim = eventually("the fake's state released", || async {
        assert!(
            connect(addr, None).await.is_err(),
            "a listener opened after the fake was dropped"
        );
        LoopbackBlock::claim_at(block).ok()
    })
    .await;
    assert!(connect(addr, None).await.is_err());
}

/// Only the fake's own block is bound: an address a client reserved in `127.0.0.1` or in
/// another process's block is refused, with the reason in the admin view.
#[tokio::test]
async fn addresses_outside_the_block_are_never_bound() {
    let api = start().await;
    let elsewhere = LoopbackBlock::claim().expect("another process's block, as it were");
    let map = url_map(
        &api,
        json!({"name": "um", "defaultUrlRedirect": {"hostRedirect": "elsewhere.example.com"}}),
    )
    .await;
    let proxy = http_proxy(&api, "tp", &map).await;
    let foreign = elsewhere.ip(1).to_string();
    for (name, ip) in [("local", "127.0.0.1"), ("foreign", foreign.as_str())] {
        api.create("global/addresses", json!({"name": name, "address": ip}))
            .await;
        assert_eq!(forwarding_rule(&api, name, &proxy, 8080, Some(ip)).await, ip);
        assert_eq!(api.gce.serving_address(ip, 8080), None, "{ip} bound");
    }
    let view = api.get("/_fake/dataplane").await.ok();
    let listeners = view["listeners"].as_array().cloned().unwrap_or_default();
    assert_eq!(listeners.len(), 2, "{view:#}");
    for l in &listeners {
        assert_eq!(l["listening"], false, "{view:#}");
        assert!(
            l["error"]
                .as_str()
                .is_some_and(|e| e.contains("outside the data plane's block")),
            "{view:#}"
        );
    }
    // The other block's address is free for its holder.
    drop(std::net::TcpListener::bind((elsewhere.ip(1), 8080)).expect("not taken by the fake"));
}

/// A listener whose address and port someone else held is tried again at the next
/// forwarding-rule change, and serves once the holder let go.
#[tokio::test]
async fn an_address_in_use_is_tried_again() {
    let api = start().await;
    let map = url_map(
        &api,
        json!({"name": "um", "defaultUrlRedirect": {"hostRedirect": "elsewhere.example.com"}}),
    )
    .await;
    let proxy = http_proxy(&api, "tp", &map).await;
    let ip = api.create("global/addresses", json!({"name": "ip"})).await["address"]
        .as_str()
        .expect("address")
        .to_string();
    let holder =
        std::net::TcpListener::bind((ip.parse::<Ipv4Addr>().expect("IPv4"), 8080)).expect("the port is free");
    forwarding_rule(&api, "fr", &proxy, 8080, Some(&ip)).await;
    assert_eq!(api.gce.serving_address(&ip, 8080), None);
    let view = api.get("/_fake/dataplane").await.ok();
    assert_eq!(view["listeners"][0]["listening"], false, "{view:#}");

    drop(holder);
    forwarding_rule(&api, "other", &proxy, 8081, Some(&ip)).await;
    assert_eq!(get(serving(&api, &ip, 8080), "x", "/").await.status, 301);
}
