//! The stored resources, the reference index and server-side allocations.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::Ipv4Addr;

use serde_json::Value;

use crate::ids::Rng;
use crate::json::Obj;
use crate::kinds::{CollKey, Key, Kind};
use crate::operations::{OpKey, OpTable};

/// A network endpoint of a NEG.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Endpoint {
    pub instance: String,
    pub ip: String,
    pub port: u32,
}

/// Members that are not part of the resource's JSON.
#[derive(Clone, Debug, Default)]
pub(crate) enum Members {
    #[default]
    None,
    /// An instance group's instances, by instance name (same zone as the group).
    Instances(BTreeSet<String>),
    /// A NEG's endpoints.
    Endpoints(BTreeSet<Endpoint>),
}

impl Members {
    pub(crate) fn for_kind(kind: Kind) -> Self {
        match kind {
            Kind::InstanceGroup => Members::Instances(BTreeSet::new()),
            Kind::NetworkEndpointGroup => Members::Endpoints(BTreeSet::new()),
            _ => Members::None,
        }
    }

    fn len(&self) -> usize {
        match self {
            Members::None => 0,
            Members::Instances(s) => s.len(),
            Members::Endpoints(s) => s.len(),
        }
    }
}

/// One stored resource: its JSON (as given, plus server fields and defaults), the resources
/// it references (for in-use checks) and its members.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub obj: Obj,
    pub refs: Vec<Key>,
    pub members: Members,
}

impl Entry {
    pub(crate) fn id(&self) -> Option<u64> {
        self.obj
            .get("id")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
    }
}

/// Every resource and operation of the fake.
#[derive(Debug)]
pub(crate) struct Store {
    colls: HashMap<CollKey, BTreeMap<String, Entry>>,
    /// Who references a key: the reverse of every entry's `refs`.
    referrers: HashMap<Key, BTreeSet<Key>>,
    /// Names reserved by inserts whose operation is not DONE yet.
    pub pending: HashMap<Key, OpKey>,
    pub ops: OpTable,
    pub rng: Rng,
    next_external_ip: u32,
    next_internal_ip: u32,
    next_instance_ip: u32,
    next_ipv6: u32,
    pub zones: BTreeSet<String>,
    /// Instances that `getHealth` reports as UNHEALTHY.
    pub unhealthy: HashSet<Key>,
    /// Bumped by reset, so that timers of operations from before a reset do nothing.
    pub generation: u64,
    /// Networks every project starts with (names, from [`crate::Config::networks`]).
    pub default_networks: Vec<String>,
    /// Projects the fake has seen: they have been given their default networks.
    projects: HashSet<String>,
}

impl Store {
    pub(crate) fn new(seed: u64, zones: &[String], op_retention: usize, generation: u64) -> Self {
        Store {
            colls: HashMap::new(),
            referrers: HashMap::new(),
            pending: HashMap::new(),
            ops: OpTable::new(op_retention),
            rng: Rng::new(seed),
            next_external_ip: u32::from(Ipv4Addr::new(34, 120, 0, 1)),
            next_internal_ip: u32::from(Ipv4Addr::new(10, 200, 0, 2)),
            next_instance_ip: u32::from(Ipv4Addr::new(10, 128, 0, 2)),
            next_ipv6: 1,
            zones: zones.iter().cloned().collect(),
            unhealthy: HashSet::new(),
            generation,
            default_networks: Vec::new(),
            projects: HashSet::new(),
        }
    }

    /// Gives a project the fake has not seen yet the networks every project starts with (a new
    /// Google Cloud project gets its `default` network the same way).
    pub(crate) fn ensure_project(&mut self, project: &str) {
        if self.projects.contains(project) {
            return;
        }
        self.projects.insert(project.to_string());
        for name in self.default_networks.clone() {
            let key = Key {
                project: project.to_string(),
                scope: crate::kinds::Scope::Global,
                kind: Kind::Network,
                name,
            };
            if self.get(&key).is_none() {
                let id = self.rng.id();
                let entry = crate::resources::network::build(&key, id);
                self.put(key, entry);
            }
        }
    }

    /// Whether a network exists: stored, or one its project (not seen yet) will start with.
    pub(crate) fn network_exists(&self, key: &Key) -> bool {
        self.get(key).is_some()
            || (!self.projects.contains(&key.project) && self.default_networks.contains(&key.name))
    }

    pub(crate) fn get(&self, key: &Key) -> Option<&Entry> {
        self.colls.get(&key.coll())?.get(&key.name)
    }

    pub(crate) fn get_mut(&mut self, key: &Key) -> Option<&mut Entry> {
        self.colls.get_mut(&key.coll())?.get_mut(&key.name)
    }

    /// The resources of one collection, by name.
    pub(crate) fn collection(&self, coll: &CollKey) -> Option<&BTreeMap<String, Entry>> {
        self.colls.get(coll)
    }

    /// Every collection, for dumps.
    pub(crate) fn all(&self) -> impl Iterator<Item = (&CollKey, &BTreeMap<String, Entry>)> {
        self.colls.iter()
    }

    /// Stores `entry` under `key`, keeping the reference index in step. The projects of the
    /// networks it references get their default networks first.
    pub(crate) fn put(&mut self, key: Key, entry: Entry) {
        for r in &entry.refs {
            if r.kind == Kind::Network && !self.projects.contains(&r.project) {
                let project = r.project.clone();
                self.ensure_project(&project);
            }
        }
        let old_refs = self.get(&key).map(|e| e.refs.clone()).unwrap_or_default();
        for r in &old_refs {
            self.unlink(r, &key);
        }
        for r in &entry.refs {
            self.referrers.entry(r.clone()).or_default().insert(key.clone());
        }
        self.colls
            .entry(key.coll())
            .or_default()
            .insert(key.name.clone(), entry);
    }

    pub(crate) fn remove(&mut self, key: &Key) -> Option<Entry> {
        let coll = self.colls.get_mut(&key.coll())?;
        let entry = coll.remove(&key.name)?;
        if coll.is_empty() {
            self.colls.remove(&key.coll());
        }
        for r in &entry.refs {
            self.unlink(r, key);
        }
        Some(entry)
    }

    fn unlink(&mut self, target: &Key, user: &Key) {
        if let Some(set) = self.referrers.get_mut(target) {
            set.remove(user);
            if set.is_empty() {
                self.referrers.remove(target);
            }
        }
    }

    /// The stored resources that reference `key`.
    pub(crate) fn referrers(&self, key: &Key) -> impl Iterator<Item = &Key> {
        self.referrers.get(key).into_iter().flatten()
    }

    /// A fresh external IPv4 address (reserved addresses and ephemeral forwarding-rule IPs).
    pub(crate) fn allocate_external_ip(&mut self) -> String {
        let ip = Ipv4Addr::from(self.next_external_ip);
        self.next_external_ip = self.next_external_ip.wrapping_add(1);
        ip.to_string()
    }

    /// A fresh internal IPv4 address (`addressType: INTERNAL`).
    pub(crate) fn allocate_internal_ip(&mut self) -> String {
        let ip = Ipv4Addr::from(self.next_internal_ip);
        self.next_internal_ip = self.next_internal_ip.wrapping_add(1);
        ip.to_string()
    }

    /// A fresh external IPv6 address.
    pub(crate) fn allocate_ipv6(&mut self) -> String {
        let n = self.next_ipv6;
        self.next_ipv6 = self.next_ipv6.wrapping_add(1);
        format!("2600:1901:0:{:x}::", n)
    }

    /// A fresh primary IP for a seeded instance.
    pub(crate) fn allocate_instance_ip(&mut self) -> String {
        let ip = Ipv4Addr::from(self.next_instance_ip);
        self.next_instance_ip = self.next_instance_ip.wrapping_add(1);
        ip.to_string()
    }

    /// The JSON of a resource as a read shows it: the stored object plus the fields the server
    /// computes (address `status`/`users`, group `size`).
    pub(crate) fn render(&self, key: &Key, entry: &Entry) -> Obj {
        let mut obj = entry.obj.clone();
        match key.kind {
            Kind::Address => {
                let users: Vec<Value> = self
                    .referrers(key)
                    .filter(|k| k.kind == Kind::ForwardingRule)
                    .map(|k| Value::String(k.link()))
                    .collect();
                let status = if users.is_empty() { "RESERVED" } else { "IN_USE" };
                obj.insert("status".into(), Value::from(status));
                if !users.is_empty() {
                    obj.insert("users".into(), Value::Array(users));
                }
            }
            Kind::InstanceGroup | Kind::NetworkEndpointGroup => {
                obj.insert("size".into(), Value::from(entry.members.len()));
            }
            Kind::Network => crate::resources::network::render_subnetworks(key, &mut obj, &self.zones),
            _ => {}
        }
        obj
    }

    /// The rendered JSON of `key`, if it exists.
    pub(crate) fn render_key(&self, key: &Key) -> Option<Obj> {
        self.get(key).map(|e| self.render(key, e))
    }
}
