//! Model → the Compute objects that should exist: a pure function, shared by `ensure` (which
//! applies it) and `plan` (which prints it).

use super::links::{Collection, Links, Scope};
use super::names::{LbPart, Namer};
use super::owner::Owner;
use super::wire;
use crate::model::{
    Backend, BackendKey, BackendProtocol, BackendTarget, HostRule, LoadBalancer, PathMatch, RedirectCode,
    RoutingTable,
};
use std::collections::{BTreeMap, BTreeSet};

/// What the provider was configured with, that shapes every object.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub links: &'a Links,
    pub namer: &'a Namer,
    pub cluster_uid: &'a str,
    /// This controller, unless it is the default one.
    pub controller: Option<&'a str>,
    /// `EXTERNAL_MANAGED` (global external Application LB) or `EXTERNAL` (classic).
    pub scheme: &'a str,
    /// Links of the cluster's instance groups, one per zone.
    pub groups: &'a [String],
    /// The zones of the cluster's nodes, where endpoint backends have a NEG each.
    pub zones: &'a [String],
    /// The link of the nodes' network, which NEGs name.
    pub network: &'a str,
}

/// Balancing of a NEG backend: `RATE` with this many requests per second per endpoint, as
/// ingress-gce sets it (`pkg/backends/neg_linker.go`, `getBackendsForNEGs`: `balancingMode:
/// RATE`, `maxRatePerEndpoint: maxRPS`, `maxRPS = 1` in `pkg/backends/backends.go`). The
/// rate is a capacity for spreading load, not a cap: with every endpoint "full" the load
/// balancer still sends traffic to them.
pub const MAX_RATE_PER_ENDPOINT: f64 = 1.0;

/// The NEG type of endpoint backends: a pod's IP and port on a node VM.
pub const NEG_TYPE: &str = "GCE_VM_IP_PORT";

/// One zonal NEG of an endpoint backend.
#[derive(Clone, Debug)]
pub struct DesiredNeg {
    pub zone: String,
    pub neg: wire::NetworkEndpointGroup,
}

/// A backend service and its health check (none for the default backend, which has no backends).
#[derive(Clone, Debug)]
pub struct DesiredBackend {
    /// The Service port it serves (none for the default backend).
    pub key: Option<BackendKey>,
    pub health_check: Option<wire::HealthCheck>,
    pub service: wire::BackendService,
    /// Whether it reaches its Service port's endpoints (NEGs) rather than its node port.
    pub endpoints: bool,
    /// For an endpoint backend, its NEG in every zone (created before the backend service).
    pub negs: Vec<DesiredNeg>,
}

/// Where the forwarding rules' IP comes from.
#[derive(Clone, Debug)]
pub enum DesiredAddress {
    /// An address this load balancer reserves and releases.
    Reserve(wire::Address),
    /// A user's static address, used as it is.
    Static { name: String, link: String },
}

impl DesiredAddress {
    pub fn link(&self, links: &Links) -> String {
        match self {
            DesiredAddress::Reserve(a) => links.link(&Scope::Global, Collection::Addresses, &a.name),
            DesiredAddress::Static { link, .. } => link.clone(),
        }
    }
}

/// Every Compute object of one load balancer, by kind.
#[derive(Clone, Debug)]
pub struct Desired {
    pub backends: Vec<DesiredBackend>,
    pub url_map: wire::UrlMap,
    pub redirect_map: Option<wire::UrlMap>,
    pub certificates: Vec<wire::SslCertificate>,
    pub address: DesiredAddress,
    pub http_proxy: Option<wire::TargetHttpProxy>,
    pub https_proxy: Option<wire::TargetHttpsProxy>,
    pub http_rule: Option<wire::ForwardingRule>,
    pub https_rule: Option<wire::ForwardingRule>,
}

impl Desired {
    /// Names of the per-load-balancer objects (not the shared backends), for telling stale ones.
    pub fn own_names(&self) -> BTreeSet<&str> {
        let mut names: BTreeSet<&str> = BTreeSet::new();
        names.insert(&self.url_map.name);
        names.extend(self.redirect_map.iter().map(|m| m.name.as_str()));
        names.extend(self.certificates.iter().map(|c| c.name.as_str()));
        if let DesiredAddress::Reserve(a) = &self.address {
            names.insert(&a.name);
        }
        names.extend(self.http_proxy.iter().map(|p| p.name.as_str()));
        names.extend(self.https_proxy.iter().map(|p| p.name.as_str()));
        names.extend(self.http_rule.iter().map(|r| r.name.as_str()));
        names.extend(self.https_rule.iter().map(|r| r.name.as_str()));
        names
    }

    /// The objects in creation order, as `{kind, name, body}`, private keys redacted.
    pub fn to_plan(&self) -> serde_json::Value {
        let mut out = Vec::new();
        let mut push = |kind: &str, value: serde_json::Value| {
            let name = value.get("name").cloned().unwrap_or_default();
            out.push(serde_json::json!({ "kind": kind, "name": name, "body": value }));
        };
        for b in &self.backends {
            if let Some(hc) = &b.health_check {
                push("healthChecks", json(hc));
            }
            for n in &b.negs {
                let mut body = json(&n.neg);
                if let Some(o) = body.as_object_mut() {
                    o.insert("zone".into(), n.zone.clone().into());
                }
                push("networkEndpointGroups", body);
            }
        }
        for b in &self.backends {
            push("backendServices", json(&b.service));
        }
        if let DesiredAddress::Reserve(a) = &self.address {
            push("globalAddresses", json(a));
        }
        for c in &self.certificates {
            let mut c = c.clone();
            c.private_key = Some("<redacted>".to_owned());
            push("sslCertificates", json(&c));
        }
        push("urlMaps", json(&self.url_map));
        if let Some(m) = &self.redirect_map {
            push("urlMaps", json(m));
        }
        if let Some(p) = &self.http_proxy {
            push("targetHttpProxies", json(p));
        }
        if let Some(p) = &self.https_proxy {
            push("targetHttpsProxies", json(p));
        }
        if let Some(r) = &self.http_rule {
            push("globalForwardingRules", json(r));
        }
        if let Some(r) = &self.https_rule {
            push("globalForwardingRules", json(r));
        }
        serde_json::Value::Array(out)
    }
}

fn json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    // Our wire types hold only strings, numbers and maps: serializing them cannot fail.
    serde_json::to_value(value).unwrap_or_default()
}

/// The name of the backend service serving Service port `key` in `lb`: that of its target's
/// kind, unless `serving` says otherwise (the other kind's, while a switch waits for the new
/// target to be healthy).
pub fn serving_name(
    cx: Context<'_>,
    lb: &LoadBalancer,
    serving: &BTreeMap<BackendKey, String>,
    key: &BackendKey,
) -> String {
    if let Some(name) = serving.get(key) {
        return name.clone();
    }
    let endpoints = lb
        .backends
        .iter()
        .any(|b| &b.key == key && b.target == BackendTarget::Endpoints);
    cx.namer.backend_for(key, endpoints)
}

/// Builds the objects of `lb`.
pub fn build(cx: Context<'_>, lb: &LoadBalancer) -> Desired {
    build_serving(cx, lb, &BTreeMap::new())
}

/// Builds the objects of `lb`, its URL map sending the Service ports of `serving` to the
/// backend services it names (see [`serving_name`]).
pub fn build_serving(cx: Context<'_>, lb: &LoadBalancer, serving: &BTreeMap<BackendKey, String>) -> Desired {
    let key = &lb.key;
    let owner =
        Owner::load_balancer(cx.cluster_uid, cx.controller, &key.namespace, &key.name, &key.uid).describe();
    let lb_name = |part| cx.namer.lb(part, &key.namespace, &key.name);
    let global = |collection, name: &str| cx.links.link(&Scope::Global, collection, name);

    let mut backends: Vec<DesiredBackend> = lb.backends.iter().map(|b| backend(cx, b)).collect();
    let default_service = match &lb.routes.default_backend {
        Some(k) => global(Collection::BackendServices, &serving_name(cx, lb, serving, k)),
        None => {
            backends.push(default_backend(cx));
            global(Collection::BackendServices, &cx.namer.default_backend())
        }
    };

    let url_map = url_map(
        cx,
        lb_name(LbPart::UrlMap),
        owner.clone(),
        &lb.routes,
        &default_service,
        &|k| serving_name(cx, lb, serving, k),
    );
    let redirect_map = lb
        .frontends
        .redirect_to_https
        .filter(|_| lb.frontends.http)
        .map(|code| wire::UrlMap {
            name: lb_name(LbPart::RedirectUrlMap),
            description: owner.clone(),
            default_url_redirect: Some(wire::UrlRedirect {
                https_redirect: Some(true),
                redirect_response_code: Some(redirect_code(code).to_owned()),
                strip_query: Some(false),
                ..Default::default()
            }),
            ..Default::default()
        });

    let https = lb.frontends.https.as_ref();
    let certificates: Vec<wire::SslCertificate> = https
        .map(|h| {
            h.certificates
                .iter()
                .map(|c| wire::SslCertificate {
                    name: cx.namer.certificate(&key.namespace, &key.name, &c.sha256),
                    description: owner.clone(),
                    certificate: Some(c.chain_pem.clone()),
                    private_key: Some(c.private_key.expose().to_owned()),
                    ..Default::default()
                })
                .collect()
        })
        .unwrap_or_default();

    let address = match &lb.address {
        crate::model::AddressRequest::Ephemeral => DesiredAddress::Reserve(wire::Address {
            name: lb_name(LbPart::Address),
            description: owner.clone(),
            address_type: Some("EXTERNAL".to_owned()),
            ip_version: Some("IPV4".to_owned()),
            ..Default::default()
        }),
        crate::model::AddressRequest::Static { name } => DesiredAddress::Static {
            name: name.clone(),
            link: global(Collection::Addresses, name),
        },
    };
    let address_link = address.link(cx.links);

    let url_map_link = global(Collection::UrlMaps, &url_map.name);
    let http_proxy = lb.frontends.http.then(|| wire::TargetHttpProxy {
        name: lb_name(LbPart::HttpProxy),
        description: owner.clone(),
        url_map: match &redirect_map {
            Some(m) => global(Collection::UrlMaps, &m.name),
            None => url_map_link.clone(),
        },
        ..Default::default()
    });
    let https_proxy = https.map(|h| wire::TargetHttpsProxy {
        name: lb_name(LbPart::HttpsProxy),
        description: owner.clone(),
        url_map: url_map_link.clone(),
        ssl_certificates: certificates
            .iter()
            .map(|c| global(Collection::SslCertificates, &c.name))
            .chain(
                h.pre_shared_certificates
                    .iter()
                    .map(|n| global(Collection::SslCertificates, n)),
            )
            .collect(),
        ssl_policy: h.ssl_policy.as_ref().map(|p| global(Collection::SslPolicies, p)),
        ..Default::default()
    });

    let rule = |part, proxy: Collection, proxy_name: &str, ports: &str| wire::ForwardingRule {
        name: lb_name(part),
        description: owner.clone(),
        ip_address: Some(address_link.clone()),
        ip_protocol: Some("TCP".to_owned()),
        port_range: Some(ports.to_owned()),
        target: global(proxy, proxy_name),
        load_balancing_scheme: Some(cx.scheme.to_owned()),
        ..Default::default()
    };
    let http_rule = http_proxy
        .as_ref()
        .map(|p| rule(LbPart::HttpRule, Collection::TargetHttpProxies, &p.name, "80-80"));
    let https_rule = https_proxy.as_ref().map(|p| {
        rule(
            LbPart::HttpsRule,
            Collection::TargetHttpsProxies,
            &p.name,
            "443-443",
        )
    });

    Desired {
        backends,
        url_map,
        redirect_map,
        certificates,
        address,
        http_proxy,
        https_proxy,
        http_rule,
        https_rule,
    }
}

/// The health check and backend service of one Service port (and, for an endpoint backend,
/// its NEGs).
pub fn backend(cx: Context<'_>, b: &Backend) -> DesiredBackend {
    let endpoints = b.target == BackendTarget::Endpoints;
    let name = cx.namer.backend_for(&b.key, endpoints);
    let owner = Owner::shared(cx.cluster_uid, Some(b.key.to_string())).describe();
    let hc = &b.health_check;
    let probe = wire::HttpProbe {
        port: hc.port,
        port_specification: Some(
            if hc.port.is_some() {
                "USE_FIXED_PORT"
            } else {
                "USE_SERVING_PORT"
            }
            .to_owned(),
        ),
        request_path: Some(hc.path.clone()),
        host: hc.host.clone(),
        ..Default::default()
    };
    let mut health_check = wire::HealthCheck {
        name: name.clone(),
        description: owner.clone(),
        kind: b.protocol.as_str().to_owned(),
        check_interval_sec: Some(hc.check_interval_sec),
        timeout_sec: Some(hc.timeout_sec),
        healthy_threshold: Some(hc.healthy_threshold),
        unhealthy_threshold: Some(hc.unhealthy_threshold),
        ..Default::default()
    };
    match b.protocol {
        BackendProtocol::Http => health_check.http_health_check = Some(probe),
        BackendProtocol::Https => health_check.https_health_check = Some(probe),
        BackendProtocol::Http2 => health_check.http2_health_check = Some(probe),
    }
    // An endpoint backend: one NEG per zone, all of the backend's name; its endpoints are
    // attached by `sync_endpoints`, its health checks probe each endpoint's own port
    // (`USE_SERVING_PORT` unless the model fixes one).
    let negs: Vec<DesiredNeg> = if endpoints {
        cx.zones
            .iter()
            .map(|zone| DesiredNeg {
                zone: zone.clone(),
                neg: neg(cx, &name, &owner),
            })
            .collect()
    } else {
        Vec::new()
    };
    let groups: Vec<wire::BackendGroup> = if endpoints {
        negs.iter()
            .map(|n| {
                neg_backend(&cx.links.link(
                    &Scope::Zone(n.zone.clone()),
                    Collection::NetworkEndpointGroups,
                    &name,
                ))
            })
            .collect()
    } else {
        cx.groups.iter().map(|g| group(g)).collect()
    };
    let service = wire::BackendService {
        name: name.clone(),
        description: owner,
        protocol: Some(b.protocol.as_str().to_owned()),
        // NEG backends take no named port: traffic goes to each endpoint's port.
        port_name: b.node_port().map(named_port),
        timeout_sec: Some(b.timeout_sec),
        health_checks: vec![cx.links.link(&Scope::Global, Collection::HealthChecks, &name)],
        backends: groups,
        connection_draining: Some(wire::ConnectionDraining {
            draining_timeout_sec: b.connection_draining_timeout_sec,
        }),
        load_balancing_scheme: Some(cx.scheme.to_owned()),
        ..Default::default()
    };
    DesiredBackend {
        key: Some(b.key.clone()),
        health_check: Some(health_check),
        service,
        endpoints,
        negs,
    }
}

/// The zonal NEG named `name` of an endpoint backend (the same in every zone).
pub fn neg(cx: Context<'_>, name: &str, owner: &str) -> wire::NetworkEndpointGroup {
    wire::NetworkEndpointGroup {
        name: name.to_owned(),
        description: owner.to_owned(),
        network_endpoint_type: Some(NEG_TYPE.to_owned()),
        network: Some(cx.network.to_owned()),
        ..Default::default()
    }
}

/// A NEG as a backend of a backend service (no `portName`: the endpoints carry their ports).
pub fn neg_backend(link: &str) -> wire::BackendGroup {
    wire::BackendGroup {
        group: link.to_owned(),
        balancing_mode: Some("RATE".to_owned()),
        max_rate_per_endpoint: Some(MAX_RATE_PER_ENDPOINT),
        capacity_scaler: Some(1.0),
        ..Default::default()
    }
}

/// The backend service for unmatched requests of Ingresses with no default backend: it has no
/// backends, so the load balancer answers such requests itself (with a 5xx status).
pub fn default_backend(cx: Context<'_>) -> DesiredBackend {
    DesiredBackend {
        key: None,
        health_check: None,
        endpoints: false,
        negs: Vec::new(),
        service: wire::BackendService {
            name: cx.namer.default_backend(),
            description: Owner::shared(cx.cluster_uid, None).describe(),
            protocol: Some("HTTP".to_owned()),
            timeout_sec: Some(30),
            load_balancing_scheme: Some(cx.scheme.to_owned()),
            ..Default::default()
        },
    }
}

/// The instance-group named port for a node port.
pub fn named_port(node_port: u16) -> String {
    format!("port{node_port}")
}

fn group(link: &str) -> wire::BackendGroup {
    // UTILIZATION works with every scheme and, used by all our backend services alike, never
    // conflicts on a shared instance group.
    wire::BackendGroup {
        group: link.to_owned(),
        balancing_mode: Some("UTILIZATION".to_owned()),
        capacity_scaler: Some(1.0),
        ..Default::default()
    }
}

fn redirect_code(code: RedirectCode) -> &'static str {
    match code {
        RedirectCode::MovedPermanently => "MOVED_PERMANENTLY_DEFAULT",
        RedirectCode::Found => "FOUND",
        RedirectCode::SeeOther => "SEE_OTHER",
        RedirectCode::TemporaryRedirect => "TEMPORARY_REDIRECT",
        RedirectCode::PermanentRedirect => "PERMANENT_REDIRECT",
    }
}

fn url_map(
    cx: Context<'_>,
    name: String,
    description: String,
    routes: &RoutingTable,
    default_service: &str,
    service_name: &dyn Fn(&BackendKey) -> String,
) -> wire::UrlMap {
    let service = |k: &BackendKey| {
        cx.links
            .link(&Scope::Global, Collection::BackendServices, &service_name(k))
    };
    let mut host_rules = Vec::new();
    let mut path_matchers = Vec::new();
    for rule in routes.hosts.iter().filter(|r| !r.paths.is_empty()) {
        let matcher = format!("host-{}", super::names::hash8(&rule.host.to_string()));
        host_rules.push(wire::HostRule {
            hosts: vec![rule.host.to_string()],
            path_matcher: matcher.clone(),
            ..Default::default()
        });
        let path_rules = path_patterns(rule)
            .into_iter()
            .map(|(paths, backend)| wire::PathRule {
                paths,
                service: Some(service(backend)),
                ..Default::default()
            })
            .collect();
        path_matchers.push(wire::PathMatcher {
            name: matcher,
            default_service: Some(default_service.to_owned()),
            path_rules,
            ..Default::default()
        });
    }
    wire::UrlMap {
        name,
        description,
        default_service: Some(default_service.to_owned()),
        host_rules,
        path_matchers,
        ..Default::default()
    }
}

/// The URL-map path patterns of each path rule of a host: Exact `/a` is `/a`; Prefix `/a` is
/// `/a` and `/a/*` (only `/a/*` when an Exact rule claims `/a`, since Exact wins there); Prefix
/// `/` is `/*`; a glob is itself.
fn path_patterns(rule: &HostRule) -> Vec<(Vec<String>, &crate::model::BackendKey)> {
    let exact: BTreeSet<&str> = rule
        .paths
        .iter()
        .filter(|p| p.kind == PathMatch::Exact)
        .map(|p| p.path.as_str())
        .collect();
    rule.paths
        .iter()
        .map(|p| {
            let patterns = match p.kind {
                PathMatch::Exact | PathMatch::Glob => vec![p.path.clone()],
                PathMatch::Prefix if p.path == "/" => vec!["/*".to_owned()],
                PathMatch::Prefix if exact.contains(p.path.as_str()) => vec![format!("{}/*", p.path)],
                PathMatch::Prefix => vec![p.path.clone(), format!("{}/*", p.path)],
            };
            (patterns, &p.backend)
        })
        .collect()
}
