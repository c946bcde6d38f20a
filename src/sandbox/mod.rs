//! `sandbox`: the product on one machine, with no cluster and no cloud account.
//!
//! Starts a fake kube-apiserver and a fake Compute API on loopback, writes a kubeconfig for
//! kubectl, gives the fake cluster three nodes in two zones, applies the echoheaders example
//! (making its TLS Secret), runs the real controller against both, shows each cloud operation
//! as it runs, and prints the Ingress with its address and the cloud resources built. Then it
//! keeps serving until Ctrl-C, so kubectl can be pointed at it.

mod example;
mod progress;
mod table;

use crate::cli::{Cli, Command, SandboxArgs};
use anyhow::Context as _;
use clap::Parser;
use fake_gce::{FakeGce, InstanceSeed};
use fake_kube::FakeKube;
use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The fake project the load balancers are built in.
pub const PROJECT: &str = "sandbox-project";
/// The fake cluster's nodes: (zone, name).
const NODES: [(&str, &str); 3] = [
    ("us-central1-a", "node-1"),
    ("us-central1-a", "node-2"),
    ("us-central1-b", "node-3"),
];
/// The access token the fake Compute API requires, so the controller is seen to send one.
const TOKEN: &str = "sandbox-token";
/// How long to wait for the example's address before giving up.
const READY_TIMEOUT: Duration = Duration::from_secs(300);

pub async fn run(args: SandboxArgs) -> anyhow::Result<()> {
    crate::telemetry::logging::init_quiet();
    let started = Instant::now();
    let gce = FakeGce::start(fake_gce::Config {
        project_id: PROJECT.to_owned(),
        require_token: Some(TOKEN.to_owned()),
        latency: fake_gce::Latency::uniform(Duration::from_millis(args.gce_latency_ms)),
        instances: NODES
            .iter()
            .map(|(zone, name)| InstanceSeed::new(zone, name))
            .collect(),
        ..fake_gce::Config::default()
    })
    .await
    .context("starting the fake Compute API")?;
    let kube = FakeKube::start(fake_kube::Config::default())
        .await
        .context("starting the fake kube-apiserver")?;
    kube.write_kubeconfig(&args.kubeconfig_out)
        .with_context(|| format!("writing {}", args.kubeconfig_out.display()))?;
    let kubeconfig = std::fs::canonicalize(&args.kubeconfig_out).unwrap_or(args.kubeconfig_out.clone());

    println!("cloud-lb-controller sandbox");
    println!(
        "  fake kube-apiserver  {}   kubeconfig: {}",
        kube.url(),
        kubeconfig.display()
    );
    println!("  fake Compute API     {}   project: {PROJECT}", gce.base_url());
    if args.gce_latency_ms > 0 {
        println!("  every Compute operation takes {} ms", args.gce_latency_ms);
    }

    let client = crate::run::kube_client(Some(&kubeconfig), "sandbox").await?;
    let applied = example::apply(&client, &NODES, PROJECT).await?;
    println!("applied the echoheaders example: {}", applied.join(", "));
    for file in &args.files {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        for object in crate::manifests::parse(&text, &file.display().to_string())? {
            let what = crate::manifests::apply(&client, &object, "sandbox").await?;
            println!("applied {what} from {}", file.display());
        }
    }

    let cancel = CancellationToken::new();
    let controller = {
        let kubeconfig = kubeconfig.to_string_lossy().into_owned();
        let endpoint = gce.base_url();
        let argv = [
            "cloud-lb-controller",
            "run",
            "--kubeconfig",
            &kubeconfig,
            "--gce-endpoint",
            &endpoint,
            "--gce-project",
            PROJECT,
            "--gce-access-token",
            TOKEN,
            "--metrics-addr",
            "127.0.0.1:0",
            "--health-addr",
            "127.0.0.1:0",
        ];
        let Command::Run(run_args) = Cli::try_parse_from(argv)?.command else {
            anyhow::bail!("internal: the sandbox's controller arguments do not parse as `run`");
        };
        tokio::spawn(crate::run::run(*run_args, cancel.clone()))
    };
    println!("controller started; building the load balancer of Ingress default/test:");

    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), "default");
    let mut watch = progress::Operations::new(started);
    let deadline = Instant::now() + READY_TIMEOUT;
    let ingress = loop {
        watch.print_changes(&gce.state());
        let ingress = ingresses.get_opt("test").await?;
        if let Some(ing) = ingress.filter(|i| !crate::controller::report::status_ips(i).is_empty()) {
            watch.print_changes(&gce.state());
            break ing;
        }
        if controller.is_finished() {
            anyhow::bail!("the controller stopped before the Ingress got an address");
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "no address after {READY_TIMEOUT:?}: see `kubectl describe ing test` for its Events"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!(
        "\nIngress default/test has an address after {:.2}s:\n",
        started.elapsed().as_secs_f64()
    );
    println!("{}", table::ingresses(&[ingress], jiff::Timestamp::now()));
    println!("Compute resources in project {PROJECT}:");
    for line in progress::resources(&gce.state()) {
        println!("  {line}");
    }

    if args.exit_when_ready {
        cancel.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), controller).await;
        return Ok(());
    }
    println!("\nThe sandbox keeps running. In another terminal:");
    println!("  export KUBECONFIG={}", kubeconfig.display());
    println!("  kubectl get ing");
    println!("  kubectl describe ing test");
    println!("  kubectl apply -f my-ingress.yaml     # Services must be type NodePort");
    println!("  kubectl delete ing test              # the cloud resources go too");
    println!("Press Ctrl-C to stop.");
    let stop = crate::run::shutdown_on_signals();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_millis(200)) => watch.print_changes(&gce.state()),
        }
    }
    cancel.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(25), controller).await;
    println!("stopped; the fake cluster and cloud are gone");
    Ok(())
}
