//! Mutations: checked when requested (errors come back synchronously), checked again and
//! applied when their operation completes (errors then come back through the operation).
//!
//! [`plan`] is pure: it computes the [`Change`] a mutation would make to the current store, or
//! the error the API answers. [`apply`] makes the change and fills what the server allocates
//! (fingerprints, IP addresses).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::config::Limits;
use crate::errors::ApiError;
use crate::ids::EMPTY_LABEL_FINGERPRINT;
use crate::json::{Obj, merge_patch};
use crate::kinds::{Key, Kind};
use crate::operations::OpKey;
use crate::resources::{self, Cx};
use crate::store::{Entry, Members, PrivateKeyPem, Store};

/// The POST verbs that return an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CustomVerb {
    SetLabels,
    SetUrlMap,
    SetSslCertificates,
    SetSslPolicy,
    SetQuicOverride,
    SetTarget,
    AddInstances,
    RemoveInstances,
    SetNamedPorts,
    AttachNetworkEndpoints,
    DetachNetworkEndpoints,
}

impl CustomVerb {
    const ALL: [CustomVerb; 11] = [
        CustomVerb::SetLabels,
        CustomVerb::SetUrlMap,
        CustomVerb::SetSslCertificates,
        CustomVerb::SetSslPolicy,
        CustomVerb::SetQuicOverride,
        CustomVerb::SetTarget,
        CustomVerb::AddInstances,
        CustomVerb::RemoveInstances,
        CustomVerb::SetNamedPorts,
        CustomVerb::AttachNetworkEndpoints,
        CustomVerb::DetachNetworkEndpoints,
    ];

    /// The method name in paths and latency keys.
    pub(crate) fn name(self) -> &'static str {
        match self {
            CustomVerb::SetLabels => "setLabels",
            CustomVerb::SetUrlMap => "setUrlMap",
            CustomVerb::SetSslCertificates => "setSslCertificates",
            CustomVerb::SetSslPolicy => "setSslPolicy",
            CustomVerb::SetQuicOverride => "setQuicOverride",
            CustomVerb::SetTarget => "setTarget",
            CustomVerb::AddInstances => "addInstances",
            CustomVerb::RemoveInstances => "removeInstances",
            CustomVerb::SetNamedPorts => "setNamedPorts",
            CustomVerb::AttachNetworkEndpoints => "attachNetworkEndpoints",
            CustomVerb::DetachNetworkEndpoints => "detachNetworkEndpoints",
        }
    }

    pub(crate) fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == s)
    }
}

/// What a mutation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verb {
    Insert,
    Delete,
    Update,
    Patch,
    Custom(CustomVerb),
}

impl Verb {
    /// The method name used in latency keys (`insert`, `setUrlMap`, ...).
    pub(crate) fn method_name(self) -> &'static str {
        match self {
            Verb::Insert => "insert",
            Verb::Delete => "delete",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Custom(c) => c.name(),
        }
    }

    /// The `operationType` the real API reports; not normalised there either.
    pub(crate) fn operation_type(self, kind: Kind) -> String {
        match self {
            Verb::Custom(CustomVerb::SetTarget) => "SetTarget".to_string(),
            Verb::Custom(c) if kind == Kind::InstanceGroup => {
                format!("compute.instanceGroups.{}", c.name())
            }
            v => v.method_name().to_string(),
        }
    }
}

/// A requested mutation. For inserts `key` carries the name from the body and `new_id` the id
/// the resource will get (the operation reports it as `targetId` at once).
#[derive(Clone, Debug)]
pub(crate) struct MutationReq {
    pub key: Key,
    pub verb: Verb,
    pub body: Obj,
    pub new_id: u64,
}

/// The effect of a mutation on the store.
#[derive(Debug)]
pub(crate) enum Change {
    /// `secret`: the private key of a self-managed certificate being created, kept apart from
    /// its JSON.
    Put {
        key: Key,
        entry: Entry,
        insert: bool,
        secret: Option<PrivateKeyPem>,
    },
    Remove(Key),
}

/// Fields the server owns: ignored when a client sends them.
const OUTPUT_ONLY: &[&str] = &[
    "kind",
    "id",
    "creationTimestamp",
    "selfLink",
    "selfLinkWithId",
    "fingerprint",
    "labelFingerprint",
    "status",
    "users",
    "size",
    "zone",
    "region",
    "expireTime",
    "subjectAlternativeNames",
    "enabledFeatures",
];

/// Who must send a fingerprint on which update.
#[derive(PartialEq, Eq)]
enum Fingerprint {
    Required,
    Optional,
    Ignored,
}

fn fingerprint_policy(kind: Kind, verb: Verb) -> Fingerprint {
    match (kind, verb) {
        (Kind::BackendService | Kind::UrlMap, Verb::Update | Verb::Patch) => Fingerprint::Required,
        (Kind::TargetHttpProxy | Kind::TargetHttpsProxy | Kind::SslPolicy, Verb::Patch) => {
            Fingerprint::Required
        }
        (Kind::ForwardingRule, Verb::Patch) => Fingerprint::Optional,
        _ => Fingerprint::Ignored,
    }
}

/// Checks a client-sent fingerprint against the stored one.
pub(crate) fn check_fingerprint(
    stored: &Obj,
    sent: &Obj,
    field: &str,
    required: bool,
) -> Result<(), ApiError> {
    match sent.get(field) {
        None | Some(Value::Null) if !required => Ok(()),
        Some(Value::String(s)) if stored.get(field).and_then(Value::as_str) == Some(s) => Ok(()),
        _ => Err(ApiError::bad_fingerprint()),
    }
}

/// Computes the change a mutation makes, or the error the API answers. `own` is the
/// operation the mutation runs under when it is re-checked at completion (`None` when it is
/// requested).
pub(crate) fn plan(
    store: &Store,
    limits: &Limits,
    quotas: &BTreeMap<String, u64>,
    req: &MutationReq,
    own: Option<&OpKey>,
) -> Result<Change, ApiError> {
    let change = plan_change(store, limits, quotas, req, own)?;
    if let Change::Put { entry, .. } = &change {
        let cx = Cx {
            store,
            limits,
            key: &req.key,
            own,
        };
        // Rules across resources, checked on the object as it would be stored.
        resources::rules::check(&cx, req.verb, entry)?;
    }
    Ok(change)
}

/// The change of one resource, checked on its own (fields, references, quota).
fn plan_change(
    store: &Store,
    limits: &Limits,
    quotas: &BTreeMap<String, u64>,
    req: &MutationReq,
    own: Option<&OpKey>,
) -> Result<Change, ApiError> {
    let key = &req.key;
    let cx = Cx {
        store,
        limits,
        key,
        own,
    };
    match req.verb {
        Verb::Insert => {
            let taken_by_other = store.pending.get(key).is_some_and(|op| Some(op) != own);
            if store.exists(key) || taken_by_other {
                return Err(ApiError::already_exists(&key.path()));
            }
            let mut obj = server_fields(key, req.new_id, &crate::ids::now_rfc3339());
            for (k, v) in &req.body {
                if !OUTPUT_ONLY.contains(&k.as_str()) && k != "name" {
                    obj.insert(k.clone(), v.clone());
                }
            }
            let refs = resources::normalize(&cx, &mut obj, None)?;
            // Real resources end with their self link; defaults were appended before it.
            obj.insert("selfLink".into(), key.link().into());
            cx.check_refs(&refs)?;
            // Compute counts resource quotas inside the operation (it fails QUOTA_EXCEEDED).
            cx.in_operation(|| crate::quota::check(store, quotas, key))?;
            Ok(Change::Put {
                key: key.clone(),
                entry: Entry {
                    obj,
                    refs,
                    members: Members::for_kind(key.kind),
                },
                insert: true,
                secret: resources::private_key(key.kind, &req.body).map(PrivateKeyPem::new),
            })
        }
        Verb::Delete => {
            cx.require(key)?;
            let unused = || match store.referrers(key).next() {
                Some(user) => Err(ApiError::in_use(key.kind.singular(), &key.path(), &user.path())),
                None => Ok(()),
            };
            if key.kind == Kind::Network {
                // A network in use fails in its operation, not at the request (Terraform
                // reports "Error waiting for Deleting Network: The network resource ... is
                // already being used by ...").
                cx.in_operation(unused)?;
            } else {
                unused()?;
            }
            Ok(Change::Remove(key.clone()))
        }
        Verb::Update | Verb::Patch => {
            let old = cx.lookup(key)?;
            match fingerprint_policy(key.kind, req.verb) {
                Fingerprint::Required => check_fingerprint(&old.obj, &req.body, "fingerprint", true)?,
                Fingerprint::Optional => check_fingerprint(&old.obj, &req.body, "fingerprint", false)?,
                Fingerprint::Ignored => {}
            }
            if let Some(name) = req.body.get("name")
                && name.as_str() != Some(key.name.as_str())
            {
                return Err(ApiError::invalid_field(
                    "resource.name",
                    &crate::json::show(name),
                    "The name of a resource cannot be changed.",
                ));
            }
            let body: Obj = req
                .body
                .iter()
                .filter(|(k, _)| !OUTPUT_ONLY.contains(&k.as_str()) && k.as_str() != "name")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let mut obj = if req.verb == Verb::Patch {
                let mut merged = old.obj.clone();
                merge_patch(&mut merged, &body);
                merged
            } else {
                let created = old
                    .obj
                    .get("creationTimestamp")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let mut fresh = server_fields(key, old.id().unwrap_or(req.new_id), &created);
                fresh.extend(body);
                fresh.insert("selfLink".into(), key.link().into());
                fresh
            };
            let refs = resources::normalize(&cx, &mut obj, Some(old))?;
            cx.check_refs(&refs)?;
            Ok(Change::Put {
                key: key.clone(),
                entry: Entry {
                    obj,
                    refs,
                    members: old.members.clone(),
                },
                insert: false,
                secret: None,
            })
        }
        Verb::Custom(verb) => {
            let old = cx.lookup(key)?;
            let entry = resources::custom(&cx, verb, old, &req.body)?;
            cx.check_refs(&entry.refs)?;
            Ok(Change::Put {
                key: key.clone(),
                entry,
                insert: false,
                secret: None,
            })
        }
    }
}

/// `kind`, `id`, `creationTimestamp`, `name`, and `zone`/`region`, in the real field order.
pub(crate) fn server_fields(key: &Key, id: u64, created: &str) -> Obj {
    let mut obj = Obj::new();
    obj.insert("kind".into(), key.kind.wire_kind().into());
    obj.insert("id".into(), id.to_string().into());
    obj.insert("creationTimestamp".into(), created.into());
    obj.insert("name".into(), key.name.clone().into());
    if let Some(link) = key.scope.link(&key.project) {
        let field = match key.scope {
            crate::kinds::Scope::Zone(_) => "zone",
            _ => "region",
        };
        obj.insert(field.into(), link.into());
    }
    obj
}

/// Applies a planned change, filling what the server allocates.
pub(crate) fn apply(store: &mut Store, change: Change) {
    match change {
        Change::Remove(key) => {
            store.remove(&key);
        }
        Change::Put {
            key,
            mut entry,
            insert,
            secret,
        } => {
            let kind = key.kind;
            // An instance group's fingerprint covers its named ports only (membership changes
            // leave it alone); every other fingerprint changes on every write.
            let old = store.get(&key).map(|e| &e.obj);
            let changed = match (kind, old) {
                (Kind::InstanceGroup, Some(o)) => o.get("namedPorts") != entry.obj.get("namedPorts"),
                _ => true,
            };
            if kind.has_fingerprint() && changed {
                let fp = store.rng.fingerprint();
                entry.obj.insert("fingerprint".into(), fp.into());
            }
            if kind.has_labels() {
                let old = store.get(&key).map(|e| &e.obj);
                let labels = |o: &Obj| o.get("labels").cloned().filter(|v| !is_empty_obj(v));
                let changed = old.is_none_or(|o| labels(o) != labels(&entry.obj));
                if changed || insert {
                    let fp = if labels(&entry.obj).is_none() {
                        EMPTY_LABEL_FINGERPRINT.to_string()
                    } else {
                        store.rng.fingerprint()
                    };
                    entry.obj.insert("labelFingerprint".into(), fp.into());
                }
            }
            resources::allocate(store, &key, &mut entry.obj);
            if let Some(secret) = secret {
                store.set_private_key(key.clone(), secret);
            }
            store.put(key, entry);
        }
    }
}

fn is_empty_obj(v: &Value) -> bool {
    v.as_object().is_some_and(|o| o.is_empty())
}
