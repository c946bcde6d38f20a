//! The opt-in pod simulator ([`crate::Config::simulate_pods`]): a kubelet on every Node and the
//! EndpointSlice controller, both acting through the store as clients of the API would, after
//! the writes they react to (so watchers see their writes as separate events, as in a cluster).
//!
//! One background task follows the store's change history. A pod change makes the pod's kubelet
//! sync it (`kubelet.rs`) and the Services whose selectors match its old or new labels
//! reconcile (`endpointslices.rs`); a Service change reconciles it; a Node change syncs the
//! pods on it and reconciles every Service (zones and node existence feed the slices); a change
//! to a controller-managed EndpointSlice reconciles its Service (the real controller restores
//! slices others edit). When the history it needs is gone (410), everything is synced again.
//! Deleted pods are finished after [`Termination`], as a kubelet whose containers took that
//! long to stop.

mod endpointslices;
mod kubelet;

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::error::ApiError;
use crate::kinds::{self, KINDS, KindId};
use crate::server::Shared;
use crate::store::{ChangeType, DeleteOptions, Filter, Store};

/// The IPv4 addresses simulated pods get: `count` consecutive addresses from `first`.
///
/// For tests whose pods must be reachable (a data plane probing them), give a loopback block,
/// e.g. `127.A.B.1` with count 253; the default is `10.244.0.1` with count 65534 (kind's pod
/// network), addresses nothing here ever connects to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PodIpRange {
    /// The first address handed out.
    pub first: Ipv4Addr,
    /// How many consecutive addresses there are.
    pub count: u32,
}

impl PodIpRange {
    /// `count` addresses from `first`.
    pub fn new(first: Ipv4Addr, count: u32) -> Self {
        PodIpRange { first, count }
    }

    /// The `index`th address, if the range has it.
    pub fn nth(&self, index: u32) -> Option<Ipv4Addr> {
        (index < self.count)
            .then(|| u32::from(self.first).checked_add(index))
            .flatten()
            .map(Ipv4Addr::from)
    }

    /// Whether `ip` is in the range.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        self.index_of(ip).is_some()
    }

    fn index_of(&self, ip: Ipv4Addr) -> Option<u32> {
        u32::from(ip)
            .checked_sub(u32::from(self.first))
            .filter(|i| *i < self.count)
    }
}

impl PodIpRange {
    /// The host addresses of an IPv4 CIDR (`10.4.1.0/24`): all but the network and broadcast
    /// addresses, or every address of a /31 or /32. `None` when it is not an IPv4 CIDR.
    pub fn of_cidr(cidr: &str) -> Option<Self> {
        let (addr, len) = cidr.split_once('/')?;
        let addr: Ipv4Addr = addr.parse().ok()?;
        let len: u32 = len.parse().ok().filter(|l| *l <= 32)?;
        let size = 1u64 << (32 - len);
        let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
        let network = u32::from(addr) & mask;
        let (first, count) = if size <= 2 {
            (network, size)
        } else {
            (network + 1, size - 2)
        };
        Some(PodIpRange::new(Ipv4Addr::from(first), u32::try_from(count).ok()?))
    }
}

impl Default for PodIpRange {
    fn default() -> Self {
        PodIpRange::new(Ipv4Addr::new(10, 244, 0, 1), 65534)
    }
}

impl FromStr for PodIpRange {
    type Err = String;

    /// `FIRST+COUNT`, e.g. `127.0.42.1+253`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (first, count) = s
            .split_once('+')
            .ok_or_else(|| format!("{s:?} is not FIRST+COUNT (e.g. 127.0.42.1+253)"))?;
        let first = first
            .parse()
            .map_err(|e| format!("{first:?} is not an IPv4 address: {e}"))?;
        let count = count
            .parse()
            .map_err(|e| format!("{count:?} is not a count: {e}"))?;
        Ok(PodIpRange::new(first, count))
    }
}

/// When the simulated kubelet finishes a deleted pod (deletes it with no grace period, which
/// removes it unless finalizers remain).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Termination {
    /// When its grace period ends (`metadata.deletionTimestamp`), as with containers that ignore
    /// SIGTERM.
    #[default]
    GracePeriod,
    /// This long after the simulator first sees the pod being deleted (tests make it short).
    After(Duration),
    /// Only through [`crate::FakeKube::finish_termination`].
    Manual,
}

/// How the simulator plays the kubelets and the EndpointSlice controller
/// ([`crate::Config::simulate_pods`]).
#[derive(Clone, Debug)]
pub struct PodSimulation {
    /// The addresses pods get.
    pub pod_ips: PodIpRange,
    /// Whether containers are ready unless [`crate::FakeKube::set_containers_ready`] said
    /// otherwise for a pod.
    pub containers_ready: bool,
    /// When deleted pods finish terminating.
    pub termination: Termination,
    /// Most endpoints per EndpointSlice (kube-controller-manager's `--max-endpoints-per-slice`,
    /// default 100).
    pub max_endpoints_per_slice: usize,
}

impl Default for PodSimulation {
    fn default() -> Self {
        PodSimulation {
            pod_ips: PodIpRange::default(),
            containers_ready: true,
            termination: Termination::GracePeriod,
            max_endpoints_per_slice: 100,
        }
    }
}

/// Kind ids the simulator works with.
#[derive(Clone, Copy)]
struct Kinds {
    pods: KindId,
    services: KindId,
    nodes: KindId,
    slices: KindId,
}

impl Kinds {
    fn get() -> Option<Self> {
        Some(Kinds {
            pods: kinds::find("", "v1", "pods")?,
            services: kinds::find("", "v1", "services")?,
            nodes: kinds::find("", "v1", "nodes")?,
            slices: kinds::find("discovery.k8s.io", "v1", "endpointslices")?,
        })
    }
}

/// A pending end of termination.
struct Deadline {
    namespace: String,
    name: String,
    at: Instant,
}

/// What the simulator remembers between syncs.
#[derive(Default)]
struct State {
    /// `set_containers_ready` overrides, by pod uid.
    ready: HashMap<String, bool>,
    /// Addresses handed out, by pod uid.
    ips: HashMap<String, Ipv4Addr>,
    /// Addresses in use (of the pool or of a Node's `spec.podCIDR`).
    used: BTreeSet<Ipv4Addr>,
    /// Where the next search for a free address starts in each range (by its first address),
    /// so addresses are not reused at once.
    cursors: HashMap<Ipv4Addr, u32>,
    /// Deleted pods to finish, by uid.
    deadlines: HashMap<String, Deadline>,
}

/// The simulator: configuration and state, shared by its task and the knobs on `FakeKube`.
pub(crate) struct Simulator {
    config: PodSimulation,
    kinds: Kinds,
    state: Mutex<State>,
    /// Wakes the task when a knob changed something it waits for.
    wake: Notify,
}

fn meta<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn spec_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.get("spec")
        .and_then(|s| s.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `(namespace, name)` of an object.
fn key_of(obj: &Value) -> (String, String) {
    (meta(obj, "namespace").to_string(), meta(obj, "name").to_string())
}

/// Whether a Service's selector (a map; `None` matches nothing) selects these labels.
fn selects(service: &Value, pod: &Value) -> bool {
    let Some(selector) = service.pointer("/spec/selector").and_then(Value::as_object) else {
        return false;
    };
    let labels = pod.pointer("/metadata/labels");
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

impl Simulator {
    pub(crate) fn new(config: PodSimulation) -> Option<Arc<Self>> {
        Some(Arc::new(Simulator {
            config,
            kinds: Kinds::get()?,
            state: Mutex::new(State::default()),
            wake: Notify::new(),
        }))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Allocates an address for a pod, the next free one after the last handed out: from its
    /// Node's `spec.podCIDR` when the Node has one (as node IPAM hands each node a range, which
    /// a cloud also knows as the VM's alias IP range), else from the pool.
    fn allocate(&self, uid: &str, node_range: Option<PodIpRange>) -> Option<Ipv4Addr> {
        let mut state = self.state();
        if let Some(ip) = state.ips.get(uid) {
            return Some(*ip);
        }
        let range = node_range.unwrap_or(self.config.pod_ips);
        let cursor = state.cursors.get(&range.first).copied().unwrap_or(0);
        for step in 0..range.count {
            let index = (cursor.wrapping_add(step)) % range.count.max(1);
            let ip = range.nth(index)?;
            if state.used.contains(&ip) {
                continue;
            }
            state.used.insert(ip);
            state.ips.insert(uid.to_string(), ip);
            state.cursors.insert(range.first, index.wrapping_add(1));
            return Some(ip);
        }
        None
    }

    /// Records an address a pod already has (seen after a resync).
    fn note_ip(&self, uid: &str, ip: &str) {
        let Ok(ip) = ip.parse::<Ipv4Addr>() else {
            return;
        };
        let mut state = self.state();
        if !state.ips.contains_key(uid) {
            state.used.insert(ip);
            state.ips.insert(uid.to_string(), ip);
        }
    }

    fn release(&self, uid: &str) {
        let mut state = self.state();
        if let Some(ip) = state.ips.remove(uid) {
            state.used.remove(&ip);
        }
        state.ready.remove(uid);
        state.deadlines.remove(uid);
    }

    /// Rebuilds the address bookkeeping from the pods in the store.
    fn rebuild(&self, store: &Store) {
        let (pods, _) = store.snapshot(self.kinds.pods, &Filter::default());
        let mut state = self.state();
        state.ips.clear();
        state.used.clear();
        let mut live = BTreeSet::new();
        for pod in &pods {
            let uid = meta(pod, "uid").to_string();
            live.insert(uid.clone());
            let ip = pod
                .pointer("/status/podIP")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<Ipv4Addr>().ok());
            if let Some(ip) = ip
                && !spec_str(pod, "nodeName").is_empty()
            {
                state.used.insert(ip);
                state.ips.insert(uid, ip);
            }
        }
        state.ready.retain(|uid, _| live.contains(uid));
        state.deadlines.retain(|uid, _| live.contains(uid));
    }

    fn containers_ready(&self, uid: &str) -> bool {
        self.state()
            .ready
            .get(uid)
            .copied()
            .unwrap_or(self.config.containers_ready)
    }

    /// Notes when a pod being deleted is to be finished, per [`Termination`].
    fn schedule_termination(&self, pod: &Value) {
        let grace = pod
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let Ok(deletion) = meta(pod, "deletionTimestamp").parse::<Timestamp>() else {
            return;
        };
        if grace <= 0 {
            return;
        }
        let at = match self.config.termination {
            Termination::Manual => return,
            Termination::After(after) => Instant::now() + after,
            Termination::GracePeriod => {
                let left = deletion.as_second() - Timestamp::now().as_second();
                Instant::now() + Duration::from_secs(u64::try_from(left).unwrap_or(0))
            }
        };
        let (namespace, name) = key_of(pod);
        let uid = meta(pod, "uid").to_string();
        let mut state = self.state();
        let entry = state
            .deadlines
            .entry(uid)
            .or_insert(Deadline { namespace, name, at });
        // A shortened grace period brings the end forward; `After` counts from the first sight.
        if self.config.termination == Termination::GracePeriod && at < entry.at {
            entry.at = at;
        }
        drop(state);
        self.wake.notify_one();
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.state().deadlines.values().map(|d| d.at).min()
    }

    /// The kubelet's last word on a deleted pod: DELETE with no grace period, preconditioned on
    /// the uid (as `kubelet/status/status_manager.go` does once the containers stopped).
    pub(crate) fn finish(&self, store: &mut Store, namespace: &str, name: &str) -> Result<(), ApiError> {
        let pods = self.kinds.pods;
        let pod = store.get(pods, Some(namespace), name)?;
        if meta(&pod, "deletionTimestamp").is_empty() {
            return Err(ApiError::conflict(
                &KINDS[pods],
                name,
                "the pod is not being deleted, so it has no termination to finish",
            ));
        }
        let uid = meta(&pod, "uid").to_string();
        self.state().deadlines.remove(&uid);
        let opts = DeleteOptions {
            uid: Some(uid),
            grace_period_seconds: Some(0),
            ..DeleteOptions::default()
        };
        store.delete(pods, Some(namespace), name, &opts).map(|_| ())
    }

    /// `set_containers_ready`: remembers the readiness for this pod and syncs it at once.
    pub(crate) fn set_ready(
        &self,
        store: &mut Store,
        namespace: &str,
        name: &str,
        ready: bool,
    ) -> Result<(), ApiError> {
        let pod = store.get(self.kinds.pods, Some(namespace), name)?;
        self.state().ready.insert(meta(&pod, "uid").to_string(), ready);
        kubelet::sync(self, store, &pod);
        Ok(())
    }

    /// Finishes the pods whose termination time has come.
    fn fire_deadlines(&self, store: &mut Store) {
        let now = Instant::now();
        let due: Vec<(String, String)> = self
            .state()
            .deadlines
            .values()
            .filter(|d| d.at <= now)
            .map(|d| (d.namespace.clone(), d.name.clone()))
            .collect();
        for (namespace, name) in due {
            if let Err(e) = self.finish(store, &namespace, &name) {
                tracing::debug!(%namespace, %name, error = %e, "simulated kubelet: no termination to finish");
            }
        }
        self.state().deadlines.retain(|_, d| d.at > now);
    }

    /// Syncs every pod and Service, and removes slices whose Service is gone.
    fn full_sync(&self, store: &mut Store) {
        self.rebuild(store);
        let (pods, _) = store.snapshot(self.kinds.pods, &Filter::default());
        for pod in &pods {
            kubelet::sync(self, store, pod);
        }
        endpointslices::collect_orphans(self, store);
        let (services, _) = store.snapshot(self.kinds.services, &Filter::default());
        for svc in &services {
            let (ns, name) = key_of(svc);
            endpointslices::reconcile(self, store, &ns, &name);
        }
    }

    /// Reacts to a batch of changes.
    fn process(&self, store: &mut Store, changes: &[Arc<crate::store::Change>]) {
        let k = self.kinds;
        let mut pods_to_sync: BTreeSet<(String, String)> = BTreeSet::new();
        let mut services: BTreeSet<(String, String)> = BTreeSet::new();
        let mut all_services = false;
        let mut gone_services = Vec::new();
        let mut nodes = BTreeSet::new();
        for change in changes {
            let obj = &change.object;
            if change.kind == k.pods {
                if change.ty == ChangeType::Deleted {
                    self.release(meta(obj, "uid"));
                } else {
                    pods_to_sync.insert(key_of(obj));
                }
                // The Services selecting it before or after the change.
                let (ns, _) = key_of(obj);
                let filter = Filter {
                    namespace: Some(ns.clone()),
                    ..Filter::default()
                };
                let (in_ns, _) = store.snapshot(k.services, &filter);
                for svc in in_ns {
                    let before = change.previous.as_deref().is_some_and(|p| selects(&svc, p));
                    if before || selects(&svc, obj) {
                        services.insert(key_of(&svc));
                    }
                }
            } else if change.kind == k.services {
                if change.ty == ChangeType::Deleted {
                    gone_services.push(obj.clone());
                } else {
                    services.insert(key_of(obj));
                }
            } else if change.kind == k.nodes {
                nodes.insert(meta(obj, "name").to_string());
                all_services = true;
            } else if change.kind == k.slices && endpointslices::managed(obj) {
                let ns = meta(obj, "namespace").to_string();
                let svc = obj
                    .pointer("/metadata/labels")
                    .and_then(|l| l.get(endpointslices::SERVICE_NAME_LABEL))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                if !svc.is_empty() {
                    services.insert((ns, svc));
                }
            }
        }
        if !nodes.is_empty() {
            let (pods, _) = store.snapshot(k.pods, &Filter::default());
            for pod in pods.iter().filter(|p| nodes.contains(spec_str(p, "nodeName"))) {
                pods_to_sync.insert(key_of(pod));
            }
        }
        for (ns, name) in &pods_to_sync {
            if let Ok(pod) = store.get(k.pods, Some(ns), name) {
                kubelet::sync(self, store, &pod);
            }
        }
        for svc in &gone_services {
            endpointslices::remove_for(self, store, svc);
        }
        if all_services {
            let (all, _) = store.snapshot(k.services, &Filter::default());
            services.extend(all.iter().map(|s| key_of(s)));
        }
        for (ns, name) in &services {
            endpointslices::reconcile(self, store, ns, name);
        }
    }
}

/// How many changes one pass takes from the history.
const BATCH: usize = 1000;

/// The simulator's task: follows the change history until the server shuts down.
pub(crate) async fn run(shared: Arc<Shared>, sim: Arc<Simulator>) {
    let mut notify = shared.notify.clone();
    let mut shutdown = shared.shutdown.clone();
    let (mut cursor, mut epoch) = {
        let mut store = shared.store();
        sim.full_sync(&mut store);
        (store.resource_version(), store.epoch())
    };
    loop {
        if *shutdown.borrow() {
            return;
        }
        notify.borrow_and_update();
        let caught_up = {
            let mut store = shared.store();
            sim.fire_deadlines(&mut store);
            match store.changes_since(cursor, epoch, BATCH) {
                Err(_) => {
                    tracing::debug!("pod simulator: history gone, syncing everything");
                    epoch = store.epoch();
                    cursor = store.resource_version();
                    sim.full_sync(&mut store);
                    false
                }
                Ok(changes) if !changes.is_empty() => {
                    cursor = changes.last().map_or(cursor, |c| c.rv);
                    sim.process(&mut store, &changes);
                    false
                }
                Ok(_) => true,
            }
        };
        if caught_up {
            wait(&sim, &mut notify, &mut shutdown).await;
        } else {
            // Between batches, let other tasks run.
            tokio::task::yield_now().await;
        }
    }
}

/// Sleeps until a change, the next termination deadline, a knob's wake-up or shutdown (which
/// the loop notices).
async fn wait(
    sim: &Simulator,
    notify: &mut tokio::sync::watch::Receiver<u64>,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) {
    let next = sim.next_deadline();
    tokio::select! {
        _ = notify.changed() => {}
        _ = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        } => {}
        _ = sim.wake.notified() => {}
        _ = shutdown.wait_for(|stop| *stop) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_ranges() {
        let r: PodIpRange = "127.0.42.1+253".parse().unwrap();
        assert_eq!(r.nth(0), Some(Ipv4Addr::new(127, 0, 42, 1)));
        assert_eq!(r.nth(252), Some(Ipv4Addr::new(127, 0, 42, 253)));
        assert_eq!(r.nth(253), None);
        assert!(r.contains(Ipv4Addr::new(127, 0, 42, 100)));
        assert!(!r.contains(Ipv4Addr::new(127, 0, 42, 254)));
        assert!("127.0.0.1".parse::<PodIpRange>().is_err());
    }

    #[test]
    fn addresses_are_not_reused_at_once() {
        let sim = Simulator::new(PodSimulation {
            pod_ips: PodIpRange::new(Ipv4Addr::new(10, 0, 0, 1), 3),
            ..PodSimulation::default()
        })
        .unwrap();
        assert_eq!(sim.allocate("a", None), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(sim.allocate("a", None), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(sim.allocate("b", None), Some(Ipv4Addr::new(10, 0, 0, 2)));
        sim.release("a");
        assert_eq!(sim.allocate("c", None), Some(Ipv4Addr::new(10, 0, 0, 3)));
        assert_eq!(sim.allocate("d", None), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(sim.allocate("e", None), None, "the range is used up");
    }

    #[test]
    fn a_node_pod_cidr_gives_its_pods_their_addresses() {
        let sim = Simulator::new(PodSimulation::default()).unwrap();
        let node = PodIpRange::of_cidr("10.4.1.0/30");
        assert_eq!(node, Some(PodIpRange::new(Ipv4Addr::new(10, 4, 1, 1), 2)));
        assert_eq!(sim.allocate("a", node), Some(Ipv4Addr::new(10, 4, 1, 1)));
        assert_eq!(sim.allocate("b", node), Some(Ipv4Addr::new(10, 4, 1, 2)));
        assert_eq!(sim.allocate("c", node), None, "the node's range is used up");
        assert_eq!(
            sim.allocate("d", None),
            Some(Ipv4Addr::new(10, 244, 0, 1)),
            "the pool is apart"
        );
        assert_eq!(
            PodIpRange::of_cidr("127.3.4.77/28"),
            Some(PodIpRange::new(Ipv4Addr::new(127, 3, 4, 65), 14))
        );
        assert_eq!(
            PodIpRange::of_cidr("10.0.0.7/32"),
            Some(PodIpRange::new(Ipv4Addr::new(10, 0, 0, 7), 1))
        );
        assert_eq!(PodIpRange::of_cidr("fd00::/64"), None);
        assert_eq!(PodIpRange::of_cidr("10.0.0.0/33"), None);
    }
}
