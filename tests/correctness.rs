//! Correctness under restarts, other controllers and hostile input, in-process against
//! fake-kube and fake-gce over HTTP: each test reproduces one defect the controller once had.

mod common;

use cloud_lb_controller::annotations as keys;
use common::*;
use fake_gce::{JournalEvent, ResourceChange};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{DeleteParams, Patch, PatchParams};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

/// The state annotation, parsed.
async fn state_of(h: &Harness, name: &str) -> Option<Value> {
    serde_json::from_str(&h.annotation(name, keys::STATE).await?).ok()
}

/// Waits until the Ingress's state is `want`; returns the state.
async fn wait_state(h: &Harness, name: &str, want: &str) -> Value {
    eventually(&format!("{name} {want}"), WAIT, || async {
        state_of(h, name).await.filter(|s| s["state"] == want)
    })
    .await
}

#[tokio::test]
async fn a_refused_deletion_of_the_instance_groups_is_retried() {
    let h = Harness::start().await;
    h.apply(ECHO).await;
    h.apply(&ingress("web")).await;
    let ctl = h.spawn_controller(&["--leader-elect=false", "--cluster-uid", CLUSTER_UID]);
    wait_state(&h, "web", "Ready").await;
    let group = format!("zones/us-central1-a/instanceGroups/{}", namer().instance_group());
    // A user's backend service uses our group in one zone: the API refuses to delete it.
    let group_link = format!("https://www.googleapis.com/compute/v1/projects/{PROJECT}/{group}");
    assert_eq!(
        h.gce_call(
            Method::POST,
            "global/healthChecks",
            Some(json!({"name": "users-hc", "type": "TCP", "tcpHealthCheck": {"port": 22}}))
        )
        .await,
        200
    );
    let hc = format!("https://www.googleapis.com/compute/v1/projects/{PROJECT}/global/healthChecks/users-hc");
    let users_backend = json!({
        "name": "users-be", "healthChecks": [hc], "loadBalancingScheme": "EXTERNAL_MANAGED",
        "backends": [{"group": group_link, "balancingMode": "UTILIZATION"}],
    });
    assert_eq!(
        h.gce_call(Method::POST, "global/backendServices", Some(users_backend))
            .await,
        200
    );

    h.ingresses()
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    let deletes = |h: &Harness| {
        h.gce
            .journal()
            .entries
            .iter()
            .filter(|e| matches!(&e.event, JournalEvent::Request(r) if r.method == "DELETE" && r.path.ends_with(&group)))
            .count()
    };
    eventually("the refused deletion retried", WAIT, || async {
        (deletes(&h) >= 2).then_some(())
    })
    .await;
    assert!(h.gce.resource(&format!("projects/{PROJECT}/{group}")).is_some());

    // Once the user's backend service is gone, the retry succeeds.
    h.gce_call(Method::DELETE, "global/backendServices/users-be", None)
        .await;
    eventually("the group deleted", WAIT, || async {
        h.gce
            .resource(&format!("projects/{PROJECT}/{group}"))
            .is_none()
            .then_some(())
    })
    .await;
    ctl.stop().await;
}

#[tokio::test]
async fn two_controllers_in_one_cluster_leave_each_other_alone() {
    let h = Harness::start().await;
    h.apply(ECHO).await;
    h.apply(
        "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: canary}\nspec: {controller: example.com/canary}\n",
    )
    .await;
    h.apply(&ingress("a")).await;
    h.apply(&ingress("b").replace("ingressClassName: gce", "ingressClassName: canary"))
        .await;
    // The two share the cluster-wide resources: what one opens stays while the other may be
    // about to use it.
    let uid = ["--cluster-uid", CLUSTER_UID, "--gce-removal-grace", "1m"];
    let canary_args = [
        "--identity",
        "canary",
        "--controller-name",
        "example.com/canary",
        "--ingress-class",
        "canary",
        "--leader-election-id",
        "canary",
    ];
    let start_both = || {
        (
            h.spawn_controller(&[&uid[..], &["--identity", "main"]].concat()),
            h.spawn_controller(&[&uid[..], &canary_args[..]].concat()),
        )
    };
    let (main, canary) = start_both();
    let a = wait_state(&h, "a", "Ready").await;
    let b = wait_state(&h, "b", "Ready").await;
    let finalizers = |i: Option<Ingress>| i.and_then(|i| i.metadata.finalizers).unwrap_or_default();
    assert_eq!(
        finalizers(h.ingress("a").await),
        ["cloud-lb-controller.io/cleanup"]
    );
    let canary_finalizer = cloud_lb_controller::controller::finalizer_for("example.com/canary");
    assert_eq!(
        finalizers(h.ingress("b").await),
        std::slice::from_ref(&canary_finalizer)
    );
    assert!(canary_finalizer.starts_with("cloud-lb-controller.io/cleanup-canary-"));
    assert_eq!(a["controller"], "cloud-lb-controller.io/gce");
    assert_eq!(b["controller"], "example.com/canary");

    // Restarts collect garbage at once: neither takes the other's load balancer for an orphan.
    main.stop().await;
    canary.stop().await;
    let rules_before = h.gce_names("forwardingRules");
    assert_eq!(rules_before.len(), 2);
    let (main, canary) = start_both();
    // A change to each Ingress shows both controllers have passed the start (and its sweep).
    h.apply(&ingress("a").replace("namespace: default}", "namespace: default, labels: {v: '2'}}"))
        .await;
    h.apply(
        &ingress("b")
            .replace("ingressClassName: gce", "ingressClassName: canary")
            .replace("namespace: default}", "namespace: default, labels: {v: '2'}}"),
    )
    .await;
    h.apply(&ingress("probe")).await;
    h.apply(&ingress("probe2").replace("ingressClassName: gce", "ingressClassName: canary"))
        .await;
    wait_state(&h, "probe", "Ready").await;
    wait_state(&h, "probe2", "Ready").await;
    let rules = h.gce_names("forwardingRules");
    assert!(rules_before.is_subset(&rules), "{rules_before:?} ⊄ {rules:?}");

    // Moving `a` to the canary: the main controller removes only what it made, the canary
    // builds its own, and the address it writes stays.
    let main_ip = h.address("a").await.unwrap();
    h.apply(&ingress("a").replace("ingressClassName: gce", "ingressClassName: canary"))
        .await;
    let moved = eventually("a served by the canary", WAIT, || async {
        let ing = h.ingress("a").await?;
        let state: Value = serde_json::from_str(ing.metadata.annotations.as_ref()?.get(keys::STATE)?).ok()?;
        let done = state["controller"] == "example.com/canary"
            && state["state"] == "Ready"
            && finalizers(Some(ing.clone())) == [canary_finalizer.clone()];
        done.then_some(state)
    })
    .await;
    let canary_ip = moved["address"].as_str().unwrap().to_owned();
    assert_ne!(canary_ip, main_ip);
    // Settled: the main controller's load balancer is gone, the canary's address stands.
    let main_rule = namer().lb(cloud::gce::names::LbPart::HttpRule, "default", "a");
    eventually("the main controller's load balancer gone", WAIT, || async {
        h.gce_resource("forwardingRules", &main_rule)
            .is_none()
            .then_some(())
    })
    .await;
    assert_eq!(h.address("a").await, Some(canary_ip.clone()));
    let url_map = h.annotation("a", keys::URL_MAP).await.unwrap();
    assert!(
        h.gce_resource("urlMaps", &url_map).is_some(),
        "the annotations name the canary's resources"
    );
    assert!(h.address("b").await.is_some());
    main.stop().await;
    canary.stop().await;
}

#[tokio::test]
async fn the_resource_names_are_on_the_ingress_before_its_address_and_the_address_before_ready() {
    let h = Harness::start().await;
    h.apply(ECHO).await;
    let api = h.ingresses();
    let mut versions = Vec::new();
    let watch = {
        let api = api.clone();
        async move {
            use futures::StreamExt;
            let mut stream = std::pin::pin!(kube::runtime::watcher::watch_object(api, "web"));
            while let Some(Ok(version)) = stream.next().await {
                let Some(ing) = version else { continue };
                let ready = ing
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(keys::STATE))
                    .is_some_and(|s| s.contains(r#""state":"Ready""#));
                versions.push(ing);
                if ready {
                    return versions;
                }
            }
            versions
        }
    };
    let watching = tokio::spawn(watch);
    // Let the watch start before the Ingress exists.
    tokio::time::sleep(Duration::from_millis(200)).await;
    h.apply(&ingress("web")).await;
    let ctl = h.spawn_controller(&["--leader-elect=false"]);
    let versions = tokio::time::timeout(WAIT, watching)
        .await
        .expect("Ready in time")
        .unwrap();
    assert!(!versions.is_empty());
    for ing in &versions {
        let annotations = ing.metadata.annotations.clone().unwrap_or_default();
        let has_ip = ing
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|l| l.ingress.as_ref())
            .is_some_and(|l| !l.is_empty());
        if has_ip {
            for key in [
                keys::URL_MAP,
                keys::FORWARDING_RULE,
                keys::TARGET_PROXY,
                keys::BACKENDS,
            ] {
                assert!(
                    annotations.contains_key(key),
                    "an address without {key}: {annotations:?}"
                );
            }
        }
        if annotations
            .get(keys::STATE)
            .is_some_and(|s| s.contains(r#""state":"Ready""#))
        {
            assert!(has_ip, "Ready without an address");
        }
    }
    // The Events about the address come after it.
    let events = eventually("Created and IPAssigned", WAIT, || async {
        let e = h.events("web").await;
        (e.iter().any(|(_, r, _)| r == "Created") && e.iter().any(|(_, r, _)| r == "IPAssigned"))
            .then_some(())
    });
    events.await;
    let requests = h.kube.requests();
    let status_written = requests
        .iter()
        .filter(|r| {
            r.resource == "ingresses" && r.subresource.as_deref() == Some("status") && r.verb == "patch"
        })
        .map(|r| r.received_at)
        .min()
        .expect("a status write");
    let first_event = requests
        .iter()
        .filter(|r| r.resource == "events" && r.verb == "create")
        .map(|r| r.received_at)
        .min()
        .expect("an event");
    assert!(first_event > status_written, "an Event before the address");
    ctl.stop().await;
}

#[tokio::test]
async fn a_huge_bad_annotation_is_recorded_as_an_error_within_bounds() {
    let h = Harness::start().await;
    h.apply(ECHO).await;
    h.apply(&ingress("web")).await;
    let ctl = h.spawn_controller(&["--leader-elect=false"]);
    wait_state(&h, "web", "Ready").await;

    // An annotation edit does not bump the generation; its value is quoted in the error.
    let huge = "y".repeat(140_000);
    let patch = json!({"metadata": {"annotations": {keys::REDIRECT_TO_HTTPS: huge}}});
    h.ingresses()
        .patch("web", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let state = wait_state(&h, "web", "Error").await;
    let message = state["message"].as_str().unwrap();
    assert!(
        message.contains("is not a boolean") || message.contains(keys::REDIRECT_TO_HTTPS),
        "{message}"
    );
    assert!(message.len() <= 2048, "{}", message.len());
    assert!(message.ends_with(" more characters)"), "{message}");
    let (_, _, note) = eventually("the Translate warning", WAIT, || async {
        h.events("web")
            .await
            .into_iter()
            .find(|(t, r, _)| t == "Warning" && r == "Translate")
    })
    .await;
    assert!(
        note.len() <= 1024 && note.ends_with(" more characters)"),
        "{}",
        note.len()
    );

    // Fixed by another annotation edit: Ready again, the load balancer untouched.
    let patch = json!({"metadata": {"annotations": {keys::REDIRECT_TO_HTTPS: null}}});
    h.ingresses()
        .patch("web", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    wait_state(&h, "web", "Ready").await;
    ctl.stop().await;
}

#[tokio::test]
async fn an_ingress_with_the_longest_name_gets_its_events() {
    let h = Harness::start().await;
    h.apply(ECHO).await;
    let name = format!("{}-x", "a".repeat(251));
    assert_eq!(name.len(), 253);
    h.apply(&ingress(&name)).await;
    let ctl = h.spawn_controller(&["--leader-elect=false"]);
    wait_state(&h, &name, "Ready").await;
    eventually("Created and IPAssigned for the long name", WAIT, || async {
        let e = h.events(&name).await;
        (e.iter().any(|(_, r, _)| r == "Created") && e.iter().any(|(_, r, _)| r == "IPAssigned"))
            .then_some(())
    })
    .await;
    ctl.stop().await;
}

#[tokio::test]
async fn a_foreign_firewall_rule_under_our_name_shows_as_degraded_until_it_goes() {
    let h = Harness::start().await;
    let firewall = namer().firewall();
    let foreign = json!({
        "name": firewall, "description": "made by hand", "network": "global/networks/default",
        "sourceRanges": ["10.0.0.0/8"], "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}],
    });
    assert_eq!(
        h.gce_call(Method::POST, "global/firewalls", Some(foreign)).await,
        200
    );
    let before = h.gce_resource("firewalls", &firewall).unwrap();
    h.apply(ECHO).await;
    h.apply(&ingress("web")).await;
    let ctl = h.spawn_controller(&["--leader-elect=false", "--cluster-uid", CLUSTER_UID]);
    let state = wait_state(&h, "web", "Degraded").await;
    assert_eq!(state["reason"], "InfrastructureWarning");
    let message = state["message"].as_str().unwrap();
    assert!(
        message.contains(&firewall) && message.contains("not managed by this controller"),
        "{message}"
    );
    assert!(h.address("web").await.is_some(), "served all the same");
    assert_eq!(
        h.gce_resource("firewalls", &firewall).unwrap(),
        before,
        "never touched"
    );

    // The user removes it: the next retry builds ours, and the Ingress is Ready.
    h.gce_call(Method::DELETE, &format!("global/firewalls/{firewall}"), None)
        .await;
    wait_state(&h, "web", "Ready").await;
    let ours = h.gce_resource("firewalls", &firewall).unwrap();
    assert!(ours["description"].as_str().unwrap().contains(CLUSTER_UID));
    let created = h
        .gce
        .journal()
        .entries
        .iter()
        .filter(|e| matches!(&e.event, JournalEvent::Applied(a) if a.target_link.ends_with(&firewall) && a.change == ResourceChange::Created))
        .count();
    assert_eq!(created, 2, "the user's, then ours");
    ctl.stop().await;
}

#[tokio::test]
async fn an_ingress_over_the_url_map_limits_is_invalid_input_and_nothing_is_built() {
    let h = Harness::start().await;
    h.apply(ECHO).await;
    let paths: String = (0..1000)
        .map(|i| format!("      - {{path: /p{i}, pathType: Prefix, backend: {{service: {{name: echo, port: {{number: 80}}}}}}}}\n"))
        .collect();
    let yaml = format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: big, namespace: default}}\nspec:\n  ingressClassName: gce\n  rules:\n  - host: shop.example.com\n    http:\n      paths:\n{paths}"
    );
    h.apply(&yaml).await;
    let ctl = h.spawn_controller(&["--leader-elect=false"]);
    let state = wait_state(&h, "big", "Error").await;
    assert_eq!(state["reason"], "invalid-spec");
    let message = state["message"].as_str().unwrap();
    assert!(
        message.starts_with("default/big: spec.rules[0].http.paths: ")
            && message.contains("shop.example.com"),
        "{message}"
    );
    // Nothing of the load balancer was built, no address reserved.
    for collection in ["urlMaps", "addresses", "forwardingRules", "backendServices"] {
        assert!(
            h.gce_names(collection).is_empty(),
            "{collection}: {:?}",
            h.gce_names(collection)
        );
    }
    assert!(h.address("big").await.is_none());
    ctl.stop().await;
}

#[tokio::test]
async fn nodes_already_in_another_load_balanced_group_give_a_clear_error() {
    let h = Harness::start().await;
    // GKE's own controller grouped two of the nodes and load-balances that group.
    let link = |path: &str| format!("https://www.googleapis.com/compute/v1/projects/{PROJECT}/{path}");
    let group = "zones/us-central1-a/instanceGroups/k8s-ig--0123456789abcdef";
    let calls = [
        (
            Method::POST,
            "zones/us-central1-a/instanceGroups".to_owned(),
            json!({"name": "k8s-ig--0123456789abcdef", "network": link("global/networks/default")}),
        ),
        (
            Method::POST,
            format!("{group}/addInstances"),
            json!({"instances": [
                {"instance": link("zones/us-central1-a/instances/node-a1")},
                {"instance": link("zones/us-central1-a/instances/node-a2")},
            ]}),
        ),
        (
            Method::POST,
            "global/healthChecks".to_owned(),
            json!({"name": "k8s-be-30001--0123456789abcdef", "type": "HTTP", "httpHealthCheck": {"port": 30001}}),
        ),
        (
            Method::POST,
            "global/backendServices".to_owned(),
            json!({
                "name": "k8s-be-30001--0123456789abcdef", "loadBalancingScheme": "EXTERNAL",
                "healthChecks": [link("global/healthChecks/k8s-be-30001--0123456789abcdef")],
                "backends": [{"group": link(group), "balancingMode": "UTILIZATION"}],
            }),
        ),
    ];
    for (method, path, body) in calls {
        assert_eq!(h.gce_call(method, &path, Some(body)).await, 200, "{path}");
    }
    let theirs = |h: &Harness| {
        (
            h.gce.resource(&format!("projects/{PROJECT}/{group}")),
            h.gce_resource("backendServices", "k8s-be-30001--0123456789abcdef"),
        )
    };
    let before = theirs(&h);

    h.apply(ECHO).await;
    h.apply(&ingress("web")).await;
    let ctl = h.spawn_controller(&["--leader-elect=false"]);
    let state = wait_state(&h, "web", "Error").await;
    assert_eq!(state["reason"], "cloud-user", "{state}");
    let message = state["message"].as_str().unwrap();
    for needle in [
        "us-central1-a/k8s-ig--0123456789abcdef",
        "one load-balanced instance group",
        "container-native load balancing",
    ] {
        assert!(message.contains(needle), "{needle:?} not in {message}");
    }
    let (_, _, note) = eventually("the SyncFailed warning", WAIT, || async {
        h.events("web")
            .await
            .into_iter()
            .find(|(t, r, n)| t == "Warning" && r == "SyncFailed" && n.contains("k8s-ig--0123456789abcdef"))
    })
    .await;
    assert!(note.starts_with("cloud-user: "), "{note}");
    assert!(h.address("web").await.is_none());
    assert_eq!(
        theirs(&h),
        before,
        "GKE's group and backend service are untouched"
    );
    ctl.stop().await;
}
