//! Operations: the table of operations per scope, their JSON, and their life cycle
//! (RUNNING at creation, DONE with or without `error` when completed).

use std::collections::{BTreeMap, HashMap, VecDeque};

use tokio::sync::watch;

use crate::errors::ApiError;
use crate::faults::OpFault;
use crate::ids::now_rfc3339;
use crate::json::Obj;
use crate::kinds::{Kind, LINK_BASE, Scope};
use crate::mutation::MutationReq;

/// The `user` every operation reports.
const OPERATION_USER: &str = "fake-gce@fake-project.iam.gserviceaccount.com";

/// Identifies an operation: operations live in the scope of their target.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct OpKey {
    pub project: String,
    pub scope: Scope,
    pub name: String,
}

impl OpKey {
    pub(crate) fn path(&self) -> String {
        format!(
            "projects/{}/{}/operations/{}",
            self.project,
            self.scope.path(),
            self.name
        )
    }

    pub(crate) fn link(&self) -> String {
        format!("{LINK_BASE}{}", self.path())
    }
}

/// A mutation whose operation is still RUNNING, and the fault that decides its fate.
#[derive(Debug)]
pub(crate) struct PendingOp {
    pub req: MutationReq,
    pub fault: Option<OpFault>,
}

#[derive(Debug)]
pub(crate) struct OpEntry {
    pub obj: Obj,
    /// `true` once DONE; `wait` subscribes to it.
    pub done: watch::Sender<bool>,
    pub pending: Option<PendingOp>,
}

impl OpEntry {
    pub(crate) fn is_done(&self) -> bool {
        *self.done.borrow()
    }
}

/// Every operation, per (project, scope), by name (names sort by creation time).
#[derive(Debug)]
pub(crate) struct OpTable {
    scopes: HashMap<(String, Scope), BTreeMap<String, OpEntry>>,
    order: VecDeque<OpKey>,
    request_ids: HashMap<(String, String), OpKey>,
    retention: usize,
}

impl OpTable {
    pub(crate) fn new(retention: usize) -> Self {
        OpTable {
            scopes: HashMap::new(),
            order: VecDeque::new(),
            request_ids: HashMap::new(),
            retention: retention.max(1),
        }
    }

    pub(crate) fn get(&self, key: &OpKey) -> Option<&OpEntry> {
        self.scopes
            .get(&(key.project.clone(), key.scope.clone()))?
            .get(&key.name)
    }

    pub(crate) fn get_mut(&mut self, key: &OpKey) -> Option<&mut OpEntry> {
        self.scopes
            .get_mut(&(key.project.clone(), key.scope.clone()))?
            .get_mut(&key.name)
    }

    pub(crate) fn remove(&mut self, key: &OpKey) -> Option<OpEntry> {
        let scope = (key.project.clone(), key.scope.clone());
        let map = self.scopes.get_mut(&scope)?;
        let entry = map.remove(&key.name)?;
        if map.is_empty() {
            self.scopes.remove(&scope);
        }
        self.request_ids.retain(|_, k| k != key);
        Some(entry)
    }

    /// The operations of one scope, oldest first.
    pub(crate) fn list(&self, project: &str, scope: &Scope) -> Option<&BTreeMap<String, OpEntry>> {
        self.scopes.get(&(project.to_string(), scope.clone()))
    }

    /// Every operation, for dumps.
    pub(crate) fn all(&self) -> impl Iterator<Item = (OpKey, &OpEntry)> {
        self.scopes.iter().flat_map(|((p, s), m)| {
            m.iter().map(|(name, e)| {
                (
                    OpKey {
                        project: p.clone(),
                        scope: s.clone(),
                        name: name.clone(),
                    },
                    e,
                )
            })
        })
    }

    pub(crate) fn pending_count(&self) -> usize {
        self.scopes
            .values()
            .flat_map(|m| m.values())
            .filter(|e| !e.is_done())
            .count()
    }

    /// The operation created earlier for `requestId` in `project`, if any.
    pub(crate) fn by_request_id(&self, project: &str, request_id: &str) -> Option<&OpKey> {
        self.request_ids
            .get(&(project.to_string(), request_id.to_string()))
    }

    pub(crate) fn insert(&mut self, key: OpKey, entry: OpEntry, request_id: Option<&str>) {
        if let Some(rid) = request_id {
            self.request_ids
                .insert((key.project.clone(), rid.to_string()), key.clone());
        }
        self.scopes
            .entry((key.project.clone(), key.scope.clone()))
            .or_default()
            .insert(key.name.clone(), entry);
        self.order.push_back(key);
        self.prune();
    }

    /// Forgets the oldest finished operations beyond the retention limit.
    fn prune(&mut self) {
        let mut budget = self.order.len();
        while self.order.len() > self.retention && budget > 0 {
            budget -= 1;
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            match self.get(&oldest) {
                Some(e) if !e.is_done() => self.order.push_back(oldest),
                Some(_) => {
                    self.remove(&oldest);
                }
                None => {}
            }
        }
    }
}

/// The JSON of a new RUNNING operation.
pub(crate) fn running_json(
    key: &OpKey,
    id: u64,
    operation_type: &str,
    target_link: &str,
    target_id: Option<u64>,
    request_id: Option<&str>,
) -> Obj {
    let now = now_rfc3339();
    let mut o = Obj::new();
    o.insert("kind".into(), Kind::Operation.wire_kind().into());
    o.insert("id".into(), id.to_string().into());
    o.insert("name".into(), key.name.clone().into());
    if let Some(rid) = request_id {
        o.insert("clientOperationId".into(), rid.into());
    }
    if let Some(link) = key.scope.link(&key.project) {
        let field = if matches!(key.scope, Scope::Zone(_)) {
            "zone"
        } else {
            "region"
        };
        o.insert(field.into(), link.into());
    }
    o.insert("operationType".into(), operation_type.into());
    o.insert("targetLink".into(), target_link.into());
    if let Some(t) = target_id {
        o.insert("targetId".into(), t.to_string().into());
    }
    o.insert("status".into(), "RUNNING".into());
    o.insert("user".into(), OPERATION_USER.into());
    o.insert("progress".into(), 0.into());
    o.insert("insertTime".into(), now.clone().into());
    o.insert("startTime".into(), now.into());
    o.insert("selfLink".into(), key.link().into());
    o
}

/// Marks an operation DONE, with the error if it failed.
pub(crate) fn mark_done(obj: &mut Obj, error: Option<(&ApiError, Option<&str>)>) {
    obj.insert("status".into(), "DONE".into());
    obj.insert("progress".into(), 100.into());
    obj.insert("endTime".into(), now_rfc3339().into());
    if let Some((e, code)) = error {
        for (k, v) in e.operation_fields(code) {
            obj.insert(k, v);
        }
    }
}
