//! Health checks from the pods' readiness probe: what is copied, when the probe cannot be used
//! (and the reason told), which pod counts, and the Service's annotations on top.

use super::*;
use crate::translate::HealthCheckOrigin;
use cloud::model::HealthCheck;

/// An Ingress whose default backend is `service:port`.
fn to(service: &str, port: i32) -> Value {
    ingress(json!({"defaultBackend": svc(service, port)}))
}

/// Services (all with slices listing their pods, which each case adds):
/// - `api`: ClusterIP with NEG; port 80 → 8080; pods `a1`, `a2`;
/// - `web`: NodePort (30200); port 80 → named target `web`; pod `w1`;
/// - `secure`: ClusterIP with NEG; 443 → 8443 appProtocol https, 444 → 8443 appProtocol HTTP2;
///   pod `s1`.
fn services(world: &mut Snapshot) {
    api_with(world, json!({}));
    world.insert_service(service(
        "web",
        "NodePort",
        json!([{"name": "http", "port": 80, "targetPort": "web", "nodePort": 30200}]),
    ));
    world.insert_service(service_with(
        "secure",
        "ClusterIP",
        json!([
            {"name": "https", "port": 443, "targetPort": 8443, "appProtocol": "https"},
            {"name": "h2", "port": 444, "targetPort": 8443, "appProtocol": "HTTP2"},
        ]),
        json!({"cloud.google.com/neg": r#"{"ingress": true}"#}),
    ));
    let slice = |name: &str, service: &str, ports: Value, pods: &[&str]| {
        let endpoints: Vec<Value> = pods
            .iter()
            .enumerate()
            .map(|(i, pod)| endpoint(&format!("10.0.0.{}", i + 1), "n1", pod, Some(true)))
            .collect();
        endpoint_slice(name, service, ports, json!(endpoints))
    };
    world.insert_endpoint_slice(slice(
        "api-a",
        "api",
        json!([{"name": "http", "port": 8080}]),
        &["a1", "a2"],
    ));
    world.insert_endpoint_slice(slice(
        "web-a",
        "web",
        json!([{"name": "http", "port": 8080}]),
        &["w1"],
    ));
    world.insert_endpoint_slice(slice(
        "secure-a",
        "secure",
        json!([{"name": "https", "port": 8443}, {"name": "h2", "port": 8443}]),
        &["s1"],
    ));
}

/// Service `api` with these annotations besides the NEG one.
fn api_with(world: &mut Snapshot, mut annotations: Value) {
    annotations["cloud.google.com/neg"] = json!(r#"{"ingress": true}"#);
    world.insert_service(service_with(
        "api",
        "ClusterIP",
        json!([{"name": "http", "port": 80, "targetPort": 8080}]),
        annotations,
    ));
}

/// A pod with one container `app` declaring `ports`, with this readiness probe (`null`: none).
fn app(name: &str, created: &str, ports: Value, probe: Value) -> k8s_openapi::api::core::v1::Pod {
    let mut container = json!({"name": "app", "ports": ports});
    if !probe.is_null() {
        container["readinessProbe"] = probe;
    }
    from_json(pod_json(name, created, json!([container])))
}

/// An `api` pod (container port 8080) created at `created` with this probe.
fn api_pod(name: &str, created: &str, probe: Value) -> k8s_openapi::api::core::v1::Pod {
    app(name, created, json!([{"containerPort": 8080}]), probe)
}

const T1: &str = "2026-01-01T00:00:00Z";
const T2: &str = "2026-02-01T00:00:00Z";
const T3: &str = "2026-03-01T00:00:00Z";

/// An `api` pod of template `ReplicaSet/<template>` (`None`: no controller) whose readiness
/// probe checks `path`, as JSON to adjust with [`gated`] or [`deleting`].
fn pod_of(name: &str, created: &str, template: Option<&str>, path: &str) -> Value {
    let container = json!({
        "name": "app",
        "ports": [{"containerPort": 8080}],
        "readinessProbe": http(path, json!(8080)),
    });
    let mut pod = pod_json(name, created, json!([container]));
    match template {
        Some(t) => pod["metadata"]["ownerReferences"][0]["name"] = json!(t),
        None => pod["metadata"]["ownerReferences"] = json!([]),
    }
    pod
}

/// The pod carries the load balancer's readiness gate; its `ContainersReady` is `True` or not.
fn gated(mut pod: Value, containers_ready: bool) -> Value {
    pod["spec"]["readinessGates"] = json!([{"conditionType": "cloud.google.com/load-balancer-neg-ready"}]);
    let status = if containers_ready { "True" } else { "False" };
    pod["status"] = json!({"conditions": [
        {"type": "ContainersReady", "status": status},
        {"type": "cloud.google.com/load-balancer-neg-ready", "status": "False"},
    ]});
    pod
}

/// The pod is being deleted.
fn deleting(mut pod: Value) -> Value {
    pod["metadata"]["deletionTimestamp"] = json!("2026-05-01T00:00:00Z");
    pod
}

/// How a pod is listed in `api`'s EndpointSlice.
#[derive(Clone, Copy)]
enum Listed {
    Ready,
    NotReady,
    /// `ready: true` and `terminating: true` (as when kube-proxy's `serving` lingers).
    Terminating,
}

/// `api`'s slice lists exactly these pods; each pod is inserted.
fn api_pods(world: &mut Snapshot, pods: Vec<(Value, Listed)>) {
    let mut endpoints = Vec::new();
    for (i, (pod, listed)) in pods.into_iter().enumerate() {
        let name = pod["metadata"]["name"].as_str().unwrap_or_default().to_owned();
        let mut endpoint = endpoint(
            &format!("10.0.1.{}", i + 1),
            "n1",
            &name,
            Some(!matches!(listed, Listed::NotReady)),
        );
        if matches!(listed, Listed::Terminating) {
            endpoint["conditions"]["terminating"] = json!(true);
        }
        endpoints.push(endpoint);
        world.insert_pod(from_json(pod));
    }
    world.insert_endpoint_slice(endpoint_slice(
        "api-a",
        "api",
        json!([{"name": "http", "port": 8080}]),
        json!(endpoints),
    ));
}

/// The health check follows `pod` of `template` (`None`: no controller), path `path`.
fn follows(t: &Translation, pod: &str, template: Option<&str>, path: &str) {
    assert_eq!(hc(t).path, path);
    assert_eq!(
        *origin(t),
        HealthCheckOrigin::ReadinessProbe {
            pod: format!("default/{pod}"),
            container: "app".into(),
            template: template.map(|t| format!("ReplicaSet/{t}")),
        }
    );
}

/// An httpGet probe of `path` on `port`, every 5 s with a 2 s timeout.
fn http(path: &str, port: Value) -> Value {
    json!({"httpGet": {"path": path, "port": port}, "periodSeconds": 5, "timeoutSeconds": 2})
}

fn hc(t: &Translation) -> &HealthCheck {
    assert_eq!(t.load_balancer.backends.len(), 1);
    &t.load_balancer.backends[0].health_check
}

fn origin(t: &Translation) -> &HealthCheckOrigin {
    assert_eq!(t.health_checks.len(), 1);
    assert_eq!(t.health_checks[0].0, t.load_balancer.backends[0].key);
    &t.health_checks[0].1
}

fn from_probe(pod: &str) -> HealthCheckOrigin {
    HealthCheckOrigin::ReadinessProbe {
        pod: format!("default/{pod}"),
        container: "app".into(),
        template: Some("ReplicaSet/rs-1".into()),
    }
}

/// Defaults, because of `why` about container `app` of pod `pod`.
fn not_probe(pod: &str, why: &str) -> HealthCheckOrigin {
    HealthCheckOrigin::Defaults {
        why_not_probe: Some(format!(r#"pod default/{pod}, container "app": {why}"#)),
    }
}

/// The default health check with this path, host, interval and timeout.
fn probed(path: &str, host: Option<&str>, interval: u32, timeout: u32) -> HealthCheck {
    HealthCheck {
        path: path.into(),
        host: host.map(Into::into),
        check_interval_sec: interval,
        timeout_sec: timeout,
        ..HealthCheck::default()
    }
}

const ONLY_HTTP: &str = "only an httpGet readiness probe can become the load balancer's health check";

fn row(name: &'static str, world: fn(&mut Snapshot), ingress: Value, expect: Expect) -> Case {
    Case {
        world,
        ..case(name, ingress, expect)
    }
}

#[test]
fn probe_cases() {
    let cases = vec![
        row(
            "HTTP probe on an endpoint backend: path, Host, period, timeout",
            |w| {
                services(w);
                let mut probe = http("/healthz", json!(8080));
                probe["httpGet"]["httpHeaders"] = json!([{"name": "Host", "value": "api.example.com"}]);
                probe["successThreshold"] = json!(4);
                w.insert_pod(api_pod("a1", T1, probe));
            },
            to("api", 80),
            ok_translation([], |t| {
                assert_eq!(*hc(t), probed("/healthz", Some("api.example.com"), 5, 2));
                assert_eq!(*origin(t), from_probe("a1"));
            }),
        ),
        row(
            "node-port backend: the interval is at least the default 15 s",
            |w| {
                services(w);
                let probe = http("/ready", json!("web"));
                w.insert_pod(app(
                    "w1",
                    T1,
                    json!([{"name": "web", "containerPort": 8080}]),
                    probe,
                ));
            },
            to("web", 80),
            ok_translation([], |t| {
                assert_eq!(*hc(t), probed("/ready", None, 15, 2));
                assert_eq!(*origin(t), from_probe("w1"));
            }),
        ),
        row(
            "node-port backend: a longer period is kept",
            |w| {
                services(w);
                let mut probe = http("/ready", json!(8080));
                probe["periodSeconds"] = json!(30);
                probe["timeoutSeconds"] = json!(10);
                w.insert_pod(app(
                    "w1",
                    T1,
                    json!([{"name": "web", "containerPort": 8080}]),
                    probe,
                ));
            },
            to("web", 80),
            ok_translation([], |t| assert_eq!(*hc(t), probed("/ready", None, 30, 10))),
        ),
        row(
            "Kubernetes' probe defaults, no path, path without a slash",
            |w| {
                services(w);
                w.insert_pod(api_pod("a1", T1, json!({"httpGet": {"port": 8080}})));
                w.insert_pod(api_pod("a2", T1, json!({"httpGet": {"path": "z", "port": 8080}})));
            },
            to("api", 80),
            ok_translation([], |t| {
                // a1 and a2 are as new: the smaller name wins.
                assert_eq!(*hc(t), probed("/", None, 10, 1));
                assert_eq!(*origin(t), from_probe("a1"));
            }),
        ),
        row(
            "path gets its leading slash",
            |w| {
                services(w);
                w.insert_pod(api_pod("a2", T1, http("healthz", json!(8080))));
            },
            to("api", 80),
            ok_translation([], |t| assert_eq!(hc(t).path, "/healthz")),
        ),
        row(
            "timeout above the period is cut to the interval",
            |w| {
                services(w);
                let mut probe = http("/", json!(8080));
                probe["periodSeconds"] = json!(2);
                probe["timeoutSeconds"] = json!(5);
                w.insert_pod(api_pod("a1", T1, probe));
            },
            to("api", 80),
            ok_translation([], |t| assert_eq!(*hc(t), probed("/", None, 2, 2))),
        ),
        row(
            "named probe port on a numeric targetPort",
            |w| {
                services(w);
                w.insert_pod(app(
                    "a1",
                    T1,
                    json!([{"name": "http", "containerPort": 8080}]),
                    http("/n", json!("http")),
                ));
            },
            to("api", 80),
            ok_translation([], |t| assert_eq!(hc(t).path, "/n")),
        ),
        row(
            "exec probe: defaults, and why",
            |w| {
                services(w);
                w.insert_pod(api_pod("a1", T1, json!({"exec": {"command": ["true"]}})));
            },
            to("api", 80),
            ok_translation([], |t| {
                assert_eq!(*hc(t), HealthCheck::default());
                assert_eq!(
                    *origin(t),
                    not_probe(
                        "a1",
                        &format!("the readiness probe runs a command (exec); {ONLY_HTTP}")
                    )
                );
            }),
        ),
        row(
            "tcpSocket probe: defaults, and why",
            |w| {
                services(w);
                w.insert_pod(api_pod("a1", T1, json!({"tcpSocket": {"port": 8080}})));
            },
            to("api", 80),
            ok_translation([], |t| {
                assert_eq!(*hc(t), HealthCheck::default());
                assert_eq!(
                    *origin(t),
                    not_probe(
                        "a1",
                        &format!("the readiness probe opens a TCP connection (tcpSocket); {ONLY_HTTP}")
                    )
                );
            }),
        ),
        row(
            "grpc probe: defaults, and why",
            |w| {
                services(w);
                w.insert_pod(api_pod("a1", T1, json!({"grpc": {"port": 8080}})));
            },
            to("api", 80),
            ok_translation([], |t| {
                assert_eq!(
                    *origin(t),
                    not_probe("a1", &format!("the readiness probe is a gRPC probe; {ONLY_HTTP}"))
                );
            }),
        ),
        row(
            "probe on another port",
            |w| {
                services(w);
                w.insert_pod(app(
                    "a1",
                    T1,
                    json!([{"containerPort": 8080}, {"name": "admin", "containerPort": 8081}]),
                    http("/", json!("admin")),
                ));
            },
            to("api", 80),
            ok_translation([], |t| {
                assert_eq!(*hc(t), HealthCheck::default());
                assert_eq!(
                    *origin(t),
                    not_probe(
                        "a1",
                        r#"the readiness probe checks port "admin", not the port the Service sends traffic to, 8080"#
                    )
                );
            }),
        ),
        row(
            "probe by number on another port of a named target",
            |w| {
                services(w);
                w.insert_pod(app(
                    "w1",
                    T1,
                    json!([{"name": "web", "containerPort": 8080}]),
                    http("/", json!(8081)),
                ));
            },
            to("web", 80),
            ok_translation([], |t| {
                assert_eq!(
                    *origin(t),
                    not_probe(
                        "w1",
                        r#"the readiness probe checks port 8081, not the port the Service sends traffic to, 8080 ("web")"#
                    )
                );
            }),
        ),
        row(
            "HTTPS probe on an HTTP backend",
            |w| {
                services(w);
                let mut probe = http("/", json!(8080));
                probe["httpGet"]["scheme"] = json!("HTTPS");
                w.insert_pod(api_pod("a1", T1, probe));
            },
            to("api", 80),
            ok_translation([], |t| {
                assert_eq!(
                    *origin(t),
                    not_probe(
                        "a1",
                        "the readiness probe uses HTTPS but the load balancer speaks HTTP to this port"
                    )
                );
            }),
        ),
        row(
            "HTTP probe on an HTTPS backend",
            |w| {
                services(w);
                w.insert_pod(app(
                    "s1",
                    T1,
                    json!([{"containerPort": 8443}]),
                    http("/", json!(8443)),
                ));
            },
            to("secure", 443),
            ok_translation([], |t| {
                assert_eq!(
                    *origin(t),
                    not_probe(
                        "s1",
                        "the readiness probe uses HTTP but the load balancer speaks HTTPS to this port"
                    )
                );
            }),
        ),
        row(
            "HTTPS probe on an HTTP2 backend",
            |w| {
                services(w);
                let mut probe = http("/h2", json!(8443));
                probe["httpGet"]["scheme"] = json!("HTTPS");
                w.insert_pod(app("s1", T1, json!([{"containerPort": 8443}]), probe));
            },
            to("secure", 444),
            ok_translation([], |t| {
                assert_eq!(*hc(t), probed("/h2", None, 5, 2));
                assert_eq!(*origin(t), from_probe("s1"));
            }),
        ),
        row(
            "probe with a host",
            |w| {
                services(w);
                let mut probe = http("/", json!(8080));
                probe["httpGet"]["host"] = json!("10.0.0.9");
                w.insert_pod(api_pod("a1", T1, probe));
            },
            to("api", 80),
            ok_translation([], |t| {
                assert_eq!(
                    *origin(t),
                    not_probe(
                        "a1",
                        r#"the readiness probe sets httpGet.host "10.0.0.9"; the load balancer probes the pod's own address (a Host header can be copied instead)"#
                    )
                );
            }),
        ),
        row(
            "probe with another header",
            |w| {
                services(w);
                let mut probe = http("/", json!(8080));
                probe["httpGet"]["httpHeaders"] =
                    json!([{"name": "Host", "value": "a"}, {"name": "X-Probe", "value": "1"}]);
                w.insert_pod(api_pod("a1", T1, probe));
            },
            to("api", 80),
            ok_translation([], |t| {
                assert_eq!(
                    *origin(t),
                    not_probe(
                        "a1",
                        r#"the readiness probe sends the header "X-Probe"; the load balancer's health check can send only a Host header"#
                    )
                );
            }),
        ),
        row(
            "within a template, the newest pod decides",
            |w| {
                services(w);
                w.insert_pod(api_pod("a2", T1, http("/old", json!(8080))));
                w.insert_pod(api_pod("a1", T2, http("/new", json!(8080))));
            },
            to("api", 80),
            ok_translation([], |t| {
                assert_eq!(hc(t).path, "/new");
                assert_eq!(*origin(t), from_probe("a1"));
            }),
        ),
        row(
            "the newest pod decides even without a usable probe",
            |w| {
                services(w);
                w.insert_pod(api_pod("a2", T1, http("/old", json!(8080))));
                w.insert_pod(api_pod("a1", T2, json!(null)));
            },
            to("api", 80),
            ok_translation([], |t| {
                assert_eq!(*hc(t), HealthCheck::default());
                assert_eq!(*origin(t), HealthCheckOrigin::Defaults { why_not_probe: None });
            }),
        ),
        row(
            "pods without the target port do not count",
            |w| {
                services(w);
                w.insert_pod(api_pod("a2", T1, http("/old", json!(8080))));
                w.insert_pod(app(
                    "a1",
                    T2,
                    json!([{"containerPort": 9999}]),
                    http("/x", json!(9999)),
                ));
            },
            to("api", 80),
            ok_translation([], |t| {
                assert_eq!(hc(t).path, "/old");
                assert_eq!(*origin(t), from_probe("a2"));
            }),
        ),
        row(
            "a not-ready newest pod does not win (a halted rollout keeps the old path)",
            |w| {
                services(w);
                api_pods(
                    w,
                    vec![
                        (pod_of("a1", T1, Some("old"), "/ready"), Listed::Ready),
                        (pod_of("a2", T2, Some("new"), "/v2/ready"), Listed::NotReady),
                        (pod_of("a3", T3, Some("new"), "/v2/ready"), Listed::NotReady),
                    ],
                );
            },
            to("api", 80),
            ok_translation([], |t| follows(t, "a1", Some("old"), "/ready")),
        ),
        row(
            "terminating pods do not count (listed terminating, or with a deletionTimestamp)",
            |w| {
                services(w);
                api_pods(
                    w,
                    vec![
                        (pod_of("a1", T2, Some("old"), "/old"), Listed::Terminating),
                        (deleting(pod_of("a2", T2, Some("old"), "/old")), Listed::Ready),
                        (pod_of("a3", T1, Some("new"), "/new"), Listed::Ready),
                    ],
                );
            },
            to("api", 80),
            ok_translation([], |t| follows(t, "a3", Some("new"), "/new")),
        ),
        row(
            "the template with the most pods that may take traffic wins, then its newest pod",
            |w| {
                services(w);
                api_pods(
                    w,
                    vec![
                        (pod_of("a1", T1, Some("old"), "/old"), Listed::Ready),
                        (pod_of("a2", T2, Some("old"), "/old"), Listed::Ready),
                        (pod_of("a3", T3, Some("new"), "/new"), Listed::Ready),
                    ],
                );
            },
            to("api", 80),
            ok_translation([], |t| follows(t, "a2", Some("old"), "/old")),
        ),
        row(
            "templates as large: the one holding the newest pod wins",
            |w| {
                services(w);
                api_pods(
                    w,
                    vec![
                        (pod_of("a1", T1, Some("old"), "/old"), Listed::Ready),
                        (pod_of("a2", T2, Some("new"), "/new"), Listed::Ready),
                    ],
                );
            },
            to("api", 80),
            ok_translation([], |t| follows(t, "a2", Some("new"), "/new")),
        ),
        row(
            "pods without a controller are each a template of their own",
            |w| {
                services(w);
                api_pods(
                    w,
                    vec![
                        (pod_of("a1", T2, None, "/bare"), Listed::Ready),
                        (pod_of("a2", T2, None, "/bare"), Listed::Ready),
                        (pod_of("a3", T3, Some("rs"), "/rs"), Listed::Ready),
                    ],
                );
            },
            to("api", 80),
            ok_translation([], |t| follows(t, "a3", Some("rs"), "/rs")),
        ),
        row(
            "a pod held only by the readiness gate, its containers ready, counts",
            |w| {
                services(w);
                api_pods(
                    w,
                    vec![
                        (pod_of("a1", T1, Some("old"), "/old"), Listed::Ready),
                        (
                            gated(pod_of("a2", T2, Some("new"), "/new"), true),
                            Listed::NotReady,
                        ),
                        (
                            gated(pod_of("a3", T2, Some("new"), "/new"), true),
                            Listed::NotReady,
                        ),
                    ],
                );
            },
            to("api", 80),
            ok_translation([], |t| follows(t, "a2", Some("new"), "/new")),
        ),
        row(
            "a gated pod whose containers are not ready does not count",
            |w| {
                services(w);
                api_pods(
                    w,
                    vec![
                        (pod_of("a1", T1, Some("old"), "/old"), Listed::Ready),
                        (
                            gated(pod_of("a2", T2, Some("new"), "/new"), false),
                            Listed::NotReady,
                        ),
                        (
                            gated(pod_of("a3", T2, Some("new"), "/new"), false),
                            Listed::NotReady,
                        ),
                    ],
                );
            },
            to("api", 80),
            ok_translation([], |t| follows(t, "a1", Some("old"), "/old")),
        ),
        row(
            "no pod may take traffic (a first rollout): the newest pod decides",
            |w| {
                services(w);
                api_pods(
                    w,
                    vec![
                        (pod_of("a1", T2, Some("old"), "/old"), Listed::NotReady),
                        (pod_of("a2", T2, Some("old"), "/old"), Listed::NotReady),
                        (pod_of("a3", T3, Some("new"), "/new"), Listed::NotReady),
                    ],
                );
            },
            to("api", 80),
            ok_translation([], |t| follows(t, "a3", Some("new"), "/new")),
        ),
        row(
            "no pods: defaults, no reason",
            services,
            to("api", 80),
            ok_translation([], |t| {
                assert_eq!(*hc(t), HealthCheck::default());
                assert_eq!(*origin(t), HealthCheckOrigin::Defaults { why_not_probe: None });
            }),
        ),
        row(
            "annotations beat the probe, field by field",
            |w| {
                services(w);
                api_with(
                    w,
                    json!({
                        "cloud-lb-controller.io/health-check-path": "/annotated",
                        "cloud-lb-controller.io/unhealthy-threshold": "5",
                    }),
                );
                w.insert_pod(api_pod("a1", T1, http("/probe", json!(8080))));
            },
            to("api", 80),
            ok_translation([], |t| {
                assert_eq!(
                    *hc(t),
                    HealthCheck {
                        unhealthy_threshold: 5,
                        ..probed("/annotated", None, 5, 2)
                    }
                );
                assert_eq!(*origin(t), from_probe("a1"));
            }),
        ),
        row(
            "an annotated timeout stretches the probe's interval",
            |w| {
                services(w);
                api_with(
                    w,
                    json!({"cloud-lb-controller.io/health-check-timeout-sec": "10"}),
                );
                w.insert_pod(api_pod("a1", T1, http("/probe", json!(8080))));
            },
            to("api", 80),
            ok_translation([], |t| assert_eq!(*hc(t), probed("/probe", None, 10, 10))),
        ),
        row(
            "annotations setting everything: defaults, and why",
            |w| {
                services(w);
                api_with(
                    w,
                    json!({
                        "cloud-lb-controller.io/health-check-path": "/a",
                        "cloud-lb-controller.io/health-check-interval-sec": "20",
                        "cloud-lb-controller.io/health-check-timeout-sec": "4",
                    }),
                );
                w.insert_pod(api_pod("a1", T1, http("/probe", json!(8080))));
            },
            to("api", 80),
            ok_translation([], |t| {
                assert_eq!(*hc(t), probed("/a", None, 20, 4));
                assert_eq!(
                    *origin(t),
                    not_probe(
                        "a1",
                        "the Service's health-check annotations set everything the readiness probe would"
                    )
                );
            }),
        ),
        row(
            "a health-check port annotation: defaults, and why",
            |w| {
                services(w);
                api_with(w, json!({"cloud-lb-controller.io/health-check-port": "9000"}));
                w.insert_pod(api_pod("a1", T1, http("/probe", json!(8080))));
            },
            to("api", 80),
            ok_translation([], |t| {
                assert_eq!(
                    *hc(t),
                    HealthCheck {
                        port: Some(9000),
                        ..HealthCheck::default()
                    }
                );
                assert_eq!(
                    *origin(t),
                    not_probe(
                        "a1",
                        r#"the Service's "cloud-lb-controller.io/health-check-port" annotation sends the health check to another port than the readiness probe's"#
                    )
                );
            }),
        ),
    ];
    run(cases);
}
