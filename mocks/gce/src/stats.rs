//! Call counters.
//!
//! Every request under `/compute/` that reaches an API method is counted exactly once, in one
//! category and under one collection name, whether the method then succeeds or answers with an
//! API error (404, 409, 412, ...). Requests refused before reaching a method (missing token, rate
//! limit, injected synchronous fault, unknown route under `/compute/`) are counted only under
//! `rejected`. Admin (`/_fake/`) requests and other paths are not counted; metadata-server
//! requests are counted under `metadata`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What kind of call a request is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Category {
    /// `get` of one resource, and the non-mutating POSTs `backendServices.getHealth`,
    /// `urlMaps.validate`, and `sslPolicies.listAvailableFeatures`, and `zones.get`.
    Reads,
    /// `list` of a collection (operations included), `instanceGroups.listInstances`,
    /// `networkEndpointGroups.listNetworkEndpoints`, `zones.list`.
    Lists,
    /// Every method that returns an Operation (insert, delete, update, patch, set*, add/remove,
    /// attach/detach), including calls answered with an error or replayed by `requestId`; also
    /// `operations.delete`.
    Mutations,
    /// `operations.get` and `operations.wait` (global, regional and zonal).
    OperationPolls,
}

/// Counts per category.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// See [`Category::Reads`].
    pub reads: u64,
    /// See [`Category::Lists`].
    pub lists: u64,
    /// See [`Category::Mutations`].
    pub mutations: u64,
    /// See [`Category::OperationPolls`].
    pub operation_polls: u64,
    /// The sum of the four above.
    pub total: u64,
}

impl Counts {
    fn add(&mut self, c: Category) {
        match c {
            Category::Reads => self.reads += 1,
            Category::Lists => self.lists += 1,
            Category::Mutations => self.mutations += 1,
            Category::OperationPolls => self.operation_polls += 1,
        }
        self.total += 1;
    }
}

/// Requests refused before they reached an API method.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rejected {
    /// 401: missing or wrong bearer token (only when a token is required).
    pub unauthenticated: u64,
    /// 403/429 `rateLimitExceeded` from the token bucket.
    pub rate_limited: u64,
    /// Synchronous errors injected by a fault rule.
    pub injected: u64,
    /// 404 for a path under `/compute/` or a method the fake does not serve.
    pub unknown_route: u64,
    /// The sum of the four above.
    pub total: u64,
}

/// Why a request was refused before reaching its method (see [`Rejected`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RejectReason {
    /// See [`Rejected::unauthenticated`].
    Unauthenticated,
    /// See [`Rejected::rate_limited`].
    RateLimited,
    /// See [`Rejected::injected`].
    Injected,
    /// See [`Rejected::unknown_route`].
    UnknownRoute,
}

/// Operations and their outcomes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationCounts {
    /// Operations created (one per accepted mutation; `requestId` replays create none).
    pub created: u64,
    /// Operations that became DONE without error.
    pub succeeded: u64,
    /// Operations that became DONE with an error.
    pub failed: u64,
}

/// A snapshot of the counters (`GET /_fake/stats`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// All counted calls.
    pub total: Counts,
    /// Counted calls per collection, by discovery name (`urlMaps`, `globalForwardingRules`,
    /// `regionBackendServices`, `instanceGroups`, `globalOperations`, `zoneOperations`,
    /// `zones`, ...). Collections never called are absent.
    pub by_kind: BTreeMap<String, Counts>,
    /// Requests refused before reaching a method.
    pub rejected: Rejected,
    /// Operations created and finished.
    pub operations: OperationCounts,
    /// Metadata-server requests (any path under `/computeMetadata/`).
    pub metadata: u64,
}

impl Stats {
    /// The counts of one collection (zero when never called).
    pub fn kind(&self, api_name: &str) -> Counts {
        self.by_kind.get(api_name).copied().unwrap_or_default()
    }

    pub(crate) fn record(&mut self, category: Category, api_name: &str) {
        self.total.add(category);
        match self.by_kind.get_mut(api_name) {
            Some(c) => c.add(category),
            None => {
                let mut c = Counts::default();
                c.add(category);
                self.by_kind.insert(api_name.to_string(), c);
            }
        }
    }

    pub(crate) fn reject(&mut self, why: RejectReason) {
        let r = &mut self.rejected;
        match why {
            RejectReason::Unauthenticated => r.unauthenticated += 1,
            RejectReason::RateLimited => r.rate_limited += 1,
            RejectReason::Injected => r.injected += 1,
            RejectReason::UnknownRoute => r.unknown_route += 1,
        }
        r.total += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_counts_per_kind_and_in_total() {
        let mut s = Stats::default();
        s.record(Category::Reads, "urlMaps");
        s.record(Category::Mutations, "urlMaps");
        s.record(Category::Lists, "healthChecks");
        assert_eq!(s.total.total, 3);
        assert_eq!(s.kind("urlMaps").reads, 1);
        assert_eq!(s.kind("urlMaps").total, 2);
        assert_eq!(s.kind("firewalls"), Counts::default());
        s.reject(RejectReason::RateLimited);
        assert_eq!(s.rejected.total, 1);
        assert_eq!(s.total.total, 3);
    }
}
