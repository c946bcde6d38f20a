//! The controller in-process against fake-kube and fake-gce, over HTTP: an Ingress becomes a
//! load balancer and an address; changes follow; bad input is reported; deletion cleans up.

mod common;

use cloud_lb_controller::annotations as keys;
use common::*;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{DeleteParams, Patch, PatchParams};
use std::time::Duration;

#[tokio::test]
async fn an_ingress_gets_an_address_annotations_and_events() {
    let h = Harness::start().await;
    h.apply(ECHO).await;
    h.apply(&ingress("web")).await;
    let ctl = h.spawn_controller(&[]);
    let ip = eventually("an address", WAIT, || h.address("web")).await;

    let ing = h.ingress("web").await.unwrap();
    let annotations = ing.metadata.annotations.clone().unwrap_or_default();
    let url_map = annotations.get(keys::URL_MAP).expect("url-map annotation");
    assert!(h.gce_names("urlMaps").contains(url_map));
    assert!(annotations.contains_key(keys::FORWARDING_RULE) && annotations.contains_key(keys::TARGET_PROXY));
    assert!(!annotations.contains_key(keys::HTTPS_FORWARDING_RULE));
    assert_eq!(h.state("web").await.as_deref(), Some("Ready"));
    assert!(
        ing.metadata
            .finalizers
            .unwrap_or_default()
            .contains(&cloud_lb_controller::controller::FINALIZER.to_owned())
    );
    let rule = h
        .gce_resource("forwardingRules", &annotations[keys::FORWARDING_RULE])
        .unwrap();
    assert_eq!(rule["IPAddress"], ip.as_str());

    let events = eventually("Created and IPAssigned events", WAIT, || async {
        let e = h.events("web").await;
        (e.iter().any(|(_, r, _)| r == "Created") && e.iter().any(|(_, r, _)| r == "IPAssigned")).then_some(e)
    })
    .await;
    assert!(events.iter().all(|(t, _, _)| t == "Normal"), "{events:?}");
    ctl.stop().await;
}

#[tokio::test]
async fn a_service_node_port_change_updates_the_backend() {
    let h = Harness::start().await;
    h.apply(ECHO).await;
    h.apply(&ingress("web")).await;
    let ctl = h.spawn_controller(&[]);
    eventually("an address", WAIT, || h.address("web")).await;
    let backend = h.annotation("web", keys::BACKENDS).await.unwrap();
    let name = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&backend)
        .unwrap()
        .keys()
        .next()
        .cloned()
        .unwrap();

    h.apply(&ECHO.replace("protocol: TCP}", "protocol: TCP, nodePort: 31999}"))
        .await;
    eventually("the backend on the new node port", WAIT, || async {
        (h.gce_resource("backendServices", &name)?["portName"] == "port31999").then_some(())
    })
    .await;
    // The instance groups name the new port too.
    let state = h.gce.state();
    let groups: Vec<&serde_json::Value> = state["resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(p, _)| p.contains("/instanceGroups/"))
        .map(|(_, v)| v)
        .collect();
    assert_eq!(groups.len(), 2);
    for g in groups {
        eventually("the named port", WAIT, || async {
            let path = format!(
                "projects/{PROJECT}/zones/{}/instanceGroups/{}",
                g["zone"].as_str()?.rsplit('/').next()?,
                g["name"].as_str()?
            );
            let current = h.gce.resource(&path)?;
            current["namedPorts"]
                .as_array()?
                .iter()
                .any(|p| p["port"] == 31999)
                .then_some(())
        })
        .await;
    }
    ctl.stop().await;
}

#[tokio::test]
async fn a_secret_rotation_swaps_the_certificate() {
    let h = Harness::start().await;
    h.apply(ECHO).await;
    h.tls_secret("tls", "secure.example.com").await;
    h.apply(&ingress("secure").replace("spec:\n", "spec:\n  tls: [{secretName: tls}]\n"))
        .await;
    let ctl = h.spawn_controller(&[]);
    let ip = eventually("an address", WAIT, || h.address("secure")).await;
    let first = eventually("a certificate", WAIT, || h.annotation("secure", keys::SSL_CERT)).await;

    h.tls_secret("tls", "secure.example.com").await;
    let second = eventually("the new certificate", WAIT, || async {
        h.annotation("secure", keys::SSL_CERT)
            .await
            .filter(|c| *c != first)
    })
    .await;
    assert_eq!(
        h.gce_names("sslCertificates").into_iter().collect::<Vec<_>>(),
        std::slice::from_ref(&second)
    );
    let proxy = h.annotation("secure", keys::HTTPS_TARGET_PROXY).await.unwrap();
    let attached = h.gce_resource("targetHttpsProxies", &proxy).unwrap()["sslCertificates"][0]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(attached.ends_with(&second));
    assert_eq!(h.address("secure").await.unwrap(), ip, "the address is kept");
    ctl.stop().await;
}

#[tokio::test]
async fn a_bad_ingress_is_reported_and_others_are_unaffected() {
    let h = Harness::start().await;
    h.apply(ECHO).await;
    h.apply(&ingress("good")).await;
    h.apply(&ingress("bad").replace("port: {number: 80}", "port: {name: htp}"))
        .await;
    let ctl = h.spawn_controller(&[]);
    eventually("the good Ingress's address", WAIT, || h.address("good")).await;
    let (_, _, note) = eventually("a Translate warning", WAIT, || async {
        h.events("bad")
            .await
            .into_iter()
            .find(|(t, r, _)| t == "Warning" && r == "Translate")
    })
    .await;
    assert!(note.contains("default/bad: spec.defaultBackend.service.port.name: Service default/echo has no port named \"htp\""), "{note}");
    assert_eq!(h.state("bad").await.as_deref(), Some("Error"));
    assert!(h.address("bad").await.is_none());
    assert_eq!(
        h.gce_names("urlMaps").len(),
        1,
        "only the good Ingress has a load balancer"
    );
    ctl.stop().await;
}

#[tokio::test]
async fn a_bad_edit_keeps_the_working_load_balancer() {
    let h = Harness::start().await;
    h.apply(ECHO).await;
    h.apply(&ingress("web")).await;
    let ctl = h.spawn_controller(&[]);
    let ip = eventually("an address", WAIT, || h.address("web")).await;
    let before = h.gce.state()["resources"].clone();
    h.gce.reset_stats();

    h.apply(&ingress("web").replace("name: echo", "name: missing"))
        .await;
    eventually("a Translate warning", WAIT, || async {
        h.events("web")
            .await
            .into_iter()
            .find(|(t, r, n)| t == "Warning" && r == "Translate" && n.contains("missing"))
    })
    .await;
    eventually("the Error state", WAIT, || async {
        (h.state("web").await.as_deref() == Some("Error")).then_some(())
    })
    .await;
    assert_eq!(h.gce.state()["resources"], before, "the cloud is untouched");
    assert_eq!(h.gce.stats().total.mutations, 0);
    assert_eq!(h.address("web").await, Some(ip));

    // Fixing it brings it back to Ready, with no cloud change needed.
    h.apply(&ingress("web")).await;
    eventually("Ready again", WAIT, || async {
        (h.state("web").await.as_deref() == Some("Ready")).then_some(())
    })
    .await;
    ctl.stop().await;
}

#[tokio::test]
async fn deleting_the_ingress_deletes_its_load_balancer_then_the_finalizer() {
    let h = Harness::start().await;
    h.apply(ECHO).await;
    h.apply(&ingress("web")).await;
    let ctl = h.spawn_controller(&[]);
    eventually("an address", WAIT, || h.address("web")).await;
    h.ingresses()
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the Ingress gone", WAIT, || async {
        h.ingress("web").await.is_none().then_some(())
    })
    .await;
    for kind in [
        "forwardingRules",
        "targetHttpProxies",
        "urlMaps",
        "addresses",
        "backendServices",
        "healthChecks",
    ] {
        assert!(
            h.gce_names(kind).is_empty(),
            "{kind} left: {:?}",
            h.gce_names(kind)
        );
    }
    // With no load balancer left, the cluster-wide resources go too.
    eventually("nothing left in the cloud", WAIT, || async {
        h.gce_paths().is_empty().then_some(())
    })
    .await;
    let events = h.events("web").await;
    assert!(events.iter().any(|(_, r, _)| r == "Deleted"), "{events:?}");
    ctl.stop().await;
}

#[tokio::test]
async fn changing_the_class_away_cleans_up() {
    let h = Harness::start().await;
    h.apply(ECHO).await;
    h.apply(&ingress("web")).await;
    let ctl = h.spawn_controller(&[]);
    eventually("an address", WAIT, || h.address("web")).await;
    h.apply(&ingress("web").replace("ingressClassName: gce", "ingressClassName: nginx"))
        .await;
    let ing: Ingress = eventually("the finalizer removed", WAIT, || async {
        let ing = h.ingress("web").await?;
        ing.metadata
            .finalizers
            .as_ref()
            .is_none_or(|f| f.is_empty())
            .then_some(ing)
    })
    .await;
    assert!(h.gce_names("urlMaps").is_empty());
    let annotations = ing.metadata.annotations.unwrap_or_default();
    assert!(
        !annotations.contains_key(keys::URL_MAP) && !annotations.contains_key(keys::STATE),
        "{annotations:?}"
    );
    assert!(h.address("web").await.is_none(), "the address is cleared");
    ctl.stop().await;
}

#[tokio::test]
async fn a_controller_restarted_mid_provisioning_converges_without_duplicates() {
    let h = Harness::start().await;
    h.gce
        .set_latency(fake_gce::Latency::uniform(Duration::from_millis(150)));
    h.apply(ECHO).await;
    h.tls_secret("tls", "r.example.com").await;
    h.apply(&ingress("web").replace("spec:\n", "spec:\n  tls: [{secretName: tls}]\n"))
        .await;
    let first = h.spawn_controller(&["--leader-elect=false"]);
    eventually("provisioning under way", WAIT, || async {
        (!h.gce_names("healthChecks").is_empty()).then_some(())
    })
    .await;
    first.kill();
    assert!(h.address("web").await.is_none(), "killed before the end");

    let second = h.spawn_controller(&["--leader-elect=false"]);
    eventually("an address", WAIT, || h.address("web")).await;
    for (kind, n) in [
        ("urlMaps", 1),
        ("targetHttpProxies", 1),
        ("targetHttpsProxies", 1),
        ("forwardingRules", 2),
        ("addresses", 1),
        ("sslCertificates", 1),
        ("backendServices", 1),
    ] {
        assert_eq!(h.gce_names(kind).len(), n, "{kind}: {:?}", h.gce_names(kind));
    }
    second.stop().await;
}

#[tokio::test]
async fn with_two_replicas_only_the_leader_writes() {
    let h = Harness::start().await;
    h.apply(ECHO).await;
    h.apply(&ingress("web")).await;
    let a = h.spawn_controller(&["--identity", "replica-a"]);
    eventually("an address", WAIT, || h.address("web")).await;
    let b = h.spawn_controller(&["--identity", "replica-b"]);
    h.apply(&ingress("second")).await;
    eventually("the second address", WAIT, || h.address("second")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let writes = |agent: &str| -> Vec<String> {
        h.kube
            .requests()
            .into_iter()
            .filter(|r| r.user_agent.as_deref().unwrap_or_default().contains(agent))
            .filter(|r| matches!(r.verb.as_str(), "create" | "update" | "patch" | "delete"))
            .map(|r| {
                format!(
                    "{} {}{}",
                    r.verb,
                    r.resource,
                    r.subresource.map(|s| format!("/{s}")).unwrap_or_default()
                )
            })
            .collect()
    };
    assert!(
        writes("replica-a")
            .iter()
            .any(|w| w.starts_with("patch ingresses"))
    );
    assert!(
        writes("replica-b").is_empty(),
        "the standby wrote: {:?}",
        writes("replica-b")
    );

    // The leader goes: the standby takes over and serves new work.
    a.stop().await;
    h.apply(&ingress("third")).await;
    eventually("the third address", WAIT, || h.address("third")).await;
    assert!(
        writes("replica-b").iter().any(|w| w == "update leases"),
        "{:?}",
        writes("replica-b")
    );
    b.stop().await;
}

#[tokio::test]
async fn an_orphaned_load_balancer_is_collected() {
    let h = Harness::start().await;
    h.apply(ECHO).await;
    h.apply(&ingress("web")).await;
    h.apply(&ingress("kept")).await;
    let ctl = h.spawn_controller(&["--leader-elect=false"]);
    eventually("an address", WAIT, || h.address("web")).await;
    eventually("an address", WAIT, || h.address("kept")).await;
    ctl.stop().await;

    // Deleted while the controller was down, its finalizer removed by hand.
    let patch = serde_json::json!({"metadata": {"finalizers": null}});
    h.ingresses()
        .patch("web", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    h.ingresses()
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(h.gce_names("urlMaps").len(), 2);

    let ctl = h.spawn_controller(&["--leader-elect=false"]);
    eventually("the orphan collected", WAIT, || async {
        (h.gce_names("urlMaps").len() == 1).then_some(())
    })
    .await;
    assert_eq!(h.gce_names("forwardingRules").len(), 1);
    assert!(h.address("kept").await.is_some());
    ctl.stop().await;
}

#[tokio::test]
async fn a_failing_ingress_backs_off_instead_of_spinning() {
    let h = Harness::start().await;
    h.gce.set_quota("backendServices", Some(0));
    h.apply(ECHO).await;
    h.apply(&ingress("web")).await;
    let ctl = h.spawn_controller(&["--leader-elect=false"]);
    let (_, _, note) = eventually("a SyncFailed warning", WAIT, || async {
        h.events("web")
            .await
            .into_iter()
            .find(|(t, r, _)| t == "Warning" && r == "SyncFailed")
    })
    .await;
    assert!(
        note.starts_with("cloud-user: ") && note.to_lowercase().contains("quota"),
        "{note}"
    );
    eventually("the Error state", WAIT, || async {
        (h.state("web").await.as_deref() == Some("Error")).then_some(())
    })
    .await;
    h.gce.reset_stats();
    tokio::time::sleep(Duration::from_secs(3)).await;
    // With backoff from 1 s, a few attempts in 3 s; a reconcile loop would make hundreds.
    let attempts = h.gce.stats().kind("backendServices").mutations;
    assert!(attempts <= 6, "{attempts} attempts in 3 s");
    ctl.stop().await;
}

#[tokio::test]
async fn a_restart_with_a_broken_ingress_keeps_its_ports_open() {
    let h = Harness::start().await;
    h.apply(ECHO).await;
    h.apply(&ingress("web")).await;
    let ctl = h.spawn_controller(&["--leader-elect=false"]);
    eventually("an address", WAIT, || h.address("web")).await;
    ctl.stop().await;
    let firewall = h
        .gce_names("firewalls")
        .into_iter()
        .next()
        .expect("a firewall rule");
    let ports = h.gce_resource("firewalls", &firewall).unwrap()["allowed"].clone();

    // Broken while the controller was down: its Service is gone.
    h.apply(&ingress("web").replace("name: echo", "name: missing"))
        .await;
    let ctl = h.spawn_controller(&["--leader-elect=false"]);
    eventually("the Translate warning", WAIT, || async {
        h.events("web")
            .await
            .into_iter()
            .find(|(_, r, n)| r == "Translate" && n.contains("missing"))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rule = h
        .gce_resource("firewalls", &firewall)
        .expect("the firewall rule is kept");
    assert_eq!(rule["allowed"], ports, "its ports are kept");
    assert_eq!(
        h.gce_names("urlMaps").len(),
        1,
        "the load balancer is left as it was"
    );
    ctl.stop().await;
}
