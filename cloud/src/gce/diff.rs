//! What differs between an object as it is and as it should be, in the fields we manage only.
//!
//! Each function returns the names of the differing fields (empty: leave the object alone).
//! Server-filled defaults and fields we do not set never count as a difference, which is what
//! keeps an unchanged load balancer at zero writes.

use super::links::same_resource;
use super::wire;
use std::collections::BTreeSet;

/// Fields of a health check.
pub fn health_check(current: &wire::HealthCheck, desired: &wire::HealthCheck) -> Vec<&'static str> {
    let mut changed = Vec::new();
    if current.kind != desired.kind {
        changed.push("type");
    }
    if current.check_interval_sec != desired.check_interval_sec {
        changed.push("checkIntervalSec");
    }
    if current.timeout_sec != desired.timeout_sec {
        changed.push("timeoutSec");
    }
    if current.healthy_threshold != desired.healthy_threshold {
        changed.push("healthyThreshold");
    }
    if current.unhealthy_threshold != desired.unhealthy_threshold {
        changed.push("unhealthyThreshold");
    }
    match (current.probe(), desired.probe()) {
        (Some(c), Some(d)) => {
            let spec = |p: &wire::HttpProbe| {
                p.port_specification
                    .clone()
                    .unwrap_or_else(|| "USE_FIXED_PORT".into())
            };
            if spec(c) != spec(d) || (spec(d) == "USE_FIXED_PORT" && c.port != d.port) {
                changed.push("port");
            }
            if c.request_path.as_deref().unwrap_or("/") != d.request_path.as_deref().unwrap_or("/") {
                changed.push("requestPath");
            }
            if c.host.as_deref().unwrap_or("") != d.host.as_deref().unwrap_or("") {
                changed.push("host");
            }
        }
        (None, None) => {}
        _ => changed.push("probe"),
    }
    changed
}

/// Fields of a backend service.
pub fn backend_service(current: &wire::BackendService, desired: &wire::BackendService) -> Vec<&'static str> {
    let mut changed = Vec::new();
    if current.protocol.as_deref().unwrap_or("HTTP") != desired.protocol.as_deref().unwrap_or("HTTP") {
        changed.push("protocol");
    }
    if desired.port_name.is_some() && current.port_name != desired.port_name {
        changed.push("portName");
    }
    if current.timeout_sec.unwrap_or(30) != desired.timeout_sec.unwrap_or(30) {
        changed.push("timeoutSec");
    }
    if !same_links(&current.health_checks, &desired.health_checks) {
        changed.push("healthChecks");
    }
    if !same_groups(&current.backends, &desired.backends) {
        changed.push("backends");
    }
    let draining = |s: &wire::BackendService| {
        s.connection_draining
            .as_ref()
            .map_or(0, |d| d.draining_timeout_sec)
    };
    if draining(current) != draining(desired) {
        changed.push("connectionDraining");
    }
    changed
}

/// The same groups (instance groups or NEGs, whatever the link form), each with the balancing
/// we set: its mode, and for a NEG its rate per endpoint and capacity (server defaults, and
/// fields we do not set, are no difference).
fn same_groups(current: &[wire::BackendGroup], desired: &[wire::BackendGroup]) -> bool {
    let path = |g: &wire::BackendGroup| super::links::path_of(&g.group).to_owned();
    let current: std::collections::BTreeMap<String, &wire::BackendGroup> =
        current.iter().map(|g| (path(g), g)).collect();
    desired.len() == current.len()
        && desired.iter().all(|d| {
            current.get(&path(d)).is_some_and(|c| {
                c.balancing_mode.as_deref().unwrap_or_default()
                    == d.balancing_mode.as_deref().unwrap_or_default()
                    && (d.max_rate_per_endpoint.is_none()
                        || c.max_rate_per_endpoint == d.max_rate_per_endpoint)
                    && (d.max_rate_per_endpoint.is_none()
                        || c.capacity_scaler.unwrap_or(1.0) == d.capacity_scaler.unwrap_or(1.0))
            })
        })
}

/// Fields of a URL map.
pub fn url_map(current: &wire::UrlMap, desired: &wire::UrlMap) -> Vec<&'static str> {
    let mut changed = Vec::new();
    if !same_opt_link(&current.default_service, &desired.default_service) {
        changed.push("defaultService");
    }
    if redirect(&current.default_url_redirect) != redirect(&desired.default_url_redirect) {
        changed.push("defaultUrlRedirect");
    }
    let hosts = |m: &wire::UrlMap| -> Vec<(Vec<String>, String)> {
        m.host_rules
            .iter()
            .map(|h| (h.hosts.clone(), h.path_matcher.clone()))
            .collect()
    };
    if hosts(current) != hosts(desired) {
        changed.push("hostRules");
    }
    if current.path_matchers.len() != desired.path_matchers.len()
        || current
            .path_matchers
            .iter()
            .zip(&desired.path_matchers)
            .any(|(c, d)| !same_matcher(c, d))
    {
        changed.push("pathMatchers");
    }
    changed
}

fn same_matcher(c: &wire::PathMatcher, d: &wire::PathMatcher) -> bool {
    c.name == d.name
        && same_opt_link(&c.default_service, &d.default_service)
        && c.path_rules.len() == d.path_rules.len()
        && c.path_rules
            .iter()
            .zip(&d.path_rules)
            .all(|(c, d)| c.paths == d.paths && same_opt_link(&c.service, &d.service))
}

fn redirect(r: &Option<wire::UrlRedirect>) -> Option<(bool, String, bool)> {
    r.as_ref().map(|r| {
        (
            r.https_redirect.unwrap_or(false),
            r.redirect_response_code
                .clone()
                .unwrap_or_else(|| "MOVED_PERMANENTLY_DEFAULT".into()),
            r.strip_query.unwrap_or(false),
        )
    })
}

/// Fields of a target HTTPS proxy, each changed through its own method.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct HttpsProxyChanges {
    pub url_map: bool,
    pub certificates: bool,
    pub ssl_policy: bool,
}

impl HttpsProxyChanges {
    pub fn any(&self) -> bool {
        self.url_map || self.certificates || self.ssl_policy
    }
}

pub fn https_proxy(current: &wire::TargetHttpsProxy, desired: &wire::TargetHttpsProxy) -> HttpsProxyChanges {
    HttpsProxyChanges {
        url_map: !same_resource(&current.url_map, &desired.url_map),
        // Order matters: the first certificate answers clients that send no SNI.
        certificates: current.ssl_certificates.len() != desired.ssl_certificates.len()
            || current
                .ssl_certificates
                .iter()
                .zip(&desired.ssl_certificates)
                .any(|(c, d)| !same_resource(c, d)),
        ssl_policy: !same_opt_link(&current.ssl_policy, &desired.ssl_policy),
    }
}

/// What must change on a forwarding rule.
#[derive(Debug, PartialEq, Eq)]
pub enum RuleChange {
    None,
    /// Only the target: `setTarget`, keeping the rule and its IP.
    Target,
    /// The IP, ports or scheme, which cannot change in place: delete and create.
    Recreate(&'static str),
}

pub fn forwarding_rule(
    current: &wire::ForwardingRule,
    desired: &wire::ForwardingRule,
    desired_ip: Option<&str>,
) -> RuleChange {
    if let (Some(ip), Some(current_ip)) = (desired_ip, current.ip_address.as_deref())
        && ip != current_ip
    {
        return RuleChange::Recreate("IPAddress");
    }
    if normalize_ports(current.port_range.as_deref()) != normalize_ports(desired.port_range.as_deref()) {
        return RuleChange::Recreate("portRange");
    }
    if !same_resource(&current.target, &desired.target) {
        return RuleChange::Target;
    }
    RuleChange::None
}

/// `"80"` and `"80-80"` are the same range.
fn normalize_ports(range: Option<&str>) -> String {
    match range {
        Some(r) if !r.contains('-') => format!("{r}-{r}"),
        Some(r) => r.to_owned(),
        None => String::new(),
    }
}

/// Fields of a firewall rule.
pub fn firewall(current: &wire::Firewall, desired: &wire::Firewall) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let set = |v: &[String]| v.iter().cloned().collect::<BTreeSet<String>>();
    if set(&current.source_ranges) != set(&desired.source_ranges) {
        changed.push("sourceRanges");
    }
    if set(&current.target_tags) != set(&desired.target_tags) {
        changed.push("targetTags");
    }
    let allowed = |f: &wire::Firewall| -> BTreeSet<(String, BTreeSet<String>)> {
        f.allowed
            .iter()
            .map(|a| (a.ip_protocol.to_ascii_lowercase(), set(&a.ports)))
            .collect()
    };
    if allowed(current) != allowed(desired) {
        changed.push("allowed");
    }
    if !same_opt_link(&current.network, &desired.network) {
        changed.push("network");
    }
    changed
}

fn same_links(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same_resource(a, b))
}

fn same_opt_link(a: &Option<String>, b: &Option<String>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => same_resource(a, b),
        (None, None) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(kind: &str, name: &str) -> String {
        format!("https://www.googleapis.com/compute/v1/projects/p/global/{kind}/{name}")
    }

    #[test]
    fn server_defaults_and_link_forms_are_not_changes() {
        let desired = wire::BackendService {
            name: "b".into(),
            protocol: Some("HTTP".into()),
            port_name: Some("port30080".into()),
            timeout_sec: Some(30),
            health_checks: vec![link("healthChecks", "b")],
            connection_draining: Some(wire::ConnectionDraining {
                draining_timeout_sec: 0,
            }),
            ..Default::default()
        };
        let mut current = desired.clone();
        current.health_checks = vec!["projects/p/global/healthChecks/b".into()];
        current.connection_draining = None;
        current.fingerprint = Some("abc=".into());
        current.extra.insert("sessionAffinity".into(), "NONE".into());
        assert!(backend_service(&current, &desired).is_empty());
        current.port_name = Some("port30081".into());
        assert_eq!(backend_service(&current, &desired), vec!["portName"]);
    }

    #[test]
    fn neg_backends_compare_by_path_and_rate() {
        let neg = |link: &str, rate: f64| wire::BackendGroup {
            group: link.into(),
            balancing_mode: Some("RATE".into()),
            max_rate_per_endpoint: Some(rate),
            capacity_scaler: Some(1.0),
            ..Default::default()
        };
        let full = "https://www.googleapis.com/compute/v1/projects/p/zones/z/networkEndpointGroups/n";
        let desired = wire::BackendService {
            backends: vec![neg(full, 1.0)],
            ..Default::default()
        };
        let mut current = desired.clone();
        current.backends = vec![neg("projects/p/zones/z/networkEndpointGroups/n", 1.0)];
        current.backends[0].capacity_scaler = None;
        assert!(backend_service(&current, &desired).is_empty());
        current.backends[0].max_rate_per_endpoint = Some(5.0);
        assert_eq!(backend_service(&current, &desired), vec!["backends"]);
        current.backends = vec![neg(full, 1.0), neg(&full.replace("/z/", "/y/"), 1.0)];
        assert_eq!(backend_service(&current, &desired), vec!["backends"]);
    }

    #[test]
    fn health_check_ignores_the_port_when_the_serving_port_is_probed() {
        let probe = |port, spec: &str| wire::HttpProbe {
            port,
            port_specification: Some(spec.into()),
            request_path: Some("/".into()),
            ..Default::default()
        };
        let hc = |p| wire::HealthCheck {
            kind: "HTTP".into(),
            http_health_check: Some(p),
            ..Default::default()
        };
        assert!(
            health_check(
                &hc(probe(Some(80), "USE_SERVING_PORT")),
                &hc(probe(None, "USE_SERVING_PORT"))
            )
            .is_empty()
        );
        assert_eq!(
            health_check(
                &hc(probe(Some(80), "USE_FIXED_PORT")),
                &hc(probe(Some(81), "USE_FIXED_PORT"))
            ),
            vec!["port"]
        );
        let mut https = hc(probe(None, "USE_SERVING_PORT"));
        https.kind = "HTTPS".into();
        https.https_health_check = https.http_health_check.take();
        assert_eq!(
            health_check(&hc(probe(None, "USE_SERVING_PORT")), &https),
            vec!["type"]
        );
    }

    #[test]
    fn forwarding_rule_changes() {
        let desired = wire::ForwardingRule {
            port_range: Some("80-80".into()),
            target: link("targetHttpProxies", "t"),
            load_balancing_scheme: Some("EXTERNAL_MANAGED".into()),
            ..Default::default()
        };
        let mut current = desired.clone();
        current.port_range = Some("80".into());
        current.ip_address = Some("10.0.0.1".into());
        assert_eq!(
            forwarding_rule(&current, &desired, Some("10.0.0.1")),
            RuleChange::None
        );
        current.target = link("targetHttpProxies", "other");
        assert_eq!(
            forwarding_rule(&current, &desired, Some("10.0.0.1")),
            RuleChange::Target
        );
        assert_eq!(
            forwarding_rule(&current, &desired, Some("10.0.0.2")),
            RuleChange::Recreate("IPAddress")
        );
    }

    #[test]
    fn certificate_order_is_a_change() {
        let p = |certs: &[&str]| wire::TargetHttpsProxy {
            url_map: link("urlMaps", "m"),
            ssl_certificates: certs.iter().map(|c| link("sslCertificates", c)).collect(),
            ..Default::default()
        };
        assert!(!https_proxy(&p(&["a", "b"]), &p(&["a", "b"])).any());
        assert!(https_proxy(&p(&["b", "a"]), &p(&["a", "b"])).certificates);
    }
}
