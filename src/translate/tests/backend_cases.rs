//! Backends: Service lookup, port resolution, protocol, and the Service's annotations.

use super::*;
use cloud::model::{BackendKey, BackendProtocol, HealthCheck};

const NAME: &str = "spec.defaultBackend.service.name";
const PORT: &str = "spec.defaultBackend.service.port";
const PORT_NAME: &str = "spec.defaultBackend.service.port.name";
const PORT_NUMBER: &str = "spec.defaultBackend.service.port.number";

/// An Ingress whose default backend is `backend`.
fn default_to(backend: Value) -> Value {
    ingress(json!({"defaultBackend": backend}))
}

/// The only backend of the model.
fn only(lb: &LoadBalancer) -> &cloud::model::Backend {
    assert_eq!(lb.backends.len(), 1, "backends: {:?}", lb.backends);
    &lb.backends[0]
}

/// Adds Service `proto` with one port per appProtocol value.
fn protocols(world: &mut Snapshot) {
    world.insert_service(service(
        "proto",
        "NodePort",
        json!([
            {"name": "a", "port": 1, "nodePort": 30001, "appProtocol": "HTTP2"},
            {"name": "b", "port": 2, "nodePort": 30002, "appProtocol": "kubernetes.io/h2c"},
            {"name": "c", "port": 3, "nodePort": 30003, "appProtocol": "grpc"},
            {"name": "d", "port": 4, "nodePort": 30004, "appProtocol": "kubernetes.io/wss"},
            {"name": "e", "port": 5, "nodePort": 30005, "appProtocol": "HTTP"},
            {"name": "u", "port": 53, "nodePort": 30053, "protocol": "UDP"},
        ]),
    ));
    world.insert_service(service("nonode", "LoadBalancer", json!([{"port": 80}])));
}

/// Service `ap` (port 80 `web`, appProtocol http) with this app-protocols annotation.
fn app_protocols(value: &str) -> Service {
    service_with(
        "ap",
        "NodePort",
        json!([{"name": "web", "port": 80, "nodePort": 30090, "appProtocol": "http"}]),
        json!({"cloud.google.com/app-protocols": value}),
    )
}

/// Service `hc` (port 80, node port 30091) with these annotations.
fn annotated_service(annotations: Value) -> Service {
    service_with(
        "hc",
        "NodePort",
        json!([{"port": 80, "nodePort": 30091}]),
        annotations,
    )
}

fn hc_error(key: &str, message: &str) -> String {
    format!("Service default/hc: metadata.annotations[\"cloud-lb-controller.io/{key}\"]: {message}")
}

#[test]
fn backend_cases() {
    let cases = vec![
        case(
            "port by name",
            default_to(svc_named("echo", "http")),
            ok([], |lb| {
                assert_eq!(only(lb).key, BackendKey::new("default", "echo", 80))
            }),
        ),
        case(
            "no port of that name",
            default_to(svc_named("echo", "htp")),
            errors([(PORT_NAME, r#"Service default/echo has no port named "htp""#)]),
        ),
        case(
            "no port of that number",
            default_to(svc("echo", 81)),
            errors([(PORT_NUMBER, "Service default/echo has no port 81")]),
        ),
        case(
            "missing Service",
            default_to(svc("nope", 80)),
            errors([(NAME, "Service default/nope not found")]),
        ),
        case(
            "missing Service reported at every reference",
            ingress(json!({
                "defaultBackend": svc("nope", 80),
                "rules": [rule("a.example.com", json!([path("/", "Prefix", svc("nope", 80))]))],
            })),
            errors([
                (NAME, "Service default/nope not found"),
                (
                    "spec.rules[0].http.paths[0].backend.service.name",
                    "Service default/nope not found",
                ),
            ]),
        ),
        case(
            "ClusterIP Service",
            default_to(svc("internal", 80)),
            errors([(
                NAME,
                r#"Service default/internal is of type ClusterIP; it must be NodePort or LoadBalancer (the load balancer reaches Services through node ports), or serve its pods directly with the Service annotation cloud.google.com/neg: '{"ingress": true}'"#,
            )]),
        ),
        case(
            "LoadBalancer Service",
            default_to(svc_named("lb", "web")),
            ok([], |lb| {
                assert_eq!(
                    (only(lb).key.port, only(lb).node_port().unwrap_or(0)),
                    (80, 30082)
                )
            }),
        ),
        case(
            "resource backend",
            default_to(
                json!({"resource": {"apiGroup": "storage.example.com", "kind": "Bucket", "name": "b"}}),
            ),
            errors([(
                "spec.defaultBackend.resource",
                "resource backends are not supported; use service.name and service.port",
            )]),
        ),
        case(
            "backend naming nothing",
            default_to(json!({})),
            errors([(
                "spec.defaultBackend",
                "names no backend; set service.name and service.port",
            )]),
        ),
        case(
            "empty Service name",
            default_to(svc("", 80)),
            errors([(NAME, "is empty; name the Service")]),
        ),
        case(
            "no port",
            default_to(json!({"service": {"name": "echo"}})),
            errors([(PORT, "is required; set number or name")]),
        ),
        case(
            "port number and name",
            default_to(json!({"service": {"name": "echo", "port": {"number": 80, "name": "http"}}})),
            errors([(PORT, "set either number or name, not both")]),
        ),
        case(
            "port number out of range",
            default_to(svc("echo", 70000)),
            errors([(PORT_NUMBER, "70000 is not a port number (1 to 65535)")]),
        ),
        Case {
            world: protocols,
            ..case(
                "port without nodePort",
                default_to(svc("nonode", 80)),
                errors([(
                    PORT_NUMBER,
                    r#"Service default/nonode port 80 has no nodePort (is allocateLoadBalancerNodePorts false?); or serve its pods directly with the Service annotation cloud.google.com/neg: '{"ingress": true}'"#,
                )]),
            )
        },
        Case {
            world: protocols,
            ..case(
                "UDP port",
                default_to(svc_named("proto", "u")),
                errors([(
                    PORT_NAME,
                    "Service default/proto port 53 is UDP; the load balancer needs TCP",
                )]),
            )
        },
        case(
            "appProtocol https",
            default_to(svc("echo", 443)),
            ok([], |lb| {
                assert_eq!(
                    (only(lb).protocol, only(lb).node_port().unwrap_or(0)),
                    (BackendProtocol::Https, 30443)
                )
            }),
        ),
        Case {
            world: protocols,
            ..case(
                "appProtocol HTTP2",
                default_to(svc_named("proto", "a")),
                ok([], |lb| assert_eq!(only(lb).protocol, BackendProtocol::Http2)),
            )
        },
        Case {
            world: protocols,
            ..case(
                "appProtocol HTTP in upper case",
                default_to(svc_named("proto", "e")),
                ok([], |lb| assert_eq!(only(lb).protocol, BackendProtocol::Http)),
            )
        },
        Case {
            world: protocols,
            ..case(
                "appProtocol kubernetes.io/wss",
                default_to(svc_named("proto", "d")),
                ok([], |lb| assert_eq!(only(lb).protocol, BackendProtocol::Https)),
            )
        },
        Case {
            world: protocols,
            ..case(
                "appProtocol kubernetes.io/h2c",
                default_to(svc_named("proto", "b")),
                errors([(
                    PORT_NAME,
                    r#"Service default/proto: spec.ports[1].appProtocol: "kubernetes.io/h2c" (HTTP/2 without TLS) is not supported; serve TLS and use HTTP2, or use http"#,
                )]),
            )
        },
        Case {
            world: protocols,
            ..case(
                "unknown appProtocol",
                ingress(json!({
                    "defaultBackend": svc_named("proto", "c"),
                    "rules": [rule("a.example.com", json!([path("/", "Prefix", svc("proto", 3))]))],
                })),
                errors([(
                    PORT_NAME,
                    r#"Service default/proto: spec.ports[2].appProtocol: "grpc" is not supported; use http, https or HTTP2, or set "cloud.google.com/app-protocols""#,
                )]),
            )
        },
        Case {
            world: |w| w.insert_service(app_protocols(r#"{"web":"HTTPS"}"#)),
            ..case(
                "app-protocols annotation by port name overrides appProtocol",
                default_to(svc("ap", 80)),
                ok([], |lb| assert_eq!(only(lb).protocol, BackendProtocol::Https)),
            )
        },
        Case {
            world: |w| w.insert_service(app_protocols(r#"{"80":"http2"}"#)),
            ..case(
                "app-protocols annotation by port number",
                default_to(svc_named("ap", "web")),
                ok([], |lb| assert_eq!(only(lb).protocol, BackendProtocol::Http2)),
            )
        },
        Case {
            world: |w| {
                let mut s = app_protocols("");
                s.metadata.annotations = Some(
                    [(
                        "service.alpha.kubernetes.io/app-protocols".to_owned(),
                        r#"{"web":"HTTPS"}"#.to_owned(),
                    )]
                    .into(),
                );
                w.insert_service(s)
            },
            ..case(
                "legacy app-protocols annotation",
                default_to(svc("ap", 80)),
                ok([], |lb| assert_eq!(only(lb).protocol, BackendProtocol::Https)),
            )
        },
        Case {
            world: |w| w.insert_service(app_protocols("web: HTTPS")),
            ..case(
                "app-protocols annotation not JSON",
                default_to(svc("ap", 80)),
                errors([(
                    "spec.defaultBackend.service.name",
                    r#"Service default/ap: metadata.annotations["cloud.google.com/app-protocols"]: not a JSON object of port name or number to "HTTP", "HTTPS" or "HTTP2" (expected value at line 1 column 1), e.g. {"http":"HTTPS"}"#,
                )]),
            )
        },
        Case {
            world: |w| w.insert_service(app_protocols(r#"{"web":"TCP"}"#)),
            ..case(
                "app-protocols annotation with an unknown protocol",
                default_to(svc("ap", 80)),
                errors([(
                    NAME,
                    r#"Service default/ap: metadata.annotations["cloud.google.com/app-protocols"]: port "web": "TCP" is not one of HTTP, HTTPS, HTTP2"#,
                )]),
            )
        },
        Case {
            world: |w| w.insert_service(app_protocols(r#"{"wbe":"HTTPS"}"#)),
            ..case(
                "app-protocols annotation naming no port",
                default_to(svc("ap", 80)),
                ok(
                    [(
                        NAME,
                        r#"Service default/ap: metadata.annotations["cloud.google.com/app-protocols"]: "wbe" names no port of the Service; it is ignored"#,
                    )],
                    |lb| assert_eq!(only(lb).protocol, BackendProtocol::Http),
                ),
            )
        },
        Case {
            world: |w| {
                w.insert_service(annotated_service(json!({
                    "cloud-lb-controller.io/health-check-path": "/healthz",
                    "cloud-lb-controller.io/health-check-port": "31000",
                    "cloud-lb-controller.io/health-check-host": "health.example.com",
                    "cloud-lb-controller.io/health-check-interval-sec": "10",
                    "cloud-lb-controller.io/health-check-timeout-sec": "10",
                    "cloud-lb-controller.io/healthy-threshold": "2",
                    "cloud-lb-controller.io/unhealthy-threshold": "5",
                    "cloud-lb-controller.io/backend-timeout-sec": "120",
                    "cloud-lb-controller.io/connection-draining-timeout-sec": "60",
                })))
            },
            ..case(
                "health check and timeouts from Service annotations",
                default_to(svc("hc", 80)),
                ok([], |lb| {
                    let b = only(lb);
                    assert_eq!(
                        b.health_check,
                        HealthCheck {
                            path: "/healthz".into(),
                            port: Some(31000),
                            host: Some("health.example.com".into()),
                            check_interval_sec: 10,
                            timeout_sec: 10,
                            healthy_threshold: 2,
                            unhealthy_threshold: 5,
                        }
                    );
                    assert_eq!((b.timeout_sec, b.connection_draining_timeout_sec), (120, 60));
                }),
            )
        },
        Case {
            world: |w| {
                w.insert_service(annotated_service(json!({
                    "cloud-lb-controller.io/health-check-interval-sec": "5",
                    "cloud-lb-controller.io/health-check-timeout-sec": "10",
                })))
            },
            ..case(
                "health-check timeout above its interval",
                default_to(svc("hc", 80)),
                errors([(
                    NAME,
                    &hc_error(
                        "health-check-timeout-sec",
                        "the health-check timeout (10 s) must not exceed its interval (5 s)",
                    ),
                )]),
            )
        },
        Case {
            world: |w| {
                w.insert_service(annotated_service(
                    json!({"cloud-lb-controller.io/health-check-interval-sec": "3"}),
                ))
            },
            ..case(
                "interval below the default timeout",
                default_to(svc("hc", 80)),
                errors([(
                    NAME,
                    &hc_error(
                        "health-check-interval-sec",
                        "the health-check timeout (5 s) must not exceed its interval (3 s)",
                    ),
                )]),
            )
        },
        Case {
            world: |w| {
                w.insert_service(annotated_service(
                    json!({"cloud-lb-controller.io/health-check-timeout-sec": "abc"}),
                ))
            },
            ..case(
                "health-check timeout not a number",
                default_to(svc("hc", 80)),
                errors([(
                    NAME,
                    &hc_error(
                        "health-check-timeout-sec",
                        r#""abc" is not a whole number of seconds"#,
                    ),
                )]),
            )
        },
        Case {
            world: |w| {
                w.insert_service(annotated_service(
                    json!({"cloud-lb-controller.io/health-check-path": "healthz"}),
                ))
            },
            ..case(
                "relative health-check path",
                default_to(svc("hc", 80)),
                errors([(
                    NAME,
                    &hc_error("health-check-path", r#""healthz" must start with '/'"#),
                )]),
            )
        },
        Case {
            world: |w| {
                w.insert_service(annotated_service(json!({
                    "cloud-lb-controller.io/healthy-threshold": "0",
                    "cloud-lb-controller.io/health-check-port": "70000",
                })))
            },
            ..case(
                "threshold and port out of range",
                default_to(svc("hc", 80)),
                errors([
                    (
                        NAME,
                        &hc_error("health-check-port", r#""70000" is out of range: use 1 to 65535"#),
                    ),
                    (
                        NAME,
                        &hc_error("healthy-threshold", r#""0" is out of range: use 1 to 10"#),
                    ),
                ]),
            )
        },
        Case {
            world: |w| {
                w.insert_service(annotated_service(
                    json!({"cloud-lb-controller.io/connection-draining-timeout-sec": "4000"}),
                ))
            },
            ..case(
                "draining timeout too long",
                default_to(svc("hc", 80)),
                errors([(
                    NAME,
                    &hc_error(
                        "connection-draining-timeout-sec",
                        r#""4000" is out of range: use 0 to 3600"#,
                    ),
                )]),
            )
        },
        Case {
            world: |w| {
                w.insert_service(annotated_service(
                    json!({"cloud-lb-controller.io/backend-timeout-sec": "-1"}),
                ))
            },
            ..case(
                "negative backend timeout",
                default_to(svc("hc", 80)),
                errors([(
                    NAME,
                    &hc_error("backend-timeout-sec", r#""-1" is not a whole number of seconds"#),
                )]),
            )
        },
        Case {
            world: |w| {
                w.insert_service(annotated_service(json!({
                    "cloud-lb-controller.io/health-check-pth": "/healthz",
                    "cloud-lb-controller.io/redirect-to-https": "true",
                    "cloud-lb-controller.io/flavour": "x",
                    "example.com/unrelated": "x",
                })))
            },
            ..case(
                "unknown and misplaced Service annotations",
                default_to(svc("hc", 80)),
                ok(
                    [
                        (NAME, &hc_error("flavour", "unknown annotation; it is ignored")),
                        (
                            NAME,
                            &hc_error(
                                "health-check-pth",
                                r#"unknown annotation; did you mean "cloud-lb-controller.io/health-check-path"?"#,
                            ),
                        ),
                        (
                            NAME,
                            &hc_error(
                                "redirect-to-https",
                                "this is an Ingress annotation; it has no effect on a Service",
                            ),
                        ),
                    ],
                    |lb| assert_eq!(only(lb).health_check.path, "/"),
                ),
            )
        },
        Case {
            world: |w| {
                w.insert_service(annotated_service(
                    json!({"cloud-lb-controller.io/healthy-threshold": "many"}),
                ))
            },
            ..case(
                "Service problems reported once",
                ingress(json!({
                    "defaultBackend": svc("hc", 80),
                    "rules": [rule("a.example.com", json!([path("/", "Prefix", svc("hc", 80))]))],
                })),
                errors([(
                    NAME,
                    &hc_error("healthy-threshold", r#""many" is not a whole number"#),
                )]),
            )
        },
        case(
            "backends sorted and unique",
            ingress(json!({
                "defaultBackend": svc("other", 8080),
                "rules": [rule("a.example.com", json!([
                    path("/a", "Prefix", svc("echo", 443)),
                    path("/b", "Prefix", svc_named("echo", "http")),
                    path("/c", "Prefix", svc("echo", 80)),
                ]))],
            })),
            ok([], |lb| {
                let keys: Vec<String> = lb.backends.iter().map(|b| b.key.to_string()).collect();
                assert_eq!(
                    keys,
                    ["default/echo:80", "default/echo:443", "default/other:8080"]
                );
            }),
        ),
    ];
    run(cases);
}
