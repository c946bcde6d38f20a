//! [`Snapshot`]: the objects an Ingress refers to, held in memory (tests and `plan`).

use super::Objects;
use k8s_openapi::api::core::v1::{Node, Pod, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::IngressClass;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Namespaced objects by (namespace, name), IngressClasses and Nodes by name. An object without
/// a namespace is filed under `default`, as `kubectl apply` would create it.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    services: BTreeMap<(String, String), Arc<Service>>,
    secrets: BTreeMap<(String, String), Arc<Secret>>,
    ingress_classes: BTreeMap<String, Arc<IngressClass>>,
    endpoint_slices: BTreeMap<(String, String), Arc<EndpointSlice>>,
    pods: BTreeMap<(String, String), Arc<Pod>>,
    nodes: BTreeMap<String, Arc<Node>>,
}

impl Snapshot {
    /// An empty snapshot.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a Service.
    pub fn insert_service(&mut self, service: Service) {
        self.services.insert(key(&service.metadata), Arc::new(service));
    }

    /// Adds (or replaces) a Secret.
    pub fn insert_secret(&mut self, secret: Secret) {
        self.secrets.insert(key(&secret.metadata), Arc::new(secret));
    }

    /// Adds (or replaces) an IngressClass.
    pub fn insert_ingress_class(&mut self, class: IngressClass) {
        let name = class.metadata.name.clone().unwrap_or_default();
        self.ingress_classes.insert(name, Arc::new(class));
    }

    /// Adds (or replaces) an EndpointSlice.
    pub fn insert_endpoint_slice(&mut self, slice: EndpointSlice) {
        self.endpoint_slices.insert(key(&slice.metadata), Arc::new(slice));
    }

    /// Adds (or replaces) a Pod.
    pub fn insert_pod(&mut self, pod: Pod) {
        self.pods.insert(key(&pod.metadata), Arc::new(pod));
    }

    /// Adds (or replaces) a Node.
    pub fn insert_node(&mut self, node: Node) {
        let name = node.metadata.name.clone().unwrap_or_default();
        self.nodes.insert(name, Arc::new(node));
    }

    /// Builder form of [`Snapshot::insert_endpoint_slice`].
    pub fn with_endpoint_slice(mut self, slice: EndpointSlice) -> Self {
        self.insert_endpoint_slice(slice);
        self
    }

    /// Builder form of [`Snapshot::insert_pod`].
    pub fn with_pod(mut self, pod: Pod) -> Self {
        self.insert_pod(pod);
        self
    }

    /// Builder form of [`Snapshot::insert_node`].
    pub fn with_node(mut self, node: Node) -> Self {
        self.insert_node(node);
        self
    }

    /// Builder form of [`Snapshot::insert_service`].
    pub fn with_service(mut self, service: Service) -> Self {
        self.insert_service(service);
        self
    }

    /// Builder form of [`Snapshot::insert_secret`].
    pub fn with_secret(mut self, secret: Secret) -> Self {
        self.insert_secret(secret);
        self
    }

    /// Builder form of [`Snapshot::insert_ingress_class`].
    pub fn with_ingress_class(mut self, class: IngressClass) -> Self {
        self.insert_ingress_class(class);
        self
    }
}

fn key(metadata: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> (String, String) {
    (
        metadata.namespace.clone().unwrap_or_else(|| "default".to_owned()),
        metadata.name.clone().unwrap_or_default(),
    )
}

impl Objects for Snapshot {
    fn service(&self, namespace: &str, name: &str) -> Option<Arc<Service>> {
        self.services
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    fn secret(&self, namespace: &str, name: &str) -> Option<Arc<Secret>> {
        self.secrets
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    fn ingress_classes(&self) -> Vec<Arc<IngressClass>> {
        self.ingress_classes.values().cloned().collect()
    }

    fn endpoint_slices(&self, namespace: &str, service: &str) -> Vec<Arc<EndpointSlice>> {
        self.endpoint_slices
            .iter()
            .filter(|((ns, _), s)| ns == namespace && service_of(s) == Some(service))
            .map(|(_, s)| s.clone())
            .collect()
    }

    fn pod(&self, namespace: &str, name: &str) -> Option<Arc<Pod>> {
        self.pods.get(&(namespace.to_owned(), name.to_owned())).cloned()
    }

    fn nodes(&self) -> Vec<Arc<Node>> {
        self.nodes.values().cloned().collect()
    }
}

/// The Service an EndpointSlice belongs to, by its `kubernetes.io/service-name` label.
pub(crate) fn service_of(slice: &EndpointSlice) -> Option<&str> {
    slice
        .metadata
        .labels
        .as_ref()?
        .get(SERVICE_NAME_LABEL)
        .map(String::as_str)
}

/// The label naming an EndpointSlice's Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
