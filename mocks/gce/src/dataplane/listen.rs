//! Listeners: one per global forwarding rule whose target is a target HTTP(S) proxy, per port
//! of its `portRange`, on its `IPAddress`, opened and closed synchronously when the store's
//! forwarding rules change ([`reconcile`], called under the state's lock).

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::{AbortHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use super::{Plane, proxy, tls};
use crate::kinds::Key;
use crate::kinds::{Kind, Scope, parse_ref};
use crate::state::Shared;
use crate::store::Store;

/// Ports served per forwarding rule at most (a `portRange` of a target proxy's rule is one port
/// in practice; a wide range would open thousands of sockets).
const MAX_PORTS_PER_RULE: u32 = 100;

/// What a forwarding rule asks for on one port.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Want {
    rule: Key,
    ip: String,
    port: u16,
    tls: bool,
}

/// Everything the connections of one listener share.
pub(super) struct ConnCtx {
    pub shared: Weak<Shared>,
    /// The forwarding rule, looked up again at each request.
    pub rule: Key,
    /// The forwarding rule's address.
    pub lb_ip: Ipv4Addr,
    /// Set for a target HTTPS proxy.
    pub tls: Option<TlsAcceptor>,
}

/// Why a listener does not listen.
#[derive(Clone, Debug, PartialEq, Eq)]
struct BindError {
    reason: String,
    /// Someone else held the address and port (`AddrInUse`): tried again at each
    /// reconciliation, as the holder may let it go. Anything else (a refused address, ...)
    /// fails the same way every time and stays as it is until the rule changes.
    retry: bool,
}

impl BindError {
    /// A failure that trying again cannot mend.
    fn refused(reason: String) -> BindError {
        BindError { reason, retry: false }
    }
}

impl From<io::Error> for BindError {
    fn from(e: io::Error) -> BindError {
        BindError {
            retry: e.kind() == io::ErrorKind::AddrInUse,
            reason: e.to_string(),
        }
    }
}

/// One listener, open or not.
#[derive(Debug)]
struct Listener {
    want: Want,
    /// Where it listens, or why it does not.
    bound: Result<SocketAddr, BindError>,
    task: Option<AbortHandle>,
    closer: Option<Closer>,
}

impl Listener {
    /// Stops listening now (not when the runtime gets to drop the task), then drops the
    /// accept loop and with it the connections.
    fn close(self) {
        if let Some(c) = self.closer {
            c.close();
        }
        if let Some(t) = self.task {
            t.abort();
        }
    }
}

/// Every listener, by (forwarding rule, port).
#[derive(Debug, Default)]
pub(super) struct Listeners {
    map: BTreeMap<(Key, u16), Listener>,
}

impl Listeners {
    /// Where `ip:port` is served: the listener of that address and port that listens (another
    /// rule may ask for the same and have failed to bind it).
    pub(super) fn serving_address(&self, ip: &str, port: u16) -> Option<SocketAddr> {
        self.map
            .values()
            .filter(|l| l.want.ip == ip && l.want.port == port)
            .find_map(|l| l.bound.as_ref().ok().copied())
    }

    pub(super) fn close_all(&mut self) {
        for (_, l) in std::mem::take(&mut self.map) {
            l.close();
        }
    }

    pub(super) fn view(&self) -> Vec<Value> {
        self.map
            .values()
            .map(|l| {
                let mut v = json!({
                    "forwardingRule": l.want.rule.link(),
                    "ip": l.want.ip,
                    "port": l.want.port,
                    "listening": l.bound.is_ok(),
                    "address": l.bound.as_ref().ok().map(ToString::to_string),
                });
                if let Err(e) = &l.bound {
                    v["error"] = e.reason.clone().into();
                }
                v
            })
            .collect()
    }
}

/// Makes the listeners follow the store's forwarding rules: closes those of rules gone or
/// changed, opens the new ones (and tries again those whose address was in use). Nothing once
/// the plane stopped.
pub(super) fn reconcile(plane: &Plane, store: &Store) {
    let want = wanted(store);
    let mut listeners = super::lock(&plane.listeners);
    if plane.is_stopped() {
        return;
    }
    let stale: Vec<(Key, u16)> = listeners
        .map
        .iter()
        .filter(|(k, l)| want.get(*k) != Some(&l.want))
        .map(|(k, _)| k.clone())
        .collect();
    for k in stale {
        if let Some(l) = listeners.map.remove(&k) {
            l.close();
        }
    }
    for (k, w) in want {
        let before = match listeners.map.get(&k).map(|l| &l.bound) {
            None => None,
            Some(Err(e)) if e.retry => Some(e.clone()),
            Some(_) => continue,
        };
        let l = open(plane, w, before.as_ref());
        listeners.map.insert(k, l);
    }
}

/// What the store's global forwarding rules ask for.
fn wanted(store: &Store) -> BTreeMap<(Key, u16), Want> {
    let mut out = BTreeMap::new();
    let rules = store
        .all()
        .filter(|(coll, _)| coll.kind == Kind::ForwardingRule && coll.scope == Scope::Global);
    for (coll, entries) in rules {
        for (name, entry) in entries {
            let rule = coll.key(name);
            let text = |f: &str| entry.obj.get(f).and_then(Value::as_str);
            let tls = match text("target").and_then(|t| parse_ref(t, &rule.project)) {
                Some(t) if t.kind == Kind::TargetHttpsProxy => true,
                Some(t) if t.kind == Kind::TargetHttpProxy => false,
                _ => continue,
            };
            let (Some(ip), Some((lo, hi))) = (text("IPAddress"), text("portRange").and_then(port_range))
            else {
                continue;
            };
            if u32::from(hi) - u32::from(lo) >= MAX_PORTS_PER_RULE {
                tracing::warn!(
                    "forwarding rule {rule}: serving the first {MAX_PORTS_PER_RULE} ports of {lo}-{hi} only"
                );
            }
            let last = u32::from(lo) + MAX_PORTS_PER_RULE - 1;
            let hi = u16::try_from(last).map_or(hi, |last| hi.min(last));
            for port in lo..=hi {
                let want = Want {
                    rule: rule.clone(),
                    ip: ip.to_string(),
                    port,
                    tls,
                };
                out.insert((rule.clone(), port), want);
            }
        }
    }
    out
}

/// `"80-80"` (as stored) → (80, 80).
fn port_range(s: &str) -> Option<(u16, u16)> {
    let (lo, hi) = s.split_once('-').unwrap_or((s, s));
    let (lo, hi) = (lo.parse().ok()?, hi.parse().ok()?);
    (lo <= hi).then_some((lo, hi))
}

/// Binds and starts serving one listener; a refusal or failure is kept, and logged unless it
/// is the one `before` (of the attempt before this one) already logged.
fn open(plane: &Plane, want: Want, before: Option<&BindError>) -> Listener {
    match bind(plane, &want) {
        Ok((listener, addr, closer)) => {
            let ctx = Arc::new(ConnCtx {
                shared: plane.shared.clone(),
                rule: want.rule.clone(),
                lb_ip: match addr.ip() {
                    std::net::IpAddr::V4(ip) => ip,
                    std::net::IpAddr::V6(_) => Ipv4Addr::LOCALHOST,
                },
                tls: want
                    .tls
                    .then(|| TlsAcceptor::from(tls::server_config(plane.shared.clone(), want.rule.clone()))),
            });
            let task = plane.handle.spawn(accept_loop(listener, ctx));
            tracing::debug!(
                "data plane: {}:{} of {} listens on {addr}",
                want.ip,
                want.port,
                want.rule
            );
            Listener {
                want,
                bound: Ok(addr),
                task: Some(task.abort_handle()),
                closer,
            }
        }
        Err(e) => {
            if before == Some(&e) {
                tracing::debug!(
                    "data plane: still not serving {}:{} of {}: {}",
                    want.ip,
                    want.port,
                    want.rule,
                    e.reason
                );
            } else {
                tracing::warn!(
                    "data plane: not serving {}:{} of {}: {}",
                    want.ip,
                    want.port,
                    want.rule,
                    e.reason
                );
            }
            Listener {
                want,
                bound: Err(e),
                task: None,
                closer: None,
            }
        }
    }
}

/// Binds the listener of `want`: only on an address of the plane's own block (the block is
/// claimed exclusively; `127.0.0.1` or another process's block is refused, whatever a client
/// wrote in `IPAddress` or a reserved address); a port below 1024 that cannot be bound (not
/// root) is bound at `port + offset` instead.
fn bind(plane: &Plane, want: &Want) -> Result<(TcpListener, SocketAddr, Option<Closer>), BindError> {
    let ip: Ipv4Addr = want
        .ip
        .parse()
        .map_err(|_| BindError::refused(format!("{} is not an IPv4 address", want.ip)))?;
    if !ip.is_loopback() {
        return Err(BindError::refused(format!(
            "refused: {ip} is not a loopback address (the data plane listens on 127.0.0.0/8 only)"
        )));
    }
    if !in_block(ip, plane.block) {
        return Err(BindError::refused(format!(
            "refused: {ip} is outside the data plane's block {}/24 (the only addresses it may bind)",
            plane.block
        )));
    }
    let std = bind_port(ip, want.port, plane.port_offset)?;
    std.set_nonblocking(true)?;
    let closer = Closer::of(&std);
    // `from_std` registers the socket with the runtime's reactor: enter it (this may run on a
    // thread of the runtime or not).
    let _runtime = plane.handle.enter();
    let listener = TcpListener::from_std(std)?;
    let addr = listener.local_addr()?;
    Ok((listener, addr, closer))
}

/// Whether `ip` is in the `/24` whose base is `block`.
fn in_block(ip: Ipv4Addr, block: Ipv4Addr) -> bool {
    ip.octets()[..3] == block.octets()[..3]
}

/// Binds `ip:port`, or `ip:port+offset` when `port` is privileged and cannot be bound.
fn bind_port(ip: Ipv4Addr, port: u16, offset: u16) -> io::Result<std::net::TcpListener> {
    match std::net::TcpListener::bind((ip, port)) {
        Err(e) if port < 1024 && e.kind() == io::ErrorKind::PermissionDenied => {
            let mapped = port.checked_add(offset).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("port {port} + {offset} overflows"),
                )
            })?;
            std::net::TcpListener::bind((ip, mapped))
        }
        other => other,
    }
}

/// Whether this process may bind ports below 1024: tried once on the block's claim address
/// (ours), port 80. An address in use also means the permission check passed (the kernel checks
/// it first).
pub(super) fn can_bind_privileged(block: Ipv4Addr) -> bool {
    let [_, a, b, _] = block.octets();
    let ip = Ipv4Addr::new(127, a, b, super::LoopbackBlock::CLAIM_HOST);
    match std::net::TcpListener::bind((ip, 80)) {
        Ok(_) => true,
        Err(e) => e.kind() != io::ErrorKind::PermissionDenied,
    }
}

/// Accepts connections until aborted; each connection is a task of this one, so closing the
/// listener ends them too.
async fn accept_loop(listener: TcpListener, ctx: Arc<ConnCtx>) {
    let mut conns = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        match listener.accept().await {
            Ok((stream, peer)) => {
                conns.spawn(proxy::serve_connection(stream, peer, Arc::clone(&ctx)));
            }
            Err(e) => {
                // Out of descriptors, or shut down: don't spin.
                tracing::debug!("data plane: accept on {:?}: {e}", listener.local_addr());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// A second descriptor of a listening socket, to stop it listening synchronously: `shutdown(2)`
/// on a listening socket makes Linux stop listening at once (new connections are refused),
/// while the descriptor the accept task owns is only closed when the runtime drops that task.
#[derive(Debug)]
struct Closer(
    // The listening socket seen through the one std type that can shut a socket down.
    #[cfg(unix)] std::net::TcpStream,
);

impl Closer {
    #[cfg(unix)]
    fn of(listener: &std::net::TcpListener) -> Option<Closer> {
        let dup = listener.try_clone().ok()?;
        Some(Closer(std::net::TcpStream::from(std::os::fd::OwnedFd::from(dup))))
    }

    #[cfg(not(unix))]
    fn of(_: &std::net::TcpListener) -> Option<Closer> {
        None
    }

    fn close(self) {
        #[cfg(unix)]
        {
            let _ = self.0.shutdown(std::net::Shutdown::Both);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges_as_stored() {
        assert_eq!(port_range("80-80"), Some((80, 80)));
        assert_eq!(port_range("8080-8082"), Some((8080, 8082)));
        assert_eq!(port_range("443"), Some((443, 443)));
        assert_eq!(port_range("90-80"), None);
        assert_eq!(port_range("x"), None);
    }

    #[test]
    fn only_an_address_in_use_is_tried_again() {
        let in_use = BindError::from(io::Error::from(io::ErrorKind::AddrInUse));
        assert!(in_use.retry);
        for kind in [io::ErrorKind::PermissionDenied, io::ErrorKind::AddrNotAvailable] {
            assert!(!BindError::from(io::Error::from(kind)).retry, "{kind:?}");
        }
        assert!(!BindError::refused("no".into()).retry);
    }

    /// A listener of `ip:port` for rule `rule`, bound (at `port`) or not.
    fn listener(rule: &str, ip: &str, port: u16, bound: bool) -> ((Key, u16), Listener) {
        let rule = Key {
            project: "p".into(),
            scope: Scope::Global,
            kind: Kind::ForwardingRule,
            name: rule.into(),
        };
        let want = Want {
            rule: rule.clone(),
            ip: ip.into(),
            port,
            tls: false,
        };
        let bound = match bound {
            true => Ok(SocketAddr::from((ip.parse::<Ipv4Addr>().expect("IPv4"), port))),
            false => Err(BindError::from(io::Error::from(io::ErrorKind::AddrInUse))),
        };
        let l = Listener {
            want,
            bound,
            task: None,
            closer: None,
        };
        ((rule, port), l)
    }

    #[test]
    fn the_serving_address_is_the_one_that_listens() {
        // `a` sorts first and failed; `b` asks for the same address and port, and listens.
        let listeners = Listeners {
            map: BTreeMap::from([
                listener("a", "127.5.6.1", 80, false),
                listener("b", "127.5.6.1", 80, true),
            ]),
        };
        assert_eq!(
            listeners.serving_address("127.5.6.1", 80),
            Some(SocketAddr::from(([127, 5, 6, 1], 80)))
        );
        assert_eq!(listeners.serving_address("127.5.6.1", 81), None);
    }

    #[test]
    fn only_the_block_itself() {
        let block = Ipv4Addr::new(127, 5, 6, 0);
        assert!(in_block(Ipv4Addr::new(127, 5, 6, 1), block));
        assert!(in_block(Ipv4Addr::new(127, 5, 6, 253), block));
        for other in [[127, 0, 0, 1], [127, 5, 7, 1], [127, 6, 6, 1], [10, 5, 6, 1]] {
            assert!(!in_block(Ipv4Addr::from(other), block), "{other:?}");
        }
    }

    #[test]
    fn a_closed_listener_refuses_at_once() {
        let block = super::super::LoopbackBlock::claim().expect("block");
        let listener = std::net::TcpListener::bind((block.ip(1), 0)).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let closer = Closer::of(&listener).expect("dup");
        std::net::TcpStream::connect(addr).expect("listening");
        closer.close();
        if cfg!(target_os = "linux") {
            assert!(std::net::TcpStream::connect(addr).is_err(), "still listening");
        }
        drop(listener);
    }
}
