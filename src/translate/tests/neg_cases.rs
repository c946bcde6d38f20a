//! Container-native load balancing: the `cloud.google.com/neg` annotation against
//! `Config::neg_default`, the Service types it allows, and `endpoint_plan`.

use super::*;
use crate::translate::{EndpointPlan, GatedPod, HealthCheckOrigin, endpoint_plan};
use cloud::model::{BackendKey, BackendTarget, Endpoint, Node as CloudNode};
use k8s_openapi::api::core::v1::Pod;

const NAME: &str = "spec.defaultBackend.service.name";
const OFF: &str = "the annotation is ignored and the Service's ports are served through node ports (the controller's default)";
const ON: &str = "the annotation is ignored and the Service's ports are served at their pods (the controller's --neg-default)";

/// An Ingress whose default backend is `web:80`.
fn to_web() -> Value {
    ingress(json!({"defaultBackend": svc("web", 80)}))
}

/// Service `web` of type `kind` (port 80 `http` → 8080, node port 30100 unless ClusterIP or
/// ExternalName), with `cloud.google.com/neg: value` when given.
fn web(world: &mut Snapshot, kind: &str, value: Option<&str>) {
    let mut port = json!({"name": "http", "port": 80, "targetPort": 8080});
    if matches!(kind, "NodePort" | "LoadBalancer") {
        port["nodePort"] = json!(30100);
    }
    let annotations = match value {
        Some(v) => json!({"cloud.google.com/neg": v}),
        None => json!({}),
    };
    world.insert_service(service_with("web", kind, json!([port]), annotations));
}

fn neg_warning(message: &str) -> String {
    format!(r#"Service default/web: metadata.annotations["cloud.google.com/neg"]: {message}"#)
}

fn only(lb: &LoadBalancer) -> &cloud::model::Backend {
    assert_eq!(lb.backends.len(), 1, "backends: {:?}", lb.backends);
    &lb.backends[0]
}

fn endpoints(lb: &LoadBalancer) {
    assert_eq!(only(lb).target, BackendTarget::Endpoints);
    assert_eq!(lb.node_ports(), Vec::<u16>::new());
}

fn node_port(lb: &LoadBalancer) {
    assert_eq!(only(lb).target, BackendTarget::NodePort { node_port: 30100 });
}

fn neg_on(config: &mut Config) {
    config.neg_default = true;
}

#[test]
fn neg_annotation_cases() {
    let cases = vec![
        Case {
            world: |w| web(w, "NodePort", Some(r#"{"ingress": true}"#)),
            ..case("ingress true", to_web(), ok([], endpoints))
        },
        Case {
            world: |w| web(w, "NodePort", Some(r#"{"ingress": true}"#)),
            config: neg_on,
            ..case("ingress true, default on", to_web(), ok([], endpoints))
        },
        Case {
            world: |w| web(w, "NodePort", Some(r#"{"ingress": false}"#)),
            ..case("ingress false", to_web(), ok([], node_port))
        },
        Case {
            world: |w| web(w, "NodePort", Some(r#"{"ingress":false}"#)),
            config: neg_on,
            ..case("ingress false beats the default", to_web(), ok([], node_port))
        },
        Case {
            world: |w| web(w, "NodePort", None),
            ..case("absent, default off", to_web(), ok([], node_port))
        },
        Case {
            world: |w| web(w, "NodePort", None),
            config: neg_on,
            ..case("absent, default on", to_web(), ok([], endpoints))
        },
        Case {
            world: |w| {
                web(
                    w,
                    "NodePort",
                    Some(
                        r#"{"ingress": true, "exposed_ports": {"80": {"name": "x"}, "443": {}}, "zones": ["us-central1-a"]}"#,
                    ),
                )
            },
            ..case("exposed_ports and zones accepted", to_web(), ok([], endpoints))
        },
        Case {
            world: |w| web(w, "NodePort", Some(r#"{"exposed_ports": {"80": {}}}"#)),
            config: neg_on,
            ..case("no ingress key: the default", to_web(), ok([], endpoints))
        },
        Case {
            world: |w| web(w, "NodePort", Some("ingress: true")),
            ..case(
                "not JSON: warning, default off",
                to_web(),
                ok(
                    [(
                        NAME,
                        &neg_warning(&format!(
                            r#"not JSON (expected value at line 1 column 1); write e.g. {{"ingress": true}}; {OFF}"#
                        )),
                    )],
                    node_port,
                ),
            )
        },
        Case {
            world: |w| web(w, "NodePort", Some("ingress: false")),
            config: neg_on,
            ..case(
                "not JSON: warning, default on",
                to_web(),
                ok(
                    [(
                        NAME,
                        &neg_warning(&format!(
                            r#"not JSON (expected value at line 1 column 1); write e.g. {{"ingress": true}}; {ON}"#
                        )),
                    )],
                    endpoints,
                ),
            )
        },
        Case {
            world: |w| web(w, "NodePort", Some("true")),
            ..case(
                "not an object",
                to_web(),
                ok(
                    [(
                        NAME,
                        &neg_warning(&format!(
                            r#""true" is not a JSON object such as {{"ingress": true}}; {OFF}"#
                        )),
                    )],
                    node_port,
                ),
            )
        },
        Case {
            world: |w| web(w, "NodePort", Some(r#"{"ingress": "true"}"#)),
            ..case(
                "ingress a string",
                to_web(),
                ok(
                    [(
                        NAME,
                        &neg_warning(&format!(r#""ingress" must be true or false, not "true"; {OFF}"#)),
                    )],
                    node_port,
                ),
            )
        },
        Case {
            world: |w| web(w, "NodePort", Some(r#"{"ingress": true, "exposed_ports": [80]}"#)),
            ..case(
                "exposed_ports a list: the whole annotation is ignored",
                to_web(),
                ok(
                    [(
                        NAME,
                        &neg_warning(&format!(
                            r#""exposed_ports" must map port numbers to objects, e.g. {{"80": {{}}}}, not [80]; {OFF}"#
                        )),
                    )],
                    node_port,
                ),
            )
        },
        Case {
            world: |w| {
                web(
                    w,
                    "NodePort",
                    Some(r#"{"ingress": true, "exposed_ports": {"http": {}}}"#),
                )
            },
            ..case(
                "exposed_ports keyed by name",
                to_web(),
                ok(
                    [(
                        NAME,
                        &neg_warning(&format!(
                            r#""exposed_ports" must map port numbers to objects, e.g. {{"80": {{}}}}, not {{"http":{{}}}}; {OFF}"#
                        )),
                    )],
                    node_port,
                ),
            )
        },
        Case {
            world: |w| web(w, "NodePort", Some(r#"{"ingres": true}"#)),
            config: neg_on,
            ..case(
                "misspelt key: warning, default",
                to_web(),
                ok(
                    [(
                        NAME,
                        &neg_warning(r#"unknown key "ingres" (did you mean "ingress"?); it is ignored"#),
                    )],
                    endpoints,
                ),
            )
        },
        Case {
            world: |w| web(w, "NodePort", Some(r#"{"ingress": true, "foo": 1}"#)),
            ..case(
                "unknown key: warning, the rest honoured",
                to_web(),
                ok(
                    [(
                        NAME,
                        &neg_warning(
                            r#"unknown key "foo"; it is ignored (known: "ingress", "exposed_ports", "zones")"#,
                        ),
                    )],
                    endpoints,
                ),
            )
        },
        Case {
            world: |w| web(w, "ClusterIP", Some(r#"{"ingress": true}"#)),
            ..case("ClusterIP with NEG", to_web(), ok([], endpoints))
        },
        Case {
            world: |w| web(w, "ClusterIP", None),
            config: neg_on,
            ..case("ClusterIP with the default on", to_web(), ok([], endpoints))
        },
        Case {
            world: |w| web(w, "ClusterIP", Some(r#"{"ingress": false}"#)),
            config: neg_on,
            ..case(
                "ClusterIP with NEG off",
                to_web(),
                errors([(
                    NAME,
                    r#"Service default/web is of type ClusterIP; it must be NodePort or LoadBalancer (the load balancer reaches Services through node ports), or serve its pods directly with the Service annotation cloud.google.com/neg: '{"ingress": true}'"#,
                )]),
            )
        },
        Case {
            world: |w| web(w, "ExternalName", Some(r#"{"ingress": true}"#)),
            ..case(
                "ExternalName with NEG",
                to_web(),
                errors([(
                    NAME,
                    "Service default/web is of type ExternalName; the load balancer cannot reach it (it has no node ports and no pods); use a NodePort, LoadBalancer or ClusterIP Service",
                )]),
            )
        },
        Case {
            world: |w| {
                w.insert_service(service_with(
                    "web",
                    "LoadBalancer",
                    json!([{"name": "http", "port": 80}]),
                    json!({"cloud.google.com/neg": r#"{"ingress": true}"#}),
                ))
            },
            ..case(
                "LoadBalancer without node ports, with NEG",
                to_web(),
                ok([], endpoints),
            )
        },
        Case {
            world: |w| web(w, "ClusterIP", Some(r#"{"ingress": true}"#)),
            ..case(
                "no pods: default health check",
                to_web(),
                ok_translation([], |t| {
                    assert_eq!(
                        t.health_checks,
                        [(
                            BackendKey::new("default", "web", 80),
                            HealthCheckOrigin::Defaults { why_not_probe: None }
                        )]
                    );
                    assert_eq!(
                        t.load_balancer.backends[0].health_check,
                        cloud::model::HealthCheck::default()
                    );
                }),
            )
        },
    ];
    run(cases);
}

// --- endpoint_plan ------------------------------------------------------------------------------

/// The cluster's load-balancer nodes: `n1` in zone a, `n2` in zone b.
fn nodes() -> Vec<CloudNode> {
    vec![
        CloudNode {
            zone: "zone-a".into(),
            name: "n1".into(),
            instance: "vm-1".into(),
        },
        CloudNode {
            zone: "zone-b".into(),
            name: "n2".into(),
            instance: "vm-2".into(),
        },
    ]
}

/// Service `web` (port 80 `http` → 8080, port 9090 unnamed-metrics `metrics`) and pods `p1`…`p4`
/// with no gate.
fn base() -> Snapshot {
    let mut world = Snapshot::new();
    world.insert_service(service_with(
        "web",
        "ClusterIP",
        json!([
            {"name": "http", "port": 80, "targetPort": 8080},
            {"name": "metrics", "port": 9090, "targetPort": "metrics"},
        ]),
        json!({"cloud.google.com/neg": r#"{"ingress": true}"#}),
    ));
    world.insert_service(service(
        "single",
        "ClusterIP",
        json!([{"port": 80, "targetPort": 8000}]),
    ));
    for name in ["p1", "p2", "p3", "p4"] {
        world.insert_pod(plain_pod(name));
    }
    world
}

fn plain_pod(name: &str) -> Pod {
    from_json(pod_json(
        name,
        "2026-01-01T00:00:00Z",
        json!([{"name": "app", "ports": [{"containerPort": 8080}]}]),
    ))
}

/// A pod carrying the NEG readiness gate, with these status conditions (type → status).
fn gated_pod(name: &str, conditions: &[(&str, &str)]) -> Pod {
    let mut value = pod_json(
        name,
        "2026-01-01T00:00:00Z",
        json!([{"name": "app", "ports": [{"containerPort": 8080}]}]),
    );
    value["spec"]["readinessGates"] = json!([{"conditionType": "cloud.google.com/load-balancer-neg-ready"}]);
    let conditions: Vec<Value> = conditions
        .iter()
        .map(|(t, s)| json!({"type": t, "status": s}))
        .collect();
    value["status"] = json!({"conditions": conditions});
    from_json(value)
}

/// The usual slice ports of `web`: `http` → 8080, `metrics` → 9090.
fn web_ports() -> Value {
    json!([{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "metrics", "port": 9090}])
}

fn ep(ip: &str, zone: &str, instance: &str, port: u16) -> Endpoint {
    Endpoint {
        zone: zone.into(),
        instance: instance.into(),
        ip: ip.into(),
        port,
    }
}

struct PlanCase {
    name: &'static str,
    world: fn(&mut Snapshot),
    /// The Service port planned (`web:80` unless said).
    key: BackendKey,
    check: fn(&EndpointPlan),
}

fn plan_case(name: &'static str, world: fn(&mut Snapshot), check: fn(&EndpointPlan)) -> PlanCase {
    PlanCase {
        name,
        world,
        key: BackendKey::new("default", "web", 80),
        check,
    }
}

fn set(plan: &EndpointPlan) -> Vec<Endpoint> {
    plan.set.endpoints.iter().cloned().collect()
}

/// The gated pods as (name, attached, condition).
fn gated(plan: &EndpointPlan) -> Vec<(&str, bool, Option<bool>)> {
    plan.gated
        .iter()
        .map(|g: &GatedPod| (g.name.as_str(), g.attached, g.condition))
        .collect()
}

#[test]
fn endpoint_plan_cases() {
    let cases = vec![
        plan_case(
            "ready, and ready by absence of the condition",
            |w| {
                w.insert_endpoint_slice(endpoint_slice(
                    "web-a",
                    "web",
                    web_ports(),
                    json!([
                        endpoint("10.0.0.1", "n1", "p1", Some(true)),
                        endpoint("10.0.0.2", "n2", "p2", None),
                    ]),
                ))
            },
            |plan| {
                assert_eq!(
                    set(plan),
                    [
                        ep("10.0.0.1", "zone-a", "vm-1", 8080),
                        ep("10.0.0.2", "zone-b", "vm-2", 8080)
                    ]
                );
                assert!(plan.gated.is_empty() && plan.notes.is_empty(), "{plan:?}");
                assert_eq!(plan.set.key, BackendKey::new("default", "web", 80));
            },
        ),
        plan_case(
            "not ready",
            |w| {
                w.insert_endpoint_slice(endpoint_slice(
                    "web-a",
                    "web",
                    web_ports(),
                    json!([endpoint("10.0.0.1", "n1", "p1", Some(false))]),
                ))
            },
            |plan| assert!(set(plan).is_empty() && plan.notes.is_empty(), "{plan:?}"),
        ),
        plan_case(
            "terminating, by condition and by the pod's deletionTimestamp",
            |w| {
                let mut terminating = endpoint("10.0.0.1", "n1", "p1", Some(true));
                terminating["conditions"]["terminating"] = json!(true);
                let mut deleted = pod_json(
                    "p2",
                    "2026-01-01T00:00:00Z",
                    json!([{"name": "app", "ports": [{"containerPort": 8080}]}]),
                );
                deleted["metadata"]["deletionTimestamp"] = json!("2026-05-01T00:00:00Z");
                w.insert_pod(from_json(deleted));
                w.insert_endpoint_slice(endpoint_slice(
                    "web-a",
                    "web",
                    web_ports(),
                    json!([terminating, endpoint("10.0.0.2", "n1", "p2", Some(true))]),
                ))
            },
            |plan| assert!(set(plan).is_empty(), "{plan:?}"),
        ),
        plan_case(
            "gated, containers ready: attached before Ready",
            |w| {
                w.insert_pod(gated_pod(
                    "p1",
                    &[
                        ("ContainersReady", "True"),
                        ("Ready", "False"),
                        ("cloud.google.com/load-balancer-neg-ready", "False"),
                    ],
                ));
                w.insert_endpoint_slice(endpoint_slice(
                    "web-a",
                    "web",
                    web_ports(),
                    json!([endpoint("10.0.0.1", "n1", "p1", Some(false))]),
                ))
            },
            |plan| {
                assert_eq!(set(plan), [ep("10.0.0.1", "zone-a", "vm-1", 8080)]);
                assert_eq!(gated(plan), [("p1", true, Some(false))]);
                assert_eq!(plan.gated[0].endpoint, ep("10.0.0.1", "zone-a", "vm-1", 8080));
                assert_eq!(plan.gated[0].namespace, "default");
            },
        ),
        plan_case(
            "gated, containers not ready: not attached",
            |w| {
                w.insert_pod(gated_pod("p1", &[("ContainersReady", "False")]));
                w.insert_pod(gated_pod("p2", &[]));
                w.insert_endpoint_slice(endpoint_slice(
                    "web-a",
                    "web",
                    web_ports(),
                    json!([
                        endpoint("10.0.0.1", "n1", "p1", Some(false)),
                        endpoint("10.0.0.2", "n1", "p2", Some(false)),
                    ]),
                ))
            },
            |plan| {
                assert!(set(plan).is_empty(), "{plan:?}");
                assert_eq!(gated(plan), [("p1", false, None), ("p2", false, None)]);
            },
        ),
        plan_case(
            "gated and Ready: the gate's condition is reported",
            |w| {
                w.insert_pod(gated_pod(
                    "p1",
                    &[
                        ("ContainersReady", "True"),
                        ("cloud.google.com/load-balancer-neg-ready", "True"),
                    ],
                ));
                w.insert_endpoint_slice(endpoint_slice(
                    "web-a",
                    "web",
                    web_ports(),
                    json!([endpoint("10.0.0.1", "n1", "p1", Some(true))]),
                ))
            },
            |plan| assert_eq!(gated(plan), [("p1", true, Some(true))]),
        ),
        plan_case(
            "gated but terminating",
            |w| {
                w.insert_pod(gated_pod("p1", &[("ContainersReady", "True")]));
                let mut e = endpoint("10.0.0.1", "n1", "p1", Some(false));
                e["conditions"]["terminating"] = json!(true);
                w.insert_endpoint_slice(endpoint_slice("web-a", "web", web_ports(), json!([e])))
            },
            |plan| {
                assert!(set(plan).is_empty(), "{plan:?}");
                assert_eq!(gated(plan), [("p1", false, None)]);
            },
        ),
        plan_case(
            "unknown node: left out with a note; a gated pod there is still reported",
            |w| {
                w.insert_pod(gated_pod("p2", &[("ContainersReady", "True")]));
                let mut zoned = endpoint("10.0.0.2", "n9", "p2", Some(false));
                zoned["zone"] = json!("zone-c");
                w.insert_endpoint_slice(endpoint_slice(
                    "web-a",
                    "web",
                    web_ports(),
                    json!([endpoint("10.0.0.1", "n9", "p1", Some(true)), zoned]),
                ))
            },
            |plan| {
                assert!(set(plan).is_empty(), "{plan:?}");
                assert_eq!(
                    plan.notes,
                    [
                        r#"endpoint 10.0.0.1:8080 (pod default/p1) of default/web:80 is on node "n9", which is not one of the load balancer's nodes (excluded, without a zone, or not known yet); it is left out"#,
                        r#"endpoint 10.0.0.2:8080 (pod default/p2) of default/web:80 is on node "n9", which is not one of the load balancer's nodes (excluded, without a zone, or not known yet); it is left out"#,
                    ]
                );
                assert_eq!(gated(plan), [("p2", false, None)]);
                assert_eq!(plan.gated[0].endpoint, ep("10.0.0.2", "zone-c", "", 8080));
            },
        ),
        plan_case(
            "the same IP in two slices: once, the ready listing wins",
            |w| {
                w.insert_endpoint_slice(endpoint_slice(
                    "web-a",
                    "web",
                    web_ports(),
                    json!([endpoint("10.0.0.1", "n1", "p1", Some(false))]),
                ));
                w.insert_endpoint_slice(endpoint_slice(
                    "web-b",
                    "web",
                    web_ports(),
                    json!([
                        endpoint("10.0.0.1", "n1", "p1", Some(true)),
                        endpoint("10.0.0.2", "n2", "p2", Some(true)),
                    ]),
                ));
                w.insert_endpoint_slice(endpoint_slice(
                    "web-c",
                    "web",
                    web_ports(),
                    json!([endpoint("10.0.0.2", "n2", "p2", Some(false))]),
                ));
            },
            |plan| {
                assert_eq!(
                    set(plan),
                    [
                        ep("10.0.0.1", "zone-a", "vm-1", 8080),
                        ep("10.0.0.2", "zone-b", "vm-2", 8080)
                    ]
                )
            },
        ),
        PlanCase {
            key: BackendKey::new("default", "web", 9090),
            ..plan_case(
                "named port: the slice port of the same name",
                |w| {
                    w.insert_endpoint_slice(endpoint_slice(
                        "web-a",
                        "web",
                        web_ports(),
                        json!([endpoint("10.0.0.1", "n1", "p1", Some(true))]),
                    ))
                },
                |plan| assert_eq!(set(plan), [ep("10.0.0.1", "zone-a", "vm-1", 9090)]),
            )
        },
        PlanCase {
            key: BackendKey::new("default", "single", 80),
            ..plan_case(
                "unnamed single port: slice port with no name or an empty one",
                |w| {
                    w.insert_endpoint_slice(endpoint_slice(
                        "single-a",
                        "single",
                        json!([{"port": 8000}]),
                        json!([endpoint("10.0.0.1", "n1", "p1", Some(true))]),
                    ));
                    w.insert_endpoint_slice(endpoint_slice(
                        "single-b",
                        "single",
                        json!([{"name": "", "port": 8001}]),
                        json!([endpoint("10.0.0.2", "n2", "p2", Some(true))]),
                    ));
                },
                |plan| {
                    assert_eq!(
                        set(plan),
                        [
                            ep("10.0.0.1", "zone-a", "vm-1", 8000),
                            ep("10.0.0.2", "zone-b", "vm-2", 8001)
                        ]
                    )
                },
            )
        },
        plan_case(
            "several slices, and IPv6 or other Services' slices ignored",
            |w| {
                w.insert_endpoint_slice(endpoint_slice(
                    "web-a",
                    "web",
                    web_ports(),
                    json!([endpoint("10.0.0.1", "n1", "p1", Some(true))]),
                ));
                w.insert_endpoint_slice(endpoint_slice(
                    "web-b",
                    "web",
                    web_ports(),
                    json!([endpoint("10.0.0.3", "n2", "p3", Some(true))]),
                ));
                let mut v6 = endpoint_slice(
                    "web-v6",
                    "web",
                    web_ports(),
                    json!([endpoint("fd00::1", "n1", "p1", Some(true))]),
                );
                v6.address_type = "IPv6".into();
                w.insert_endpoint_slice(v6);
                w.insert_endpoint_slice(endpoint_slice(
                    "single-a",
                    "single",
                    json!([{"name": "http", "port": 8080}]),
                    json!([endpoint("10.0.0.4", "n1", "p4", Some(true))]),
                ));
            },
            |plan| {
                assert_eq!(
                    set(plan),
                    [
                        ep("10.0.0.1", "zone-a", "vm-1", 8080),
                        ep("10.0.0.3", "zone-b", "vm-2", 8080)
                    ]
                )
            },
        ),
        PlanCase {
            key: BackendKey::new("default", "gone", 80),
            ..plan_case(
                "no such Service",
                |_| {},
                |plan| {
                    assert!(set(plan).is_empty());
                    assert_eq!(plan.notes, ["Service default/gone not found"]);
                },
            )
        },
    ];
    let count = cases.len();
    let mut failures = Vec::new();
    for case in cases {
        let mut world = base();
        (case.world)(&mut world);
        let plan = endpoint_plan(&case.key, &world, &nodes());
        if let Err(panic) = std::panic::catch_unwind(|| (case.check)(&plan)) {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failures.push(format!("{}: {message}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
