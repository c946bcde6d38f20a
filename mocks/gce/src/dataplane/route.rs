//! URL-map routing: which backend service, or which redirect, a request gets. Pure: no I/O.
//!
//! The rules below are the ones a classic / global external Application Load Balancer applies to
//! a global URL map, written in our own words, each with where it comes from.
//!
//! **Host selection** (`hostRules[]`):
//! - A host pattern is an exact name, `*` alone, or `*` followed by a suffix that starts with `.`
//!   or `-` (`*.example.com`, `*-api.example.com`); the `*` stands for a run of `[a-z0-9-.]`, so
//!   it may cover several labels (`a.b.example.com` matches `*.example.com`). A pattern may carry
//!   a port (`host:port`). Sources: Compute API reference, `HostRule.hosts`
//!   (<https://cloud.google.com/compute/docs/reference/rest/v1/urlMaps>, also rendered at
//!   <https://cloud.google.com/python/docs/reference/compute/latest/google.cloud.compute_v1.types.HostRule>);
//!   `gcloud compute url-maps add-host-rule --hosts`
//!   (<https://cloud.google.com/sdk/gcloud/reference/compute/url-maps/add-host-rule>).
//! - The request's `Host` is compared case-insensitively (DNS names are), with its `:port`
//!   removed; a pattern that names a port matches only a `Host` that carries that same port.
//!   Port handling for patterns is our reading of "optional port numbers" in `HostRule.hosts`.
//! - Precedence: an exact name beats every wildcard (a port-qualified exact name beats a bare
//!   one), among wildcards the longest suffix wins, `*` comes last; the order of rules and hosts
//!   in the map does not matter. We found no Google page stating an order for overlapping
//!   patterns; this is the order Envoy documents for `VirtualHost.domains` (its "domain search
//!   order": exact names, then suffix wildcards longest first, then `*`:
//!   <https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/route/v3/route_components.proto>).
//!   Envoy is what the global external Application Load Balancer runs on ("External Application
//!   Load Balancer overview", <https://cloud.google.com/load-balancing/docs/https>); the classic
//!   one runs on Google Front Ends, whose order is undocumented and assumed the same.
//! - The wildcard never matches an empty string (`*.example.com` does not match
//!   `.example.com`). This too is Envoy's rule, not Compute's: Envoy's `VirtualHost.domains`
//!   says "Note that the wildcard will not match the empty string" (`*-bar.foo.com` does not
//!   match `-bar.foo.com`), while Compute's reference for `HostRule.hosts` says `*` "matches
//!   any string of ([a-z0-9-.]*)", a regex that allows the empty string. We follow Envoy (what
//!   the global load balancer runs); a `Host` of `.example.com` is no real name either way.
//! - No host rule matches: the map's own default answers (`defaultService`,
//!   `defaultUrlRedirect`, or `defaultRouteAction.weightedBackendServices`). Source: "URL maps
//!   overview" (<https://cloud.google.com/load-balancing/docs/url-map-concepts>), and
//!   `UrlMap.defaultService` in the API reference.
//!
//! **Path selection** (the `pathMatcher` the host rule names):
//! - The path is matched as sent, without the query or a fragment: byte for byte, case-sensitive,
//!   no percent-decoding, no dot-segment removal, no merging of `//`. The API reference documents
//!   no normalization for `pathRules`, so we apply none.
//! - `pathRules[].paths`: an exact path, or a path ending in `/*`, which matches every path that
//!   starts with the part before the `*` (`/foo/*` matches `/foo/` and `/foo/x/y`, not `/foo` and
//!   not `/foobar`). The `*` may only come last, after a `/`. Sources: `PathRule.paths` and
//!   `PathMatcher.pathRules` in the API reference
//!   (<https://cloud.google.com/java/docs/reference/google-cloud-compute/latest/com.google.cloud.compute.v1.PathMatcher.Builder>).
//!   That `/foo` and `/foobar` miss `/foo/*` follows from the prefix keeping its `/`.
//! - Longest path first, whatever the order of the rules (documented on `PathMatcher.pathRules`,
//!   with `/a/b/c/*` winning over `/a/b/*`). An exact path that equals a glob's prefix (`/foo/`
//!   against `/foo/*` for the request `/foo/`) wins the tie: our choice, the exact rule being the
//!   more specific.
//! - No path rule matches: the path matcher's `defaultService` / `defaultUrlRedirect` /
//!   `defaultRouteAction`. Source: the `PathMatcher` description in the API reference (the
//!   longest matching rule serves, else the matcher's default).
//! - `routeRules` (we never generate them), modelled minimally: rules tried by ascending
//!   `priority` (the order in the list does not matter), a rule matching when any of its
//!   `matchRules` does; a match rule is modelled only with `prefixMatch` or `fullPathMatch` (and
//!   `ignoreCase`). A match rule that uses `regexMatch`, `pathTemplateMatch`, `headerMatches`,
//!   `queryParameterMatches` or `metadataFilters` is not modelled and never matches. Source:
//!   `HttpRouteRule` / `HttpRouteRuleMatch` in the API reference.
//!
//! **Targets.** A rule or default names `service` / `defaultService` (returned as stored, a full
//! self link), a redirect, or `routeAction.weightedBackendServices`; of the latter we take the
//! **first** entry and ignore the weights (no traffic splitting is modelled). Other
//! `routeAction`s (rewrites, retries, header actions, ...) are not modelled.
//!
//! **Redirects** (`HttpRedirectAction`, API reference, e.g.
//! <https://googleapis.dev/dotnet/Google.Apis.Compute.v1/latest/api/Google.Apis.Compute.v1.Data.HttpRedirectAction.html>):
//! - `redirectResponseCode`: `MOVED_PERMANENTLY_DEFAULT` (also when absent) 301, `FOUND` 302,
//!   `SEE_OTHER` 303, `TEMPORARY_REDIRECT` 307, `PERMANENT_REDIRECT` 308.
//! - `httpsRedirect: true` makes the scheme `https`; otherwise the request's scheme is kept.
//! - `hostRedirect` replaces the host; otherwise the request's host is kept, without its port.
//! - `pathRedirect` replaces the whole path; `prefixRedirect` replaces the part of the path the
//!   rule matched and keeps the rest. The reference defines that part only for a route rule's
//!   `prefixMatch`; for the other rules we take: a path rule `/p/*` matched `/p/`, an exact path
//!   rule or `fullPathMatch` matched the whole path, a default (nothing matched) matched the empty
//!   prefix. Neither: the request's path.
//! - `stripQuery` (default `false`) drops the query; otherwise the request's query is kept.
//! - The `Location` names no port for the scheme's own port: an https redirect reads
//!   `https://host/path`, not `https://host:443/path`. Evidence, both showing a redirect made by a
//!   Google front end for a URL map `httpsRedirect` (GKE `FrontendConfig.redirectToHttps`):
//!   the expected output in GoogleCloudPlatform/bank-of-anthos,
//!   `extras/cloudsql-multicluster/tls-for-mci.md` (`Location: https://<YOUR_STATIC_IP>/`), and
//!   a public GKE Ingress hands-on write-up (in Japanese) recording `Location: https://<host>/`
//!   with a `Content-Length` that fits the front end's HTML body for a URL without a port. We
//!   found no capture showing `:443`, and could not read the test section of Google's "Set up an
//!   HTTP-to-HTTPS redirect" page in the stored copies. See [`Redirect::port`] for how the fake
//!   still points at its own (mapped) ports.
//!
//! **Not modelled:** `defaultCustomErrorResponsePolicy`, `headerAction`, URL rewrites, traffic
//! splitting by weight, mirroring, fault injection, route rules beyond path predicates, hosts
//! written as IPv6 literals in patterns, and trailing-dot host names (`example.com.`).

use serde_json::Value;

use crate::json::Obj;

/// The parts of a request a URL map looks at.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Request<'a> {
    /// `"http"` or `"https"`: the scheme the client used.
    pub scheme: &'a str,
    /// The `Host` header (or the `:authority`), possibly with a port.
    pub host: &'a str,
    /// The path, without the query. (Anything from a `?` or `#` on is ignored anyway.)
    pub path: &'a str,
    /// The query, without the `?`.
    pub query: Option<&'a str>,
}

/// A redirect to answer with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Redirect {
    /// 301, 302, 303, 307 or 308.
    pub status: u16,
    /// `"http"` or `"https"`.
    pub scheme: String,
    /// The host, without a port.
    pub host: String,
    /// The port the redirect points at. [`route`] always sets it: the well-known port of
    /// `scheme` (443 for https, 80 for http), or the port written in `hostRedirect`. Google
    /// writes no port in the `Location` for the scheme's own port, and neither does
    /// [`Redirect::location`]: it names the port only when it differs from the scheme's
    /// well-known one once mapped (so a fake listening on 8443 for 443 still redirects to itself).
    /// `None`: no port at all.
    pub port: Option<u16>,
    /// The path, starting with `/`.
    pub path: String,
    /// The query, without the `?`, or none (stripped, or the request had none).
    pub query: Option<String>,
}

impl Redirect {
    /// The `Location` header, with the port passed through `map_port` (the data plane's mapping
    /// of privileged ports). The port is written only when, mapped, it is not the scheme's
    /// well-known port: with no mapping, `https://host/path` as Google sends it.
    pub(crate) fn location(&self, map_port: impl Fn(u16) -> u16) -> String {
        let port = match self.port.map(map_port) {
            Some(p) if p != well_known_port(&self.scheme) => format!(":{p}"),
            _ => String::new(),
        };
        let query = self.query.as_deref().map(|q| format!("?{q}")).unwrap_or_default();
        format!("{}://{}{port}{}{query}", self.scheme, self.host, self.path)
    }
}

/// What the URL map decides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Send the request to this backend service (its self link as stored).
    Service(String),
    /// Answer with a redirect.
    Redirect(Redirect),
    /// Nothing in the map answers (no default service or redirect applies).
    NoRoute,
}

/// Routes `req` through `url_map` (a URL map as stored).
pub(crate) fn route(url_map: &Obj, req: &Request<'_>) -> Decision {
    let path = matchable_path(req.path);
    let Some(matcher_name) = select_host_rule(url_map, req.host) else {
        return target(url_map, DEFAULTS, req, path, 0).unwrap_or(Decision::NoRoute);
    };
    let Some(matcher) = objects(url_map, "pathMatchers").find(|pm| text(pm, "name") == Some(matcher_name))
    else {
        // A host rule naming no path matcher: the API refuses such a map; nothing to route with.
        return Decision::NoRoute;
    };
    let hit = if objects(matcher, "routeRules").next().is_some() {
        route_rules(matcher, req, path)
    } else {
        path_rules(matcher, req, path)
    };
    hit.or_else(|| target(matcher, DEFAULTS, req, path, 0))
        .unwrap_or(Decision::NoRoute)
}

/// The field names of a default target and of a rule's target.
struct TargetKeys {
    redirect: &'static str,
    service: &'static str,
    route_action: &'static str,
}

const DEFAULTS: TargetKeys = TargetKeys {
    redirect: "defaultUrlRedirect",
    service: "defaultService",
    route_action: "defaultRouteAction",
};

const RULE: TargetKeys = TargetKeys {
    redirect: "urlRedirect",
    service: "service",
    route_action: "routeAction",
};

/// The target `obj` names under `keys`, if any; `matched` is how many bytes of `path` the rule
/// matched (for `prefixRedirect`).
fn target(obj: &Obj, keys: TargetKeys, req: &Request<'_>, path: &str, matched: usize) -> Option<Decision> {
    if let Some(action) = obj.get(keys.redirect).and_then(Value::as_object) {
        return Some(Decision::Redirect(redirect(action, req, path, matched)));
    }
    if let Some(service) = text(obj, keys.service) {
        return Some(Decision::Service(service.to_string()));
    }
    // Traffic splitting is not modelled: the first weighted backend service takes everything.
    obj.get(keys.route_action)
        .and_then(Value::as_object)
        .and_then(|a| objects(a, "weightedBackendServices").next())
        .and_then(|w| text(w, "backendService"))
        .map(|s| Decision::Service(s.to_string()))
}

/// The path matchers see: the path up to any `?` or `#`, otherwise as sent.
fn matchable_path(path: &str) -> &str {
    path.find(['?', '#']).map_or(path, |i| &path[..i])
}

/// Splits `host[:port]` (or `[v6]:port`) into the host and the port text, if any.
fn split_port(host: &str) -> (&str, Option<&str>) {
    if host.starts_with('[') {
        return match host.find(']') {
            Some(end) => {
                let (name, rest) = host.split_at(end + 1);
                (name, rest.strip_prefix(':'))
            }
            None => (host, None),
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            (name, Some(port))
        }
        _ => (host, None),
    }
}

/// How well a host pattern fits a request host; higher wins, `None` does not match.
fn host_score(pattern: &str, host: &str, host_with_port: Option<&str>) -> Option<(u8, usize)> {
    let pattern = pattern.to_ascii_lowercase();
    if pattern == "*" {
        return Some((0, 0));
    }
    let (_, pattern_port) = split_port(pattern.trim_start_matches('*'));
    // A pattern naming a port is compared with `host:port`; one without, with the bare host.
    let subject = match pattern_port {
        Some(_) => host_with_port?,
        None => host,
    };
    match pattern.strip_prefix('*') {
        None => (pattern == subject).then_some((if pattern_port.is_some() { 3 } else { 2 }, 0)),
        Some(suffix) => {
            let head = subject.strip_suffix(suffix)?;
            // Not empty: Envoy's rule, where Compute's `[a-z0-9-.]*` would allow it (module docs).
            let fits = !head.is_empty()
                && head
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
            fits.then_some((1, suffix.len()))
        }
    }
}

/// The name of the path matcher of the best host rule for `host`, if any rule matches.
fn select_host_rule<'m>(url_map: &'m Obj, host: &str) -> Option<&'m str> {
    let lower = host.to_ascii_lowercase();
    let (bare, port) = split_port(&lower);
    let with_port = port.map(|_| lower.as_str());
    let mut best: Option<((u8, usize), &str)> = None;
    for rule in objects(url_map, "hostRules") {
        let Some(matcher) = text(rule, "pathMatcher") else {
            continue;
        };
        for pattern in values(rule, "hosts").filter_map(Value::as_str) {
            let Some(score) = host_score(pattern, bare, with_port) else {
                continue;
            };
            if best.is_none_or(|(s, _)| score > s) {
                best = Some((score, matcher));
            }
        }
    }
    best.map(|(_, m)| m)
}

/// The target of the best `pathRules` entry for `path`, if any matches.
fn path_rules(matcher: &Obj, req: &Request<'_>, path: &str) -> Option<Decision> {
    // (matched length, exact?) — longest first, an exact path winning a tie with a glob.
    let mut best: Option<((usize, bool), &Obj)> = None;
    for rule in objects(matcher, "pathRules") {
        for pattern in values(rule, "paths").filter_map(Value::as_str) {
            let score = match pattern.strip_suffix('*') {
                Some(prefix) if prefix.ends_with('/') && !prefix.contains('*') => {
                    path.starts_with(prefix).then_some((prefix.len(), false))
                }
                Some(_) => None,
                None => (!pattern.contains('*') && pattern == path).then_some((pattern.len(), true)),
            };
            let Some(score) = score else { continue };
            if best.is_none_or(|(s, _)| score > s) {
                best = Some((score, rule));
            }
        }
    }
    let ((matched, _), rule) = best?;
    Some(target(rule, RULE, req, path, matched).unwrap_or(Decision::NoRoute))
}

/// The target of the first `routeRules` entry (by `priority`) that matches `path`, if any.
fn route_rules(matcher: &Obj, req: &Request<'_>, path: &str) -> Option<Decision> {
    let mut rules: Vec<(i64, &Obj)> = objects(matcher, "routeRules").map(|r| (priority(r), r)).collect();
    rules.sort_by_key(|(p, _)| *p);
    for (_, rule) in rules {
        if let Some(matched) = objects(rule, "matchRules").find_map(|m| match_rule(m, path)) {
            return Some(target(rule, RULE, req, path, matched).unwrap_or(Decision::NoRoute));
        }
    }
    None
}

/// `HttpRouteRule.priority`: lower first; a missing or unreadable one last.
fn priority(rule: &Obj) -> i64 {
    match rule.get("priority") {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(i64::MAX),
        Some(Value::String(s)) => s.parse().unwrap_or(i64::MAX),
        _ => i64::MAX,
    }
}

/// How many bytes of `path` an `HttpRouteRuleMatch` matches, or `None`. Only path predicates
/// are modelled; a match rule using anything else never matches.
fn match_rule(m: &Obj, path: &str) -> Option<usize> {
    let unmodelled = ["headerMatches", "queryParameterMatches", "metadataFilters"]
        .iter()
        .any(|k| values(m, k).next().is_some())
        || m.contains_key("regexMatch")
        || m.contains_key("pathTemplateMatch");
    if unmodelled {
        return None;
    }
    let ignore_case = m.get("ignoreCase").and_then(Value::as_bool).unwrap_or(false);
    let same = |a: &str, b: &str| {
        if ignore_case {
            a.eq_ignore_ascii_case(b)
        } else {
            a == b
        }
    };
    if let Some(full) = text(m, "fullPathMatch") {
        return same(full, path).then_some(path.len());
    }
    let prefix = text(m, "prefixMatch")?;
    let head = path.get(..prefix.len())?;
    same(head, prefix).then_some(prefix.len())
}

/// The redirect `action` makes of the request; `matched` bytes of `path` are what
/// `prefixRedirect` replaces.
fn redirect(action: &Obj, req: &Request<'_>, path: &str, matched: usize) -> Redirect {
    let status = match text(action, "redirectResponseCode") {
        Some("FOUND") => 302,
        Some("SEE_OTHER") => 303,
        Some("TEMPORARY_REDIRECT") => 307,
        Some("PERMANENT_REDIRECT") => 308,
        // MOVED_PERMANENTLY_DEFAULT, absent, or unknown.
        _ => 301,
    };
    let https = action
        .get("httpsRedirect")
        .and_then(Value::as_bool)
        .unwrap_or(false)
        || req.scheme.eq_ignore_ascii_case("https");
    let scheme = if https { "https" } else { "http" };
    let (host, port) = match text(action, "hostRedirect") {
        Some(h) => {
            let (name, port) = split_port(h);
            (name, port.and_then(|p| p.parse().ok()))
        }
        None => (split_port(req.host).0, None),
    };
    let path = if let Some(p) = text(action, "pathRedirect") {
        p.to_string()
    } else if let Some(prefix) = text(action, "prefixRedirect") {
        format!("{prefix}{}", path.get(matched..).unwrap_or_default())
    } else {
        path.to_string()
    };
    let strip = action.get("stripQuery").and_then(Value::as_bool).unwrap_or(false);
    let query = req.query.filter(|q| !strip && !q.is_empty()).map(str::to_string);
    Redirect {
        status,
        scheme: scheme.to_string(),
        host: host.to_string(),
        port: Some(port.unwrap_or_else(|| well_known_port(scheme))),
        path,
        query,
    }
}

fn well_known_port(scheme: &str) -> u16 {
    if scheme.eq_ignore_ascii_case("https") {
        443
    } else {
        80
    }
}

fn text<'a>(obj: &'a Obj, key: &str) -> Option<&'a str> {
    obj.get(key).and_then(Value::as_str)
}

fn values<'a>(obj: &'a Obj, key: &str) -> impl Iterator<Item = &'a Value> {
    obj.get(key).and_then(Value::as_array).into_iter().flatten()
}

fn objects<'a>(obj: &'a Obj, key: &str) -> impl Iterator<Item = &'a Obj> {
    values(obj, key).filter_map(Value::as_object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const BS: &str = "https://www.googleapis.com/compute/v1/projects/p/global/backendServices/";

    fn bs(name: &str) -> String {
        format!("{BS}{name}")
    }

    fn service(name: &str) -> Decision {
        Decision::Service(bs(name))
    }

    fn obj(v: Value) -> Obj {
        match v {
            Value::Object(o) => o,
            other => panic!("not an object: {other}"),
        }
    }

    fn get<'a>(scheme: &'a str, host: &'a str, path: &'a str, query: Option<&'a str>) -> Request<'a> {
        Request {
            scheme,
            host,
            path,
            query,
        }
    }

    /// A path matcher named `name` that only has a default service `svc-<name>`.
    fn matcher(name: &str) -> Value {
        json!({"name": name, "defaultService": bs(&format!("svc-{name}"))})
    }

    fn host_map(with_star: bool) -> Obj {
        // Wildcards listed before the exact names on purpose: order must not matter.
        let mut rules = vec![
            json!({"hosts": ["*.example.com"], "pathMatcher": "wild"}),
            json!({"hosts": ["*-api.example.com"], "pathMatcher": "dash"}),
            json!({"hosts": ["ported.example.com:8080"], "pathMatcher": "ported"}),
            json!({"hosts": ["*.b.example.com"], "pathMatcher": "wild-b"}),
            json!({"hosts": ["Example.COM", "www.example.com"], "pathMatcher": "exact"}),
        ];
        if with_star {
            rules.insert(0, json!({"hosts": ["*"], "pathMatcher": "star"}));
        }
        let matchers = ["wild", "dash", "ported", "wild-b", "exact", "star"].map(matcher);
        obj(json!({
            "defaultService": bs("map-default"),
            "hostRules": rules,
            "pathMatchers": matchers,
        }))
    }

    #[test]
    fn host_selection() {
        let with_star = host_map(true);
        let without_star = host_map(false);
        // (host, with `*` rule, without it)
        let cases = [
            ("example.com", "svc-exact", "svc-exact"),
            ("EXAMPLE.com", "svc-exact", "svc-exact"),
            ("example.com:8080", "svc-exact", "svc-exact"),
            ("www.example.com:443", "svc-exact", "svc-exact"),
            ("a.example.com", "svc-wild", "svc-wild"),
            ("A.Example.Com", "svc-wild", "svc-wild"),
            ("a.b.c.example.com", "svc-wild", "svc-wild"),
            ("x.b.example.com", "svc-wild-b", "svc-wild-b"),
            ("y.x.b.example.com:80", "svc-wild-b", "svc-wild-b"),
            // `*.b.example.com` needs something before `.b.example.com`.
            ("b.example.com", "svc-wild", "svc-wild"),
            ("foo-api.example.com", "svc-dash", "svc-dash"),
            // `*-api.example.com` needs something before `-api`.
            ("-api.example.com", "svc-wild", "svc-wild"),
            // The wildcard covers `[a-z0-9-.]` only.
            ("a_b.example.com", "svc-star", "map-default"),
            ("ported.example.com:8080", "svc-ported", "svc-ported"),
            ("ported.example.com:9090", "svc-wild", "svc-wild"),
            ("ported.example.com", "svc-wild", "svc-wild"),
            ("example.org", "svc-star", "map-default"),
            ("example.com.evil.org", "svc-star", "map-default"),
            ("notexample.com", "svc-star", "map-default"),
            ("", "svc-star", "map-default"),
            ("[::1]:8080", "svc-star", "map-default"),
            ("10.0.0.1", "svc-star", "map-default"),
        ];
        for (host, starred, plain) in cases {
            let r = get("http", host, "/", None);
            assert_eq!(route(&with_star, &r), service(starred), "{host} (with *)");
            assert_eq!(route(&without_star, &r), service(plain), "{host} (without *)");
        }
    }

    fn path_map(reversed: bool) -> Obj {
        let mut rules = vec![
            json!({"paths": ["/foo/*"], "service": bs("foo-glob")}),
            json!({"paths": ["/foo"], "service": bs("foo-exact")}),
            json!({"paths": ["/foo/bar/*", "/baz"], "service": bs("foobar-glob")}),
            json!({"paths": ["/static/x.css"], "service": bs("css")}),
            json!({"paths": ["/a/b/c/*"], "service": bs("abc")}),
            json!({"paths": ["/a/b/*"], "service": bs("ab")}),
        ];
        if reversed {
            rules.reverse();
        }
        obj(json!({
            "defaultService": bs("map-default"),
            "hostRules": [{"hosts": ["example.com"], "pathMatcher": "pm"}],
            "pathMatchers": [{"name": "pm", "defaultService": bs("pm-default"), "pathRules": rules}],
        }))
    }

    #[test]
    fn path_selection() {
        // (path, query, expected)
        let cases = [
            ("/foo", None, "foo-exact"),
            ("/foo/", None, "foo-glob"),
            ("/foo/x", None, "foo-glob"),
            ("/foo/x/y", None, "foo-glob"),
            ("/foobar", None, "pm-default"),
            ("/foo/bar", None, "foo-glob"),
            ("/foo/bar/", None, "foobar-glob"),
            ("/foo/bar/baz", None, "foobar-glob"),
            ("/baz", None, "foobar-glob"),
            ("/baz/", None, "pm-default"),
            ("/static/x.css", None, "css"),
            ("/static/x.css/", None, "pm-default"),
            ("/static/", None, "pm-default"),
            ("/a/b/c/d", None, "abc"),
            ("/a/b/c", None, "ab"),
            ("/a/b/", None, "ab"),
            ("/a/b", None, "pm-default"),
            ("/", None, "pm-default"),
            // The query never takes part.
            ("/foo", Some("next=/foo/bar/"), "foo-exact"),
            ("/foobar", Some("x=/foo"), "pm-default"),
            // Should a caller leave the query or a fragment in the path, it is cut off.
            ("/foo?x=/foo/", None, "foo-exact"),
            ("/foo#top", None, "foo-exact"),
            // As sent: case-sensitive, no percent-decoding, no normalization.
            ("/FOO", None, "pm-default"),
            ("/fo%6F", None, "pm-default"),
            ("/foo%2Fx", None, "pm-default"),
            ("//foo/x", None, "pm-default"),
            ("/foo/../a/b/c/d", None, "foo-glob"),
        ];
        for reversed in [false, true] {
            let map = path_map(reversed);
            for (path, query, want) in cases {
                let r = get("https", "example.com", path, query);
                assert_eq!(
                    route(&map, &r),
                    service(want),
                    "{path} ?{query:?} reversed={reversed}"
                );
            }
        }
        // Another host: the map's default, whatever the path.
        assert_eq!(
            route(&path_map(false), &get("http", "other.com", "/foo", None)),
            service("map-default")
        );
    }

    #[test]
    fn exact_path_wins_a_tie_with_a_glob() {
        for rules in [
            json!([{"paths": ["/foo/*"], "service": bs("glob")}, {"paths": ["/foo/"], "service": bs("exact")}]),
            json!([{"paths": ["/foo/"], "service": bs("exact")}, {"paths": ["/foo/*"], "service": bs("glob")}]),
        ] {
            let map = obj(json!({
                "defaultService": bs("d"),
                "hostRules": [{"hosts": ["*"], "pathMatcher": "pm"}],
                "pathMatchers": [{"name": "pm", "defaultService": bs("pmd"), "pathRules": rules}],
            }));
            let at = |p: &str| route(&map, &get("http", "h", p, None));
            assert_eq!(at("/foo/"), service("exact"));
            assert_eq!(at("/foo/x"), service("glob"));
            assert_eq!(at("/foo"), service("pmd"));
        }
    }

    #[test]
    fn defaults_and_no_route() {
        let redirect_to = |host: &str| {
            Decision::Redirect(Redirect {
                status: 301,
                scheme: "http".into(),
                host: host.into(),
                port: Some(80),
                path: "/p".into(),
                query: None,
            })
        };
        // (map, host, expected)
        let cases = [
            (json!({"defaultService": bs("d")}), "any", service("d")),
            (
                json!({"defaultUrlRedirect": {"hostRedirect": "elsewhere.com"}}),
                "any",
                redirect_to("elsewhere.com"),
            ),
            (
                json!({"defaultRouteAction": {"weightedBackendServices": [
                    {"backendService": bs("first"), "weight": 1},
                    {"backendService": bs("second"), "weight": 99}]}}),
                "any",
                service("first"),
            ),
            (json!({}), "any", Decision::NoRoute),
            (
                json!({"defaultRouteAction": {"urlRewrite": {"pathPrefixRewrite": "/"}}}),
                "any",
                Decision::NoRoute,
            ),
            // A matched host rule uses its path matcher's default, not the map's.
            (
                json!({"defaultService": bs("d"),
                       "hostRules": [{"hosts": ["h"], "pathMatcher": "pm"}],
                       "pathMatchers": [{"name": "pm", "defaultUrlRedirect": {"hostRedirect": "pm.com"},
                                         "pathRules": [{"paths": ["/x"], "service": bs("x")}]}]}),
                "h",
                redirect_to("pm.com"),
            ),
            (
                json!({"defaultService": bs("d"),
                       "hostRules": [{"hosts": ["h"], "pathMatcher": "pm"}],
                       "pathMatchers": [{"name": "pm", "defaultRouteAction": {"weightedBackendServices": [
                           {"backendService": bs("w"), "weight": 100}]}}]}),
                "h",
                service("w"),
            ),
            // Inconsistent maps the API would refuse: nothing to route to.
            (
                json!({"defaultService": bs("d"),
                       "hostRules": [{"hosts": ["h"], "pathMatcher": "missing"}]}),
                "h",
                Decision::NoRoute,
            ),
            (
                json!({"defaultService": bs("d"),
                       "hostRules": [{"hosts": ["h"], "pathMatcher": "pm"}],
                       "pathMatchers": [{"name": "pm"}]}),
                "h",
                Decision::NoRoute,
            ),
        ];
        for (i, (map, host, want)) in cases.into_iter().enumerate() {
            assert_eq!(route(&obj(map), &get("http", host, "/p", None)), want, "case {i}");
        }
    }

    /// A map whose every path is redirected by `action` (as a path rule `/*`).
    fn redirect_map(action: Value) -> Obj {
        obj(json!({
            "defaultService": bs("d"),
            "hostRules": [{"hosts": ["*"], "pathMatcher": "pm"}],
            "pathMatchers": [{"name": "pm", "defaultService": bs("pmd"),
                              "pathRules": [{"paths": ["/*"], "urlRedirect": action}]}],
        }))
    }

    fn expect_redirect(d: Decision) -> Redirect {
        match d {
            Decision::Redirect(r) => r,
            other => panic!("expected a redirect, got {other:?}"),
        }
    }

    #[test]
    fn redirect_status_codes() {
        let cases = [
            (json!({"httpsRedirect": true}), 301),
            (
                json!({"httpsRedirect": true, "redirectResponseCode": "MOVED_PERMANENTLY_DEFAULT"}),
                301,
            ),
            (
                json!({"httpsRedirect": true, "redirectResponseCode": "FOUND"}),
                302,
            ),
            (
                json!({"httpsRedirect": true, "redirectResponseCode": "SEE_OTHER"}),
                303,
            ),
            (
                json!({"httpsRedirect": true, "redirectResponseCode": "TEMPORARY_REDIRECT"}),
                307,
            ),
            (
                json!({"httpsRedirect": true, "redirectResponseCode": "PERMANENT_REDIRECT"}),
                308,
            ),
        ];
        for (action, status) in cases {
            let map = redirect_map(action.clone());
            let r = expect_redirect(route(&map, &get("http", "h.com", "/", None)));
            assert_eq!(r.status, status, "{action}");
        }
    }

    #[test]
    fn redirect_targets() {
        let to_8443 = |p: u16| match p {
            443 => 8443,
            80 => 8080,
            other => other,
        };
        // (action, request, Location as Google sends it, Location with privileged ports mapped)
        let cases = [
            // https redirect: same host (port dropped, case kept), path and query; no `:443`.
            (
                json!({"httpsRedirect": true}),
                get("http", "Example.com:80", "/a/b", Some("x=1&y=2")),
                "https://Example.com/a/b?x=1&y=2",
                "https://Example.com:8443/a/b?x=1&y=2",
            ),
            (
                json!({"httpsRedirect": true, "stripQuery": false}),
                get("http", "example.com", "/", Some("q")),
                "https://example.com/?q",
                "https://example.com:8443/?q",
            ),
            (
                json!({"httpsRedirect": true, "stripQuery": true}),
                get("http", "example.com", "/a", Some("q=1")),
                "https://example.com/a",
                "https://example.com:8443/a",
            ),
            (
                json!({"httpsRedirect": true}),
                get("http", "example.com", "/a", None),
                "https://example.com/a",
                "https://example.com:8443/a",
            ),
            (
                json!({"httpsRedirect": true}),
                get("http", "[::1]:80", "/a", None),
                "https://[::1]/a",
                "https://[::1]:8443/a",
            ),
            // Without httpsRedirect the scheme stays.
            (
                json!({"hostRedirect": "new.example.com"}),
                get("http", "old.example.com:8080", "/a/b", Some("x=1")),
                "http://new.example.com/a/b?x=1",
                "http://new.example.com:8080/a/b?x=1",
            ),
            (
                json!({"hostRedirect": "new.example.com:9000"}),
                get("http", "old.example.com", "/a", None),
                "http://new.example.com:9000/a",
                "http://new.example.com:9000/a",
            ),
            (
                json!({"pathRedirect": "/moved"}),
                get("https", "example.com", "/a/b", Some("x=1")),
                "https://example.com/moved?x=1",
                "https://example.com:8443/moved?x=1",
            ),
            (
                json!({"pathRedirect": "/moved", "stripQuery": true, "httpsRedirect": true,
                       "hostRedirect": "n.com"}),
                get("http", "example.com", "/a/b", Some("x=1")),
                "https://n.com/moved",
                "https://n.com:8443/moved",
            ),
            // On the `/*` rule the matched prefix is `/`.
            (
                json!({"prefixRedirect": "/v2/"}),
                get("http", "example.com", "/a/b", Some("x=1")),
                "http://example.com/v2/a/b?x=1",
                "http://example.com:8080/v2/a/b?x=1",
            ),
        ];
        for (action, req, google, mapped) in cases {
            let r = expect_redirect(route(&redirect_map(action.clone()), &req));
            assert_eq!(r.location(|p| p), google, "{action}");
            assert_eq!(r.location(to_8443), mapped, "{action}");
        }
    }

    #[test]
    fn https_redirect_fields() {
        let r = expect_redirect(route(
            &redirect_map(json!({"httpsRedirect": true})),
            &get("http", "Example.com:80", "/a/b", Some("x=1")),
        ));
        assert_eq!(
            r,
            Redirect {
                status: 301,
                scheme: "https".into(),
                host: "Example.com".into(),
                port: Some(443),
                path: "/a/b".into(),
                query: Some("x=1".into()),
            }
        );
    }

    #[test]
    fn prefix_redirect_replaces_what_the_rule_matched() {
        let map = obj(json!({
            "defaultService": bs("d"),
            "hostRules": [{"hosts": ["h.com"], "pathMatcher": "pm"}],
            "pathMatchers": [{"name": "pm",
                "defaultUrlRedirect": {"prefixRedirect": "/fallback"},
                "pathRules": [
                    {"paths": ["/old/*"], "urlRedirect": {"prefixRedirect": "/new/"}},
                    {"paths": ["/exact"], "urlRedirect": {"prefixRedirect": "/other"}},
                    {"paths": ["/keep/*"], "urlRedirect": {"hostRedirect": "k.com"}},
                ]}],
        }));
        // (path, query, Location)
        let cases = [
            ("/old/", None, "http://h.com/new/"),
            ("/old/a/b", Some("q=1"), "http://h.com/new/a/b?q=1"),
            ("/exact", None, "http://h.com/other"),
            ("/keep/x", None, "http://k.com/keep/x"),
            ("/elsewhere", None, "http://h.com/fallback/elsewhere"),
        ];
        for (path, query, want) in cases {
            let r = expect_redirect(route(&map, &get("http", "h.com", path, query)));
            assert_eq!(r.location(|p| p), want, "{path}");
        }
    }

    #[test]
    fn route_rules_minimal() {
        let map = obj(json!({
            "defaultService": bs("d"),
            "hostRules": [{"hosts": ["*"], "pathMatcher": "pm"}],
            "pathMatchers": [{"name": "pm", "defaultService": bs("pmd"), "routeRules": [
                {"priority": 20, "matchRules": [{"prefixMatch": "/api/"}], "service": bs("api")},
                {"priority": 10, "matchRules": [{"prefixMatch": "/api/v2/"}], "service": bs("v2")},
                {"priority": 5, "matchRules": [{"prefixMatch": "/api/", "headerMatches": [
                    {"headerName": "x-canary", "exactMatch": "1"}]}], "service": bs("canary")},
                {"priority": 30, "matchRules": [{"fullPathMatch": "/Login", "ignoreCase": true},
                                                {"fullPathMatch": "/signin"}], "service": bs("login")},
                {"priority": 40, "matchRules": [{"prefixMatch": "/old/"}],
                 "urlRedirect": {"prefixRedirect": "/new/", "redirectResponseCode": "FOUND"}},
                {"priority": 50, "matchRules": [{"regexMatch": "/r.*"}], "service": bs("regex")},
                {"priority": 60, "matchRules": [{"prefixMatch": "/w"}], "routeAction": {
                    "weightedBackendServices": [{"backendService": bs("w1"), "weight": 50},
                                                {"backendService": bs("w2"), "weight": 50}]}},
            ]}],
        }));
        let cases = [
            ("/api/v1", service("api")),
            ("/api/v2/x", service("v2")),
            ("/API/v1", service("pmd")),
            ("/login", service("login")),
            ("/LOGIN", service("login")),
            ("/signin", service("login")),
            ("/SignIn", service("pmd")),
            ("/rest", service("pmd")),
            ("/wx", service("w1")),
            ("/", service("pmd")),
        ];
        for (path, want) in cases {
            assert_eq!(route(&map, &get("http", "h", path, None)), want, "{path}");
        }
        let r = expect_redirect(route(&map, &get("http", "h", "/old/a", Some("k=v"))));
        assert_eq!(
            (r.status, r.location(|p| p)),
            (302, "http://h/new/a?k=v".to_string())
        );
    }

    #[test]
    fn location_writes_only_non_default_ports() {
        let base = Redirect {
            status: 301,
            scheme: "https".into(),
            host: "h".into(),
            port: Some(443),
            path: "/p".into(),
            query: None,
        };
        let cases = [
            (base.clone(), "https://h/p"),
            (
                Redirect {
                    port: None,
                    ..base.clone()
                },
                "https://h/p",
            ),
            (
                Redirect {
                    port: Some(8443),
                    ..base.clone()
                },
                "https://h:8443/p",
            ),
            (
                Redirect {
                    scheme: "http".into(),
                    port: Some(80),
                    ..base.clone()
                },
                "http://h/p",
            ),
            (
                Redirect {
                    scheme: "http".into(),
                    port: Some(443),
                    ..base.clone()
                },
                "http://h:443/p",
            ),
            (
                Redirect {
                    query: Some("a=b".into()),
                    ..base.clone()
                },
                "https://h/p?a=b",
            ),
        ];
        for (r, want) in cases {
            assert_eq!(r.location(|p| p), want);
        }
    }
}
