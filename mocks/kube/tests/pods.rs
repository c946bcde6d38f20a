//! Pods through kube-rs: the status subresource, strategic merge patches of conditions, field
//! selectors, spec immutability and graceful deletion.

mod common;

use std::time::Duration;

use common::{eventually, start, start_with, status};
use fake_kube::{Config, FakeKube, PodSimulation, Termination};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

const NEG_READY: &str = "cloud.google.com/load-balancer-neg-ready";

fn pod(name: &str, node: Option<&str>, extra_spec: Value) -> Pod {
    let mut spec = json!({
        "containers": [{"name": "web", "image": "nginx:1.27", "ports": [{"name": "http", "containerPort": 8080}]}],
    });
    if let Some(node) = node {
        spec["nodeName"] = json!(node);
    }
    if let (Some(s), Value::Object(extra)) = (spec.as_object_mut(), extra_spec) {
        s.extend(extra);
    }
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": spec,
    }))
    .unwrap()
}

fn conditions(p: &Pod) -> Vec<(String, String)> {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .map(|c| (c.type_.clone(), c.status.clone()))
        .collect()
}

fn pods(client: &Client) -> Api<Pod> {
    Api::namespaced(client.clone(), "default")
}

#[tokio::test]
async fn create_resets_status_and_fills_defaults() {
    let (_kube, client) = start().await;
    let api = pods(&client);
    let mut p = pod("web-1", Some("n1"), json!({}));
    p.status = serde_json::from_value(json!({"phase": "Running", "podIP": "10.1.2.3"})).unwrap();
    p.spec.as_mut().unwrap().containers[0].resources =
        Some(serde_json::from_value(json!({"limits": {"cpu": "100m", "memory": "64Mi"}})).unwrap());
    let created = api.create(&PostParams::default(), &p).await.unwrap();
    let status = serde_json::to_value(created.status.as_ref().unwrap()).unwrap();
    assert_eq!(status, json!({"phase": "Pending", "qosClass": "Guaranteed"}));
    assert_eq!(created.metadata.generation, Some(1));
    let spec = created.spec.as_ref().unwrap();
    assert_eq!(spec.termination_grace_period_seconds, Some(30));
    assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
    let c = &spec.containers[0];
    assert_eq!(c.image_pull_policy.as_deref(), Some("IfNotPresent"));
    assert_eq!(c.ports.as_ref().unwrap()[0].protocol.as_deref(), Some("TCP"));
    let requests = c.resources.as_ref().unwrap().requests.as_ref().unwrap();
    assert_eq!(requests["cpu"].0, "100m", "requests default to limits");
}

#[tokio::test]
async fn status_writes_merge_conditions_by_type_and_keep_the_spec() {
    let (kube, client) = start().await;
    let api = pods(&client);
    let gates = json!({"readinessGates": [{"conditionType": NEG_READY}]});
    api.create(&PostParams::default(), &pod("web-1", Some("n1"), gates))
        .await
        .unwrap();

    // The kubelet's view, written through the status subresource.
    let mut current = api.get_status("web-1").await.unwrap();
    current.status = serde_json::from_value(json!({
        "phase": "Running", "podIP": "10.0.0.7", "qosClass": "BestEffort",
        "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "ContainersReady", "status": "True"},
            {"type": "Ready", "status": "False"},
        ],
    }))
    .unwrap();
    current.spec.as_mut().unwrap().containers[0].image = Some("ignored:2".into());
    let replaced = api
        .replace_status("web-1", &PostParams::default(), &current)
        .await
        .unwrap();
    assert_eq!(
        replaced.spec.as_ref().unwrap().containers[0].image.as_deref(),
        Some("nginx:1.27"),
        "a status write keeps the spec"
    );
    let st = replaced.status.as_ref().unwrap();
    assert_eq!(
        st.pod_ips.as_ref().unwrap()[0].ip,
        "10.0.0.7",
        "podIPs follows podIP"
    );

    // A controller sets its gate condition with a strategic merge patch: merged by type.
    let patch = json!({"status": {"conditions": [{"type": NEG_READY, "status": "True", "reason": "LoadBalancerNegReady"}]}});
    let patched = api
        .patch_status("web-1", &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .unwrap();
    assert_eq!(
        conditions(&patched),
        [
            ("PodScheduled".to_string(), "True".to_string()),
            ("ContainersReady".into(), "True".into()),
            ("Ready".into(), "False".into()),
            (NEG_READY.into(), "True".into()),
        ]
    );
    assert_eq!(patched.metadata.generation, Some(1), "status is not spec");

    // Changing one condition leaves the others.
    let patch = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
    let patched = api
        .patch_status("web-1", &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .unwrap();
    assert_eq!(conditions(&patched).len(), 4);
    assert!(conditions(&patched).contains(&("Ready".into(), "True".into())));

    // A write to the main resource ignores status.
    let relabel = json!({"metadata": {"labels": {"tier": "front"}}, "status": {"phase": "Failed"}});
    let relabelled = api
        .patch("web-1", &PatchParams::default(), &Patch::Merge(relabel))
        .await
        .unwrap();
    assert_eq!(
        relabelled.status.as_ref().unwrap().phase.as_deref(),
        Some("Running")
    );

    // The status's qosClass is fixed at creation.
    let qos = json!({"status": {"qosClass": "Guaranteed"}});
    let err = status(
        api.patch_status("web-1", &PatchParams::default(), &Patch::Merge(qos))
            .await,
    );
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert_eq!(err.details.as_ref().unwrap().causes[0].field, "status.qosClass");
    let stored = kube.get("v1", "Pod", Some("default"), "web-1").unwrap();
    assert_eq!(stored["status"]["qosClass"], "BestEffort");
}

#[tokio::test]
async fn spec_updates_other_than_images_are_refused() {
    let (kube, client) = start().await;
    let api = pods(&client);
    api.create(&PostParams::default(), &pod("web-1", None, json!({})))
        .await
        .unwrap();
    let rv = kube.resource_version();
    let gates = json!({"spec": {"readinessGates": [{"conditionType": NEG_READY}]}});
    let err = status(
        api.patch("web-1", &PatchParams::default(), &Patch::Strategic(gates))
            .await,
    );
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    let cause = &err.details.as_ref().unwrap().causes[0];
    assert_eq!(
        (cause.field.as_str(), cause.reason.as_str()),
        ("spec", "FieldValueForbidden")
    );
    assert!(
        err.message
            .contains("pod updates may not change fields other than `spec.containers[*].image`"),
        "{}",
        err.message
    );
    assert_eq!(kube.resource_version(), rv, "nothing was written");

    // Containers merge by name: only the image changes, and the generation follows.
    let image = json!({"spec": {"containers": [{"name": "web", "image": "nginx:1.28"}]}});
    let patched = api
        .patch("web-1", &PatchParams::default(), &Patch::Strategic(image))
        .await
        .unwrap();
    let c = &patched.spec.as_ref().unwrap().containers;
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].image.as_deref(), Some("nginx:1.28"));
    assert_eq!(c[0].ports.as_ref().unwrap()[0].container_port, 8080);
    assert_eq!(patched.metadata.generation, Some(2));
}

#[tokio::test]
async fn invalid_pods_are_refused_with_the_fields() {
    let (_kube, client) = start().await;
    let api = pods(&client);
    let bad: Pod = serde_json::from_value(json!({
        "metadata": {"name": "bad"},
        "spec": {"containers": [
            {"name": "Web", "image": "x", "ports": [{"containerPort": 0}]},
            {"name": "side", "image": "x", "ports": [{"containerPort": 70000}]},
        ]},
    }))
    .unwrap();
    let err = status(api.create(&PostParams::default(), &bad).await);
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    let fields: Vec<(String, String)> = err
        .details
        .as_ref()
        .unwrap()
        .causes
        .iter()
        .map(|c| (c.field.clone(), c.reason.clone()))
        .collect();
    assert_eq!(
        fields,
        [
            (
                "spec.containers[0].name".to_string(),
                "FieldValueInvalid".to_string()
            ),
            (
                "spec.containers[0].ports[0].containerPort".into(),
                "FieldValueRequired".into()
            ),
            (
                "spec.containers[1].ports[0].containerPort".into(),
                "FieldValueInvalid".into()
            ),
        ]
    );
    let empty: Pod =
        serde_json::from_value(json!({"metadata": {"name": "empty"}, "spec": {"containers": []}})).unwrap();
    let err = status(api.create(&PostParams::default(), &empty).await);
    assert_eq!(err.details.as_ref().unwrap().causes[0].field, "spec.containers");
    assert!(
        err.message.contains("spec.containers: Required value"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn field_selectors_are_the_pod_ones() {
    let (_kube, client) = start().await;
    let api = pods(&client);
    for (name, node) in [("a", Some("n1")), ("b", Some("n2")), ("c", None)] {
        api.create(&PostParams::default(), &pod(name, node, json!({})))
            .await
            .unwrap();
    }
    let names = |fields: &'static str| {
        let api = api.clone();
        async move {
            api.list(&ListParams::default().fields(fields))
                .await
                .map(|l| l.items.iter().map(ResourceExt::name_any).collect::<Vec<_>>())
        }
    };
    assert_eq!(names("spec.nodeName=n1").await.unwrap(), ["a"]);
    assert_eq!(names("spec.nodeName!=n1").await.unwrap(), ["b", "c"]);
    assert_eq!(names("spec.nodeName=").await.unwrap(), ["c"]);
    assert_eq!(names("spec.host=n2").await.unwrap(), ["b"]);
    assert_eq!(
        names("status.phase=Pending,spec.restartPolicy=Always")
            .await
            .unwrap(),
        ["a", "b", "c"]
    );
    assert_eq!(names("spec.hostNetwork=false").await.unwrap().len(), 3);
    // Accepted by the conversion, but not a selectable field: it always reads as empty.
    assert_eq!(names("status.podIPs=").await.unwrap().len(), 3);
    assert!(names("status.podIPs=10.0.0.1").await.unwrap().is_empty());
    let err = status(names("spec.containers=x").await);
    assert_eq!(err.code, 400);
    assert!(
        err.message.contains("field label not supported: spec.containers"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn kube_rs_watcher_sees_status_patches() {
    let (_kube, client) = start().await;
    let api = pods(&client);
    api.create(&PostParams::default(), &pod("web-1", Some("n1"), json!({})))
        .await
        .unwrap();
    let config = watcher::Config::default().fields("spec.nodeName=n1");
    let mut events = watcher::watcher(api.clone(), config).applied_objects().boxed();
    let first = events.try_next().await.unwrap().unwrap();
    assert_eq!(first.name_any(), "web-1");

    let patch = json!({"status": {"conditions": [{"type": NEG_READY, "status": "True"}]}});
    api.patch_status(
        "web-1",
        &PatchParams::apply("neg-controller"),
        &Patch::Apply(json!({
            "apiVersion": "v1", "kind": "Pod", "status": patch["status"],
        })),
    )
    .await
    .unwrap();
    let wanted = (NEG_READY.to_string(), "True".to_string());
    let seen = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let p = events.try_next().await.unwrap().expect("the watch goes on");
            if conditions(&p).contains(&wanted) {
                break p;
            }
        }
    })
    .await
    .expect("the watcher sees the condition");
    assert_eq!(seen.status.unwrap().phase.as_deref(), Some("Pending"));
}

#[tokio::test]
async fn deleting_a_scheduled_pod_waits_for_its_grace_period() {
    let (kube, client) = start().await;
    let api = pods(&client);
    let spec = json!({"terminationGracePeriodSeconds": 45});
    let created = api
        .create(&PostParams::default(), &pod("web-1", Some("n1"), spec))
        .await
        .unwrap();
    let rv = created.resource_version().unwrap();
    let mut stream = api
        .watch(&WatchParams::default().fields("metadata.name=web-1"), &rv)
        .await
        .unwrap()
        .boxed();

    let before = jiff::Timestamp::now();
    let deleted = api.delete("web-1", &DeleteParams::default()).await.unwrap();
    let marked = deleted.left().expect("the pod is still there");
    let meta = &marked.metadata;
    assert_eq!(meta.deletion_grace_period_seconds, Some(45));
    assert_eq!(meta.generation, Some(2), "graceful deletion bumps the generation");
    let at: jiff::Timestamp = meta
        .deletion_timestamp
        .as_ref()
        .map(|t| t.0.to_string().parse().unwrap())
        .unwrap();
    let wait = at.as_second() - before.as_second();
    assert!(
        (44..=46).contains(&wait),
        "deletionTimestamp is now + grace period, got {wait}s"
    );
    match stream.try_next().await.unwrap() {
        Some(WatchEvent::Modified(p)) => assert!(p.metadata.deletion_timestamp.is_some()),
        other => panic!("expected MODIFIED, got {other:?}"),
    }
    assert!(kube.get("v1", "Pod", Some("default"), "web-1").is_some());

    // Deleting again with a longer period changes nothing; a shorter one moves the timestamp.
    let again = api
        .delete("web-1", &DeleteParams::default().grace_period(60))
        .await
        .unwrap()
        .left()
        .unwrap();
    assert_eq!(again.metadata.deletion_grace_period_seconds, Some(45));
    assert_eq!(again.resource_version(), marked.resource_version());
    let shorter = api
        .delete("web-1", &DeleteParams::default().grace_period(5))
        .await
        .unwrap()
        .left()
        .unwrap();
    assert_eq!(shorter.metadata.deletion_grace_period_seconds, Some(5));
    assert!(shorter.metadata.deletion_timestamp < marked.metadata.deletion_timestamp);

    // What the kubelet does once the containers stopped: delete with no grace period.
    let gone = api
        .delete("web-1", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    assert!(gone.is_left(), "the deleted pod is returned");
    let mut kinds = Vec::new();
    while kinds.last() != Some(&"DELETED") {
        kinds.push(match stream.try_next().await.unwrap() {
            Some(WatchEvent::Modified(_)) => "MODIFIED",
            Some(WatchEvent::Deleted(_)) => "DELETED",
            other => panic!("unexpected {other:?}"),
        });
    }
    assert_eq!(kinds, ["MODIFIED", "MODIFIED", "DELETED"]);
    assert!(api.get_opt("web-1").await.unwrap().is_none());
}

#[tokio::test]
async fn unscheduled_pods_and_finalizers() {
    let (kube, client) = start().await;
    let api = pods(&client);
    api.create(&PostParams::default(), &pod("pending", None, json!({})))
        .await
        .unwrap();
    api.delete("pending", &DeleteParams::default()).await.unwrap();
    assert!(
        kube.get("v1", "Pod", Some("default"), "pending").is_none(),
        "an unscheduled pod goes at once"
    );

    // A finalizer outlives the grace period: the pod stays until it is removed.
    let mut held = pod("held", Some("n1"), json!({}));
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    api.create(&PostParams::default(), &held).await.unwrap();
    api.delete("held", &DeleteParams::default()).await.unwrap();
    let unhold = json!({"metadata": {"finalizers": null}});
    api.patch("held", &PatchParams::default(), &Patch::Merge(unhold.clone()))
        .await
        .unwrap();
    assert!(
        kube.get("v1", "Pod", Some("default"), "held").is_some(),
        "still in its grace period"
    );
    let hold = json!({"metadata": {"finalizers": ["example.com/hold"]}});
    let err = status(
        api.patch("held", &PatchParams::default(), &Patch::Merge(hold))
            .await,
    );
    assert_eq!(err.code, 422, "no new finalizers while deleting");
    api.delete("held", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    assert!(kube.get("v1", "Pod", Some("default"), "held").is_none());
}

// The simulator: kubelets and the EndpointSlice controller.

fn simulated(termination: Termination) -> Config {
    Config {
        bookmark_interval: Duration::from_millis(200),
        simulate_pods: Some(PodSimulation {
            pod_ips: "127.0.77.1+253".parse().unwrap(),
            termination,
            ..PodSimulation::default()
        }),
        ..Config::default()
    }
}

fn node(kube: &FakeKube, name: &str, zone: &str) {
    kube.create(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone}},
        "status": {"addresses": [{"type": "InternalIP", "address": "192.0.2.10"}]},
    }))
    .unwrap();
}

fn service(kube: &FakeKube, name: &str, selector: Value, target_port: Value) {
    kube.create(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "labels": {"team": "a"}},
        "spec": {"selector": selector, "ports": [{"name": "http", "port": 80, "targetPort": target_port}]},
    }))
    .unwrap();
}

/// The managed slices of a Service, by name.
fn slices(kube: &FakeKube, service: &str) -> Vec<Value> {
    kube.list("discovery.k8s.io/v1", "EndpointSlice", Some("default"))
        .into_iter()
        .filter(|s| s["metadata"]["labels"]["kubernetes.io/service-name"] == service)
        .collect()
}

/// `(pod, ready, serving, terminating)` of every endpoint of a Service's slices.
fn endpoints(kube: &FakeKube, service: &str) -> Vec<(String, bool, bool, bool)> {
    let mut out: Vec<_> = slices(kube, service)
        .iter()
        .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
        .map(|e| {
            let c = &e["conditions"];
            (
                e["targetRef"]["name"].as_str().unwrap().to_string(),
                c["ready"] == true,
                c["serving"] == true,
                c["terminating"] == true,
            )
        })
        .collect();
    out.sort();
    out
}

fn condition(p: &Value, ty: &str) -> Option<String> {
    p["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == ty)
        .map(|c| c["status"].as_str().unwrap_or("").to_string())
}

async fn wait_for_endpoints(kube: &FakeKube, service: &str, want: &[(&str, bool, bool, bool)]) {
    let want: Vec<(String, bool, bool, bool)> = want
        .iter()
        .map(|(n, r, s, t)| (n.to_string(), *r, *s, *t))
        .collect();
    eventually(&format!("the endpoints of {service} to be {want:?}"), || {
        let got = endpoints(kube, service);
        let ok = got == want;
        async move { ok.then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn simulated_pods_are_ready_only_with_their_gates() {
    let (kube, client) = start_with(simulated(Termination::Manual)).await;
    node(&kube, "n1", "zone-a");
    service(&kube, "web", json!({"app": "web"}), json!("http"));
    let api = pods(&client);
    let gates = json!({"readinessGates": [{"conditionType": NEG_READY}]});
    api.create(&PostParams::default(), &pod("web-1", Some("n1"), gates))
        .await
        .unwrap();

    let running = eventually("the kubelet to run the pod", || {
        let p = kube.get("v1", "Pod", Some("default"), "web-1").unwrap();
        async move { (p["status"]["phase"] == "Running").then_some(p) }
    })
    .await;
    let ip = running["status"]["podIP"].as_str().unwrap().to_string();
    assert!(ip.starts_with("127.0.77."), "{ip}");
    assert_eq!(running["status"]["podIPs"], json!([{"ip": ip}]));
    assert_eq!(running["status"]["hostIP"], "192.0.2.10");
    for ty in ["PodScheduled", "Initialized", "ContainersReady"] {
        assert_eq!(condition(&running, ty).as_deref(), Some("True"), "{ty}");
    }
    assert_eq!(condition(&running, "Ready").as_deref(), Some("False"));
    let ready = running["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap();
    assert_eq!(ready["reason"], "ReadinessGatesNotReady");

    wait_for_endpoints(&kube, "web", &[("web-1", false, false, false)]).await;
    let slice = &slices(&kube, "web")[0];
    assert!(slice["metadata"]["name"].as_str().unwrap().starts_with("web-"));
    assert_eq!(
        slice["metadata"]["labels"],
        json!({"team": "a", "kubernetes.io/service-name": "web",
               "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"})
    );
    assert_eq!(slice["metadata"]["ownerReferences"][0]["kind"], "Service");
    assert_eq!(slice["addressType"], "IPv4");
    assert_eq!(
        slice["ports"],
        json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
    );
    let endpoint = &slice["endpoints"][0];
    assert_eq!(endpoint["addresses"], json!([ip]));
    assert_eq!(endpoint["nodeName"], "n1");
    assert_eq!(endpoint["zone"], "zone-a");
    assert_eq!(endpoint["targetRef"]["kind"], "Pod");
    assert_eq!(endpoint["targetRef"]["uid"], running["metadata"]["uid"]);

    // The load balancer controller sets its gate: the kubelet makes the pod Ready.
    let patch = json!({"status": {"conditions": [{"type": NEG_READY, "status": "True"}]}});
    api.patch_status("web-1", &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .unwrap();
    wait_for_endpoints(&kube, "web", &[("web-1", true, true, false)]).await;
    let p = kube.get("v1", "Pod", Some("default"), "web-1").unwrap();
    assert_eq!(condition(&p, "Ready").as_deref(), Some("True"));
    assert_eq!(
        condition(&p, NEG_READY).as_deref(),
        Some("True"),
        "the gate condition is kept"
    );

    // A failing readiness probe.
    kube.set_containers_ready("default", "web-1", false).unwrap();
    let p = kube.get("v1", "Pod", Some("default"), "web-1").unwrap();
    assert_eq!(condition(&p, "ContainersReady").as_deref(), Some("False"));
    assert_eq!(condition(&p, "Ready").as_deref(), Some("False"));
    wait_for_endpoints(&kube, "web", &[("web-1", false, false, false)]).await;
    kube.set_containers_ready("default", "web-1", true).unwrap();
    wait_for_endpoints(&kube, "web", &[("web-1", true, true, false)]).await;
    assert_eq!(
        status(Err::<(), _>(kube_error(
            kube.set_containers_ready("default", "nope", true)
        )))
        .code,
        404
    );
}

/// An `ApiError` from a knob, as a kube-rs error for the `status` helper.
fn kube_error(r: Result<(), fake_kube::ApiError>) -> kube::Error {
    let e = r.expect_err("an error");
    kube::Error::Api(Box::new(serde_json::from_value(e.to_status()).expect("a Status")))
}

#[tokio::test]
async fn terminating_pods_keep_serving_until_finished() {
    let (kube, client) = start_with(simulated(Termination::Manual)).await;
    node(&kube, "n1", "zone-a");
    service(&kube, "web", json!({"app": "web"}), json!(8080));
    let api = pods(&client);
    for name in ["web-1", "web-2"] {
        api.create(&PostParams::default(), &pod(name, Some("n1"), json!({})))
            .await
            .unwrap();
    }
    wait_for_endpoints(
        &kube,
        "web",
        &[("web-1", true, true, false), ("web-2", true, true, false)],
    )
    .await;

    api.delete("web-1", &DeleteParams::default()).await.unwrap();
    wait_for_endpoints(
        &kube,
        "web",
        &[("web-1", false, true, true), ("web-2", true, true, false)],
    )
    .await;
    assert!(kube.get("v1", "Pod", Some("default"), "web-1").is_some());
    assert_eq!(
        status(Err::<(), _>(kube_error(
            kube.finish_termination("default", "web-2")
        )))
        .code,
        409,
        "web-2 is not being deleted"
    );

    kube.finish_termination("default", "web-1").unwrap();
    assert!(kube.get("v1", "Pod", Some("default"), "web-1").is_none());
    wait_for_endpoints(&kube, "web", &[("web-2", true, true, false)]).await;

    // Without endpoints, one placeholder slice remains.
    api.delete("web-2", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    eventually("the placeholder slice", || {
        let s = slices(&kube, "web");
        let placeholder = s.len() == 1
            && s[0]["endpoints"] == json!([])
            && s[0].get("ports").is_none_or(|p| *p == json!([]));
        async move { placeholder.then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn deleted_pods_terminate_after_the_configured_time() {
    let (kube, client) = start_with(simulated(Termination::After(Duration::from_millis(100)))).await;
    node(&kube, "n1", "zone-a");
    let api = pods(&client);
    api.create(&PostParams::default(), &pod("web-1", Some("n1"), json!({})))
        .await
        .unwrap();
    eventually("the pod to run", || {
        let running =
            kube.get("v1", "Pod", Some("default"), "web-1").unwrap()["status"]["phase"] == "Running";
        async move { running.then_some(()) }
    })
    .await;
    api.delete("web-1", &DeleteParams::default()).await.unwrap();
    eventually("the kubelet to finish the pod", || {
        let gone = kube.get("v1", "Pod", Some("default"), "web-1").is_none();
        async move { gone.then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn slices_follow_labels_selectors_and_named_ports() {
    let (kube, client) = start_with(simulated(Termination::Manual)).await;
    node(&kube, "n1", "zone-a");
    service(&kube, "web", json!({"app": "web"}), json!("http"));
    let api = pods(&client);
    api.create(&PostParams::default(), &pod("web-1", Some("n1"), json!({})))
        .await
        .unwrap();
    // Another pod names its port differently: it lands in a slice of its own.
    let other_port = json!({"containers": [{"name": "web", "image": "nginx", "ports": [{"name": "http", "containerPort": 9090}]}]});
    api.create(&PostParams::default(), &pod("web-2", Some("n1"), other_port))
        .await
        .unwrap();
    // And one without the named port: its slice has no port.
    let no_port = json!({"containers": [{"name": "web", "image": "nginx"}]});
    api.create(&PostParams::default(), &pod("web-3", Some("n1"), no_port))
        .await
        .unwrap();
    // A pod on a node that does not exist is not run, and is in no slice.
    api.create(&PostParams::default(), &pod("web-4", Some("nowhere"), json!({})))
        .await
        .unwrap();
    wait_for_endpoints(
        &kube,
        "web",
        &[
            ("web-1", true, true, false),
            ("web-2", true, true, false),
            ("web-3", true, true, false),
        ],
    )
    .await;
    let mut ports: Vec<(String, Value)> = slices(&kube, "web")
        .iter()
        .map(|s| {
            (
                s["endpoints"][0]["targetRef"]["name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                s["ports"].clone(),
            )
        })
        .collect();
    ports.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        ports,
        [
            (
                "web-1".to_string(),
                json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
            ),
            (
                "web-2".to_string(),
                json!([{"name": "http", "port": 9090, "protocol": "TCP"}])
            ),
            ("web-3".to_string(), json!([])),
        ]
    );
    let stray = kube.get("v1", "Pod", Some("default"), "web-4").unwrap();
    assert_eq!(stray["status"]["phase"], "Pending", "no kubelet runs it");

    // Leaving the selector leaves the slice.
    let relabel = json!({"metadata": {"labels": {"app": "other"}}});
    api.patch("web-2", &PatchParams::default(), &Patch::Merge(relabel))
        .await
        .unwrap();
    wait_for_endpoints(
        &kube,
        "web",
        &[("web-1", true, true, false), ("web-3", true, true, false)],
    )
    .await;
    eventually("web-2's slice to go", || {
        let n = slices(&kube, "web").len();
        async move { (n == 2).then_some(()) }
    })
    .await;

    // The node appears: its pod runs and joins.
    node(&kube, "nowhere", "zone-b");
    wait_for_endpoints(
        &kube,
        "web",
        &[
            ("web-1", true, true, false),
            ("web-3", true, true, false),
            ("web-4", true, true, false),
        ],
    )
    .await;

    // A Service selecting other pods; then the Service goes, and its slices with it.
    let svc: Api<k8s_openapi::api::core::v1::Service> = Api::namespaced(client.clone(), "default");
    let select = json!({"spec": {"selector": {"app": "other"}}});
    svc.patch("web", &PatchParams::default(), &Patch::Merge(select))
        .await
        .unwrap();
    wait_for_endpoints(&kube, "web", &[("web-2", true, true, false)]).await;
    svc.delete("web", &DeleteParams::default()).await.unwrap();
    eventually("the slices to go with the Service", || {
        let none = slices(&kube, "web").is_empty();
        async move { none.then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn by_default_a_deleted_pod_goes_when_its_grace_period_ends() {
    let (kube, client) = start_with(simulated(Termination::GracePeriod)).await;
    node(&kube, "n1", "zone-a");
    let api = pods(&client);
    let spec = json!({"terminationGracePeriodSeconds": 1});
    api.create(&PostParams::default(), &pod("web-1", Some("n1"), spec))
        .await
        .unwrap();
    eventually("the pod to run", || {
        let running =
            kube.get("v1", "Pod", Some("default"), "web-1").unwrap()["status"]["phase"] == "Running";
        async move { running.then_some(()) }
    })
    .await;
    api.delete("web-1", &DeleteParams::default()).await.unwrap();
    eventually("the grace period to end", || {
        let gone = kube.get("v1", "Pod", Some("default"), "web-1").is_none();
        async move { gone.then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn the_simulator_resyncs_after_the_history_is_dropped() {
    let (kube, client) = start_with(simulated(Termination::Manual)).await;
    node(&kube, "n1", "zone-a");
    service(&kube, "web", json!({"app": "web"}), json!("http"));
    let api = pods(&client);
    api.create(&PostParams::default(), &pod("web-1", Some("n1"), json!({})))
        .await
        .unwrap();
    wait_for_endpoints(&kube, "web", &[("web-1", true, true, false)]).await;
    kube.compact_history();
    api.create(&PostParams::default(), &pod("web-2", Some("n1"), json!({})))
        .await
        .unwrap();
    wait_for_endpoints(
        &kube,
        "web",
        &[("web-1", true, true, false), ("web-2", true, true, false)],
    )
    .await;
    let ips: Vec<Value> = ["web-1", "web-2"]
        .iter()
        .map(|n| kube.get("v1", "Pod", Some("default"), n).unwrap()["status"]["podIP"].clone())
        .collect();
    assert_ne!(ips[0], ips[1], "addresses stay unique across a resync");
}
