//! The shared state behind one mutex (short critical sections), the mutation life cycle, and the
//! seeding and dump helpers used by the admin API.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};

use crate::config::{Config, InstanceSeed, Latency, Limits};
use crate::dataplane::{Plane, PlaneSetup};
use crate::errors::ApiError;
use crate::faults::{FaultError, FaultSet, OpFault};
use crate::journal::{AppliedEntry, AppliedStatus, JournalBuf, JournalEvent, ResourceChange};
use crate::json::Obj;
use crate::kinds::{Key, Kind, Scope, network_key, region_of_zone, valid_name};
use crate::mutation::{self, MutationReq, Verb};
use crate::operations::{self, OpEntry, OpKey, PendingOp};
use crate::ratelimit::TokenBucket;
use crate::resources::{instance, ref_error};
use crate::stats::Stats;
use crate::store::{Members, Store};

/// Knobs that change at run time.
#[derive(Debug)]
pub(crate) struct Knobs {
    pub latency: Latency,
    pub faults: FaultSet,
    pub quotas: BTreeMap<String, u64>,
    pub bucket: Option<TokenBucket>,
    pub seed: u64,
}

/// Everything mutable.
#[derive(Debug)]
pub(crate) struct State {
    pub store: Store,
    pub knobs: Knobs,
    pub stats: Stats,
    pub journal: JournalBuf,
    /// Set when forwarding rules changed (an operation on one was applied, or a reset): the
    /// data plane's listeners must follow before the lock is released.
    pub listeners_dirty: bool,
}

/// A timer to start: complete `op` after `delay`, unless the state was reset meanwhile.
#[derive(Debug)]
pub(crate) struct Schedule {
    pub op: OpKey,
    pub delay: Duration,
    pub generation: u64,
}

/// Why the configured start-up state is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A fault rule is invalid.
    #[error("fault rule {index}: {source}")]
    Fault {
        /// Position in [`Config::faults`].
        index: usize,
        /// What is wrong.
        source: FaultError,
    },
    /// A network is invalid.
    #[error("network {index}: {source}")]
    Network {
        /// Position in [`Config::networks`].
        index: usize,
        /// What is wrong.
        source: ApiError,
    },
    /// A seeded instance is invalid.
    #[error("instance {index}: {source}")]
    Instance {
        /// Position in [`Config::instances`].
        index: usize,
        /// What is wrong.
        source: ApiError,
    },
}

/// The state plus the immutable configuration, shared by handlers and timers.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: Config,
    pub limits: Limits,
    state: Mutex<State>,
    /// The data plane, when [`Config::data_plane`] turns it on.
    pub dataplane: Option<Plane>,
}

impl Shared {
    /// The shared state; `data_plane` is the prepared data plane (claimed block) when it is on.
    pub(crate) fn new(config: Config, data_plane: Option<PlaneSetup>) -> Result<Arc<Self>, ConfigError> {
        let block = data_plane.as_ref().map(PlaneSetup::block);
        let state = State::fresh(&config, 0, block)?;
        // The data plane's tasks hold the state weakly, so that it goes when the fake does.
        Ok(Arc::new_cyclic(|weak| Shared {
            limits: Limits::from_config(&config),
            config,
            state: Mutex::new(state),
            dataplane: data_plane.map(|setup| Plane::new(setup, weak.clone())),
        }))
    }

    /// The data plane's loopback block, when it runs.
    pub(crate) fn block(&self) -> Option<std::net::Ipv4Addr> {
        self.dataplane.as_ref().map(Plane::block)
    }

    /// Locks the state. A panic while holding the lock cannot leave the store half-changed in a
    /// way that matters for a fake, so a poisoned lock is simply taken over.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Back to the start configuration (resources, operations, knobs and counters).
    pub(crate) fn reset(&self) {
        let mut st = self.lock();
        let generation = st.store.generation + 1;
        // The configuration was validated at start, so this cannot fail; keep the old state if
        // it somehow does.
        // The journal is cleared, not replaced: `seq` keeps counting.
        if let Ok(mut fresh) = State::fresh(&self.config, generation, self.block()) {
            std::mem::swap(&mut fresh.journal, &mut st.journal);
            fresh.journal.clear();
            *st = fresh;
        }
        self.data_plane_sync(&mut st);
    }

    /// Starts the timer of a scheduled completion.
    pub(crate) fn spawn_completion(self: &Arc<Self>, s: Schedule) {
        let shared = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(s.delay).await;
            let mut st = shared.lock();
            if st.store.generation == s.generation {
                st.complete(&shared.limits, &s.op);
                // Under the same lock: an operation seen DONE has its listeners bound already.
                shared.data_plane_sync(&mut st);
            }
        });
    }
}

impl State {
    /// The start state. `block`: the data plane's loopback block, for external addresses.
    fn fresh(
        config: &Config,
        generation: u64,
        block: Option<std::net::Ipv4Addr>,
    ) -> Result<State, ConfigError> {
        let mut faults = FaultSet::default();
        for (index, rule) in config.faults.iter().enumerate() {
            faults
                .add(rule.clone(), config.seed)
                .map_err(|source| ConfigError::Fault { index, source })?;
        }
        let mut st = State {
            store: Store::new(
                config.seed,
                &config.zones,
                config.operation_retention,
                generation,
                block,
            ),
            knobs: Knobs {
                latency: config.latency.clone(),
                faults,
                quotas: config.quotas.clone(),
                bucket: config.rate_limit.clone().map(TokenBucket::new),
                seed: config.seed,
            },
            stats: Stats::default(),
            journal: JournalBuf::new(config.journal_capacity),
            // A fresh state has no forwarding rule: listeners of an earlier one must close.
            listeners_dirty: true,
        };
        for (index, spec) in config.networks.iter().enumerate() {
            st.seed_network(&config.project_id, spec)
                .map_err(|source| ConfigError::Network { index, source })?;
        }
        // The project of the configuration has its start networks stored, like any resource.
        st.store.store_start_networks(&config.project_id);
        for (index, seed) in config.instances.iter().enumerate() {
            st.seed_instance(&config.project_id, seed)
                .map_err(|source| ConfigError::Instance { index, source })?;
        }
        Ok(st)
    }

    /// Checks a mutation, creates its RUNNING operation and returns it as the response. With no
    /// latency the operation completes before the response is sent (the response still shows it
    /// RUNNING, as a real operation that finished right after answering); otherwise the returned
    /// schedule must be started.
    pub(crate) fn mutate(
        &mut self,
        limits: &Limits,
        req: MutationReq,
        request_id: Option<&str>,
        fault: Option<OpFault>,
    ) -> Result<(Obj, Option<Schedule>), ApiError> {
        if let Some(rid) = request_id
            && let Some(op) = self.store.ops.by_request_id(&req.key.project, rid)
            && let Some(entry) = self.store.ops.get(op)
        {
            return Ok((entry.obj.clone(), None));
        }
        mutation::plan(&self.store, limits, &self.knobs.quotas, &req, None)?;
        let target_id = match req.verb {
            Verb::Insert => Some(req.new_id),
            _ => self.store.find(&req.key).and_then(|e| e.id()),
        };
        let op = OpKey {
            project: req.key.project.clone(),
            scope: req.key.scope.clone(),
            name: self.store.rng.operation_name(),
        };
        let op_id = self.store.rng.id();
        let obj = operations::running_json(
            &op,
            op_id,
            &req.verb.operation_type(req.key.kind),
            &req.key.link(),
            target_id,
            request_id,
        );
        let response = obj.clone();
        let latency = self
            .knobs
            .latency
            .for_operation(req.key.api_name(), req.verb.method_name());
        if req.verb == Verb::Insert {
            self.store.pending.insert(req.key.clone(), op.clone());
        }
        let never = matches!(fault, Some(OpFault::Never));
        let (done, _) = tokio::sync::watch::channel(false);
        let entry = OpEntry {
            obj,
            done,
            pending: Some(PendingOp { req, fault }),
        };
        self.store.ops.insert(op.clone(), entry, request_id);
        self.stats.operations.created += 1;
        if never {
            return Ok((response, None));
        }
        if latency.is_zero() {
            self.complete(limits, &op);
            return Ok((response, None));
        }
        let generation = self.store.generation;
        Ok((
            response,
            Some(Schedule {
                op,
                delay: latency,
                generation,
            }),
        ))
    }

    /// Completes an operation: re-checks the mutation against the current state, applies it or
    /// records why it failed, and marks the operation DONE.
    pub(crate) fn complete(&mut self, limits: &Limits, op: &OpKey) {
        let Some(pending) = self.store.ops.get_mut(op).and_then(|e| e.pending.take()) else {
            return;
        };
        let key = pending.req.key.clone();
        let result = match pending.fault {
            Some(OpFault::Fail { error, code }) => Err((error, Some(code))),
            _ => mutation::plan(&self.store, limits, &self.knobs.quotas, &pending.req, Some(op))
                .map(|change| {
                    let what = ResourceChange::of(&change);
                    mutation::apply(&mut self.store, change);
                    self.listeners_dirty |= key.kind == Kind::ForwardingRule;
                    what
                })
                .map_err(|e| (e, None)),
        };
        self.journal.push(JournalEvent::Applied(AppliedEntry {
            operation: op.name.clone(),
            operation_type: pending.req.verb.operation_type(key.kind),
            target_link: key.link(),
            status: match result {
                Ok(_) => AppliedStatus::Done,
                Err(_) => AppliedStatus::Failed,
            },
            error_code: result
                .as_ref()
                .err()
                .map(|(e, code)| code.clone().unwrap_or_else(|| e.operation_code())),
            change: *result.as_ref().unwrap_or(&ResourceChange::None),
        }));
        if self.store.pending.get(&key) == Some(op) {
            self.store.pending.remove(&key);
        }
        match &result {
            Ok(_) => self.stats.operations.succeeded += 1,
            Err(_) => self.stats.operations.failed += 1,
        }
        if let Some(entry) = self.store.ops.get_mut(op) {
            let err = result.as_ref().err().map(|(e, c)| (e, c.as_deref()));
            operations::mark_done(&mut entry.obj, err);
            entry.done.send_replace(true);
        }
    }

    /// A network of [`Config::networks`]: a bare name is one every project starts with, a
    /// path one network of one project, stored at once.
    fn seed_network(&mut self, default_project: &str, spec: &str) -> Result<(), ApiError> {
        let key = network_key(spec, default_project).map_err(|e| ref_error("networks", spec, e))?;
        if !valid_name(&key.name) {
            return Err(ApiError::invalid_name("networks", spec));
        }
        if !spec.contains('/') {
            self.store.default_networks.push(key.name);
        } else if self.store.get(&key).is_none() {
            let entry = self.store.start_network(&key);
            self.store.put(key, entry);
        }
        Ok(())
    }

    /// Where a seeded instance's primary interface is: its network must exist.
    fn seed_nic(&self, key: &Key, seed: &InstanceSeed, ip: String) -> Result<instance::Nic, ApiError> {
        let given = seed.network.as_deref().unwrap_or("default");
        let network = network_key(given, &key.project).map_err(|e| ref_error("network", given, e))?;
        let auto = match self.store.find(&network) {
            Some(e) => crate::resources::network::auto_mode(&e.obj),
            None => return Err(ApiError::not_found(&network.path())),
        };
        let subnetwork = match (&seed.subnetwork, &key.scope) {
            (Some(s), _) => Some(
                crate::resources::subnetwork_link(s, &key.project)
                    .map_err(|e| ref_error("subnetwork", s, e))?,
            ),
            (None, Scope::Zone(zone)) if auto => Some(crate::resources::network::auto_subnetwork(
                &network,
                region_of_zone(zone),
            )),
            (None, _) => None,
        };
        let mut alias_ranges = Vec::with_capacity(seed.alias_ip_ranges.len());
        for (i, r) in seed.alias_ip_ranges.iter().enumerate() {
            let (base, len) = instance::parse_cidr(r).ok_or_else(|| {
                ApiError::invalid_field(
                    &format!("aliasIpRanges[{i}]"),
                    r,
                    "Must be an IPv4 CIDR range (10.4.0.0/24) or address.",
                )
            })?;
            alias_ranges.push(format!("{base}/{len}"));
        }
        Ok(instance::Nic {
            network,
            subnetwork,
            ip,
            alias_ranges,
        })
    }

    /// Creates (or refreshes) an instance that groups may hold.
    pub(crate) fn seed_instance(
        &mut self,
        default_project: &str,
        seed: &InstanceSeed,
    ) -> Result<String, ApiError> {
        if !valid_name(&seed.name) {
            return Err(ApiError::invalid_name("name", &seed.name));
        }
        if !valid_name(&seed.zone) {
            return Err(ApiError::invalid_name("zone", &seed.zone));
        }
        let project = seed
            .project
            .clone()
            .unwrap_or_else(|| default_project.to_string());
        let key = Key {
            project,
            scope: Scope::Zone(seed.zone.clone()),
            kind: Kind::Instance,
            name: seed.name.clone(),
        };
        let old = self.store.get(&key).cloned();
        let ip = match &seed.ip {
            Some(ip) if ip.parse::<std::net::IpAddr>().is_err() => {
                return Err(ApiError::invalid_field("ip", ip, "Invalid IP address specified."));
            }
            Some(ip) => ip.clone(),
            None => match &old {
                Some(e) => instance::primary_ip(&e.obj),
                None => self.store.allocate_instance_ip(),
            },
        };
        let nic = self.seed_nic(&key, seed, ip)?;
        let id = self.store.rng.id();
        let entry = instance::build(&key, &seed.zone, id, nic, &seed.tags, old.as_ref());
        self.store.zones.insert(seed.zone.clone());
        self.store.put(key.clone(), entry);
        Ok(key.link())
    }

    /// Deletes an instance, which also takes it out of instance groups and NEGs (as deleting a
    /// VM does).
    pub(crate) fn remove_instance(&mut self, project: &str, zone: &str, name: &str) -> bool {
        self.store.remove_instance(&Key {
            project: project.to_string(),
            scope: Scope::Zone(zone.to_string()),
            kind: Kind::Instance,
            name: name.to_string(),
        })
    }

    /// Marks an instance healthy or unhealthy for `getHealth`; `false` if it does not exist.
    pub(crate) fn set_instance_health(
        &mut self,
        project: &str,
        zone: &str,
        name: &str,
        healthy: bool,
    ) -> bool {
        let key = Key {
            project: project.to_string(),
            scope: Scope::Zone(zone.to_string()),
            kind: Kind::Instance,
            name: name.to_string(),
        };
        if self.store.get(&key).is_none() {
            return false;
        }
        if healthy {
            self.store.unhealthy.remove(&key);
        } else {
            self.store.unhealthy.insert(key);
        }
        true
    }

    /// Forces the endpoint `ip:port` of the zonal NEG `neg` UNHEALTHY, or lifts that; `false`
    /// if the NEG has no such endpoint. The override goes with the endpoint (detached, its
    /// instance deleted, the NEG deleted).
    pub(crate) fn set_endpoint_health(
        &mut self,
        project: &str,
        zone: &str,
        neg: &str,
        ip: &str,
        port: u32,
        healthy: bool,
    ) -> bool {
        let key = Key {
            project: project.to_string(),
            scope: Scope::Zone(zone.to_string()),
            kind: Kind::NetworkEndpointGroup,
            name: neg.to_string(),
        };
        // Endpoints are stored with their address in canonical form.
        let Ok(ip) = ip.parse::<std::net::IpAddr>().map(|ip| ip.to_string()) else {
            return false;
        };
        let attached = matches!(
            self.store.get(&key).map(|e| &e.members),
            Some(Members::Endpoints(set)) if set.iter().any(|e| e.ip == ip && e.port == port)
        );
        if !attached {
            return false;
        }
        let r = crate::store::EndpointRef { neg: key, ip, port };
        if healthy {
            self.store.unhealthy_endpoints.remove(&r);
        } else {
            self.store.unhealthy_endpoints.insert(r);
        }
        true
    }

    /// The full state: every resource as a read shows it (networks under `networks`), group
    /// members, operations.
    pub(crate) fn dump(&self) -> Value {
        let mut resources = BTreeMap::new();
        let mut networks = BTreeMap::new();
        let mut members = BTreeMap::new();
        let mut endpoints = BTreeMap::new();
        for (coll, entries) in self.store.all() {
            for (name, entry) in entries {
                let key = coll.key(name);
                let path = key.path();
                match &entry.members {
                    Members::Instances(s) => {
                        let links: Vec<String> =
                            s.iter().map(|i| key.sibling(Kind::Instance, i).link()).collect();
                        members.insert(path.clone(), json!(links));
                    }
                    Members::Endpoints(s) => {
                        let eps: Vec<Value> = s
                            .iter()
                            .map(|e| json!({"instance": e.instance, "ipAddress": e.ip, "port": e.port}))
                            .collect();
                        endpoints.insert(path.clone(), Value::Array(eps));
                    }
                    Members::None => {}
                }
                // Networks are listed apart: they are infrastructure a test's cleanup leaves.
                let into = if key.kind == Kind::Network {
                    &mut networks
                } else {
                    &mut resources
                };
                into.insert(path, Value::Object(self.store.render(&key, entry)));
            }
        }
        let operations: BTreeMap<String, Value> = self
            .store
            .ops
            .all()
            .map(|(k, e)| (k.path(), Value::Object(e.obj.clone())))
            .collect();
        let unhealthy: Vec<String> = {
            let mut v: Vec<String> = self.store.unhealthy.iter().map(Key::path).collect();
            v.sort();
            v
        };
        json!({
            "resources": resources,
            "networks": networks,
            "members": members,
            "endpoints": endpoints,
            "operations": operations,
            "pendingOperations": self.store.ops.pending_count(),
            "zones": self.store.zones,
            "unhealthyInstances": unhealthy,
            "unhealthyEndpoints": self
                .store
                .unhealthy_endpoints
                .iter()
                .map(|e| json!({"networkEndpointGroup": e.neg.path(), "ipAddress": e.ip, "port": e.port}))
                .collect::<Vec<_>>(),
        })
    }
}
