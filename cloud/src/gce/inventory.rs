//! What exists: this cluster's resources, read in bulk, one list per kind.
//!
//! A pass asks for a snapshot taken no earlier than some instant (see [`Freshness`]); passes
//! running together share one list call per kind instead of each reading for itself. That keeps
//! reads proportional to the number of kinds, not of resources or of Ingresses: with a thousand
//! Ingresses converging at once, a snapshot serves every pass that started before it.

use super::api_error::ApiError;
use super::compute::Compute;
use super::links::{Collection, Scope};
use super::wire::{self, Resource};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// The resources of one kind at one moment, by name (by `zone/name` for zonal kinds).
#[derive(Debug)]
pub struct Snapshot<T> {
    /// When the list that produced it started: it reflects every write finished before.
    pub taken_at: Instant,
    pub items: BTreeMap<String, T>,
}

/// The latest snapshot of one kind, refreshed by one list at a time.
struct Cache<T> {
    collection: Collection,
    /// For a zonal kind: listed with one aggregated list, whose scopes hold this field.
    aggregated: Option<&'static str>,
    current: Mutex<Option<Arc<Snapshot<T>>>>,
    refresh: tokio::sync::Mutex<()>,
}

impl<T: Resource> Cache<T> {
    fn new(collection: Collection) -> Self {
        Self {
            collection,
            aggregated: None,
            current: Mutex::new(None),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    fn fresh(&self, not_before: Instant) -> Option<Arc<Snapshot<T>>> {
        let current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        current.as_ref().filter(|s| s.taken_at >= not_before).cloned()
    }

    async fn get(
        &self,
        compute: &Compute,
        filter: &str,
        not_before: Instant,
    ) -> Result<Arc<Snapshot<T>>, ApiError> {
        if let Some(s) = self.fresh(not_before) {
            return Ok(s);
        }
        let _one_at_a_time = self.refresh.lock().await;
        // Whoever held the lock may have listed recently enough for us too.
        if let Some(s) = self.fresh(not_before) {
            return Ok(s);
        }
        let taken_at = Instant::now();
        let items: Vec<T> = match self.aggregated {
            None => {
                let op = format!("{}.list", self.collection.segment());
                let url = compute.links().collection_url(&Scope::Global, self.collection);
                compute.list(&op, &url, Some(filter)).await?
            }
            Some(field) => {
                let op = format!("{}.aggregatedList", self.collection.segment());
                let url = compute.links().aggregated_url(self.collection);
                compute.aggregated(&op, &url, Some(filter), field).await?
            }
        };
        let snapshot = Arc::new(Snapshot {
            taken_at,
            items: items.into_iter().map(|i| (i.key(), i)).collect(),
        });
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(snapshot.clone());
        Ok(snapshot)
    }
}

/// Snapshots of every global kind a load balancer is made of.
pub struct Inventory {
    filter: String,
    addresses: Cache<wire::Address>,
    health_checks: Cache<wire::HealthCheck>,
    backend_services: Cache<wire::BackendService>,
    url_maps: Cache<wire::UrlMap>,
    http_proxies: Cache<wire::TargetHttpProxy>,
    https_proxies: Cache<wire::TargetHttpsProxy>,
    certificates: Cache<wire::SslCertificate>,
    forwarding_rules: Cache<wire::ForwardingRule>,
    negs: Cache<wire::NetworkEndpointGroup>,
}

/// One consistent-enough view of everything, for one pass.
pub struct View {
    pub addresses: Arc<Snapshot<wire::Address>>,
    pub health_checks: Arc<Snapshot<wire::HealthCheck>>,
    pub backend_services: Arc<Snapshot<wire::BackendService>>,
    pub url_maps: Arc<Snapshot<wire::UrlMap>>,
    pub http_proxies: Arc<Snapshot<wire::TargetHttpProxy>>,
    pub https_proxies: Arc<Snapshot<wire::TargetHttpsProxy>>,
    pub certificates: Arc<Snapshot<wire::SslCertificate>>,
    pub forwarding_rules: Arc<Snapshot<wire::ForwardingRule>>,
}

/// One load balancer's own resources in a view, by kind (names).
#[derive(Debug, Default)]
pub struct LbResources {
    pub forwarding_rules: Vec<String>,
    pub http_proxies: Vec<String>,
    pub https_proxies: Vec<String>,
    pub url_maps: Vec<String>,
    pub certificates: Vec<String>,
    pub addresses: Vec<String>,
}

impl LbResources {
    pub fn is_empty(&self) -> bool {
        self.forwarding_rules.is_empty()
            && self.http_proxies.is_empty()
            && self.https_proxies.is_empty()
            && self.url_maps.is_empty()
            && self.certificates.is_empty()
            && self.addresses.is_empty()
    }
}

fn names<T: Resource>(snapshot: &Snapshot<T>, keep: &dyn Fn(&str, &str) -> bool) -> Vec<String> {
    snapshot
        .items
        .iter()
        .filter(|(n, r)| keep(n, r.description()))
        .map(|(n, _)| n.clone())
        .collect()
}

impl View {
    /// The per-load-balancer resources for which `keep(name, description)` holds.
    pub fn lb_resources(&self, keep: &dyn Fn(&str, &str) -> bool) -> LbResources {
        LbResources {
            forwarding_rules: names(&self.forwarding_rules, keep),
            http_proxies: names(&self.http_proxies, keep),
            https_proxies: names(&self.https_proxies, keep),
            url_maps: names(&self.url_maps, keep),
            certificates: names(&self.certificates, keep),
            addresses: names(&self.addresses, keep),
        }
    }

    /// The descriptions of every per-load-balancer resource (ownership records).
    pub fn lb_descriptions(&self) -> impl Iterator<Item = &str> {
        self.forwarding_rules
            .items
            .values()
            .map(|r| r.description())
            .chain(self.http_proxies.items.values().map(|r| r.description()))
            .chain(self.https_proxies.items.values().map(|r| r.description()))
            .chain(self.url_maps.items.values().map(|r| r.description()))
            .chain(self.certificates.items.values().map(|r| r.description()))
            .chain(self.addresses.items.values().map(|r| r.description()))
    }
}

/// The kinds needed to sweep shared backends.
pub struct BackendView {
    pub health_checks: Arc<Snapshot<wire::HealthCheck>>,
    pub backend_services: Arc<Snapshot<wire::BackendService>>,
    pub url_maps: Arc<Snapshot<wire::UrlMap>>,
    /// Every zone's NEGs of this cluster's names, by `zone/name`.
    pub negs: Arc<Snapshot<wire::NetworkEndpointGroup>>,
}

impl Inventory {
    /// `filter` selects this cluster's names (see [`super::names::Namer::cluster_filter`]).
    pub fn new(filter: String) -> Self {
        Self {
            filter,
            addresses: Cache::new(Collection::Addresses),
            health_checks: Cache::new(Collection::HealthChecks),
            backend_services: Cache::new(Collection::BackendServices),
            url_maps: Cache::new(Collection::UrlMaps),
            http_proxies: Cache::new(Collection::TargetHttpProxies),
            https_proxies: Cache::new(Collection::TargetHttpsProxies),
            certificates: Cache::new(Collection::SslCertificates),
            forwarding_rules: Cache::new(Collection::ForwardingRules),
            negs: Cache {
                aggregated: Some("networkEndpointGroups"),
                ..Cache::new(Collection::NetworkEndpointGroups)
            },
        }
    }

    /// Every kind, listed no earlier than `not_before`, the lists running in parallel.
    pub async fn view(&self, compute: &Compute, not_before: Instant) -> Result<View, ApiError> {
        let f = self.filter.as_str();
        let (
            addresses,
            health_checks,
            backend_services,
            url_maps,
            http_proxies,
            https_proxies,
            certificates,
            forwarding_rules,
        ) = tokio::try_join!(
            self.addresses.get(compute, f, not_before),
            self.health_checks.get(compute, f, not_before),
            self.backend_services.get(compute, f, not_before),
            self.url_maps.get(compute, f, not_before),
            self.http_proxies.get(compute, f, not_before),
            self.https_proxies.get(compute, f, not_before),
            self.certificates.get(compute, f, not_before),
            self.forwarding_rules.get(compute, f, not_before),
        )?;
        Ok(View {
            addresses,
            health_checks,
            backend_services,
            url_maps,
            http_proxies,
            https_proxies,
            certificates,
            forwarding_rules,
        })
    }

    /// The backend kinds and URL maps, listed no earlier than `not_before`.
    pub async fn backend_view(
        &self,
        compute: &Compute,
        not_before: Instant,
    ) -> Result<BackendView, ApiError> {
        let f = self.filter.as_str();
        let (health_checks, backend_services, url_maps, negs) = tokio::try_join!(
            self.health_checks.get(compute, f, not_before),
            self.backend_services.get(compute, f, not_before),
            self.url_maps.get(compute, f, not_before),
            self.negs.get(compute, f, not_before),
        )?;
        Ok(BackendView {
            health_checks,
            backend_services,
            url_maps,
            negs,
        })
    }
}

impl Inventory {
    /// The backend services alone, listed no earlier than `not_before`: which groups each
    /// one's health is asked of.
    pub async fn backend_services(
        &self,
        compute: &Compute,
        not_before: Instant,
    ) -> Result<Arc<Snapshot<wire::BackendService>>, ApiError> {
        self.backend_services.get(compute, &self.filter, not_before).await
    }

    /// The backend services and forwarding rules, listed no earlier than `not_before`: what the
    /// cluster-wide resources serve.
    pub async fn infra_view(
        &self,
        compute: &Compute,
        not_before: Instant,
    ) -> Result<
        (
            Arc<Snapshot<wire::BackendService>>,
            Arc<Snapshot<wire::ForwardingRule>>,
        ),
        ApiError,
    > {
        let f = self.filter.as_str();
        tokio::try_join!(
            self.backend_services.get(compute, f, not_before),
            self.forwarding_rules.get(compute, f, not_before),
        )
    }
}

/// How fresh a pass's snapshot must be: no older than `max_staleness`, and taken after every
/// write this provider made to the resources the pass looks at, so that a pass never works
/// from a picture older than its own last changes.
pub struct Freshness {
    max_staleness: Duration,
    /// Last write to a load balancer's own resources, by `namespace/name`.
    lbs: Mutex<HashMap<String, Instant>>,
    /// Last write to a shared resource, by name.
    shared: Mutex<HashMap<String, Instant>>,
    /// Last write to any shared resource (never pruned).
    last_shared: Mutex<Option<Instant>>,
}

impl Freshness {
    pub fn new(max_staleness: Duration) -> Self {
        Self {
            max_staleness,
            lbs: Mutex::new(HashMap::new()),
            shared: Mutex::new(HashMap::new()),
            last_shared: Mutex::new(None),
        }
    }

    /// The earliest acceptable snapshot for a pass over load balancer `lb` using `shared`.
    pub fn required<'a>(&self, lb: &str, shared: impl IntoIterator<Item = &'a str>) -> Instant {
        let now = Instant::now();
        let mut at = now.checked_sub(self.max_staleness).unwrap_or(now);
        if let Some(t) = self.lbs.lock().unwrap_or_else(|p| p.into_inner()).get(lb) {
            at = at.max(*t);
        }
        let writes = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        for name in shared {
            if let Some(t) = writes.get(name) {
                at = at.max(*t);
            }
        }
        at
    }

    /// The earliest acceptable snapshot for a read of the shared resources `shared` alone.
    pub fn required_shared<'a>(&self, shared: impl IntoIterator<Item = &'a str>) -> Instant {
        let now = Instant::now();
        let mut at = now.checked_sub(self.max_staleness).unwrap_or(now);
        let writes = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        for name in shared {
            if let Some(t) = writes.get(name) {
                at = at.max(*t);
            }
        }
        at
    }

    pub fn wrote_lb(&self, lb: &str) {
        let mut lbs = self.lbs.lock().unwrap_or_else(|p| p.into_inner());
        self.prune(&mut lbs);
        lbs.insert(lb.to_owned(), Instant::now());
    }

    pub fn wrote_shared(&self, name: &str) {
        let now = Instant::now();
        let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        self.prune(&mut shared);
        shared.insert(name.to_owned(), now);
        *self.last_shared.lock().unwrap_or_else(|p| p.into_inner()) = Some(now);
    }

    /// When any shared resource was last written, if ever: a snapshot taken since holds every
    /// write this provider made to them, however long ago.
    pub fn last_shared_write(&self) -> Option<Instant> {
        *self.last_shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// When the shared resource `name` was last written, if ever.
    pub fn shared_written_at(&self, name: &str) -> Option<Instant> {
        self.shared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .copied()
    }

    /// Forgets writes older than the staleness bound: every acceptable snapshot is newer anyway.
    /// (A deleted load balancer's last write is kept until then, so that re-creating it at
    /// once does not trust a snapshot that still shows its old resources.)
    fn prune(&self, writes: &mut HashMap<String, Instant>) {
        if let Some(horizon) = Instant::now().checked_sub(self.max_staleness) {
            writes.retain(|_, t| *t >= horizon);
        }
    }
}
