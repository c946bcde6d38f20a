//! Throughput and latency benchmark of the fake, over loopback HTTP.
//!
//! `cargo run --release -p fake-gce --example bench [-- SECONDS CLIENTS]`
//!
//! Prints requests/s for a read-heavy mix (get, list, operation poll, insert+delete), then checks
//! that operations with a latency L run in parallel: N operations started at once should all be
//! DONE after about L, not N × L.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fake_gce::{Config, FakeGce, Latency};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(3);
    let clients: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(16);

    let gce = FakeGce::start(Config::default()).await?;
    let base = format!("{}projects/bench/", gce.base_url());
    let client = reqwest::Client::new();
    for i in 0..100 {
        let r = client
            .post(format!("{base}global/healthChecks"))
            .json(&json!({"name": format!("hc-{i}"), "type": "TCP"}))
            .send()
            .await?;
        r.error_for_status()?;
    }

    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let (client, base, done) = (client.clone(), base.clone(), Arc::clone(&done));
        tasks.spawn(async move {
            let mut i = 0u64;
            while Instant::now() < deadline {
                i += 1;
                let ok = match i % 10 {
                    0 => {
                        // insert, poll its operation, delete
                        let name = format!("c{c}-{i}");
                        let op: Option<Value> = async {
                            client
                                .post(format!("{base}global/firewalls"))
                                .json(&json!({"name": name, "allowed": [{"IPProtocol": "tcp"}]}))
                                .send()
                                .await
                                .ok()?
                                .json()
                                .await
                                .ok()
                        }
                        .await;
                        let link = op.as_ref().and_then(|o| o["name"].as_str()).unwrap_or_default();
                        let polled = client
                            .get(format!("{base}global/operations/{link}"))
                            .send()
                            .await
                            .is_ok();
                        let deleted = client
                            .delete(format!("{base}global/firewalls/{name}"))
                            .send()
                            .await
                            .is_ok();
                        done.fetch_add(2, Ordering::Relaxed);
                        op.is_some() && polled && deleted
                    }
                    1 => client
                        .get(format!("{base}global/healthChecks?maxResults=50"))
                        .send()
                        .await
                        .is_ok(),
                    _ => client
                        .get(format!("{base}global/healthChecks/hc-{}", i % 100))
                        .send()
                        .await
                        .is_ok(),
                };
                if ok {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    let started = Instant::now();
    tasks.join_all().await;
    let n = done.load(Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64();
    println!(
        "throughput: {n} requests in {secs:.2} s with {clients} clients = {:.0} requests/s",
        n as f64 / secs
    );

    // Parallel operations: N inserts with latency L each.
    let latency = Duration::from_millis(100);
    gce.set_latency(Latency::uniform(latency));
    for n in [1usize, 10, 100] {
        let started = Instant::now();
        let mut ops = tokio::task::JoinSet::new();
        for i in 0..n {
            let (client, base) = (client.clone(), base.clone());
            ops.spawn(async move {
                let op: Value = client
                    .post(format!("{base}global/urlMaps"))
                    .json(&json!({"name": format!("um-{n}-{i}"), "defaultUrlRedirect": {"httpsRedirect": true}}))
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                let name = op["name"].as_str()?.to_string();
                let done: Value = client
                    .post(format!("{base}global/operations/{name}/wait"))
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                (done["status"] == "DONE").then_some(())
            });
        }
        let finished = ops.join_all().await.into_iter().flatten().count();
        println!(
            "parallel operations: {finished}/{n} DONE in {:.0} ms with {} ms latency each",
            started.elapsed().as_secs_f64() * 1000.0,
            latency.as_millis()
        );
    }
    let stats = gce.stats();
    println!(
        "counted: {} calls ({} reads, {} lists, {} mutations, {} polls)",
        stats.total.total,
        stats.total.reads,
        stats.total.lists,
        stats.total.mutations,
        stats.total.operation_polls
    );
    gce.shutdown().await;
    Ok(())
}
