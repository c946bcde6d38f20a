//! `fake-kube`: run the fake apiserver until Ctrl-C, writing a kubeconfig for kubectl.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// A fake kube-apiserver for tests and trying things out with kubectl (plain HTTP, no auth).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, env = "FAKE_KUBE_LISTEN", default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Write a kubeconfig pointing at the server to this file.
    #[arg(long, env = "FAKE_KUBE_KUBECONFIG_OUT")]
    kubeconfig_out: Option<PathBuf>,
    /// Objects to create at start (multi-document YAML files, applied in order).
    #[arg(long = "apply", value_name = "FILE")]
    apply: Vec<PathBuf>,
    /// Number of changes kept for watches to resume from.
    #[arg(long, default_value_t = 20_000)]
    watch_history: usize,
    /// Seconds between watch bookmarks.
    #[arg(long, default_value_t = 10)]
    bookmark_interval: u64,
    /// uid of the kube-system namespace.
    #[arg(long, default_value = fake_kube::DEFAULT_KUBE_SYSTEM_UID)]
    kube_system_uid: String,
    /// Play the kubelets and the EndpointSlice controller: pods bound to an existing Node run
    /// (status Running, an IP, readiness from their gates), and Services with a selector get
    /// EndpointSlices.
    #[arg(long)]
    simulate_pods: bool,
    /// Addresses simulated pods get, FIRST+COUNT (e.g. 127.0.42.1+253).
    #[arg(long, value_name = "FIRST+COUNT", default_value = "10.244.0.1+65534")]
    pod_ips: fake_kube::PodIpRange,
    /// Seconds a deleted pod takes to terminate (default: its grace period); 'manual' never.
    #[arg(long, value_name = "SECONDS|manual")]
    pod_termination: Option<String>,
    /// Log filter (tracing `EnvFilter` syntax).
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    log: String,
}

/// Waits for Ctrl-C, or SIGTERM where there is one (how test harnesses and `kill` stop it).
async fn stopped() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Args {
        listen,
        kubeconfig_out,
        apply,
        watch_history,
        bookmark_interval,
        kube_system_uid,
        simulate_pods,
        pod_ips,
        pod_termination,
        log,
    } = Args::parse();
    let termination = match pod_termination.as_deref() {
        None => fake_kube::Termination::GracePeriod,
        Some("manual") => fake_kube::Termination::Manual,
        Some(secs) => fake_kube::Termination::After(Duration::from_secs_f64(
            secs.parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .ok_or_else(|| format!("--pod-termination: {secs:?} is neither seconds nor 'manual'"))?,
        )),
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&log)?)
        .with_writer(std::io::stderr)
        .init();
    let config = fake_kube::Config {
        listen,
        watch_history,
        bookmark_interval: Duration::from_secs(bookmark_interval.max(1)),
        kube_system_uid,
        // A long-running server would otherwise keep every request in memory.
        record_requests: false,
        simulate_pods: simulate_pods.then(|| fake_kube::PodSimulation {
            pod_ips,
            termination,
            ..fake_kube::PodSimulation::default()
        }),
        ..fake_kube::Config::default()
    };
    let kube = fake_kube::FakeKube::start(config).await?;
    for file in &apply {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let objects = kube
            .apply_yaml(&text)
            .map_err(|e| format!("{}: {e}", file.display()))?;
        tracing::info!(file = %file.display(), objects = objects.len(), "applied");
    }
    match &kubeconfig_out {
        Some(path) => {
            kube.write_kubeconfig(path)?;
            eprintln!(
                "fake-kube listening on {}; export KUBECONFIG={}",
                kube.url(),
                path.display()
            );
        }
        None => eprintln!("fake-kube listening on {}", kube.url()),
    }
    stopped().await?;
    eprintln!("fake-kube: shutting down");
    kube.shutdown().await;
    Ok(())
}
