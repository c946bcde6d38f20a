//! Start-up configuration and the knobs that can also be changed at run time.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::faults::FaultRule;
use crate::ratelimit::RateLimit;

/// How the fake is started. `Config::default()` binds `127.0.0.1:0`, has no latency, no faults,
/// no quotas, no rate limit and no token requirement.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address to listen on. Default `127.0.0.1:0` (an ephemeral port).
    pub listen: SocketAddr,
    /// Project id served by the metadata server, and the project of seeded instances when they
    /// name none. Every project path is accepted by the Compute routes.
    pub project_id: String,
    /// When set, every Compute request must carry `Authorization: Bearer <token>` (401
    /// otherwise), and the metadata server hands out this token.
    pub require_token: Option<String>,
    /// How long operations stay RUNNING.
    pub latency: Latency,
    /// How long `operations/wait` blocks at most before answering with a RUNNING operation
    /// (the real API caps it at about two minutes).
    pub operation_wait_cap: Duration,
    /// Size limits of URL maps.
    pub url_map_limits: UrlMapLimits,
    /// At most this many certificates per target HTTPS proxy (real: 15, "Compute Engine SSL
    /// certificates per target proxy" on the quotas page).
    pub max_ssl_certificates_per_proxy: usize,
    /// At most this many backends per backend service (real: 50).
    pub max_backends_per_service: usize,
    /// Zones that exist. Seeding an instance into another zone adds that zone.
    pub zones: Vec<String>,
    /// Instances that exist at start (and again after [`crate::FakeGce::reset`]).
    pub instances: Vec<InstanceSeed>,
    /// VPC networks that exist. A bare name (default: `["default"]`) is a network every
    /// project starts with, as a new Google Cloud project starts with its auto-mode `default`
    /// network: every project has it without a request creating it (stored for
    /// [`Config::project_id`] at start, for another project when one of them is deleted there).
    /// A path (`projects/host/global/networks/shared-vpc`)
    /// is one network of one project, created at start: a Shared VPC host project's network,
    /// say. Without bare names, projects start with no network. More can be created with
    /// `networks.insert` in any project.
    pub networks: Vec<String>,
    /// Resource quotas per collection (`backendServices`, `globalForwardingRules`, ...), each
    /// counted per project, and per region for regional and zonal collections.
    pub quotas: BTreeMap<String, u64>,
    /// Token-bucket rate limit over Compute requests.
    pub rate_limit: Option<RateLimit>,
    /// Fault rules active at start.
    pub faults: Vec<FaultRule>,
    /// Seed of every random choice (ids, fingerprints, fault probabilities).
    pub seed: u64,
    /// Finished operations kept for `get`; older ones are forgotten first.
    pub operation_retention: usize,
    /// Entries the [`crate::Journal`] keeps; when full the oldest is dropped (and counted).
    /// Default 200 000.
    pub journal_capacity: usize,
    /// The data plane: `None` (the default) and nothing listens or connects, external addresses
    /// are `34.120.x.y`; `Some` and the load balancers clients configure serve traffic on
    /// loopback (see "Data plane" in the crate docs).
    pub data_plane: Option<DataPlane>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            project_id: "fake-project".to_string(),
            require_token: None,
            latency: Latency::default(),
            operation_wait_cap: Duration::from_secs(120),
            url_map_limits: UrlMapLimits::default(),
            max_ssl_certificates_per_proxy: 15,
            max_backends_per_service: 50,
            zones: [
                "us-central1-a",
                "us-central1-b",
                "us-central1-c",
                "us-central1-f",
                "europe-west1-b",
                "europe-west1-c",
                "europe-west1-d",
            ]
            .iter()
            .map(|z| z.to_string())
            .collect(),
            instances: Vec::new(),
            networks: vec!["default".to_string()],
            quotas: BTreeMap::new(),
            rate_limit: None,
            faults: Vec::new(),
            seed: 0,
            operation_retention: 100_000,
            journal_capacity: 200_000,
            data_plane: None,
        }
    }
}

/// How the data plane runs (see "Data plane" in the crate docs). `DataPlane::default()`: claim a
/// free loopback block at start, map ports below 1024 to `port + 10000` when they cannot be
/// bound, probe at each health check's own `checkIntervalSec`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataPlane {
    /// The `/24` in `127.0.0.0/8` (written `127.A.B.0`, not `127.0.0.0`) whose `.1`–`.253` are
    /// the external addresses of forwarding rules and reserved global addresses. `None`: claim
    /// a free one at start ([`crate::LoopbackBlock::claim`]). A block given here is used as is:
    /// the fake holds its claim, or, when someone already does, uses it without a claim of its
    /// own (logged at info). That someone is meant to be the caller (a test or harness that
    /// claimed the block and hands it over, in this process or another); a claim does not say
    /// whose it is, so the fake cannot refuse another process's block: give only a block you
    /// hold, or that nobody does.
    pub block: Option<Ipv4Addr>,
    /// Added to a port below 1024 that cannot be bound (not root): 80 is served on 10080, 443
    /// on 10443. Default 10000.
    pub privileged_port_offset: u16,
    /// Probe every backend this often, whatever its health check's `checkIntervalSec` says: for
    /// tests and the sandbox, where seconds are long. Only the interval: a probe still waits the
    /// health check's own `timeoutSec` for its answer (Compute's rule), and the probes of one
    /// target never overlap, so a slow answer delays the next probe (it starts at the later of
    /// the previous start plus the interval and the previous end) rather than failing.
    pub probe_interval: Option<Duration>,
}

impl Default for DataPlane {
    fn default() -> Self {
        DataPlane {
            block: None,
            privileged_port_offset: 10_000,
            probe_interval: None,
        }
    }
}

/// How long an operation stays RUNNING before its change is applied and it becomes DONE.
///
/// The key of `per_operation` is `<collection>.<method>`, with the discovery names used in
/// stats: `urlMaps.insert`, `targetHttpsProxies.setSslCertificates`, `globalForwardingRules.*`,
/// `*.delete`. Lookup order: exact key, `<collection>.*`, `*.<method>`, then `default_ms`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Latency {
    /// Latency of every mutation without a more specific entry, in milliseconds.
    pub default_ms: u64,
    /// Per-operation latencies in milliseconds.
    pub per_operation: BTreeMap<String, u64>,
}

impl Latency {
    /// The same latency for every operation.
    pub fn uniform(latency: Duration) -> Self {
        Latency {
            default_ms: millis(latency),
            per_operation: BTreeMap::new(),
        }
    }

    /// Adds a per-operation latency (`"urlMaps.insert"`, `"*.delete"`, `"urlMaps.*"`).
    pub fn with(mut self, key: &str, latency: Duration) -> Self {
        self.per_operation.insert(key.to_string(), millis(latency));
        self
    }

    /// The latency of `method` on the collection `api_name`.
    pub fn for_operation(&self, api_name: &str, method: &str) -> Duration {
        let lookup = |k: String| self.per_operation.get(&k).copied();
        let ms = lookup(format!("{api_name}.{method}"))
            .or_else(|| lookup(format!("{api_name}.*")))
            .or_else(|| lookup(format!("*.{method}")))
            .unwrap_or(self.default_ms);
        Duration::from_millis(ms)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// URL-map limits. Exceeding one gives 413 `fieldSizeTooLarge` at insert/update/patch.
///
/// The defaults are the documented limits of external Application Load Balancers, from
/// "Quotas and limits | Cloud Load Balancing" (<https://docs.cloud.google.com/load-balancing/docs/quotas>,
/// "URL maps" table); the same values as the provider's `cloud::gce::Limits`
/// (`cloud/src/gce/limits.rs`). Not modelled: hosts per host rule (1,000) and route-rule
/// predicates (match rules).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UrlMapLimits {
    /// Host rules per URL map (real: 1,000, "Host rules, path matchers per URL map").
    pub max_host_rules: usize,
    /// Path matchers per URL map (real: 1,000, same row).
    pub max_path_matchers: usize,
    /// Path rules per path matcher (real: 1,000, "Path rules or route rules per path matcher").
    pub max_path_rules_per_matcher: usize,
    /// Path patterns across the path rules of one path matcher (real: 1,000, "Predicates per
    /// path matcher"; the footnote counts, for path rules, "the total number of paths across
    /// all path rules").
    pub max_path_patterns_per_matcher: usize,
    /// Distinct backend services one URL map refers to, anywhere in it (real: 2,500).
    pub max_services: usize,
    /// Tests per URL map (real: 100 for the global external Application Load Balancer, 10,000
    /// for the classic one).
    pub max_tests: usize,
    /// Size of the stored URL map serialized as compact JSON (server fields `kind`, `id`,
    /// `creationTimestamp`, `name` and the written defaults included), without `selfLink` and
    /// `fingerprint`: never more than `cloud::gce::limits::stored_size` counts for the same map,
    /// which adds both at their longest. Real: 64 KB ("Size of URL maps" on the quotas page;
    /// the classic Application Load Balancer keeps 64 KB while "URL map size and quota units",
    /// <https://docs.cloud.google.com/load-balancing/docs/url-map-size-quota>, gives 1 MB to
    /// the Envoy-based ones, announced as a public preview), measured in a way Google does not
    /// document.
    pub max_size_bytes: usize,
}

impl Default for UrlMapLimits {
    fn default() -> Self {
        UrlMapLimits {
            max_host_rules: 1000,
            max_path_matchers: 1000,
            max_path_rules_per_matcher: 1000,
            max_path_patterns_per_matcher: 1000,
            max_services: 2500,
            max_tests: 100,
            max_size_bytes: 64 * 1024,
        }
    }
}

/// An instance to create, since instance groups and NEGs may only hold instances that exist.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InstanceSeed {
    /// Project; default [`Config::project_id`].
    pub project: Option<String>,
    /// Zone, e.g. `us-central1-a`.
    pub zone: String,
    /// Instance name.
    pub name: String,
    /// Primary internal IP; default the next free `10.128.x.y`.
    pub ip: Option<String>,
    /// Network tags.
    pub tags: Vec<String>,
    /// The network of the primary interface, in any reference form (`my-vpc`, a bare name, is
    /// taken as `global/networks/my-vpc`; `projects/host/global/networks/shared` for a Shared
    /// VPC); default `default` of the instance's project. It must exist.
    pub network: Option<String>,
    /// The subnetwork of the primary interface (`regions/r/subnetworks/s` in any form); default
    /// the auto-mode subnetwork of the zone's region when the network is in auto mode.
    pub subnetwork: Option<String>,
    /// Alias IP ranges of the primary interface, as reads show them
    /// (`networkInterfaces[0].aliasIpRanges[].ipCidrRange`): IPv4 CIDR ranges (`10.4.0.0/24`)
    /// or single addresses (`10.4.0.7`, a `/32`); default none. A `GCE_VM_IP_PORT` NEG endpoint
    /// of the instance must be at its primary IP or within one of these, as on Compute (GKE
    /// pods get their IPs from their node's alias range): a test whose pods listen on loopback
    /// addresses other than the node's declares their range here.
    pub alias_ip_ranges: Vec<String>,
}

impl InstanceSeed {
    /// An instance in `zone` named `name`, with defaults for the rest.
    pub fn new(zone: &str, name: &str) -> Self {
        InstanceSeed {
            zone: zone.to_string(),
            name: name.to_string(),
            ..Default::default()
        }
    }
}

/// The limits a mutation is checked against.
#[derive(Clone, Debug)]
pub(crate) struct Limits {
    pub url_map: UrlMapLimits,
    pub max_certs: usize,
    pub max_backends: usize,
}

impl Limits {
    pub(crate) fn from_config(c: &Config) -> Self {
        Limits {
            url_map: c.url_map_limits,
            max_certs: c.max_ssl_certificates_per_proxy,
            max_backends: c.max_backends_per_service,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_lookup_prefers_the_most_specific_key() {
        let l = Latency::uniform(Duration::from_millis(1))
            .with("urlMaps.insert", Duration::from_millis(2))
            .with("urlMaps.*", Duration::from_millis(3))
            .with("*.delete", Duration::from_millis(4));
        let ms = |a, m| l.for_operation(a, m).as_millis();
        assert_eq!(ms("urlMaps", "insert"), 2);
        assert_eq!(ms("urlMaps", "delete"), 3);
        assert_eq!(ms("healthChecks", "delete"), 4);
        assert_eq!(ms("healthChecks", "insert"), 1);
    }
}
