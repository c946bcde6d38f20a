//! Throughput figures for the fake at controller scale: creating, listing and watching N
//! Ingresses and their Services through kube-rs over HTTP.
//!
//! `cargo run -p fake-kube --release --example bench [-- N [WATCHERS]]` (defaults 10000 and 8).
//! It prints figures; it asserts nothing about time, because machines differ.

use std::time::{Duration, Instant};

use fake_kube::{Config, FakeKube};
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::watcher;
use serde_json::json;

const CONCURRENCY: usize = 64;

fn service(i: usize) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": format!("svc-{i:05}"), "labels": {"app": format!("app-{i}")}},
        "spec": {"type": "NodePort", "selector": {"app": format!("app-{i}")},
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
    }))
    .expect("valid service")
}

fn ingress(i: usize) -> Ingress {
    serde_json::from_value(json!({
        "metadata": {"name": format!("ing-{i:05}"), "annotations": {"example.com/owner": "bench"}},
        "spec": {"ingressClassName": "gce",
                 "tls": [{"hosts": [format!("host-{i}.example.com")], "secretName": "tls"}],
                 "rules": [{"host": format!("host-{i}.example.com"), "http": {"paths": [
                    {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": format!("svc-{i:05}"), "port": {"number": 80}}}},
                    {"path": "/api", "pathType": "Prefix", "backend": {"service": {"name": format!("svc-{i:05}"), "port": {"name": "http"}}}}
                 ]}}]}
    }))
    .expect("valid ingress")
}

fn rate(what: &str, n: usize, took: Duration) {
    println!(
        "{what:<48} {:>8.3} s  {:>10.0} /s",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(10_000);
    let watchers: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(8);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kube = FakeKube::start(Config {
        record_requests: false,
        node_port_range: 20000..=60000,
        watch_history: 4 * n + 1000,
        ..Config::default()
    })
    .await?;
    let client = kube::Client::try_from(kube::Config::new(kube.url().parse()?))?;
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), "default");
    println!(
        "fake-kube bench: {n} Services + {n} Ingresses, {watchers} watchers, {CONCURRENCY} concurrent writers"
    );

    let t = Instant::now();
    stream::iter(0..n)
        .map(|i| {
            let api = services.clone();
            async move { api.create(&PostParams::default(), &service(i)).await }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    rate("create Services (node ports allocated)", n, t.elapsed());

    let t = Instant::now();
    stream::iter(0..n)
        .map(|i| {
            let api = ingresses.clone();
            async move { api.create(&PostParams::default(), &ingress(i)).await }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    rate("create Ingresses", n, t.elapsed());

    let t = Instant::now();
    let mut lp = ListParams::default().limit(500);
    let mut count = 0;
    loop {
        let page = ingresses.list(&lp).await?;
        count += page.items.len();
        match page.metadata.continue_ {
            Some(token) => lp = lp.continue_token(&token),
            None => break,
        }
    }
    assert_eq!(count, n);
    rate("list Ingresses, pages of 500", n, t.elapsed());

    let t = Instant::now();
    let all = ingresses.list(&ListParams::default()).await?;
    assert_eq!(all.items.len(), n);
    rate("list Ingresses, one page", n, t.elapsed());

    let t = Instant::now();
    let all = services.list(&ListParams::default().limit(500)).await?;
    let mut count = all.items.len();
    let mut token = all.metadata.continue_;
    while let Some(c) = token {
        let page = services
            .list(&ListParams::default().limit(500).continue_token(&c))
            .await?;
        count += page.items.len();
        token = page.metadata.continue_;
    }
    assert_eq!(count, n + 1); // and default/kubernetes
    rate("list Services, pages of 500", count, t.elapsed());

    let t = Instant::now();
    let mut initial = 0;
    let mut events = watcher(ingresses.clone(), watcher::Config::default()).boxed();
    while let Some(event) = events.try_next().await? {
        match event {
            watcher::Event::InitApply(_) => initial += 1,
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    rate(
        "kube-rs watcher initial sync (list + watch)",
        initial,
        t.elapsed(),
    );

    // Fan-out: several watches see every status write.
    let rv = ingresses
        .list(&ListParams::default().limit(1))
        .await?
        .metadata
        .resource_version
        .unwrap_or_default();
    let mut done = Vec::new();
    for _ in 0..watchers {
        let mut stream = ingresses
            .watch(&WatchParams::default().timeout(600), &rv)
            .await?
            .boxed();
        done.push(tokio::spawn(async move {
            let mut seen = 0usize;
            while seen < n {
                match stream.try_next().await {
                    Ok(Some(WatchEvent::Modified(_))) => seen += 1,
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
            (seen, Instant::now())
        }));
    }
    let t = Instant::now();
    stream::iter(0..n)
        .map(|i| {
            let api = ingresses.clone();
            async move {
                let status = json!({"status": {"loadBalancer": {"ingress": [{"ip": format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256)}]}}});
                api.patch_status(&format!("ing-{i:05}"), &PatchParams::default(), &Patch::Merge(status)).await
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    let writes = t.elapsed();
    rate("patch Ingress status", n, writes);
    let mut last = t;
    for handle in done {
        let (seen, at) = handle.await?;
        assert_eq!(seen, n, "a watcher missed events");
        last = last.max(at);
    }
    rate(
        &format!("... delivered to {watchers} watchers (events, until the last)"),
        n * watchers,
        last - t,
    );
    if let Some(rss) = resident_mib() {
        println!("resident memory of this process (fake + client)    {rss:>8.0} MiB");
    }
    kube.shutdown().await;
    Ok(())
}

/// VmRSS from /proc (Linux only).
fn resident_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}
