//! The stored resources, the reference index and server-side allocations.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::Ipv4Addr;

use serde_json::Value;

use crate::ids::{Rng, now_rfc3339, stable_id};
use crate::json::Obj;
use crate::kinds::{CollKey, Key, Kind, Scope};
use crate::operations::{OpKey, OpTable};

/// A network endpoint of a NEG.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Endpoint {
    pub instance: String,
    pub ip: String,
    pub port: u32,
}

/// One endpoint of one NEG, as the admin API names it to force its health.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct EndpointRef {
    pub neg: Key,
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

    /// An instance group's instances.
    fn instances(&self) -> Option<&BTreeSet<String>> {
        match self {
            Members::Instances(s) => Some(s),
            _ => None,
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

/// A self-managed certificate's private key, as PEM. Kept apart from the resource (never in its
/// JSON), so no read, dump, journal or log shows it; `Debug` prints no key material.
#[derive(Clone)]
pub(crate) struct PrivateKeyPem(String);

impl PrivateKeyPem {
    pub(crate) fn new(pem: String) -> Self {
        PrivateKeyPem(pem)
    }

    /// The PEM text, for the data plane's TLS handshakes only.
    pub(crate) fn pem(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PrivateKeyPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKeyPem(<redacted>)")
    }
}

/// Every resource and operation of the fake.
#[derive(Debug)]
pub(crate) struct Store {
    colls: HashMap<CollKey, BTreeMap<String, Entry>>,
    /// Who references a key: the reverse of every entry's `refs`.
    referrers: HashMap<Key, BTreeSet<Key>>,
    /// Which instance groups hold an instance: the reverse of every group's members.
    holders: HashMap<Key, BTreeSet<Key>>,
    /// Names reserved by inserts whose operation is not DONE yet.
    pub pending: HashMap<Key, OpKey>,
    pub ops: OpTable,
    pub rng: Rng,
    next_external_ip: u32,
    /// With the data plane on: the loopback block external IPv4 addresses come from, and the
    /// host number to try next (1–253).
    external_block: Option<(Ipv4Addr, u8)>,
    /// Private keys of self-managed SSL certificates, removed with their certificate.
    private_keys: HashMap<Key, PrivateKeyPem>,
    next_internal_ip: u32,
    next_instance_ip: u32,
    next_ipv6: u32,
    pub zones: BTreeSet<String>,
    /// Instances that `getHealth` reports as UNHEALTHY.
    pub unhealthy: HashSet<Key>,
    /// NEG endpoints the admin API forced UNHEALTHY; an entry goes when its endpoint leaves the
    /// NEG (detached, its instance deleted, the NEG deleted).
    pub unhealthy_endpoints: BTreeSet<EndpointRef>,
    /// Bumped by reset, so that timers of operations from before a reset do nothing.
    pub generation: u64,
    /// Networks every project starts with (names, from [`crate::Config::networks`]).
    pub default_networks: Vec<String>,
    /// Projects whose start networks are stored. In every other project they are virtual:
    /// reads and checks see them, nothing is stored until a write needs it (a delete of one).
    stored_projects: HashSet<String>,
    /// When the fake started: the creation time of the networks projects start with.
    started: String,
}

impl Store {
    /// An empty store. `external_block`: the data plane's loopback block, where external IPv4
    /// addresses are allocated instead of `34.120.0.0/16`.
    pub(crate) fn new(
        seed: u64,
        zones: &[String],
        op_retention: usize,
        generation: u64,
        external_block: Option<Ipv4Addr>,
    ) -> Self {
        Store {
            colls: HashMap::new(),
            referrers: HashMap::new(),
            holders: HashMap::new(),
            pending: HashMap::new(),
            ops: OpTable::new(op_retention),
            rng: Rng::new(seed),
            next_external_ip: u32::from(Ipv4Addr::new(34, 120, 0, 1)),
            external_block: external_block.map(|b| (b, 1)),
            private_keys: HashMap::new(),
            next_internal_ip: u32::from(Ipv4Addr::new(10, 200, 0, 2)),
            next_instance_ip: u32::from(Ipv4Addr::new(10, 128, 0, 2)),
            next_ipv6: 1,
            zones: zones.iter().cloned().collect(),
            unhealthy: HashSet::new(),
            unhealthy_endpoints: BTreeSet::new(),
            generation,
            default_networks: Vec::new(),
            stored_projects: HashSet::new(),
            started: now_rfc3339(),
        }
    }

    /// A network as a project starts with it, the same (id, creation time) whenever built.
    pub(crate) fn start_network(&self, key: &Key) -> Entry {
        crate::resources::network::build(key, stable_id(&key.path()), &self.started)
    }

    /// Whether `key` is a network its project starts with that is not stored (yet).
    fn is_virtual(&self, key: &Key) -> bool {
        key.kind == Kind::Network
            && key.scope == Scope::Global
            && !self.stored_projects.contains(&key.project)
            && self.default_networks.contains(&key.name)
            && self.get(key).is_none()
    }

    /// Stores the networks `project` starts with (those not stored already); from then on they
    /// are resources like any other.
    pub(crate) fn store_start_networks(&mut self, project: &str) {
        if !self.stored_projects.insert(project.to_string()) {
            return;
        }
        for name in self.default_networks.clone() {
            let key = Key {
                project: project.to_string(),
                scope: Scope::Global,
                kind: Kind::Network,
                name,
            };
            if self.get(&key).is_none() {
                let entry = self.start_network(&key);
                self.put(key, entry);
            }
        }
    }

    /// A resource as reads and checks see it: stored, or a network its project starts with.
    pub(crate) fn find(&self, key: &Key) -> Option<Cow<'_, Entry>> {
        match self.get(key) {
            Some(e) => Some(Cow::Borrowed(e)),
            None if self.is_virtual(key) => Some(Cow::Owned(self.start_network(key))),
            None => None,
        }
    }

    /// Whether a resource exists, stored or a network its project starts with.
    pub(crate) fn exists(&self, key: &Key) -> bool {
        self.get(key).is_some() || self.is_virtual(key)
    }

    /// The resources of one collection as reads see them ([`Store::find`]), in name order.
    pub(crate) fn entries<'s>(&'s self, coll: &CollKey) -> impl Iterator<Item = (&'s str, Cow<'s, Entry>)> {
        let mut stored = self
            .colls
            .get(coll)
            .into_iter()
            .flatten()
            .map(|(n, e)| (n.as_str(), Cow::Borrowed(e)))
            .peekable();
        let mut virtual_ = self.virtual_names(coll).into_iter().peekable();
        let coll = coll.clone();
        std::iter::from_fn(move || {
            let take_virtual = match (stored.peek(), virtual_.peek()) {
                (Some((s, _)), Some(v)) => v < s,
                (None, v) => v.is_some(),
                (Some(_), None) => false,
            };
            if take_virtual {
                let name = virtual_.next()?;
                Some((name, Cow::Owned(self.start_network(&coll.key(name)))))
            } else {
                stored.next()
            }
        })
    }

    /// The networks of `coll` its project starts with that are not stored, in name order.
    fn virtual_names(&self, coll: &CollKey) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .default_networks
            .iter()
            .map(String::as_str)
            .filter(|n| self.is_virtual(&coll.key(n)))
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// How many resources of `coll` exist without being stored (networks its project starts
    /// with), for counts such as quotas.
    pub(crate) fn virtual_count(&self, coll: &CollKey) -> usize {
        self.virtual_names(coll).len()
    }

    pub(crate) fn get(&self, key: &Key) -> Option<&Entry> {
        self.colls.get(&key.coll())?.get(&key.name)
    }

    /// The resources of one collection, by name.
    pub(crate) fn collection(&self, coll: &CollKey) -> Option<&BTreeMap<String, Entry>> {
        self.colls.get(coll)
    }

    /// Every collection, for dumps.
    pub(crate) fn all(&self) -> impl Iterator<Item = (&CollKey, &BTreeMap<String, Entry>)> {
        self.colls.iter()
    }

    /// Stores `entry` under `key`, keeping the reference and membership indexes in step.
    pub(crate) fn put(&mut self, key: Key, entry: Entry) {
        let old = self.get(&key);
        let old_refs = old.map(|e| e.refs.clone()).unwrap_or_default();
        let empty = BTreeSet::new();
        let before = old.and_then(|e| e.members.instances()).unwrap_or(&empty);
        let after = entry.members.instances().unwrap_or(&empty);
        let left: Vec<Key> = before
            .difference(after)
            .map(|n| key.sibling(Kind::Instance, n))
            .collect();
        let joined: Vec<Key> = after
            .difference(before)
            .map(|n| key.sibling(Kind::Instance, n))
            .collect();
        for r in &old_refs {
            unindex(&mut self.referrers, r, &key);
        }
        for r in &entry.refs {
            self.referrers.entry(r.clone()).or_default().insert(key.clone());
        }
        for i in &left {
            unindex(&mut self.holders, i, &key);
        }
        for i in joined {
            self.holders.entry(i).or_default().insert(key.clone());
        }
        let neg = matches!(entry.members, Members::Endpoints(_)).then(|| key.clone());
        self.colls
            .entry(key.coll())
            .or_default()
            .insert(key.name.clone(), entry);
        if let Some(neg) = neg {
            self.prune_endpoint_overrides(&neg);
        }
    }

    /// Whether the admin API forced the endpoint `ip:port` of the NEG `neg` UNHEALTHY.
    pub(crate) fn endpoint_forced_down(&self, neg: &Key, ip: &str, port: u32) -> bool {
        !self.unhealthy_endpoints.is_empty()
            && self.unhealthy_endpoints.contains(&EndpointRef {
                neg: neg.clone(),
                ip: ip.to_string(),
                port,
            })
    }

    /// Forgets the forced health of endpoints no longer in the NEG `neg` (or of every endpoint,
    /// when it is gone).
    fn prune_endpoint_overrides(&mut self, neg: &Key) {
        if self.unhealthy_endpoints.is_empty() {
            return;
        }
        let attached: BTreeSet<(String, u32)> = match self.get(neg).map(|e| &e.members) {
            Some(Members::Endpoints(set)) => set.iter().map(|e| (e.ip.clone(), e.port)).collect(),
            _ => BTreeSet::new(),
        };
        self.unhealthy_endpoints
            .retain(|e| e.neg != *neg || attached.contains(&(e.ip.clone(), e.port)));
    }

    /// Removes a resource, keeping the indexes in step. Deleting a network its project starts
    /// with stores the project's start networks first (the others stay).
    pub(crate) fn remove(&mut self, key: &Key) -> Option<Entry> {
        if self.is_virtual(key) {
            self.store_start_networks(&key.project);
        }
        let coll = self.colls.get_mut(&key.coll())?;
        let entry = coll.remove(&key.name)?;
        if coll.is_empty() {
            self.colls.remove(&key.coll());
        }
        for r in &entry.refs {
            unindex(&mut self.referrers, r, key);
        }
        self.private_keys.remove(key);
        for n in entry.members.instances().into_iter().flatten() {
            unindex(&mut self.holders, &key.sibling(Kind::Instance, n), key);
        }
        if matches!(entry.members, Members::Endpoints(_)) {
            self.prune_endpoint_overrides(key);
        }
        Some(entry)
    }

    /// Deletes an instance, which also takes it out of the instance groups and NEGs holding it
    /// (as deleting a VM does); `false` if it does not exist.
    pub(crate) fn remove_instance(&mut self, key: &Key) -> bool {
        if self.remove(key).is_none() {
            return false;
        }
        self.unhealthy.remove(key);
        for group in self.holders.remove(key).unwrap_or_default() {
            let entry = self
                .colls
                .get_mut(&group.coll())
                .and_then(|m| m.get_mut(&group.name));
            if let Some(Members::Instances(s)) = entry.map(|e| &mut e.members) {
                s.remove(&key.name);
            }
        }
        let negs = CollKey {
            kind: Kind::NetworkEndpointGroup,
            ..key.coll()
        };
        let mut changed = Vec::new();
        for (name, entry) in self.colls.get_mut(&negs).into_iter().flat_map(|m| m.iter_mut()) {
            if let Members::Endpoints(s) = &mut entry.members {
                let before = s.len();
                s.retain(|ep| ep.instance != key.name);
                if s.len() != before {
                    changed.push(negs.key(name));
                }
            }
        }
        for neg in changed {
            self.prune_endpoint_overrides(&neg);
        }
        true
    }

    /// The stored resources that reference `key`.
    pub(crate) fn referrers(&self, key: &Key) -> impl Iterator<Item = &Key> {
        self.referrers.get(key).into_iter().flatten()
    }

    /// The instance groups that hold `instance`.
    pub(crate) fn groups_holding(&self, instance: &Key) -> impl Iterator<Item = &Key> {
        self.holders.get(instance).into_iter().flatten()
    }

    /// A fresh external IPv4 address (reserved addresses and ephemeral forwarding-rule IPs):
    /// the next of `34.120.0.0/16`, or with the data plane on the next free one of `.1`–`.253`
    /// of its loopback block.
    pub(crate) fn allocate_external_ip(&mut self) -> String {
        if let Some((base, next)) = self.external_block {
            return self.allocate_in_block(base, next);
        }
        let ip = Ipv4Addr::from(self.next_external_ip);
        self.next_external_ip = self.next_external_ip.wrapping_add(1);
        ip.to_string()
    }

    /// The first host of the block from `next` on (wrapping) that no address or forwarding rule
    /// holds; when all 253 are taken, `next` again (a conflict the caller will see), since an
    /// allocation cannot fail.
    fn allocate_in_block(&mut self, base: Ipv4Addr, next: u8) -> String {
        let [_, a, b, _] = base.octets();
        let used: HashSet<&str> = self
            .colls
            .iter()
            .filter_map(|(coll, entries)| match coll.kind {
                Kind::Address => Some((entries, "address")),
                Kind::ForwardingRule => Some((entries, "IPAddress")),
                _ => None,
            })
            .flat_map(|(entries, field)| entries.values().filter_map(move |e| e.obj.get(field)))
            .filter_map(Value::as_str)
            .collect();
        let host = (0..253u16)
            .filter_map(|i| u8::try_from((u16::from(next) - 1 + i) % 253 + 1).ok())
            .find(|h| !used.contains(Ipv4Addr::new(127, a, b, *h).to_string().as_str()))
            .unwrap_or_else(|| {
                tracing::warn!("every address of the data plane's block {base}/24 is in use; reusing one");
                next
            });
        self.external_block = Some((base, host % 253 + 1));
        Ipv4Addr::new(127, a, b, host).to_string()
    }

    /// Keeps the private key of a self-managed certificate (set when it is created).
    pub(crate) fn set_private_key(&mut self, key: Key, pem: PrivateKeyPem) {
        self.private_keys.insert(key, pem);
    }

    /// The private key of a self-managed certificate.
    pub(crate) fn private_key(&self, key: &Key) -> Option<&PrivateKeyPem> {
        self.private_keys.get(key)
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

    /// The rendered JSON of `key`, if it exists ([`Store::find`]).
    pub(crate) fn render_key(&self, key: &Key) -> Option<Obj> {
        self.find(key).map(|e| self.render(key, &e))
    }
}

/// Takes `user` out of the set of `target` in a reverse index.
fn unindex(index: &mut HashMap<Key, BTreeSet<Key>>, target: &Key, user: &Key) {
    if let Some(set) = index.get_mut(target) {
        set.remove(user);
        if set.is_empty() {
            index.remove(target);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_plane_addresses_are_the_free_hosts_of_the_block() {
        let block = Ipv4Addr::new(127, 4, 5, 0);
        let mut store = Store::new(0, &[], 10, 0, Some(block));
        assert_eq!(store.allocate_external_ip(), "127.4.5.1");
        assert_eq!(store.allocate_external_ip(), "127.4.5.2");
        // .3 is held by a stored address: skipped.
        let key = Key {
            project: "p".into(),
            scope: Scope::Global,
            kind: Kind::Address,
            name: "a".into(),
        };
        let mut obj = Obj::new();
        obj.insert("address".into(), "127.4.5.3".into());
        store.put(
            key,
            Entry {
                obj,
                refs: Vec::new(),
                members: Members::None,
            },
        );
        assert_eq!(store.allocate_external_ip(), "127.4.5.4");
        // After .253 it wraps to the first free host.
        store.external_block = Some((block, 253));
        assert_eq!(store.allocate_external_ip(), "127.4.5.253");
        assert_eq!(store.allocate_external_ip(), "127.4.5.1");

        let mut off = Store::new(0, &[], 10, 0, None);
        assert_eq!(off.allocate_external_ip(), "34.120.0.1");
    }
}
