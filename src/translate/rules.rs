//! `spec.defaultBackend` and `spec.rules` to the [`RoutingTable`].
//!
//! Unlike ingress-gce, nothing is dropped silently: rules naming the same host are merged (with
//! a warning, where ingress-gce lets the later replace the earlier), and two paths that would
//! occupy the same cloud pattern under one host are an error naming both (where ingress-gce
//! lets the later win).

use super::Limits;
use super::backends::Backends;
use super::hosts::parse_host;
use super::paths::{self, ParsedPath, PathError};
use super::problems::Problems;
use cloud::model::{HostMatch, HostRule, PathMatch, PathRule, RoutingTable};
use k8s_openapi::api::networking::v1::Ingress;

/// One host's rule as it is assembled: the Ingress rules that named it, and the cloud patterns
/// its paths occupy.
struct HostEntry {
    host: HostMatch,
    /// Index of the first `spec.rules` entry naming this host.
    first_rule: usize,
    /// The first rule with paths, for the merge warning.
    first_rule_with_paths: Option<usize>,
    paths: Vec<PathRule>,
    /// Number of Ingress paths under this host, including those that failed to resolve.
    path_count: usize,
    /// (pattern, kind, field of the path) for collision checks.
    patterns: Vec<(String, PathMatch, String)>,
}

/// Builds the routing table, resolving every backend through `backends`.
pub(crate) fn routing_table(
    ingress: &Ingress,
    backends: &mut Backends<'_>,
    limits: &Limits,
    problems: &mut Problems,
) -> RoutingTable {
    let spec = ingress.spec.as_ref();
    let default_backend = spec
        .and_then(|s| s.default_backend.as_ref())
        .and_then(|b| backends.resolve(b, "spec.defaultBackend", problems));
    let has_default = spec.is_some_and(|s| s.default_backend.is_some());

    let rules = spec.and_then(|s| s.rules.as_deref()).unwrap_or(&[]);
    let mut hosts: Vec<HostEntry> = Vec::new();
    // Rules that name a host but no paths: warned about once all rules are seen, since another
    // rule may give the same host paths.
    let mut pathless: Vec<(usize, usize)> = Vec::new();

    for (i, rule) in rules.iter().enumerate() {
        let host_field = format!("spec.rules[{i}].host");
        let host = match parse_host(rule.host.as_deref().unwrap_or("")) {
            Ok(host) => host,
            Err(message) => {
                problems.error(host_field, message);
                continue;
            }
        };
        let index = match hosts.iter().position(|h| h.host == host) {
            Some(index) => index,
            None => {
                hosts.push(HostEntry {
                    host: host.clone(),
                    first_rule: i,
                    first_rule_with_paths: None,
                    paths: Vec::new(),
                    path_count: 0,
                    patterns: Vec::new(),
                });
                hosts.len() - 1
            }
        };
        let Some(entry) = hosts.get_mut(index) else {
            continue;
        };
        let rule_paths = rule.http.as_ref().map(|h| h.paths.as_slice()).unwrap_or(&[]);
        if rule_paths.is_empty() {
            pathless.push((i, index));
            continue;
        }
        match entry.first_rule_with_paths {
            None => entry.first_rule_with_paths = Some(i),
            Some(first) => problems.warn(
                &host_field,
                format!(
                    "host {:?} is also the host of spec.rules[{first}]; their paths are merged",
                    host.to_string()
                ),
            ),
        }

        for (j, http_path) in rule_paths.iter().enumerate() {
            let field = format!("spec.rules[{i}].http.paths[{j}]");
            entry.path_count += 1;
            let parsed = match paths::parse_path(http_path.path.as_deref(), &http_path.path_type) {
                Ok(parsed) => Some(parsed),
                Err(PathError::PathType(message)) => {
                    problems.error(format!("{field}.pathType"), message);
                    None
                }
                Err(PathError::Path(message)) => {
                    problems.error(format!("{field}.path"), message);
                    None
                }
            };
            let backend = backends.resolve(&http_path.backend, &format!("{field}.backend"), problems);
            let Some(parsed) = parsed else {
                continue;
            };
            let written = http_path
                .path
                .as_deref()
                .filter(|p| !p.is_empty())
                .unwrap_or(&parsed.path);
            if !claim_patterns(entry, &parsed, written, &field, problems) {
                continue;
            }
            if let Some(backend) = backend {
                entry.paths.push(PathRule {
                    path: parsed.path,
                    kind: parsed.kind,
                    backend,
                });
            }
        }
    }

    for (i, index) in pathless {
        let entry = hosts.get(index);
        let served_elsewhere = entry.is_some_and(|e| e.first_rule_with_paths.is_some());
        if served_elsewhere {
            continue;
        }
        let fallback = if has_default {
            "served by spec.defaultBackend"
        } else {
            "answered by the load balancer with 502 (there is no spec.defaultBackend: the default backend service has no backends)"
        };
        let message = match entry.map(|e| &e.host) {
            Some(HostMatch::Any) | None => "has neither host nor paths; it does nothing".to_owned(),
            Some(host) => format!(
                "has no paths; requests for host {:?} are {fallback}",
                host.to_string()
            ),
        };
        problems.warn(format!("spec.rules[{i}].http"), message);
    }

    // Hosts with no usable path get no host rule: requests for them fall to the default.
    hosts.retain(|h| h.first_rule_with_paths.is_some());
    let any_paths = rules
        .iter()
        .any(|r| r.http.as_ref().is_some_and(|h| !h.paths.is_empty()));
    if !has_default && !any_paths {
        problems.error(
            "spec",
            "names neither a defaultBackend nor any rule with paths; there is nothing to serve",
        );
    }
    check_limits(&hosts, limits, problems);

    RoutingTable {
        default_backend,
        hosts: hosts
            .into_iter()
            .map(|h| HostRule {
                host: h.host,
                paths: h.paths,
            })
            .collect(),
    }
}

/// Records the cloud patterns of `path` (`written` as in the Ingress) under its host, or reports
/// the path it collides with.
fn claim_patterns(
    entry: &mut HostEntry,
    path: &ParsedPath,
    written: &str,
    field: &str,
    problems: &mut Problems,
) -> bool {
    let new_patterns = paths::patterns(path);
    let collision = entry
        .patterns
        .iter()
        .find(|(pattern, kind, _)| new_patterns.contains(pattern) && !paths::may_share(*kind, path.kind));
    if let Some((pattern, kind, other)) = collision {
        problems.error(
            format!("{field}.path"),
            format!(
                "{written:?} ({}) collides with {other} ({}) on {pattern:?} under host {:?}; each path may appear once",
                paths::kind_name(path.kind),
                paths::kind_name(*kind),
                entry.host.to_string()
            ),
        );
        return false;
    }
    for pattern in new_patterns {
        entry.patterns.push((pattern, path.kind, field.to_owned()));
    }
    true
}

/// The URL-map limits: distinct hosts, and path rules per host.
fn check_limits(hosts: &[HostEntry], limits: &Limits, problems: &mut Problems) {
    if hosts.len() > limits.max_host_rules {
        problems.error(
            "spec.rules",
            format!(
                "{} distinct hosts exceed the limit of {} host rules per load balancer; split the Ingress",
                hosts.len(),
                limits.max_host_rules
            ),
        );
    }
    for entry in hosts {
        if entry.path_count > limits.max_path_rules_per_host {
            problems.error(
                format!(
                    "spec.rules[{}].http.paths",
                    entry.first_rule_with_paths.unwrap_or(entry.first_rule)
                ),
                format!(
                    "host {:?} has {} paths, over the limit of {} path rules per host",
                    entry.host.to_string(),
                    entry.path_count,
                    limits.max_path_rules_per_host
                ),
            );
        }
    }
}
