//! Ingress backends (`spec.defaultBackend`, `spec.rules[].http.paths[].backend`) resolved to
//! Service ports, and the [`Backend`] built for each distinct Service port.
//!
//! Only Service backends are supported. The cloud reaches a Service port either through its
//! node port ([`BackendTarget::NodePort`]: the Service must be `NodePort` or `LoadBalancer` and
//! the port must have a `nodePort`) or straight at its pods ([`BackendTarget::Endpoints`], when
//! the Service's `cloud.google.com/neg` annotation says `"ingress": true`, or is absent and
//! [`super::Config::neg_default`] is on: any Service type but `ExternalName`, no node port
//! needed). The health check comes from [`super::probes`].

use super::probes::{self, PortContext};
use super::problems::Problems;
use super::service_settings::{self, ServiceSettings};
use super::{HealthCheckOrigin, Objects};
use crate::annotations as keys;
use cloud::model::{Backend, BackendKey, BackendTarget};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::IngressBackend;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Resolves backends of one Ingress, reading each Service once.
pub(crate) struct Backends<'a> {
    objects: &'a dyn Objects,
    namespace: &'a str,
    /// By Service name; `None` when it does not exist.
    services: BTreeMap<String, Option<ServiceEntry>>,
    backends: BTreeMap<BackendKey, Backend>,
    origins: BTreeMap<BackendKey, HealthCheckOrigin>,
    neg_default: bool,
    /// Service ports whose protocol was refused, so it is reported once.
    refused: BTreeSet<BackendKey>,
}

struct ServiceEntry {
    service: Arc<Service>,
    /// `None` when the annotations are invalid (already reported).
    settings: Option<ServiceSettings>,
    /// Whether the load balancer can reach the Service at all (reported once if not).
    reachable: bool,
    /// Whether its ports are served at their pods rather than through node ports.
    endpoints: bool,
}

/// How the backend names its port, for the field path of port problems.
enum PortRef<'a> {
    Number(i32),
    Name(&'a str),
}

impl<'a> Backends<'a> {
    /// `neg_default` is [`super::Config::neg_default`].
    pub(crate) fn new(objects: &'a dyn Objects, namespace: &'a str, neg_default: bool) -> Self {
        Self {
            objects,
            namespace,
            services: BTreeMap::new(),
            backends: BTreeMap::new(),
            origins: BTreeMap::new(),
            neg_default,
            refused: BTreeSet::new(),
        }
    }

    /// The Service port `backend` (at `field`) refers to, or `None` after reporting why not.
    pub(crate) fn resolve(
        &mut self,
        backend: &IngressBackend,
        field: &str,
        problems: &mut Problems,
    ) -> Option<BackendKey> {
        if backend.resource.is_some() {
            problems.error(
                format!("{field}.resource"),
                "resource backends are not supported; use service.name and service.port",
            );
            return None;
        }
        let Some(service_ref) = &backend.service else {
            problems.error(field, "names no backend; set service.name and service.port");
            return None;
        };
        let name_field = format!("{field}.service.name");
        if service_ref.name.is_empty() {
            problems.error(name_field, "is empty; name the Service");
            return None;
        }

        let port_field = format!("{field}.service.port");
        let port_ref = match &service_ref.port {
            None => {
                problems.error(&port_field, "is required; set number or name");
                None
            }
            Some(port) => match (port.number, port.name.as_deref()) {
                (Some(_), Some(_)) => {
                    problems.error(&port_field, "set either number or name, not both");
                    None
                }
                (None, None) | (None, Some("")) => {
                    problems.error(&port_field, "is required; set number or name");
                    None
                }
                (Some(n), None) if !(1..=65535).contains(&n) => {
                    problems.error(
                        format!("{port_field}.number"),
                        format!("{n} is not a port number (1 to 65535)"),
                    );
                    None
                }
                (Some(n), None) => Some(PortRef::Number(n)),
                (None, Some(name)) => Some(PortRef::Name(name)),
            },
        };

        let id = format!("{}/{}", self.namespace, service_ref.name);
        let entry = self.service(&service_ref.name, &id, &name_field, problems)?;
        if !entry.reachable {
            return None;
        }
        let port_ref = port_ref?;
        let endpoints = entry.endpoints;
        let service = Arc::clone(&entry.service);
        let settings = entry.settings.clone()?;

        let ports = service
            .spec
            .as_ref()
            .and_then(|s| s.ports.as_deref())
            .unwrap_or(&[]);
        let (port_field, found) = match port_ref {
            PortRef::Number(n) => {
                let found = ports.iter().enumerate().find(|(_, p)| p.port == n);
                if found.is_none() {
                    problems.error(
                        format!("{port_field}.number"),
                        format!("Service {id} has no port {n}"),
                    );
                }
                (format!("{port_field}.number"), found)
            }
            PortRef::Name(name) => {
                let found = ports
                    .iter()
                    .enumerate()
                    .find(|(_, p)| p.name.as_deref() == Some(name));
                if found.is_none() {
                    problems.error(
                        format!("{port_field}.name"),
                        format!("Service {id} has no port named {name:?}"),
                    );
                }
                (format!("{port_field}.name"), found)
            }
        };
        let (index, port) = found?;

        let Ok(number) = u16::try_from(port.port) else {
            problems.error(
                port_field,
                format!(
                    "Service {id}: spec.ports[{index}].port {} is not valid",
                    port.port
                ),
            );
            return None;
        };
        let key = BackendKey::new(self.namespace, &service_ref.name, number);
        if self.backends.contains_key(&key) {
            return Some(key);
        }
        if self.refused.contains(&key) {
            return None;
        }
        let mut refuse = |problems: &mut Problems, message: String| {
            problems.error(&port_field, message);
            self.refused.insert(key.clone());
        };
        if let Some(protocol) = port.protocol.as_deref().filter(|p| *p != "TCP") {
            refuse(
                problems,
                format!("Service {id} port {number} is {protocol}; the load balancer needs TCP"),
            );
            return None;
        }
        let target = if endpoints {
            BackendTarget::Endpoints
        } else {
            let Some(node_port) = port
                .node_port
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p != 0)
            else {
                refuse(
                    problems,
                    format!(
                        "Service {id} port {number} has no nodePort (is allocateLoadBalancerNodePorts false?); \
                         or serve its pods directly with the Service annotation {}: '{{\"ingress\": true}}'",
                        keys::NEG
                    ),
                );
                return None;
            };
            BackendTarget::NodePort { node_port }
        };
        let protocol = match service_settings::port_protocol(&settings, port, index, &id) {
            Ok(protocol) => protocol,
            Err(message) => {
                refuse(problems, message);
                return None;
            }
        };
        let cx = PortContext {
            namespace: self.namespace,
            service: &service_ref.name,
            port,
            protocol,
            target,
        };
        let (health_check, origin) = probes::health_check(self.objects, &cx, &settings);
        self.origins.insert(key.clone(), origin);
        self.backends.insert(
            key.clone(),
            Backend {
                key: key.clone(),
                target,
                protocol,
                health_check,
                timeout_sec: settings.timeout_sec,
                connection_draining_timeout_sec: settings.draining_sec,
            },
        );
        Some(key)
    }

    /// Every backend resolved, sorted by key, each once; and where each one's health check came
    /// from, in the same order.
    pub(crate) fn into_parts(self) -> (Vec<Backend>, Vec<(BackendKey, HealthCheckOrigin)>) {
        (
            self.backends.into_values().collect(),
            self.origins.into_iter().collect(),
        )
    }

    /// Looks the Service up once; problems with the Service itself are reported at the first
    /// field that refers to it, a missing Service at every such field.
    fn service(
        &mut self,
        name: &str,
        id: &str,
        field: &str,
        problems: &mut Problems,
    ) -> Option<&ServiceEntry> {
        if !self.services.contains_key(name) {
            let entry = self.objects.service(self.namespace, name).map(|service| {
                let parsed = service_settings::parse(&service, id, self.neg_default);
                for message in parsed.warnings {
                    problems.warn(field, message);
                }
                let valid = parsed.errors.is_empty();
                for message in parsed.errors {
                    problems.error(field, message);
                }
                let kind = service
                    .spec
                    .as_ref()
                    .and_then(|s| s.type_.as_deref())
                    .unwrap_or("ClusterIP");
                let endpoints = parsed.settings.neg.unwrap_or(self.neg_default);
                let reachable = if kind == "ExternalName" {
                    problems.error(
                        field,
                        format!(
                            "Service {id} is of type ExternalName; the load balancer cannot reach it (it \
                             has no node ports and no pods); use a NodePort, LoadBalancer or ClusterIP \
                             Service"
                        ),
                    );
                    false
                } else if !endpoints && !matches!(kind, "NodePort" | "LoadBalancer") {
                    problems.error(
                        field,
                        format!(
                            "Service {id} is of type {kind}; it must be NodePort or LoadBalancer (the load \
                             balancer reaches Services through node ports), or serve its pods directly \
                             with the Service annotation {}: '{{\"ingress\": true}}'",
                            keys::NEG
                        ),
                    );
                    false
                } else {
                    true
                };
                ServiceEntry {
                    service,
                    settings: valid.then_some(parsed.settings),
                    reachable,
                    endpoints,
                }
            });
            self.services.insert(name.to_owned(), entry);
        }
        let entry = self.services.get(name).and_then(Option::as_ref);
        if entry.is_none() {
            problems.error(field, format!("Service {id} not found"));
        }
        entry
    }
}
