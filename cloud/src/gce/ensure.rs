//! One pass over one load balancer: read what exists, then create or update in dependency
//! order, independent branches in parallel, then remove what is no longer wanted.
//!
//! ```text
//!  stage 1 (parallel): health check → backend service  (per backend, all backends at once)
//!                      certificates · address · redirect URL map
//!  stage 2:            URL map
//!  stage 3 (parallel): target HTTP proxy · target HTTPS proxy
//!  stage 4 (parallel): :80 forwarding rule · :443 forwarding rule
//!  stage 5:            stale forwarding rules → proxies → URL maps, certificates → address
//! ```

use super::apply::{Owner, combine};
use super::desired::{Desired, DesiredAddress, DesiredBackend};
use super::diff::{self, RuleChange};
use super::inventory::View;
use super::links::{Collection, Scope, path_of};
use super::{GceProvider, owner, wire};
use crate::Error;
use crate::model::LoadBalancer;
use crate::provider::{LoadBalancerStatus, ResourceKind};
use futures::future::join_all;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

impl GceProvider {
    pub(super) async fn ensure_lb(&self, lb: &LoadBalancer) -> Result<LoadBalancerStatus, Error> {
        let groups = self.groups()?;
        let desired = super::desired::build(self.context(&groups), lb);
        let key = &lb.key;
        let lb_id = key.to_string();
        let owner = Owner::Lb {
            namespace: &key.namespace,
            name: &key.name,
        };

        let shared_names: Vec<&str> = desired.backends.iter().map(|b| b.service.name.as_str()).collect();
        let not_before = self.freshness.required(&lb_id, shared_names.iter().copied());
        let shared_guard = self.shared.read().await;
        let view = self
            .inventory
            .view(&self.compute, not_before)
            .await
            .map_err(|e| e.into_error(&format!("reading the resources of {lb_id}")))?;

        // Stage 1.
        let backends = join_all(desired.backends.iter().map(|b| self.ensure_backend(&view, b)));
        let certificates = join_all(
            desired
                .certificates
                .iter()
                .map(|c| self.ensure_certificate(&view, c, lb)),
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
            self.ensure_address(&view, &desired.address, owner),
            redirect
        );
        let mut wrote = redirect.as_ref().is_ok_and(|w| *w);
        let mut stage: Vec<Result<bool, Error>> = backends;
        stage.extend(certificates);
        stage.push(redirect);
        let (ip, address_wrote) = match address {
            Ok(v) => v,
            Err(e) => {
                stage.push(Err(e));
                (None, false)
            }
        };
        wrote |= address_wrote;
        let stage = combine(stage);
        if let Ok(w) = &stage {
            wrote |= w.iter().any(|w| *w);
        }
        let result = async {
            stage?;
            // Stage 2.
            wrote |= self
                .ensure_updatable(
                    view.url_maps.items.get(&desired.url_map.name),
                    &desired.url_map,
                    owner,
                )
                .await?;
            // Stage 3.
            let (http, https) = tokio::join!(
                self.ensure_http_proxy(&view, desired.http_proxy.as_ref(), owner),
                self.ensure_https_proxy(&view, desired.https_proxy.as_ref(), lb, owner)
            );
            wrote |= combine(vec![http, https])?.into_iter().any(|w| w);
            // Stage 4.
            let (http, https) = tokio::join!(
                self.ensure_rule(&view, desired.http_rule.as_ref(), ip.as_deref(), owner),
                self.ensure_rule(&view, desired.https_rule.as_ref(), ip.as_deref(), owner)
            );
            wrote |= combine(vec![http, https])?.into_iter().any(|w| w);
            // Stage 5.
            wrote |= self.remove_stale(&view, &desired, lb).await?;
            Ok::<(), Error>(())
        }
        .await;
        if wrote {
            self.freshness.wrote_lb(&lb_id);
        }
        result?;
        drop(shared_guard);

        // Backends this load balancer stopped using may now be used by none.
        if self.dropped_backends(&view, &desired) {
            self.sweep_backends().await?;
        }
        Ok(self.status(lb, &desired, ip, wrote))
    }

    /// A health check and its backend service, one backend at a time across passes.
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
        let mut wrote = false;
        if let Some(hc) = &b.health_check {
            wrote |= self.ensure_updatable(hc_now.as_ref(), hc, Owner::Cluster).await?;
        }
        wrote |= self
            .ensure_updatable(bs_now.as_ref(), &b.service, Owner::Cluster)
            .await?;
        if wrote {
            self.freshness.wrote_shared(name);
        }
        Ok(wrote)
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
            Err(e) if e.category == crate::ErrorCategory::Bug => {
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
    ) -> Result<(Option<String>, bool), Error> {
        match address {
            DesiredAddress::Reserve(a) => {
                if let Some(existing) = view.addresses.items.get(&a.name) {
                    self.check_owned("address", existing, owner)?;
                    return Ok((existing.address.clone(), false));
                }
                if let Some(existing) = self
                    .insert("address", Collection::Addresses, &Scope::Global, a)
                    .await?
                {
                    self.check_owned("address", &existing, owner)?;
                    return Ok((existing.address, false));
                }
                if self.compute.dry_run() {
                    return Ok((None, true));
                }
                let created: Option<wire::Address> =
                    self.read(Collection::Addresses, &Scope::Global, &a.name).await?;
                let ip = created.and_then(|c| c.address);
                if ip.is_none() {
                    return Err(Error::transient(format!("address {} has no IP yet", a.name)));
                }
                Ok((ip, true))
            }
            DesiredAddress::Static { name, .. } => {
                let found: Option<wire::Address> =
                    self.read(Collection::Addresses, &Scope::Global, name).await?;
                match found.and_then(|a| a.address) {
                    Some(ip) => Ok((Some(ip), false)),
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
        let current = match view.http_proxies.items.get(&desired.name) {
            Some(c) => c.clone(),
            None => match self
                .insert(
                    "target HTTP proxy",
                    Collection::TargetHttpProxies,
                    &Scope::Global,
                    desired,
                )
                .await?
            {
                None => return Ok(true),
                Some(c) => c,
            },
        };
        self.check_owned("target HTTP proxy", &current, owner)?;
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
        let explain = |e: Error| match e.category {
            // A missing reference here is a pre-shared certificate or SSL policy the user named.
            crate::ErrorCategory::Bug if e.message.contains("not found") || e.message.contains("404") => {
                let https = lb.frontends.https.as_ref();
                let pre_shared = https
                    .map(|h| h.pre_shared_certificates.join(", "))
                    .unwrap_or_default();
                let policy = https.and_then(|h| h.ssl_policy.clone()).unwrap_or_default();
                Error::user(format!(
                    "{} (check that the pre-shared certificates [{pre_shared}] and the SSL policy [{policy}] exist)",
                    e.message
                ))
            }
            _ => e,
        };
        let current = match view.https_proxies.items.get(&desired.name) {
            Some(c) => c.clone(),
            None => match self
                .insert(
                    "target HTTPS proxy",
                    Collection::TargetHttpsProxies,
                    &Scope::Global,
                    desired,
                )
                .await
                .map_err(explain)?
            {
                None => return Ok(true),
                Some(c) => c,
            },
        };
        self.check_owned("target HTTPS proxy", &current, owner)?;
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
        let current = match view.forwarding_rules.items.get(&desired.name) {
            Some(c) => c.clone(),
            None => match self
                .insert(what, Collection::ForwardingRules, &Scope::Global, desired)
                .await?
            {
                None => return Ok(true),
                Some(c) => c,
            },
        };
        self.check_owned(what, &current, owner)?;
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
        let stale = |n: &String, description: &str| {
            !own.contains(n.as_str()) && owner::owned_by_lb(description, cluster, ns, name)
        };
        let pick = |items: Vec<(&String, &str)>| -> Vec<String> {
            items
                .into_iter()
                .filter(|(n, d)| stale(n, d))
                .map(|(n, _)| n.clone())
                .collect()
        };
        let rules = pick(
            view.forwarding_rules
                .items
                .iter()
                .map(|(n, r)| (n, r.description.as_str()))
                .collect(),
        );
        let http = pick(
            view.http_proxies
                .items
                .iter()
                .map(|(n, r)| (n, r.description.as_str()))
                .collect(),
        );
        let https = pick(
            view.https_proxies
                .items
                .iter()
                .map(|(n, r)| (n, r.description.as_str()))
                .collect(),
        );
        let maps = pick(
            view.url_maps
                .items
                .iter()
                .map(|(n, r)| (n, r.description.as_str()))
                .collect(),
        );
        let certs = pick(
            view.certificates
                .items
                .iter()
                .map(|(n, r)| (n, r.description.as_str()))
                .collect(),
        );
        let addresses = pick(
            view.addresses
                .items
                .iter()
                .map(|(n, r)| (n, r.description.as_str()))
                .collect(),
        );
        let any = !(rules.is_empty()
            && http.is_empty()
            && https.is_empty()
            && maps.is_empty()
            && certs.is_empty()
            && addresses.is_empty());
        self.remove_in_order(&rules, &http, &https, &maps, &certs, &addresses)
            .await?;
        Ok(any)
    }

    /// Deletes load-balancer resources users first: rules, then proxies, then URL maps and
    /// certificates, then addresses; each step in parallel.
    pub(super) async fn remove_in_order(
        &self,
        rules: &[String],
        http: &[String],
        https: &[String],
        maps: &[String],
        certs: &[String],
        addresses: &[String],
    ) -> Result<(), Error> {
        let g = Scope::Global;
        combine(
            join_all(
                rules
                    .iter()
                    .map(|n| self.remove("forwarding rule", Collection::ForwardingRules, &g, n)),
            )
            .await,
        )?;
        let proxies = http
            .iter()
            .map(|n| self.remove("target HTTP proxy", Collection::TargetHttpProxies, &g, n))
            .chain(
                https
                    .iter()
                    .map(|n| self.remove("target HTTPS proxy", Collection::TargetHttpsProxies, &g, n)),
            );
        combine(join_all(proxies).await)?;
        let leaves = maps
            .iter()
            .map(|n| self.remove("URL map", Collection::UrlMaps, &g, n))
            .chain(
                certs
                    .iter()
                    .map(|n| self.remove("SSL certificate", Collection::SslCertificates, &g, n)),
            );
        combine(join_all(leaves).await)?;
        combine(
            join_all(
                addresses
                    .iter()
                    .map(|n| self.remove("address", Collection::Addresses, &g, n)),
            )
            .await,
        )?;
        Ok(())
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
    ) -> LoadBalancerStatus {
        let mut resources: BTreeMap<ResourceKind, Vec<String>> = BTreeMap::new();
        let mut add = |kind, name: &str| resources.entry(kind).or_default().push(name.to_owned());
        for b in &desired.backends {
            if let Some(hc) = &b.health_check {
                add(ResourceKind::HealthCheck, &hc.name);
            }
            add(ResourceKind::BackendService, &b.service.name);
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
        let mut warnings = Vec::new();
        if self.infra_state().groups.is_empty() {
            warnings.push(
                "the cluster has no nodes the load balancer can reach: every backend is empty".to_owned(),
            );
        }
        LoadBalancerStatus {
            address: ip.unwrap_or_default(),
            resources,
            warnings,
            changed,
        }
    }
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
