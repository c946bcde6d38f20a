//! The objects an Ingress refers to, so the controller can map a change of a Service or Secret
//! to the Ingresses that use it.

use k8s_openapi::api::networking::v1::{Ingress, IngressBackend};
use std::collections::BTreeSet;

/// Services and Secrets an Ingress names, as (namespace, name), sorted, each once. Both live in
/// the Ingress's namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct References {
    pub services: Vec<(String, String)>,
    pub secrets: Vec<(String, String)>,
}

/// What `ingress` refers to, whether or not the references are valid.
pub fn references(ingress: &Ingress) -> References {
    let namespace = ingress.metadata.namespace.as_deref().unwrap_or("default");
    let mut services = BTreeSet::new();
    let mut secrets = BTreeSet::new();
    let Some(spec) = ingress.spec.as_ref() else {
        return References::default();
    };
    let mut add = |backend: &IngressBackend| {
        if let Some(service) = backend.service.as_ref().filter(|s| !s.name.is_empty()) {
            services.insert((namespace.to_owned(), service.name.clone()));
        }
    };
    spec.default_backend.iter().for_each(&mut add);
    for rule in spec.rules.iter().flatten() {
        for path in rule.http.iter().flat_map(|h| h.paths.iter()) {
            add(&path.backend);
        }
    }
    for tls in spec.tls.iter().flatten() {
        if let Some(name) = tls.secret_name.as_ref().filter(|n| !n.is_empty()) {
            secrets.insert((namespace.to_owned(), name.clone()));
        }
    }
    References {
        services: services.into_iter().collect(),
        secrets: secrets.into_iter().collect(),
    }
}
