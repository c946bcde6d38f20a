//! Prometheus metrics (prometheus-client, OpenMetrics text). Labels are low-cardinality:
//! result and error category, cloud operation names, Ingress states — never object names.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CategoryLabels {
    pub category: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CloudLabels {
    pub operation: String,
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HealthLabels {
    pub health: &'static str,
}

/// Every metric the controller exports, prefixed `cloud_lb_controller_`.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ResultLabels, Counter>,
    reconcile_errors: Family<CategoryLabels, Counter>,
    reconcile_duration: Histogram,
    cloud_requests: Family<CloudLabels, Counter>,
    infrastructure_syncs: Family<ResultLabels, Counter>,
    ingresses: Family<StateLabels, Gauge>,
    health_passes: Family<ResultLabels, Counter>,
    backends: Family<HealthLabels, Gauge>,
    endpoint_syncs: Family<ResultLabels, Counter>,
    endpoints_attached: Counter,
    endpoints_detached: Counter,
    pod_conditions: Family<ResultLabels, Counter>,
    leader: Gauge,
    states: Mutex<HashMap<String, &'static str>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("cloud_lb_controller");
        let reconciles = Family::<ResultLabels, Counter>::default();
        registry.register("reconciles", "Ingress reconciles by result", reconciles.clone());
        let reconcile_errors = Family::<CategoryLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Failed reconciles by error category",
            reconcile_errors.clone(),
        );
        let reconcile_duration = Histogram::new(exponential_buckets(0.01, 2.0, 14));
        registry.register(
            "reconcile_duration_seconds",
            "Time per reconcile",
            reconcile_duration.clone(),
        );
        let cloud_requests = Family::<CloudLabels, Counter>::default();
        registry.register(
            "cloud_requests",
            "Cloud API requests by operation and result",
            cloud_requests.clone(),
        );
        let infrastructure_syncs = Family::<ResultLabels, Counter>::default();
        registry.register(
            "infrastructure_syncs",
            "Passes over the cluster-wide resources (instance groups, firewall rule), by result: ok or the error category",
            infrastructure_syncs.clone(),
        );
        let ingresses = Family::<StateLabels, Gauge>::default();
        registry.register("ingresses", "Ingresses served, by state", ingresses.clone());
        let health_passes = Family::<ResultLabels, Counter>::default();
        registry.register(
            "health_passes",
            "Passes of the backend health poller, by result: ok, or error when some backends could not be read \
             (each health query is also counted in cloud_requests, e.g. operation backendServices.getHealth)",
            health_passes.clone(),
        );
        let backends = Family::<HealthLabels, Gauge>::default();
        registry.register(
            "backends",
            "Backend services in use, by their health as last polled: HEALTHY, UNHEALTHY or Unknown",
            backends.clone(),
        );
        let endpoint_syncs = Family::<ResultLabels, Counter>::default();
        registry.register(
            "endpoint_syncs",
            "Syncs of an endpoint backend's endpoints with the cloud, by result: ok, no-backend (not created yet) \
             or the error category",
            endpoint_syncs.clone(),
        );
        let endpoints_attached = Counter::default();
        registry.register(
            "endpoints_attached",
            "Endpoints (pod IP and port) attached to the cloud's endpoint groups",
            endpoints_attached.clone(),
        );
        let endpoints_detached = Counter::default();
        registry.register(
            "endpoints_detached",
            "Endpoints detached from the cloud's endpoint groups",
            endpoints_detached.clone(),
        );
        let pod_conditions = Family::<ResultLabels, Counter>::default();
        registry.register(
            "pod_condition_writes",
            "Writes of the load balancer's readiness-gate condition on pods, by result: ok or error",
            pod_conditions.clone(),
        );
        let leader = Gauge::default();
        registry.register("leader", "1 when this replica is the leader", leader.clone());
        Self {
            registry,
            reconciles,
            reconcile_errors,
            reconcile_duration,
            cloud_requests,
            infrastructure_syncs,
            ingresses,
            health_passes,
            backends,
            endpoint_syncs,
            endpoints_attached,
            endpoints_detached,
            pod_conditions,
            leader,
            states: Mutex::new(HashMap::new()),
        }
    }
}

impl Metrics {
    pub fn reconciled(&self, duration: Duration, error_category: Option<&'static str>) {
        self.reconcile_duration.observe(duration.as_secs_f64());
        let result = if error_category.is_some() { "error" } else { "ok" };
        self.reconciles.get_or_create(&ResultLabels { result }).inc();
        if let Some(category) = error_category {
            self.reconcile_errors
                .get_or_create(&CategoryLabels { category })
                .inc();
        }
    }

    pub fn cloud_request(&self, operation: &str, result: &'static str) {
        self.cloud_requests
            .get_or_create(&CloudLabels {
                operation: operation.to_owned(),
                result,
            })
            .inc();
    }

    /// Counts one pass over the cluster-wide resources (`None`: it succeeded).
    pub fn infrastructure_synced(&self, error_category: Option<&'static str>) {
        let result = error_category.unwrap_or("ok");
        self.infrastructure_syncs
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    /// Records the state of one Ingress (`None`: no longer served).
    pub fn set_state(&self, ingress: &str, state: Option<&'static str>) {
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        match state {
            Some(s) => {
                states.insert(ingress.to_owned(), s);
            }
            None => {
                states.remove(ingress);
            }
        }
        let mut counts: HashMap<&'static str, i64> = HashMap::new();
        for s in states.values() {
            *counts.entry(s).or_default() += 1;
        }
        for state in ["Ready", "Degraded", "Provisioning", "Error"] {
            self.ingresses
                .get_or_create(&StateLabels { state })
                .set(counts.get(state).copied().unwrap_or(0));
        }
    }

    /// Counts one pass of the health poller (`ok` or `error`).
    pub fn health_pass(&self, result: &'static str) {
        self.health_passes.get_or_create(&ResultLabels { result }).inc();
    }

    /// Records how many backends are in each health state.
    pub fn set_backend_health(&self, counts: &[(&'static str, i64)]) {
        for (health, n) in counts {
            self.backends.get_or_create(&HealthLabels { health }).set(*n);
        }
    }

    /// Counts one sync of an endpoint backend (`ok`, `no-backend` or an error category) and the
    /// endpoints it attached and detached.
    pub fn endpoints_synced(&self, result: &'static str, attached: usize, detached: usize) {
        self.endpoint_syncs.get_or_create(&ResultLabels { result }).inc();
        self.endpoints_attached.inc_by(attached as u64);
        self.endpoints_detached.inc_by(detached as u64);
    }

    /// Counts one write of a pod's readiness-gate condition (`ok` or `error`).
    pub fn pod_condition_written(&self, result: &'static str) {
        self.pod_conditions.get_or_create(&ResultLabels { result }).inc();
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_what_was_recorded() {
        let m = Metrics::default();
        m.reconciled(Duration::from_millis(20), None);
        m.reconciled(Duration::from_millis(20), Some("transient"));
        m.cloud_request("urlMaps.insert", "ok");
        m.set_state("default/a", Some("Ready"));
        m.set_state("default/b", Some("Error"));
        m.set_state("default/b", None);
        m.set_leader(true);
        m.infrastructure_synced(Some("transient"));
        m.health_pass("ok");
        m.set_backend_health(&[("HEALTHY", 2), ("UNHEALTHY", 1), ("Unknown", 0)]);
        m.endpoints_synced("ok", 3, 1);
        m.endpoints_synced("no-backend", 0, 0);
        m.pod_condition_written("ok");
        let text = m.encode();
        assert!(
            text.contains(r#"cloud_lb_controller_reconciles_total{result="error"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"cloud_lb_controller_reconcile_errors_total{category="transient"} 1"#));
        assert!(text.contains(
            r#"cloud_lb_controller_cloud_requests_total{operation="urlMaps.insert",result="ok"} 1"#
        ));
        assert!(text.contains(r#"cloud_lb_controller_ingresses{state="Ready"} 1"#));
        assert!(text.contains(r#"cloud_lb_controller_ingresses{state="Error"} 0"#));
        assert!(text.contains("cloud_lb_controller_leader 1"));
        assert!(text.contains(r#"cloud_lb_controller_infrastructure_syncs_total{result="transient"} 1"#));
        assert!(text.contains(r#"cloud_lb_controller_health_passes_total{result="ok"} 1"#));
        assert!(text.contains(r#"cloud_lb_controller_backends{health="UNHEALTHY"} 1"#));
        assert!(text.contains(r#"cloud_lb_controller_endpoint_syncs_total{result="no-backend"} 1"#));
        assert!(text.contains("cloud_lb_controller_endpoints_attached_total 3"));
        assert!(text.contains("cloud_lb_controller_endpoints_detached_total 1"));
        assert!(text.contains(r#"cloud_lb_controller_pod_condition_writes_total{result="ok"} 1"#));
    }
}
