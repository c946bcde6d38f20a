//! Backend health on the Ingress, in-process against fake-kube and fake-gce over HTTP: the
//! `ingress.kubernetes.io/backends` annotation, the `Degraded` state and its Events when no
//! instance of a backend is healthy, and what polling costs (cloud reads per backend, not per
//! Ingress; no writes at all while nothing changes).

mod common;

use cloud_lb_controller::annotations as keys;
use common::*;
use fake_gce::{FaultAction, FaultRule, JournalEvent};
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Short passes, and a query rate that never makes a test wait.
const POLL: [&str; 4] = ["--health-interval", "200ms", "--gce-health-qps", "100"];

fn args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--leader-elect=false", "--cluster-uid", CLUSTER_UID];
    args.extend_from_slice(&POLL);
    args.extend_from_slice(extra);
    args
}

/// The `backends` annotation, parsed.
async fn backends(h: &Harness, name: &str) -> BTreeMap<String, String> {
    h.annotation(name, keys::BACKENDS)
        .await
        .and_then(|raw| serde_json::from_str(&raw).ok())
        .unwrap_or_default()
}

/// The state annotation, parsed.
async fn state_of(h: &Harness, name: &str) -> Value {
    h.annotation(name, keys::STATE)
        .await
        .and_then(|raw| serde_json::from_str(&raw).ok())
        .unwrap_or_default()
}

/// Waits until the Ingress shows `health` for `backend` and its state is `state`.
async fn wait_health(h: &Harness, name: &str, backend: &str, health: &str, state: &str) -> Value {
    eventually(&format!("{name}: {backend} {health}, {state}"), WAIT, || async {
        let shown = backends(h, name).await;
        let st = state_of(h, name).await;
        (shown.get(backend).map(String::as_str) == Some(health) && st["state"] == state).then_some(st)
    })
    .await
}

/// The Events about `name` with `reason`.
/// Waits for an Event with `reason` about the Ingress `name`; the first one listed.
async fn first_event(h: &Harness, name: &str, reason: &str) -> Event {
    eventually(&format!("a {reason} event about {name}"), WAIT, || async {
        events_with(h, name, reason).await.into_iter().next()
    })
    .await
}

async fn events_with(h: &Harness, name: &str, reason: &str) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(h.client.clone(), "default");
    api.list(&Default::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter(|e| {
            e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
                && e.reason.as_deref() == Some(reason)
        })
        .collect()
}

/// `getHealth` requests since journal position `since`, by backend service name.
fn health_queries(h: &Harness, since: u64) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for entry in h.gce.journal_since(since).entries {
        if let JournalEvent::Request(r) = entry.event
            && let Some(path) = r.path.strip_suffix("/getHealth")
        {
            assert_eq!(r.method, "POST");
            let service = path.rsplit('/').next().unwrap_or_default().to_owned();
            *counts.entry(service).or_default() += 1;
        }
    }
    counts
}

/// Waits until `passes` more passes asked about `backend` (in both zones) from now on.
async fn wait_passes(h: &Harness, backend: &str, passes: usize) {
    let since = h.gce.journal().next_seq;
    eventually(&format!("{passes} passes over {backend}"), WAIT, || async {
        (health_queries(h, since).get(backend).copied().unwrap_or(0) >= passes * 2).then_some(())
    })
    .await
}

/// Writes to Ingresses since fake-kube's requests were last cleared.
fn ingress_writes(h: &Harness) -> usize {
    h.kube
        .requests()
        .into_iter()
        .filter(|r| r.resource == "ingresses" && matches!(r.verb.as_str(), "patch" | "update" | "create"))
        .count()
}

/// What is logged on one test's thread: a test's runtime runs on one thread, so that is the
/// controller's log (and the fakes'). One global subscriber writes each line to the capture of
/// the thread that logs it, if any: a subscriber per thread (`set_default`) would race with the
/// other tests over which callsites are enabled, and miss lines.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

thread_local! {
    static CAPTURE: std::cell::RefCell<Option<Logs>> = const { std::cell::RefCell::new(None) };
}

/// The global subscriber's output: the capture of the logging thread.
struct ThisThread;

impl std::io::Write for ThisThread {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURE.with(|c| {
            if let Some(logs) = &*c.borrow() {
                logs.0.lock().unwrap().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// Captures what this thread logs from now on, at INFO and above.
    fn capture() -> Logs {
        static GLOBAL: std::sync::Once = std::sync::Once::new();
        GLOBAL.call_once(|| {
            tracing_subscriber::fmt()
                .with_ansi(false)
                .with_max_level(tracing::Level::INFO)
                .with_writer(|| ThisThread)
                .try_init()
                .expect("the only subscriber");
        });
        let logs = Logs::default();
        CAPTURE.with(|c| *c.borrow_mut() = Some(logs.clone()));
        logs
    }

    /// The lines containing `text`.
    fn lines(&self, text: &str) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter(|l| l.contains(text))
            .map(str::to_owned)
            .collect()
    }
}

/// The controller's `/metrics` URL, from its log (it listens on a port of its choosing).
async fn metrics_url(logs: &Logs) -> String {
    eventually("the admin server's address in the log", WAIT, || async {
        logs.lines("admin server listening").iter().find_map(|line| {
            let address = line.split("address=").nth(1)?.split_whitespace().next()?;
            Some(format!("http://{address}/metrics"))
        })
    })
    .await
}

/// `cloud_lb_controller_health_passes_total{result}`, 0 before the first such pass.
async fn health_passes(url: &str, result: &str) -> u64 {
    let text = reqwest::get(url)
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    let series = format!("cloud_lb_controller_health_passes_total{{result=\"{result}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0, |v| v.trim().parse().expect("a count"))
}

fn set_all(h: &Harness, healthy: bool) {
    for (zone, node) in NODES {
        assert!(h.gce.set_instance_health(zone, node, healthy), "{zone}/{node}");
    }
}

#[tokio::test]
async fn no_healthy_instance_degrades_the_ingress_until_one_recovers() {
    let h = Harness::start().await;
    h.apply(ECHO).await;
    h.apply(&ingress("web")).await;
    let ctl = h.spawn_controller(&args(&[]));
    let be = namer().backend("default", "echo", 80);

    // Served, and every node answers its health check.
    let st = wait_health(&h, "web", &be, "HEALTHY", "Ready").await;
    assert_eq!(st["reason"], "Synced");
    assert_eq!(backends(&h, "web").await.len(), 1, "one backend service");

    // Every instance fails its health check: the backend serves nothing.
    set_all(&h, false);
    let st = wait_health(&h, "web", &be, "UNHEALTHY", "Degraded").await;
    assert_eq!(st["reason"], "NoHealthyBackend");
    let message = st["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!(
            "backend {be}: 0 of 3 instances healthy (Service default/echo port 80)"
        )),
        "{message}"
    );
    assert!(h.address("web").await.is_some(), "the address stays");
    let warning = first_event(&h, "web", "NoHealthyBackend").await;
    assert_eq!(warning.type_.as_deref(), Some("Warning"));
    assert!(
        warning.note.as_deref().unwrap_or_default().contains(&be),
        "{warning:?}"
    );

    // Later polls find the same: nothing more is told. (Waited for by counting the polls.)
    wait_passes(&h, &be, 3).await;
    let warnings = events_with(&h, "web", "NoHealthyBackend").await;
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].series.is_none(),
        "told once, not once per poll: {:?}",
        warnings[0].series
    );

    // One instance recovers: the backend is healthy again, and that is told once.
    assert!(h.gce.set_instance_health("us-central1-b", "node-b1", true));
    let st = wait_health(&h, "web", &be, "HEALTHY", "Ready").await;
    assert_eq!(st["reason"], "Synced");
    let recovered = first_event(&h, "web", "BackendRecovered").await;
    assert_eq!(recovered.type_.as_deref(), Some("Normal"));
    assert!(
        recovered
            .note
            .as_deref()
            .unwrap_or_default()
            .contains("1 of 3 instances healthy"),
        "{recovered:?}"
    );
    assert_eq!(events_with(&h, "web", "NoHealthyBackend").await.len(), 1);
    ctl.stop().await;
}

#[tokio::test]
async fn a_backend_is_polled_once_per_pass_whatever_the_number_of_ingresses() {
    let h = Harness::start().await;
    h.apply(ECHO).await;
    h.apply(&ECHO.replace("name: echo,", "name: other,")).await;
    let shared = ["a", "b", "c", "d"];
    for name in shared {
        h.apply(&ingress(name)).await;
    }
    h.apply(&ingress("e").replace("name: echo", "name: other")).await;
    let ctl = h.spawn_controller(&args(&[]));
    let echo = namer().backend("default", "echo", 80);
    let other = namer().backend("default", "other", 80);
    for name in shared {
        wait_health(&h, name, &echo, "HEALTHY", "Ready").await;
    }
    wait_health(&h, "e", &other, "HEALTHY", "Ready").await;

    // Every pass asks each backend service about each of its two groups (one per zone) once: four
    // Ingresses sharing `echo` cost what the one Ingress using `other` does.
    let since = h.gce.journal().next_seq;
    h.gce.reset_stats();
    let counts = eventually("at least five passes", WAIT, || async {
        let counts = health_queries(&h, since);
        let enough = [&echo, &other]
            .iter()
            .all(|b| counts.get(*b).copied().unwrap_or(0) >= 5 * 2);
        enough.then_some(counts)
    })
    .await;
    assert_eq!(counts.len(), 2, "only the backend services in use: {counts:?}");
    let (e, o) = (counts[&echo], counts[&other]);
    // The window may cut a pass at each end: at most two groups' queries apart per end.
    assert!(e.abs_diff(o) <= 2 * 2, "per backend, not per Ingress: {counts:?}");
    let stats = h.gce.stats();
    assert_eq!(stats.total.mutations, 0, "polling only reads: {stats:?}");
    ctl.stop().await;
}

#[tokio::test]
async fn a_steady_state_writes_nothing_not_even_after_a_restart() {
    let h = Harness::start().await;
    h.apply(ECHO).await;
    h.apply(&ingress("web")).await;
    let ctl = h.spawn_controller(&args(&[]));
    let be = namer().backend("default", "echo", 80);
    wait_health(&h, "web", &be, "HEALTHY", "Ready").await;
    let before = h.ingress("web").await.expect("ingress");

    h.kube.clear_requests();
    h.gce.reset_stats();
    wait_passes(&h, &be, 3).await;
    assert_eq!(ingress_writes(&h), 0, "nothing changed: nothing written");
    assert_eq!(h.gce.stats().total.mutations, 0);

    // A restarted controller shows what it has not read yet as the Ingress already does.
    ctl.stop().await;
    h.kube.clear_requests();
    let ctl = h.spawn_controller(&args(&[]));
    wait_passes(&h, &be, 2).await;
    assert_eq!(ingress_writes(&h), 0, "a restart rewrites nothing");
    let after = h.ingress("web").await.expect("ingress");
    assert_eq!(
        after.metadata.annotations, before.metadata.annotations,
        "the same annotations"
    );
    ctl.stop().await;
}

#[tokio::test]
async fn a_restart_while_degraded_writes_nothing_until_health_changes() {
    let h = Harness::start().await;
    h.apply(ECHO).await;
    h.apply(&ingress("web")).await;
    let ctl = h.spawn_controller(&args(&[]));
    let be = namer().backend("default", "echo", 80);
    wait_health(&h, "web", &be, "HEALTHY", "Ready").await;
    set_all(&h, false);
    let st = wait_health(&h, "web", &be, "UNHEALTHY", "Degraded").await;
    let message = st["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains("0 of 3 instances healthy"), "{message}");
    first_event(&h, "web", "NoHealthyBackend").await;
    ctl.stop().await;
    let before = h.ingress("web").await.expect("ingress");

    // The restarted controller has read nothing yet: what it carries over from the Ingress
    // (UNHEALTHY, and the state message counting the instances) is what the Ingress shows, and
    // its first reads find the same.
    h.kube.clear_requests();
    let ctl = h.spawn_controller(&args(&[]));
    wait_passes(&h, &be, 3).await;
    assert_eq!(ingress_writes(&h), 0, "a restart while Degraded rewrites nothing");
    let after = h.ingress("web").await.expect("ingress");
    assert_eq!(after.metadata.annotations, before.metadata.annotations);
    assert_eq!(
        events_with(&h, "web", "NoHealthyBackend").await.len(),
        1,
        "not told again"
    );

    // A change of health is written, once.
    assert!(h.gce.set_instance_health("us-central1-a", "node-a1", true));
    wait_health(&h, "web", &be, "HEALTHY", "Ready").await;
    wait_passes(&h, &be, 2).await;
    assert_eq!(ingress_writes(&h), 1, "one write for one change");
    ctl.stop().await;
}

#[tokio::test]
async fn health_that_cannot_be_read_is_logged_once_and_counted_and_nothing_flaps() {
    let logs = Logs::capture();
    let h = Harness::start().await;
    h.apply(ECHO).await;
    h.apply(&ingress("web")).await;
    let ctl = h.spawn_controller(&args(&[]));
    let be = namer().backend("default", "echo", 80);
    wait_health(&h, "web", &be, "HEALTHY", "Ready").await;
    let metrics = metrics_url(&logs).await;
    assert!(health_passes(&metrics, "ok").await >= 1);
    assert_eq!(health_passes(&metrics, "error").await, 0);

    // The controller's role loses compute.backendServices.get: every getHealth is refused, a
    // failure that does not pass by itself, so the health is Unknown at once.
    let refused = h
        .gce
        .add_fault(FaultRule::new(
            "POST",
            "/getHealth$",
            FaultAction::Error {
                status: 403,
                reason: "forbidden".into(),
                message: "Required 'compute.backendServices.get' permission".into(),
            },
        ))
        .expect("fault");
    wait_health(&h, "web", &be, "Unknown", "Ready").await;
    let ok = health_passes(&metrics, "ok").await;
    let errors = health_passes(&metrics, "error").await;
    assert!(errors >= 1, "the pass that read nothing is an error");

    // Later passes fail alike: counted each time, logged once, nothing written or told.
    h.kube.clear_requests();
    wait_passes(&h, &be, 3).await;
    eventually("three more failed passes counted", WAIT, || async {
        (health_passes(&metrics, "error").await >= errors + 3).then_some(())
    })
    .await;
    assert_eq!(ingress_writes(&h), 0, "nothing flaps");
    assert_eq!(health_passes(&metrics, "ok").await, ok, "no pass is ok");
    let warnings = logs.lines("could not be read");
    assert_eq!(warnings.len(), 1, "logged once, not every pass: {warnings:#?}");
    assert!(
        warnings[0].contains("WARN")
            && warnings[0].contains("HTTP 403 forbidden")
            && warnings[0].contains(&be),
        "{}",
        warnings[0]
    );
    for reason in ["NoHealthyBackend", "BackendRecovered"] {
        assert!(events_with(&h, "web", reason).await.is_empty(), "{reason}");
    }

    // The permission is back: read again, and told so once.
    assert!(h.gce.remove_fault(refused));
    wait_health(&h, "web", &be, "HEALTHY", "Ready").await;
    eventually("read again, in the log", WAIT, || async {
        (!logs.lines("backend health is read again").is_empty()).then_some(())
    })
    .await;
    ctl.stop().await;
}

/// Lists of the backend services among `entries`, and `getHealth` requests, in journal order:
/// `None` for a list, the backend service's name for a query.
fn lists_and_queries(entries: &[fake_gce::JournalEntry]) -> Vec<(u64, Option<String>)> {
    entries
        .iter()
        .filter_map(|entry| match &entry.event {
            JournalEvent::Request(r) if r.method == "GET" && r.path.ends_with("/global/backendServices") => {
                Some((entry.seq, None))
            }
            JournalEvent::Request(r) if r.method == "POST" => {
                let service = r.path.strip_suffix("/getHealth")?.rsplit('/').next()?;
                Some((entry.seq, Some(service.to_owned())))
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_pass_over_many_backends_lists_the_backend_services_once() {
    // 66 backend services: more than one provider call's worth (64).
    let ports: Vec<u16> = (8000..8066).collect();
    let h = Harness::start().await;
    let service_ports: String = ports
        .iter()
        .map(|p| format!("  - {{name: p{p}, port: {p}, targetPort: 8080, protocol: TCP}}\n"))
        .collect();
    h.apply(&format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: many, namespace: default}}\n\
         spec:\n  type: NodePort\n  selector: {{app: many}}\n  ports:\n{service_ports}"
    ))
    .await;
    let paths: String = ports
        .iter()
        .map(|p| {
            format!("      - {{path: /p{p}, pathType: Prefix, backend: {{service: {{name: many, port: {{number: {p}}}}}}}}}\n")
        })
        .collect();
    h.apply(&format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: many, namespace: default}}\n\
         spec:\n  ingressClassName: gce\n  rules:\n  - http:\n      paths:\n{paths}"
    ))
    .await;
    let ctl = h.spawn_controller(&args(&[]));
    let served: Vec<String> = ports
        .iter()
        .map(|p| namer().backend("default", "many", *p))
        .collect();
    // Building 66 backend services takes a while on a loaded machine.
    let long = WAIT * 4;
    let names = eventually("every backend HEALTHY", long, || async {
        let shown = backends(&h, "many").await;
        served
            .iter()
            .all(|b| shown.get(b).map(String::as_str) == Some("HEALTHY"))
            .then_some(shown.into_keys().collect::<Vec<_>>())
    })
    .await;
    assert!(names.len() > 64, "{names:?}");
    // The poller asks in name order, 64 backend services per provider call (the default
    // backend service has no group: it is asked nothing).
    let (first_call, second_call) = names.split_at(64);
    let first = first_call
        .iter()
        .find(|n| served.contains(n))
        .expect("a served backend");

    // One query of a pass's first call takes longer than the provider's staleness bound (10s).
    let since = h.gce.journal().next_seq;
    let slow = FaultRule::new(
        "POST",
        &format!("/backendServices/{first}/getHealth$"),
        FaultAction::Delay { ms: 11_000 },
    );
    h.gce.add_fault(slow.times(1)).expect("fault");
    // Journal positions: the slow query (the first about `first` since the fault); the second
    // call of its pass (the first query about one of `second_call` after it); the next pass
    // (the first query about one of the first call's after that).
    let (calls, slow, second, next) = eventually("the slow pass, and the next one begun", long, || async {
        let calls = lists_and_queries(&h.gce.journal_since(since).entries);
        let after = |from: u64, second: bool| {
            calls
                .iter()
                .find(|(seq, q)| *seq > from && q.as_ref().is_some_and(|q| second_call.contains(q) == second))
                .map(|(seq, _)| *seq)
        };
        let slow = calls
            .iter()
            .find(|(_, q)| q.as_ref() == Some(first))
            .map(|(seq, _)| *seq)?;
        let second = after(slow, true)?;
        let next = after(second, false)?;
        Some((calls.clone(), slow, second, next))
    })
    .await;
    let lists = |from: u64, to: u64| {
        calls
            .iter()
            .filter(|(seq, q)| q.is_none() && (from..to).contains(seq))
            .count()
    };
    assert_eq!(
        lists(slow, second),
        0,
        "the pass's second call uses its list: {calls:?}"
    );
    assert!(
        lists(second, next) <= 1,
        "the next pass lists once at most: {calls:?}"
    );
    ctl.stop().await;
}

#[tokio::test]
async fn with_polling_off_the_backends_show_unknown() {
    let h = Harness::start().await;
    h.apply(ECHO).await;
    h.apply(&ingress("web")).await;
    let ctl = h.spawn_controller(&[
        "--leader-elect=false",
        "--cluster-uid",
        CLUSTER_UID,
        "--health-interval",
        "0",
    ]);
    let be = namer().backend("default", "echo", 80);
    wait_health(&h, "web", &be, "Unknown", "Ready").await;
    set_all(&h, false);
    assert!(health_queries(&h, 0).is_empty(), "never asked");
    ctl.stop().await;
}
