//! A stand-in for kube-proxy and the pods on the fake cluster's nodes: every node port of every
//! Service (type NodePort or LoadBalancer) is served, on each node's loopback address, by an
//! [`EchoServer`] that names the node and the Service. The fake Compute API's data plane sends
//! the load balancer's traffic and health checks to the instances' addresses on the named port
//! (the node port), so these are the backends a request really reaches.

use super::echo::EchoServer;
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Service;
use kube::runtime::watcher;
use kube::{Api, Client};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

/// One node: its name and the loopback address its node ports listen on.
#[derive(Clone, Debug)]
pub struct Node {
    pub name: String,
    pub ip: IpAddr,
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
    /// What runs: (node, node port) → server.
    running: BTreeMap<(String, u16), EchoServer>,
}

/// Serves the node ports of every Service while it lives.
#[derive(Debug)]
pub struct NodePorts {
    nodes: Vec<Node>,
    inner: Arc<Mutex<Inner>>,
    task: JoinHandle<()>,
}

impl NodePorts {
    /// Watches Services through `client` and serves their node ports on `nodes`.
    pub fn start(client: Client, nodes: Vec<Node>) -> NodePorts {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let task = {
            let (inner, nodes) = (Arc::clone(&inner), nodes.clone());
            tokio::spawn(async move {
                let api: Api<Service> = Api::all(client);
                let mut events = std::pin::pin!(watcher(api, watcher::Config::default()));
                let mut init: Option<BTreeMap<String, BTreeSet<Port>>> = None;
                while let Some(event) = events.next().await {
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
                            lock(&inner).wanted = init.take().unwrap_or_default();
                            true
                        }
                        watcher::Event::Apply(svc) => {
                            lock(&inner).wanted.insert(key(&svc), ports(&svc));
                            true
                        }
                        watcher::Event::Delete(svc) => {
                            lock(&inner).wanted.remove(&key(&svc));
                            true
                        }
                    };
                    if changed {
                        sync(&inner, &nodes).await;
                    }
                }
            })
        };
        NodePorts { nodes, inner, task }
    }

    /// Takes a node's servers down (`false`: its node ports refuse connections, as when its pods
    /// or kube-proxy are gone) or brings them back.
    pub async fn set_serving(&self, node: &str, serving: bool) {
        {
            let mut inner = lock(&self.inner);
            if serving {
                inner.down.remove(node);
            } else {
                inner.down.insert(node.to_owned());
            }
        }
        sync(&self.inner, &self.nodes).await;
    }

    /// The addresses served now.
    pub fn serving(&self) -> Vec<SocketAddr> {
        lock(&self.inner)
            .running
            .values()
            .map(EchoServer::local_addr)
            .collect()
    }
}

impl Drop for NodePorts {
    fn drop(&mut self) {
        self.task.abort();
        lock(&self.inner).running.clear();
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

/// One sync at a time, so that two never bind the same port.
static SYNC: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Starts and stops servers so that exactly the wanted node ports of the nodes that are up run.
async fn sync(inner: &Mutex<Inner>, nodes: &[Node]) {
    let _one_at_a_time = SYNC.lock().await;
    let start = {
        let mut inner = lock(inner);
        let mut wanted: BTreeMap<(String, u16), (IpAddr, String)> = BTreeMap::new();
        for node in nodes.iter().filter(|n| !inner.down.contains(&n.name)) {
            for port in inner.wanted.values().flatten() {
                wanted.insert(
                    (node.name.clone(), port.node_port),
                    (node.ip, format!("{} {}", node.name, port.service)),
                );
            }
        }
        inner.running.retain(|k, _| wanted.contains_key(k));
        let start: Vec<_> = wanted
            .iter()
            .filter(|(k, _)| !inner.running.contains_key(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        start
    };
    for ((node, port), (ip, identity)) in start {
        match EchoServer::start(SocketAddr::new(ip, port), &identity).await {
            Ok(server) => {
                // A change meanwhile is applied by the sync it triggered, which waits for this one.
                lock(inner).running.insert((node, port), server);
            }
            Err(e) => tracing::warn!("node-port stand-in: cannot serve {ip}:{port} for {identity}: {e}"),
        }
    }
}
