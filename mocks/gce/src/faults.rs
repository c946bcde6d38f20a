//! Fault injection: rules matched against each Compute request, firing a synchronous error, a
//! failed operation, a delay, or an operation that never finishes.

use std::time::Duration;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::errors::ApiError;
use crate::ids::Rng;

/// One fault rule.
///
/// A request matches when its HTTP method equals `method` (any method when absent) and the regex
/// `path` finds a match anywhere in the request path (e.g. `/global/urlMaps$`, `setSslCertificates`;
/// any path when absent). Operation faults (`failOperation`, `neverFinish`) only match requests that
/// create an operation. Of the matching requests the first `after` pass untouched; then the rule
/// fires at most `times` times (unlimited when absent), each time with `probability` (1 when
/// absent), drawn from a generator seeded with `seed` (default: the fake's seed plus the rule id).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultRule {
    /// HTTP method, e.g. `POST`; case-insensitive.
    #[serde(default)]
    pub method: Option<String>,
    /// Regex searched in the request path (without the query).
    #[serde(default)]
    pub path: Option<String>,
    /// Matching requests to let through before the rule fires.
    #[serde(default)]
    pub after: u64,
    /// How many times the rule fires at most.
    #[serde(default)]
    pub times: Option<u64>,
    /// Chance of firing on each eligible request.
    #[serde(default)]
    pub probability: Option<f64>,
    /// Seed for `probability`.
    #[serde(default)]
    pub seed: Option<u64>,
    /// What happens when the rule fires.
    pub action: FaultAction,
}

impl FaultRule {
    /// A rule that fires `action` on every request with `method` whose path matches `path`.
    pub fn new(method: &str, path: &str, action: FaultAction) -> Self {
        FaultRule {
            method: Some(method.to_string()),
            path: Some(path.to_string()),
            after: 0,
            times: None,
            probability: None,
            seed: None,
            action,
        }
    }

    /// Fires at most `n` times.
    pub fn times(mut self, n: u64) -> Self {
        self.times = Some(n);
        self
    }

    /// Lets `n` matching requests through first.
    pub fn after(mut self, n: u64) -> Self {
        self.after = n;
        self
    }

    /// Fires with probability `p`.
    pub fn probability(mut self, p: f64) -> Self {
        self.probability = Some(p);
        self
    }
}

/// What a fault does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum FaultAction {
    /// Answer at once with a synchronous error; nothing is done.
    #[serde(rename_all = "camelCase")]
    Error {
        /// HTTP status (default 503).
        #[serde(default = "default_error_status")]
        status: u16,
        /// camelCase reason (default `backendError`).
        #[serde(default = "default_error_reason")]
        reason: String,
        /// Message (default `Backend Error`).
        #[serde(default = "default_error_message")]
        message: String,
    },
    /// Accept the mutation, then finish its operation with this error; the change is not applied.
    #[serde(rename_all = "camelCase")]
    FailOperation {
        /// `httpErrorStatusCode` (default 500).
        #[serde(default = "default_op_status")]
        status: u16,
        /// `error.errors[0].code` (default `INTERNAL_ERROR`).
        #[serde(default = "default_op_code")]
        code: String,
        /// `error.errors[0].message`.
        #[serde(default = "default_op_message")]
        message: String,
    },
    /// Hold the response this long before handling the request.
    #[serde(rename_all = "camelCase")]
    Delay {
        /// Milliseconds.
        ms: u64,
    },
    /// Accept the mutation; its operation stays RUNNING forever and the change is never applied.
    NeverFinish,
}

fn default_error_status() -> u16 {
    503
}
fn default_error_reason() -> String {
    "backendError".to_string()
}
fn default_error_message() -> String {
    "Backend Error".to_string()
}
fn default_op_status() -> u16 {
    500
}
fn default_op_code() -> String {
    "INTERNAL_ERROR".to_string()
}
fn default_op_message() -> String {
    "Internal error. Please try again or contact Google Support.".to_string()
}

/// A rule as listed by `GET /_fake/faults`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultStatus {
    /// Id to delete the rule with.
    pub id: u64,
    /// The rule.
    pub rule: FaultRule,
    /// Eligible requests seen so far.
    pub matched: u64,
    /// Times the rule fired.
    pub fired: u64,
}

/// A fault rule that could not be installed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    /// The `path` is not a valid regex.
    #[error("invalid path regex: {0}")]
    BadRegex(String),
    /// `probability` is outside 0..=1.
    #[error("probability must be between 0 and 1")]
    BadProbability,
}

/// What an operation-level fault does to the operation.
#[derive(Clone, Debug)]
pub(crate) enum OpFault {
    Fail { error: ApiError, code: String },
    Never,
}

/// The combined effect of the rules that fired for one request.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub delay: Duration,
    pub error: Option<ApiError>,
    pub op_fault: Option<OpFault>,
}

#[derive(Debug)]
struct Active {
    id: u64,
    rule: FaultRule,
    path: Option<Regex>,
    matched: u64,
    fired: u64,
    rng: Rng,
}

/// The installed rules.
#[derive(Debug, Default)]
pub(crate) struct FaultSet {
    rules: Vec<Active>,
    next_id: u64,
}

impl FaultSet {
    pub(crate) fn add(&mut self, rule: FaultRule, seed: u64) -> Result<u64, FaultError> {
        let path = match &rule.path {
            Some(p) => Some(Regex::new(p).map_err(|e| FaultError::BadRegex(e.to_string()))?),
            None => None,
        };
        if let Some(p) = rule.probability
            && !(0.0..=1.0).contains(&p)
        {
            return Err(FaultError::BadProbability);
        }
        self.next_id += 1;
        let id = self.next_id;
        let rng = Rng::new(rule.seed.unwrap_or(seed.wrapping_add(id)));
        self.rules.push(Active {
            id,
            rule,
            path,
            matched: 0,
            fired: 0,
            rng,
        });
        Ok(id)
    }

    pub(crate) fn remove(&mut self, id: u64) -> bool {
        let before = self.rules.len();
        self.rules.retain(|r| r.id != id);
        self.rules.len() != before
    }

    pub(crate) fn clear(&mut self) {
        self.rules.clear();
    }

    pub(crate) fn list(&self) -> Vec<FaultStatus> {
        self.rules
            .iter()
            .map(|r| FaultStatus {
                id: r.id,
                rule: r.rule.clone(),
                matched: r.matched,
                fired: r.fired,
            })
            .collect()
    }

    /// Evaluates every rule against a request. Delays add up; the first synchronous error and
    /// the first operation fault win.
    pub(crate) fn evaluate(&mut self, method: &str, path: &str, creates_operation: bool) -> Outcome {
        let mut out = Outcome::default();
        for r in &mut self.rules {
            let op_level = matches!(
                r.rule.action,
                FaultAction::FailOperation { .. } | FaultAction::NeverFinish
            );
            if op_level && !creates_operation {
                continue;
            }
            if let Some(m) = &r.rule.method
                && !m.eq_ignore_ascii_case(method)
            {
                continue;
            }
            if let Some(re) = &r.path
                && !re.is_match(path)
            {
                continue;
            }
            r.matched += 1;
            if r.matched <= r.rule.after || r.rule.times.is_some_and(|t| r.fired >= t) {
                continue;
            }
            if let Some(p) = r.rule.probability
                && r.rng.next_f64() >= p
            {
                continue;
            }
            match &r.rule.action {
                FaultAction::Delay { ms } => out.delay += Duration::from_millis(*ms),
                FaultAction::Error {
                    status,
                    reason,
                    message,
                } => {
                    if out.error.is_some() {
                        continue;
                    }
                    out.error = Some(ApiError::new(*status, reason.clone(), message.clone()));
                }
                FaultAction::FailOperation {
                    status,
                    code,
                    message,
                } => {
                    if out.op_fault.is_some() {
                        continue;
                    }
                    out.op_fault = Some(OpFault::Fail {
                        error: ApiError::new(*status, "injected", message.clone()),
                        code: code.clone(),
                    });
                }
                FaultAction::NeverFinish => {
                    if out.op_fault.is_some() {
                        continue;
                    }
                    out.op_fault = Some(OpFault::Never);
                }
            }
            r.fired += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error() -> FaultAction {
        FaultAction::Error {
            status: 503,
            reason: "backendError".into(),
            message: "x".into(),
        }
    }

    #[test]
    fn after_and_times_bound_the_firing_window() {
        let mut set = FaultSet::default();
        set.add(FaultRule::new("POST", "/urlMaps$", error()).after(1).times(2), 0)
            .ok();
        let fired: Vec<bool> = (0..5)
            .map(|_| set.evaluate("POST", "/p/global/urlMaps", true).error.is_some())
            .collect();
        assert_eq!(fired, [false, true, true, false, false]);
        assert!(set.evaluate("GET", "/p/global/urlMaps", false).error.is_none());
        assert_eq!(set.list()[0].matched, 5);
        assert_eq!(set.list()[0].fired, 2);
    }

    #[test]
    fn operation_faults_skip_requests_without_operations() {
        let mut set = FaultSet::default();
        set.add(
            FaultRule {
                method: None,
                path: None,
                after: 0,
                times: None,
                probability: None,
                seed: None,
                action: FaultAction::NeverFinish,
            },
            0,
        )
        .ok();
        assert!(set.evaluate("GET", "/x", false).op_fault.is_none());
        assert!(set.evaluate("POST", "/x", true).op_fault.is_some());
        assert_eq!(set.list()[0].matched, 1);
    }

    #[test]
    fn probability_is_seeded_and_reproducible() {
        let run = || {
            let mut set = FaultSet::default();
            set.add(FaultRule::new("GET", "", error()).probability(0.5), 42)
                .ok();
            (0..64)
                .map(|_| set.evaluate("GET", "/x", false).error.is_some())
                .collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        let hits = a.iter().filter(|b| **b).count();
        assert!((16..=48).contains(&hits), "{hits}");
    }

    #[test]
    fn bad_rules_are_refused() {
        let mut set = FaultSet::default();
        assert!(matches!(
            set.add(FaultRule::new("GET", "(", error()), 0),
            Err(FaultError::BadRegex(_))
        ));
        assert_eq!(
            set.add(FaultRule::new("GET", "", error()).probability(2.0), 0),
            Err(FaultError::BadProbability)
        );
    }
}
