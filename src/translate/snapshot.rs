//! [`Snapshot`]: the objects an Ingress refers to, held in memory (tests and `plan`).

use super::Objects;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::networking::v1::IngressClass;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Services and Secrets by (namespace, name), IngressClasses by name. An object without a
/// namespace is filed under `default`, as `kubectl apply` would create it.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    services: BTreeMap<(String, String), Arc<Service>>,
    secrets: BTreeMap<(String, String), Arc<Secret>>,
    ingress_classes: BTreeMap<String, Arc<IngressClass>>,
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
}
