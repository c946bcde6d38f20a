//! Pods, Services served through NEGs, and what fake-gce's NEGs hold: shared by the tests of
//! container-native load balancing.

use super::{Harness, PROJECT, TOKEN, WAIT, eventually};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use std::collections::{BTreeMap, BTreeSet};

/// The load balancer's readiness gate (and pod condition), as GKE spells it.
pub const NEG_READY_GATE: &str = "cloud.google.com/load-balancer-neg-ready";

/// A ClusterIP Service `web` (port 80 → container port `http`, 8080, of pods `app: web`)
/// served through NEGs.
pub const WEB_NEG: &str = r#"
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
  annotations: {cloud.google.com/neg: '{"ingress": true}'}
spec:
  type: ClusterIP
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http, protocol: TCP}
"#;

/// An Ingress of our class whose default backend is `web:80`.
pub fn web_ingress(name: &str) -> String {
    super::ingress(name).replace("name: echo", "name: web")
}

/// How [`web_pod`] is made.
#[derive(Clone, Copy, Debug)]
pub struct WebPod<'a> {
    /// Carries the readiness gate [`NEG_READY_GATE`].
    pub gated: bool,
    /// The path of its HTTP readiness probe on port `http`.
    pub probe_path: &'a str,
}

/// A [`WebPod`] carrying the readiness gate.
pub const GATED: WebPod<'static> = WebPod {
    gated: true,
    probe_path: "/healthz",
};

impl Default for WebPod<'_> {
    fn default() -> Self {
        WebPod {
            gated: false,
            probe_path: "/healthz",
        }
    }
}

/// A pod of `app: web` on `node`, container `web` serving 8080 (named `http`), with an HTTP
/// readiness probe every 2 s.
pub fn web_pod(name: &str, node: &str, pod: WebPod<'_>) -> String {
    let gates = if pod.gated {
        format!("\n  readinessGates: [{{conditionType: {NEG_READY_GATE}}}]")
    } else {
        String::new()
    };
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: default, labels: {{app: web}}}}
spec:
  nodeName: {node}{gates}
  containers:
  - name: web
    image: web:1
    ports: [{{containerPort: 8080, name: http}}]
    readinessProbe:
      httpGet: {{path: {path}, port: http}}
      periodSeconds: 2
      timeoutSeconds: 1
"#,
        path = pod.probe_path
    )
}

impl Harness {
    pub fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), "default")
    }

    /// The pod's IP, once its kubelet gave it one.
    pub async fn pod_ip(&self, name: &str) -> String {
        eventually(&format!("{name}'s IP"), WAIT, || async {
            self.pods().get_opt(name).await.ok()??.status?.pod_ip
        })
        .await
    }

    /// The pod's readiness-gate condition: (status, message).
    pub async fn gate(&self, name: &str) -> Option<(String, String)> {
        let pod = self.pods().get_opt(name).await.ok()??;
        pod.status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == NEG_READY_GATE)
            .map(|c| (c.status, c.message.unwrap_or_default()))
    }

    /// The request paths of every HTTP health check, sorted.
    pub fn health_check_paths(&self) -> Vec<String> {
        let mut paths: Vec<String> = self
            .gce_names("healthChecks")
            .iter()
            .filter_map(|n| self.gce_resource("healthChecks", n))
            .filter_map(|hc| hc["httpHealthCheck"]["requestPath"].as_str().map(str::to_owned))
            .collect();
        paths.sort();
        paths
    }

    /// Every endpoint attached to a NEG of fake-gce: (NEG path, ip, port).
    pub fn attached(&self) -> BTreeSet<(String, String, u64)> {
        let state = self.gce.state();
        let mut out = BTreeSet::new();
        for (neg, eps) in state["endpoints"].as_object().into_iter().flatten() {
            for e in eps.as_array().into_iter().flatten() {
                out.insert((
                    neg.clone(),
                    e["ipAddress"].as_str().unwrap_or_default().to_owned(),
                    e["port"].as_u64().unwrap_or_default(),
                ));
            }
        }
        out
    }

    /// The attached endpoints as `ip:port`.
    pub fn attached_addresses(&self) -> BTreeSet<String> {
        self.attached()
            .into_iter()
            .map(|(_, ip, port)| format!("{ip}:{port}"))
            .collect()
    }

    /// Waits until exactly `want` (`ip:port`) is attached.
    pub async fn wait_attached(&self, what: &str, want: &BTreeSet<String>) {
        eventually(what, WAIT, || async {
            (self.attached_addresses() == *want).then_some(())
        })
        .await;
    }

    /// Every endpoint of every NEG as Compute lists it with health, through its API
    /// (`aggregated/networkEndpointGroups`, then `listNetworkEndpoints` with `SHOW`): `ip:port`
    /// → whether a backend service's health check sees it HEALTHY.
    pub async fn neg_health(&self) -> BTreeMap<String, bool> {
        let http = reqwest::Client::new();
        let base = self.gce.base_url();
        let negs: serde_json::Value = http
            .get(format!(
                "{base}projects/{PROJECT}/aggregated/networkEndpointGroups"
            ))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("aggregated list")
            .json()
            .await
            .expect("json");
        let mut out = BTreeMap::new();
        for scoped in negs["items"].as_object().into_iter().flat_map(|m| m.values()) {
            for neg in scoped["networkEndpointGroups"].as_array().into_iter().flatten() {
                let link = neg["selfLink"].as_str().expect("selfLink");
                let url = format!(
                    "{}/listNetworkEndpoints",
                    link.replace("https://www.googleapis.com/compute/v1/", &base)
                );
                let list: serde_json::Value = http
                    .post(url)
                    .bearer_auth(TOKEN)
                    .json(&serde_json::json!({"healthStatus": "SHOW"}))
                    .send()
                    .await
                    .expect("listNetworkEndpoints")
                    .json()
                    .await
                    .expect("json");
                for item in list["items"].as_array().into_iter().flatten() {
                    let ep = &item["networkEndpoint"];
                    let healthy = item["healths"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|h| h["healthState"] == "HEALTHY");
                    let ip = ep["ipAddress"].as_str().unwrap_or_default();
                    out.insert(format!("{ip}:{}", ep["port"]), healthy);
                }
            }
        }
        out
    }
}
