//! A backend's health check from its pods' readiness probe.
//!
//! Precedence, field by field: the Service's health-check annotations
//! ([`super::service_settings`]) > the readiness probe > [`HealthCheck::default()`].
//!
//! The rules follow ingress-gce (`pkg/controller/translator/translator.go`: `getHTTPProbe`,
//! `isSimpleHTTPProbe`, `getProbeScheme`; `pkg/healthchecks` / `pkg/translator/healthchecks.go`:
//! `ApplyProbeSettingsToHC`), with three differences, each written down where it is made:
//! - the pods are the Service's endpoints (EndpointSlice `targetRef`s), not a selector match;
//! - the pod is chosen among those that may take traffic (not terminating; Ready, or held only
//!   by the load balancer's readiness gate with `ContainersReady`, as for the endpoints): the
//!   template (controller) with the most such pods wins, ties to the one holding the newest pod,
//!   and its newest pod decides; only when none may take traffic (a first rollout) does the
//!   newest pod decide (ingress-gce takes the oldest pod). So a rollout that changes the probe
//!   moves the health check once the new template serves as many pods as the old, not before:
//!   a check following the newest pod would switch to a new path (say `/v2/ready`) at the first
//!   new pod, even one crash-looping in a halted rollout, and the old pods, still serving, would
//!   fail it (404) — every endpoint unhealthy. The probe is derived again at every translation,
//!   where ingress-gce reads it only when it creates the health check;
//! - a node-port backend probes at most every [`HealthCheck::default()`] interval instead of
//!   ingress-gce's period + 60 s (see [`interval`]).
//!
//! The probe is used only when it is an `httpGet` probe with no `host`, no header but `Host`,
//! on the very container port the Service port targets (by number or by name), with a scheme
//! that fits the backend's protocol (HTTP for HTTP, HTTPS for HTTPS and HTTP2). Copied: the
//! path (a leading `/` added, as GCE requires), the `Host` header, `timeoutSeconds` and
//! `periodSeconds`; the thresholds stay ours (the probe's count kubelet's probes, not the load
//! balancer's).

use super::service_settings::ServiceSettings;
use super::{HealthCheckOrigin, Objects, endpoints};
use crate::annotations as keys;
use cloud::model::{BackendProtocol, BackendTarget, HealthCheck};
use k8s_openapi::api::core::v1::{Container, ContainerPort, Pod, Probe, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::sync::Arc;

/// Kubernetes' defaults for a probe's `periodSeconds` and `timeoutSeconds` (the API server fills
/// them in; manifests read by `plan` may leave them out).
const K8S_PERIOD_SECONDS: i32 = 10;
const K8S_TIMEOUT_SECONDS: i32 = 1;
/// GCE's bounds for a health check's interval and timeout.
const MAX_SECONDS: u32 = 300;

/// The Service port a backend is built from.
pub(crate) struct PortContext<'a> {
    pub(crate) namespace: &'a str,
    pub(crate) service: &'a str,
    pub(crate) port: &'a ServicePort,
    pub(crate) protocol: BackendProtocol,
    pub(crate) target: BackendTarget,
}

/// The health check of the backend `cx`, and where it came from.
pub(crate) fn health_check(
    objects: &dyn Objects,
    cx: &PortContext<'_>,
    settings: &ServiceSettings,
) -> (HealthCheck, HealthCheckOrigin) {
    let annotated = settings.health_check.clone();
    let defaults = |why: Option<String>| {
        (
            annotated.clone(),
            HealthCheckOrigin::Defaults { why_not_probe: why },
        )
    };
    let Some(found) = probe_pod(objects, cx) else {
        return defaults(None);
    };
    let container = &found.container;
    let Some(probe) = container.readiness_probe.as_ref() else {
        return defaults(None);
    };
    let who = format!(
        "pod {}/{}, container {:?}",
        cx.namespace,
        found.name(),
        container.name
    );
    let derived = match usable(probe, &found.port, cx.protocol) {
        Ok(derived) => derived,
        Err(why) => return defaults(Some(format!("{who}: {why}"))),
    };
    let explicit = settings.explicit;
    if explicit.port {
        return defaults(Some(format!(
            "{who}: the Service's {:?} annotation sends the health check to another port than the \
             readiness probe's",
            keys::HEALTH_CHECK_PORT
        )));
    }
    if explicit.path && explicit.interval && explicit.timeout && (explicit.host || derived.host.is_none()) {
        return defaults(Some(format!(
            "{who}: the Service's health-check annotations set everything the readiness probe would"
        )));
    }

    let mut hc = annotated;
    if !explicit.path {
        hc.path = derived.path;
    }
    if !explicit.host && derived.host.is_some() {
        hc.host = derived.host;
    }
    let period = seconds(probe.period_seconds, K8S_PERIOD_SECONDS);
    if !explicit.interval {
        hc.check_interval_sec = interval(period, cx.target);
    }
    if !explicit.timeout {
        hc.timeout_sec = seconds(probe.timeout_seconds, K8S_TIMEOUT_SECONDS);
    }
    // Timeout at most the interval: an explicit timeout stretches a probe-derived interval,
    // otherwise a probe-derived timeout is cut to the interval.
    if hc.timeout_sec > hc.check_interval_sec {
        if explicit.timeout && !explicit.interval {
            hc.check_interval_sec = hc.timeout_sec;
        } else {
            hc.timeout_sec = hc.check_interval_sec;
        }
    }
    let origin = HealthCheckOrigin::ReadinessProbe {
        pod: format!("{}/{}", cx.namespace, found.name()),
        container: container.name.clone(),
        template: template(&found.pod),
    };
    (hc, origin)
}

/// The health-check interval for a probe period.
///
/// Endpoint backends: the period itself — each probe reaches one pod, as kubelet's own do.
///
/// Node-port backends: never below [`HealthCheck::default()`]'s interval (15 s). Every node
/// answers the load balancer's probes for the node port and kube-proxy forwards each one to some
/// pod, so a short period multiplies into load on every node, and the probe says little about
/// any one pod anyway. ingress-gce adds 60 s to the period for the same reason
/// (`ApplyProbeSettingsToHC`); that would make a dead backend take minutes to leave (three
/// failures of 70 s), so the floor is ours instead.
fn interval(period: u32, target: BackendTarget) -> u32 {
    match target {
        BackendTarget::Endpoints => period,
        BackendTarget::NodePort { .. } => period.max(HealthCheck::default().check_interval_sec),
    }
}

/// A probe's seconds within GCE's bounds (1 to 300).
fn seconds(value: Option<i32>, default: i32) -> u32 {
    u32::try_from(value.unwrap_or(default))
        .unwrap_or(1)
        .clamp(1, MAX_SECONDS)
}

/// What an acceptable probe gives the health check.
struct Derived {
    path: String,
    host: Option<String>,
}

/// The probe's path and host, or why the load balancer cannot use it (in user terms).
fn usable(probe: &Probe, port: &ContainerPort, protocol: BackendProtocol) -> Result<Derived, String> {
    const ONLY: &str = "only an httpGet readiness probe can become the load balancer's health check";
    let Some(get) = probe.http_get.as_ref() else {
        let kind = if probe.exec.is_some() {
            "runs a command (exec)"
        } else if probe.tcp_socket.is_some() {
            "opens a TCP connection (tcpSocket)"
        } else if probe.grpc.is_some() {
            "is a gRPC probe"
        } else {
            "has no handler"
        };
        return Err(format!("the readiness probe {kind}; {ONLY}"));
    };
    if let Some(host) = get.host.as_deref().filter(|h| !h.is_empty()) {
        return Err(format!(
            "the readiness probe sets httpGet.host {host:?}; the load balancer probes the pod's own \
             address (a Host header can be copied instead)"
        ));
    }
    let headers = get.http_headers.as_deref().unwrap_or_default();
    if let Some(other) = headers.iter().find(|h| !h.name.eq_ignore_ascii_case("host")) {
        return Err(format!(
            "the readiness probe sends the header {:?}; the load balancer's health check can send \
             only a Host header",
            other.name
        ));
    }
    if headers.len() > 1 {
        return Err("the readiness probe sends more than one Host header".to_owned());
    }
    let same_port = match &get.port {
        IntOrString::Int(n) => *n == port.container_port,
        IntOrString::String(name) => port.name.as_deref() == Some(name.as_str()),
    };
    if !same_port {
        let probed = match &get.port {
            IntOrString::Int(n) => n.to_string(),
            IntOrString::String(name) => format!("{name:?}"),
        };
        let served = match port.name.as_deref() {
            Some(name) => format!("{} ({name:?})", port.container_port),
            None => port.container_port.to_string(),
        };
        return Err(format!(
            "the readiness probe checks port {probed}, not the port the Service sends traffic to, {served}"
        ));
    }
    let scheme = get.scheme.as_deref().unwrap_or("HTTP");
    let wanted = match protocol {
        BackendProtocol::Http => "HTTP",
        BackendProtocol::Https | BackendProtocol::Http2 => "HTTPS",
    };
    if !scheme.eq_ignore_ascii_case(wanted) {
        return Err(format!(
            "the readiness probe uses {scheme} but the load balancer speaks {} to this port",
            protocol.as_str()
        ));
    }
    let path = get.path.as_deref().unwrap_or_default();
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    let host = headers.first().map(|h| h.value.clone());
    Ok(Derived { path, host })
}

/// A pod behind the Service port, its container serving the port and that container port.
struct Found {
    pod: Arc<Pod>,
    container: Container,
    port: ContainerPort,
}

impl Found {
    /// The first container (in spec order) declaring the port `target` names, if any.
    fn new(pod: Arc<Pod>, target: &IntOrString) -> Option<Self> {
        let (container, port) = pod.spec.as_ref()?.containers.iter().find_map(|container| {
            let ports = container.ports.as_deref().unwrap_or_default();
            let port = ports.iter().find(|p| match target {
                IntOrString::Int(n) => p.container_port == *n,
                IntOrString::String(name) => p.name.as_deref() == Some(name.as_str()),
            })?;
            Some((container.clone(), port.clone()))
        })?;
        Some(Self { pod, container, port })
    }

    fn name(&self) -> &str {
        self.pod.metadata.name.as_deref().unwrap_or_default()
    }
}

/// The pod whose readiness probe the health check follows, among the Service's endpoints (any
/// address type) whose container declares the port the Service port targets (`targetPort`, by
/// number or by name; the port number when unset):
///
/// - among the pods that may take traffic ([`endpoints::may_serve`], as for the endpoints the
///   load balancer is given): the pods are grouped by template (their controller, see
///   [`template`]; a pod without one is a group of its own), the group with the most such pods
///   wins (ties to the group holding the newest pod), and within it the newest pod;
/// - when none may take traffic (a first rollout), the newest pod.
///
/// "Newest": latest `creationTimestamp`, ties to the smallest name.
fn probe_pod(objects: &dyn Objects, cx: &PortContext<'_>) -> Option<Found> {
    let target = cx
        .port
        .target_port
        .clone()
        .unwrap_or(IntOrString::Int(cx.port.port));
    // Pod name → whether one of its listings may take traffic.
    let mut listed: BTreeMap<String, bool> = BTreeMap::new();
    for slice in objects.endpoint_slices(cx.namespace, cx.service) {
        for endpoint in &slice.endpoints {
            let Some(r) = endpoint.target_ref.as_ref() else {
                continue;
            };
            let same_namespace = r.namespace.as_deref().is_none_or(|ns| ns == cx.namespace);
            if let (Some("Pod"), true, Some(name)) = (r.kind.as_deref(), same_namespace, r.name.as_deref()) {
                let pod = objects.pod(cx.namespace, name);
                let serving = endpoints::may_serve(endpoint, pod.as_deref());
                *listed.entry(name.to_owned()).or_default() |= serving;
            }
        }
    }
    let (serving, waiting): (Vec<_>, Vec<_>) = listed
        .into_iter()
        .filter_map(|(name, serving)| {
            Some((Found::new(objects.pod(cx.namespace, &name)?, &target)?, serving))
        })
        .partition(|(_, serving)| *serving);
    if serving.is_empty() {
        return waiting.into_iter().map(|(found, _)| found).max_by(newer);
    }
    let mut groups: BTreeMap<Group, (usize, Found)> = BTreeMap::new();
    for (found, _) in serving {
        let group = match template(&found.pod) {
            Some(template) => Group::Template(template),
            None => Group::Pod(found.name().to_owned()),
        };
        match groups.entry(group) {
            Entry::Vacant(e) => {
                e.insert((1, found));
            }
            Entry::Occupied(mut e) => {
                let (count, newest) = e.get_mut();
                *count += 1;
                if newer(&found, newest).is_gt() {
                    *newest = found;
                }
            }
        }
    }
    groups
        .into_values()
        .max_by(|(a_count, a), (b_count, b)| a_count.cmp(b_count).then_with(|| newer(a, b)))
        .map(|(_, found)| found)
}

/// The pods that stand for one template: those of one controller, or a pod without one.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Group {
    Template(String),
    Pod(String),
}

/// `Greater` when `a` is newer than `b`: created later, or at the same time with a smaller name.
fn newer(a: &Found, b: &Found) -> Ordering {
    let created = |f: &Found| f.pod.metadata.creation_timestamp.clone();
    created(a).cmp(&created(b)).then_with(|| b.name().cmp(a.name()))
}

/// The pod's controller as `Kind/name` (e.g. `ReplicaSet/web-7d9f`): the template the pod
/// stands for.
fn template(pod: &Pod) -> Option<String> {
    let owner = pod
        .metadata
        .owner_references
        .as_deref()?
        .iter()
        .find(|o| o.controller == Some(true))?;
    Some(format!("{}/{}", owner.kind, owner.name))
}
