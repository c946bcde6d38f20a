//! The load balancer's readiness gate on pods (`cloud.google.com/load-balancer-neg-ready`):
//! which gated pods of an endpoint backend to set True or False ([`gate_writes`], pure), which to
//! let go when the backend is no longer served ([`release_writes`], pure), and the paced writes
//! to `pods/status`.
//!
//! A pod's condition turns True once its endpoint is attached and healthy, and then stays True
//! for the pod's life, as ingress-gce's readiness reflector does: taking it back would make the
//! pod unready for the whole cluster because of a load balancer's health check.

use super::context::Context;
use crate::translate::{self, GatedPod, NEG_READY_GATE};
use cloud::EndpointHealth;
use cloud::model::{BackendKey, Endpoint};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{Patch, PatchParams};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

/// Reason of the condition once the endpoint is attached and healthy (ingress-gce's).
pub const GATE_READY: &str = "LoadBalancerNegReady";
/// Reason of the condition while it is not (ingress-gce's).
pub const GATE_NOT_READY: &str = "LoadBalancerNegNotReady";
/// Reason of the condition set True because the pod waited [`GATE_TIMEOUT`] (ingress-gce's).
pub const GATE_TIMED_OUT: &str = "LoadBalancerNegTimeout";
/// How long after its creation a gated pod waits for the load balancer at most: then its
/// condition is set True anyway, so that a pod the load balancer never sees healthy (a wrong
/// probe path, a node outside the load balancer) cannot hold up a rollout for ever. ingress-gce's
/// readiness reflector does the same after the same time (`unreadyTimeout`, 15 minutes).
pub const GATE_TIMEOUT: jiff::SignedDuration = jiff::SignedDuration::from_mins(15);

/// What [`gate_writes`] reads of a gated pod in the store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodGate {
    /// Its current condition of the gate, if it has one.
    pub condition: Option<Current>,
    /// `metadata.creationTimestamp`, for [`GATE_TIMEOUT`].
    pub created: Option<jiff::Timestamp>,
}

/// The pod's current condition of the gate, as the store holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Current {
    pub status: String,
    pub reason: Option<String>,
    pub message: Option<String>,
}

/// One condition to write on a pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GateWrite {
    pub namespace: String,
    pub name: String,
    pub ready: bool,
    pub reason: &'static str,
    pub message: String,
    /// The status differs from the pod's (the transition time moves).
    pub transition: bool,
}

/// Which gated pods to patch, to what: True once attached and seen healthy (`health`, when it
/// was read), or once the pod has waited [`GATE_TIMEOUT`] since its creation (at `now`); False
/// with the reason otherwise; nothing for a pod whose condition already says so, nor for one
/// already True (it stays so). Also how many pods still wait (not True after these writes)
/// while attached: those are worth polling health for.
pub fn gate_writes(
    gated: &[GatedPod],
    health: Option<&BTreeMap<Endpoint, EndpointHealth>>,
    now: jiff::Timestamp,
    read: impl Fn(&GatedPod) -> PodGate,
) -> (Vec<GateWrite>, usize) {
    let mut writes = Vec::new();
    let mut waiting = 0;
    for pod in gated {
        let PodGate { condition, created } = read(pod);
        if condition.as_ref().is_some_and(|c| c.status == "True") {
            continue;
        }
        let timed_out =
            created.is_some_and(|c| c.checked_add(GATE_TIMEOUT).is_ok_and(|deadline| now >= deadline));
        if timed_out {
            writes.push(GateWrite {
                namespace: pod.namespace.clone(),
                name: pod.name.clone(),
                ready: true,
                reason: GATE_TIMED_OUT,
                message: format!(
                    "endpoint {} was not seen healthy in the load balancer within {} minutes of the \
                     pod's creation: set True so that the rollout is not held up for ever",
                    pod.endpoint,
                    GATE_TIMEOUT.as_mins()
                ),
                transition: true,
            });
            continue;
        }
        let seen = health.and_then(|h| {
            h.get(&pod.endpoint).copied().or_else(|| {
                h.iter()
                    .find(|(e, _)| e.ip == pod.endpoint.ip && e.port == pod.endpoint.port)
                    .map(|(_, h)| *h)
            })
        });
        if !pod.attached && condition.is_none() {
            // Not Ready already (the kubelet says the gate's condition does not exist): a write
            // would only explain why, and at start-up there may be many such pods, each write
            // paced; the condition comes once the endpoint is attached.
            continue;
        }
        let (ready, message) = match (pod.attached, seen) {
            (false, _) => (
                false,
                format!(
                    "endpoint {} is not attached to the load balancer: the pod is not ready or has no endpoint yet",
                    pod.endpoint
                ),
            ),
            (true, Some(EndpointHealth::Healthy)) => (
                true,
                format!(
                    "endpoint {} is attached and healthy in the load balancer",
                    pod.endpoint
                ),
            ),
            (true, Some(EndpointHealth::Unhealthy)) => (
                false,
                format!(
                    "endpoint {} is attached but fails the load balancer's health check",
                    pod.endpoint
                ),
            ),
            (true, _) => (
                false,
                format!(
                    "endpoint {} is not healthy in the load balancer yet",
                    pod.endpoint
                ),
            ),
        };
        if !ready && pod.attached {
            waiting += 1;
        }
        let reason = if ready { GATE_READY } else { GATE_NOT_READY };
        let same = condition.as_ref().is_some_and(|c| {
            c.status == "False"
                && c.reason.as_deref() == Some(reason)
                && c.message.as_deref() == Some(&message)
        });
        if same {
            continue;
        }
        writes.push(GateWrite {
            namespace: pod.namespace.clone(),
            name: pod.name.clone(),
            ready,
            reason,
            transition: condition.is_none_or(|c| c.status != if ready { "True" } else { "False" }),
            message,
        });
    }
    (writes, waiting)
}

/// The gated pods of an endpoint backend no load balancer of ours serves any more (its
/// Ingress deleted, or the Service back on node ports): nothing will ever make them healthy in
/// it, so the condition this controller set False (or never set) is set True — as
/// ingress-gce's reflector does for a pod in no NEG. A condition another writer set (its reason
/// is not ours) is left to it.
pub fn release_writes(
    gated: &[GatedPod],
    key: &BackendKey,
    read: impl Fn(&GatedPod) -> PodGate,
) -> Vec<GateWrite> {
    gated
        .iter()
        .filter_map(|pod| {
            let condition = read(pod).condition;
            let ours_or_none = match &condition {
                None => true,
                Some(c) => c.status != "True" && c.reason.as_deref() == Some(GATE_NOT_READY),
            };
            ours_or_none.then(|| GateWrite {
                namespace: pod.namespace.clone(),
                name: pod.name.clone(),
                ready: true,
                reason: GATE_READY,
                message: format!(
                    "Service {}/{} port {} is no longer served straight at its pods by a load balancer of \
                     this controller: nothing to wait for",
                    key.namespace, key.service, key.port
                ),
                transition: true,
            })
        })
        .collect()
}

/// The pod's condition of the gate, as `pod` holds it.
pub fn current_condition(pod: &Pod) -> Option<Current> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == NEG_READY_GATE)
        .map(|c| Current {
            status: c.status.clone(),
            reason: c.reason.clone(),
            message: c.message.clone(),
        })
}

/// Writes what [`gate_writes`] decides, paced; returns how many gated pods still wait for their
/// endpoint's health.
pub(super) async fn write_gates(
    ctx: &Context,
    key: &BackendKey,
    gated: &[GatedPod],
    health: Option<&BTreeMap<Endpoint, EndpointHealth>>,
) -> usize {
    if gated.is_empty() {
        return 0;
    }
    let (writes, waiting) = gate_writes(gated, health, jiff::Timestamp::now(), |p| read_pod(ctx, p));
    patch_conditions(ctx, key, writes).await;
    waiting
}

/// Sets True the gates of the pods of an endpoint backend no longer served (see
/// [`release_writes`]).
pub(super) async fn release_gates(ctx: &Context, key: &BackendKey, nodes: &[cloud::model::Node]) {
    let plan = translate::endpoint_plan(key, &ctx.stores, nodes);
    let writes = release_writes(&plan.gated, key, |p| read_pod(ctx, p));
    if !writes.is_empty() {
        tracing::info!(backend = %key, pods = writes.len(), "releasing readiness gates of a backend no longer served");
    }
    patch_conditions(ctx, key, writes).await;
}

/// What the store holds of a gated pod.
fn read_pod(ctx: &Context, p: &GatedPod) -> PodGate {
    use crate::translate::Objects;
    let Some(pod) = ctx.stores.pod(&p.namespace, &p.name) else {
        return PodGate::default();
    };
    PodGate {
        condition: current_condition(&pod),
        created: pod.metadata.creation_timestamp.as_ref().map(|t| t.0),
    }
}

/// Writes the conditions, paced by `--pod-status-qps`, each only while this replica may write.
async fn patch_conditions(ctx: &Context, key: &BackendKey, writes: Vec<GateWrite>) {
    for w in writes {
        ctx.endpoints.pace().await;
        // Checked after the wait: the lease may have gone meanwhile.
        if ctx.fence.check("writing a pod's readiness condition").is_err() {
            return;
        }
        let result = patch_condition(ctx, &w).await;
        ctx.metrics
            .pod_condition_written(if result.is_ok() { "ok" } else { "error" });
        match result {
            Ok(()) => tracing::debug!(backend = %key, pod = %w.name, ready = w.ready, "readiness gate"),
            // Gone meanwhile: the next sync plans without it.
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => tracing::warn!(backend = %key, pod = %w.name, error = %e, "writing the readiness gate"),
        }
    }
}

async fn patch_condition(ctx: &Context, w: &GateWrite) -> Result<(), kube::Error> {
    let mut condition = serde_json::json!({
        "type": NEG_READY_GATE,
        "status": if w.ready { "True" } else { "False" },
        "reason": w.reason,
        "message": w.message,
    });
    if w.transition {
        condition["lastTransitionTime"] = serde_json::json!(jiff::Timestamp::now().to_string());
    }
    let patch = serde_json::json!({ "status": { "conditions": [condition] } });
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &w.namespace);
    api.patch_status(&w.name, &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .map(|_| ())
}

/// Spaces writes at least `1 / qps` apart.
pub struct Pacer {
    interval: Duration,
    next: tokio::sync::Mutex<Instant>,
}

impl Pacer {
    pub fn new(qps: f64) -> Self {
        Self {
            interval: Duration::from_secs_f64(1.0 / qps.max(0.01)),
            next: tokio::sync::Mutex::new(Instant::now()),
        }
    }

    /// Waits for this caller's turn.
    pub async fn wait(&self) {
        let at = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let at = (*next).max(now);
            *next = at + self.interval;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(ip: &str) -> Endpoint {
        Endpoint {
            zone: "us-central1-a".into(),
            instance: "node-a1".into(),
            ip: ip.into(),
            port: 8080,
        }
    }

    fn gated(name: &str, ip: &str, attached: bool) -> GatedPod {
        GatedPod {
            namespace: "default".into(),
            name: name.into(),
            endpoint: endpoint(ip),
            attached,
            condition: None,
        }
    }

    fn current(status: &str, reason: &str, message: &str) -> Option<Current> {
        Some(Current {
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
        })
    }

    #[test]
    fn which_pods_to_patch_to_what() {
        use EndpointHealth::*;
        let not_healthy_yet = "endpoint 10.0.0.5:8080 is not healthy in the load balancer yet";
        // (what, attached, health read, current condition, written (ready, reason), waiting)
        type Case<'a> = (
            &'a str,
            bool,
            Option<EndpointHealth>,
            Option<Current>,
            Option<(bool, &'a str)>,
            usize,
        );
        let cases: [Case; 9] = [
            (
                "no condition, not attached: nothing to say yet",
                false,
                None,
                None,
                None,
                0,
            ),
            (
                "attached, health not read",
                true,
                None,
                None,
                Some((false, GATE_NOT_READY)),
                1,
            ),
            (
                "attached, not probed yet",
                true,
                Some(Unknown),
                None,
                Some((false, GATE_NOT_READY)),
                1,
            ),
            (
                "attached and healthy",
                true,
                Some(Healthy),
                None,
                Some((true, GATE_READY)),
                0,
            ),
            (
                "healthy after waiting",
                true,
                Some(Healthy),
                current("False", GATE_NOT_READY, not_healthy_yet),
                Some((true, GATE_READY)),
                0,
            ),
            (
                "still waiting, told already: no write",
                true,
                Some(Unknown),
                current("False", GATE_NOT_READY, not_healthy_yet),
                None,
                1,
            ),
            (
                "unhealthy: told why",
                true,
                Some(Unhealthy),
                current("False", GATE_NOT_READY, not_healthy_yet),
                Some((false, GATE_NOT_READY)),
                1,
            ),
            (
                "True stays True",
                false,
                Some(Unhealthy),
                current("True", GATE_READY, "x"),
                None,
                0,
            ),
            (
                "True stays True, attached",
                true,
                Some(Unhealthy),
                current("True", GATE_READY, "x"),
                None,
                0,
            ),
        ];
        for (what, attached, health, now, want, want_waiting) in cases {
            let pods = [gated("p", "10.0.0.5", attached)];
            let health: Option<BTreeMap<Endpoint, EndpointHealth>> =
                health.map(|h| BTreeMap::from([(endpoint("10.0.0.5"), h)]));
            let (writes, waiting) = gate_writes(&pods, health.as_ref(), t0(), |_| PodGate {
                condition: now.clone(),
                created: Some(t0()),
            });
            assert_eq!(
                writes.first().map(|w| (w.ready, w.reason)),
                want,
                "{what}: {writes:?}"
            );
            assert!(writes.len() <= 1, "{what}");
            assert_eq!(waiting, want_waiting, "{what}");
        }
    }

    #[test]
    fn health_is_matched_to_pods_by_endpoint_and_transitions_are_marked() {
        let pods = [
            gated("a", "10.0.0.5", true),
            gated("b", "10.0.0.6", true),
            gated("c", "10.0.0.7", false),
        ];
        // The cloud may name the instance differently: the address decides.
        let mut elsewhere = endpoint("10.0.0.6");
        elsewhere.instance = "other".into();
        let health = BTreeMap::from([
            (endpoint("10.0.0.5"), EndpointHealth::Healthy),
            (elsewhere, EndpointHealth::Healthy),
        ]);
        let (writes, waiting) = gate_writes(&pods, Some(&health), t0(), |p| PodGate {
            condition: (p.name != "b").then(|| Current {
                status: "False".into(),
                reason: None,
                message: None,
            }),
            created: None,
        });
        let got: Vec<(&str, bool, bool)> = writes
            .iter()
            .map(|w| (w.name.as_str(), w.ready, w.transition))
            .collect();
        // c was told False before (by the kubelet's words or ours): it learns why, and its
        // status did not change.
        assert_eq!(got, [("a", true, true), ("b", true, true), ("c", false, false)]);
        assert_eq!(waiting, 0);
        assert!(
            writes[2].message.contains("10.0.0.7:8080 is not attached"),
            "{}",
            writes[2].message
        );
        // A message change alone keeps the transition time.
        let (writes, _) = gate_writes(&pods[2..], None, t0(), |_| PodGate {
            condition: current("False", GATE_NOT_READY, "older words"),
            created: None,
        });
        assert_eq!(writes.len(), 1);
        assert!(!writes[0].transition);
    }

    fn t0() -> jiff::Timestamp {
        "2026-12-01T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_pod_that_waited_too_long_is_let_go() {
        let pods = [gated("p", "10.0.0.5", true), gated("q", "10.0.0.6", false)];
        let created = t0();
        let read = |_: &GatedPod| PodGate {
            condition: current("False", GATE_NOT_READY, "x"),
            created: Some(created),
        };
        let just_before = t0() + jiff::SignedDuration::from_secs(15 * 60 - 1);
        let (writes, waiting) = gate_writes(&pods, None, just_before, read);
        assert!(writes.iter().all(|w| !w.ready), "{writes:?}");
        assert_eq!(waiting, 1);
        let at = t0() + jiff::SignedDuration::from_secs(15 * 60);
        let (writes, waiting) = gate_writes(&pods, None, at, read);
        let got: Vec<(&str, bool, &str)> = writes
            .iter()
            .map(|w| (w.name.as_str(), w.ready, w.reason))
            .collect();
        assert_eq!(got, [("p", true, GATE_TIMED_OUT), ("q", true, GATE_TIMED_OUT)]);
        assert_eq!(waiting, 0, "nothing left to poll for");
        assert!(writes[0].message.contains("15 minutes"), "{}", writes[0].message);
    }

    #[test]
    fn a_backend_no_longer_served_lets_its_pods_go_but_not_others_conditions() {
        let key = BackendKey::new("default", "web", 80);
        let pods = [
            gated("ours", "10.0.0.5", true),
            gated("none", "10.0.0.6", false),
            gated("true", "10.0.0.7", true),
            gated("theirs", "10.0.0.8", true),
        ];
        let writes = release_writes(&pods, &key, |p| PodGate {
            condition: match p.name.as_str() {
                "ours" => current("False", GATE_NOT_READY, "x"),
                "true" => current("True", GATE_READY, "x"),
                "theirs" => current("False", "SomeoneElsesReason", "x"),
                _ => None,
            },
            created: None,
        });
        let got: Vec<(&str, bool)> = writes.iter().map(|w| (w.name.as_str(), w.ready)).collect();
        assert_eq!(got, [("ours", true), ("none", true)]);
        assert!(
            writes[0].message.contains("Service default/web port 80"),
            "{}",
            writes[0].message
        );
    }
}
