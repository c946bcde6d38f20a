//! Command-line interface: `run` (the controller), `plan` (offline translation), `sandbox`.
//!
//! Every `run` flag has an environment fallback (`CLC_…` unless a well-known variable exists)
//! and a documented default, so the Deployment can configure it either way.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Provisions Google Cloud HTTP(S) load balancers for Kubernetes Ingresses.
#[derive(Debug, Parser)]
#[command(name = "cloud-lb-controller", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controller (in a cluster, or against any kubeconfig).
    Run(Box<RunArgs>),
    /// Translate Ingress, Service and Secret manifests and print the cloud resources they would
    /// become, without touching any cluster or cloud.
    Plan(PlanArgs),
    /// Start a fake kube-apiserver and a fake Compute API on this machine, apply the example
    /// Ingress, and run the controller against them.
    Sandbox(SandboxArgs),
}

/// Settings of `run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Kubeconfig to use; without it, the in-cluster service account (or `~/.kube/config`).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// The cloud to provision load balancers in.
    #[arg(long, env = "CLC_PROVIDER", value_enum, default_value_t = ProviderKind::Gce)]
    pub provider: ProviderKind,

    #[command(flatten)]
    pub gce: GceArgs,

    /// Only use nodes in these zones (comma-separated); default: every zone the nodes'
    /// `spec.providerID` or `topology.kubernetes.io/zone` names.
    #[arg(long, env = "CLC_ZONES", value_delimiter = ',')]
    pub zones: Vec<String>,

    /// Identifies this cluster in cloud resource names. Default: kept in ConfigMap
    /// `kube-system/cloud-lb-controller-uid`, created once from the kube-system namespace's UID.
    #[arg(long, env = "CLC_CLUSTER_UID")]
    pub cluster_uid: Option<String>,

    /// The `spec.controller` of the IngressClasses this controller serves.
    #[arg(long, env = "CLC_CONTROLLER_NAME", default_value = crate::translate::DEFAULT_CONTROLLER_NAME)]
    pub controller_name: String,

    /// The value of the legacy `kubernetes.io/ingress.class` annotation this controller serves.
    #[arg(long, env = "CLC_INGRESS_CLASS", default_value = crate::translate::DEFAULT_LEGACY_CLASS)]
    pub ingress_class: String,

    /// Watch Ingresses in this namespace only; default: all namespaces.
    #[arg(long, env = "CLC_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,

    /// How often every Ingress is checked against the cloud even when nothing changed
    /// (e.g. `30s`, `10m`, `1h`), and orphaned cloud resources are collected.
    #[arg(long, env = "CLC_RESYNC_PERIOD", default_value = "10m", value_parser = parse_duration)]
    pub resync_period: Duration,

    /// How often the health of every backend in use is read from the cloud (a full pass, start
    /// to start; each backend is read once per pass whatever the number of Ingresses using it),
    /// for the `ingress.kubernetes.io/backends` annotation and the `Degraded` state. `0` turns
    /// polling off (the backends then show `Unknown`).
    #[arg(long, env = "CLC_HEALTH_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub health_interval: Duration,

    /// Serve every Service port through network endpoint groups (container-native load
    /// balancing: straight to the pods, ClusterIP Services work) unless the Service says
    /// otherwise with `cloud.google.com/neg: '{"ingress": false}'`. Without it, only Services
    /// annotated `cloud.google.com/neg: '{"ingress": true}'` are.
    #[arg(long, env = "CLC_NEG_DEFAULT", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub neg_default: bool,

    /// Writes per second, at most, of the load balancer's readiness-gate condition
    /// (`cloud.google.com/load-balancer-neg-ready`) on pods behind endpoint backends.
    #[arg(long, env = "CLC_POD_STATUS_QPS", default_value_t = 10.0, value_parser = parse_rate)]
    pub pod_status_qps: f64,

    /// How many Ingresses are reconciled at once.
    #[arg(long, env = "CLC_CONCURRENCY", default_value_t = 16)]
    pub concurrency: u16,

    /// Leader election on a Lease, so that of several replicas only one writes.
    #[arg(long, env = "CLC_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,

    /// Namespace of the leader-election Lease (and of the cluster-UID ConfigMap).
    #[arg(long, env = "CLC_LEADER_ELECTION_NAMESPACE", default_value = "kube-system")]
    pub leader_election_namespace: String,

    /// Name of the leader-election Lease.
    #[arg(long, env = "CLC_LEADER_ELECTION_ID", default_value = "cloud-lb-controller")]
    pub leader_election_id: String,

    /// How long a leader's lease holds without renewal; a standby takes over after it.
    #[arg(long, env = "CLC_LEADER_ELECT_LEASE_DURATION", default_value = "15s", value_parser = parse_duration)]
    pub leader_elect_lease_duration: Duration,

    /// The leader steps down when it could not renew its lease for this long.
    #[arg(long, env = "CLC_LEADER_ELECT_RENEW_DEADLINE", default_value = "10s", value_parser = parse_duration)]
    pub leader_elect_renew_deadline: Duration,

    /// How often leader election tries to acquire or renew the lease.
    #[arg(long, env = "CLC_LEADER_ELECT_RETRY_PERIOD", default_value = "2s", value_parser = parse_duration)]
    pub leader_elect_retry_period: Duration,

    /// This replica's identity in the Lease and in Events; default: the pod name (`POD_NAME`)
    /// or the host name.
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,

    /// `/healthz` fails (and the kubelet restarts the controller) once a watch has failed
    /// without a break for this long.
    #[arg(long, env = "CLC_FAILING_WATCH_AFTER", default_value = "5m", value_parser = parse_duration)]
    pub failing_watch_after: Duration,

    /// `/healthz` fails once one reconcile has run for this long (longer than the five dependent
    /// Compute operations of a load balancer can take, see `--gce-operation-timeout`).
    #[arg(long, env = "CLC_STUCK_RECONCILE_AFTER", default_value = "1h", value_parser = parse_duration)]
    pub stuck_reconcile_after: Duration,

    /// Where `/metrics` is served.
    #[arg(long, env = "CLC_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,

    /// Where `/healthz` and `/readyz` are served (may equal the metrics address).
    #[arg(long, env = "CLC_HEALTH_ADDR", default_value = "0.0.0.0:8081")]
    pub health_addr: SocketAddr,

    /// Log format.
    #[arg(long, env = "CLC_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Compute and report what would change, but never write to the cloud.
    #[arg(long, env = "CLC_DRY_RUN")]
    pub dry_run: bool,
}

/// Settings of the GCE provider.
#[derive(Debug, Clone, Args)]
pub struct GceArgs {
    /// Google Cloud project; default: the project of the credentials.
    #[arg(long = "gce-project", env = "GCE_PROJECT")]
    pub project: Option<String>,

    /// VPC network of the nodes.
    #[arg(long = "gce-network", env = "GCE_NETWORK", default_value = "default")]
    pub network: String,

    /// The project that owns the network, for a Shared VPC (the host project): the health-check
    /// firewall rule is created there. Default: the project itself.
    #[arg(long = "gce-network-project", env = "GCE_NETWORK_PROJECT")]
    pub network_project: Option<String>,

    /// Network tags of the nodes, targeted by the health-check firewall rule (comma-separated);
    /// default: none, i.e. every instance in the network.
    #[arg(long = "gce-target-tags", env = "GCE_TARGET_TAGS", value_delimiter = ',')]
    pub target_tags: Vec<String>,

    /// Compute API endpoint.
    #[arg(long = "gce-endpoint", env = "GCE_ENDPOINT", default_value = cloud::gce::DEFAULT_ENDPOINT)]
    pub endpoint: String,

    /// A fixed access token instead of Google's credential chain (for the fake API or tests).
    #[arg(long = "gce-access-token", env = "GCE_ACCESS_TOKEN", hide_env_values = true, value_parser = parse_secret)]
    pub access_token: Option<Secret>,

    /// Build classic Application Load Balancers (`EXTERNAL`) instead of global external
    /// Application Load Balancers (`EXTERNAL_MANAGED`).
    #[arg(long = "gce-classic", env = "GCE_CLASSIC")]
    pub classic: bool,

    /// Sustained Compute API requests per second, for each of reads, mutations and operation polls.
    #[arg(long = "gce-qps", env = "GCE_QPS", default_value_t = 16.0, value_parser = parse_rate)]
    pub qps: f64,

    /// Burst of Compute API requests above the sustained rate.
    #[arg(long = "gce-burst", env = "GCE_BURST", default_value_t = 20)]
    pub burst: u32,

    /// Health queries (`backendServices.getHealth`, one per backend service and zone) per second,
    /// at most: a share of the reads of `--gce-qps`, which they count against too. A pass that
    /// needs more than `--health-interval` allows at this rate takes longer.
    #[arg(long = "gce-health-qps", env = "GCE_HEALTH_QPS", default_value_t = 2.0, value_parser = parse_rate)]
    pub health_qps: f64,

    /// The largest URL map, in bytes, a load balancer may need before its Ingress is refused as
    /// too large. Google documents 64 KB for classic load balancers, and 1 MB for the global
    /// external Application Load Balancer in a preview; the default is the smaller.
    #[arg(long = "gce-url-map-max-bytes", env = "GCE_URL_MAP_MAX_BYTES", default_value_t = cloud::gce::Limits::DOCUMENTED.url_map_bytes)]
    pub url_map_max_bytes: usize,

    /// How long a node port, or the instance groups and firewall rule, stay once nothing in the
    /// cloud needs them: another controller of the cluster may be about to use them.
    #[arg(long = "gce-removal-grace", env = "GCE_REMOVAL_GRACE", default_value = "2m", value_parser = parse_duration)]
    pub removal_grace: Duration,

    /// Give up waiting on one Compute operation after this long.
    #[arg(long = "gce-operation-timeout", env = "GCE_OPERATION_TIMEOUT", default_value = "10m", value_parser = parse_duration)]
    pub operation_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProviderKind {
    Gce,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Settings of `plan`.
#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    /// Manifests (YAML, several documents each) holding Ingresses and the Services, Secrets and
    /// IngressClasses they use; `-` reads standard input.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,

    /// Google Cloud project shown in the resource links.
    #[arg(long = "gce-project", default_value = "my-project")]
    pub project: String,

    /// Cluster UID used in the names.
    #[arg(long, default_value = "cluster-uid")]
    pub cluster_uid: String,

    /// Print the provider-neutral model instead of the cloud resources.
    #[arg(long)]
    pub model: bool,
}

/// Settings of `sandbox`.
#[derive(Debug, Clone, Args)]
pub struct SandboxArgs {
    /// Exit once the example Ingress has an address (for scripts).
    #[arg(long)]
    pub exit_when_ready: bool,

    /// Latency of every fake Compute operation, in milliseconds, for realistic timing.
    #[arg(long, default_value_t = 0)]
    pub gce_latency_ms: u64,

    /// More manifests to apply after the example.
    #[arg(short = 'f', long = "filename")]
    pub files: Vec<PathBuf>,

    /// Where to write the kubeconfig of the fake cluster.
    #[arg(long, default_value = "sandbox.kubeconfig")]
    pub kubeconfig_out: PathBuf,
}

/// A value that must never be printed: its `Debug` form is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

fn parse_secret(s: &str) -> Result<Secret, String> {
    Ok(Secret(s.to_owned()))
}

/// A request rate: a finite number above 0 (the client never waits forever, nor floods).
fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(q) if q.is_finite() && q >= 0.01 => Ok(q),
        _ => Err(format!(
            "{s:?} is not a rate: give requests per second, at least 0.01"
        )),
    }
}

/// Parses `500ms`, `30s`, `10m`, `1h`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 30s, 10m, 1h)"))?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use ms, s, m or h)")),
    };
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(format!("{s:?} is not a valid duration"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5d").is_err());
        assert!(parse_rate("NaN").is_err() && parse_rate("0").is_err() && parse_rate("-1").is_err());
        assert_eq!(parse_rate("2.5"), Ok(2.5));
    }

    #[test]
    fn run_defaults_are_documented_values() {
        let cli = Cli::try_parse_from(["cloud-lb-controller", "run"]).unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        assert_eq!(args.resync_period, Duration::from_secs(600));
        assert!(args.leader_elect);
        assert_eq!(args.gce.endpoint, cloud::gce::DEFAULT_ENDPOINT);
        assert_eq!(args.controller_name, "cloud-lb-controller.io/gce");
        assert_eq!(args.ingress_class, "gce");
        assert_eq!(args.health_interval, Duration::from_secs(30));
        assert_eq!(args.gce.health_qps, 2.0);
        assert!(!args.neg_default);
        assert_eq!(args.pod_status_qps, 10.0);
        let cli = Cli::try_parse_from(["cloud-lb-controller", "run", "--neg-default"]).unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        assert!(args.neg_default);
    }

    #[test]
    fn the_access_token_never_prints() {
        let cli =
            Cli::try_parse_from(["cloud-lb-controller", "run", "--gce-access-token", "s3cr3t"]).unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        assert!(!format!("{args:?}").contains("s3cr3t"));
        assert_eq!(args.gce.access_token.as_ref().map(Secret::expose), Some("s3cr3t"));
    }
}
