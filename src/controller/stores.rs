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
use k8s_openapi::api::core::v1::{Container, Node, Pod, PodSpec, PodStatus, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use std::collections::BTreeSet;
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
    /// The EndpointSlices of the watched namespaces (endpoint backends read them).
    pub endpoint_slices: Store<EndpointSlice>,
    /// The pods of the watched namespaces, trimmed to what endpoints, readiness gates and
    /// health checks read (see [`trim_pod`]).
    pub pods: Store<Pod>,
}

/// The streams that fill [`Stores`]; each yields the objects that changed (or were deleted).
pub struct Streams {
    pub ingresses: BoxStream<'static, Result<Ingress, watcher::Error>>,
    pub services: BoxStream<'static, Result<Service, watcher::Error>>,
    pub secrets: BoxStream<'static, Result<Secret, watcher::Error>>,
    pub classes: BoxStream<'static, Result<IngressClass, watcher::Error>>,
    pub nodes: BoxStream<'static, Result<Node, watcher::Error>>,
    pub endpoint_slices: BoxStream<'static, Result<EndpointSlice, watcher::Error>>,
    pub pods: BoxStream<'static, Result<Pod, watcher::Error>>,
}

/// Sets up every watch; nothing is read until the streams are polled. Each watch reports its
/// failures and successes to `liveness`.
pub fn watch(client: &Client, namespace: Option<&str>, liveness: Arc<Liveness>) -> (Stores, Streams) {
    fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        match namespace {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }
    let ingresses = scoped::<Ingress>(client, namespace);
    let services = scoped::<Service>(client, namespace);
    let secrets = scoped::<Secret>(client, namespace);
    let l = &liveness;
    let (ingress_store, ingresses) = reflect(ingresses, trim_meta::<Ingress>, true, l);
    let (service_store, services) = reflect(services, trim_meta::<Service>, false, l);
    let (secret_store, secrets) = reflect(secrets, trim_secret, false, l);
    let (class_store, classes) = reflect(Api::all(client.clone()), trim_meta::<IngressClass>, false, l);
    let (node_store, nodes) = reflect(Api::all(client.clone()), trim_node, false, l);
    // Like Services: the pods and slices of an endpoint backend are in its Service's namespace.
    let slices = scoped::<EndpointSlice>(client, namespace);
    let (slice_store, endpoint_slices) = reflect(slices, trim_endpoint_slice, false, l);
    let (pod_store, pods) = reflect(scoped::<Pod>(client, namespace), trim_pod, false, l);
    (
        Stores {
            ingresses: ingress_store,
            services: service_store,
            secrets: secret_store,
            classes: class_store,
            nodes: node_store,
            endpoint_slices: slice_store,
            pods: pod_store,
        },
        Streams {
            ingresses,
            services,
            secrets,
            classes,
            nodes,
            endpoint_slices,
            pods,
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

/// What an EndpointSlice is read for: its Service (label), address type, ports and endpoints.
fn trim_endpoint_slice(slice: &mut EndpointSlice) {
    trim_metadata(&mut slice.metadata);
    slice.metadata.annotations = None;
    if let Some(labels) = slice.metadata.labels.as_mut() {
        labels.retain(|k, _| k == SERVICE_NAME_LABEL);
    }
    for endpoint in &mut slice.endpoints {
        endpoint.hints = None;
        endpoint.deprecated_topology = None;
    }
}

/// Keeps what endpoints, readiness gates and health checks read of a pod: who it is and who
/// owns it, its node, its readiness gates, its containers' names, ports and readiness probes,
/// and its IPs and conditions. Pods are the most numerous objects watched: everything else
/// (volumes, env, images, labels, annotations, container statuses) goes.
pub fn trim_pod(pod: &mut Pod) {
    let meta = std::mem::take(&mut pod.metadata);
    pod.metadata = ObjectMeta {
        name: meta.name,
        namespace: meta.namespace,
        uid: meta.uid,
        resource_version: meta.resource_version,
        creation_timestamp: meta.creation_timestamp,
        deletion_timestamp: meta.deletion_timestamp,
        owner_references: meta.owner_references,
        ..ObjectMeta::default()
    };
    pod.spec = pod.spec.take().map(|spec| PodSpec {
        node_name: spec.node_name,
        readiness_gates: spec.readiness_gates,
        containers: spec
            .containers
            .into_iter()
            .map(|c| Container {
                name: c.name,
                ports: c.ports,
                readiness_probe: c.readiness_probe,
                ..Container::default()
            })
            .collect(),
        ..PodSpec::default()
    });
    pod.status = pod.status.take().map(|status| PodStatus {
        pod_ip: status.pod_ip,
        pod_ips: status.pod_ips,
        conditions: status.conditions,
        ..PodStatus::default()
    });
}

/// Lets through a pod the first time it is seen and whenever what a health check may be
/// derived from changes (its containers' ports and readiness probes, its owner, its deletion),
/// not on every status change: the kubelet's writes, and our own readiness-gate writes, would
/// otherwise reconcile every Ingress using the pod's Service each time.
pub fn changed_for_health_checks<S>(pods: S, store: Store<Pod>) -> impl futures::Stream<Item = S::Item> + Send
where
    S: futures::Stream<Item = Result<Pod, watcher::Error>> + Send,
{
    let seen = std::sync::Mutex::new(std::collections::HashMap::<(String, String), u64>::new());
    pods.filter(move |event| {
        let pass = match event {
            Err(_) => true,
            Ok(pod) => {
                let key = (
                    pod.metadata.namespace.clone().unwrap_or_default(),
                    pod.metadata.name.clone().unwrap_or_default(),
                );
                let digest = health_check_digest(pod);
                let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                // Deleted (the store is written before the event comes out), or going.
                let gone = store.get(&ObjectRef::new(&key.1).within(&key.0)).is_none();
                if gone || pod.metadata.deletion_timestamp.is_some() {
                    seen.remove(&key);
                    true
                } else {
                    seen.insert(key, digest) != Some(digest)
                }
            }
        };
        std::future::ready(pass)
    })
}

/// A digest of what of a pod a health check may be derived from.
fn health_check_digest(pod: &Pod) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let spec = pod.spec.as_ref();
    let containers: Vec<_> = spec
        .map(|s| {
            s.containers
                .iter()
                .map(|c| {
                    (
                        &c.name,
                        serde_json::to_string(&c.ports).unwrap_or_default(),
                        serde_json::to_string(&c.readiness_probe).unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    containers.hash(&mut h);
    serde_json::to_string(&pod.metadata.owner_references)
        .unwrap_or_default()
        .hash(&mut h);
    h.finish()
}

/// The label naming an EndpointSlice's Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The Service an EndpointSlice belongs to: `(namespace, name)`.
pub fn service_of(slice: &EndpointSlice) -> Option<(&str, &str)> {
    let name = slice.metadata.labels.as_ref()?.get(SERVICE_NAME_LABEL)?;
    Some((slice.metadata.namespace.as_deref()?, name.as_str()))
}

impl Stores {
    /// Waits until every store has its first full list.
    pub async fn wait_ready(&self) -> Result<(), reflector::store::WriterDropped> {
        ready(&self.ingresses).await?;
        ready(&self.services).await?;
        ready(&self.secrets).await?;
        ready(&self.classes).await?;
        ready(&self.nodes).await?;
        ready(&self.endpoint_slices).await?;
        ready(&self.pods).await?;
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

    /// The Ingresses that use the Service of this EndpointSlice.
    pub fn ingresses_using_slice(&self, slice: &EndpointSlice) -> Vec<ObjectRef<Ingress>> {
        match service_of(slice) {
            Some((namespace, service)) => self.ingresses_using_service(namespace, service),
            None => Vec::new(),
        }
    }

    /// The Services (`namespace`, name) whose EndpointSlices list the pod `namespace/name`.
    pub fn services_of_pod(&self, namespace: &str, name: &str) -> BTreeSet<(String, String)> {
        self.endpoint_slices
            .state()
            .iter()
            .filter(|s| s.metadata.namespace.as_deref() == Some(namespace))
            .filter(|s| {
                s.endpoints.iter().any(|e| {
                    e.target_ref
                        .as_ref()
                        .is_some_and(|r| r.kind.as_deref() == Some("Pod") && r.name.as_deref() == Some(name))
                })
            })
            .filter_map(|s| service_of(s).map(|(ns, svc)| (ns.to_owned(), svc.to_owned())))
            .collect()
    }

    /// The Ingresses using a Service whose EndpointSlices list this pod.
    pub fn ingresses_using_pod(&self, pod: &Pod) -> Vec<ObjectRef<Ingress>> {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        let services = self.services_of_pod(namespace, name);
        if services.is_empty() {
            return Vec::new();
        }
        self.ingresses_where(|r| r.services.iter().any(|s| services.contains(s)))
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

    fn endpoint_slices(&self, namespace: &str, service: &str) -> Vec<Arc<EndpointSlice>> {
        self.endpoint_slices
            .state()
            .into_iter()
            .filter(|s| service_of(s) == Some((namespace, service)))
            .collect()
    }

    fn pod(&self, namespace: &str, name: &str) -> Option<Arc<Pod>> {
        self.pods.get(&ObjectRef::new(name).within(namespace))
    }

    fn nodes(&self) -> Vec<Arc<Node>> {
        self.nodes.state()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_keep_only_what_endpoints_gates_and_health_checks_read() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "web-1", "namespace": "default", "uid": "u1",
                "labels": {"app": "web"}, "annotations": {"big": "x"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f", "uid": "rs"}],
                "managedFields": [{"manager": "kubectl"}]
            },
            "spec": {
                "nodeName": "node-a1",
                "readinessGates": [{"conditionType": "cloud.google.com/load-balancer-neg-ready"}],
                "volumes": [{"name": "v", "emptyDir": {}}],
                "containers": [{
                    "name": "web", "image": "nginx",
                    "env": [{"name": "SECRET", "value": "s"}],
                    "ports": [{"containerPort": 8080, "name": "http"}],
                    "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 5}
                }]
            },
            "status": {
                "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}], "hostIP": "10.128.0.2",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": "web", "image": "nginx", "imageID": "", "ready": true, "restartCount": 0}]
            }
        }))
        .unwrap();
        let mut trimmed = pod.clone();
        trim_pod(&mut trimmed);
        let v = serde_json::to_value(&trimmed).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {
                    "name": "web-1", "namespace": "default", "uid": "u1",
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f", "uid": "rs"}]
                },
                "spec": {
                    "nodeName": "node-a1",
                    "readinessGates": [{"conditionType": "cloud.google.com/load-balancer-neg-ready"}],
                    "containers": [{
                        "name": "web",
                        "ports": [{"containerPort": 8080, "name": "http"}],
                        "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 5}
                    }]
                },
                "status": {
                    "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}],
                    "conditions": [{"type": "Ready", "status": "True"}]
                }
            })
        );
        // Only what a health check is derived from counts as a change.
        let mut status_only = trimmed.clone();
        status_only.status.as_mut().unwrap().pod_ip = Some("10.0.0.6".into());
        assert_eq!(health_check_digest(&trimmed), health_check_digest(&status_only));
        let mut probe = trimmed.clone();
        probe.spec.as_mut().unwrap().containers[0].readiness_probe = None;
        assert_ne!(health_check_digest(&trimmed), health_check_digest(&probe));
    }

    #[test]
    fn slices_name_their_service() {
        let mut slice: EndpointSlice = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-abc", "namespace": "shop",
                         "labels": {"kubernetes.io/service-name": "web", "endpointslice.kubernetes.io/managed-by": "x"},
                         "annotations": {"a": "b"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.0.0.5"], "hints": {"forZones": [{"name": "a"}]}}]
        }))
        .unwrap();
        trim_endpoint_slice(&mut slice);
        assert_eq!(service_of(&slice), Some(("shop", "web")));
        assert_eq!(slice.metadata.labels.as_ref().unwrap().len(), 1);
        assert!(slice.metadata.annotations.is_none() && slice.endpoints[0].hints.is_none());
    }
}
