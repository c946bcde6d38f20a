//! Time to an IP against the fake Compute API with a fixed latency per operation, as a ratio
//! to the lower bound: the depth of the dependency chain × the latency.
//!
//! Run: `cargo bench -p cloud --bench time_to_ip` (prints figures; asserts nothing).
//!
//! The chain of one load balancer is health check → backend service → URL map → target proxy
//! → forwarding rule: 5 operations, whatever the number of backends (they are created side by
//! side) and whether HTTPS is on (certificates and the address are created beside the first
//! step). A cluster's first load balancer also waits for its instance groups: insert →
//! addInstances, 2 more. Endpoint backends (NEGs) keep the depth at 5: each zone's NEG is
//! inserted beside the health check, and no instance group is needed at all.

#[path = "../tests/common/mod.rs"]
mod common;

use cloud::Provider;
use common::*;
use std::time::{Duration, Instant};

const LATENCY: Duration = Duration::from_millis(100);
const CHAIN_DEPTH: u32 = 5;
const INFRA_DEPTH: u32 = 2;

#[tokio::main]
async fn main() {
    println!("latency per operation: {LATENCY:?}; lower bound: chain depth x latency");
    println!("{:<44} {:>10} {:>10} {:>7}", "case", "time", "bound", "ratio");
    for backends in [1u16, 5, 20] {
        for https in [false, true] {
            let env = Env::start(&(0..backends).map(|i| 30080 + i).collect::<Vec<_>>()).await;
            env.gce.set_latency(fake_gce::Latency::uniform(LATENCY));
            let mut model = lb(
                "default",
                "bench",
                (0..backends)
                    .map(|i| backend("default", &format!("svc{i}"), 80, 30080 + i))
                    .collect(),
            );
            if https {
                model = with_https(model, vec![certificate("default/tls", "bench.example.com")]);
            }
            let started = Instant::now();
            let status = env.provider.ensure(&model).await.expect("ensure");
            let elapsed = started.elapsed();
            assert!(!status.address.is_empty());
            let bound = LATENCY * CHAIN_DEPTH;
            let case = format!(
                "{backends} backend(s), {}",
                if https { "HTTP+HTTPS" } else { "HTTP" }
            );
            report(&case, elapsed, bound);
        }
    }

    // Endpoint backends: NEGs in both zones beside the health checks; a fresh cluster with only
    // endpoint backends needs no instance group, so the chain is all there is.
    for backends in [1u16, 5] {
        let env = Env::start(&[]).await;
        env.gce.set_latency(fake_gce::Latency::uniform(LATENCY));
        let model = lb(
            "default",
            "negs",
            (0..backends)
                .map(|i| cloud::model::Backend {
                    target: cloud::model::BackendTarget::Endpoints,
                    ..backend("default", &format!("svc{i}"), 80, 30080 + i)
                })
                .collect(),
        );
        let started = Instant::now();
        env.provider.ensure(&model).await.expect("ensure");
        report(
            &format!("{backends} endpoint backend(s) (NEGs), HTTP"),
            started.elapsed(),
            LATENCY * CHAIN_DEPTH,
        );
    }

    // A fresh cluster: the instance groups and firewall first, then the chain.
    let env = Env::start_with(fake_config(), &[], |_| {}).await;
    env.gce.set_latency(fake_gce::Latency::uniform(LATENCY));
    let model = with_https(
        lb(
            "default",
            "cold",
            (0..5)
                .map(|i| backend("default", &format!("svc{i}"), 80, 30080 + i))
                .collect(),
        ),
        vec![certificate("default/tls", "cold.example.com")],
    );
    let infra = cloud::model::ClusterInfra {
        nodes: nodes(),
        node_ports: model.node_ports().into_iter().collect(),
        endpoint_ports: Default::default(),
    };
    let fresh = new_provider(&env.gce, |_| {});
    let started = Instant::now();
    fresh.ensure_infrastructure(&infra).await.expect("infra");
    fresh.ensure(&model).await.expect("ensure");
    report(
        "fresh cluster, 5 backends, HTTP+HTTPS",
        started.elapsed(),
        LATENCY * (CHAIN_DEPTH + INFRA_DEPTH),
    );

    // Zero writes on an unchanged model, and what it reads.
    env.gce.reset_stats();
    fresh.ensure(&model).await.expect("ensure");
    let s = env.gce.stats();
    println!(
        "second ensure of an unchanged model: {} mutations, {} lists, {} reads, {} operation polls",
        s.total.mutations, s.total.lists, s.total.reads, s.total.operation_polls
    );
}

fn report(case: &str, elapsed: Duration, bound: Duration) {
    println!(
        "{case:<44} {:>8.0}ms {:>8.0}ms {:>7.3}",
        elapsed.as_secs_f64() * 1000.0,
        bound.as_secs_f64() * 1000.0,
        elapsed.as_secs_f64() / bound.as_secs_f64()
    );
}
