//! The journal: one ordered, bounded record of the Compute requests the fake received and of the
//! changes its operations applied, for tests that replay what happened in which order.
//!
//! Entries are appended under the state lock, so `seq` order is the order in which requests
//! arrived and changes were applied. A request is recorded when it is admitted or rejected
//! (before its method runs, hence before any change it causes) and its answer is filled in when
//! the response is ready.

use std::collections::VecDeque;
use std::time::{Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::mutation::Change;
use crate::stats::{Category, RejectReason};

/// A snapshot of the journal (`GET /_fake/journal`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Journal {
    /// Entries in `seq` order (oldest first).
    pub entries: Vec<JournalEntry>,
    /// Entries dropped, oldest first, because the journal was full
    /// ([`crate::Config::journal_capacity`]), since the start or the last clear.
    pub dropped: u64,
    /// The `seq` the next entry will get: pass it as `since` to read only newer entries.
    pub next_seq: u64,
}

/// One journal entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JournalEntry {
    /// Position in the journal: starts at 1, grows by one per entry, never reused (not even
    /// after a clear or a reset).
    pub seq: u64,
    /// The system clock when the entry was made, comparable with [`SystemTime::now`] in the
    /// same process. JSON: RFC 3339 in UTC with microseconds (`2025-01-02T03:04:05.123456Z`).
    #[serde(with = "rfc3339_micros")]
    pub at: SystemTime,
    /// Microseconds since the server started, from the monotonic clock.
    pub elapsed_micros: u64,
    /// What happened; in JSON its fields sit next to these, with `type`.
    #[serde(flatten)]
    pub event: JournalEvent,
}

/// What a journal entry records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum JournalEvent {
    /// A request under `/compute/` (`"type":"request"`).
    Request(RequestEntry),
    /// An operation completed (`"type":"applied"`).
    Applied(AppliedEntry),
}

/// A request under `/compute/`, recorded when it arrives (after the token check, routing, rate
/// limit and faults decided its fate) and completed when it is answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestEntry {
    /// HTTP method.
    pub method: String,
    /// Path, without the query.
    pub path: String,
    /// The `requestId` query parameter.
    pub request_id: Option<String>,
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
    /// The category of the API method the route names (also for a rejected request); `None`
    /// for an unknown route. Counted in [`crate::Stats`] under it unless `rejected` is set.
    pub category: Option<Category>,
    /// Why the request was refused before reaching its method, as counted in
    /// [`crate::Rejected`].
    pub rejected: Option<RejectReason>,
    /// The HTTP status answered; `None` while the answer is pending (a `delay` fault, an
    /// `operations/wait`) or when the client went away first.
    pub status: Option<u16>,
    /// When the answer was ready, in microseconds since the server started.
    pub answered_elapsed_micros: Option<u64>,
}

impl RequestEntry {
    /// Whether the route names a method that returns an operation (or `operations.delete`),
    /// whether or not the request was then rejected.
    pub fn is_mutation(&self) -> bool {
        self.category == Some(Category::Mutations)
    }
}

/// An operation that completed: its change was applied, or it failed and changed nothing.
/// Operations that never finish, and synchronous errors, have no such entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedEntry {
    /// The operation's name.
    pub operation: String,
    /// Its `operationType` (`insert`, `SetTarget`, `compute.instanceGroups.addInstances`, ...).
    pub operation_type: String,
    /// The target's self link (`https://www.googleapis.com/compute/v1/projects/...`).
    pub target_link: String,
    /// Whether the operation ended without error.
    pub status: AppliedStatus,
    /// The operation's `error.errors[0].code` when it failed (`RESOURCE_NOT_FOUND`, ...).
    pub error_code: Option<String>,
    /// What happened to the target in the store.
    pub change: ResourceChange,
}

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AppliedStatus {
    /// DONE without error; the change was applied.
    Done,
    /// DONE with an error; nothing was applied.
    Failed,
}

/// What an operation did to its target resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ResourceChange {
    /// The target now exists (insert).
    Created,
    /// The target was written (update, patch, `set*`, member and endpoint changes), even if
    /// the write left it as it was.
    Updated,
    /// The target is gone (delete).
    Deleted,
    /// Nothing changed (the operation failed).
    None,
}

impl ResourceChange {
    pub(crate) fn of(change: &Change) -> Self {
        match change {
            Change::Put { insert: true, .. } => ResourceChange::Created,
            Change::Put { .. } => ResourceChange::Updated,
            Change::Remove(_) => ResourceChange::Deleted,
        }
    }
}

/// The journal behind the state lock.
#[derive(Debug)]
pub(crate) struct JournalBuf {
    entries: VecDeque<JournalEntry>,
    capacity: usize,
    dropped: u64,
    next_seq: u64,
    start: Instant,
}

impl JournalBuf {
    pub(crate) fn new(capacity: usize) -> Self {
        JournalBuf {
            entries: VecDeque::new(),
            capacity,
            dropped: 0,
            next_seq: 1,
            start: Instant::now(),
        }
    }

    fn elapsed_micros(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Appends an entry; returns its `seq`.
    pub(crate) fn push(&mut self, event: JournalEvent) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        if self.entries.len() >= self.capacity {
            if self.capacity == 0 {
                self.dropped += 1;
                return seq;
            }
            self.entries.pop_front();
            self.dropped += 1;
        }
        let elapsed_micros = self.elapsed_micros();
        self.entries.push_back(JournalEntry {
            seq,
            at: SystemTime::now(),
            elapsed_micros,
            event,
        });
        seq
    }

    /// Fills in the answer of the request recorded as `seq` (if still kept).
    pub(crate) fn answer(&mut self, seq: u64, status: u16) {
        let elapsed = self.elapsed_micros();
        let Some(first) = self.entries.front().map(|e| e.seq) else {
            return;
        };
        let Some(index) = seq.checked_sub(first).and_then(|i| usize::try_from(i).ok()) else {
            return;
        };
        if let Some(JournalEntry {
            event: JournalEvent::Request(r),
            ..
        }) = self.entries.get_mut(index)
        {
            r.status = Some(status);
            r.answered_elapsed_micros = Some(elapsed);
        }
    }

    /// The entries with `seq >= since`.
    pub(crate) fn snapshot(&self, since: u64) -> Journal {
        let skip = self.entries.front().map_or(0, |e| since.saturating_sub(e.seq));
        let skip = usize::try_from(skip).unwrap_or(usize::MAX);
        Journal {
            entries: self.entries.iter().skip(skip).cloned().collect(),
            dropped: self.dropped,
            next_seq: self.next_seq,
        }
    }

    /// Forgets every entry and the dropped count; `seq` keeps counting.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.dropped = 0;
    }
}

/// `SystemTime` as RFC 3339 in UTC with microseconds.
mod rfc3339_micros {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer, de};

    pub(super) fn format(t: SystemTime) -> String {
        match jiff::Timestamp::try_from(t) {
            Ok(ts) => ts.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
            Err(_) => String::new(),
        }
    }

    pub(super) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*t))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let s = String::deserialize(d)?;
        let ts: jiff::Timestamp = s.parse().map_err(de::Error::custom)?;
        Ok(SystemTime::from(ts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(path: &str) -> JournalEvent {
        JournalEvent::Request(RequestEntry {
            method: "GET".into(),
            path: path.into(),
            request_id: None,
            user_agent: None,
            category: Some(Category::Reads),
            rejected: None,
            status: None,
            answered_elapsed_micros: None,
        })
    }

    #[test]
    fn keeps_the_newest_entries_and_counts_the_dropped() {
        let mut j = JournalBuf::new(3);
        for i in 0..5 {
            j.push(request(&format!("/{i}")));
        }
        let s = j.snapshot(0);
        let seqs: Vec<u64> = s.entries.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [3, 4, 5]);
        assert_eq!((s.dropped, s.next_seq), (2, 6));
        assert_eq!(j.snapshot(5).entries.len(), 1);
        assert_eq!(j.snapshot(6).entries.len(), 0);
        j.answer(2, 200); // dropped: ignored
        j.answer(4, 503);
        let JournalEvent::Request(r) = &j.snapshot(4).entries[0].event else {
            panic!("a request");
        };
        assert_eq!(r.status, Some(503));
        j.clear();
        assert_eq!(
            j.snapshot(0),
            Journal {
                next_seq: 6,
                ..Journal::default()
            }
        );
        assert_eq!(j.push(request("/x")), 6);
    }

    #[test]
    fn zero_capacity_keeps_nothing() {
        let mut j = JournalBuf::new(0);
        j.push(request("/a"));
        j.answer(1, 200);
        assert_eq!((j.snapshot(0).entries.len(), j.snapshot(0).dropped), (0, 1));
    }

    #[test]
    fn json_round_trips_with_microsecond_timestamps() {
        let mut j = JournalBuf::new(10);
        j.push(request("/a"));
        j.push(JournalEvent::Applied(AppliedEntry {
            operation: "operation-1".into(),
            operation_type: "insert".into(),
            target_link: "https://www.googleapis.com/compute/v1/projects/p/global/urlMaps/u".into(),
            status: AppliedStatus::Failed,
            error_code: Some("INTERNAL_ERROR".into()),
            change: ResourceChange::None,
        }));
        let snap = j.snapshot(0);
        let v = serde_json::to_value(&snap).expect("json");
        let at = v["entries"][0]["at"].as_str().expect("at");
        assert!(
            at.ends_with('Z') && at.len() == "2025-01-02T03:04:05.123456Z".len(),
            "{at}"
        );
        assert_eq!(v["entries"][0]["type"], "request");
        assert_eq!(v["entries"][0]["category"], "reads");
        assert_eq!(v["entries"][1]["type"], "applied");
        assert_eq!(v["entries"][1]["change"], "none");
        assert_eq!(v["entries"][1]["status"], "failed");
        let back: Journal = serde_json::from_value(v).expect("parses");
        for (a, b) in back.entries.iter().zip(&snap.entries) {
            assert_eq!(a.event, b.event);
            let diff = b.at.duration_since(a.at).expect("truncated, not rounded up");
            assert!(diff.as_nanos() < 1000, "{a:?} {b:?}");
        }
    }
}
