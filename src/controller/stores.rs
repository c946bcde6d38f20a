//! The reflector stores the controller reads from, and the watch streams that fill them.
//!
//! Each kind is watched once; the same stream fills the store and triggers reconciles, so a
//! reconcile triggered by a change always sees that change in the store. Objects are trimmed
//! before they are stored (managed fields, `last-applied-configuration`, Secret data other than
//! the TLS pair) to keep memory proportional to what translation reads.

use crate::telemetry::liveness::Liveness;
use crate::translate;
use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::core::v1::{Node, Pod, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::sync::Arc;

/// What a reconcile reads.
#[derive(Clone)]
pub struct Stores {
    pub ingresses: Store<Ingress>,
    pub services: Store<Service>,
    pub secrets: Store<Secret>,
    pub classes: Store<IngressClass>,
    pub nodes: Store<Node>,
}

/// The streams that fill [`Stores`]; each yields the objects that changed (or were deleted).
pub struct Streams {
    pub ingresses: BoxStream<'static, Result<Ingress, watcher::Error>>,
    pub services: BoxStream<'static, Result<Service, watcher::Error>>,
    pub secrets: BoxStream<'static, Result<Secret, watcher::Error>>,
    pub classes: BoxStream<'static, Result<IngressClass, watcher::Error>>,
    pub nodes: BoxStream<'static, Result<Node, watcher::Error>>,
}

/// Sets up every watch; nothing is read until the streams are polled. Each watch reports its
/// failures and successes to `liveness`.
pub fn watch(client: &Client, namespace: Option<&str>, liveness: Arc<Liveness>) -> (Stores, Streams) {
    let scoped = |c: &Client| -> (Api<Ingress>, Api<Service>, Api<Secret>) {
        match namespace {
            Some(ns) => (
                Api::namespaced(c.clone(), ns),
                Api::namespaced(c.clone(), ns),
                Api::namespaced(c.clone(), ns),
            ),
            None => (Api::all(c.clone()), Api::all(c.clone()), Api::all(c.clone())),
        }
    };
    let (ingresses, services, secrets) = scoped(client);
    let l = &liveness;
    let (ingress_store, ingresses) = reflect(ingresses, trim_meta::<Ingress>, true, l);
    let (service_store, services) = reflect(services, trim_meta::<Service>, false, l);
    let (secret_store, secrets) = reflect(secrets, trim_secret, false, l);
    let (class_store, classes) = reflect(Api::all(client.clone()), trim_meta::<IngressClass>, false, l);
    let (node_store, nodes) = reflect(Api::all(client.clone()), trim_node, false, l);
    (
        Stores {
            ingresses: ingress_store,
            services: service_store,
            secrets: secret_store,
            classes: class_store,
            nodes: node_store,
        },
        Streams {
            ingresses,
            services,
            secrets,
            classes,
            nodes,
        },
    )
}

/// A store and the stream filling it. The main resource's stream yields applied objects only
/// (a deleted Ingress has nothing left to reconcile; one with our finalizer is updated, not
/// deleted); related kinds yield deletions too, since losing a Service matters.
fn reflect<K>(
    api: Api<K>,
    trim: fn(&mut K),
    applied_only: bool,
    liveness: &Arc<Liveness>,
) -> (Store<K>, BoxStream<'static, Result<K, watcher::Error>>)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let (store, writer) = reflector::store();
    let kind = std::any::type_name::<K>().rsplit("::").next().unwrap_or("object");
    let liveness = liveness.clone();
    let events = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        // Every event counts, an empty re-list too: only an unbroken run of failures is a
        // dead watch.
        .inspect(move |event| match event {
            Ok(_) => liveness.watch_ok(kind),
            Err(_) => liveness.watch_failed(kind),
        })
        .modify(trim)
        .reflect(writer);
    let stream = if applied_only {
        events.applied_objects().boxed()
    } else {
        events.touched_objects().boxed()
    };
    (store, stream)
}

/// Waits until `store` has its first full list.
///
/// kube-runtime's `Store::wait_until_ready` wakes only the last of several concurrent waiters
/// (it polls a oneshot receiver, which keeps one waker), and the `Controller` itself waits on the
/// main store: a second waiter can sleep forever. Re-polling on a short timer makes a lost wake-up
/// cost at most that long.
async fn ready<K>(store: &Store<K>) -> Result<(), reflector::store::WriterDropped>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    loop {
        match tokio::time::timeout(std::time::Duration::from_millis(100), store.wait_until_ready()).await {
            Ok(result) => return result,
            Err(_elapsed) => continue,
        }
    }
}

fn trim_metadata(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

fn trim_meta<K: Resource>(object: &mut K) {
    trim_metadata(object.meta_mut());
}

/// Keeps only what a TLS Secret needs: its type and the certificate pair.
fn trim_secret(secret: &mut Secret) {
    trim_metadata(&mut secret.metadata);
    secret.metadata.annotations = None;
    secret.metadata.labels = None;
    secret.string_data = None;
    if let Some(data) = secret.data.as_mut() {
        data.retain(|k, _| k == "tls.crt" || k == "tls.key");
    }
}

/// Keeps what the cloud infrastructure needs: labels (zones, exclusion) and the provider ID.
fn trim_node(node: &mut Node) {
    trim_metadata(&mut node.metadata);
    node.metadata.annotations = None;
    node.status = None;
}

impl Stores {
    /// Waits until every store has its first full list.
    pub async fn wait_ready(&self) -> Result<(), reflector::store::WriterDropped> {
        ready(&self.ingresses).await?;
        ready(&self.services).await?;
        ready(&self.secrets).await?;
        ready(&self.classes).await?;
        ready(&self.nodes).await?;
        Ok(())
    }

    /// The Ingresses that refer to the Service `namespace/name`.
    pub fn ingresses_using_service(&self, namespace: &str, name: &str) -> Vec<ObjectRef<Ingress>> {
        self.ingresses_where(|r| r.services.iter().any(|(n, s)| n == namespace && s == name))
    }

    /// The Ingresses that refer to the Secret `namespace/name`.
    pub fn ingresses_using_secret(&self, namespace: &str, name: &str) -> Vec<ObjectRef<Ingress>> {
        self.ingresses_where(|r| r.secrets.iter().any(|(n, s)| n == namespace && s == name))
    }

    /// Every Ingress.
    pub fn all_ingresses(&self) -> Vec<ObjectRef<Ingress>> {
        self.ingresses
            .state()
            .iter()
            .map(|i| ObjectRef::from_obj(i.as_ref()))
            .collect()
    }

    fn ingresses_where(&self, uses: impl Fn(&translate::References) -> bool) -> Vec<ObjectRef<Ingress>> {
        self.ingresses
            .state()
            .iter()
            .filter(|i| uses(&translate::references(i)))
            .map(|i| ObjectRef::from_obj(i.as_ref()))
            .collect()
    }
}

impl translate::Objects for Stores {
    fn service(&self, namespace: &str, name: &str) -> Option<Arc<Service>> {
        self.services.get(&ObjectRef::new(name).within(namespace))
    }

    fn secret(&self, namespace: &str, name: &str) -> Option<Arc<Secret>> {
        self.secrets.get(&ObjectRef::new(name).within(namespace))
    }

    fn ingress_classes(&self) -> Vec<Arc<IngressClass>> {
        self.classes.state()
    }

    // TODO(issue 14): EndpointSlice and Pod watches.
    fn endpoint_slices(&self, _namespace: &str, _service: &str) -> Vec<Arc<EndpointSlice>> {
        Vec::new()
    }

    fn pod(&self, _namespace: &str, _name: &str) -> Option<Arc<Pod>> {
        None
    }

    fn nodes(&self) -> Vec<Arc<Node>> {
        self.nodes.state()
    }
}
