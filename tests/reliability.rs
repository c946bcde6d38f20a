//! The reliability suite's short profile (run by `cargo test`), and its long profile:
//!
//! ```sh
//! cargo test --release --test reliability -- --ignored --nocapture
//! ```
//!
//! (`RELIABILITY_INGRESSES`, default 200, and `RELIABILITY_KILLS`, default 20, set its size;
//! `RELIABILITY_SEED` its seed.) Each scenario asserts on the figures it measured: every Ingress
//! converges, nothing of ours is left, no Ingress ever had two resources of one kind, and the
//! firewall rule stood whenever a forwarding rule of ours did.

mod scenarios;

use scenarios::*;

fn check(f: &Figures) {
    assert_eq!(f.leaks, 0, "{f:?}");
    assert_eq!(f.firewall_gaps, 0, "{f:?}");
    assert!(f.max_per_kind <= 1, "{f:?}");
}

#[tokio::test]
async fn fault_soak_converges_and_leaves_nothing() {
    let f = fault_soak(50, 11).await;
    check(&f);
    assert!(f.max_certificates <= 1, "{f:?}");
    // The faults were really there: at least 10 % of the requests.
    assert!(f.faults * 10 >= f.requests, "{f:?}");
    println!("{}", Figures::table(&[f]));
}

#[tokio::test]
async fn crashes_at_random_moments_converge_without_leaks_or_duplicates() {
    let f = crash(12, 10, 12).await;
    check(&f);
    // While a certificate rotates, the old and the new one exist; never more.
    assert!(f.max_certificates <= 2, "{f:?}");
    assert_eq!(f.kills, 10);
    println!("{}", Figures::table(&[f]));
}

#[tokio::test]
async fn a_leader_that_lost_the_lease_writes_nothing_more() {
    let f = leadership(8, 13).await;
    check(&f);
    println!("{}", Figures::table(&[f]));
}

#[tokio::test]
async fn foreign_resources_under_our_names_are_never_touched() {
    let f = foreign(3, 14).await;
    check(&f);
    println!("{}", Figures::table(&[f]));
}

#[tokio::test]
#[ignore = "the long profile: cargo test --release --test reliability -- --ignored --nocapture"]
async fn long_profile() {
    let var = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let n = var("RELIABILITY_INGRESSES", 200) as usize;
    let kills = var("RELIABILITY_KILLS", 20) as usize;
    let seed = var("RELIABILITY_SEED", 1);
    let mut all = Vec::new();
    let f = fault_soak(n, seed).await;
    check(&f);
    all.push(f);
    let f = crash(n, kills, seed + 1).await;
    check(&f);
    all.push(f);
    let f = leadership(n / 4, seed + 2).await;
    check(&f);
    all.push(f);
    let f = foreign(n / 20, seed + 3).await;
    check(&f);
    all.push(f);
    println!("{}", Figures::table(&all));
}
