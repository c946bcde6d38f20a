//! The `run` command: connects to the cluster and the cloud, wins the leader election, and runs
//! the controller and the admin server until SIGTERM or Ctrl-C.

use crate::cli::RunArgs;
use crate::controller::{self, Context, context::Parts, events::Events, infra::InfraSync, stores};
use crate::leader::{LeaderElection, Leadership, Timings};
use crate::telemetry::{admin, liveness::Liveness, metrics::Metrics};
use crate::translate;
use anyhow::Context as _;
use cloud::gce::{
    ComputeSettings, GceConfig, GceProvider, GoogleTokens, Rate, RateLimits, Scheme, StaticToken, TokenSource,
};
use cloud::{Provider, WriteFence};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long node changes settle before the infrastructure follows them.
const INFRA_DEBOUNCE: Duration = Duration::from_secs(2);

/// How long reconciles in flight may run on after a shutdown signal (the Deployment's
/// termination grace period is longer).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// Runs until `cancel` fires (the caller wires it to signals) or leadership is lost.
pub async fn run(args: RunArgs, cancel: CancellationToken) -> anyhow::Result<()> {
    let identity = args.identity.clone().unwrap_or_else(default_identity);
    let client = kube_client(args.kubeconfig.as_deref(), &identity).await?;
    let metrics = Arc::new(Metrics::default());
    let health = Arc::new(admin::Health::default());
    let liveness = Arc::new(Liveness::new(
        args.failing_watch_after,
        args.stuck_reconcile_after,
    ));

    let listeners = admin::bind(args.health_addr, args.metrics_addr)
        .await
        .context("binding the admin addresses")?;
    for (listener, health, metrics) in &listeners {
        if let Ok(address) = listener.local_addr() {
            let serves = match (health, metrics) {
                (true, true) => "/healthz /readyz /metrics",
                (true, false) => "/healthz /readyz",
                _ => "/metrics",
            };
            tracing::info!(%address, serves, "admin server listening");
        }
    }
    let mut admin = AbortOnDrop(tokio::spawn(admin::serve(
        listeners,
        health.clone(),
        liveness.clone(),
        metrics.clone(),
        cancel.clone(),
    )));

    // Every cloud write checks it: with leader election, it is granted only while the lease is.
    let fence = if args.leader_elect {
        WriteFence::shut()
    } else {
        WriteFence::open()
    };
    let leadership = if args.leader_elect {
        let timings = Timings {
            lease_duration: args.leader_elect_lease_duration,
            renew_deadline: args.leader_elect_renew_deadline,
            retry_period: args.leader_elect_retry_period,
        };
        timings
            .validate()
            .map_err(|e| anyhow::anyhow!("leader-election timings: {e}"))?;
        let election = LeaderElection::new(
            client.clone(),
            &args.leader_election_namespace,
            &args.leader_election_id,
            &identity,
            timings,
            fence.clone(),
        );
        // A standby is healthy and ready: it takes over when the leader goes.
        health.set_ready(true);
        tracing::info!(identity, "waiting to become the leader");
        let Some(leadership) = election.lead(&cancel).await else {
            let _ = (&mut admin.0).await;
            return Ok(());
        };
        health.set_ready(false);
        Some(leadership)
    } else {
        None
    };
    let lost = leadership.as_ref().map(Leadership::lost).unwrap_or_default();
    metrics.set_leader(true);
    let work = Work {
        args: &args,
        client,
        identity: &identity,
        metrics: metrics.clone(),
        health,
        liveness,
        fence: fence.clone(),
    };
    let (outcome, stop) = lead(work, &cancel, &lost).await;
    // Every writer has stopped (or was aborted): nothing may write from here on, and only then
    // may a standby take over.
    fence.close();
    metrics.set_leader(false);
    if let Some(leadership) = leadership {
        match stop {
            Stop::Clean => leadership.release().await,
            // Writes may still be on the wire: the lease runs out on its own (the renewal stops
            // with `leadership`), a standby takes over only then.
            Stop::Abandoned => tracing::warn!("the lease is left to expire"),
        }
    }
    cancel.cancel();
    let _ = (&mut admin.0).await;
    outcome
}

/// How the leader's work ended.
enum Stop {
    /// Every writer finished (or never started).
    Clean,
    /// Writers were aborted mid-way after the grace period.
    Abandoned,
}

/// What the leader works with.
struct Work<'a> {
    args: &'a RunArgs,
    client: kube::Client,
    identity: &'a str,
    metrics: Arc<Metrics>,
    health: Arc<admin::Health>,
    liveness: Arc<Liveness>,
    fence: WriteFence,
}

/// The leader's work: the provider, the watches and the controller, until `cancel` (a graceful
/// stop, bounded by [`SHUTDOWN_GRACE`]) or `lost` (an immediate one). Returns only once every
/// task that writes has ended.
async fn lead(
    work: Work<'_>,
    cancel: &CancellationToken,
    lost: &CancellationToken,
) -> (anyhow::Result<()>, Stop) {
    match run_leader(work, cancel, lost).await {
        Ok(stop) => (Ok(()), stop),
        Err(e) => (Err(e), Stop::Clean),
    }
}

async fn run_leader(
    work: Work<'_>,
    cancel: &CancellationToken,
    lost: &CancellationToken,
) -> anyhow::Result<Stop> {
    let Work {
        args,
        client,
        identity,
        metrics,
        health,
        liveness,
        fence,
    } = work;
    let setup = async {
        let cluster_uid = match &args.cluster_uid {
            Some(uid) => uid.clone(),
            None => crate::cluster_uid::load_or_create(client.clone(), &args.leader_election_namespace)
                .await
                .context("reading or creating the cluster UID")?,
        };
        tracing::info!(cluster_uid, "starting");
        provider(args, &cluster_uid, identity, metrics.clone(), fence.clone()).await
    };
    let provider = tokio::select! {
        provider = setup => provider?,
        _ = lost.cancelled() => anyhow::bail!("lost the leadership while starting"),
        _ = cancel.cancelled() => return Ok(Stop::Clean),
    };

    let (stores, streams) = stores::watch(&client, args.watch_namespace.as_deref(), liveness.clone());
    let (all_tx, all_rx) = tokio::sync::mpsc::unbounded_channel();
    let infra = Arc::new(InfraSync::new(
        provider.clone(),
        metrics.clone(),
        stores.nodes.clone(),
        args.zones.clone(),
        INFRA_DEBOUNCE,
        all_tx,
    ));
    let translate = translate::Config {
        controller_name: args.controller_name.clone(),
        legacy_class: args.ingress_class.clone(),
        neg_default: args.neg_default,
        ..translate::Config::default()
    };
    let events = Events::new(client.clone(), "cloud-lb-controller", identity, fence.clone());
    let (ctx, requeues) = Context::new(Parts {
        client,
        provider,
        stores: stores.clone(),
        events,
        metrics,
        liveness,
        infra,
        translate,
        resync: args.resync_period,
        watch_namespace: args.watch_namespace.clone(),
        fence,
        health_interval: args.health_interval,
        pod_status_qps: args.pod_status_qps,
    });

    // Ready once the caches have synced.
    let ready = tokio::spawn(async move {
        if stores.wait_ready().await.is_ok() {
            health.set_ready(true);
        }
    });

    let stop = CancellationToken::new();
    // Dropped with this future (a crash of the caller's task, an abort), it ends the controller.
    let mut controller = AbortOnDrop(tokio::spawn(controller::run(
        Arc::new(ctx),
        streams,
        requeues,
        all_rx,
        args.concurrency,
        stop.clone(),
    )));
    let _ready = AbortOnDrop(ready);
    let outcome = async {
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = &mut controller.0 => anyhow::bail!("the controller stopped on its own"),
            _ = lost.cancelled() => anyhow::bail!("lost the leadership: stopped at once"),
        }
        // Reconciles, the collector and the infrastructure pass in flight may finish; a cloud
        // operation that hangs must not hold the process past its termination grace period.
        stop.cancel();
        tokio::select! {
            _ = &mut controller.0 => Ok(Stop::Clean),
            _ = tokio::time::sleep(SHUTDOWN_GRACE) => {
                tracing::warn!("still writing after {SHUTDOWN_GRACE:?}: stopping anyway");
                Ok(Stop::Abandoned)
            }
            _ = lost.cancelled() => anyhow::bail!("lost the leadership while stopping"),
        }
    }
    .await;
    // Ends every task of the controller (reconciles included: dropping the controller's stream
    // aborts them) before the caller closes the fence and gives the lease up.
    if !controller.0.is_finished() {
        controller.0.abort();
        let _ = (&mut controller.0).await;
    }
    outcome
}

/// Aborts its task when dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A client from the given kubeconfig, or the in-cluster or default configuration. Requests
/// carry [`user_agent`].
pub async fn kube_client(
    kubeconfig: Option<&std::path::Path>,
    identity: &str,
) -> anyhow::Result<kube::Client> {
    let mut config = match kubeconfig {
        Some(path) if !path.as_os_str().is_empty() => {
            let paths = std::env::split_paths(path).collect::<Vec<_>>();
            let mut merged = kube::config::Kubeconfig::read_from(&paths[0])
                .with_context(|| format!("reading kubeconfig {}", paths[0].display()))?;
            for p in &paths[1..] {
                merged = merged.merge(kube::config::Kubeconfig::read_from(p)?)?;
            }
            kube::Config::from_custom_kubeconfig(merged, &kube::config::KubeConfigOptions::default()).await?
        }
        _ => kube::Config::infer()
            .await
            .context("finding a cluster (in-cluster or ~/.kube/config)")?,
    };
    if let Ok(value) = axum::http::HeaderValue::from_str(&user_agent(identity)) {
        config.headers.push((axum::http::header::USER_AGENT, value));
    }
    kube::Client::try_from(config).context("building the Kubernetes client")
}

/// The provider the flags describe; it writes only while `fence` allows.
async fn provider(
    args: &RunArgs,
    cluster_uid: &str,
    identity: &str,
    metrics: Arc<Metrics>,
    fence: WriteFence,
) -> anyhow::Result<Arc<dyn Provider>> {
    let gce = &args.gce;
    let (tokens, credential_project): (Arc<dyn TokenSource>, Option<String>) = match &gce.access_token {
        Some(token) => (Arc::new(StaticToken(token.expose().to_owned())), None),
        None => {
            let google = GoogleTokens::discover().await?;
            let project = match &gce.project {
                Some(_) => None,
                None => Some(google.project_id().await?),
            };
            (Arc::new(google), project)
        }
    };
    let project = gce
        .project
        .clone()
        .or(credential_project)
        .context("no Google Cloud project: pass --gce-project (or GCE_PROJECT)")?;
    let rate = Rate {
        qps: gce.qps,
        burst: gce.burst,
    };
    let mut config = GceConfig::new(project, cluster_uid);
    // The default controller keeps the names and records it always had.
    config.controller =
        (args.controller_name != translate::DEFAULT_CONTROLLER_NAME).then(|| args.controller_name.clone());
    config.endpoint = gce.endpoint.clone();
    config.network = gce.network.clone();
    config.removal_grace = gce.removal_grace;
    config.limits = Some(cloud::gce::Limits {
        url_map_bytes: gce.url_map_max_bytes,
        ..cloud::gce::Limits::DOCUMENTED
    });
    config.network_project = gce.network_project.clone();
    config.target_tags = gce.target_tags.clone();
    config.scheme = if gce.classic {
        Scheme::External
    } else {
        Scheme::ExternalManaged
    };
    config.compute = ComputeSettings {
        rate_limits: RateLimits {
            reads: rate,
            mutations: rate,
            operation_polls: rate,
            health_queries: Rate::health_queries(gce.health_qps),
        },
        operation_timeout: gce.operation_timeout,
        dry_run: args.dry_run,
        observer: Some(Arc::new(move |call| {
            metrics.cloud_request(&call.operation, call.result)
        })),
        fence,
        user_agent: Some(user_agent(identity)),
        ..ComputeSettings::default()
    };
    let project = config.project.clone();
    let provider = GceProvider::new(config, tokens)?;
    tracing::info!(
        project,
        names = %format!("clb-{}-…", provider.namer().cluster_tag()),
        "cloud resources of this cluster"
    );
    Ok(Arc::new(provider))
}

/// `cloud-lb-controller/VERSION (IDENTITY)`: the User-Agent of every request, to the API server
/// and to the cloud, so audit logs tell replicas apart.
fn user_agent(identity: &str) -> String {
    format!("cloud-lb-controller/{} ({identity})", env!("CARGO_PKG_VERSION"))
}

fn default_identity() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "cloud-lb-controller".to_owned());
    format!("{host}-{}", std::process::id())
}

/// A token cancelled on SIGTERM or Ctrl-C.
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {}
            _ = term => {}
        }
        tracing::info!("shutting down");
        t.cancel();
    });
    token
}
