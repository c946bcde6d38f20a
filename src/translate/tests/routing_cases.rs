//! Default backend, hosts, paths, merging, collisions and URL-map limits.

use super::*;
use cloud::model::{BackendKey, BackendProtocol, HealthCheck, HostMatch, PathMatch};

fn key(service: &str, port: u16) -> BackendKey {
    BackendKey::new("default", service, port)
}

/// The only path of the only host.
fn only_path(lb: &LoadBalancer) -> (&str, PathMatch) {
    assert_eq!(lb.routes.hosts.len(), 1, "hosts: {:?}", lb.routes.hosts);
    let paths = &lb.routes.hosts[0].paths;
    assert_eq!(paths.len(), 1, "paths: {paths:?}");
    (paths[0].path.as_str(), paths[0].kind)
}

/// A one-rule Ingress for `a.example.com` with one path to echo:80.
fn one_path(p: &str, path_type: &str) -> Value {
    ingress(json!({"rules": [rule("a.example.com", json!([path(p, path_type, svc("echo", 80))]))]}))
}

fn one_host(host: &str) -> Value {
    ingress(json!({"rules": [rule(host, json!([path("/", "Prefix", svc("echo", 80))]))]}))
}

const HOST: &str = "spec.rules[0].host";
const PATH0: &str = "spec.rules[0].http.paths[0].path";
const PATH1: &str = "spec.rules[0].http.paths[1].path";

#[test]
fn routing_cases() {
    let cases = vec![
        case(
            "default backend only",
            ingress(default_only()),
            ok([], |lb| {
                assert_eq!(
                    lb.key,
                    cloud::model::LoadBalancerKey::new("default", "test", "uid-1")
                );
                assert_eq!(lb.routes.default_backend, Some(key("echo", 80)));
                assert!(lb.routes.hosts.is_empty());
                assert_eq!(lb.backends.len(), 1);
                let b = &lb.backends[0];
                assert_eq!(
                    (b.node_port().unwrap_or(0), b.protocol),
                    (30080, BackendProtocol::Http)
                );
                assert_eq!(b.health_check, HealthCheck::default());
                assert_eq!((b.timeout_sec, b.connection_draining_timeout_sec), (30, 0));
                assert!(lb.frontends.http && lb.frontends.https.is_none());
                assert_eq!(lb.frontends.redirect_to_https, None);
                assert_eq!(lb.address, cloud::model::AddressRequest::Ephemeral);
            }),
        ),
        case(
            "exact host without default backend",
            one_path("/foo", "Prefix"),
            ok([], |lb| {
                assert_eq!(lb.routes.default_backend, None);
                assert_eq!(lb.routes.hosts[0].host, HostMatch::Exact("a.example.com".into()));
                assert_eq!(lb.routes.hosts[0].paths[0].backend, key("echo", 80));
                assert_eq!(only_path(lb), ("/foo", PathMatch::Prefix));
            }),
        ),
        case(
            "wildcard host",
            one_host("*.example.com"),
            ok([], |lb| {
                assert_eq!(lb.routes.hosts[0].host, HostMatch::Wildcard("example.com".into()))
            }),
        ),
        case(
            "empty host matches any host",
            ingress(json!({"rules": [{"http": {"paths": [path("/", "Prefix", svc("echo", 80))]}}]})),
            ok([], |lb| assert_eq!(lb.routes.hosts[0].host, HostMatch::Any)),
        ),
        case(
            "upper-case host",
            one_host("A.example.com"),
            errors([(
                HOST,
                r#""A.example.com" is not a valid host: it must be lower case"#,
            )]),
        ),
        case(
            "IP address host",
            one_host("10.0.0.1"),
            errors([(
                HOST,
                r#""10.0.0.1" is not a valid host: it must be a DNS name, not an IP address"#,
            )]),
        ),
        case(
            "host with a port",
            one_host("a.example.com:8080"),
            errors([(
                HOST,
                r#""a.example.com:8080" is not a valid host: it must not include a port"#,
            )]),
        ),
        case(
            "bare star host",
            one_host("*"),
            errors([(
                HOST,
                r#""*" is not a valid host: leave the host empty to match every host"#,
            )]),
        ),
        case(
            "wildcard not in the first label",
            one_host("a.*.example.com"),
            errors([(
                HOST,
                r#""a.*.example.com" is not a valid host: a wildcard must be the whole first label, as in *.example.com"#,
            )]),
        ),
        case(
            "underscore in host",
            one_host("a_b.example.com"),
            errors([(
                HOST,
                r#""a_b.example.com" is not a valid host: it contains '_'; only lower-case letters, digits, '-' and '.' are allowed"#,
            )]),
        ),
        case(
            "trailing dot in host",
            one_host("a.example.com."),
            errors([(
                HOST,
                r#""a.example.com." is not a valid host: it has an empty label (two dots in a row, or a leading or trailing dot)"#,
            )]),
        ),
        case(
            "prefix with trailing slash is normalised",
            one_path("/foo/", "Prefix"),
            ok([], |lb| assert_eq!(only_path(lb), ("/foo", PathMatch::Prefix))),
        ),
        case(
            "prefix root",
            one_path("/", "Prefix"),
            ok([], |lb| assert_eq!(only_path(lb), ("/", PathMatch::Prefix))),
        ),
        case(
            "exact path kept as written",
            one_path("/foo/", "Exact"),
            ok([], |lb| assert_eq!(only_path(lb), ("/foo/", PathMatch::Exact))),
        ),
        case(
            "exact path with a star",
            one_path("/foo/*", "Exact"),
            errors([(
                PATH0,
                r#""/foo/*" is not a valid path: '*' is only allowed with pathType ImplementationSpecific"#,
            )]),
        ),
        case(
            "relative prefix path",
            one_path("foo", "Prefix"),
            errors([(PATH0, r#""foo" is not a valid path: it must start with '/'"#)]),
        ),
        case(
            "prefix path with a double slash",
            one_path("/a//b", "Prefix"),
            errors([(PATH0, r#""/a//b" is not a valid path: it must not contain "//""#)]),
        ),
        case(
            "exact path ending in /..",
            one_path("/a/..", "Exact"),
            errors([(
                PATH0,
                r#""/a/.." is not a valid path: it must not end with "/..""#,
            )]),
        ),
        case(
            "implementation-specific glob passes through",
            one_path("/foo/*", "ImplementationSpecific"),
            ok([], |lb| assert_eq!(only_path(lb), ("/foo/*", PathMatch::Glob))),
        ),
        case(
            "missing pathType is ImplementationSpecific",
            ingress(
                json!({"rules": [rule("a.example.com", json!([{"path": "/foo", "backend": svc("echo", 80)}]))]}),
            ),
            ok([], |lb| assert_eq!(only_path(lb), ("/foo", PathMatch::Glob))),
        ),
        case(
            "empty glob path routes everything",
            ingress(
                json!({"rules": [rule("a.example.com", json!([{"pathType": "ImplementationSpecific", "backend": svc("echo", 80)}]))]}),
            ),
            ok([], |lb| assert_eq!(only_path(lb), ("/*", PathMatch::Glob))),
        ),
        case(
            "glob with a star in the middle",
            one_path("/foo/*/bar", "ImplementationSpecific"),
            errors([(
                PATH0,
                r#""/foo/*/bar" is not a valid path: '*' is only allowed as a final "/*""#,
            )]),
        ),
        case(
            "glob star not after a slash",
            one_path("/foo*", "ImplementationSpecific"),
            errors([(
                PATH0,
                r#""/foo*" is not a valid path: '*' is only allowed as a final "/*""#,
            )]),
        ),
        case(
            "query in a path",
            one_path("/foo?x=1", "ImplementationSpecific"),
            errors([(
                PATH0,
                r#""/foo?x=1" is not a valid path: it must not contain '?' (the load balancer matches the path without query or fragment)"#,
            )]),
        ),
        case(
            "unknown pathType",
            one_path("/foo", "Regex"),
            errors([(
                "spec.rules[0].http.paths[0].pathType",
                r#""Regex" is not a path type; use Exact, Prefix or ImplementationSpecific"#,
            )]),
        ),
        case(
            "same host in two rules is merged",
            ingress(json!({"rules": [
                rule("a.example.com", json!([path("/foo", "Prefix", svc("echo", 80))])),
                rule("a.example.com", json!([path("/bar", "Prefix", svc("other", 8080))])),
            ]})),
            ok(
                [(
                    "spec.rules[1].host",
                    r#"host "a.example.com" is also the host of spec.rules[0]; their paths are merged"#,
                )],
                |lb| {
                    assert_eq!(lb.routes.hosts.len(), 1);
                    let paths: Vec<&str> = lb.routes.hosts[0].paths.iter().map(|p| p.path.as_str()).collect();
                    assert_eq!(paths, ["/foo", "/bar"]);
                    let keys: Vec<_> = lb.backends.iter().map(|b| b.key.clone()).collect();
                    assert_eq!(keys, [key("echo", 80), key("other", 8080)]);
                },
            ),
        ),
        case(
            "hosts in order of first appearance",
            ingress(json!({"rules": [
                rule("b.example.com", json!([path("/", "Prefix", svc("echo", 80))])),
                rule("a.example.com", json!([path("/", "Prefix", svc("echo", 80))])),
                rule("b.example.com", json!([path("/x", "Exact", svc("echo", 80))])),
            ]})),
            ok(
                [(
                    "spec.rules[2].host",
                    r#"host "b.example.com" is also the host of spec.rules[0]; their paths are merged"#,
                )],
                |lb| {
                    let hosts: Vec<String> = lb.routes.hosts.iter().map(|h| h.host.to_string()).collect();
                    assert_eq!(hosts, ["b.example.com", "a.example.com"]);
                    assert_eq!(lb.backends.len(), 1);
                },
            ),
        ),
        case(
            "same path twice in one rule",
            ingress(json!({"rules": [rule("a.example.com", json!([
                path("/foo", "Prefix", svc("echo", 80)),
                path("/foo", "Prefix", svc("other", 8080)),
            ]))]})),
            errors([(
                PATH1,
                r#""/foo" (Prefix) collides with spec.rules[0].http.paths[0] (Prefix) on "/foo" under host "a.example.com"; each path may appear once"#,
            )]),
        ),
        case(
            "same path across merged rules",
            ingress(json!({"rules": [
                rule("a.example.com", json!([path("/foo", "Exact", svc("echo", 80))])),
                rule("a.example.com", json!([path("/foo", "Exact", svc("other", 8080))])),
            ]})),
            errors([(
                "spec.rules[1].http.paths[0].path",
                r#""/foo" (Exact) collides with spec.rules[0].http.paths[0] (Exact) on "/foo" under host "a.example.com"; each path may appear once"#,
            )]),
        ),
        case(
            "prefix /foo and /foo/ are the same path",
            ingress(json!({"rules": [rule("a.example.com", json!([
                path("/foo", "Prefix", svc("echo", 80)),
                path("/foo/", "Prefix", svc("other", 8080)),
            ]))]})),
            errors([(
                PATH1,
                r#""/foo/" (Prefix) collides with spec.rules[0].http.paths[0] (Prefix) on "/foo" under host "a.example.com"; each path may appear once"#,
            )]),
        ),
        case(
            "prefix collides with the glob it implies",
            ingress(json!({"rules": [rule("a.example.com", json!([
                path("/foo", "Prefix", svc("echo", 80)),
                path("/foo/*", "ImplementationSpecific", svc("other", 8080)),
            ]))]})),
            errors([(
                PATH1,
                r#""/foo/*" (ImplementationSpecific) collides with spec.rules[0].http.paths[0] (Prefix) on "/foo/*" under host "a.example.com"; each path may appear once"#,
            )]),
        ),
        case(
            "prefix root collides with glob /*",
            ingress(json!({"rules": [{"http": {"paths": [
                path("/", "Prefix", svc("echo", 80)),
                path("/*", "ImplementationSpecific", svc("other", 8080)),
            ]}}]})),
            errors([(
                PATH1,
                r#""/*" (ImplementationSpecific) collides with spec.rules[0].http.paths[0] (Prefix) on "/*" under host "*"; each path may appear once"#,
            )]),
        ),
        case(
            "exact beside prefix of the same path is legal",
            ingress(json!({"rules": [rule("a.example.com", json!([
                path("/foo", "Prefix", svc("echo", 80)),
                path("/foo", "Exact", svc("other", 8080)),
            ]))]})),
            ok([], |lb| {
                let kinds: Vec<_> = lb.routes.hosts[0]
                    .paths
                    .iter()
                    .map(|p| (p.path.as_str(), p.kind))
                    .collect();
                assert_eq!(kinds, [("/foo", PathMatch::Prefix), ("/foo", PathMatch::Exact)]);
            }),
        ),
        case(
            "exact and glob of the same path collide",
            ingress(json!({"rules": [rule("a.example.com", json!([
                path("/foo", "Exact", svc("echo", 80)),
                path("/foo", "ImplementationSpecific", svc("other", 8080)),
            ]))]})),
            errors([(
                PATH1,
                r#""/foo" (ImplementationSpecific) collides with spec.rules[0].http.paths[0] (Exact) on "/foo" under host "a.example.com"; each path may appear once"#,
            )]),
        ),
        case(
            "same path under different hosts",
            ingress(json!({"rules": [
                rule("a.example.com", json!([path("/foo", "Prefix", svc("echo", 80))])),
                rule("b.example.com", json!([path("/foo", "Prefix", svc("echo", 80))])),
            ]})),
            ok([], |lb| assert_eq!(lb.routes.hosts.len(), 2)),
        ),
        case(
            "host without paths goes to the default backend",
            ingress(json!({"defaultBackend": svc("echo", 80), "rules": [{"host": "b.example.com"}]})),
            ok(
                [(
                    "spec.rules[0].http",
                    r#"has no paths; requests for host "b.example.com" are served by spec.defaultBackend"#,
                )],
                |lb| assert!(lb.routes.hosts.is_empty()),
            ),
        ),
        case(
            "host without paths beside the same host with paths",
            ingress(json!({"rules": [
                {"host": "a.example.com"},
                rule("a.example.com", json!([path("/", "Prefix", svc("echo", 80))])),
            ]})),
            ok([], |lb| assert_eq!(lb.routes.hosts.len(), 1)),
        ),
        case(
            "rule with neither host nor paths",
            ingress(json!({"defaultBackend": svc("echo", 80), "rules": [{}]})),
            ok(
                [(
                    "spec.rules[0].http",
                    "has neither host nor paths; it does nothing",
                )],
                |lb| assert!(lb.routes.hosts.is_empty()),
            ),
        ),
        case(
            "nothing to serve",
            ingress(json!({"rules": [{"host": "b.example.com"}]})),
            errors([(
                "spec",
                "names neither a defaultBackend nor any rule with paths; there is nothing to serve",
            )]),
        ),
        case(
            "empty spec",
            ingress(json!({})),
            errors([(
                "spec",
                "names neither a defaultBackend nor any rule with paths; there is nothing to serve",
            )]),
        ),
        case(
            "missing name",
            json!({"metadata": {"namespace": "default"}, "spec": default_only()}),
            errors([("metadata.name", "is required")]),
        ),
        Case {
            config: |c| c.limits.max_host_rules = 2,
            ..case(
                "too many hosts",
                ingress(json!({"rules": [
                    rule("a.example.com", json!([path("/", "Prefix", svc("echo", 80))])),
                    rule("b.example.com", json!([path("/", "Prefix", svc("echo", 80))])),
                    rule("c.example.com", json!([path("/", "Prefix", svc("echo", 80))])),
                ]})),
                errors([(
                    "spec.rules",
                    "3 distinct hosts exceed the limit of 2 host rules per load balancer; split the Ingress",
                )]),
            )
        },
        Case {
            config: |c| c.limits.max_path_rules_per_host = 2,
            ..case(
                "too many paths for one host",
                ingress(json!({"rules": [rule("a.example.com", json!([
                    path("/a", "Prefix", svc("echo", 80)),
                    path("/b", "Prefix", svc("echo", 80)),
                    path("/c", "Prefix", svc("echo", 80)),
                ]))]})),
                errors([(
                    "spec.rules[0].http.paths",
                    r#"host "a.example.com" has 3 paths, over the limit of 2 path rules per host"#,
                )]),
            )
        },
        Case {
            config: |c| c.limits.max_host_rules = 2,
            ..case(
                "hosts at the limit",
                ingress(json!({"rules": [
                    rule("a.example.com", json!([path("/", "Prefix", svc("echo", 80))])),
                    rule("b.example.com", json!([path("/", "Prefix", svc("echo", 80))])),
                    rule("a.example.com", json!([path("/x", "Prefix", svc("echo", 80))])),
                ]})),
                ok(
                    [(
                        "spec.rules[2].host",
                        r#"host "a.example.com" is also the host of spec.rules[0]; their paths are merged"#,
                    )],
                    |lb| assert_eq!(lb.routes.hosts.len(), 2),
                ),
            )
        },
        case(
            "every error at once",
            ingress(json!({"rules": [
                rule("Bad.example.com", json!([path("/", "Prefix", svc("echo", 80))])),
                rule("a.example.com", json!([
                    path("foo", "Exact", svc("echo", 80)),
                    path("/bar", "Prefix", svc("nope", 80)),
                ])),
            ]})),
            errors([
                (
                    HOST,
                    r#""Bad.example.com" is not a valid host: it must be lower case"#,
                ),
                (
                    "spec.rules[1].http.paths[0].path",
                    r#""foo" is not a valid path: it must start with '/'"#,
                ),
                (
                    "spec.rules[1].http.paths[1].backend.service.name",
                    "Service default/nope not found",
                ),
            ]),
        ),
    ];
    run(cases);
}
