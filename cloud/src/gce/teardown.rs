//! Deleting a load balancer, sweeping shared backends no load balancer uses, and finding every
//! load balancer this cluster owns (for garbage collection).

use super::GceProvider;
use super::apply::combine;
use super::ensure::referenced_services;
use super::links::{Collection, Scope, path_of};
use super::owner::{self, Owner};
use crate::Error;
use crate::model::LoadBalancerKey;
use futures::future::join_all;
use std::collections::{BTreeMap, BTreeSet};
use tokio::time::Instant;

/// What a sweep may delete, by name.
#[derive(Debug, Default)]
struct Unused {
    /// Backend services no URL map refers to (their health checks go with them).
    services: BTreeSet<String>,
    /// Health checks without their backend service.
    checks: BTreeSet<String>,
    /// NEG name → the zones where no backend service that stays has it.
    negs: BTreeMap<String, BTreeSet<String>>,
}

impl Unused {
    fn names(&self) -> BTreeSet<String> {
        self.services
            .iter()
            .chain(&self.checks)
            .chain(self.negs.keys())
            .cloned()
            .collect()
    }
}

impl GceProvider {
    pub(super) async fn delete_lb(&self, key: &LoadBalancerKey) -> Result<(), Error> {
        let lb_id = key.to_string();
        let view = self
            .inventory
            .view(&self.compute, Instant::now())
            .await
            .map_err(|e| e.into_error(&format!("reading the resources of {lb_id}")))?;
        let (cluster, ns, name) = (
            self.config.cluster_uid.as_str(),
            key.namespace.as_str(),
            key.name.as_str(),
        );
        let controller = self.config.controller.as_deref();
        let owned = view
            .lb_resources(&|_, description| owner::owned_by_lb(description, cluster, controller, ns, name));
        let result = self.remove_in_order(&owned).await;
        // Remembered (not forgotten): a re-created load balancer must read afresh.
        self.freshness.wrote_lb(&lb_id);
        // A switch it was making is over.
        self.set_switch_targets(&lb_id, BTreeSet::new());
        result?;
        self.sweep_backends().await
    }

    /// Deletes every shared backend service that no URL map of this cluster refers to, with its
    /// health check and NEGs, every shared health check left without its backend service (a
    /// crash between the two, a backend service that could not be created), and every NEG of
    /// ours no backend service of ours has (a crash between a NEG's creation and its backend
    /// service's, a zone dropped). A backend a pass or an endpoint sync holds is left for a
    /// later sweep: the sweep never waits on them, nor deletes under them; nor does it take a
    /// backend a load balancer is switching to, which no URL map refers to yet.
    ///
    /// NEGs go after their backend service (Compute refuses to delete one in use), endpoints
    /// and all: Compute deletes a NEG that still has endpoints, as ingress-gce's garbage
    /// collector relies on (`pkg/neg/manager.go`, `ensureDeleteNetworkEndpointGroup` deletes
    /// the NEG of a stopped syncer without detaching anything).
    pub(super) async fn sweep_backends(&self) -> Result<(), Error> {
        let candidates = self.unused_backends(Instant::now()).await?;
        let mut claimed = Vec::new();
        for name in candidates.names() {
            if let Some(guard) = self.backend_locks.try_write(&name) {
                claimed.push((name, guard));
            }
        }
        if claimed.is_empty() {
            return Ok(());
        }
        // Read again now that nobody can start using the claimed names.
        let still_unused = self.unused_backends(Instant::now()).await?;
        let still = &still_unused;
        let deletions = claimed.iter().map(|(name, _)| async move {
            let g = Scope::Global;
            let service = still.services.contains(name);
            if service {
                if !self
                    .remove_if_unused_in("backend service", Collection::BackendServices, &g, name)
                    .await?
                {
                    return Ok(());
                }
                self.freshness.wrote_shared(name);
            }
            let check = async {
                if service || still.checks.contains(name) {
                    self.remove_if_unused_in("health check", Collection::HealthChecks, &g, name)
                        .await
                        .map(|_| ())
                } else {
                    Ok(())
                }
            };
            let negs = join_all(still.negs.get(name).into_iter().flatten().map(|zone| {
                let scope = Scope::Zone(zone.clone());
                async move {
                    self.remove_if_unused_in(
                        "network endpoint group",
                        Collection::NetworkEndpointGroups,
                        &scope,
                        name,
                    )
                    .await
                    .map(|_| ())
                }
            }));
            let (check, negs) = tokio::join!(check, negs);
            combine(std::iter::once(check).chain(negs).collect())?;
            Ok::<(), Error>(())
        });
        combine(join_all(deletions).await)?;
        Ok(())
    }

    /// The shared backends (backend service, health check, NEGs) that nothing uses.
    async fn unused_backends(&self, not_before: Instant) -> Result<Unused, Error> {
        let view = self
            .inventory
            .backend_view(&self.compute, not_before)
            .await
            .map_err(|e| e.into_error("reading the cluster's backend services"))?;
        let cluster = &self.config.cluster_uid;
        let shared = |description: &str| {
            Owner::parse(description).is_some_and(|o| &o.cluster == cluster && o.ingress == owner::SHARED)
        };
        let referenced: BTreeSet<&str> = view
            .url_maps
            .items
            .values()
            .flat_map(referenced_services)
            .map(|s| path_of(s))
            .collect();
        let services: BTreeSet<String> = view
            .backend_services
            .items
            .iter()
            .filter(|(_, bs)| shared(&bs.description))
            .map(|(n, _)| n)
            .filter(|n| !referenced.contains(path_of(&self.global_link(Collection::BackendServices, n))))
            .filter(|n| !self.is_switch_target(n))
            .cloned()
            .collect();
        let checks = view
            .health_checks
            .items
            .iter()
            .filter(|(n, hc)| shared(&hc.description) && !view.backend_services.items.contains_key(*n))
            .map(|(n, _)| n.clone())
            .collect();
        // NEGs no backend service keeps (those going with their backend service count as kept
        // by none).
        let kept: BTreeSet<&str> = view
            .backend_services
            .items
            .iter()
            .filter(|(n, _)| !services.contains(*n))
            .flat_map(|(_, bs)| bs.backends.iter().map(|b| path_of(&b.group)))
            .collect();
        let mut negs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for neg in view.negs.items.values().filter(|n| shared(&n.description)) {
            let Some(zone) = neg.zone.as_deref().map(super::links::name_of) else {
                continue;
            };
            let link = self.links().link(
                &Scope::Zone(zone.to_owned()),
                Collection::NetworkEndpointGroups,
                &neg.name,
            );
            if !kept.contains(path_of(&link)) {
                negs.entry(neg.name.clone()).or_default().insert(zone.to_owned());
            }
        }
        Ok(Unused {
            services,
            checks,
            negs,
        })
    }

    pub(super) async fn owned_lbs(&self) -> Result<Vec<LoadBalancerKey>, Error> {
        let view = self
            .inventory
            .view(&self.compute, Instant::now())
            .await
            .map_err(|e| e.into_error("reading the cluster's resources"))?;
        let cluster = &self.config.cluster_uid;
        let mut keys: BTreeMap<(String, String), String> = BTreeMap::new();
        for description in view.lb_descriptions() {
            // Only this controller's: another controller of the cluster collects its own.
            if let Some(o) = Owner::parse(description)
                .filter(|o| &o.cluster == cluster && o.controller == self.config.controller)
                && let Some((ns, name)) = o.ingress_key()
            {
                let uid = keys.entry((ns.to_owned(), name.to_owned())).or_default();
                if uid.is_empty() {
                    *uid = o.uid.clone().unwrap_or_default();
                }
            }
        }
        Ok(keys
            .into_iter()
            .map(|((namespace, name), uid)| LoadBalancerKey { namespace, name, uid })
            .collect())
    }
}
