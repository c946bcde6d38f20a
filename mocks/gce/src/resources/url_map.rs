//! URL maps (global and regional): structure checks, references to backend services, size limits
//! (413 `fieldSizeTooLarge`), and `tests[]` evaluated against the routing rules.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::errors::ApiError;
use crate::json::{Obj, as_obj, as_str, enum_field, opt_array, opt_bool, opt_obj, opt_str};
use crate::kinds::{Key, Kind};
use crate::resources::Cx;

const SERVICES: &[Kind] = &[Kind::BackendService];

pub(crate) fn normalize(cx: &Cx, obj: &mut Obj) -> Result<Vec<Key>, ApiError> {
    opt_str(obj, "description", "resource.description")?;
    let lim = &cx.limits.url_map;
    for (field, max) in [
        ("hostRules", lim.max_host_rules),
        ("pathMatchers", lim.max_path_matchers),
        ("tests", lim.max_tests),
    ] {
        let n = opt_array(obj, field, &format!("resource.{field}"))?.len();
        if n > max {
            return Err(ApiError::too_large(
                &format!("resource.{field}"),
                max,
                n,
                "element",
            ));
        }
    }
    let mut refs = Vec::new();
    target(cx, obj, "resource", &mut refs, true)?;

    let mut matchers = Vec::new();
    let mut names = BTreeSet::new();
    for (i, pm) in opt_array(obj, "pathMatchers", "resource.pathMatchers")?
        .iter()
        .enumerate()
    {
        let field = format!("resource.pathMatchers[{i}]");
        let mut pm = as_obj(pm, &field)?.clone();
        let name = opt_str(&pm, "name", &format!("{field}.name"))?
            .unwrap_or_default()
            .to_string();
        if name.is_empty() || !names.insert(name.clone()) {
            return Err(ApiError::invalid_field(
                &format!("{field}.name"),
                &name,
                "Path matcher names must be non-empty and unique.",
            ));
        }
        target(cx, &mut pm, &field, &mut refs, true)?;
        path_rules(cx, &mut pm, &field, &mut refs)?;
        matchers.push(Value::Object(pm));
    }
    set_list(obj, "pathMatchers", matchers);

    let mut hosts_seen = BTreeSet::new();
    for (i, hr) in opt_array(obj, "hostRules", "resource.hostRules")?
        .iter()
        .enumerate()
    {
        let field = format!("resource.hostRules[{i}]");
        let hr = as_obj(hr, &field)?;
        let hosts = opt_array(hr, "hosts", &format!("{field}.hosts"))?;
        if hosts.is_empty() {
            return Err(ApiError::invalid_field(
                &format!("{field}.hosts"),
                "",
                "At least one host must be specified.",
            ));
        }
        for (j, h) in hosts.iter().enumerate() {
            let hf = format!("{field}.hosts[{j}]");
            let h = as_str(h, &hf)?;
            if !valid_host(h) {
                return Err(ApiError::invalid_field(&hf, h, "Invalid host pattern."));
            }
            if !hosts_seen.insert(h.to_ascii_lowercase()) {
                return Err(ApiError::invalid_field(
                    &hf,
                    h,
                    "Duplicate host pattern in URL map.",
                ));
            }
        }
        let pm = opt_str(hr, "pathMatcher", &format!("{field}.pathMatcher"))?.unwrap_or_default();
        if !names.contains(pm) {
            return Err(ApiError::invalid_field(
                &format!("{field}.pathMatcher"),
                pm,
                &format!("Path matcher '{pm}' not found."),
            ));
        }
    }

    run_tests(cx, obj, &mut refs)?;

    let services: BTreeSet<&Key> = refs.iter().filter(|k| k.kind == Kind::BackendService).collect();
    if services.len() > lim.max_services {
        return Err(ApiError::too_large(
            "resource",
            lim.max_services,
            services.len(),
            "backend service",
        ));
    }
    let size = stored_size(obj);
    if size > lim.max_size_bytes {
        return Err(ApiError::too_large("resource", lim.max_size_bytes, size, "byte"));
    }
    Ok(refs)
}

/// The bytes a URL map counts against its size limit: its compact JSON as stored, without
/// `selfLink` and `fingerprint` (a patch starts from the stored object, which has both; an
/// insert or update does not have them yet). `cloud::gce::limits::stored_size` counts the same
/// object with both added at their longest, so it never counts less than this.
fn stored_size(obj: &Obj) -> usize {
    /// The map as counted: serialized without the two fields, nothing copied.
    struct Counted<'a>(&'a Obj);
    impl serde::Serialize for Counted<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_map(
                self.0
                    .iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "selfLink" | "fingerprint")),
            )
        }
    }
    /// Counts the bytes written.
    struct Bytes(usize);
    impl std::io::Write for Bytes {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut bytes = Bytes(0);
    match serde_json::to_writer(&mut bytes, &Counted(obj)) {
        Ok(()) => bytes.0,
        Err(_) => usize::MAX,
    }
}

fn set_list(obj: &mut Obj, key: &str, items: Vec<Value>) {
    if items.is_empty() {
        obj.shift_remove(key);
    } else {
        obj.insert(key.to_string(), Value::Array(items));
    }
}

/// The default target of a map or path matcher: exactly one of `defaultService`,
/// `defaultUrlRedirect`, `defaultRouteAction`.
fn target(cx: &Cx, obj: &mut Obj, field: &str, refs: &mut Vec<Key>, required: bool) -> Result<(), ApiError> {
    let service = cx.ref_field(
        obj,
        "defaultService",
        &format!("{field}.defaultService"),
        SERVICES,
    )?;
    let redirect = opt_obj(obj, "defaultUrlRedirect", &format!("{field}.defaultUrlRedirect"))?.cloned();
    if let Some(r) = &redirect {
        check_redirect(r, &format!("{field}.defaultUrlRedirect"))?;
    }
    let weighted = route_action(
        cx,
        obj,
        "defaultRouteAction",
        &format!("{field}.defaultRouteAction"),
        refs,
    )?;
    let count = usize::from(service.is_some()) + usize::from(redirect.is_some()) + usize::from(weighted);
    if count > 1 {
        return Err(ApiError::invalid_field(
            &format!("{field}.defaultService"),
            "",
            "Only one of defaultService, defaultUrlRedirect and defaultRouteAction.weightedBackendServices may be set.",
        ));
    }
    if count == 0 && required {
        return Err(ApiError::invalid_field(
            &format!("{field}.defaultService"),
            "",
            "A default service, default URL redirect or default route action must be specified.",
        ));
    }
    refs.extend(service);
    Ok(())
}

/// `routeAction.weightedBackendServices[].backendService`; returns whether any were given.
fn route_action(
    cx: &Cx,
    obj: &mut Obj,
    key: &str,
    field: &str,
    refs: &mut Vec<Key>,
) -> Result<bool, ApiError> {
    let Some(mut action) = opt_obj(obj, key, field)?.cloned() else {
        return Ok(false);
    };
    let wf = format!("{field}.weightedBackendServices");
    let mut out = Vec::new();
    for (i, w) in opt_array(&action, "weightedBackendServices", &wf)?
        .iter()
        .enumerate()
    {
        let f = format!("{wf}[{i}]");
        let mut w = as_obj(w, &f)?.clone();
        let k = cx
            .ref_field(&mut w, "backendService", &format!("{f}.backendService"), SERVICES)?
            .ok_or_else(|| {
                ApiError::invalid_field(
                    &format!("{f}.backendService"),
                    "",
                    "A backend service must be specified.",
                )
            })?;
        refs.push(k);
        out.push(Value::Object(w));
    }
    let any = !out.is_empty();
    if any {
        action.insert("weightedBackendServices".into(), Value::Array(out));
    }
    obj.insert(key.to_string(), Value::Object(action));
    Ok(any)
}

fn check_redirect(r: &Obj, field: &str) -> Result<(), ApiError> {
    let mut r = r.clone();
    enum_field(
        &mut r,
        "redirectResponseCode",
        &format!("{field}.redirectResponseCode"),
        &[
            "MOVED_PERMANENTLY_DEFAULT",
            "FOUND",
            "SEE_OTHER",
            "TEMPORARY_REDIRECT",
            "PERMANENT_REDIRECT",
        ],
        None,
    )?;
    opt_bool(&r, "httpsRedirect", &format!("{field}.httpsRedirect"))?;
    opt_bool(&r, "stripQuery", &format!("{field}.stripQuery"))?;
    let path = opt_str(&r, "pathRedirect", &format!("{field}.pathRedirect"))?;
    let prefix = opt_str(&r, "prefixRedirect", &format!("{field}.prefixRedirect"))?;
    if path.is_some() && prefix.is_some() {
        return Err(ApiError::invalid_field(
            &format!("{field}.pathRedirect"),
            "",
            "Only one of pathRedirect and prefixRedirect may be set.",
        ));
    }
    Ok(())
}

fn path_rules(cx: &Cx, pm: &mut Obj, field: &str, refs: &mut Vec<Key>) -> Result<(), ApiError> {
    let rules = opt_array(pm, "pathRules", &format!("{field}.pathRules"))?.to_vec();
    let route_rules = opt_array(pm, "routeRules", &format!("{field}.routeRules"))?.to_vec();
    if !rules.is_empty() && !route_rules.is_empty() {
        return Err(ApiError::invalid_field(
            &format!("{field}.routeRules"),
            "",
            "Only one of pathRules and routeRules may be set in a path matcher.",
        ));
    }
    let max = cx.limits.url_map.max_path_rules_per_matcher;
    if rules.len() > max {
        return Err(ApiError::too_large(
            &format!("{field}.pathRules"),
            max,
            rules.len(),
            "element",
        ));
    }
    // "Predicates per path matcher": for path rules, the paths across all of them.
    let patterns: usize = rules
        .iter()
        .map(|r| r.get("paths").and_then(Value::as_array).map_or(0, Vec::len))
        .sum();
    let max = cx.limits.url_map.max_path_patterns_per_matcher;
    if patterns > max {
        return Err(ApiError::too_large(
            &format!("{field}.pathRules[].paths"),
            max,
            patterns,
            "element",
        ));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(rules.len());
    for (i, rule) in rules.iter().enumerate() {
        let f = format!("{field}.pathRules[{i}]");
        let mut rule = as_obj(rule, &f)?.clone();
        let paths = opt_array(&rule, "paths", &format!("{f}.paths"))?;
        if paths.is_empty() {
            return Err(ApiError::invalid_field(
                &format!("{f}.paths"),
                "",
                "At least one path must be specified.",
            ));
        }
        for (j, p) in paths.iter().enumerate() {
            let pf = format!("{f}.paths[{j}]");
            let p = as_str(p, &pf)?;
            if !valid_path(p) {
                return Err(ApiError::invalid_field(&pf, p, "Invalid path pattern."));
            }
            if !seen.insert(p.to_string()) {
                return Err(ApiError::invalid_field(&pf, p, "Duplicate path in path matcher."));
            }
        }
        let service = cx.ref_field(&mut rule, "service", &format!("{f}.service"), SERVICES)?;
        let redirect = opt_obj(&rule, "urlRedirect", &format!("{f}.urlRedirect"))?.cloned();
        if let Some(r) = &redirect {
            check_redirect(r, &format!("{f}.urlRedirect"))?;
        }
        let weighted = route_action(cx, &mut rule, "routeAction", &format!("{f}.routeAction"), refs)?;
        if usize::from(service.is_some()) + usize::from(redirect.is_some()) + usize::from(weighted) != 1 {
            return Err(ApiError::invalid_field(
                &format!("{f}.service"),
                "",
                "Exactly one of service, urlRedirect and routeAction.weightedBackendServices must be set.",
            ));
        }
        refs.extend(service);
        out.push(Value::Object(rule));
    }
    set_list(pm, "pathRules", out);
    let mut rr_out = Vec::with_capacity(route_rules.len());
    for (i, rule) in route_rules.iter().enumerate() {
        let f = format!("{field}.routeRules[{i}]");
        let mut rule = as_obj(rule, &f)?.clone();
        refs.extend(cx.ref_field(&mut rule, "service", &format!("{f}.service"), SERVICES)?);
        route_action(cx, &mut rule, "routeAction", &format!("{f}.routeAction"), refs)?;
        rr_out.push(Value::Object(rule));
    }
    set_list(pm, "routeRules", rr_out);
    Ok(())
}

/// Starts with `/`; `*` only at the end, after a `/`; no `?` or `#`.
fn valid_path(p: &str) -> bool {
    if !p.starts_with('/') || p.contains('?') || p.contains('#') {
        return false;
    }
    match p.find('*') {
        None => true,
        Some(i) => i == p.len() - 1 && p[..i].ends_with('/'),
    }
}

/// `*` alone, or `*` only as the first character followed by `.` or `-`.
fn valid_host(h: &str) -> bool {
    if h == "*" {
        return true;
    }
    let rest = match h.strip_prefix('*') {
        Some(r) if r.starts_with('.') || r.starts_with('-') => r,
        Some(_) => return false,
        None => h,
    };
    !rest.is_empty()
        && !rest.contains('*')
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
}

/// Evaluates `tests[]`: each expects `service` for `host` + `path`; a failing test refuses the map.
fn run_tests(cx: &Cx, obj: &mut Obj, refs: &mut Vec<Key>) -> Result<(), ApiError> {
    let tests = opt_array(obj, "tests", "resource.tests")?.to_vec();
    let mut out = Vec::with_capacity(tests.len());
    for (i, t) in tests.iter().enumerate() {
        let f = format!("resource.tests[{i}]");
        let mut t = as_obj(t, &f)?.clone();
        let host = opt_str(&t, "host", &format!("{f}.host"))?
            .unwrap_or_default()
            .to_string();
        let path = opt_str(&t, "path", &format!("{f}.path"))?
            .unwrap_or_default()
            .to_string();
        let want = cx.ref_field(&mut t, "service", &format!("{f}.service"), SERVICES)?;
        if let Some(want) = want {
            let got = route(obj, &host, &path);
            if got.as_deref() != Some(want.link().as_str()) {
                return Err(ApiError::invalid_field(
                    &f,
                    &format!("{host}{path}"),
                    &format!(
                        "Test failure: expected service '{}' but the URL map routes to '{}'.",
                        want.link(),
                        got.unwrap_or_default()
                    ),
                ));
            }
            refs.push(want);
        }
        out.push(Value::Object(t));
    }
    set_list(obj, "tests", out);
    Ok(())
}

/// The backend service a request for `host` + `path` reaches (`None` for a redirect).
pub(crate) fn route(map: &Obj, host: &str, path: &str) -> Option<String> {
    let host = host.split(':').next().unwrap_or_default().to_ascii_lowercase();
    let text = |o: &Obj, k: &str| o.get(k).and_then(Value::as_str).map(str::to_string);
    let matchers: BTreeMap<String, &Obj> = map
        .get("pathMatchers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .filter_map(|pm| Some((text(pm, "name")?, pm)))
        .collect();
    // Exact host first, then the longest wildcard suffix, then `*`.
    let mut best: Option<(usize, String)> = None;
    for hr in map
        .get("hostRules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(hr) = hr.as_object() else { continue };
        let Some(pm) = text(hr, "pathMatcher") else {
            continue;
        };
        for h in hr.get("hosts").and_then(Value::as_array).into_iter().flatten() {
            let h = h.as_str().unwrap_or_default().to_ascii_lowercase();
            let score = if h == host {
                usize::MAX
            } else if h == "*" {
                0
            } else if let Some(suffix) = h.strip_prefix('*') {
                if host.ends_with(suffix) {
                    suffix.len()
                } else {
                    continue;
                }
            } else {
                continue;
            };
            if best.as_ref().is_none_or(|(s, _)| score > *s) {
                best = Some((score, pm.clone()));
            }
        }
    }
    let Some(pm) = best.and_then(|(_, name)| matchers.get(&name).copied()) else {
        return text(map, "defaultService");
    };
    // Exact path beats prefix; among prefixes the longest wins.
    let mut hit: Option<(usize, Option<String>)> = None;
    for rule in pm
        .get("pathRules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(rule) = rule.as_object() else { continue };
        for p in rule.get("paths").and_then(Value::as_array).into_iter().flatten() {
            let p = p.as_str().unwrap_or_default();
            let score = match p.strip_suffix('*') {
                None if p == path => usize::MAX,
                Some(prefix) if path.starts_with(prefix) => prefix.len(),
                _ => continue,
            };
            if hit.as_ref().is_none_or(|(s, _)| score > *s) {
                hit = Some((score, text(rule, "service")));
            }
        }
    }
    match hit {
        Some((_, service)) => service,
        None => text(pm, "defaultService"),
    }
}

/// `POST .../urlMaps/{name}/validate`: checks `resource` without storing it.
pub(crate) fn validate(cx: &Cx, body: &Obj) -> Result<Obj, ApiError> {
    let mut resource = opt_obj(body, "resource", "resource")?
        .cloned()
        .unwrap_or_default();
    let result = match normalize(cx, &mut resource).and_then(|refs| cx.check_refs(&refs)) {
        Ok(()) => serde_json::json!({"loadSucceeded": true, "testPassed": true}),
        Err(e) => serde_json::json!({"loadSucceeded": false, "loadErrors": [e.message], "testPassed": false}),
    };
    let mut o = Obj::new();
    o.insert("result".into(), result);
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_size_is_the_compact_json_without_self_link_and_fingerprint() {
        let stored = json!({"kind": "compute#urlMap", "name": "m", "selfLink": "x",
                                        "description": "a \"quoted\" é", "fingerprint": "f=",
                                        "defaultService": "s"});
        let counted = json!({"kind": "compute#urlMap", "name": "m",
                                         "description": "a \"quoted\" é", "defaultService": "s"});
        let size = |v: &Value| v.as_object().map(stored_size);
        assert_eq!(size(&stored), serde_json::to_vec(&counted).ok().map(|v| v.len()));
        assert_eq!(size(&counted), size(&stored));
    }

    #[test]
    fn path_and_host_patterns() {
        for ok in ["/", "/a", "/a/*", "/*"] {
            assert!(valid_path(ok), "{ok}");
        }
        for bad in ["a", "/a*", "/a/*/b", "/a?b", "/a#b"] {
            assert!(!valid_path(bad), "{bad}");
        }
        for ok in ["*", "example.com", "*.example.com", "*-x.example.com", "a.b:8080"] {
            assert!(valid_host(ok), "{ok}");
        }
        for bad in ["", "*example.com", "a.*.com", "a_b.com"] {
            assert!(!valid_host(bad), "{bad}");
        }
    }

    #[test]
    fn routing_prefers_exact_hosts_and_longest_paths() {
        let map = json!({
            "defaultService": "d",
            "hostRules": [
                {"hosts": ["foo.com"], "pathMatcher": "foo"},
                {"hosts": ["*.com"], "pathMatcher": "any"}
            ],
            "pathMatchers": [
                {"name": "foo", "defaultService": "foo-default",
                 "pathRules": [{"paths": ["/a/*"], "service": "a"},
                               {"paths": ["/a/b/*"], "service": "ab"},
                               {"paths": ["/x"], "service": "x"}]},
                {"name": "any", "defaultService": "any-default"}
            ]
        });
        let map = map.as_object().cloned().unwrap_or_default();
        let r = |h: &str, p: &str| route(&map, h, p);
        assert_eq!(r("foo.com", "/a/b/c").as_deref(), Some("ab"));
        assert_eq!(r("foo.com", "/a/z").as_deref(), Some("a"));
        assert_eq!(r("foo.com", "/x").as_deref(), Some("x"));
        assert_eq!(r("foo.com", "/x/y").as_deref(), Some("foo-default"));
        assert_eq!(r("bar.com", "/a/").as_deref(), Some("any-default"));
        assert_eq!(r("bar.org", "/").as_deref(), Some("d"));
        let only_foo = json!({"defaultService": "d",
            "hostRules": [{"hosts": ["foo.com"], "pathMatcher": "foo"}],
            "pathMatchers": [{"name": "foo", "defaultService": "fd", "pathRules": [{"paths": ["/api/*"], "service": "api"}]}]});
        let only_foo = only_foo.as_object().cloned().unwrap_or_default();
        assert_eq!(route(&only_foo, "bar.com", "/api/v1").as_deref(), Some("d"));
    }
}
