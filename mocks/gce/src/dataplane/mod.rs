//! The data plane: what a global external HTTP(S) load balancer does with traffic, on loopback
//! (the behaviour and its sources are in the crate docs, "Data plane").
//!
//! It reads the same store the API writes: a listener looks its forwarding rule, proxy, URL map,
//! backend service and instances up at each request (certificates at each TLS handshake), so
//! what a client configured is exactly what serves. The parts:
//! - [`block`]: loopback blocks, claimed exclusively between processes;
//! - [`listen`]: one listener per forwarding-rule address and port, opened and closed in the
//!   critical section that applies the operation;
//! - [`proxy`]: routing ([`route`]) and proxying of each request;
//! - [`tls`]: certificates by SNI at handshake time, and TLS to backends;
//! - [`health`]: health-check probes and the health they compute;
//! - [`backends`]: the members of a backend service and their ports;
//! - [`net`]: the only place that connects anywhere, and only to loopback;
//! - [`pages`]: the bodies Google's front ends answer with.

mod backends;
mod block;
mod health;
mod listen;
mod net;
mod pages;
mod proxy;
pub(crate) mod route;
mod tls;

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, Weak};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::AbortHandle;

pub use block::LoopbackBlock;
pub(crate) use health::HealthTable;

use crate::config::DataPlane;
use crate::kinds::Key;
use crate::state::{Shared, State};

/// Locks a mutex of the data plane; a panic elsewhere cannot leave these tables in a state that
/// matters, so a poisoned lock is taken over (as the state's is).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the data plane needs before the shared state exists: its block (claimed here) and
/// whether ports below 1024 can be bound.
#[derive(Debug)]
pub(crate) struct PlaneSetup {
    block: Ipv4Addr,
    claim: Option<LoopbackBlock>,
    settings: DataPlane,
    privileged: bool,
    handle: Handle,
}

impl PlaneSetup {
    /// Claims the block ([`DataPlane::block`], or a free one). Must run inside a Tokio runtime,
    /// where the listeners and probes will run.
    pub(crate) fn prepare(settings: &DataPlane) -> io::Result<PlaneSetup> {
        let handle = Handle::try_current().map_err(io::Error::other)?;
        let (block, claim) = match settings.block {
            None => {
                let claim = LoopbackBlock::claim()?;
                (claim.base(), Some(claim))
            }
            Some(ip) => {
                let base = block::block_base(ip)?;
                match LoopbackBlock::claim_at(base) {
                    Ok(claim) => (base, Some(claim)),
                    // Held already: by the caller that passed it, typically (a claim cannot
                    // tell whose it is); the block is used as given, on the caller's word.
                    Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                        tracing::info!(
                            "data plane: {base}/24 is claimed already (by whoever passed it, \
                             presumably); using it without a claim of its own"
                        );
                        (base, None)
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        let privileged = listen::can_bind_privileged(block);
        Ok(PlaneSetup {
            block,
            claim,
            settings: settings.clone(),
            privileged,
            handle,
        })
    }

    /// The block external addresses come from.
    pub(crate) fn block(&self) -> Ipv4Addr {
        self.block
    }
}

/// The running data plane of one fake.
#[derive(Debug)]
pub(crate) struct Plane {
    /// Weak: the tasks below must not keep the fake alive.
    shared: Weak<Shared>,
    block: Ipv4Addr,
    _claim: Option<LoopbackBlock>,
    port_offset: u16,
    probe_interval: Option<Duration>,
    /// Whether ports below 1024 can be bound (root, or a low `ip_unprivileged_port_start`).
    privileged: bool,
    handle: Handle,
    /// Set for good when the fake stops (dropped or shut down). An operation still pending then
    /// holds the state and applies later: from then on nothing binds and nothing probes.
    stopped: AtomicBool,
    listeners: Mutex<listen::Listeners>,
    health: Mutex<HealthTable>,
    /// Bumped whenever the state changed (operations applied, instances seeded, reset): the
    /// probe supervisor reconciles its targets then.
    applied: watch::Sender<u64>,
    supervisor: Mutex<Option<AbortHandle>>,
    /// Round-robin position per backend service.
    rotation: Mutex<HashMap<Key, usize>>,
    certs: tls::CertCache,
    clients: net::Clients,
}

impl Plane {
    pub(crate) fn new(setup: PlaneSetup, shared: Weak<Shared>) -> Plane {
        Plane {
            shared,
            block: setup.block,
            _claim: setup.claim,
            port_offset: setup.settings.privileged_port_offset,
            probe_interval: setup.settings.probe_interval,
            privileged: setup.privileged,
            handle: setup.handle,
            stopped: AtomicBool::new(false),
            listeners: Mutex::new(listen::Listeners::default()),
            health: Mutex::new(HealthTable::default()),
            applied: watch::Sender::new(0),
            supervisor: Mutex::new(None),
            rotation: Mutex::new(HashMap::new()),
            certs: tls::CertCache::default(),
            clients: net::Clients::new(),
        }
    }

    /// `127.A.B.0`.
    pub(crate) fn block(&self) -> Ipv4Addr {
        self.block
    }

    /// The probe results. Lock order: the state's lock (if held) first.
    pub(crate) fn health(&self) -> MutexGuard<'_, HealthTable> {
        lock(&self.health)
    }

    /// Where the listener of forwarding-rule address `ip`, port `port` listens.
    pub(crate) fn serving_address(&self, ip: &str, port: u16) -> Option<SocketAddr> {
        lock(&self.listeners).serving_address(ip, port)
    }

    /// The port a client reaches forwarding-rule port `port` of `lb_ip` on: where a listener
    /// of that address listens for it, else the privileged-port mapping (for redirects).
    fn public_port(&self, lb_ip: Ipv4Addr, port: u16) -> u16 {
        if let Some(addr) = self.serving_address(&lb_ip.to_string(), port) {
            return addr.port();
        }
        if port < 1024 && !self.privileged {
            port.checked_add(self.port_offset).unwrap_or(port)
        } else {
            port
        }
    }

    /// The next position of the round robin over `len` backends of `service`.
    fn next_index(&self, service: &Key, len: usize) -> usize {
        let mut rotation = lock(&self.rotation);
        let n = rotation.entry(service.clone()).or_insert(0);
        let i = *n % len.max(1);
        *n = n.wrapping_add(1);
        i
    }

    /// Whether the fake stopped: nothing may bind or probe any more.
    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Starts the probe supervisor (not once stopped).
    fn start(&self) {
        let mut supervisor = lock(&self.supervisor);
        if self.is_stopped() {
            return;
        }
        let task = self
            .handle
            .spawn(health::supervise(self.shared.clone(), self.applied.subscribe()));
        *supervisor = Some(task.abort_handle());
    }

    /// Stops for good: probing ends, every listener (and its connections) closes, and no later
    /// change of the state opens one again.
    fn stop(&self) {
        {
            // Set under the listeners' lock: a reconciliation either ran before (and its
            // listeners are closed here) or sees the flag.
            let mut listeners = lock(&self.listeners);
            self.stopped.store(true, Ordering::SeqCst);
            listeners.close_all();
        }
        if let Some(task) = lock(&self.supervisor).take() {
            task.abort();
        }
    }

    /// The admin view, `GET /_fake/dataplane`.
    fn view(&self) -> Value {
        let listeners = lock(&self.listeners).view();
        let health = self.health().view();
        json!({
            "block": self.block.to_string(),
            "privilegedPorts": self.privileged,
            "listeners": listeners,
            "health": health,
        })
    }
}

impl Drop for Plane {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Shared {
    /// After the state changed, still under its lock: listeners follow the forwarding rules
    /// (binding and closing are local system calls, no traffic), so that an operation seen DONE
    /// has its socket listening or closed; and the probe supervisor is told to reconcile. Once
    /// the fake stopped (an operation pending at drop or shutdown applies later), nothing.
    pub(crate) fn data_plane_sync(&self, st: &mut State) {
        let Some(plane) = self.dataplane.as_ref().filter(|p| !p.is_stopped()) else {
            st.listeners_dirty = false;
            return;
        };
        if std::mem::take(&mut st.listeners_dirty) {
            listen::reconcile(plane, &st.store);
        }
        plane.applied.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Starts the data plane's background tasks (the probe supervisor), if it is on.
    pub(crate) fn start_data_plane(&self) {
        if let Some(plane) = &self.dataplane {
            plane.start();
        }
    }

    /// Stops the data plane for good: probes stop, listeners close and stay closed.
    pub(crate) fn stop_data_plane(&self) {
        if let Some(plane) = &self.dataplane {
            plane.stop();
        }
    }

    /// `GET /_fake/dataplane`: `{block, listeners, health}` (`block` null and both lists empty
    /// when the data plane is off).
    pub(crate) fn data_plane_view(&self) -> Value {
        match &self.dataplane {
            Some(plane) => plane.view(),
            None => json!({"block": null, "listeners": [], "health": []}),
        }
    }
}
