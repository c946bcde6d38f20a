//! Deleting a load balancer, sweeping shared backends no load balancer uses, and finding every
//! load balancer this cluster owns (for garbage collection).

use super::GceProvider;
use super::apply::combine;
use super::ensure::referenced_services;
use super::links::{Collection, path_of};
use super::owner::{self, Owner};
use crate::Error;
use crate::model::LoadBalancerKey;
use futures::future::join_all;
use std::collections::{BTreeMap, BTreeSet};
use tokio::time::Instant;

impl GceProvider {
    pub(super) async fn delete_lb(&self, key: &LoadBalancerKey) -> Result<(), Error> {
        let lb_id = key.to_string();
        {
            let _shared = self.shared.read().await;
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
            macro_rules! owned {
                ($snapshot:expr) => {
                    $snapshot
                        .items
                        .iter()
                        .filter(|(_, r)| owner::owned_by_lb(&r.description, cluster, ns, name))
                        .map(|(n, _)| n.clone())
                        .collect::<Vec<String>>()
                };
            }
            let result = self
                .remove_in_order(
                    &owned!(view.forwarding_rules),
                    &owned!(view.http_proxies),
                    &owned!(view.https_proxies),
                    &owned!(view.url_maps),
                    &owned!(view.certificates),
                    &owned!(view.addresses),
                )
                .await;
            self.freshness.wrote_lb(&lb_id);
            result?;
        }
        self.sweep_backends().await?;
        self.freshness.forget_lb(&lb_id);
        Ok(())
    }

    /// Deletes every shared backend service (and its health check) that no URL map of this
    /// cluster refers to any more. Runs alone: no pass is between creating a backend and
    /// referring to it meanwhile.
    pub(super) async fn sweep_backends(&self) -> Result<(), Error> {
        let _alone = self.shared.write().await;
        let view = self
            .inventory
            .backend_view(&self.compute, Instant::now())
            .await
            .map_err(|e| e.into_error("reading the cluster's backend services"))?;
        let referenced: BTreeSet<&str> = view
            .url_maps
            .items
            .values()
            .flat_map(referenced_services)
            .map(|s| path_of(s))
            .collect();
        let cluster = &self.config.cluster_uid;
        let unused: Vec<&String> = view
            .backend_services
            .items
            .iter()
            .filter(|(_, bs)| {
                Owner::parse(&bs.description)
                    .is_some_and(|o| &o.cluster == cluster && o.ingress == owner::SHARED)
            })
            .map(|(n, _)| n)
            .filter(|n| !referenced.contains(path_of(&self.global_link(Collection::BackendServices, n))))
            .collect();
        let health_checks = &view.health_checks;
        let deletions = unused.into_iter().map(|name| async move {
            // A backend service still used by something we do not know of stays.
            if !self
                .remove_if_unused("backend service", Collection::BackendServices, name)
                .await?
            {
                return Ok(());
            }
            self.freshness.wrote_shared(name);
            if health_checks
                .items
                .get(name)
                .is_some_and(|hc| owner::owned_by(&hc.description, cluster))
            {
                self.remove_if_unused("health check", Collection::HealthChecks, name)
                    .await?;
            }
            Ok::<(), Error>(())
        });
        combine(join_all(deletions).await)?;
        Ok(())
    }

    pub(super) async fn owned_lbs(&self) -> Result<Vec<LoadBalancerKey>, Error> {
        let view = self
            .inventory
            .view(&self.compute, Instant::now())
            .await
            .map_err(|e| e.into_error("reading the cluster's resources"))?;
        let cluster = &self.config.cluster_uid;
        let mut keys: BTreeMap<(String, String), String> = BTreeMap::new();
        let mut note = |description: &str| {
            if let Some(o) = Owner::parse(description).filter(|o| &o.cluster == cluster)
                && let Some((ns, name)) = o.ingress_key()
            {
                let uid = keys.entry((ns.to_owned(), name.to_owned())).or_default();
                if uid.is_empty() {
                    *uid = o.uid.clone().unwrap_or_default();
                }
            }
        };
        view.forwarding_rules
            .items
            .values()
            .for_each(|r| note(&r.description));
        view.http_proxies
            .items
            .values()
            .for_each(|r| note(&r.description));
        view.https_proxies
            .items
            .values()
            .for_each(|r| note(&r.description));
        view.url_maps.items.values().for_each(|r| note(&r.description));
        view.certificates
            .items
            .values()
            .for_each(|r| note(&r.description));
        view.addresses.items.values().for_each(|r| note(&r.description));
        Ok(keys
            .into_iter()
            .map(|((namespace, name), uid)| LoadBalancerKey { namespace, name, uid })
            .collect())
    }
}
