//! A stand-in for the containers of pods: an [`EchoServer`] on every TCP container port of every
//! pod that has a (loopback) IP, from the moment the pod has its IP until the pod object is gone
//! — as a container keeps serving through its termination grace period. With fake-kube's pod
//! simulator giving pods loopback addresses, the load balancer's endpoints (NEGs) really answer.

use super::echo::EchoServer;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

/// How often servers that could not start (their address still held) are tried again.
const RETRY: Duration = Duration::from_millis(200);

/// The running stand-in; dropping it stops every server.
pub struct PodServers {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct Shared {
    inner: Mutex<Inner>,
    sync: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Inner {
    /// Addresses wanted, by pod (`namespace/name`), with the identity the echo answers with.
    wanted: BTreeMap<String, Vec<(SocketAddr, String)>>,
    running: BTreeMap<SocketAddr, (String, EchoServer)>,
    /// Pods (`namespace/name`) whose containers are taken down by [`PodServers::set_serving`].
    down: std::collections::BTreeSet<String>,
    incomplete: bool,
}

impl PodServers {
    /// Watches Pods through `client` and serves their container ports.
    pub fn start(client: Client) -> PodServers {
        let shared = Arc::new(Shared::default());
        let task = tokio::spawn(watch(client, Arc::clone(&shared)));
        PodServers { shared, task }
    }

    /// Takes a pod's containers down (`false`: its ports refuse connections, as a container
    /// that does not answer) or brings them back; the pod need not exist yet. Down means closed
    /// when this returns.
    pub async fn set_serving(&self, pod: &str, serving: bool) {
        {
            let mut inner = lock(&self.shared.inner);
            if serving {
                inner.down.remove(pod);
            } else {
                inner.down.insert(pod.to_owned());
            }
        }
        sync(&self.shared).await;
    }

    /// The addresses served now.
    pub fn serving(&self) -> Vec<SocketAddr> {
        lock(&self.shared.inner).running.keys().copied().collect()
    }
}

impl Drop for PodServers {
    fn drop(&mut self) {
        self.task.abort();
        lock(&self.shared.inner).running.clear();
    }
}

async fn watch(client: Client, shared: Arc<Shared>) {
    let api: Api<Pod> = Api::all(client);
    let mut events = std::pin::pin!(watcher(api, watcher::Config::default()).default_backoff());
    let mut init: Option<BTreeMap<String, Vec<(SocketAddr, String)>>> = None;
    let mut retry = tokio::time::interval(RETRY);
    loop {
        let event = tokio::select! {
            event = events.next() => match event {
                Some(Ok(event)) => event,
                Some(Err(e)) => {
                    tracing::debug!("pod stand-in: watch error: {e}");
                    continue;
                }
                None => return,
            },
            _ = retry.tick() => {
                if lock(&shared.inner).incomplete {
                    sync(&shared).await;
                }
                continue;
            }
        };
        match event {
            watcher::Event::Init => init = Some(BTreeMap::new()),
            watcher::Event::InitApply(pod) => {
                if let Some(init) = init.as_mut() {
                    init.insert(key(&pod), addresses(&pod));
                }
            }
            watcher::Event::InitDone => {
                lock(&shared.inner).wanted = init.take().unwrap_or_default();
                sync(&shared).await;
            }
            watcher::Event::Apply(pod) => {
                lock(&shared.inner).wanted.insert(key(&pod), addresses(&pod));
                sync(&shared).await;
            }
            watcher::Event::Delete(pod) => {
                lock(&shared.inner).wanted.remove(&key(&pod));
                sync(&shared).await;
            }
        }
    }
}

fn lock(inner: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    inner.lock().unwrap_or_else(|e| e.into_inner())
}

fn key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

/// The loopback addresses a pod's containers listen on: its IP and each TCP container port.
fn addresses(pod: &Pod) -> Vec<(SocketAddr, String)> {
    let ip: Option<IpAddr> = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .and_then(|ip| ip.parse().ok())
        .filter(|ip: &IpAddr| ip.is_loopback());
    let (Some(ip), Some(spec)) = (ip, pod.spec.as_ref()) else {
        return Vec::new();
    };
    let finished = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .is_some_and(|p| p == "Succeeded" || p == "Failed");
    if finished {
        return Vec::new();
    }
    spec.containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten().map(move |p| (c, p)))
        .filter(|(_, p)| p.protocol.as_deref().unwrap_or("TCP") == "TCP")
        .filter_map(|(c, p)| {
            let port = u16::try_from(p.container_port).ok()?;
            Some((
                SocketAddr::new(ip, port),
                format!("pod {} container {}", key(pod), c.name),
            ))
        })
        .collect()
}

/// Stops and starts servers so that exactly the wanted addresses are served.
async fn sync(shared: &Shared) {
    let _one_at_a_time = shared.sync.lock().await;
    let (stop, start) = {
        let mut inner = lock(&shared.inner);
        let wanted: BTreeMap<SocketAddr, String> = inner
            .wanted
            .iter()
            .filter(|(pod, _)| !inner.down.contains(*pod))
            .flat_map(|(_, addresses)| addresses.iter().cloned())
            .collect();
        let (keep, stop): (BTreeMap<_, _>, BTreeMap<_, _>) = std::mem::take(&mut inner.running)
            .into_iter()
            .partition(|(addr, (identity, _))| wanted.get(addr) == Some(identity));
        inner.running = keep;
        let start: Vec<(SocketAddr, String)> = wanted
            .into_iter()
            .filter(|(addr, _)| !inner.running.contains_key(addr))
            .collect();
        (stop, start)
    };
    // Closed before anything is started: an address a new pod reuses is free again.
    for (_, server) in stop.into_values() {
        server.stop().await;
    }
    let mut incomplete = false;
    for (addr, identity) in start {
        match EchoServer::start(addr, &identity).await {
            Ok(server) => {
                lock(&shared.inner).running.insert(addr, (identity, server));
            }
            Err(e) => {
                incomplete = true;
                tracing::debug!("pod stand-in: cannot serve {addr} for {identity} yet: {e}");
            }
        }
    }
    lock(&shared.inner).incomplete = incomplete;
}
