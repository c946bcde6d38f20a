//! Deterministic names for every cloud resource.
//!
//! Scheme (all names ≤ 63 characters, matching `[a-z]([-a-z0-9]*[a-z0-9])?`):
//!
//! | resource | name |
//! |---|---|
//! | per load balancer | `clb-<c8>-<kind>-<namespace>-<name>-<h8>`, kind `um` URL map, `rm` redirect URL map, `tp` HTTP proxy, `ts` HTTPS proxy, `fr` HTTP rule, `fs` HTTPS rule, `ad` address |
//! | certificate | `clb-<c8>-cr-<h8>-<certificate sha256, 16 hex>` |
//! | backend service and its health check | `clb-<c8>-be-<namespace>-<service>-<port>-<b8>` |
//! | endpoint backend: backend service, health check and zonal NEGs | `clb-<c8>-ne-<namespace>-<service>-<port>-<b8>` |
//! | backend for unmatched requests | `clb-<c8>-be-default` |
//! | instance group (one per zone) | `clb-<c8>-ig` |
//! | firewall rule | `clb-<c8>-fw` |
//!
//! `c8` is 8 base-36 characters of the SHA-256 of the cluster UID, so two clusters in one project
//! never collide; `h8` is the same of `namespace/name` (of `controller|namespace/name` for a
//! controller other than the default one, so that two controllers never share a load balancer's
//! names), and `b8` of `namespace/service:port`, so
//! names stay unique when the readable part is shortened to fit (the namespace and name share
//! what is left of the 63 characters, each keeping at least its share). Names alone never decide
//! ownership: the `description` does (see [`super::owner`]).

use sha2::{Digest, Sha256};

/// The longest name the Compute API accepts.
pub const MAX_LEN: usize = 63;

/// Every name this controller gives starts with this.
pub const PREFIX: &str = "clb";

/// Kinds of per-load-balancer resources, with their two-letter code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LbPart {
    UrlMap,
    RedirectUrlMap,
    HttpProxy,
    HttpsProxy,
    HttpRule,
    HttpsRule,
    Address,
}

impl LbPart {
    fn code(self) -> &'static str {
        match self {
            LbPart::UrlMap => "um",
            LbPart::RedirectUrlMap => "rm",
            LbPart::HttpProxy => "tp",
            LbPart::HttpsProxy => "ts",
            LbPart::HttpRule => "fr",
            LbPart::HttpsRule => "fs",
            LbPart::Address => "ad",
        }
    }
}

/// Names for one cluster (and one controller of it).
#[derive(Clone, Debug)]
pub struct Namer {
    cluster: String,
    /// The controller's name, unless it is the default one.
    controller: Option<String>,
}

impl Namer {
    pub fn new(cluster_uid: &str) -> Self {
        Self {
            cluster: hash8(cluster_uid),
            controller: None,
        }
    }

    /// Names for the load balancers of `controller` (`None`: the default one).
    pub fn for_controller(mut self, controller: Option<&str>) -> Self {
        self.controller = controller.map(str::to_owned);
        self
    }

    /// The hash of a load balancer's key in its names.
    fn lb_hash(&self, namespace: &str, name: &str) -> String {
        match &self.controller {
            None => hash8(&format!("{namespace}/{name}")),
            Some(c) => hash8(&format!("{c}|{namespace}/{name}")),
        }
    }

    /// The 8-character tag of this cluster in every name.
    pub fn cluster_tag(&self) -> &str {
        &self.cluster
    }

    /// A `filter` expression matching the names of every resource of this cluster.
    pub fn cluster_filter(&self) -> String {
        format!("name eq {PREFIX}-{}-.*", self.cluster)
    }

    /// The name of one part of the load balancer of Ingress `namespace/name`.
    pub fn lb(&self, part: LbPart, namespace: &str, name: &str) -> String {
        let hash = self.lb_hash(namespace, name);
        let head = format!("{PREFIX}-{}-{}-", self.cluster, part.code());
        let room = MAX_LEN - head.len() - 1 - hash.len() - 1;
        let (ns, n) = fit_pair(&sanitize(namespace), &sanitize(name), room);
        format!("{head}{ns}-{n}-{hash}")
    }

    /// The name of a certificate of the load balancer of `namespace/name`.
    pub fn certificate(&self, namespace: &str, name: &str, sha256_hex: &str) -> String {
        let lb = self.lb_hash(namespace, name);
        let content: String = sha256_hex.chars().take(16).collect();
        format!("{PREFIX}-{}-cr-{lb}-{content}", self.cluster)
    }

    /// The name of the backend service (and health check) of a Service port reached through
    /// its node port (instance groups).
    pub fn backend(&self, namespace: &str, service: &str, port: u16) -> String {
        self.service_port("be", namespace, service, port)
    }

    /// The name of the backend service, health check and zonal network endpoint groups (one
    /// per zone, all of this name) of a Service port reached straight at its endpoints. Apart
    /// from [`Namer::backend`] (`ne` for `be`), so that switching a Service port between node
    /// port and endpoints builds a second backend service and moves the URL map to it, never
    /// turning one backend service from one kind of backend into the other (Compute refuses a
    /// backend service mixing instance groups and NEGs). The NEGs share the backend service's
    /// name, as ingress-gce's do (`pkg/utils/namer`, `NEG`).
    pub fn endpoint_backend(&self, namespace: &str, service: &str, port: u16) -> String {
        self.service_port("ne", namespace, service, port)
    }

    /// The name of the backend of a Service port for the given kind of target.
    pub fn backend_for(&self, key: &crate::model::BackendKey, endpoints: bool) -> String {
        if endpoints {
            self.endpoint_backend(&key.namespace, &key.service, key.port)
        } else {
            self.backend(&key.namespace, &key.service, key.port)
        }
    }

    fn service_port(&self, code: &str, namespace: &str, service: &str, port: u16) -> String {
        let hash = hash8(&format!("{namespace}/{service}:{port}"));
        let head = format!("{PREFIX}-{}-{code}-", self.cluster);
        let port = port.to_string();
        let room = MAX_LEN - head.len() - 1 - port.len() - 1 - hash.len() - 1;
        let (ns, svc) = fit_pair(&sanitize(namespace), &sanitize(service), room);
        format!("{head}{ns}-{svc}-{port}-{hash}")
    }

    /// The backend service answering requests no rule matches when an Ingress has no default.
    pub fn default_backend(&self) -> String {
        format!("{PREFIX}-{}-be-default", self.cluster)
    }

    /// The unmanaged instance group holding the cluster's nodes, in every zone.
    pub fn instance_group(&self) -> String {
        format!("{PREFIX}-{}-ig", self.cluster)
    }

    /// The firewall rule letting health checks and load balancers reach the node ports.
    pub fn firewall(&self) -> String {
        format!("{PREFIX}-{}-fw", self.cluster)
    }
}

/// Kubernetes names may hold `.`; Compute names may not.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Shortens `a` and `b` so that together they take at most `room` characters, each keeping at
/// least half of `room` when it needs it (the other gets the rest).
fn fit_pair(a: &str, b: &str, room: usize) -> (String, String) {
    if a.len() + b.len() <= room {
        return (a.to_owned(), b.to_owned());
    }
    let half = room / 2;
    let (la, lb) = if a.len() <= half {
        (a.len(), room - a.len())
    } else if b.len() <= room - half {
        (room - b.len(), b.len())
    } else {
        (half, room - half)
    };
    (a[..la].to_owned(), b[..lb].to_owned())
}

/// 8 base-36 characters of the SHA-256 of `s`.
pub fn hash8(s: &str) -> String {
    let digest = Sha256::digest(s.as_bytes());
    let mut n = digest
        .iter()
        .take(8)
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    let mut out = [b'0'; 8];
    for slot in out.iter_mut().rev() {
        *slot = b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize];
        n /= 36;
    }
    out.iter().map(|b| char::from(*b)).collect()
}

/// Whether `name` is a valid Compute resource name.
pub fn is_valid(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_LEN
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[bytes.len() - 1] != b'-'
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARTS: [LbPart; 7] = [
        LbPart::UrlMap,
        LbPart::RedirectUrlMap,
        LbPart::HttpProxy,
        LbPart::HttpsProxy,
        LbPart::HttpRule,
        LbPart::HttpsRule,
        LbPart::Address,
    ];

    #[test]
    fn names_are_valid_and_bounded_for_any_input() {
        let namer = Namer::new("0f3c2a3e-7a4b-4d1e-9c55-1234567890ab");
        let long = "a".repeat(253);
        let cases = [
            ("default", "test"),
            ("kube-system", "x"),
            (long.as_str(), "short"),
            ("short", long.as_str()),
            (long.as_str(), long.as_str()),
            ("ns", "name.with.dots"),
            ("9ns", "0"),
        ];
        for (ns, name) in cases {
            for part in PARTS {
                let n = namer.lb(part, ns, name);
                assert!(is_valid(&n), "{n}");
            }
            let cert = namer.certificate(ns, name, &"ab".repeat(32));
            assert!(is_valid(&cert), "{cert}");
            let be = namer.backend(ns, name, 65535);
            assert!(is_valid(&be), "{be}");
            let ne = namer.endpoint_backend(ns, name, 65535);
            assert!(is_valid(&ne), "{ne}");
            assert_ne!(be, ne);
        }
    }

    #[test]
    fn names_are_deterministic_and_distinct() {
        let a = Namer::new("cluster-a");
        let b = Namer::new("cluster-b");
        assert_eq!(
            a.lb(LbPart::UrlMap, "default", "test"),
            a.lb(LbPart::UrlMap, "default", "test")
        );
        assert_ne!(
            a.lb(LbPart::UrlMap, "default", "test"),
            b.lb(LbPart::UrlMap, "default", "test")
        );
        // Same shortened prefix, different full names: the hash keeps them apart.
        let long = "x".repeat(80);
        assert_ne!(
            a.lb(LbPart::UrlMap, "ns", &format!("{long}1")),
            a.lb(LbPart::UrlMap, "ns", &format!("{long}2"))
        );
        // Another controller of the same cluster names its load balancers apart, and shares
        // the cluster-wide names.
        let canary = Namer::new("cluster-a").for_controller(Some("example.com/canary"));
        assert_ne!(
            a.lb(LbPart::UrlMap, "default", "test"),
            canary.lb(LbPart::UrlMap, "default", "test")
        );
        assert_ne!(
            a.certificate("default", "test", "00"),
            canary.certificate("default", "test", "00")
        );
        assert_eq!(
            a.backend("default", "echo", 80),
            canary.backend("default", "echo", 80)
        );
        assert_eq!(a.instance_group(), canary.instance_group());
        // "a-b/c" and "a/b-c" read the same once joined; the hash tells them apart.
        assert_ne!(a.lb(LbPart::UrlMap, "a-b", "c"), a.lb(LbPart::UrlMap, "a", "b-c"));
        assert_ne!(
            a.backend("default", "echo", 80),
            a.backend("default", "echo", 8080)
        );
        // The two kinds of backend of one Service port never share a name, nor with anything else.
        let ne = a.endpoint_backend("default", "echo", 80);
        assert!(
            ne.starts_with(&format!("clb-{}-ne-default-echo-80-", a.cluster_tag())),
            "{ne}"
        );
        for other in [
            a.backend("default", "echo", 80),
            a.default_backend(),
            a.instance_group(),
            a.firewall(),
        ] {
            assert_ne!(ne, other);
        }
    }

    #[test]
    fn readable_parts_survive() {
        let namer = Namer::new("uid");
        let name = namer.lb(LbPart::HttpsRule, "default", "test");
        assert!(
            name.starts_with(&format!("clb-{}-fs-default-test-", namer.cluster_tag())),
            "{name}"
        );
        assert!(
            namer
                .backend("default", "echoheaders", 8080)
                .contains("-default-echoheaders-8080-")
        );
        assert!(
            namer
                .certificate("default", "test", "0123456789abcdef0123")
                .ends_with("-0123456789abcdef")
        );
        assert!(namer.certificate("default", "test", "00").starts_with(&format!(
            "clb-{}-cr-{}-",
            namer.cluster_tag(),
            hash8("default/test")
        )));
    }

    #[test]
    fn validity_check_matches_the_api_pattern() {
        for ok in ["a", "a-1", "clb-x"] {
            assert!(is_valid(ok), "{ok}");
        }
        for bad in ["", "1a", "a-", "A", "a_b", &"a".repeat(64)] {
            assert!(!is_valid(bad), "{bad}");
        }
    }
}
