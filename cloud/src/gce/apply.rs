//! The write primitives every pass uses: create (adopting what is ours), update (with the
//! fingerprint, re-reading on a conflict), delete (a missing resource is already deleted).

use super::GceProvider;
use super::links::{Collection, Scope};
use super::owner;
use super::wire::{self, Resource};
use crate::Error;
use reqwest::Method;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How many times an update is retried after a stale fingerprint.
const CONFLICT_RETRIES: usize = 3;

/// One async lock per name, so that passes of several load balancers sharing a backend do not
/// create or update it at the same time.
#[derive(Default)]
pub struct KeyedLocks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl KeyedLocks {
    pub async fn lock(&self, key: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
            // Drop locks nobody holds or waits for, so the map stays as small as the work in flight.
            map.retain(|_, l| Arc::strong_count(l) > 1);
            map.entry(key.to_owned()).or_default().clone()
        };
        lock.lock_owned().await
    }
}

/// One read/write lock per backend name: passes hold it shared while they create a backend and
/// until their URL map refers to it; the sweep takes it exclusively, without waiting, and only
/// then deletes.
#[derive(Default)]
pub struct KeyedRwLocks(Mutex<HashMap<String, Arc<tokio::sync::RwLock<()>>>>);

impl KeyedRwLocks {
    fn get(&self, key: &str) -> Arc<tokio::sync::RwLock<()>> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, l| Arc::strong_count(l) > 1);
        map.entry(key.to_owned()).or_default().clone()
    }

    pub async fn read(&self, key: &str) -> tokio::sync::OwnedRwLockReadGuard<()> {
        self.get(key).read_owned().await
    }

    /// The exclusive lock, unless a pass holds the backend now.
    pub fn try_write(&self, key: &str) -> Option<tokio::sync::OwnedRwLockWriteGuard<()>> {
        self.get(key).try_write_owned().ok()
    }
}

/// IPs of the users' static addresses, read once per freshness window rather than per pass.
#[derive(Default)]
pub struct StaticIps(Mutex<HashMap<String, (String, tokio::time::Instant)>>);

impl StaticIps {
    /// The IP of `name`, if it was read no earlier than `not_before`.
    pub fn fresh(&self, name: &str, not_before: tokio::time::Instant) -> Option<String> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(name)
            .filter(|(_, at)| *at >= not_before)
            .map(|(ip, _)| ip.clone())
    }

    pub fn store(&self, name: &str, ip: &str) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(name.to_owned(), (ip.to_owned(), tokio::time::Instant::now()));
    }
}

/// A resource kind that is changed by a full update (PUT).
pub trait Updatable: Resource {
    const COLLECTION: Collection;
    /// For messages: "health check", "backend service"…
    const WHAT: &'static str;
    fn changes(current: &Self, desired: &Self) -> Vec<&'static str>;
    /// `desired`, carrying what `current` has that we do not manage (unknown fields, the
    /// fingerprint), so the update changes only our fields.
    fn update_body(desired: &Self, current: &Self) -> Self;
}

impl Updatable for wire::HealthCheck {
    const COLLECTION: Collection = Collection::HealthChecks;
    const WHAT: &'static str = "health check";

    fn changes(current: &Self, desired: &Self) -> Vec<&'static str> {
        super::diff::health_check(current, desired)
    }

    fn update_body(desired: &Self, current: &Self) -> Self {
        let mut body = desired.clone();
        body.extra = current.extra.clone();
        let carry = |d: &mut Option<wire::HttpProbe>, c: &Option<wire::HttpProbe>| {
            if let (Some(d), Some(c)) = (d.as_mut(), c.as_ref()) {
                d.extra = c.extra.clone();
            }
        };
        carry(&mut body.http_health_check, &current.http_health_check);
        carry(&mut body.https_health_check, &current.https_health_check);
        carry(&mut body.http2_health_check, &current.http2_health_check);
        body
    }
}

impl Updatable for wire::BackendService {
    const COLLECTION: Collection = Collection::BackendServices;
    const WHAT: &'static str = "backend service";

    fn changes(current: &Self, desired: &Self) -> Vec<&'static str> {
        super::diff::backend_service(current, desired)
    }

    fn update_body(desired: &Self, current: &Self) -> Self {
        let mut body = desired.clone();
        body.extra = current.extra.clone();
        body.fingerprint = current.fingerprint.clone();
        for group in &mut body.backends {
            if let Some(c) = current
                .backends
                .iter()
                .find(|c| super::links::same_resource(&c.group, &group.group))
            {
                group.extra = c.extra.clone();
            }
        }
        body
    }
}

impl Updatable for wire::UrlMap {
    const COLLECTION: Collection = Collection::UrlMaps;
    const WHAT: &'static str = "URL map";

    fn changes(current: &Self, desired: &Self) -> Vec<&'static str> {
        super::diff::url_map(current, desired)
    }

    fn update_body(desired: &Self, current: &Self) -> Self {
        let mut body = desired.clone();
        // Keeps e.g. `tests` a user added; our host rules and path matchers replace theirs.
        body.extra = current.extra.clone();
        body.fingerprint = current.fingerprint.clone();
        body
    }
}

/// Who must own an existing resource for us to change it.
#[derive(Clone, Copy)]
pub enum Owner<'a> {
    /// A resource of the load balancer of this Ingress.
    Lb { namespace: &'a str, name: &'a str },
    /// A resource shared within the cluster.
    Cluster,
}

impl GceProvider {
    /// Fails unless `resource` is recorded as `owner`'s: we never change what we do not own.
    pub(super) fn check_owned<T: Resource>(
        &self,
        what: &str,
        resource: &T,
        owner: Owner<'_>,
    ) -> Result<(), Error> {
        let cluster = &self.config.cluster_uid;
        let ok = match owner {
            Owner::Lb { namespace, name } => owner::owned_by_lb(
                resource.description(),
                cluster,
                self.config.controller.as_deref(),
                namespace,
                name,
            ),
            Owner::Cluster => owner::owned_by(resource.description(), cluster),
        };
        if ok {
            Ok(())
        } else {
            Err(Error::user(format!(
                "{what} {} exists but is not managed by this controller for this cluster (its description does not \
                 record it); it is left untouched: delete or rename it to let the load balancer be built",
                resource.name()
            )))
        }
    }

    /// Reads one resource afresh.
    pub(super) async fn read<T: Resource>(
        &self,
        collection: Collection,
        scope: &Scope,
        name: &str,
    ) -> Result<Option<T>, Error> {
        let url = self.links().resource_url(scope, collection, name);
        self.compute
            .get(&format!("{}.get", collection.segment()), &url)
            .await
            .map_err(|e| e.into_error(&format!("reading {} {name}", collection.segment())))
    }

    /// Creates `desired`. When its name is taken already (a crash after a create, a concurrent
    /// writer), returns the existing resource so the caller can check ownership and compare.
    pub(super) async fn insert<T: Resource>(
        &self,
        what: &str,
        collection: Collection,
        scope: &Scope,
        desired: &T,
    ) -> Result<Option<T>, Error> {
        let url = self.links().collection_url(scope, collection);
        match self
            .compute
            .mutate(
                &format!("{}.insert", collection.segment()),
                Method::POST,
                &url,
                Some(desired),
            )
            .await
        {
            Ok(()) => Ok(None),
            Err(e) if e.is_already_exists() => match self.read::<T>(collection, scope, desired.name()).await?
            {
                Some(existing) => Ok(Some(existing)),
                None => Err(Error::transient(format!(
                    "{what} {} is being created or deleted by another operation",
                    desired.name()
                ))),
            },
            Err(e) => Err(e.into_error(&format!("creating {what} {}", desired.name()))),
        }
    }

    /// The resource as it is (from the snapshot, or read back when its name turned out taken),
    /// checked to be `owner`'s; or `None` when this call just created it from `desired`.
    pub(super) async fn existing_or_create<T: Resource>(
        &self,
        what: &str,
        collection: Collection,
        snapshot: Option<&T>,
        desired: &T,
        owner: Owner<'_>,
    ) -> Result<Option<T>, Error> {
        let current = match snapshot {
            Some(c) => c.clone(),
            None => match self.insert(what, collection, &Scope::Global, desired).await? {
                None => return Ok(None),
                Some(c) => c,
            },
        };
        self.check_owned(what, &current, owner)?;
        Ok(Some(current))
    }

    /// Makes the resource match `desired`: creates it, or updates it when a managed field differs.
    /// Returns whether anything was written.
    pub(super) async fn ensure_updatable<T: Updatable>(
        &self,
        current: Option<&T>,
        desired: &T,
        owner: Owner<'_>,
    ) -> Result<bool, Error> {
        let name = desired.name();
        let mut current = match current {
            Some(c) => c.clone(),
            None => match self
                .insert(T::WHAT, T::COLLECTION, &Scope::Global, desired)
                .await?
            {
                None => return Ok(true),
                Some(existing) => existing,
            },
        };
        self.check_owned(T::WHAT, &current, owner)?;
        for _ in 0..=CONFLICT_RETRIES {
            let changes = T::changes(&current, desired);
            if changes.is_empty() {
                return Ok(false);
            }
            tracing::info!(kind = T::WHAT, name, ?changes, "updating");
            let url = self.links().resource_url(&Scope::Global, T::COLLECTION, name);
            let body = T::update_body(desired, &current);
            match self
                .compute
                .mutate(
                    &format!("{}.update", T::COLLECTION.segment()),
                    Method::PUT,
                    &url,
                    Some(&body),
                )
                .await
            {
                Ok(()) => return Ok(true),
                // Someone changed it since we read it: read again, compare again.
                Err(e) if e.is_conflict() => {
                    current = self
                        .read::<T>(T::COLLECTION, &Scope::Global, name)
                        .await?
                        .ok_or_else(|| {
                            Error::transient(format!("{} {name} disappeared while being updated", T::WHAT))
                        })?;
                    self.check_owned(T::WHAT, &current, owner)?;
                }
                Err(e) => return Err(e.into_error(&format!("updating {} {name}", T::WHAT))),
            }
        }
        Err(Error::new(
            crate::ErrorCategory::Conflict,
            format!("{} {name} keeps changing under us", T::WHAT),
        ))
    }

    /// Calls a method of a resource (`setTarget`, `setUrlMap`…) with `body`.
    pub(super) async fn call_method(
        &self,
        what: &str,
        name: &str,
        op: &str,
        url: String,
        body: serde_json::Value,
    ) -> Result<(), Error> {
        tracing::info!(kind = what, name, method = op, "updating");
        self.compute
            .mutate(op, Method::POST, &url, Some(&body))
            .await
            .map_err(|e| e.into_error(&format!("updating {what} {name} ({op})")))
    }

    /// Deletes a resource; one already gone counts as deleted.
    pub(super) async fn remove(
        &self,
        what: &str,
        collection: Collection,
        scope: &Scope,
        name: &str,
    ) -> Result<(), Error> {
        tracing::info!(kind = what, name, "deleting");
        let url = self.links().resource_url(scope, collection, name);
        match self
            .compute
            .mutate(
                &format!("{}.delete", collection.segment()),
                Method::DELETE,
                &url,
                None::<&()>,
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) if e.is_in_use() => {
                let message = format!("deleting {what} {name}: still in use: {}", e.message);
                Err(Error::transient(message).with_source(e))
            }
            Err(e) => Err(e.into_error(&format!("deleting {what} {name}"))),
        }
    }

    /// Deletes a resource, treating "still in use" as a reason to keep it. Returns whether it is
    /// gone.
    pub(super) async fn remove_if_unused_in(
        &self,
        what: &str,
        collection: Collection,
        scope: &Scope,
        name: &str,
    ) -> Result<bool, Error> {
        match self.remove(what, collection, scope, name).await {
            Ok(()) => Ok(true),
            Err(e) if super::api_error::of(&e).is_some_and(|a| a.is_in_use()) => {
                tracing::debug!(kind = what, name, "still in use, kept");
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}

/// Combines the outcomes of parallel steps: all succeeded, or one error that names every
/// failure, of the category that matters most (a user error stays a user error even when a
/// sibling step only needs a retry; a fenced write stops everything).
pub fn combine<T>(results: Vec<Result<T, Error>>) -> Result<Vec<T>, Error> {
    let mut oks = Vec::with_capacity(results.len());
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(v) => oks.push(v),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        return Ok(oks);
    }
    // A fenced write means this replica must stop: that outranks everything.
    let rank = |e: &Error| match e.category {
        crate::ErrorCategory::Fenced => 0,
        crate::ErrorCategory::User => 1,
        crate::ErrorCategory::Bug => 2,
        crate::ErrorCategory::Conflict => 3,
        crate::ErrorCategory::RateLimited => 4,
        crate::ErrorCategory::Transient => 5,
    };
    errors.sort_by_key(rank);
    let message = errors
        .iter()
        .map(|e| e.message.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    let mut first = errors.swap_remove(0);
    first.message = message;
    Err(first)
}
