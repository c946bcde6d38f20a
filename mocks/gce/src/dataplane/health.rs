//! Health checks that probe: every backend service with backends and a health check has its
//! members probed by that check, and the health computed from the probes decides which members
//! get traffic and what `getHealth` reports.
//!
//! A supervisor ([`supervise`]) reconciles the set of probe targets with the store whenever the
//! state changes (and on a slow tick): one task per (backend service, instance, serving port),
//! started at once (the first probe does not wait an interval), told of changed settings,
//! stopped when its target goes.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddrV4;
use std::sync::Weak;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::{Body, Bytes};
use hyper::header::{HOST, USER_AGENT};
use hyper::{Request, StatusCode};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;

use super::backends::{self, Member};
use super::net::{self, Clients, NetError, Wire};
use crate::json::Obj;
use crate::kinds::{Key, Kind, parse_ref};
use crate::state::Shared;
use crate::store::Store;

/// How often the supervisor looks at the store even when told nothing (a safety net: every
/// change it must see bumps it).
const SLOW_TICK: Duration = Duration::from_secs(5);
/// The `User-Agent` of Google's health checkers.
const USER_AGENT_VALUE: &str = "GoogleHC/1.0";
/// How much of a response body a health check with `response` looks at (Compute: "within the
/// first 1024 bytes").
const RESPONSE_WINDOW: usize = 1024;

/// One probe target: a member of a backend service, by the address traffic goes to (a NEG may
/// hold several endpoints of one instance on one port, at different IPs).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct TargetKey {
    pub service: Key,
    pub instance: Key,
    pub ip: String,
    pub port: u16,
}

/// How a health check probes.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Probe {
    /// An HTTP GET that must answer 200.
    Http(Wire),
    /// A TCP connection that must open.
    Tcp,
    /// A TLS handshake that must complete.
    Ssl,
    /// Not modelled (gRPC): always fails, with why.
    Unsupported(String),
}

/// Everything one target's probes need, from the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProbeSpec {
    health_check: Key,
    probe: Probe,
    ip: String,
    /// `None`: the health check names a port the group does not have (fails).
    port: Option<u16>,
    path: String,
    host: Option<String>,
    response: Option<String>,
    interval: Duration,
    timeout: Duration,
    healthy_threshold: u32,
    unhealthy_threshold: u32,
}

impl ProbeSpec {
    /// Whether `other` probes the same thing the same way: only the timing (interval,
    /// timeout) and the thresholds may differ. Anything else (health check, type, address,
    /// port, path, host, expected response) makes it a new target, whose earlier probes say
    /// nothing.
    fn same_target(&self, other: &ProbeSpec) -> bool {
        let ProbeSpec {
            health_check,
            probe,
            ip,
            port,
            path,
            host,
            response,
            interval: _,
            timeout: _,
            healthy_threshold: _,
            unhealthy_threshold: _,
        } = self;
        *health_check == other.health_check
            && *probe == other.probe
            && *ip == other.ip
            && *port == other.port
            && *path == other.path
            && *host == other.host
            && *response == other.response
    }
}

/// The health of one target.
#[derive(Clone, Debug)]
struct TargetHealth {
    spec: ProbeSpec,
    healthy: bool,
    /// Consecutive successes / failures so far.
    successes: u32,
    failures: u32,
    probes: u64,
    last_error: Option<String>,
}

impl TargetHealth {
    /// A new target is UNHEALTHY until `healthyThreshold` probes in a row succeed.
    fn new(spec: ProbeSpec) -> Self {
        TargetHealth {
            spec,
            healthy: false,
            successes: 0,
            failures: 0,
            probes: 0,
            last_error: None,
        }
    }

    fn record(&mut self, result: Result<(), String>) {
        self.probes += 1;
        match result {
            Ok(()) => {
                self.successes = self.successes.saturating_add(1);
                self.failures = 0;
                self.last_error = None;
                if self.successes >= self.spec.healthy_threshold {
                    self.healthy = true;
                }
            }
            Err(e) => {
                self.failures = self.failures.saturating_add(1);
                self.successes = 0;
                self.last_error = Some(e);
                if self.failures >= self.spec.unhealthy_threshold {
                    self.healthy = false;
                }
            }
        }
    }
}

/// The probed health of every target.
#[derive(Debug, Default)]
pub(crate) struct HealthTable {
    targets: BTreeMap<TargetKey, TargetHealth>,
}

impl HealthTable {
    /// Whether the member `instance` of `service`, served at `ip:port`, is HEALTHY; a target
    /// not probed yet is not.
    pub(crate) fn is_healthy(&self, service: &Key, instance: &Key, ip: &str, port: u16) -> bool {
        let key = TargetKey {
            service: service.clone(),
            instance: instance.clone(),
            ip: ip.to_string(),
            port,
        };
        self.targets.get(&key).is_some_and(|t| t.healthy)
    }

    /// Records the outcome of a probe made with `probed`; dropped when the target changed
    /// meanwhile (the probe was of what it was before).
    fn record(&mut self, key: &TargetKey, probed: &ProbeSpec, result: Result<(), String>) {
        if let Some(t) = self.targets.get_mut(key).filter(|t| t.spec.same_target(probed)) {
            t.record(result);
        }
    }

    /// Keeps exactly the targets of `desired`, with their current settings. A new target, or
    /// one whose probe changed (not just its timing or thresholds), starts over UNHEALTHY.
    fn reconcile(&mut self, desired: &BTreeMap<TargetKey, ProbeSpec>) {
        self.targets.retain(|k, _| desired.contains_key(k));
        for (k, spec) in desired {
            match self.targets.get_mut(k) {
                Some(t) if t.spec.same_target(spec) => t.spec = spec.clone(),
                Some(t) => *t = TargetHealth::new(spec.clone()),
                None => {
                    self.targets.insert(k.clone(), TargetHealth::new(spec.clone()));
                }
            }
        }
    }

    /// The admin view: one entry per target.
    pub(crate) fn view(&self) -> Vec<Value> {
        self.targets
            .iter()
            .map(|(k, t)| {
                json!({
                    "backendService": k.service.link(),
                    "healthCheck": t.spec.health_check.link(),
                    "instance": k.instance.link(),
                    "ip": k.ip,
                    "port": k.port,
                    "probePort": t.spec.port,
                    "state": if t.healthy { "HEALTHY" } else { "UNHEALTHY" },
                    "probes": t.probes,
                    "lastError": t.last_error,
                })
            })
            .collect()
    }
}

/// Every target the store asks to probe: the members of each backend service (global or
/// regional) with backends, probed by its first health check.
fn targets(store: &Store, interval_override: Option<Duration>) -> BTreeMap<TargetKey, ProbeSpec> {
    let mut out = BTreeMap::new();
    let services = store.all().filter(|(coll, _)| coll.kind == Kind::BackendService);
    for (coll, entries) in services {
        for (name, entry) in entries {
            let service = coll.key(name);
            let Some((hc_key, hc)) = entry
                .obj
                .get("healthChecks")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .and_then(Value::as_str)
                .and_then(|l| parse_ref(l, &service.project))
                .and_then(|k| store.get(&k).map(|e| (k, &e.obj)))
            else {
                continue;
            };
            let settings = Settings::of(&hc_key, hc, interval_override);
            for m in backends::members(store, &service, &entry.obj) {
                let key = TargetKey {
                    service: service.clone(),
                    instance: m.instance.clone(),
                    ip: m.ip.clone(),
                    port: m.port,
                };
                out.insert(key, settings.spec(&hc_key, &m));
            }
        }
    }
    out
}

/// A health check's settings, before a member gives the address and port.
struct Settings {
    probe: Probe,
    /// `portSpecification` resolved: how the port is chosen.
    port: PortChoice,
    path: String,
    host: Option<String>,
    response: Option<String>,
    interval: Duration,
    timeout: Duration,
    healthy_threshold: u32,
    unhealthy_threshold: u32,
}

/// `portSpecification`.
enum PortChoice {
    Fixed(u16),
    Named(String),
    Serving,
}

impl Settings {
    fn of(key: &Key, hc: &Obj, interval_override: Option<Duration>) -> Settings {
        let int = |o: &Obj, f: &str| o.get(f).and_then(Value::as_u64);
        let text = |o: &Obj, f: &str| o.get(f).and_then(Value::as_str).map(str::to_string);
        let (probe, sub): (Probe, Obj) = if key.kind == Kind::HttpHealthCheck {
            // Legacy HTTP health checks: the settings are at the top level.
            (Probe::Http(Wire::Http), hc.clone())
        } else {
            let ty = text(hc, "type").unwrap_or_default();
            let field = match ty.as_str() {
                "HTTP" => "httpHealthCheck",
                "HTTPS" => "httpsHealthCheck",
                "HTTP2" => "http2HealthCheck",
                "TCP" => "tcpHealthCheck",
                "SSL" => "sslHealthCheck",
                _ => "grpcHealthCheck",
            };
            let probe = match ty.as_str() {
                "TCP" => Probe::Tcp,
                "SSL" => Probe::Ssl,
                t => Wire::parse(t)
                    .map(Probe::Http)
                    .unwrap_or_else(|| Probe::Unsupported(format!("{t} health checks are not modelled"))),
            };
            let sub = hc
                .get(field)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            (probe, sub)
        };
        let port = match text(&sub, "portSpecification").as_deref() {
            Some("USE_SERVING_PORT") => PortChoice::Serving,
            Some("USE_NAMED_PORT") => PortChoice::Named(text(&sub, "portName").unwrap_or_default()),
            // USE_FIXED_PORT, or none: `port`, else `portName` (the API writes the default
            // port when neither is given).
            _ => match (
                int(&sub, "port").and_then(|p| u16::try_from(p).ok()),
                text(&sub, "portName"),
            ) {
                (Some(p), _) => PortChoice::Fixed(p),
                (None, Some(name)) => PortChoice::Named(name),
                (None, None) => PortChoice::Serving,
            },
        };
        let secs = |f: &str, default: u64| Duration::from_secs(int(hc, f).unwrap_or(default));
        // The override replaces the interval only: a probe still has the check's whole
        // `timeoutSec` (probes of one target never overlap, see `probe_loop`).
        let interval = interval_override.unwrap_or_else(|| secs("checkIntervalSec", 5));
        let timeout = secs("timeoutSec", 5);
        let threshold = |f: &str| int(hc, f).and_then(|n| u32::try_from(n).ok()).unwrap_or(2).max(1);
        Settings {
            probe,
            port,
            path: text(&sub, "requestPath").unwrap_or_else(|| "/".to_string()),
            host: text(&sub, "host").filter(|h| !h.is_empty()),
            response: text(&sub, "response").filter(|r| !r.is_empty()),
            interval: interval.max(Duration::from_millis(1)),
            timeout: timeout.max(Duration::from_millis(1)),
            healthy_threshold: threshold("healthyThreshold"),
            unhealthy_threshold: threshold("unhealthyThreshold"),
        }
    }

    fn spec(&self, key: &Key, m: &Member) -> ProbeSpec {
        let port = match &self.port {
            PortChoice::Fixed(p) => Some(*p),
            PortChoice::Serving => Some(m.port),
            PortChoice::Named(name) => m.named_ports.iter().find(|(n, _)| n == name).map(|(_, p)| *p),
        };
        ProbeSpec {
            health_check: key.clone(),
            probe: self.probe.clone(),
            ip: m.ip.clone(),
            port,
            path: self.path.clone(),
            host: self.host.clone(),
            response: self.response.clone(),
            interval: self.interval,
            timeout: self.timeout,
            healthy_threshold: self.healthy_threshold,
            unhealthy_threshold: self.unhealthy_threshold,
        }
    }
}

/// Reconciles probe tasks with the store until the fake goes (or the task is aborted, which
/// drops every probe task with it).
pub(super) async fn supervise(shared: Weak<Shared>, mut applied: watch::Receiver<u64>) {
    let mut tasks = JoinSet::new();
    let mut running: HashMap<TargetKey, (AbortHandle, watch::Sender<ProbeSpec>)> = HashMap::new();
    loop {
        {
            let Some(strong) = shared.upgrade() else {
                return;
            };
            let Some(plane) = strong.dataplane.as_ref().filter(|p| !p.is_stopped()) else {
                return;
            };
            let desired = {
                let st = strong.lock();
                targets(&st.store, plane.probe_interval)
            };
            running.retain(|k, (task, _)| {
                let keep = desired.contains_key(k);
                if !keep {
                    task.abort();
                }
                keep
            });
            plane.health().reconcile(&desired);
            for (k, spec) in desired {
                match running.get(&k) {
                    Some((_, tx)) => {
                        tx.send_if_modified(|cur| {
                            let changed = *cur != spec;
                            if changed {
                                *cur = spec;
                            }
                            changed
                        });
                    }
                    None => {
                        let (tx, rx) = watch::channel(spec);
                        let task = tasks.spawn(probe_loop(shared.clone(), k.clone(), rx));
                        running.insert(k, (task, tx));
                    }
                }
            }
        }
        while tasks.try_join_next().is_some() {}
        tokio::select! {
            changed = applied.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            () = tokio::time::sleep(SLOW_TICK) => {}
        }
    }
}

/// Probes one target: at once, then every interval (at once again when its settings change; a
/// probe under way when its target changes is given up). Probes of one target never overlap: each waits for the previous one to end (answer or
/// `timeoutSec`), so the next starts at the later of the previous start plus the interval and
/// the previous end.
async fn probe_loop(shared: Weak<Shared>, key: TargetKey, mut spec: watch::Receiver<ProbeSpec>) {
    loop {
        let current = spec.borrow_and_update().clone();
        let started = Instant::now();
        {
            let Some(strong) = shared.upgrade() else {
                return;
            };
            let Some(plane) = strong.dataplane.as_ref().filter(|p| !p.is_stopped()) else {
                return;
            };
            // Only the TLS clients are needed while probing: the state stays unlocked. A probe
            // whose target changes meanwhile is given up, and the new target probed at once.
            let outcome = tokio::select! {
                outcome = probe(&plane.clients, &current) => outcome,
                () = target_changed(&mut spec, &current) => continue,
            };
            if let Err(e) = &outcome {
                tracing::trace!("data plane: probe of {} failed: {e}", key.instance);
            }
            plane.health().record(&key, &current, outcome);
        }
        tokio::select! {
            () = tokio::time::sleep_until(started + current.interval) => {}
            changed = spec.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// Resolves once `spec` holds another target than `current` (new timing or thresholds only do
/// not count); never, once the supervisor let go of the target (the loop then ends after this
/// probe).
async fn target_changed(spec: &mut watch::Receiver<ProbeSpec>, current: &ProbeSpec) {
    loop {
        if spec.changed().await.is_err() {
            return std::future::pending().await;
        }
        if !spec.borrow().same_target(current) {
            return;
        }
    }
}

/// One probe: success is what Compute documents for the type (HTTP 200 within the timeout for
/// HTTP, HTTPS and HTTP/2; a connection for TCP; a handshake for SSL).
async fn probe(clients: &Clients, spec: &ProbeSpec) -> Result<(), String> {
    let ip = net::loopback(&spec.ip).map_err(|e| e.to_string())?;
    let port = spec
        .port
        .ok_or("the health check's named port is not on the instance group")?;
    let addr = SocketAddrV4::new(ip, port);
    let attempt = async {
        match &spec.probe {
            Probe::Unsupported(why) => Err(why.clone()),
            Probe::Tcp => net::connect(addr).await.map(drop).map_err(|e| e.to_string()),
            Probe::Ssl => {
                let stream = net::connect(addr).await.map_err(|e| e.to_string())?;
                net::tls(clients, Wire::Https, stream)
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
            Probe::Http(wire) => http_probe(clients, *wire, addr, spec).await,
        }
    };
    tokio::time::timeout(spec.timeout, attempt)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {:?}", spec.timeout)))
}

async fn http_probe(
    clients: &Clients,
    wire: Wire,
    addr: SocketAddrV4,
    spec: &ProbeSpec,
) -> Result<(), String> {
    let host = spec.host.clone().unwrap_or_else(|| addr.ip().to_string());
    let uri = match wire {
        // HTTP/2 carries the authority in the URI (`:authority`).
        Wire::Http2 => format!("https://{host}{}", spec.path),
        _ => spec.path.clone(),
    };
    let mut req = Request::get(uri).header(USER_AGENT, USER_AGENT_VALUE);
    if wire != Wire::Http2 {
        req = req.header(HOST, host);
    }
    let req = req
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("bad health-check request: {e}"))?;
    let resp = net::send(clients, wire, addr, req)
        .await
        .map_err(|e: NetError| e.to_string())?;
    if resp.status() != StatusCode::OK {
        return Err(format!("answered {}", resp.status()));
    }
    let Some(want) = &spec.response else {
        return Ok(());
    };
    // Content-based check: the string must be within the first 1024 bytes of the body.
    let mut body = resp.into_body();
    let mut seen = Vec::new();
    while seen.len() < RESPONSE_WINDOW && !body.is_end_stream() {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    seen.extend_from_slice(&data);
                }
            }
            Some(Err(e)) => return Err(format!("body: {e}")),
            None => break,
        }
    }
    seen.truncate(RESPONSE_WINDOW);
    let found = seen.windows(want.len().max(1)).any(|w| w == want.as_bytes());
    if found {
        Ok(())
    } else {
        Err(format!("response does not contain {want:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::Scope;

    fn spec(healthy: u32, unhealthy: u32) -> ProbeSpec {
        ProbeSpec {
            health_check: Key {
                project: "p".into(),
                scope: Scope::Global,
                kind: Kind::HealthCheck,
                name: "hc".into(),
            },
            probe: Probe::Tcp,
            ip: "127.1.1.1".into(),
            port: Some(80),
            path: "/".into(),
            host: None,
            response: None,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            healthy_threshold: healthy,
            unhealthy_threshold: unhealthy,
        }
    }

    fn target() -> TargetKey {
        let key = |kind, name: &str| Key {
            kind,
            name: name.into(),
            ..spec(1, 1).health_check
        };
        TargetKey {
            service: key(Kind::BackendService, "bs"),
            instance: key(Kind::Instance, "i"),
            ip: "127.1.1.1".into(),
            port: 80,
        }
    }

    /// A table with one target, HEALTHY after a probe of `spec`.
    fn healthy_table(spec: &ProbeSpec) -> HealthTable {
        let mut table = HealthTable::default();
        let desired = BTreeMap::from([(target(), spec.clone())]);
        table.reconcile(&desired);
        table.record(&target(), spec, Ok(()));
        assert!(table.targets[&target()].healthy);
        table
    }

    #[test]
    fn new_timing_or_thresholds_keep_the_health() {
        let before = spec(1, 3);
        let mut table = healthy_table(&before);
        let after = ProbeSpec {
            interval: Duration::from_secs(9),
            timeout: Duration::from_secs(9),
            healthy_threshold: 2,
            unhealthy_threshold: 5,
            ..before
        };
        table.reconcile(&BTreeMap::from([(target(), after.clone())]));
        let t = &table.targets[&target()];
        assert!(t.healthy);
        assert_eq!((t.probes, t.successes), (1, 1));
        assert_eq!(t.spec, after);
    }

    #[test]
    fn a_new_probe_starts_over_unhealthy() {
        let before = spec(1, 3);
        let changes = [
            ProbeSpec {
                port: Some(81),
                ..before.clone()
            },
            ProbeSpec {
                path: "/other".into(),
                ..before.clone()
            },
            ProbeSpec {
                host: Some("h.example.com".into()),
                ..before.clone()
            },
            ProbeSpec {
                probe: Probe::Http(Wire::Http),
                ..before.clone()
            },
            ProbeSpec {
                response: Some("ok".into()),
                ..before.clone()
            },
            ProbeSpec {
                ip: "127.1.1.2".into(),
                ..before.clone()
            },
            ProbeSpec {
                health_check: Key {
                    name: "other".into(),
                    ..before.health_check.clone()
                },
                ..before.clone()
            },
        ];
        for after in changes {
            let mut table = healthy_table(&before);
            table.reconcile(&BTreeMap::from([(target(), after.clone())]));
            let t = &table.targets[&target()];
            assert!(!t.healthy, "{after:?}");
            assert_eq!(t.probes, 0, "{after:?}");
            // A probe of the old target, still under way then, counts for nothing.
            table.record(&target(), &before, Ok(()));
            assert_eq!(table.targets[&target()].probes, 0, "{after:?}");
            table.record(&target(), &after, Ok(()));
            assert!(table.targets[&target()].healthy, "{after:?}");
        }
    }

    #[test]
    fn the_interval_override_leaves_the_timeout_alone() {
        let key = Key {
            kind: Kind::HealthCheck,
            ..spec(1, 1).health_check
        };
        let hc: Obj = serde_json::from_value(json!({
            "type": "HTTP", "checkIntervalSec": 10, "timeoutSec": 7,
            "httpHealthCheck": {"requestPath": "/healthz"},
        }))
        .expect("object");
        let own = Settings::of(&key, &hc, None);
        assert_eq!(
            (own.interval, own.timeout),
            (Duration::from_secs(10), Duration::from_secs(7))
        );
        let fast = Settings::of(&key, &hc, Some(Duration::from_millis(200)));
        assert_eq!(fast.interval, Duration::from_millis(200));
        assert_eq!(
            fast.timeout,
            Duration::from_secs(7),
            "Compute's timeoutSec, not the interval"
        );
    }

    #[test]
    fn thresholds_count_consecutive_probes() {
        let mut t = TargetHealth::new(spec(2, 3));
        assert!(!t.healthy, "UNHEALTHY before any probe");
        t.record(Ok(()));
        assert!(!t.healthy, "one success of two");
        t.record(Err("x".into()));
        t.record(Ok(()));
        assert!(!t.healthy, "a failure restarts the count");
        t.record(Ok(()));
        assert!(t.healthy);
        t.record(Err("x".into()));
        t.record(Err("x".into()));
        assert!(t.healthy, "two failures of three");
        t.record(Err("x".into()));
        assert!(!t.healthy);
        assert_eq!(t.probes, 7);
    }
}
