//! `sandbox`: the product on one machine, with no cluster and no cloud account.
//!
//! Starts a fake kube-apiserver and a fake Compute API on loopback, writes a kubeconfig for
//! kubectl, gives the fake cluster three nodes in two zones, applies the echoheaders example
//! (making its TLS Secret), runs the real controller against both, shows each cloud operation
//! as it runs, and prints the Ingress with its address and the cloud resources built. The fake
//! Compute API's data plane then serves the load balancer on loopback, with echo servers behind
//! the nodes' node ports, and the sandbox sends the Kubernetes 1.2 announcement's three requests
//! through it. Then it keeps serving until Ctrl-C, so kubectl and curl can be pointed at it.

mod announcement;
pub mod echo;
mod example;
pub mod node_ports;
pub mod pod_servers;
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
/// How long the load balancer may take to answer as announced once it has an address (its
/// health checks must pass first).
const TRAFFIC_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the data plane serves the load balancer at `address` on ports 80 and 443.
fn frontends(gce: &FakeGce, address: &str) -> anyhow::Result<announcement::Frontends> {
    let serving = |port| {
        gce.serving_address(address, port)
            .with_context(|| format!("nothing serves {address}:{port}"))
    };
    Ok(announcement::Frontends {
        http: serving(80)?,
        https: serving(443)?,
    })
}

pub async fn run(args: SandboxArgs) -> anyhow::Result<()> {
    crate::telemetry::logging::init_quiet();
    let started = Instant::now();
    // The nodes' addresses: a loopback block of their own, where the stand-in for kube-proxy
    // serves every node port. The load balancer's addresses come from another block.
    let node_block = fake_gce::LoopbackBlock::claim().context("claiming loopback addresses for the nodes")?;
    let names: Vec<&str> = NODES.iter().map(|(_, name)| *name).collect();
    let nodes = node_ports::Node::on_block(&node_block, &names);
    let gce = FakeGce::start(fake_gce::Config {
        project_id: PROJECT.to_owned(),
        require_token: Some(TOKEN.to_owned()),
        latency: fake_gce::Latency::uniform(Duration::from_millis(args.gce_latency_ms)),
        instances: NODES
            .iter()
            .zip(&nodes)
            .map(|((zone, name), node)| InstanceSeed {
                ip: Some(node.ip.to_string()),
                ..InstanceSeed::new(zone, name)
            })
            .collect(),
        data_plane: Some(fake_gce::DataPlane::default()),
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
    let _node_ports = node_ports::NodePorts::start(client.clone(), nodes.clone());
    println!(
        "  nodes                {}   (every node port is served by an echo server)",
        nodes
            .iter()
            .map(|n| format!("{} {}", n.name, n.ip))
            .collect::<Vec<_>>()
            .join(", ")
    );
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
    let address = crate::controller::report::status_ips(&ingress)
        .into_iter()
        .next()
        .unwrap_or_default();
    println!("{}", table::ingresses(&[ingress], jiff::Timestamp::now()));
    println!("Compute resources in project {PROJECT}:");
    for line in progress::resources(&gce.state()) {
        println!("  {line}");
    }

    let frontends = frontends(&gce, &address)?;
    println!("\nThe Kubernetes 1.2 Ingress announcement's requests, sent to the load balancer:");
    if frontends.http.port() != 80 {
        println!(
            "(not root: the load balancer's ports 80 and 443 are served at {} and {})",
            frontends.http.port(),
            frontends.https.port()
        );
    }
    println!();
    let answers = announcement::run(&frontends, TRAFFIC_TIMEOUT).await?;
    print!("{}", answers.render(&frontends));
    if !answers.as_announced() {
        anyhow::bail!(
            "the load balancer did not answer as announced within {TRAFFIC_TIMEOUT:?}: see `kubectl describe ing test`"
        );
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
    println!("  curl -si {}", frontends.http_url());
    println!("  curl -sk {}", frontends.https_url());
    println!(
        "  kubectl apply -f my-ingress.yaml     # Services must be type NodePort; each is served by an echo server"
    );
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
