//! An in-memory [`Provider`] for the controller's unit tests: it keeps the load balancers it
//! was asked for, hands out addresses from a test range, counts calls, and fails on demand.

use crate::Error;
use crate::model::{AddressRequest, ClusterInfra, LoadBalancer, LoadBalancerKey};
use crate::provider::{InfraStatus, LoadBalancerStatus, Provider, ResourceKind};
use async_trait::async_trait;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

/// How many times each method was called.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Calls {
    pub ensure: usize,
    pub delete: usize,
    pub ensure_infrastructure: usize,
    pub list_owned: usize,
}

#[derive(Default)]
struct State {
    lbs: BTreeMap<(String, String), (LoadBalancer, String)>,
    infra: Option<ClusterInfra>,
    static_addresses: BTreeMap<String, String>,
    next_ip: u32,
    calls: Calls,
    failures: VecDeque<Error>,
}

/// See the module documentation.
#[derive(Default)]
pub struct MemoryProvider {
    state: Mutex<State>,
}

impl MemoryProvider {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes a static address exist, for Ingresses that name one.
    pub fn add_static_address(&self, name: &str, ip: &str) {
        self.state()
            .static_addresses
            .insert(name.to_owned(), ip.to_owned());
    }

    /// The next calls fail with these errors, one each, in order.
    pub fn fail_next(&self, error: Error) {
        self.state().failures.push_back(error);
    }

    pub fn calls(&self) -> Calls {
        self.state().calls
    }

    /// The load balancers that exist, by key.
    pub fn load_balancers(&self) -> Vec<LoadBalancer> {
        self.state().lbs.values().map(|(lb, _)| lb.clone()).collect()
    }

    /// The load balancer of Ingress `namespace/name`, if it exists.
    pub fn load_balancer(&self, namespace: &str, name: &str) -> Option<LoadBalancer> {
        self.state()
            .lbs
            .get(&(namespace.to_owned(), name.to_owned()))
            .map(|(lb, _)| lb.clone())
    }

    /// The infrastructure last ensured.
    pub fn infrastructure(&self) -> Option<ClusterInfra> {
        self.state().infra.clone()
    }
}

#[async_trait]
impl Provider for MemoryProvider {
    async fn ensure(&self, lb: &LoadBalancer) -> Result<LoadBalancerStatus, Error> {
        let mut state = self.state();
        state.calls.ensure += 1;
        if let Some(e) = state.failures.pop_front() {
            return Err(e);
        }
        if state.infra.is_none() {
            return Err(Error::transient(
                "the cluster's infrastructure is not ensured yet",
            ));
        }
        let key = (lb.key.namespace.clone(), lb.key.name.clone());
        let changed = state.lbs.get(&key).is_none_or(|(old, _)| old != lb);
        let ip = match &lb.address {
            AddressRequest::Static { name } => match state.static_addresses.get(name) {
                Some(ip) => ip.clone(),
                None => return Err(Error::user(format!("the static address {name} does not exist"))),
            },
            AddressRequest::Ephemeral => match state.lbs.get(&key) {
                Some((old, ip)) if old.address == AddressRequest::Ephemeral => ip.clone(),
                _ => {
                    state.next_ip += 1;
                    let n = state.next_ip;
                    format!("203.0.{}.{}", 113 + n / 250, n % 250 + 1)
                }
            },
        };
        state.lbs.insert(key, (lb.clone(), ip.clone()));
        let mut resources = BTreeMap::new();
        let name = format!("mem-{}-{}", lb.key.namespace, lb.key.name);
        resources.insert(ResourceKind::UrlMap, vec![name.clone()]);
        if lb.frontends.http {
            resources.insert(ResourceKind::TargetHttpProxy, vec![name.clone()]);
            resources.insert(ResourceKind::HttpForwardingRule, vec![name.clone()]);
        }
        if let Some(https) = &lb.frontends.https {
            resources.insert(ResourceKind::TargetHttpsProxy, vec![name.clone()]);
            resources.insert(ResourceKind::HttpsForwardingRule, vec![name.clone()]);
            let certs = https
                .certificates
                .iter()
                .map(|c| format!("mem-{}", &c.sha256[..c.sha256.len().min(16)]));
            resources.insert(
                ResourceKind::SslCertificate,
                certs
                    .chain(https.pre_shared_certificates.iter().cloned())
                    .collect(),
            );
        }
        resources.insert(
            ResourceKind::BackendService,
            lb.backends
                .iter()
                .map(|b| format!("mem-{}", b.key).replace(['/', ':'], "-"))
                .collect(),
        );
        Ok(LoadBalancerStatus {
            address: ip,
            resources,
            warnings: Vec::new(),
            changed,
        })
    }

    async fn delete(&self, key: &LoadBalancerKey) -> Result<(), Error> {
        let mut state = self.state();
        state.calls.delete += 1;
        if let Some(e) = state.failures.pop_front() {
            return Err(e);
        }
        state.lbs.remove(&(key.namespace.clone(), key.name.clone()));
        Ok(())
    }

    async fn ensure_infrastructure(&self, infra: &ClusterInfra) -> Result<InfraStatus, Error> {
        let mut state = self.state();
        state.calls.ensure_infrastructure += 1;
        if let Some(e) = state.failures.pop_front() {
            return Err(e);
        }
        state.infra = Some(infra.clone());
        Ok(InfraStatus::default())
    }

    async fn list_owned(&self) -> Result<Vec<LoadBalancerKey>, Error> {
        let mut state = self.state();
        state.calls.list_owned += 1;
        if let Some(e) = state.failures.pop_front() {
            return Err(e);
        }
        Ok(state.lbs.values().map(|(lb, _)| lb.key.clone()).collect())
    }

    fn plan(&self, lb: &LoadBalancer) -> Result<serde_json::Value, Error> {
        serde_json::to_value(lb).map_err(|e| Error::bug(format!("serializing the model: {e}")))
    }
}
