//! Endpoint backends' zonal network endpoint groups (`GCE_VM_IP_PORT`): creating them,
//! keeping their endpoints equal to the Service port's ([`crate::Provider::sync_endpoints`]),
//! and reading their endpoints' health ([`crate::Provider::endpoint_health`]).
//!
//! The NEGs of a Service port all carry its endpoint backend's name
//! ([`super::names::Namer::endpoint_backend`]), one per zone. `ensure` creates them beside
//! the health check and puts them in the backend service; the sweep deletes them after the
//! backend service. The backend service decides whether the backend is alive: `sync_endpoints`
//! writes only to NEGs of a backend service of ours that exists, so it never recreates what a
//! deletion removed; and it holds the backend's lock (shared) while it reads and writes, which
//! a sweep must take exclusively before it deletes anything of that name.

use super::GceProvider;
use super::apply::{Owner, combine};
use super::desired::{DesiredNeg, neg, neg_backend};
use super::links::{Collection, Scope, is_neg, name_of, zone_of};
use super::owner;
use super::wire::{self, NetworkEndpoint};
use crate::Error;
use crate::model::{BackendKey, Endpoint, EndpointSet};
use crate::provider::{EndpointHealth, EndpointSync};
use futures::future::join_all;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use tokio::time::Instant;

/// At most this many endpoints per attach or detach call: Compute's limit, which ingress-gce
/// (`MAX_NETWORK_ENDPOINTS_PER_BATCH = 500`, `pkg/neg/syncers/utils.go`) and Terraform
/// (`google_compute_network_endpoints`, "API only accepts 500 endpoints at a time") keep to.
pub const ENDPOINT_BATCH: usize = 500;

const WHAT: &str = "network endpoint group";

impl GceProvider {
    /// Creates one zonal NEG of an endpoint backend; one already under its name must be ours
    /// (a NEG cannot change: present and ours means right). Returns whether it was created.
    pub(super) async fn ensure_neg(&self, n: &DesiredNeg) -> Result<bool, Error> {
        let scope = Scope::Zone(n.zone.clone());
        match self
            .insert(WHAT, Collection::NetworkEndpointGroups, &scope, &n.neg)
            .await?
        {
            None => Ok(true),
            Some(existing) => {
                self.check_owned(WHAT, &existing, Owner::Cluster)?;
                Ok(false)
            }
        }
    }

    /// [`crate::Provider::sync_endpoints`]: reads the backend service and each zone's NEG
    /// (`listNetworkEndpoints`, no health), then attaches what is missing in every zone, then
    /// detaches what is extra, each in batches of [`ENDPOINT_BATCH`], zones in parallel. An
    /// endpoint whose IP another endpoint of its NEG holds (the pod's port changed) is
    /// attached after that one is detached: Compute allows one endpoint per IP in a NEG.
    ///
    /// An endpoint in a zone whose NEG the backend service does not have yet (a node in a new
    /// zone) gets that zone's NEG created and added to the backend service first, and the zone
    /// is remembered for the next `ensure`.
    ///
    /// The pod ports the backend's endpoints have afterwards are remembered for the firewall;
    /// after a failure (or with no backend) they are read from the cloud when needed.
    pub(super) async fn sync_negs(&self, set: &EndpointSet) -> Result<EndpointSync, Error> {
        let key = &set.key;
        let name = self
            .namer
            .endpoint_backend(&key.namespace, &key.service, key.port);
        let result = self.sync_negs_of(&name, set).await;
        let mut known = self.pod_ports_lock();
        match &result {
            Ok(EndpointSync::Synced { .. }) => {
                let ports = set.endpoints.iter().map(|e| e.port).collect();
                known.insert(name, PodPorts { ports, read_at: None });
            }
            _ => {
                known.remove(&name);
            }
        }
        result
    }

    async fn sync_negs_of(&self, name: &str, set: &EndpointSet) -> Result<EndpointSync, Error> {
        let key = &set.key;
        let name = name.to_owned();
        // Shared with passes building the backend, exclusive to the sweep deleting it.
        let _in_use = self.backend_locks.read(&name).await;
        let Some(service) = self.endpoint_service(&name).await? else {
            return Ok(EndpointSync::NoBackend);
        };
        let mut zones = neg_zones(&service, &name);
        let mut wanted: BTreeMap<String, BTreeSet<NetworkEndpoint>> = BTreeMap::new();
        for e in &set.endpoints {
            wanted.entry(e.zone.clone()).or_default().insert(NetworkEndpoint {
                instance: e.instance.clone(),
                ip_address: e.ip.clone(),
                port: e.port,
            });
        }
        let new_zones: Vec<String> = wanted.keys().filter(|z| !zones.contains(*z)).cloned().collect();
        if !new_zones.is_empty() {
            self.add_zones(key, &name, &new_zones).await?;
            zones.extend(new_zones);
        }

        let current = join_all(zones.iter().map(|z| self.neg_endpoints(z, &name))).await;
        let mut plans = Vec::new();
        for (zone, have) in zones.iter().zip(current) {
            let have = have?;
            let want = wanted.remove(zone).unwrap_or_default();
            plans.push(ZonePlan::new(zone.clone(), &have, &want));
        }
        let attached: usize = plans.iter().map(|p| p.attach.len()).sum();
        let detached: usize = plans.iter().map(|p| p.detach_first.len() + p.detach.len()).sum();
        if attached + detached == 0 {
            return Ok(EndpointSync::Synced { attached, detached });
        }
        tracing::info!(backend = %key, attached, detached, "syncing endpoints");
        // Endpoints whose IP is taken by an endpoint going anyway, then every new one, then
        // the rest of the old ones: the backend never has fewer endpoints than it must.
        for phase in [Phase::DetachFirst, Phase::Attach, Phase::Detach] {
            let calls = plans.iter().map(|p| {
                let (method, endpoints) = match phase {
                    Phase::DetachFirst => ("detachNetworkEndpoints", &p.detach_first),
                    Phase::Attach => ("attachNetworkEndpoints", &p.attach),
                    Phase::Detach => ("detachNetworkEndpoints", &p.detach),
                };
                self.change_endpoints(&p.zone, &name, method, endpoints)
            });
            combine(join_all(calls).await)?;
        }
        Ok(EndpointSync::Synced { attached, detached })
    }

    /// The endpoint backend service `name`, if it exists and is ours.
    async fn endpoint_service(&self, name: &str) -> Result<Option<wire::BackendService>, Error> {
        let service: Option<wire::BackendService> = self
            .read(Collection::BackendServices, &Scope::Global, name)
            .await?;
        Ok(service.filter(|s| owner::owned_by(&s.description, &self.config.cluster_uid)))
    }

    /// Creates the NEGs of `zones` and adds them to the backend service `name`, taking turns
    /// with the passes that create or update it.
    async fn add_zones(&self, key: &BackendKey, name: &str, zones: &[String]) -> Result<(), Error> {
        let _one_pass_at_a_time = self.locks.lock(name).await;
        let description = owner::Owner::shared(&self.config.cluster_uid, Some(key.to_string())).describe();
        let (groups, known) = self.groups().unwrap_or_default();
        let cx = self.context(&groups, &known);
        let negs: Vec<DesiredNeg> = zones
            .iter()
            .map(|z| DesiredNeg {
                zone: z.clone(),
                neg: neg(cx, name, &description),
            })
            .collect();
        combine(join_all(negs.iter().map(|n| self.ensure_neg(n))).await)?;
        // Read afresh: a pass may have changed it since.
        let Some(current) = self.endpoint_service(name).await? else {
            return Err(Error::transient(format!(
                "backend service {name} disappeared while its endpoints were being synced"
            )));
        };
        let mut desired = current.clone();
        for n in &negs {
            let link = self.links().link(
                &Scope::Zone(n.zone.clone()),
                Collection::NetworkEndpointGroups,
                name,
            );
            if !desired
                .backends
                .iter()
                .any(|g| super::links::same_resource(&g.group, &link))
            {
                desired.backends.push(neg_backend(&link));
            }
        }
        tracing::info!(backend = %key, ?zones, "endpoints in new zones: adding their NEGs");
        let result = self
            .ensure_updatable(Some(&current), &desired, Owner::Cluster)
            .await;
        self.freshness.wrote_shared(name);
        result?;
        // The next `ensure` keeps these zones' NEGs.
        self.infra_state().zones.extend(zones.iter().cloned());
        Ok(())
    }

    /// The endpoints of the zone's NEG `name` (instances by name).
    async fn neg_endpoints(&self, zone: &str, name: &str) -> Result<BTreeSet<NetworkEndpoint>, Error> {
        self.list_neg_endpoints(zone, name)
            .await
            .map_err(|e| e.into_error(&format!("listing the endpoints of {WHAT} {zone}/{name}")))
    }

    async fn list_neg_endpoints(
        &self,
        zone: &str,
        name: &str,
    ) -> Result<BTreeSet<NetworkEndpoint>, super::api_error::ApiError> {
        let scope = Scope::Zone(zone.to_owned());
        let url = self.links().method_url(
            &scope,
            Collection::NetworkEndpointGroups,
            name,
            "listNetworkEndpoints",
        );
        let items: Vec<wire::NetworkEndpointWithHealthStatus> = self
            .compute
            .post_list(
                "networkEndpointGroups.listNetworkEndpoints",
                &url,
                &json!({ "healthStatus": "SKIP" }),
            )
            .await?;
        Ok(items
            .into_iter()
            .map(|i| NetworkEndpoint {
                instance: name_of(&i.network_endpoint.instance).to_owned(),
                ..i.network_endpoint
            })
            .collect())
    }

    /// Attaches or detaches endpoints of the zone's NEG `name`, [`ENDPOINT_BATCH`] per call.
    async fn change_endpoints(
        &self,
        zone: &str,
        name: &str,
        method: &str,
        endpoints: &[NetworkEndpoint],
    ) -> Result<(), Error> {
        let scope = Scope::Zone(zone.to_owned());
        for batch in endpoints.chunks(ENDPOINT_BATCH) {
            let url = self
                .links()
                .method_url(&scope, Collection::NetworkEndpointGroups, name, method);
            self.call_method(
                WHAT,
                name,
                &format!("networkEndpointGroups.{method}"),
                url,
                json!({ "networkEndpoints": batch }),
            )
            .await?;
        }
        Ok(())
    }

    /// [`crate::Provider::endpoint_backends`]: one list of the backend services (as fresh as
    /// any pass's).
    pub(super) async fn listed_endpoint_backends(&self) -> Result<Vec<BackendKey>, Error> {
        let not_before = self.freshness.required_shared(std::iter::empty::<&str>());
        let services = self
            .inventory
            .backend_services(&self.compute, not_before)
            .await
            .map_err(|e| e.into_error("listing the cluster's backend services"))?;
        Ok(services
            .items
            .values()
            .filter_map(|s| self.endpoint_key(s))
            .collect())
    }

    /// The Service port of `service` when it is an endpoint backend service of this cluster:
    /// its ownership record names the port, whose endpoint-backend name is the service's.
    pub(super) fn endpoint_key(&self, service: &wire::BackendService) -> Option<BackendKey> {
        let key = owner::Owner::parse(&service.description)
            .filter(|o| o.cluster == self.config.cluster_uid)?
            .backend_key()?;
        (self
            .namer
            .endpoint_backend(&key.namespace, &key.service, key.port)
            == service.name)
            .then_some(key)
    }

    /// The pod ports of the endpoints of the endpoint backend services among `services` (this
    /// cluster's, as just listed), whoever attached them: as this process last synced them, or
    /// else as the cloud holds them (`listNetworkEndpoints` of each zone's NEG, trusted for the
    /// removal grace, so that a port another writer attached since is seen before the grace of
    /// its removal runs out). Forgets the backends no longer there.
    pub(super) async fn endpoint_pod_ports(
        &self,
        services: &[&wire::BackendService],
    ) -> Result<BTreeSet<u16>, Error> {
        let now = Instant::now();
        let grace = self.config.removal_grace;
        let endpoint_services: Vec<&wire::BackendService> = services
            .iter()
            .copied()
            .filter(|s| self.endpoint_key(s).is_some())
            .collect();
        let mut ports = BTreeSet::new();
        let mut unknown = Vec::new();
        {
            let mut known = self.pod_ports_lock();
            known.retain(|name, _| endpoint_services.iter().any(|s| &s.name == name));
            for service in &endpoint_services {
                match known.get(&service.name) {
                    Some(k) if k.read_at.is_none_or(|at| now.duration_since(at) < grace) => {
                        ports.extend(k.ports.iter().copied());
                    }
                    _ => unknown.push(*service),
                }
            }
        }
        let reads = join_all(unknown.iter().map(|service| async move {
            let name = service.name.as_str();
            let zones = neg_zones(service, name);
            let lists = join_all(zones.iter().map(|zone| async move {
                match self.list_neg_endpoints(zone, name).await {
                    Ok(endpoints) => Ok(endpoints),
                    // Gone meanwhile: no endpoint.
                    Err(e) if e.is_not_found() => Ok(BTreeSet::new()),
                    Err(e) => Err(e.into_error(&format!("listing the endpoints of {WHAT} {zone}/{name}"))),
                }
            }))
            .await;
            let endpoints = combine(lists)?;
            let ports: BTreeSet<u16> = endpoints.iter().flatten().map(|e| e.port).collect();
            Ok::<_, Error>((name, ports))
        }))
        .await;
        let read = combine(reads)?;
        let mut known = self.pod_ports_lock();
        for (name, read_ports) in read {
            ports.extend(read_ports.iter().copied());
            // A sync that finished meanwhile knows better.
            if known.get(name).is_none_or(|k| k.read_at.is_some()) {
                known.insert(
                    name.to_owned(),
                    PodPorts {
                        ports: read_ports,
                        read_at: Some(now),
                    },
                );
            }
        }
        Ok(ports)
    }

    fn pod_ports_lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, PodPorts>> {
        self.pod_ports.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// [`crate::Provider::endpoint_health`]: one `getHealth` per zonal NEG of the endpoint
    /// backend service. No backend service (not built yet, or deleted): no endpoint.
    pub(super) async fn neg_health(
        &self,
        key: &BackendKey,
    ) -> Result<BTreeMap<Endpoint, EndpointHealth>, Error> {
        let name = self
            .namer
            .endpoint_backend(&key.namespace, &key.service, key.port);
        let Some(service) = self.endpoint_service(&name).await? else {
            return Ok(BTreeMap::new());
        };
        let url = self
            .links()
            .method_url(&Scope::Global, Collection::BackendServices, &name, "getHealth");
        let groups: Vec<&String> = service
            .backends
            .iter()
            .map(|b| &b.group)
            .filter(|g| is_neg(g))
            .collect();
        let name = &name;
        let answers = join_all(groups.iter().map(|group| {
            let url = url.clone();
            async move {
                let answer: wire::BackendServiceGroupHealth = self
                    .compute
                    .health_query("backendServices.getHealth", &url, &json!({ "group": group }))
                    .await
                    .map_err(|e| e.into_error(&format!("reading the health of backend service {name}")))?;
                Ok::<_, Error>((zone_of(group).unwrap_or_default().to_owned(), answer))
            }
        }))
        .await;
        let mut health = BTreeMap::new();
        for (zone, answer) in combine(answers)? {
            for status in answer.health_status {
                let (Some(ip), Some(port)) = (status.ip_address, status.port) else {
                    continue;
                };
                let endpoint = Endpoint {
                    zone: zone.clone(),
                    instance: status
                        .instance
                        .as_deref()
                        .map(name_of)
                        .unwrap_or_default()
                        .to_owned(),
                    ip,
                    port,
                };
                let state = match status.health_state.as_deref() {
                    Some("HEALTHY") => EndpointHealth::Healthy,
                    Some("UNHEALTHY") => EndpointHealth::Unhealthy,
                    _ => EndpointHealth::Unknown,
                };
                health.insert(endpoint, state);
            }
        }
        Ok(health)
    }
}

/// The pod ports of one endpoint backend's endpoints.
#[derive(Debug)]
pub(super) struct PodPorts {
    ports: BTreeSet<u16>,
    /// `None`: as this process last synced them (and keeps them); else when read from the cloud.
    read_at: Option<Instant>,
}

/// The zones of the NEGs named `name` that the backend service has.
fn neg_zones(service: &wire::BackendService, name: &str) -> BTreeSet<String> {
    service
        .backends
        .iter()
        .filter(|b| is_neg(&b.group) && name_of(&b.group) == name)
        .filter_map(|b| zone_of(&b.group).map(str::to_owned))
        .collect()
}

#[derive(Clone, Copy)]
enum Phase {
    DetachFirst,
    Attach,
    Detach,
}

/// What to change in one zone's NEG.
#[derive(Debug, PartialEq, Eq)]
struct ZonePlan {
    zone: String,
    /// Extra endpoints at an IP a wanted endpoint takes: detached before the attach.
    detach_first: Vec<NetworkEndpoint>,
    attach: Vec<NetworkEndpoint>,
    detach: Vec<NetworkEndpoint>,
}

impl ZonePlan {
    fn new(zone: String, have: &BTreeSet<NetworkEndpoint>, want: &BTreeSet<NetworkEndpoint>) -> Self {
        let attach: Vec<NetworkEndpoint> = want.difference(have).cloned().collect();
        let ips: BTreeSet<&str> = attach.iter().map(|e| e.ip_address.as_str()).collect();
        let (detach_first, detach) = have
            .difference(want)
            .cloned()
            .partition(|e| ips.contains(e.ip_address.as_str()));
        Self {
            zone,
            detach_first,
            attach,
            detach,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(ip: &str, port: u16) -> NetworkEndpoint {
        NetworkEndpoint {
            instance: "node".into(),
            ip_address: ip.into(),
            port,
        }
    }

    #[test]
    fn a_zone_plan_attaches_first_unless_an_ip_is_taken() {
        let have: BTreeSet<_> = [ep("10.4.0.1", 80), ep("10.4.0.2", 80), ep("10.4.0.3", 80)].into();
        let want: BTreeSet<_> = [ep("10.4.0.1", 80), ep("10.4.0.2", 8080), ep("10.4.0.4", 80)].into();
        let plan = ZonePlan::new("z".into(), &have, &want);
        assert_eq!(plan.attach, vec![ep("10.4.0.2", 8080), ep("10.4.0.4", 80)]);
        assert_eq!(plan.detach_first, vec![ep("10.4.0.2", 80)]);
        assert_eq!(plan.detach, vec![ep("10.4.0.3", 80)]);
        let same = ZonePlan::new("z".into(), &want, &want);
        assert!(same.attach.is_empty() && same.detach.is_empty() && same.detach_first.is_empty());
    }
}
