//! One pass over one load balancer: read what exists, then create or update in dependency
//! order, independent branches in parallel, then remove what is no longer wanted.
//!
//! ```text
//!  stage 1 (parallel): health check ─┬→ backend service  (per backend, all backends at once)
//!                      zonal NEGs ─────┘  (endpoint backends only)
//!                      certificates · address · redirect URL map
//!  (switch)            health of a backend a Service port is switching to (only then)
//!  stage 2:            URL map
//!  stage 3 (parallel): target HTTP proxy · target HTTPS proxy
//!  stage 4 (parallel): :80 forwarding rule · :443 forwarding rule
//!  stage 5:            stale forwarding rules → proxies → URL maps, certificates → address
//! ```
//!
//! The pass holds a shared lock on each of its backends from before it reads until its URL map
//! refers to them; the sweep of unused backends only takes backends nobody holds, so it never
//! deletes a backend between its creation and its first use, and never waits on a pass.
//!
//! **Switching a Service port between node port and endpoints.** The two kinds of backend have
//! different names ([`super::names::Namer::endpoint_backend`]): a switch builds the new backend
//! service beside the old one, whose URL map reference stays until the new one has a healthy
//! member (read with `getHealth`, only while the URL map still routes the Service port to the
//! other kind); then the URL map moves and the old backend, now unused, is swept like any
//! dropped backend. Meanwhile the status lists the port under `switching`, and the new backend
//! is protected from sweeps (`switch_targets`) although no URL map refers to it yet.

use super::apply::{Owner, combine};
use super::desired::{Desired, DesiredAddress, DesiredBackend, DesiredNeg};
use super::diff::{self, RuleChange};
use super::inventory::View;
use super::links::{Collection, Scope, path_of};
use super::{GceProvider, owner, wire};
use crate::Error;
use crate::model::{BackendKey, BackendTarget, LoadBalancer};
use crate::provider::{LoadBalancerStatus, ResourceKind};
use futures::future::join_all;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use tokio::time::Instant;

impl GceProvider {
    pub(super) async fn ensure_lb(&self, lb: &LoadBalancer) -> Result<LoadBalancerStatus, Error> {
        // Refused before any call: nothing is reserved for a load balancer Compute cannot build.
        self.check_limits(lb)?;
        let (groups, zones) = self.groups()?;
        let cx = self.context(&groups, &zones);
        let desired = super::desired::build(cx, lb);
        let key = &lb.key;
        let lb_id = key.to_string();
        let owner = Owner::Lb {
            namespace: &key.namespace,
            name: &key.name,
        };

        let backend_names: BTreeSet<&str> =
            desired.backends.iter().map(|b| b.service.name.as_str()).collect();
        let mut in_use = Vec::with_capacity(backend_names.len());
        for name in &backend_names {
            in_use.push(self.backend_locks.read(name).await);
        }
        let not_before = self.freshness.required(&lb_id, backend_names.iter().copied());
        let view = self
            .inventory
            .view(&self.compute, not_before)
            .await
            .map_err(|e| e.into_error(&format!("reading the resources of {lb_id}")))?;
        // Decided now: a later failure must not leave a dropped backend behind for good.
        let dropped = self.dropped_backends(&view, &desired);
        let switches = self.switches(lb, &view, &desired);
        self.set_switch_targets(&lb_id, switches.iter().map(|s| s.new.clone()).collect());

        let mut wrote = false;
        let mut switching = Vec::new();
        let result = self
            .apply(
                lb,
                &desired,
                &view,
                not_before,
                owner,
                &mut wrote,
                in_use,
                &switches,
                &mut switching,
            )
            .await;
        if result.is_ok() {
            let still: BTreeSet<String> = switches
                .iter()
                .filter(|s| switching.iter().any(|(k, _)| k == &s.key))
                .map(|s| s.new.clone())
                .collect();
            self.set_switch_targets(&lb_id, still);
        }
        if wrote || result.is_err() {
            // Even a failed pass may have written: the next one must not trust an older read.
            self.freshness.wrote_lb(&lb_id);
        }
        if dropped {
            let swept = self.sweep_backends().await;
            if result.is_ok() {
                swept?;
            }
        }
        let ip = result?;
        Ok(self.status(lb, &desired, ip, wrote, &switching))
    }

    /// The Service ports whose backend service the live URL map still routes to the other
    /// kind of backend (node port ↔ endpoints) than the model's, that backend service existing.
    fn switches(&self, lb: &LoadBalancer, view: &View, desired: &Desired) -> Vec<Switch> {
        let Some(map) = view.url_maps.items.get(&desired.url_map.name) else {
            return Vec::new();
        };
        let referenced: BTreeSet<&str> = referenced_services(map).into_iter().map(|s| path_of(s)).collect();
        lb.backends
            .iter()
            .filter_map(|b| {
                let endpoints = b.target == BackendTarget::Endpoints;
                let new = self.namer.backend_for(&b.key, endpoints);
                let old = self.namer.backend_for(&b.key, !endpoints);
                let old_link = self.global_link(Collection::BackendServices, &old);
                (referenced.contains(path_of(&old_link)) && view.backend_services.items.contains_key(&old))
                    .then(|| Switch {
                        key: b.key.clone(),
                        new,
                        old,
                    })
            })
            .collect()
    }

    /// Records the backends the load balancer `lb_id` is switching to, which sweeps leave alone.
    pub(super) fn set_switch_targets(&self, lb_id: &str, names: BTreeSet<String>) {
        let mut targets = self.switch_targets.lock().unwrap_or_else(|p| p.into_inner());
        for lbs in targets.values_mut() {
            lbs.remove(lb_id);
        }
        for name in names {
            targets.entry(name).or_default().insert(lb_id.to_owned());
        }
        targets.retain(|_, lbs| !lbs.is_empty());
    }

    /// Whether a sweep must leave `name` alone: a load balancer is switching to it.
    pub(super) fn is_switch_target(&self, name: &str) -> bool {
        self.switch_targets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(name)
    }

    /// Whether the backend service a switch goes to has a healthy member (one `getHealth` per
    /// group; an empty or unreadable one has none).
    async fn serves_healthy(&self, b: &DesiredBackend) -> bool {
        let name = &b.service.name;
        let groups = join_all(
            b.service
                .backends
                .iter()
                .map(|g| self.group_health(name, &g.group)),
        )
        .await;
        matches!(
            super::health::verdict(&groups),
            crate::provider::BackendHealth::Healthy { .. }
        )
    }

    /// Stages 1 to 5; returns the address's IP. `in_use` (the backend locks) is released once
    /// the URL map refers to the backends.
    /// `switches`: the Service ports the URL map routes to the other kind of backend; those
    /// whose new backend has no healthy member yet stay there, and go to `switching` with the
    /// backend service still serving them.
    #[allow(clippy::too_many_arguments)]
    async fn apply(
        &self,
        lb: &LoadBalancer,
        desired: &Desired,
        view: &View,
        not_before: Instant,
        owner: Owner<'_>,
        wrote: &mut bool,
        in_use: Vec<tokio::sync::OwnedRwLockReadGuard<()>>,
        switches: &[Switch],
        switching: &mut Vec<(BackendKey, String)>,
    ) -> Result<Option<String>, Error> {
        // Stage 1.
        let backends = join_all(desired.backends.iter().map(|b| self.ensure_backend(view, b)));
        let certificates = join_all(
            desired
                .certificates
                .iter()
                .map(|c| self.ensure_certificate(view, c, lb)),
        );
        let redirect = async {
            match &desired.redirect_map {
                Some(m) => {
                    self.ensure_updatable(view.url_maps.items.get(&m.name), m, owner)
                        .await
                }
                None => Ok(false),
            }
        };
        let (backends, certificates, address, redirect) = tokio::join!(
            backends,
            certificates,
            self.ensure_address(view, &desired.address, owner, not_before),
            redirect
        );
        let mut stage: Vec<Result<bool, Error>> = backends;
        stage.extend(certificates);
        stage.push(redirect);
        let ip = match address {
            Ok((ip, w)) => {
                *wrote |= w;
                ip
            }
            Err(e) => {
                stage.push(Err(e));
                None
            }
        };
        *wrote |= stage.iter().any(|r| matches!(r, Ok(true)));
        combine(stage)?;
        // A switch moves the URL map only once the new backend serves.
        let mut keep = BTreeMap::new();
        for s in switches {
            let Some(b) = desired.backends.iter().find(|b| b.service.name == s.new) else {
                continue;
            };
            if !self.serves_healthy(b).await {
                tracing::info!(backend = %s.key, from = %s.old, to = %s.new, "switch waits for a healthy member");
                keep.insert(s.key.clone(), s.old.clone());
                switching.push((s.key.clone(), s.old.clone()));
            }
        }
        let routed;
        let url_map = if keep.is_empty() {
            &desired.url_map
        } else {
            let (groups, zones) = self.groups()?;
            routed = super::desired::build_serving(self.context(&groups, &zones), lb, &keep).url_map;
            &routed
        };
        // Stage 2.
        *wrote |= self
            .ensure_updatable(view.url_maps.items.get(&url_map.name), url_map, owner)
            .await?;
        drop(in_use);
        // Stage 3.
        let (http, https) = tokio::join!(
            self.ensure_http_proxy(view, desired.http_proxy.as_ref(), owner),
            self.ensure_https_proxy(view, desired.https_proxy.as_ref(), lb, owner)
        );
        *wrote |= [&http, &https].iter().any(|r| matches!(r, Ok(true)));
        combine(vec![http, https])?;
        // Stage 4.
        let (http, https) = tokio::join!(
            self.ensure_rule(view, desired.http_rule.as_ref(), ip.as_deref(), owner),
            self.ensure_rule(view, desired.https_rule.as_ref(), ip.as_deref(), owner)
        );
        *wrote |= [&http, &https].iter().any(|r| matches!(r, Ok(true)));
        combine(vec![http, https])?;
        // Stage 5.
        *wrote |= self.remove_stale(view, desired, lb).await?;
        Ok(ip)
    }

    /// A health check and its backend service (and an endpoint backend's NEGs, beside the
    /// health check). Passes of several load balancers sharing the backend take turns, so only
    /// one of them creates it.
    async fn ensure_backend(&self, view: &View, b: &DesiredBackend) -> Result<bool, Error> {
        let name = &b.service.name;
        let _one_pass_at_a_time = self.locks.lock(name).await;
        // Another pass may have written it since our snapshot: then read it afresh.
        let stale = self
            .freshness
            .shared_written_at(name)
            .is_some_and(|t| t > view.backend_services.taken_at);
        let (hc_now, bs_now) = if stale {
            let hc = match &b.health_check {
                Some(_) => {
                    self.read::<wire::HealthCheck>(Collection::HealthChecks, &Scope::Global, name)
                        .await?
                }
                None => None,
            };
            (
                hc,
                self.read::<wire::BackendService>(Collection::BackendServices, &Scope::Global, name)
                    .await?,
            )
        } else {
            (
                view.health_checks.items.get(name).cloned(),
                view.backend_services.items.get(name).cloned(),
            )
        };
        if let Some(current) = &bs_now {
            self.check_scheme("backend service", name, current.load_balancing_scheme.as_deref())?;
        }
        let mut wrote = false;
        let result = async {
            // NEGs the backend service does not have yet are created beside the health check
            // (a NEG cannot change: present means right, once checked to be ours).
            let missing: Vec<&DesiredNeg> = b
                .negs
                .iter()
                .filter(|n| {
                    let link = self.links().link(
                        &Scope::Zone(n.zone.clone()),
                        Collection::NetworkEndpointGroups,
                        &n.neg.name,
                    );
                    !bs_now.as_ref().is_some_and(|bs| {
                        bs.backends
                            .iter()
                            .any(|g| super::links::same_resource(&g.group, &link))
                    })
                })
                .collect();
            let health_check = async {
                match &b.health_check {
                    Some(hc) => self.ensure_updatable(hc_now.as_ref(), hc, Owner::Cluster).await,
                    None => Ok(false),
                }
            };
            let negs = join_all(missing.iter().map(|n| self.ensure_neg(n)));
            let (hc, negs) = tokio::join!(health_check, negs);
            let mut results = vec![hc];
            results.extend(negs);
            wrote |= results.iter().any(|r| matches!(r, Ok(true)));
            combine(results)?;
            wrote |= self
                .ensure_updatable(bs_now.as_ref(), &b.service, Owner::Cluster)
                .await?;
            Ok::<(), Error>(())
        }
        .await;
        if wrote || result.is_err() {
            self.freshness.wrote_shared(name);
        }
        match result {
            Ok(()) => Ok(wrote),
            Err(e) => Err(self.explain_group_conflict(e).await),
        }
    }

    /// The load-balancing scheme cannot change in place: a resource built for the other one
    /// would have to be re-created, which means an outage; the user decides.
    pub(super) fn check_scheme(&self, what: &str, name: &str, current: Option<&str>) -> Result<(), Error> {
        let current = current.unwrap_or("EXTERNAL");
        let wanted = self.config.scheme.as_str();
        if current == wanted {
            return Ok(());
        }
        Err(Error::user(format!(
            "{what} {name} was built for load-balancing scheme {current}, but the controller now builds {wanted} \
             (--gce-classic changed): the scheme cannot change in place; delete the Ingress and create it again \
             (its address changes), or run the controller with the scheme it was built with"
        )))
    }

    /// Certificates are immutable and named by content: present means right.
    async fn ensure_certificate(
        &self,
        view: &View,
        cert: &wire::SslCertificate,
        lb: &LoadBalancer,
    ) -> Result<bool, Error> {
        let owner = Owner::Lb {
            namespace: &lb.key.namespace,
            name: &lb.key.name,
        };
        if let Some(existing) = view.certificates.items.get(&cert.name) {
            self.check_owned("SSL certificate", existing, owner)?;
            return Ok(false);
        }
        match self
            .insert(
                "SSL certificate",
                Collection::SslCertificates,
                &Scope::Global,
                cert,
            )
            .await
        {
            Ok(None) => Ok(true),
            Ok(Some(existing)) => self
                .check_owned("SSL certificate", &existing, owner)
                .map(|_| false),
            Err(e)
                if e.category == crate::ErrorCategory::Bug
                    || super::api_error::of(&e).is_some_and(|a| a.is_invalid_user_value()) =>
            {
                // The API refused the certificate itself: say which Secret it came from.
                let source = lb
                    .frontends
                    .https
                    .iter()
                    .flat_map(|h| &h.certificates)
                    .find(|c| cert.name.ends_with(&c.sha256[..16.min(c.sha256.len())]))
                    .map(|c| c.source.as_str())
                    .unwrap_or("a TLS Secret");
                Err(Error::user(format!(
                    "the certificate from Secret {source} was refused: {}",
                    e.message
                )))
            }
            Err(e) => Err(e),
        }
    }

    /// The address: reserved by us, or the user's static one. Returns its IP (unknown in a dry
    /// run) and whether anything was written.
    async fn ensure_address(
        &self,
        view: &View,
        address: &DesiredAddress,
        owner: Owner<'_>,
        not_before: Instant,
    ) -> Result<(Option<String>, bool), Error> {
        let with_ip = |name: &str, ip: Option<String>| match ip {
            Some(ip) => Ok(Some(ip)),
            None => Err(Error::transient(format!("address {name} has no IP yet"))),
        };
        match address {
            DesiredAddress::Reserve(a) => {
                if let Some(existing) = view.addresses.items.get(&a.name) {
                    self.check_owned("address", existing, owner)?;
                    return Ok((with_ip(&a.name, existing.address.clone())?, false));
                }
                if let Some(existing) = self
                    .insert("address", Collection::Addresses, &Scope::Global, a)
                    .await?
                {
                    self.check_owned("address", &existing, owner)?;
                    return Ok((with_ip(&a.name, existing.address)?, false));
                }
                if self.compute.dry_run() {
                    return Ok((None, true));
                }
                let created: Option<wire::Address> =
                    self.read(Collection::Addresses, &Scope::Global, &a.name).await?;
                Ok((with_ip(&a.name, created.and_then(|c| c.address))?, true))
            }
            DesiredAddress::Static { name, .. } => {
                if let Some(ip) = self.static_ips.fresh(name, not_before) {
                    return Ok((Some(ip), false));
                }
                let found: Option<wire::Address> =
                    self.read(Collection::Addresses, &Scope::Global, name).await?;
                match found.and_then(|a| a.address) {
                    Some(ip) => {
                        self.static_ips.store(name, &ip);
                        Ok((Some(ip), false))
                    }
                    None => Err(Error::user(format!(
                        "the static address {name} named by kubernetes.io/ingress.global-static-ip-name does not exist \
                         in project {} (reserve it with `gcloud compute addresses create {name} --global`)",
                        self.links().project()
                    ))),
                }
            }
        }
    }

    async fn ensure_http_proxy(
        &self,
        view: &View,
        desired: Option<&wire::TargetHttpProxy>,
        owner: Owner<'_>,
    ) -> Result<bool, Error> {
        let Some(desired) = desired else { return Ok(false) };
        let what = "target HTTP proxy";
        let existing = view.http_proxies.items.get(&desired.name);
        let Some(current) = self
            .existing_or_create(what, Collection::TargetHttpProxies, existing, desired, owner)
            .await?
        else {
            return Ok(true);
        };
        if super::links::same_resource(&current.url_map, &desired.url_map) {
            return Ok(false);
        }
        let url = self
            .links()
            .project_method_url(Collection::TargetHttpProxies, &desired.name, "setUrlMap");
        self.call_method(
            "target HTTP proxy",
            &desired.name,
            "targetHttpProxies.setUrlMap",
            url,
            json!({ "urlMap": desired.url_map }),
        )
        .await?;
        Ok(true)
    }

    async fn ensure_https_proxy(
        &self,
        view: &View,
        desired: Option<&wire::TargetHttpsProxy>,
        lb: &LoadBalancer,
        owner: Owner<'_>,
    ) -> Result<bool, Error> {
        let Some(desired) = desired else { return Ok(false) };
        // A reference that does not exist here is a pre-shared certificate or SSL policy the user named.
        let explain = |e: Error| {
            if !super::api_error::of(&e).is_some_and(|a| a.is_not_found()) {
                return e;
            }
            let https = lb.frontends.https.as_ref();
            let pre_shared = https
                .map(|h| h.pre_shared_certificates.join(", "))
                .unwrap_or_default();
            let policy = https.and_then(|h| h.ssl_policy.clone()).unwrap_or_default();
            Error::user(format!(
                "{} (check that the pre-shared certificates [{pre_shared}] and the SSL policy [{policy}] exist)",
                e.message
            ))
        };
        let existing = view.https_proxies.items.get(&desired.name);
        let created = self.existing_or_create(
            "target HTTPS proxy",
            Collection::TargetHttpsProxies,
            existing,
            desired,
            owner,
        );
        let Some(current) = created.await.map_err(explain)? else {
            return Ok(true);
        };
        let changes = diff::https_proxy(&current, desired);
        let what = "target HTTPS proxy";
        let name = &desired.name;
        let links = self.links();
        if changes.url_map {
            let url = links.project_method_url(Collection::TargetHttpsProxies, name, "setUrlMap");
            self.call_method(
                what,
                name,
                "targetHttpsProxies.setUrlMap",
                url,
                json!({ "urlMap": desired.url_map }),
            )
            .await?;
        }
        if changes.certificates {
            // The new certificates exist already (stage 1), the old ones go only after this
            // switch (stage 5): at no moment does the proxy hold no certificate.
            let url = links.project_method_url(Collection::TargetHttpsProxies, name, "setSslCertificates");
            self.call_method(
                what,
                name,
                "targetHttpsProxies.setSslCertificates",
                url,
                json!({ "sslCertificates": desired.ssl_certificates }),
            )
            .await
            .map_err(explain)?;
        }
        if changes.ssl_policy {
            let url = links.method_url(
                &Scope::Global,
                Collection::TargetHttpsProxies,
                name,
                "setSslPolicy",
            );
            self.call_method(
                what,
                name,
                "targetHttpsProxies.setSslPolicy",
                url,
                json!({ "sslPolicy": desired.ssl_policy }),
            )
            .await
            .map_err(explain)?;
        }
        Ok(changes.any())
    }

    async fn ensure_rule(
        &self,
        view: &View,
        desired: Option<&wire::ForwardingRule>,
        ip: Option<&str>,
        owner: Owner<'_>,
    ) -> Result<bool, Error> {
        let Some(desired) = desired else { return Ok(false) };
        let what = "forwarding rule";
        let existing = view.forwarding_rules.items.get(&desired.name);
        let Some(current) = self
            .existing_or_create(what, Collection::ForwardingRules, existing, desired, owner)
            .await?
        else {
            return Ok(true);
        };
        self.check_scheme(what, &desired.name, current.load_balancing_scheme.as_deref())?;
        match diff::forwarding_rule(&current, desired, ip) {
            RuleChange::None => Ok(false),
            RuleChange::Target => {
                let url = self.links().method_url(
                    &Scope::Global,
                    Collection::ForwardingRules,
                    &desired.name,
                    "setTarget",
                );
                self.call_method(
                    what,
                    &desired.name,
                    "forwardingRules.setTarget",
                    url,
                    json!({ "target": desired.target }),
                )
                .await?;
                Ok(true)
            }
            RuleChange::Recreate(field) => {
                tracing::info!(name = %desired.name, field, "forwarding rule cannot change in place: recreating");
                self.remove(what, Collection::ForwardingRules, &Scope::Global, &desired.name)
                    .await?;
                if let Some(existing) = self
                    .insert(what, Collection::ForwardingRules, &Scope::Global, desired)
                    .await?
                {
                    self.check_owned(what, &existing, owner)?;
                }
                Ok(true)
            }
        }
    }

    /// Removes this load balancer's resources that are no longer wanted, users first.
    async fn remove_stale(&self, view: &View, desired: &Desired, lb: &LoadBalancer) -> Result<bool, Error> {
        let own = desired.own_names();
        let (cluster, ns, name) = (
            self.config.cluster_uid.as_str(),
            lb.key.namespace.as_str(),
            lb.key.name.as_str(),
        );
        let stale = view.lb_resources(&|n, description| {
            !own.contains(n)
                && owner::owned_by_lb(description, cluster, self.config.controller.as_deref(), ns, name)
        });
        if stale.is_empty() {
            return Ok(false);
        }
        self.remove_in_order(&stale).await?;
        Ok(true)
    }

    /// Deletes load-balancer resources users first: rules, then proxies, then URL maps and
    /// certificates, then addresses; each step in parallel.
    pub(super) async fn remove_in_order(&self, r: &super::inventory::LbResources) -> Result<(), Error> {
        combine(
            self.remove_all(
                "forwarding rule",
                Collection::ForwardingRules,
                &r.forwarding_rules,
            )
            .await,
        )?;
        let (http, https) = tokio::join!(
            self.remove_all(
                "target HTTP proxy",
                Collection::TargetHttpProxies,
                &r.http_proxies
            ),
            self.remove_all(
                "target HTTPS proxy",
                Collection::TargetHttpsProxies,
                &r.https_proxies
            )
        );
        combine(http.into_iter().chain(https).collect())?;
        let (maps, certs) = tokio::join!(
            self.remove_all("URL map", Collection::UrlMaps, &r.url_maps),
            self.remove_all("SSL certificate", Collection::SslCertificates, &r.certificates)
        );
        combine(maps.into_iter().chain(certs).collect())?;
        combine(
            self.remove_all("address", Collection::Addresses, &r.addresses)
                .await,
        )?;
        Ok(())
    }

    /// Deletes global resources of one kind in parallel.
    async fn remove_all(
        &self,
        what: &str,
        collection: Collection,
        names: &[String],
    ) -> Vec<Result<(), Error>> {
        join_all(
            names
                .iter()
                .map(|n| self.remove(what, collection, &Scope::Global, n)),
        )
        .await
    }

    /// Whether the load balancer's URL map referred to backends it no longer wants.
    fn dropped_backends(&self, view: &View, desired: &Desired) -> bool {
        let Some(old) = view.url_maps.items.get(&desired.url_map.name) else {
            return false;
        };
        let wanted: BTreeSet<String> = desired
            .backends
            .iter()
            .map(|b| path_of(&self.global_link(Collection::BackendServices, &b.service.name)).to_owned())
            .collect();
        referenced_services(old)
            .iter()
            .any(|s| !wanted.contains(path_of(s)))
    }

    fn status(
        &self,
        lb: &LoadBalancer,
        desired: &Desired,
        ip: Option<String>,
        changed: bool,
        switching: &[(BackendKey, String)],
    ) -> LoadBalancerStatus {
        let mut resources: BTreeMap<ResourceKind, Vec<String>> = BTreeMap::new();
        let mut add = |kind, name: &str| resources.entry(kind).or_default().push(name.to_owned());
        for b in &desired.backends {
            if let Some(hc) = &b.health_check {
                add(ResourceKind::HealthCheck, &hc.name);
            }
            add(ResourceKind::BackendService, &b.service.name);
            for n in &b.negs {
                add(
                    ResourceKind::NetworkEndpointGroup,
                    &format!("{}/{}", n.zone, n.neg.name),
                );
            }
        }
        // The backends still serving a switching Service port (health check of the same name).
        for (_, old) in switching {
            add(ResourceKind::HealthCheck, old);
            add(ResourceKind::BackendService, old);
        }
        add(ResourceKind::UrlMap, &desired.url_map.name);
        if let Some(m) = &desired.redirect_map {
            add(ResourceKind::RedirectUrlMap, &m.name);
        }
        for c in &desired.certificates {
            add(ResourceKind::SslCertificate, &c.name);
        }
        for n in lb.frontends.https.iter().flat_map(|h| &h.pre_shared_certificates) {
            add(ResourceKind::SslCertificate, n);
        }
        match &desired.address {
            DesiredAddress::Reserve(a) => add(ResourceKind::Address, &a.name),
            DesiredAddress::Static { name, .. } => add(ResourceKind::Address, name),
        }
        if let Some(p) = &desired.http_proxy {
            add(ResourceKind::TargetHttpProxy, &p.name);
        }
        if let Some(p) = &desired.https_proxy {
            add(ResourceKind::TargetHttpsProxy, &p.name);
        }
        if let Some(r) = &desired.http_rule {
            add(ResourceKind::HttpForwardingRule, &r.name);
        }
        if let Some(r) = &desired.https_rule {
            add(ResourceKind::HttpsForwardingRule, &r.name);
        }
        for names in resources.values_mut() {
            let mut seen = BTreeSet::new();
            names.retain(|n| seen.insert(n.clone()));
        }
        let mut warnings = Vec::new();
        {
            let state = self.infra_state();
            let node_ports = lb.backends.iter().any(|b| b.node_port().is_some());
            let endpoints = lb.backends.iter().any(|b| b.target == BackendTarget::Endpoints);
            if (node_ports && state.groups.is_empty()) || (endpoints && state.zones.is_empty()) {
                warnings.push(
                    "the cluster has no nodes the load balancer can reach: every backend is empty".to_owned(),
                );
            }
        }
        // The names are the namer's, from the model's keys (the default backend has no key);
        // a switching Service port is served by both its backends until the switch is done.
        let mut backend_ports: BTreeMap<String, BackendKey> = lb
            .backends
            .iter()
            .map(|b| {
                let name = self
                    .namer
                    .backend_for(&b.key, b.target == BackendTarget::Endpoints);
                (name, b.key.clone())
            })
            .collect();
        for (key, old) in switching {
            backend_ports.insert(old.clone(), key.clone());
        }
        LoadBalancerStatus {
            address: ip.unwrap_or_default(),
            resources,
            warnings,
            changed,
            backend_ports,
            switching: switching.iter().map(|(k, _)| k.clone()).collect(),
        }
    }
}

/// A Service port whose live URL map routes it to the other kind of backend than the model's.
#[derive(Clone, Debug)]
struct Switch {
    key: BackendKey,
    /// The backend service of the model's target.
    new: String,
    /// The one the URL map routes to now.
    old: String,
}

/// Every backend service a URL map refers to.
pub(super) fn referenced_services(map: &wire::UrlMap) -> Vec<&String> {
    map.default_service
        .iter()
        .chain(map.path_matchers.iter().flat_map(|m| {
            m.default_service
                .iter()
                .chain(m.path_rules.iter().flat_map(|r| r.service.iter()))
        }))
        .collect()
}
