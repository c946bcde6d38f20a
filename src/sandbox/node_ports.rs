//! A stand-in for kube-proxy and the pods on the fake cluster's nodes: every node port of every
//! Service (type NodePort or LoadBalancer) is served, on each node's loopback address, by an
//! [`EchoServer`] that names the node and the Service. The fake Compute API's data plane sends
//! the load balancer's traffic and health checks to the instances' addresses on the named port
//! (the node port), so these are the backends a request really reaches.

use super::echo::EchoServer;
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Service;
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, Client};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

/// How often servers that could not be started (their port still held) are tried again.
const RETRY: Duration = Duration::from_millis(250);

/// One node: its name and the loopback address its node ports listen on.
#[derive(Clone, Debug)]
pub struct Node {
    /// The Node's name (`node-1`), named in the echo's `served_by`.
    pub name: String,
    /// Its address: the instance IP the fake Compute API seeds for it.
    pub ip: IpAddr,
}

impl Node {
    /// Nodes named `names`, on the addresses `.1`, `.2`, … of a loopback block.
    pub fn on_block(block: &fake_gce::LoopbackBlock, names: &[&str]) -> Vec<Node> {
        names
            .iter()
            .zip(1u8..)
            .map(|(name, host)| Node {
                name: (*name).to_owned(),
                ip: block.ip(host).into(),
            })
            .collect()
    }
}

/// A node port of a Service: what is served on every node.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Port {
    node_port: u16,
    /// `namespace/name:port`, for the echo's `served_by`.
    service: String,
}

#[derive(Debug, Default)]
struct Inner {
    /// Node ports wanted, by Service key (`namespace/name`).
    wanted: BTreeMap<String, BTreeSet<Port>>,
    /// Nodes taken down by [`NodePorts::set_serving`].
    down: BTreeSet<String>,
    /// What runs: (node, node port) → (the identity it answers as, server).
    running: BTreeMap<(String, u16), (String, EchoServer)>,
    /// Whether a wanted server failed to start (to be tried again).
    incomplete: bool,
}

/// The state and the lock that makes syncs one at a time, so two never bind the same port.
#[derive(Debug, Default)]
struct Shared {
    inner: Mutex<Inner>,
    sync: tokio::sync::Mutex<()>,
}

/// Serves the node ports of every Service while it lives.
#[derive(Debug)]
pub struct NodePorts {
    nodes: Vec<Node>,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl NodePorts {
    /// Watches Services through `client` and serves their node ports on `nodes`.
    pub fn start(client: Client, nodes: Vec<Node>) -> NodePorts {
        let shared = Arc::new(Shared::default());
        let task = tokio::spawn(watch(client, Arc::clone(&shared), nodes.clone()));
        NodePorts { nodes, shared, task }
    }

    /// Takes a node's servers down (`false`: its node ports refuse connections, as when its pods
    /// or kube-proxy are gone) or brings them back. Down means closed when this returns; up
    /// means started, unless a port is still held elsewhere (then retried).
    pub async fn set_serving(&self, node: &str, serving: bool) {
        {
            let mut inner = lock(&self.shared.inner);
            if serving {
                inner.down.remove(node);
            } else {
                inner.down.insert(node.to_owned());
            }
        }
        sync(&self.shared, &self.nodes).await;
    }

    /// The addresses served now.
    pub fn serving(&self) -> Vec<SocketAddr> {
        lock(&self.shared.inner)
            .running
            .values()
            .map(|(_, server)| server.local_addr())
            .collect()
    }
}

impl Drop for NodePorts {
    fn drop(&mut self) {
        self.task.abort();
        lock(&self.shared.inner).running.clear();
    }
}

/// Follows the Services, and retries servers that could not start.
async fn watch(client: Client, shared: Arc<Shared>, nodes: Vec<Node>) {
    let api: Api<Service> = Api::all(client);
    // Backoff on errors: a watch that keeps failing (the API server gone) must not spin.
    let mut events = std::pin::pin!(watcher(api, watcher::Config::default()).default_backoff());
    let mut init: Option<BTreeMap<String, BTreeSet<Port>>> = None;
    let mut retry = tokio::time::interval(RETRY);
    loop {
        let event = tokio::select! {
            event = events.next() => match event {
                Some(event) => event,
                None => return,
            },
            _ = retry.tick() => {
                if lock(&shared.inner).incomplete {
                    sync(&shared, &nodes).await;
                }
                continue;
            }
        };
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!("node-port stand-in: watch error: {e}");
                continue;
            }
        };
        let changed = match event {
            watcher::Event::Init => {
                init = Some(BTreeMap::new());
                false
            }
            watcher::Event::InitApply(svc) => {
                if let Some(init) = init.as_mut() {
                    init.insert(key(&svc), ports(&svc));
                }
                false
            }
            watcher::Event::InitDone => {
                lock(&shared.inner).wanted = init.take().unwrap_or_default();
                true
            }
            watcher::Event::Apply(svc) => {
                lock(&shared.inner).wanted.insert(key(&svc), ports(&svc));
                true
            }
            watcher::Event::Delete(svc) => {
                lock(&shared.inner).wanted.remove(&key(&svc));
                true
            }
        };
        if changed {
            sync(&shared, &nodes).await;
        }
    }
}

fn lock(inner: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    inner.lock().unwrap_or_else(|e| e.into_inner())
}

fn key(svc: &Service) -> String {
    format!(
        "{}/{}",
        svc.metadata.namespace.as_deref().unwrap_or_default(),
        svc.metadata.name.as_deref().unwrap_or_default()
    )
}

/// The node ports a Service asks for.
fn ports(svc: &Service) -> BTreeSet<Port> {
    let Some(spec) = svc.spec.as_ref() else {
        return BTreeSet::new();
    };
    spec.ports
        .iter()
        .flatten()
        .filter_map(|p| {
            let node_port = u16::try_from(p.node_port?).ok()?;
            Some(Port {
                node_port,
                service: format!("{}:{}", key(svc), p.port),
            })
        })
        .collect()
}

/// Stops and starts servers so that exactly the wanted node ports of the nodes that are up run.
async fn sync(shared: &Shared, nodes: &[Node]) {
    let _one_at_a_time = shared.sync.lock().await;
    let (stop, start) = {
        let mut inner = lock(&shared.inner);
        let mut wanted: BTreeMap<(String, u16), (IpAddr, String)> = BTreeMap::new();
        for node in nodes.iter().filter(|n| !inner.down.contains(&n.name)) {
            for port in inner.wanted.values().flatten() {
                wanted.insert(
                    (node.name.clone(), port.node_port),
                    (node.ip, format!("{} {}", node.name, port.service)),
                );
            }
        }
        let (keep, stop): (BTreeMap<_, _>, BTreeMap<_, _>) = std::mem::take(&mut inner.running)
            .into_iter()
            .partition(|(k, (identity, _))| wanted.get(k).is_some_and(|(_, want)| want == identity));
        inner.running = keep;
        let start: Vec<_> = wanted
            .into_iter()
            .filter(|(k, _)| !inner.running.contains_key(k))
            .collect();
        (stop, start)
    };
    // Closed before anything is started: a port that moves to another Service is free again.
    for (_, server) in stop.into_values() {
        server.stop().await;
    }
    let mut incomplete = false;
    for ((node, port), (ip, identity)) in start {
        match EchoServer::start(SocketAddr::new(ip, port), &identity).await {
            Ok(server) => {
                lock(&shared.inner)
                    .running
                    .insert((node, port), (identity, server));
            }
            Err(e) => {
                incomplete = true;
                tracing::debug!("node-port stand-in: cannot serve {ip}:{port} for {identity} yet: {e}");
            }
        }
    }
    lock(&shared.inner).incomplete = incomplete;
}
