//! The routing table: which backend serves which host and path.

use super::BackendKey;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Hosts and paths to backends, in the order the Ingress gave them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingTable {
    /// Serves every request no rule matches. `None` when the Ingress names no default backend:
    /// the provider then answers unmatched requests itself (with an error status).
    pub default_backend: Option<BackendKey>,
    /// One rule per distinct host; the translator merges Ingress rules naming the same host.
    pub hosts: Vec<HostRule>,
}

/// The paths served for one host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRule {
    pub host: HostMatch,
    pub paths: Vec<PathRule>,
}

/// Which `Host` header values a rule applies to.
///
/// Serialized as the string an Ingress uses: `"*"` (any), `"foo.example.com"`, `"*.example.com"`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HostMatch {
    /// Every host (an Ingress rule with no `host`).
    Any,
    /// Exactly this host name (lower case).
    Exact(String),
    /// Any single label followed by this suffix: `Wildcard("example.com")` is `*.example.com`.
    Wildcard(String),
}

impl HostMatch {
    /// Parses the Ingress form; does no validation beyond recognising the wildcard.
    pub fn parse(host: &str) -> Self {
        match host {
            "" | "*" => HostMatch::Any,
            _ => match host.strip_prefix("*.") {
                Some(suffix) => HostMatch::Wildcard(suffix.to_owned()),
                None => HostMatch::Exact(host.to_owned()),
            },
        }
    }
}

impl fmt::Display for HostMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostMatch::Any => f.write_str("*"),
            HostMatch::Exact(host) => f.write_str(host),
            HostMatch::Wildcard(suffix) => write!(f, "*.{suffix}"),
        }
    }
}

impl Serialize for HostMatch {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HostMatch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let host = String::deserialize(deserializer)?;
        Ok(HostMatch::parse(&host))
    }
}

/// One path of a host and the backend serving it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathRule {
    /// Starts with `/`. For [`PathMatch::Prefix`] it carries no trailing `/` (except the root `/`).
    pub path: String,
    #[serde(rename = "match")]
    pub kind: PathMatch,
    pub backend: BackendKey,
}

/// How a [`PathRule`] matches request paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PathMatch {
    /// The path exactly (Ingress `pathType: Exact`).
    Exact,
    /// The path and everything below it, element-wise: `/foo` matches `/foo` and `/foo/bar`, not
    /// `/foobar` (Ingress `pathType: Prefix`); `/` matches everything.
    Prefix,
    /// The provider's own pattern, passed through (Ingress `pathType: ImplementationSpecific`);
    /// for GCE a path with an optional trailing `/*`.
    Glob,
}
