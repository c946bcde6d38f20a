//! `spec.rules[].http.paths[]`: path types, validation, normalisation, and the cloud patterns a
//! path occupies (which is what decides whether two paths collide).

use cloud::model::PathMatch;

/// A validated path of one Ingress path rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ParsedPath {
    /// Normalised: a Prefix path carries no trailing `/` except the root.
    pub(crate) path: String,
    pub(crate) kind: PathMatch,
}

/// What is wrong with a path, and which of its two fields to blame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PathError {
    /// `pathType` is not one Kubernetes defines.
    PathType(String),
    /// `path` is not valid for its type.
    Path(String),
}

/// Validates `path` for `path_type`.
///
/// - `Exact` and `Prefix` follow Kubernetes API validation (absolute, none of `//`, `/./`,
///   `/../`, `%2f`, no trailing `/.` or `/..`) plus what the cloud refuses (`*`, `?`, `#`).
///   `Prefix` drops a trailing `/`: `/foo/` and `/foo` both mean "`/foo` and below".
/// - `ImplementationSpecific`, and an absent `pathType` (an empty string once deserialized),
///   pass a GCE glob through: absolute, `*` only as a final `/*`, no `?` or `#`. An empty path
///   means everything, `/*`, as in ingress-gce.
pub(crate) fn parse_path(path: Option<&str>, path_type: &str) -> Result<ParsedPath, PathError> {
    let path = path.unwrap_or("");
    match path_type {
        "Exact" => {
            check_strict(path)?;
            Ok(ParsedPath {
                path: path.to_owned(),
                kind: PathMatch::Exact,
            })
        }
        "Prefix" => {
            check_strict(path)?;
            let trimmed = match path.strip_suffix('/') {
                Some(t) if !t.is_empty() => t,
                _ => path,
            };
            Ok(ParsedPath {
                path: trimmed.to_owned(),
                kind: PathMatch::Prefix,
            })
        }
        "ImplementationSpecific" | "" => {
            if path.is_empty() {
                return Ok(ParsedPath {
                    path: "/*".to_owned(),
                    kind: PathMatch::Glob,
                });
            }
            check_common(path)?;
            // The only '*' allowed is the last character, right after a '/'.
            if path.contains('*') && path.strip_suffix("/*").is_none_or(|stem| stem.contains('*')) {
                return Err(PathError::Path(format!(
                    "{path:?} is not a valid path: '*' is only allowed as a final \"/*\""
                )));
            }
            Ok(ParsedPath {
                path: path.to_owned(),
                kind: PathMatch::Glob,
            })
        }
        other => Err(PathError::PathType(format!(
            "{other:?} is not a path type; use Exact, Prefix or ImplementationSpecific"
        ))),
    }
}

/// What every path type requires: absolute, and nothing the cloud cannot match on.
fn check_common(path: &str) -> Result<(), PathError> {
    let invalid = |reason: &str| Err(PathError::Path(format!("{path:?} is not a valid path: {reason}")));
    if !path.starts_with('/') {
        return invalid("it must start with '/'");
    }
    if let Some(c) = path.chars().find(|c| *c == '?' || *c == '#') {
        return invalid(&format!(
            "it must not contain {c:?} (the load balancer matches the path without query or fragment)"
        ));
    }
    if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return invalid("it must not contain spaces or control characters");
    }
    Ok(())
}

/// `Exact` and `Prefix` paths: Kubernetes' own rules, and no glob.
fn check_strict(path: &str) -> Result<(), PathError> {
    check_common(path)?;
    let invalid = |reason: String| Err(PathError::Path(format!("{path:?} is not a valid path: {reason}")));
    if path.contains('*') {
        return invalid("'*' is only allowed with pathType ImplementationSpecific".to_owned());
    }
    for sequence in ["//", "/./", "/../", "%2f", "%2F"] {
        if path.contains(sequence) {
            return invalid(format!("it must not contain {sequence:?}"));
        }
    }
    for suffix in ["/..", "/."] {
        if path.ends_with(suffix) {
            return invalid(format!("it must not end with {suffix:?}"));
        }
    }
    Ok(())
}

/// The cloud patterns a path occupies: Exact `/foo` is `/foo`; Prefix `/foo` is `/foo` and
/// `/foo/*`, Prefix `/` is `/*`; a glob is itself.
pub(crate) fn patterns(path: &ParsedPath) -> Vec<String> {
    match path.kind {
        PathMatch::Exact | PathMatch::Glob => vec![path.path.clone()],
        PathMatch::Prefix if path.path == "/" => vec!["/*".to_owned()],
        PathMatch::Prefix => vec![path.path.clone(), format!("{}/*", path.path)],
    }
}

/// Whether two paths sharing a pattern are nevertheless legal together: Exact `/foo` beside
/// Prefix `/foo` is what Kubernetes defines (Exact wins on `/foo`, Prefix keeps what is below).
pub(crate) fn may_share(a: PathMatch, b: PathMatch) -> bool {
    matches!(
        (a, b),
        (PathMatch::Exact, PathMatch::Prefix) | (PathMatch::Prefix, PathMatch::Exact)
    )
}

/// The name Kubernetes gives a path match kind, for messages.
pub(crate) fn kind_name(kind: PathMatch) -> &'static str {
    match kind {
        PathMatch::Exact => "Exact",
        PathMatch::Prefix => "Prefix",
        PathMatch::Glob => "ImplementationSpecific",
    }
}
