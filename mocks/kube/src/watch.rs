//! Watch streams: newline-delimited JSON events (`ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK`,
//! `ERROR`) replayed from the store's change history and then followed live.
//!
//! A watch pulls from the shared history rather than having events pushed to it, so a slow client
//! never blocks writers or other watches; it only falls behind, and once the history it needs has
//! been dropped it gets an `ERROR` event carrying a 410 `Expired` Status, like a real apiserver,
//! and kube-rs's watcher re-lists.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use futures::Stream;
use jiff::Timestamp;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::ApiError;
use crate::kinds::{KINDS, KindId, storage_of};
use crate::server::Shared;
use crate::store::{Change, ChangeType, Filter};
use crate::table::{self, IncludeObject};

/// How events' objects are rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// The full object.
    Json,
    /// `PartialObjectMetadata` (kube-rs `metadata_watcher`).
    Meta,
    /// A one-row `Table` (`kubectl get -w`).
    Table(IncludeObject),
}

/// Where a watch starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Start {
    /// Send the current state as ADDED events first (resourceVersion unset or `0`).
    Snapshot,
    /// Send changes after this resourceVersion.
    After(u64),
}

/// A parsed watch request.
#[derive(Clone, Debug)]
pub(crate) struct WatchSpec {
    pub kind: KindId,
    pub filter: Filter,
    pub start: Start,
    pub bookmarks: bool,
    /// `sendInitialEvents=true`: end the initial events with a bookmark annotated
    /// `k8s.io/initial-events-end`.
    pub initial_events_end: bool,
    pub timeout: Duration,
    pub encoding: Encoding,
}

/// Most initial objects or changes encoded into one chunk.
const BATCH: usize = 500;

struct State {
    shared: Arc<Shared>,
    spec: WatchSpec,
    cursor: u64,
    epoch: u64,
    initial: VecDeque<Arc<Value>>,
    pending_end_marker: bool,
    notify: watch::Receiver<u64>,
    shutdown: watch::Receiver<bool>,
    deadline: Instant,
    next_bookmark: Instant,
    columns_sent: bool,
    /// Set once the stream must end after the chunk being returned.
    finished: bool,
}

fn push_line(buf: &mut Vec<u8>, ty: &str, object: &Value) {
    buf.extend_from_slice(b"{\"type\":\"");
    buf.extend_from_slice(ty.as_bytes());
    buf.extend_from_slice(b"\",\"object\":");
    // Serializing a `Value` into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *buf, object);
    buf.extend_from_slice(b"}\n");
}

/// The encoded line of a change for plain-JSON watchers of a non-view kind, made once per change.
fn shared_line(change: &Change) -> Bytes {
    change
        .line
        .get_or_init(|| {
            let mut buf = Vec::with_capacity(1024);
            push_line(&mut buf, change.ty.as_str(), &change.object);
            Bytes::from(buf)
        })
        .clone()
}

impl State {
    fn kind(&self) -> &'static crate::kinds::Kind {
        &KINDS[self.spec.kind]
    }

    fn api_form(&self, stored: &Arc<Value>) -> Arc<Value> {
        match &self.kind().view {
            Some(view) => Arc::new((view.from_storage)((**stored).clone())),
            None => stored.clone(),
        }
    }

    fn render(&mut self, object: &Value) -> Value {
        match self.spec.encoding {
            Encoding::Json => object.clone(),
            Encoding::Meta => table::partial_metadata(object),
            Encoding::Table(include) => {
                let row = table::row(self.kind(), object, include, Timestamp::now());
                let rv = object
                    .pointer("/metadata/resourceVersion")
                    .cloned()
                    .unwrap_or(Value::Null);
                let columns = !self.columns_sent;
                self.columns_sent = true;
                table::table(self.kind(), vec![row], json!({"resourceVersion": rv}), columns)
            }
        }
    }

    fn bookmark(&self, initial_end: bool) -> Bytes {
        let (kind, api_version) = match self.spec.encoding {
            Encoding::Meta => ("PartialObjectMetadata".to_string(), "meta.k8s.io/v1".to_string()),
            _ => (self.kind().kind.to_string(), self.kind().api_version()),
        };
        let mut metadata = json!({"resourceVersion": self.cursor.to_string(), "creationTimestamp": null});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object = json!({"kind": kind, "apiVersion": api_version, "metadata": metadata});
        let mut buf = Vec::new();
        push_line(&mut buf, "BOOKMARK", &object);
        Bytes::from(buf)
    }

    /// The event this watcher sees for a change, if any: selector watches turn a change that
    /// moves an object into or out of the selection into ADDED or DELETED.
    fn classify(&self, change: &Change) -> Option<(ChangeType, Arc<Value>)> {
        if change.kind != storage_of(self.spec.kind) {
            return None;
        }
        if let Some(ns) = &self.spec.filter.namespace {
            let obj_ns = change
                .object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str);
            if obj_ns != Some(ns.as_str()) {
                return None;
            }
        }
        let object = self.api_form(&change.object);
        let now = self.spec.filter.matches(&object);
        let ty = match change.ty {
            ChangeType::Modified => {
                let before = change
                    .previous
                    .as_ref()
                    .is_some_and(|p| self.spec.filter.matches(&self.api_form(p)));
                match (before, now) {
                    (true, true) => ChangeType::Modified,
                    (false, true) => ChangeType::Added,
                    (true, false) => ChangeType::Deleted,
                    (false, false) => return None,
                }
            }
            other if now => other,
            _ => return None,
        };
        Some((ty, object))
    }

    fn encode_change(&mut self, change: &Change, buf: &mut Vec<u8>) {
        let Some((ty, object)) = self.classify(change) else {
            return;
        };
        if self.spec.encoding == Encoding::Json && self.kind().view.is_none() && ty == change.ty {
            buf.extend_from_slice(&shared_line(change));
        } else {
            let rendered = self.render(&object);
            push_line(buf, ty.as_str(), &rendered);
        }
    }

    fn gone(&mut self, floor: u64) -> Bytes {
        self.finished = true;
        let status =
            ApiError::expired(format!("too old resource version: {} ({floor})", self.cursor)).to_status();
        let mut buf = Vec::new();
        push_line(&mut buf, "ERROR", &status);
        Bytes::from(buf)
    }

    /// The next chunk to send, or `None` when the watch is over.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            if self.finished {
                return None;
            }
            if !self.initial.is_empty() {
                let mut buf = Vec::new();
                let n = self.initial.len().min(BATCH);
                let batch: Vec<_> = self.initial.drain(..n).collect();
                for object in batch {
                    let rendered = self.render(&object);
                    push_line(&mut buf, "ADDED", &rendered);
                }
                return Some(Bytes::from(buf));
            }
            if self.pending_end_marker {
                self.pending_end_marker = false;
                return Some(self.bookmark(true));
            }
            self.notify.borrow_and_update();
            let changes = self.shared.store().changes_since(self.cursor, self.epoch, BATCH);
            match changes {
                Err(floor) => return Some(self.gone(floor)),
                Ok(changes) if !changes.is_empty() => {
                    let mut buf = Vec::new();
                    for change in &changes {
                        self.encode_change(change, &mut buf);
                        self.cursor = change.rv;
                    }
                    if !buf.is_empty() {
                        return Some(Bytes::from(buf));
                    }
                    continue;
                }
                Ok(_) => {}
            }
            let bookmarks = self.spec.bookmarks;
            let woke = tokio::select! {
                changed = self.notify.changed() => {
                    if changed.is_err() { Wake::End } else { Wake::Changed }
                }
                _ = tokio::time::sleep_until(self.deadline) => Wake::End,
                _ = tokio::time::sleep_until(self.next_bookmark), if bookmarks => Wake::Bookmark,
                _ = self.shutdown.wait_for(|stop| *stop) => Wake::End,
            };
            match woke {
                Wake::Changed => {}
                Wake::End => return None,
                Wake::Bookmark => {
                    self.next_bookmark = Instant::now() + self.shared.bookmark_interval;
                    return Some(self.bookmark(false));
                }
            }
        }
    }
}

/// Why a waiting watch woke up.
enum Wake {
    Changed,
    Bookmark,
    End,
}

/// Starts a watch. The returned stream is the response body.
pub(crate) fn start(shared: Arc<Shared>, spec: WatchSpec) -> impl Stream<Item = Result<Bytes, Infallible>> {
    // Subscribe before reading the store so no change between the two is missed.
    let mut notify = shared.notify.clone();
    notify.borrow_and_update();
    let (initial, cursor, epoch) = {
        let store = shared.store();
        match spec.start {
            Start::Snapshot => {
                let (items, rv) = store.snapshot(spec.kind, &spec.filter);
                (items.into(), rv, store.epoch())
            }
            Start::After(rv) => (VecDeque::new(), rv, store.epoch()),
        }
    };
    let now = Instant::now();
    let state = State {
        shutdown: shared.shutdown.clone(),
        next_bookmark: now + shared.bookmark_interval,
        deadline: now + spec.timeout,
        pending_end_marker: spec.initial_events_end,
        cursor,
        epoch,
        initial,
        notify,
        shared,
        spec,
        columns_sent: false,
        finished: false,
    };
    futures::stream::unfold(state, |mut state| async move {
        state.next_chunk().await.map(|chunk| (Ok(chunk), state))
    })
}
