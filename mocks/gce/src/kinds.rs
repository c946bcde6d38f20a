//! Resource kinds, scopes and keys, and the conversions between keys, resource paths
//! (`projects/p/global/urlMaps/x`) and self links (`https://www.googleapis.com/compute/v1/...`).

use std::fmt;

/// Every self link starts with this, whatever host the request went to (as the real API does).
pub(crate) const LINK_BASE: &str = "https://www.googleapis.com/compute/v1/";

/// A resource kind. The same kind may live in several scopes (global, regional, zonal).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Kind {
    Address,
    BackendService,
    Firewall,
    ForwardingRule,
    HealthCheck,
    HttpHealthCheck,
    Instance,
    InstanceGroup,
    Network,
    NetworkEndpointGroup,
    Operation,
    SslCertificate,
    SslPolicy,
    TargetHttpProxy,
    TargetHttpsProxy,
    UrlMap,
}

/// Which scopes a kind may live in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ScopeType {
    Global,
    Region,
    Zone,
}

impl Kind {
    /// All kinds, for iteration.
    pub(crate) const ALL: [Kind; 16] = [
        Kind::Address,
        Kind::BackendService,
        Kind::Firewall,
        Kind::ForwardingRule,
        Kind::HealthCheck,
        Kind::HttpHealthCheck,
        Kind::Instance,
        Kind::InstanceGroup,
        Kind::Network,
        Kind::NetworkEndpointGroup,
        Kind::Operation,
        Kind::SslCertificate,
        Kind::SslPolicy,
        Kind::TargetHttpProxy,
        Kind::TargetHttpsProxy,
        Kind::UrlMap,
    ];

    /// The collection segment in paths.
    pub(crate) fn collection(self) -> &'static str {
        match self {
            Kind::Address => "addresses",
            Kind::BackendService => "backendServices",
            Kind::Firewall => "firewalls",
            Kind::ForwardingRule => "forwardingRules",
            Kind::HealthCheck => "healthChecks",
            Kind::HttpHealthCheck => "httpHealthChecks",
            Kind::Instance => "instances",
            Kind::InstanceGroup => "instanceGroups",
            Kind::Network => "networks",
            Kind::NetworkEndpointGroup => "networkEndpointGroups",
            Kind::Operation => "operations",
            Kind::SslCertificate => "sslCertificates",
            Kind::SslPolicy => "sslPolicies",
            Kind::TargetHttpProxy => "targetHttpProxies",
            Kind::TargetHttpsProxy => "targetHttpsProxies",
            Kind::UrlMap => "urlMaps",
        }
    }

    pub(crate) fn from_collection(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.collection() == s)
    }

    /// The singular camelCase name, used in `kind` values and messages.
    pub(crate) fn singular(self) -> &'static str {
        match self {
            Kind::Address => "address",
            Kind::BackendService => "backendService",
            Kind::Firewall => "firewall",
            Kind::ForwardingRule => "forwardingRule",
            Kind::HealthCheck => "healthCheck",
            Kind::HttpHealthCheck => "httpHealthCheck",
            Kind::Instance => "instance",
            Kind::InstanceGroup => "instanceGroup",
            Kind::Network => "network",
            Kind::NetworkEndpointGroup => "networkEndpointGroup",
            Kind::Operation => "operation",
            Kind::SslCertificate => "sslCertificate",
            Kind::SslPolicy => "sslPolicy",
            Kind::TargetHttpProxy => "targetHttpProxy",
            Kind::TargetHttpsProxy => "targetHttpsProxy",
            Kind::UrlMap => "urlMap",
        }
    }

    /// `compute#urlMap`.
    pub(crate) fn wire_kind(self) -> String {
        format!("compute#{}", self.singular())
    }

    /// `compute#urlMapList`.
    pub(crate) fn wire_list_kind(self) -> String {
        format!("compute#{}List", self.singular())
    }

    pub(crate) fn allows(self, scope: ScopeType) -> bool {
        use ScopeType::{Global as G, Region as R, Zone as Z};
        let allowed: &[ScopeType] = match self {
            Kind::Firewall | Kind::HttpHealthCheck | Kind::Network => &[G],
            Kind::Instance | Kind::InstanceGroup => &[Z],
            Kind::NetworkEndpointGroup => &[Z, R],
            Kind::Operation => &[G, R, Z],
            _ => &[G, R],
        };
        allowed.contains(&scope)
    }

    /// Kinds that carry a `fingerprint` changed on every write.
    pub(crate) fn has_fingerprint(self) -> bool {
        matches!(
            self,
            Kind::BackendService
                | Kind::UrlMap
                | Kind::TargetHttpProxy
                | Kind::TargetHttpsProxy
                | Kind::SslPolicy
                | Kind::ForwardingRule
                | Kind::InstanceGroup
        )
    }

    /// Kinds that carry `labels` and a `labelFingerprint`.
    pub(crate) fn has_labels(self) -> bool {
        matches!(self, Kind::Address | Kind::ForwardingRule)
    }

    /// The discovery-document resource name of this kind in `scope`: the name used for stats,
    /// quotas and latency keys (`globalAddresses`, `regionUrlMaps`, `zoneOperations`, ...).
    pub(crate) fn api_name(self, scope: ScopeType) -> &'static str {
        use ScopeType::{Global as G, Region as R, Zone as Z};
        match (self, scope) {
            (Kind::Address, G) => "globalAddresses",
            (Kind::Address, _) => "addresses",
            (Kind::ForwardingRule, G) => "globalForwardingRules",
            (Kind::ForwardingRule, _) => "forwardingRules",
            (Kind::Operation, G) => "globalOperations",
            (Kind::Operation, R) => "regionOperations",
            (Kind::Operation, Z) => "zoneOperations",
            (Kind::NetworkEndpointGroup, R) => "regionNetworkEndpointGroups",
            (Kind::HealthCheck, R) => "regionHealthChecks",
            (Kind::BackendService, R) => "regionBackendServices",
            (Kind::UrlMap, R) => "regionUrlMaps",
            (Kind::TargetHttpProxy, R) => "regionTargetHttpProxies",
            (Kind::TargetHttpsProxy, R) => "regionTargetHttpsProxies",
            (Kind::SslCertificate, R) => "regionSslCertificates",
            (Kind::SslPolicy, R) => "regionSslPolicies",
            (k, _) => k.collection(),
        }
    }

    /// `BACKEND_SERVICES`: the quota metric named in `quotaExceeded` messages, the collection in
    /// UPPER_SNAKE, except addresses, which count against `STATIC_ADDRESSES`.
    pub(crate) fn quota_metric(self) -> String {
        if self == Kind::Address {
            return "STATIC_ADDRESSES".to_string();
        }
        let mut out = String::new();
        for c in self.collection().chars() {
            if c.is_ascii_uppercase() {
                out.push('_');
            }
            out.push(c.to_ascii_uppercase());
        }
        out
    }
}

/// Where a resource lives.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Scope {
    Global,
    Region(String),
    Zone(String),
}

impl Scope {
    pub(crate) fn scope_type(&self) -> ScopeType {
        match self {
            Scope::Global => ScopeType::Global,
            Scope::Region(_) => ScopeType::Region,
            Scope::Zone(_) => ScopeType::Zone,
        }
    }

    /// `global`, `regions/r` or `zones/z`.
    pub(crate) fn path(&self) -> String {
        match self {
            Scope::Global => "global".to_string(),
            Scope::Region(r) => format!("regions/{r}"),
            Scope::Zone(z) => format!("zones/{z}"),
        }
    }

    /// The link of the zone or region itself, for the `zone` / `region` fields.
    pub(crate) fn link(&self, project: &str) -> Option<String> {
        match self {
            Scope::Global => None,
            s => Some(format!("{LINK_BASE}projects/{project}/{}", s.path())),
        }
    }
}

/// A collection: every resource of one kind in one scope of one project.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct CollKey {
    pub project: String,
    pub scope: Scope,
    pub kind: Kind,
}

impl CollKey {
    /// `projects/p/global/urlMaps`.
    pub(crate) fn path(&self) -> String {
        format!(
            "projects/{}/{}/{}",
            self.project,
            self.scope.path(),
            self.kind.collection()
        )
    }

    pub(crate) fn link(&self) -> String {
        format!("{LINK_BASE}{}", self.path())
    }

    pub(crate) fn key(&self, name: &str) -> Key {
        Key {
            project: self.project.clone(),
            scope: self.scope.clone(),
            kind: self.kind,
            name: name.to_string(),
        }
    }

    pub(crate) fn api_name(&self) -> &'static str {
        self.kind.api_name(self.scope.scope_type())
    }
}

/// One resource.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Key {
    pub project: String,
    pub scope: Scope,
    pub kind: Kind,
    pub name: String,
}

impl Key {
    /// `projects/p/global/urlMaps/x`.
    pub(crate) fn path(&self) -> String {
        format!(
            "projects/{}/{}/{}/{}",
            self.project,
            self.scope.path(),
            self.kind.collection(),
            self.name
        )
    }

    /// `https://www.googleapis.com/compute/v1/projects/p/global/urlMaps/x`.
    pub(crate) fn link(&self) -> String {
        format!("{LINK_BASE}{}", self.path())
    }

    pub(crate) fn coll(&self) -> CollKey {
        CollKey {
            project: self.project.clone(),
            scope: self.scope.clone(),
            kind: self.kind,
        }
    }

    pub(crate) fn api_name(&self) -> &'static str {
        self.kind.api_name(self.scope.scope_type())
    }

    /// The resource `name` of `kind` in the same project and scope (an instance of a group).
    pub(crate) fn sibling(&self, kind: Kind, name: &str) -> Key {
        Key {
            project: self.project.clone(),
            scope: self.scope.clone(),
            kind,
            name: name.to_string(),
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())
    }
}

/// Whether `name` is a valid resource name: 1–63 chars, `[a-z]([-a-z0-9]*[a-z0-9])?`.
pub(crate) fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[b.len() - 1] != b'-'
}

/// Strips `http(s)://host/compute/{v1|beta|alpha}/` from a full URL, leaving the resource path.
/// Relative paths are returned unchanged; `None` for a URL that is not a Compute URL (another
/// API, another version).
pub(crate) fn strip_url_prefix(s: &str) -> Option<&str> {
    let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"));
    let Some(rest) = rest else { return Some(s) };
    let (_host, path) = rest.split_once('/')?;
    let path = path.strip_prefix("compute/")?;
    let (version, path) = path.split_once('/')?;
    matches!(version, "v1" | "beta" | "alpha").then_some(path)
}

/// A reference split into project, scope, collection and name, whatever form it was given in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RefPath {
    pub project: String,
    pub scope: Scope,
    pub collection: String,
    pub name: String,
}

impl RefPath {
    /// The canonical full link, `https://www.googleapis.com/compute/v1/projects/...`.
    pub(crate) fn link(&self) -> String {
        format!(
            "{LINK_BASE}projects/{}/{}/{}/{}",
            self.project,
            self.scope.path(),
            self.collection,
            self.name
        )
    }
}

/// Splits a reference given in any form Compute accepts: a full URL (any host, API version
/// `v1`, `beta` or `alpha`), a partial path from the project (`projects/p/global/urlMaps/x`)
/// or a path relative to `project` (`global/urlMaps/x`, `regions/r/...`, `zones/z/...`).
/// `None` when the shape is not one of these (the API's "The URL is malformed.").
pub(crate) fn parse_path(s: &str, project: &str) -> Option<RefPath> {
    let path = strip_url_prefix(s)?;
    let segs: Vec<&str> = path.split('/').collect();
    let (project, rest) = match segs.as_slice() {
        ["projects", p, rest @ ..] => (*p, rest),
        rest => (project, rest),
    };
    let (scope, collection, name) = match rest {
        ["global", coll, name] => (Scope::Global, *coll, *name),
        ["regions", r, coll, name] => (Scope::Region((*r).to_string()), *coll, *name),
        ["zones", z, coll, name] => (Scope::Zone((*z).to_string()), *coll, *name),
        _ => return None,
    };
    if project.is_empty() || collection.is_empty() || name.is_empty() {
        return None;
    }
    if matches!(&scope, Scope::Region(x) | Scope::Zone(x) if x.is_empty()) {
        return None;
    }
    Some(RefPath {
        project: project.to_string(),
        scope,
        collection: collection.to_string(),
        name: name.to_string(),
    })
}

/// Collections Compute has that the fake does not model: a reference to one of them in a
/// field that wants something else gets "Unexpected resource collection", not "malformed".
const OTHER_COLLECTIONS: &[&str] = &[
    "acceleratorTypes",
    "backendBuckets",
    "diskTypes",
    "disks",
    "externalVpnGateways",
    "firewallPolicies",
    "images",
    "instanceGroupManagers",
    "instanceTemplates",
    "interconnects",
    "licenses",
    "machineTypes",
    "networkAttachments",
    "publicDelegatedPrefixes",
    "resourcePolicies",
    "routers",
    "routes",
    "securityPolicies",
    "serviceAttachments",
    "snapshots",
    "subnetworks",
    "targetGrpcProxies",
    "targetInstances",
    "targetPools",
    "targetSslProxies",
    "targetTcpProxies",
    "targetVpnGateways",
    "vpnGateways",
    "vpnTunnels",
];

/// Why a reference was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RefError {
    /// Not a reference at all, or a collection Compute does not have, or a modelled
    /// collection in a scope it does not live in.
    Malformed,
    /// A real collection, but not one this field accepts.
    Collection(String),
}

/// Parses a reference to a modelled kind, in any form [`parse_path`] accepts.
pub(crate) fn resolve_ref(s: &str, project: &str) -> Result<Key, RefError> {
    let r = parse_path(s, project).ok_or(RefError::Malformed)?;
    match Kind::from_collection(&r.collection) {
        Some(kind) if kind.allows(r.scope.scope_type()) => Ok(Key {
            project: r.project,
            scope: r.scope,
            kind,
            name: r.name,
        }),
        Some(_) => Err(RefError::Malformed),
        None if OTHER_COLLECTIONS.contains(&r.collection.as_str()) => Err(RefError::Collection(r.collection)),
        None => Err(RefError::Malformed),
    }
}

/// A network named in the configuration: a bare name (`default`, taken as
/// `global/networks/default` of `project`) or a reference in any form [`parse_path`] accepts.
pub(crate) fn network_key(spec: &str, project: &str) -> Result<Key, RefError> {
    let key = if spec.contains('/') {
        resolve_ref(spec, project)?
    } else {
        resolve_ref(&format!("global/networks/{spec}"), project)?
    };
    match key.kind {
        Kind::Network => Ok(key),
        other => Err(RefError::Collection(other.collection().to_string())),
    }
}

/// Parses a reference given as a full URL (any host, API version `v1`/`beta`/`alpha`) or a
/// partial path (`projects/p/global/urlMaps/x` or `global/urlMaps/x`, relative to `project`).
pub(crate) fn parse_ref(s: &str, project: &str) -> Option<Key> {
    resolve_ref(s, project).ok()
}

/// The region a zone belongs to: `us-central1-a` → `us-central1`.
pub(crate) fn region_of_zone(zone: &str) -> &str {
    zone.rsplit_once('-').map_or(zone, |(r, _)| r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_rfc1035() {
        for ok in ["a", "a-b", "abc123", &"a".repeat(63)] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "A", "1a", "a-", "a_b", &"a".repeat(64)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn references_parse_in_every_form() {
        let want = Key {
            project: "p".into(),
            scope: Scope::Global,
            kind: Kind::UrlMap,
            name: "m".into(),
        };
        for s in [
            "https://www.googleapis.com/compute/v1/projects/p/global/urlMaps/m",
            "https://compute.googleapis.com/compute/beta/projects/p/global/urlMaps/m",
            "http://127.0.0.1:8080/compute/v1/projects/p/global/urlMaps/m",
            "projects/p/global/urlMaps/m",
            "global/urlMaps/m",
        ] {
            assert_eq!(parse_ref(s, "p"), Some(want.clone()), "{s}");
        }
        assert_eq!(parse_ref("global/nope/m", "p"), None);
        assert_eq!(
            parse_ref(
                "https://www.googleapis.com/compute/v2/projects/p/global/urlMaps/m",
                "p"
            ),
            None
        );
        assert_eq!(
            resolve_ref("global/backendBuckets/b", "p"),
            Err(RefError::Collection("backendBuckets".into()))
        );
        assert_eq!(resolve_ref("global/nope/b", "p"), Err(RefError::Malformed));
        let other = parse_ref("projects/host/global/networks/default", "p");
        assert_eq!(
            other.map(|k| (k.project, k.kind)),
            Some(("host".into(), Kind::Network))
        );
        assert_eq!(parse_ref("m", "p"), None);
        assert_eq!(parse_ref("global/instanceGroups/m", "p"), None);
        assert_eq!(
            network_key("vpc", "p").map(|k| k.path()),
            Ok("projects/p/global/networks/vpc".to_string())
        );
        assert_eq!(
            network_key("projects/host/global/networks/shared", "p").map(|k| k.path()),
            Ok("projects/host/global/networks/shared".to_string())
        );
        assert_eq!(
            network_key("global/firewalls/f", "p"),
            Err(RefError::Collection("firewalls".into()))
        );
        assert_eq!(network_key("", "p"), Err(RefError::Malformed));
        let z = parse_ref("zones/us-a/instances/i", "p");
        assert_eq!(z.map(|k| k.scope), Some(Scope::Zone("us-a".into())));
    }

    #[test]
    fn api_names_match_the_discovery_document() {
        assert_eq!(Kind::Address.api_name(ScopeType::Global), "globalAddresses");
        assert_eq!(Kind::UrlMap.api_name(ScopeType::Region), "regionUrlMaps");
        assert_eq!(Kind::Operation.api_name(ScopeType::Zone), "zoneOperations");
        assert_eq!(Kind::BackendService.quota_metric(), "BACKEND_SERVICES");
        assert_eq!(Kind::Address.quota_metric(), "STATIC_ADDRESSES");
        assert_eq!(region_of_zone("us-central1-a"), "us-central1");
    }
}
