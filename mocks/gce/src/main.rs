//! `fake-gce`: the fake Compute API as a standalone server. See the crate documentation for the
//! flags, routes and knobs.
#![forbid(unsafe_code)]

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use fake_gce::{Config, DataPlane, FakeGce, FaultRule, InstanceSeed, Latency, RateLimit};

/// A fake of the GCE Compute REST API (with the metadata server and a `/_fake/` admin API).
#[derive(Debug, Parser)]
#[command(name = "fake-gce", version)]
struct Args {
    /// Address to listen on (port 0 picks a free port; the address is printed on stdout).
    #[arg(long, env = "FAKE_GCE_LISTEN", default_value = "127.0.0.1:8787")]
    listen: SocketAddr,
    /// Project id served by the metadata server; default project of seeded instances.
    #[arg(long, env = "FAKE_GCE_PROJECT_ID", default_value = "fake-project")]
    project_id: String,
    /// Require `Authorization: Bearer TOKEN` on every Compute request.
    #[arg(long, env = "FAKE_GCE_REQUIRE_TOKEN")]
    require_token: Option<String>,
    /// Latency of every operation, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Latency of one operation type, e.g. `urlMaps.insert=100`, `*.delete=50` (repeatable).
    #[arg(long = "latency", value_name = "KEY=MS", value_parser = key_value::<u64>)]
    latencies: Vec<(String, u64)>,
    /// Longest time `operations/wait` blocks, in seconds.
    #[arg(long, default_value_t = 120)]
    wait_cap_secs: u64,
    /// A zone that exists (repeatable; replaces the default list).
    #[arg(long = "zone", value_name = "ZONE")]
    zones: Vec<String>,
    /// A VPC network (repeatable; replaces the default `default`): a name every project starts
    /// with, or `projects/P/global/networks/N` for one project's network (a Shared VPC host).
    #[arg(long = "network", value_name = "NAME|PATH")]
    networks: Vec<String>,
    /// An instance to create, `ZONE/NAME` or `ZONE/NAME=IP` (repeatable).
    #[arg(long = "instance", value_name = "ZONE/NAME[=IP]", value_parser = instance)]
    instances: Vec<InstanceSeed>,
    /// A resource quota, e.g. `backendServices=5` (repeatable).
    #[arg(long = "quota", value_name = "KIND=N", value_parser = key_value::<u64>)]
    quotas: Vec<(String, u64)>,
    /// Token-bucket rate limit over Compute requests, `QPS` or `QPS:BURST`.
    #[arg(long, value_name = "QPS[:BURST]", value_parser = rate_limit)]
    rate_limit: Option<RateLimit>,
    /// A fault rule as JSON, e.g. `{"method":"POST","path":"urlMaps$","times":1,
    /// "action":{"type":"error","status":503}}` (repeatable).
    #[arg(long = "fault", value_name = "JSON", value_parser = fault)]
    faults: Vec<FaultRule>,
    /// Seed of ids, fingerprints and fault probabilities.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Host rules per URL map.
    #[arg(long, default_value_t = 1000)]
    url_map_max_host_rules: usize,
    /// Path matchers per URL map.
    #[arg(long, default_value_t = 1000)]
    url_map_max_path_matchers: usize,
    /// Path rules per path matcher.
    #[arg(long, default_value_t = 1000)]
    url_map_max_path_rules: usize,
    /// Path patterns across the path rules of one path matcher.
    #[arg(long, default_value_t = 1000)]
    url_map_max_path_patterns: usize,
    /// Distinct backend services per URL map.
    #[arg(long, default_value_t = 2500)]
    url_map_max_services: usize,
    /// Serialized size of a URL map, in bytes.
    #[arg(long, default_value_t = 65536)]
    url_map_max_size_bytes: usize,
    /// SSL certificates per target HTTPS proxy.
    #[arg(long, default_value_t = 15)]
    max_ssl_certificates: usize,
    /// Entries the journal (`GET /_fake/journal`) keeps; the oldest are dropped first.
    #[arg(long, value_name = "N", default_value_t = 200_000)]
    journal_capacity: usize,
    /// Serve the load balancers clients configure, on loopback (see "Data plane" in the docs).
    #[arg(long)]
    data_plane: bool,
    /// The data plane's block of external addresses, `127.A.B.0` (default: claim a free one).
    /// Claimed unless someone already holds it (the caller, presumably: then used as given).
    #[arg(long, value_name = "127.A.B.0", requires = "data_plane")]
    data_plane_block: Option<Ipv4Addr>,
    /// Serve a port below 1024 that cannot be bound (not root) on `port + N`.
    #[arg(long, value_name = "N", default_value_t = 10_000, requires = "data_plane")]
    data_plane_port_offset: u16,
    /// Probe every backend this often, whatever the health checks' `checkIntervalSec` (their
    /// `timeoutSec` still applies).
    #[arg(long, value_name = "MS", requires = "data_plane")]
    probe_interval_ms: Option<u64>,
}

fn key_value<T: std::str::FromStr>(s: &str) -> Result<(String, T), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))?;
    let v = v.parse().map_err(|_| format!("invalid value in {s:?}"))?;
    Ok((k.to_string(), v))
}

fn instance(s: &str) -> Result<InstanceSeed, String> {
    let (zone_name, ip) = match s.split_once('=') {
        Some((a, ip)) => (a, Some(ip.to_string())),
        None => (s, None),
    };
    let (zone, name) = zone_name
        .split_once('/')
        .ok_or_else(|| format!("expected ZONE/NAME[=IP], got {s:?}"))?;
    Ok(InstanceSeed {
        ip,
        ..InstanceSeed::new(zone, name)
    })
}

fn rate_limit(s: &str) -> Result<RateLimit, String> {
    let (qps, burst) = match s.split_once(':') {
        Some((q, b)) => (q, Some(b)),
        None => (s, None),
    };
    let qps: f64 = qps.parse().map_err(|_| format!("invalid QPS in {s:?}"))?;
    if !qps.is_finite() || qps < 0.0 {
        return Err(format!("invalid QPS in {s:?}"));
    }
    let burst = match burst {
        Some(b) => b.parse().map_err(|_| format!("invalid burst in {s:?}"))?,
        None => qps.ceil().max(1.0) as u32,
    };
    Ok(RateLimit::new(qps, burst))
}

fn fault(s: &str) -> Result<FaultRule, String> {
    serde_json::from_str(s).map_err(|e| format!("invalid fault rule: {e}"))
}

impl Args {
    fn into_config(self) -> Config {
        let mut config = Config {
            listen: self.listen,
            project_id: self.project_id,
            require_token: self.require_token,
            latency: Latency {
                default_ms: self.latency_ms,
                per_operation: self.latencies.into_iter().collect(),
            },
            operation_wait_cap: Duration::from_secs(self.wait_cap_secs),
            instances: self.instances,
            quotas: self.quotas.into_iter().collect(),
            rate_limit: self.rate_limit,
            faults: self.faults,
            seed: self.seed,
            max_ssl_certificates_per_proxy: self.max_ssl_certificates,
            journal_capacity: self.journal_capacity,
            data_plane: self.data_plane.then(|| DataPlane {
                block: self.data_plane_block,
                privileged_port_offset: self.data_plane_port_offset,
                probe_interval: self.probe_interval_ms.map(Duration::from_millis),
            }),
            ..Config::default()
        };
        if !self.zones.is_empty() {
            config.zones = self.zones;
        }
        if !self.networks.is_empty() {
            config.networks = self.networks;
        }
        config.url_map_limits.max_host_rules = self.url_map_max_host_rules;
        config.url_map_limits.max_path_matchers = self.url_map_max_path_matchers;
        config.url_map_limits.max_path_rules_per_matcher = self.url_map_max_path_rules;
        config.url_map_limits.max_path_patterns_per_matcher = self.url_map_max_path_patterns;
        config.url_map_limits.max_services = self.url_map_max_services;
        config.url_map_limits.max_size_bytes = self.url_map_max_size_bytes;
        config
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let config = Args::parse().into_config();
    let gce = match FakeGce::start(config).await {
        Ok(g) => g,
        Err(e) => {
            eprintln!("fake-gce: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Tests that start the binary with port 0 read the address from this line.
    println!("fake-gce listening on {}", gce.endpoint());
    if let Some(block) = gce.data_plane_block() {
        println!("fake-gce data plane on {block}/24");
    }
    let _ = std::io::stdout().flush();
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("fake-gce: cannot wait for Ctrl-C: {e}");
    }
    gce.shutdown().await;
    ExitCode::SUCCESS
}
