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
        result?;
        self.sweep_backends().await
    }

    /// Deletes every shared backend service that no URL map of this cluster refers to, with its
    /// health check, and every shared health check left without its backend service (a crash
    /// between the two, a backend service that could not be created). A backend a pass holds
    /// is left for a later sweep: the sweep never waits on a pass, nor deletes under one.
    pub(super) async fn sweep_backends(&self) -> Result<(), Error> {
        let candidates = self.unused_backends(Instant::now()).await?;
        let mut claimed = Vec::new();
        for name in candidates {
            if let Some(guard) = self.backend_locks.try_write(&name) {
                claimed.push((name, guard));
            }
        }
        if claimed.is_empty() {
            return Ok(());
        }
        // Read again now that nobody can start using the claimed names.
        let still_unused = self.unused_backends(Instant::now()).await?;
        let deletions = claimed
            .iter()
            .filter(|(name, _)| still_unused.contains(name))
            .map(|(name, _)| async move {
                let g = Scope::Global;
                if !self
                    .remove_if_unused_in("backend service", Collection::BackendServices, &g, name)
                    .await?
                {
                    return Ok(());
                }
                self.freshness.wrote_shared(name);
                self.remove_if_unused_in("health check", Collection::HealthChecks, &g, name)
                    .await?;
                Ok::<(), Error>(())
            });
        combine(join_all(deletions).await)?;
        Ok(())
    }

    /// Names of the shared backends (backend service and/or health check) that nothing uses.
    async fn unused_backends(&self, not_before: Instant) -> Result<BTreeSet<String>, Error> {
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
        let services = view
            .backend_services
            .items
            .iter()
            .filter(|(_, bs)| shared(&bs.description))
            .map(|(n, _)| n)
            .filter(|n| !referenced.contains(path_of(&self.global_link(Collection::BackendServices, n))));
        let orphan_checks = view
            .health_checks
            .items
            .iter()
            .filter(|(n, hc)| shared(&hc.description) && !view.backend_services.items.contains_key(*n))
            .map(|(n, _)| n);
        Ok(services.chain(orphan_checks).cloned().collect())
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
