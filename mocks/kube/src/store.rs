//! The object store: JSON objects keyed by kind, namespace and name, a global resourceVersion,
//! and the change history that watches replay.
//!
//! Every write is computed on a copy, validated, and only then committed with one resourceVersion
//! bump and one history entry, so a rejected request changes nothing and the history has exactly
//! one entry per resourceVersion.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, OnceLock};

use axum::body::Bytes;
use jiff::Timestamp;
use serde_json::{Map, Value, json};
use tokio::sync::watch;

use crate::defaults::Allocator;
use crate::error::ApiError;
use crate::kinds::{KINDS, Kind, KindId, storage_of};
use crate::patch::{self, PatchError, PatchType};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::validation;

/// `(namespace, name)`; the namespace is empty for cluster-scoped kinds.
pub(crate) type Key = (String, String);

/// What happened to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChangeType {
    Added,
    Modified,
    Deleted,
}

impl ChangeType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Added => "ADDED",
            ChangeType::Modified => "MODIFIED",
            ChangeType::Deleted => "DELETED",
        }
    }
}

/// One committed write, as watches see it.
#[derive(Debug)]
pub(crate) struct Change {
    pub rv: u64,
    /// The storage kind.
    pub kind: KindId,
    pub ty: ChangeType,
    /// The object after the change (for deletions: its last state, stamped with the deletion's
    /// resourceVersion).
    pub object: Arc<Value>,
    /// The object before the change, so selector watches can turn a change of labels into
    /// ADDED or DELETED.
    pub previous: Option<Arc<Value>>,
    /// The encoded watch event line, made once and shared by every plain-JSON watcher.
    pub line: OnceLock<Bytes>,
}

/// How unknown fields in a body are treated (`fieldValidation=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) enum FieldValidation {
    Ignore,
    #[default]
    Warn,
    Strict,
}

/// Options common to writes.
#[derive(Clone, Debug, Default)]
pub(crate) struct WriteOptions {
    pub dry_run: bool,
    pub field_validation: FieldValidation,
    pub field_manager: Option<String>,
}

/// `DeleteOptions`: preconditions and the grace period.
#[derive(Clone, Debug, Default)]
pub(crate) struct DeleteOptions {
    pub dry_run: bool,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    /// `gracePeriodSeconds`; only kinds with graceful deletion (pods) heed it.
    pub grace_period_seconds: Option<i64>,
}

/// The result of a write.
#[derive(Debug)]
pub(crate) struct Written {
    /// The object in its API form.
    pub object: Arc<Value>,
    /// Unknown-field warnings (for the `Warning` header).
    pub warnings: Vec<String>,
    /// Whether the write created the object (201 rather than 200).
    pub created: bool,
}

/// Which part of an object a write addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sub {
    Main,
    Status,
}

/// A page of a list.
pub(crate) struct ListPage {
    pub items: Vec<Arc<Value>>,
    pub resource_version: u64,
    pub continue_token: Option<String>,
    pub remaining: Option<usize>,
}

/// Filters of a list or watch.
#[derive(Clone, Debug, Default)]
pub(crate) struct Filter {
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Filter {
    pub fn matches(&self, object: &Value) -> bool {
        let ns_ok = match &self.namespace {
            Some(ns) => object.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns),
            None => true,
        };
        ns_ok && self.labels.matches(object) && self.fields.matches(object)
    }
}

/// Key of the last configuration a field manager applied to an object (server-side apply).
type AppliedKey = (String, String, bool);

/// Tunables the store needs.
#[derive(Clone, Debug)]
pub(crate) struct StoreConfig {
    pub history_limit: usize,
    pub node_ports: std::ops::RangeInclusive<u16>,
}

/// All objects and the change history.
pub(crate) struct Store {
    rv: u64,
    objects: Vec<BTreeMap<Key, Arc<Value>>>,
    history: VecDeque<Arc<Change>>,
    /// Watches may resume from any resourceVersion ≥ floor: every later change is in `history`.
    floor: u64,
    /// Bumped by [`Store::compact`]; a watch started in an earlier epoch is expired.
    epoch: u64,
    history_limit: usize,
    applied: HashMap<AppliedKey, Value>,
    alloc: Allocator,
    notify: watch::Sender<u64>,
    random: u64,
}

/// splitmix64: enough randomness for uids and generated names without another dependency.
fn next_random(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Current time as a Kubernetes `Time` (RFC 3339, seconds).
pub(crate) fn now_rfc3339() -> String {
    rfc3339(Timestamp::now())
}

/// A timestamp as a Kubernetes `Time` (RFC 3339, seconds).
pub(crate) fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `t` moved by `seconds` (saturating at the ends of the representable range).
fn shifted(t: Timestamp, seconds: i64) -> Timestamp {
    t.checked_add(jiff::SignedDuration::from_secs(seconds))
        .unwrap_or(if seconds < 0 {
            Timestamp::MIN
        } else {
            Timestamp::MAX
        })
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
}

fn rv_of(obj: &Value) -> Option<&str> {
    meta_str(obj, "resourceVersion").filter(|s| !s.is_empty())
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    match obj.get_mut("metadata") {
        Some(Value::Object(m)) => m,
        // Unreachable: metadata was made an object just above.
        _ => unreachable!("metadata is an object"),
    }
}

fn finalizers_empty(obj: &Value) -> bool {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
}

/// The parts of an object that count for `metadata.generation`: everything but metadata and status.
fn spec_part(obj: &Value) -> Map<String, Value> {
    obj.as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Metadata the server owns; whatever a client sends for these is replaced.
const SYSTEM_META: &[&str] = &[
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "resourceVersion",
    "selfLink",
];

fn parse_body_error(kind: &Kind, e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!(
        "{} in version {:?} cannot be handled as a {}: {e}",
        kind.kind, kind.version, kind.kind
    ))
}

impl Store {
    pub fn new(config: &StoreConfig, notify: watch::Sender<u64>) -> Self {
        let seed = Timestamp::now().as_nanosecond() as u64;
        Store {
            rv: 0,
            objects: KINDS.iter().map(|_| BTreeMap::new()).collect(),
            history: VecDeque::new(),
            floor: 0,
            epoch: 0,
            history_limit: config.history_limit.max(1),
            applied: HashMap::new(),
            alloc: Allocator::new(config.node_ports.clone()),
            notify,
            random: seed,
        }
    }

    /// The current (latest) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// Forgets the change history and expires open watches: they, and watches resuming from an
    /// older resourceVersion, get 410 Gone.
    pub fn compact(&mut self) {
        self.history.clear();
        self.floor = self.rv;
        self.epoch += 1;
        // Wake every watch so it notices the new epoch now rather than at the next write.
        self.notify.send_replace(self.rv);
    }

    /// The current watch epoch (see [`Store::compact`]).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Replaces a stored object's uid without a change event (only for seeding, before any client).
    pub fn set_uid(&mut self, kind: KindId, ns: Option<&str>, name: &str, uid: &str) -> Result<(), ApiError> {
        let k = &KINDS[kind];
        let key = Self::key(k, ns, name);
        let slot = self.objects[storage_of(kind)]
            .get_mut(&key)
            .ok_or_else(|| ApiError::not_found(k, name))?;
        let mut object = (**slot).clone();
        meta_mut(&mut object).insert("uid".into(), json!(uid));
        *slot = Arc::new(object);
        Ok(())
    }

    fn uid(&mut self) -> String {
        let a = next_random(&mut self.random);
        let b = next_random(&mut self.random);
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | (b >> 48) & 0x3fff,
            b & 0xffff_ffff_ffff
        )
    }

    fn name_suffix(&mut self) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let mut r = next_random(&mut self.random);
        (0..5)
            .map(|_| {
                let c = ALPHABET[(r % ALPHABET.len() as u64) as usize] as char;
                r /= ALPHABET.len() as u64;
                c
            })
            .collect()
    }

    /// API form of a stored object.
    fn to_api(kind: KindId, stored: &Arc<Value>) -> Arc<Value> {
        match &KINDS[kind].view {
            Some(view) => Arc::new((view.from_storage)((**stored).clone())),
            None => stored.clone(),
        }
    }

    fn to_storage(kind: KindId, obj: Value) -> Value {
        match &KINDS[kind].view {
            Some(view) => (view.to_storage)(obj),
            None => obj,
        }
    }

    fn key(kind: &Kind, ns: Option<&str>, name: &str) -> Key {
        let ns = if kind.namespaced { ns.unwrap_or("") } else { "" };
        (ns.to_string(), name.to_string())
    }

    /// A stored object, in storage form.
    fn stored(&self, kind: KindId, key: &Key) -> Option<&Arc<Value>> {
        self.objects[storage_of(kind)].get(key)
    }

    /// Reads one object.
    pub fn get(&self, kind: KindId, ns: Option<&str>, name: &str) -> Result<Arc<Value>, ApiError> {
        let k = &KINDS[kind];
        self.stored(kind, &Self::key(k, ns, name))
            .map(|o| Self::to_api(kind, o))
            .ok_or_else(|| ApiError::not_found(k, name))
    }

    /// Lists objects in `(namespace, name)` order, one page at a time.
    ///
    /// A continue token carries the list's resourceVersion and the last key returned. Later
    /// pages are read from the current state rather than a snapshot, but keep reporting the first
    /// page's resourceVersion: a watch started from it replays every change made since, so a
    /// client that lists and then watches ends up consistent.
    pub fn list(
        &self,
        kind: KindId,
        filter: &Filter,
        limit: Option<usize>,
        continue_token: Option<&str>,
    ) -> Result<ListPage, ApiError> {
        let (list_rv, after) = match continue_token {
            Some(token) => {
                let (rv, key) = decode_continue(token)?;
                if rv < self.floor {
                    return Err(ApiError::expired(
                        "The provided continue parameter is too old to display a consistent list result. \
                         Start a new list without the continue parameter.",
                    ));
                }
                (rv, Some(key))
            }
            None => (self.rv, None),
        };
        let map = &self.objects[storage_of(kind)];
        let start = match (&after, &filter.namespace) {
            (Some(key), _) => Bound::Excluded(key.clone()),
            (None, Some(ns)) if KINDS[kind].namespaced => Bound::Included((ns.clone(), String::new())),
            (None, _) => Bound::Unbounded,
        };
        let pinned_ns = filter.namespace.clone().filter(|_| KINDS[kind].namespaced);
        let in_scope = |k: &Key| pinned_ns.as_ref().is_none_or(|ns| &k.0 == ns);
        let mut range = map
            .range((start, Bound::Unbounded))
            .take_while(|(k, _)| in_scope(k));
        let limit = limit.filter(|l| *l > 0).unwrap_or(usize::MAX);
        let mut items = Vec::new();
        let mut last_key = None;
        let mut remaining = None;
        for (k, obj) in range.by_ref() {
            let api = Self::to_api(kind, obj);
            if !filter.matches(&api) {
                continue;
            }
            if items.len() == limit {
                // Like the real apiserver, count what is left only when no selector is involved:
                // then it is a cheap walk of the keys.
                let unfiltered = filter.labels.is_empty() && filter.fields.is_empty();
                remaining = Some(if unfiltered { 1 + range.count() } else { 0 });
                break;
            }
            last_key = Some(k.clone());
            items.push(api);
        }
        let continue_token = match (&remaining, last_key) {
            (Some(_), Some(key)) => Some(encode_continue(list_rv, &key)),
            _ => None,
        };
        let unfiltered = filter.labels.is_empty() && filter.fields.is_empty();
        Ok(ListPage {
            items,
            resource_version: list_rv,
            remaining: remaining.filter(|_| unfiltered),
            continue_token,
        })
    }

    /// Every matching object, for the initial events of a watch, and the resourceVersion they are at.
    pub fn snapshot(&self, kind: KindId, filter: &Filter) -> (Vec<Arc<Value>>, u64) {
        let items = self.objects[storage_of(kind)]
            .values()
            .map(|o| Self::to_api(kind, o))
            .filter(|o| filter.matches(o))
            .collect();
        (items, self.rv)
    }

    /// Changes after `cursor`, at most `max`; `Err` with the floor when `cursor` is too old or
    /// the watch's `epoch` has been expired.
    pub fn changes_since(&self, cursor: u64, epoch: u64, max: usize) -> Result<Vec<Arc<Change>>, u64> {
        if cursor < self.floor || epoch != self.epoch {
            return Err(self.floor);
        }
        let start = self.history.partition_point(|c| c.rv <= cursor);
        Ok(self.history.range(start..).take(max).cloned().collect())
    }

    fn record(&mut self, kind: KindId, ty: ChangeType, object: Arc<Value>, previous: Option<Arc<Value>>) {
        let change = Change {
            rv: self.rv,
            kind: storage_of(kind),
            ty,
            object,
            previous,
            line: OnceLock::new(),
        };
        self.history.push_back(Arc::new(change));
        while self.history.len() > self.history_limit {
            if let Some(old) = self.history.pop_front() {
                self.floor = old.rv;
            }
        }
        self.notify.send_replace(self.rv);
    }

    /// Keeps derived state (node-port allocations, apply configurations) in step with a write.
    fn after_write(&mut self, kind: KindId, old: Option<&Value>, new: Option<&Value>) {
        if KINDS[storage_of(kind)].resource == "services" && KINDS[storage_of(kind)].group.is_empty() {
            self.alloc.commit_service(old, new);
        }
        if new.is_none()
            && let Some(uid) = old.and_then(|o| meta_str(o, "uid"))
        {
            let uid = uid.to_string();
            self.applied.retain(|(u, _, _), _| *u != uid);
        }
    }

    /// Validation, schema normalisation and defaulting shared by every write.
    fn admit(
        &mut self,
        kind_id: KindId,
        obj: Value,
        old: Option<&Value>,
        opts: &WriteOptions,
    ) -> Result<(Value, Vec<String>), ApiError> {
        let kind = &KINDS[kind_id];
        let name = meta_str(&obj, "name").unwrap_or("").to_string();
        let validate = |causes: &mut Vec<_>| {
            validation::metadata(kind, &obj, old, causes);
            if let Some(validate) = kind.validate {
                validate(&obj, old, causes);
            }
        };
        let mut causes = Vec::new();
        // Decoding comes first, as in the real apiserver, so unknown fields are reported before
        // semantic errors; but when decoding fails, the validators usually name the field better
        // (a missing required field), so their answer is preferred.
        let normalized = match (kind.schema)(obj.clone()) {
            Ok(n) => n,
            Err(e) => {
                validate(&mut causes);
                if causes.is_empty() {
                    return Err(parse_body_error(kind, e));
                }
                return Err(ApiError::invalid(kind, &name, causes));
            }
        };
        let unknown = validation::unknown_fields(&obj, &normalized);
        let warnings = match opts.field_validation {
            FieldValidation::Strict if !unknown.is_empty() => {
                let list: Vec<String> = unknown.iter().map(|f| format!("unknown field {f:?}")).collect();
                return Err(ApiError::bad_request(format!(
                    "strict decoding error: {}",
                    list.join(", ")
                )));
            }
            FieldValidation::Warn => unknown.iter().map(|f| format!("unknown field {f:?}")).collect(),
            _ => Vec::new(),
        };
        validate(&mut causes);
        if !causes.is_empty() {
            return Err(ApiError::invalid(kind, &name, causes));
        }
        let mut obj = normalized;
        if let Some(prepare) = kind.prepare {
            prepare(&mut obj, old, &mut self.alloc).map_err(|c| ApiError::invalid(kind, &name, c))?;
        }
        Ok((obj, warnings))
    }

    fn check_type_meta(kind: &Kind, obj: &Value, required: bool) -> Result<(), ApiError> {
        for (field, want) in [
            ("apiVersion", kind.api_version()),
            ("kind", kind.kind.to_string()),
        ] {
            match obj.get(field).and_then(Value::as_str) {
                Some(v) if v == want => {}
                Some(v) if !v.is_empty() => {
                    return Err(ApiError::bad_request(format!(
                        "the {field} of the object ({v}) does not match the {field} of the endpoint ({want})"
                    )));
                }
                _ if required => {
                    return Err(ApiError::bad_request(format!(
                        "Object '{field}' is missing in the body"
                    )));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Fills in or checks the namespace of a body against the request path.
    fn place(kind: &Kind, obj: &mut Value, ns: Option<&str>) -> Result<(), ApiError> {
        let meta = meta_mut(obj);
        if !kind.namespaced {
            meta.shift_remove("namespace");
            return Ok(());
        }
        let url_ns = ns.unwrap_or("");
        match meta.get("namespace").and_then(Value::as_str) {
            Some(body_ns) if !body_ns.is_empty() && body_ns != url_ns => Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            )),
            _ => {
                meta.insert("namespace".into(), json!(url_ns));
                Ok(())
            }
        }
    }

    fn check_namespace_open(&self, kind: &Kind, ns: Option<&str>, name: &str) -> Result<(), ApiError> {
        if !kind.namespaced {
            return Ok(());
        }
        let ns = ns.unwrap_or("");
        let Some(nsk) = crate::kinds::find("", "v1", "namespaces") else {
            return Ok(());
        };
        match self.objects[nsk].get(&(String::new(), ns.to_string())) {
            None => Err(ApiError::namespace_not_found(ns)),
            Some(n) if meta_str(n, "deletionTimestamp").is_some() => Err(ApiError::forbidden(
                kind,
                name,
                &format!("unable to create new content in namespace {ns} because it is being terminated"),
            )),
            Some(_) => Ok(()),
        }
    }

    /// POST: creates an object.
    pub fn create(
        &mut self,
        kind_id: KindId,
        ns: Option<&str>,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let kind = &KINDS[kind_id];
        if !obj.is_object() {
            return Err(ApiError::bad_request("the body must be a JSON object"));
        }
        Self::check_type_meta(kind, &obj, true)?;
        Self::place(kind, &mut obj, ns)?;
        if rv_of(&obj).is_some() {
            return Err(ApiError::bad_request(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let mut name = meta_str(&obj, "name").unwrap_or("").to_string();
        if name.is_empty()
            && let Some(prefix) = meta_str(&obj, "generateName").map(String::from)
        {
            loop {
                name = format!("{prefix}{}", self.name_suffix());
                if self.stored(kind_id, &Self::key(kind, ns, &name)).is_none() {
                    break;
                }
            }
            meta_mut(&mut obj).insert("name".into(), json!(name));
        }
        if !name.is_empty() {
            self.check_namespace_open(kind, ns, &name)?;
            if self.stored(kind_id, &Self::key(kind, ns, &name)).is_some() {
                return Err(ApiError::already_exists(kind, &name));
            }
        }
        if kind.reset_status_on_create
            && let Some(m) = obj.as_object_mut()
        {
            m.shift_remove("status");
        }
        let uid = self.uid();
        let meta = meta_mut(&mut obj);
        for field in SYSTEM_META {
            meta.shift_remove(*field);
        }
        meta.shift_remove("managedFields");
        meta.insert("uid".into(), json!(uid));
        meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
        if kind.generation {
            meta.insert("generation".into(), json!(1));
        }
        let (mut obj, warnings) = self.admit(kind_id, obj, None, opts)?;
        if opts.dry_run {
            return Ok(Written {
                object: Arc::new(obj),
                warnings,
                created: true,
            });
        }
        self.rv += 1;
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(self.rv.to_string()));
        let stored = Arc::new(Self::to_storage(kind_id, obj));
        let key = Self::key(kind, ns, &name);
        self.objects[storage_of(kind_id)].insert(key, stored.clone());
        self.after_write(kind_id, None, Some(&stored));
        self.record(kind_id, ChangeType::Added, stored.clone(), None);
        Ok(Written {
            object: Self::to_api(kind_id, &stored),
            warnings,
            created: true,
        })
    }

    /// PUT: replaces an object (or its status), with optimistic concurrency on resourceVersion.
    pub fn update(
        &mut self,
        kind_id: KindId,
        ns: Option<&str>,
        name: &str,
        sub: Sub,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let kind = &KINDS[kind_id];
        if !obj.is_object() {
            return Err(ApiError::bad_request("the body must be a JSON object"));
        }
        Self::check_type_meta(kind, &obj, false)?;
        Self::place(kind, &mut obj, ns)?;
        match meta_str(&obj, "name") {
            Some(n) if !n.is_empty() && n != name => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )));
            }
            _ => {
                meta_mut(&mut obj).insert("name".into(), json!(name));
            }
        }
        let current = self.get(kind_id, ns, name)?;
        if let Some(rv) = rv_of(&obj)
            && Some(rv) != rv_of(&current)
        {
            return Err(ApiError::stale(kind, name));
        }
        self.commit_update(kind_id, ns, name, sub, &current, obj, opts)
    }

    /// PATCH: applies a patch to an object (or its status). Server-side apply creates a missing
    /// object; conflicts between field managers are not modelled, so `force` makes no difference.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &mut self,
        kind_id: KindId,
        ns: Option<&str>,
        name: &str,
        sub: Sub,
        ty: PatchType,
        patch: &Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let kind = &KINDS[kind_id];
        let manager = opts.field_manager.clone().unwrap_or_default();
        if ty == PatchType::Apply {
            if manager.is_empty() {
                return Err(ApiError::bad_request(
                    "fieldManager is required for apply patches",
                ));
            }
            if !patch.is_object() {
                return Err(ApiError::bad_request("an apply patch must be an object"));
            }
            Self::check_type_meta(kind, patch, true)?;
        }
        let current = match self.get(kind_id, ns, name) {
            Ok(c) => c,
            Err(e) if ty == PatchType::Apply && e.code == 404 && sub == Sub::Main => {
                let mut obj = patch::apply(kind, &json!({}), patch, None);
                meta_mut(&mut obj).insert("name".into(), json!(name));
                let written = self.create(kind_id, ns, obj, opts)?;
                if !opts.dry_run
                    && let Some(uid) = meta_str(&written.object, "uid")
                {
                    self.applied
                        .insert((uid.to_string(), manager, false), patch.clone());
                }
                return Ok(written);
            }
            Err(e) => return Err(e),
        };
        let uid = meta_str(&current, "uid").unwrap_or("").to_string();
        let applied_key = (uid, manager, sub == Sub::Status);
        let patched = match ty {
            PatchType::Json => patch::json_patch(&current, patch),
            PatchType::Merge => Ok(patch::merge_patch(&current, patch)),
            PatchType::Strategic => patch::strategic_merge(kind, &current, patch),
            PatchType::Apply => Ok(patch::apply(
                kind,
                &current,
                patch,
                self.applied.get(&applied_key),
            )),
        }
        .map_err(|e| match e {
            PatchError::Malformed(m) => ApiError::bad_request(m),
            PatchError::Conflicting(m) => {
                let mut err = ApiError::invalid(kind, name, Vec::new());
                err.message = m;
                err
            }
        })?;
        if !patched.is_object() {
            return Err(ApiError::bad_request("the patched object is not a JSON object"));
        }
        if let Some(rv) = rv_of(&patched)
            && Some(rv) != rv_of(&current)
        {
            return Err(ApiError::stale(kind, name));
        }
        for (field, want) in [
            ("name", Some(name)),
            ("namespace", ns.filter(|_| kind.namespaced)),
        ] {
            let got = meta_str(&patched, field);
            if let Some(want) = want
                && got != Some(want)
            {
                return Err(ApiError::bad_request(format!(
                    "metadata.{field} cannot be changed by a patch (was {want:?}, patch made it {got:?})"
                )));
            }
        }
        Self::check_type_meta(kind, &patched, false)?;
        let written = self.commit_update(kind_id, ns, name, sub, &current, patched, opts)?;
        if ty == PatchType::Apply && !opts.dry_run {
            self.applied.insert(applied_key, patch.clone());
        }
        Ok(written)
    }

    /// Shared tail of update and patch: keep what the client may not change, validate, store.
    #[allow(clippy::too_many_arguments)]
    fn commit_update(
        &mut self,
        kind_id: KindId,
        ns: Option<&str>,
        name: &str,
        sub: Sub,
        current: &Arc<Value>,
        requested: Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let kind = &KINDS[kind_id];
        let mut new = match sub {
            Sub::Status => {
                let mut n = (**current).clone();
                match requested.get("status") {
                    Some(s) if !s.is_null() => n["status"] = s.clone(),
                    _ => {
                        if let Some(m) = n.as_object_mut() {
                            m.shift_remove("status");
                        }
                    }
                }
                n
            }
            Sub::Main => {
                let mut n = requested;
                if kind.status {
                    match current.get("status") {
                        Some(s) => n["status"] = s.clone(),
                        None => {
                            if let Some(m) = n.as_object_mut() {
                                m.shift_remove("status");
                            }
                        }
                    }
                }
                n
            }
        };
        let meta = meta_mut(&mut new);
        meta.shift_remove("managedFields");
        for field in SYSTEM_META {
            match current.get("metadata").and_then(|m| m.get(*field)) {
                Some(v) => meta.insert((*field).to_string(), v.clone()),
                None => meta.shift_remove(*field),
            };
        }
        let (mut new, warnings) = self.admit(kind_id, new, Some(current), opts)?;
        if new == **current {
            return Ok(Written {
                object: current.clone(),
                warnings,
                created: false,
            });
        }
        if kind.generation && spec_part(&new) != spec_part(current) {
            let generation = current
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            meta_mut(&mut new).insert("generation".into(), json!(generation + 1));
        }
        if opts.dry_run {
            return Ok(Written {
                object: Arc::new(new),
                warnings,
                created: false,
            });
        }
        let key = Self::key(kind, ns, name);
        let previous = self.objects[storage_of(kind_id)].get(&key).cloned();
        self.rv += 1;
        meta_mut(&mut new).insert("resourceVersion".into(), json!(self.rv.to_string()));
        let stored = Arc::new(Self::to_storage(kind_id, new));
        // `ShouldDeleteDuringUpdate` (k8s.io/apiserver registry/generic/registry/store.go): the
        // update that removes the last finalizer of an object being deleted with no grace period
        // left deletes it. A pod still in its grace period stays.
        let grace_over = current
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .is_none_or(|g| g == 0);
        if meta_str(&stored, "deletionTimestamp").is_some()
            && finalizers_empty(&stored)
            && !finalizers_empty(current)
            && grace_over
            && !self.is_namespace(kind_id)
        {
            // The last finalizer is gone: the pending deletion completes.
            self.objects[storage_of(kind_id)].remove(&key);
            self.after_write(kind_id, previous.as_deref(), None);
            self.record(kind_id, ChangeType::Deleted, stored.clone(), previous);
            self.reap_namespace(ns);
        } else {
            self.objects[storage_of(kind_id)].insert(key, stored.clone());
            self.after_write(kind_id, previous.as_deref(), Some(&stored));
            self.record(kind_id, ChangeType::Modified, stored.clone(), previous);
            if self.is_namespace(kind_id) {
                self.reap_namespace(Some(name));
            }
        }
        Ok(Written {
            object: Self::to_api(kind_id, &stored),
            warnings,
            created: false,
        })
    }

    fn is_namespace(&self, kind_id: KindId) -> bool {
        let k = &KINDS[storage_of(kind_id)];
        k.group.is_empty() && k.resource == "namespaces"
    }

    /// DELETE: removes an object, or marks it for deletion while finalizers remain.
    pub fn delete(
        &mut self,
        kind_id: KindId,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Arc<Value>, ApiError> {
        let kind = &KINDS[kind_id];
        let current = self.get(kind_id, ns, name)?;
        if let Some(uid) = &opts.uid
            && meta_str(&current, "uid") != Some(uid)
        {
            return Err(ApiError::conflict(
                kind,
                name,
                "the UID in the precondition does not match the object",
            ));
        }
        if let Some(rv) = &opts.resource_version
            && rv_of(&current) != Some(rv)
        {
            return Err(ApiError::stale(kind, name));
        }
        if opts.dry_run {
            return Ok(current);
        }
        let key = Self::key(kind, ns, name);
        let skind = storage_of(kind_id);
        let previous = self.objects[skind].get(&key).cloned();
        let Some(stored_prev) = previous.clone() else {
            return Err(ApiError::not_found(kind, name));
        };
        if let Some(grace_period) = kind.graceful_delete {
            return Ok(self.delete_gracefully(kind_id, &key, stored_prev, grace_period, opts));
        }
        if self.is_namespace(kind_id) || !finalizers_empty(&stored_prev) {
            if meta_str(&stored_prev, "deletionTimestamp").is_none() {
                let mut marked = (*stored_prev).clone();
                self.rv += 1;
                let meta = meta_mut(&mut marked);
                meta.insert("deletionTimestamp".into(), json!(now_rfc3339()));
                meta.insert("deletionGracePeriodSeconds".into(), json!(0));
                // `markAsDeleting` (registry/generic/registry/store.go): the first deletion
                // mark bumps a maintained generation.
                if let Some(g) = meta.get("generation").and_then(Value::as_i64).filter(|g| *g > 0) {
                    meta.insert("generation".into(), json!(g + 1));
                }
                meta.insert("resourceVersion".into(), json!(self.rv.to_string()));
                if self.is_namespace(kind_id) {
                    marked["status"]["phase"] = json!("Terminating");
                }
                let marked = Arc::new(marked);
                self.objects[skind].insert(key, marked.clone());
                self.record(kind_id, ChangeType::Modified, marked.clone(), previous);
                if self.is_namespace(kind_id) {
                    self.empty_namespace(name);
                    self.reap_namespace(Some(name));
                }
                return Ok(self
                    .get(kind_id, ns, name)
                    .unwrap_or_else(|_| Self::to_api(kind_id, &marked)));
            }
            return Ok(current);
        }
        Ok(self.remove(kind_id, &key, stored_prev))
    }

    /// Deletion of a kind with graceful deletion (pods), as `rest.BeforeDelete` and
    /// `Store.Delete` (k8s.io/apiserver registry/rest/delete.go, registry/generic/registry/
    /// store.go) do it: the first DELETE sets `deletionTimestamp` to now + the grace period,
    /// `deletionGracePeriodSeconds` to it and bumps `generation` (a MODIFIED event); with a
    /// period of 0 and no finalizers the object then goes at once (DELETED). A later DELETE may
    /// only shorten the period (moving `deletionTimestamp` back by the difference); one that
    /// does not is answered with the object, unchanged. An object whose period is already 0
    /// stays while finalizers remain and goes with the last of them.
    fn delete_gracefully(
        &mut self,
        kind_id: KindId,
        key: &Key,
        stored: Arc<Value>,
        grace_period: crate::kinds::GracePeriodFn,
        opts: &DeleteOptions,
    ) -> Arc<Value> {
        let requested = opts.grace_period_seconds.map(|g| if g < 0 { 1 } else { g });
        let current_grace = stored
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64);
        let marked_at = meta_str(&stored, "deletionTimestamp").and_then(|t| t.parse::<Timestamp>().ok());
        let mut marked = (*stored).clone();
        let period = match (marked_at, current_grace) {
            (None, _) => {
                let period = grace_period(&stored, requested);
                let meta = meta_mut(&mut marked);
                meta.insert(
                    "deletionTimestamp".into(),
                    json!(rfc3339(shifted(Timestamp::now(), period))),
                );
                meta.insert("deletionGracePeriodSeconds".into(), json!(period));
                if let Some(g) = meta.get("generation").and_then(Value::as_i64).filter(|g| *g > 0) {
                    meta.insert("generation".into(), json!(g + 1));
                }
                period
            }
            (Some(_), None | Some(0)) => {
                if finalizers_empty(&stored) {
                    return self.remove(kind_id, key, stored);
                }
                return Self::to_api(kind_id, &stored);
            }
            (Some(at), Some(current)) => match requested {
                Some(period) if period < current => {
                    let moved = shifted(shifted(at, -current), period);
                    let meta = meta_mut(&mut marked);
                    meta.insert("deletionTimestamp".into(), json!(rfc3339(moved)));
                    meta.insert("deletionGracePeriodSeconds".into(), json!(period));
                    period
                }
                _ => return Self::to_api(kind_id, &stored),
            },
        };
        self.rv += 1;
        meta_mut(&mut marked).insert("resourceVersion".into(), json!(self.rv.to_string()));
        let marked = Arc::new(marked);
        self.objects[storage_of(kind_id)].insert(key.clone(), marked.clone());
        self.record(kind_id, ChangeType::Modified, marked.clone(), Some(stored));
        if period == 0 && finalizers_empty(&marked) {
            return self.remove(kind_id, key, marked);
        }
        Self::to_api(kind_id, &marked)
    }

    fn remove(&mut self, kind_id: KindId, key: &Key, previous: Arc<Value>) -> Arc<Value> {
        self.objects[storage_of(kind_id)].remove(key);
        self.rv += 1;
        let mut last = (*previous).clone();
        meta_mut(&mut last).insert("resourceVersion".into(), json!(self.rv.to_string()));
        let last = Arc::new(last);
        self.after_write(kind_id, Some(&previous), None);
        self.record(kind_id, ChangeType::Deleted, last.clone(), Some(previous));
        if !key.0.is_empty() {
            self.reap_namespace(Some(&key.0.clone()));
        }
        Self::to_api(kind_id, &last)
    }

    /// Deletes every object in a terminating namespace (the namespace controller's job).
    fn empty_namespace(&mut self, ns: &str) {
        let opts = DeleteOptions::default();
        for (kind_id, kind) in KINDS.iter().enumerate() {
            if !kind.namespaced || kind.view.is_some() {
                continue;
            }
            let names: Vec<String> = self.objects[kind_id]
                .range((ns.to_string(), String::new())..)
                .take_while(|(k, _)| k.0 == ns)
                .map(|(k, _)| k.1.clone())
                .collect();
            for name in names {
                // Objects with finalizers only get marked; they leave when their finalizers do.
                let _ = self.delete(kind_id, Some(ns), &name, &opts);
            }
        }
    }

    /// Removes a terminating namespace once it is empty and has no metadata finalizers.
    fn reap_namespace(&mut self, ns: Option<&str>) {
        let Some(ns) = ns.filter(|n| !n.is_empty()) else {
            return;
        };
        let Some(nsk) = crate::kinds::find("", "v1", "namespaces") else {
            return;
        };
        let key = (String::new(), ns.to_string());
        let Some(obj) = self.objects[nsk].get(&key).cloned() else {
            return;
        };
        if meta_str(&obj, "deletionTimestamp").is_none() || !finalizers_empty(&obj) {
            return;
        }
        let occupied = KINDS.iter().enumerate().any(|(id, k)| {
            k.namespaced
                && self.objects[id]
                    .range((ns.to_string(), String::new())..)
                    .next()
                    .is_some_and(|(k, _)| k.0 == ns)
        });
        if !occupied {
            self.remove(nsk, &key, obj);
        }
    }

    /// DELETE on a collection: deletes every matching object, returning them.
    pub fn delete_collection(
        &mut self,
        kind_id: KindId,
        filter: &Filter,
        opts: &DeleteOptions,
    ) -> Result<Vec<Arc<Value>>, ApiError> {
        let page = self.list(kind_id, filter, None, None)?;
        let mut out = Vec::new();
        for obj in page.items {
            let ns = meta_str(&obj, "namespace").map(String::from);
            let name = meta_str(&obj, "name").unwrap_or("").to_string();
            out.push(self.delete(kind_id, ns.as_deref(), &name, opts)?);
        }
        Ok(out)
    }
}

/// Hex, so continue tokens are opaque and URL-safe without a base64 dependency.
fn encode_continue(rv: u64, key: &Key) -> String {
    let raw = format!("{rv}\n{}\n{}", key.0, key.1);
    raw.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_continue(token: &str) -> Result<(u64, Key), ApiError> {
    let bad = || ApiError::bad_request("continue key is not valid");
    if !token.len().is_multiple_of(2) || !token.is_ascii() {
        return Err(bad());
    }
    let bytes: Vec<u8> = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&token[i..i + 2], 16))
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    let raw = String::from_utf8(bytes).map_err(|_| bad())?;
    let mut parts = raw.splitn(3, '\n');
    let rv = parts.next().and_then(|r| r.parse().ok()).ok_or_else(bad)?;
    let ns = parts.next().ok_or_else(bad)?.to_string();
    let name = parts.next().ok_or_else(bad)?.to_string();
    Ok((rv, (ns, name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip() {
        let key = ("ns".to_string(), "name".to_string());
        let token = encode_continue(42, &key);
        assert_eq!(decode_continue(&token).unwrap(), (42, key));
        assert!(decode_continue("zz").is_err());
        assert!(decode_continue("abc").is_err());
        assert!(decode_continue("41").is_err());
    }
}
