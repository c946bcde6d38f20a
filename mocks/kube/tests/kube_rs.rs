//! The fake through kube-rs: the client code a controller runs against a real cluster.

mod common;

use std::sync::Arc;

use common::{eventually, start, start_with, status};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Event as CoreEvent, Namespace, Service};
use k8s_openapi::api::events::v1::Event as EventV1;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{
    Api, DeleteParams, ListParams, PartialObjectMeta, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

fn ingress(name: &str) -> Ingress {
    serde_json::from_value(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name},
        "spec": {"ingressClassName": "gce", "rules": [{"host": "web.example.com", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}
        ]}}]}
    }))
    .unwrap()
}

fn config_map(name: &str, labels: Value) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": {"k": "v"}
    }))
    .unwrap()
}

#[tokio::test]
async fn create_get_replace_conflicts_and_validation() {
    let (kube, client) = start().await;
    let api: Api<Ingress> = Api::namespaced(client.clone(), "default");
    let pp = PostParams::default();

    let created = api.create(&pp, &ingress("web")).await.unwrap();
    assert!(created.uid().is_some());
    assert!(created.resource_version().is_some());
    assert_eq!(created.metadata.generation, Some(1));
    assert!(created.metadata.creation_timestamp.is_some());

    let dup = status(api.create(&pp, &ingress("web")).await);
    assert_eq!((dup.code, dup.reason.as_str()), (409, "AlreadyExists"));
    let missing = status(api.get("nope").await);
    assert_eq!((missing.code, missing.reason.as_str()), (404, "NotFound"));

    let mut changed = created.clone();
    changed.spec.as_mut().unwrap().ingress_class_name = Some("other".into());
    let replaced = api.replace("web", &pp, &changed).await.unwrap();
    assert_eq!(replaced.metadata.generation, Some(2));
    let stale = status(api.replace("web", &pp, &changed).await);
    assert_eq!((stale.code, stale.reason.as_str()), (409, "Conflict"));

    // Rejected writes change nothing.
    let rv = kube.resource_version();
    let bad: Ingress = serde_json::from_value(json!({"metadata": {"name": "bad"}, "spec": {}})).unwrap();
    let invalid = status(api.create(&pp, &bad).await);
    assert_eq!((invalid.code, invalid.reason.as_str()), (422, "Invalid"));
    let causes = &invalid.details.as_ref().unwrap().causes;
    assert_eq!(causes[0].field, "spec");
    assert_eq!(causes[0].reason, "FieldValueInvalid");

    let mut sideways = api.get("web").await.unwrap();
    let rule = &mut sideways.spec.as_mut().unwrap().rules.as_mut().unwrap()[0];
    rule.http.as_mut().unwrap().paths[0].path_type = "Sideways".into();
    let invalid = status(api.replace("web", &pp, &sideways).await);
    assert_eq!(invalid.code, 422);
    assert_eq!(
        invalid.details.as_ref().unwrap().causes[0].field,
        "spec.rules[0].http.paths[0].pathType"
    );
    assert_eq!(kube.resource_version(), rv);
    assert!(api.get_opt("bad").await.unwrap().is_none());
    assert_eq!(api.get("web").await.unwrap(), replaced);

    let elsewhere: Api<Ingress> = Api::namespaced(client, "nowhere");
    let no_ns = status(elsewhere.create(&pp, &ingress("web")).await);
    assert_eq!(no_ns.code, 404);
}

#[tokio::test]
async fn lists_page_and_filter() {
    let (_kube, client) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    for i in 0..25 {
        let parity = if i % 2 == 0 { "even" } else { "odd" };
        let cm = config_map(
            &format!("cm-{i:02}"),
            json!({"parity": parity, "n": i.to_string()}),
        );
        api.create(&PostParams::default(), &cm).await.unwrap();
    }

    let first = api.list(&ListParams::default().limit(10)).await.unwrap();
    assert_eq!(first.items.len(), 10);
    assert_eq!(first.metadata.remaining_item_count, Some(15));
    let token = first.metadata.continue_.clone().expect("a continue token");
    // A write between pages shows up in a later page; the list's resourceVersion stays.
    api.create(&PostParams::default(), &config_map("zz-late", json!({})))
        .await
        .unwrap();
    let second = api
        .list(&ListParams::default().limit(10).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(second.metadata.resource_version, first.metadata.resource_version);
    let third = api
        .list(
            &ListParams::default()
                .limit(10)
                .continue_token(second.metadata.continue_.as_deref().unwrap()),
        )
        .await
        .unwrap();
    assert!(third.metadata.continue_.is_none());
    let names: Vec<String> = [first, second, third]
        .into_iter()
        .flat_map(|l| l.items)
        .map(|c| c.name_any())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(names, sorted, "pages are ordered and disjoint");
    assert_eq!(names.len(), 26);

    let count = |lp: ListParams| {
        let api = api.clone();
        async move { api.list(&lp).await.unwrap().items.len() }
    };
    assert_eq!(count(ListParams::default().labels("parity=even")).await, 13);
    assert_eq!(
        count(ListParams::default().labels("parity in (odd),n!=1")).await,
        11
    );
    assert_eq!(count(ListParams::default().labels("!parity")).await, 1);
    assert_eq!(
        count(ListParams::default().fields("metadata.name=cm-03")).await,
        1
    );
    assert_eq!(
        count(ListParams::default().fields("metadata.namespace!=default")).await,
        0
    );
    let bad = status(api.list(&ListParams::default().labels("parity in even")).await);
    assert_eq!(bad.code, 400);
    let bad = status(api.list(&ListParams::default().fields("data.k=v")).await);
    assert_eq!(bad.code, 400);
    let bad = status(
        api.list(&ListParams::default().continue_token("not-a-token"))
            .await,
    );
    assert_eq!(bad.code, 400);
}

#[tokio::test]
async fn status_subresource_and_generation() {
    let (kube, client) = start().await;
    let api: Api<Ingress> = Api::namespaced(client, "default");
    api.create(&PostParams::default(), &ingress("web")).await.unwrap();
    let pp = PatchParams::default();
    let lb = |ip: &str| json!({"status": {"loadBalancer": {"ingress": [{"ip": ip}]}}});

    let patched = api
        .patch_status("web", &pp, &Patch::Merge(lb("203.0.113.7")))
        .await
        .unwrap();
    let ip = |i: &Ingress| {
        i.status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|l| l.ingress.as_ref())
            .map(|v| v[0].ip.clone())
    };
    assert_eq!(ip(&patched), Some(Some("203.0.113.7".into())));
    assert_eq!(
        patched.metadata.generation,
        Some(1),
        "status writes leave generation alone"
    );

    // Writing status through the main resource changes nothing at all.
    let rv = kube.resource_version();
    let same = api
        .patch("web", &pp, &Patch::Merge(lb("198.51.100.1")))
        .await
        .unwrap();
    assert_eq!(ip(&same), Some(Some("203.0.113.7".into())));
    assert_eq!(
        kube.resource_version(),
        rv,
        "a no-op write does not bump the resourceVersion"
    );

    let respec = api
        .patch(
            "web",
            &pp,
            &Patch::Merge(json!({"spec": {"ingressClassName": "other"}})),
        )
        .await
        .unwrap();
    assert_eq!(respec.metadata.generation, Some(2));
    assert_eq!(
        ip(&respec),
        Some(Some("203.0.113.7".into())),
        "spec writes keep status"
    );

    let labelled = api
        .patch(
            "web",
            &pp,
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap();
    assert_eq!(labelled.metadata.generation, Some(2), "metadata is not spec");

    // A status write ignores spec changes.
    let mut both = labelled.clone();
    both.spec.as_mut().unwrap().ingress_class_name = Some("ignored".into());
    both.status = serde_json::from_value(lb("192.0.2.1")["status"].clone()).unwrap();
    let replaced = api
        .replace_status("web", &PostParams::default(), &both)
        .await
        .unwrap();
    assert_eq!(
        replaced.spec.as_ref().unwrap().ingress_class_name.as_deref(),
        Some("other")
    );
    assert_eq!(ip(&replaced), Some(Some("192.0.2.1".into())));

    // Server-side apply of status, as controllers using kube-rs commonly do.
    let applied = api
        .patch_status(
            "web",
            &PatchParams::apply("test-controller").force(),
            &Patch::Apply(json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "status": lb("203.0.113.9")["status"]})),
        )
        .await
        .unwrap();
    assert_eq!(ip(&applied), Some(Some("203.0.113.9".into())));

    // A patch carrying a stale resourceVersion is a precondition failure.
    let stale = status(
        api.patch(
            "web",
            &pp,
            &Patch::Merge(json!({"metadata": {"resourceVersion": "1", "labels": {"x": "y"}}})),
        )
        .await,
    );
    assert_eq!(stale.code, 409);
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let (_kube, client) = start().await;
    let api: Api<Ingress> = Api::namespaced(client, "default");
    let created = api.create(&PostParams::default(), &ingress("web")).await.unwrap();
    let mut events = api
        .watch(
            &WatchParams::default().timeout(30),
            &created.resource_version().unwrap(),
        )
        .await
        .unwrap()
        .boxed();
    const NAME: &str = "example.com/cleanup";
    let noop = |_: Finalizer<Ingress>| async { Ok::<_, Never>(Action::await_change()) };

    // kube-rs's finalizer helper adds the finalizer with a JSON patch that tests for null.
    finalizer(&api, NAME, Arc::new(created), noop).await.unwrap();
    let with = api.get("web").await.unwrap();
    assert_eq!(with.finalizers(), [NAME.to_string()]);

    let deleting = api.delete("web", &DeleteParams::default()).await.unwrap();
    let deleting = deleting
        .left()
        .expect("the object comes back while finalizers remain");
    assert!(deleting.metadata.deletion_timestamp.is_some());
    assert_eq!(
        deleting.metadata.generation,
        Some(2),
        "the deletion mark bumps the generation"
    );
    assert!(
        api.get("web")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    );

    let more = status(
        api.patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": [NAME, "example.com/more"]}})),
        )
        .await,
    );
    assert_eq!(more.code, 422, "no finalizer may be added while deleting");

    // The helper's cleanup removes the finalizer (JSON patch test + remove); the object goes.
    let current = api.get("web").await.unwrap();
    finalizer(&api, NAME, Arc::new(current), noop).await.unwrap();
    assert!(api.get_opt("web").await.unwrap().is_none());

    let mut seen = Vec::new();
    while let Some(ev) = events.try_next().await.unwrap() {
        match ev {
            WatchEvent::Added(_) => seen.push("ADDED"),
            WatchEvent::Modified(_) => seen.push("MODIFIED"),
            WatchEvent::Deleted(_) => {
                seen.push("DELETED");
                break;
            }
            WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(e) => panic!("watch error {e:?}"),
        }
    }
    // Finalizer added, deletion marked, and the removal of the last finalizer completes it.
    assert_eq!(seen, ["MODIFIED", "MODIFIED", "DELETED"]);
}

#[tokio::test]
async fn watch_streams_changes_and_bookmarks() {
    let (_kube, client) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = api
        .watch(&WatchParams::default().timeout(30), &rv)
        .await
        .unwrap()
        .boxed();

    api.create(&PostParams::default(), &config_map("a", json!({})))
        .await
        .unwrap();
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "w"}})),
    )
    .await
    .unwrap();
    api.delete("a", &DeleteParams::default()).await.unwrap();

    let mut seen = Vec::new();
    let mut bookmark_rv = None;
    while bookmark_rv.is_none() || seen.len() < 3 {
        match stream.try_next().await.unwrap().expect("the watch stays open") {
            WatchEvent::Added(c) => seen.push(("ADDED", c.data.unwrap()["k"].clone())),
            WatchEvent::Modified(c) => seen.push(("MODIFIED", c.data.unwrap()["k"].clone())),
            WatchEvent::Deleted(c) => seen.push(("DELETED", c.data.unwrap()["k"].clone())),
            WatchEvent::Bookmark(b) => bookmark_rv = Some(b.metadata.resource_version),
            WatchEvent::Error(e) => panic!("watch error {e:?}"),
        }
    }
    assert_eq!(
        seen,
        [
            ("ADDED", "v".to_string()),
            ("MODIFIED", "w".to_string()),
            ("DELETED", "w".to_string())
        ]
    );
    let latest = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    assert_eq!(
        bookmark_rv.unwrap(),
        latest,
        "bookmarks carry the latest resourceVersion"
    );
}

#[tokio::test]
async fn selector_watches_see_objects_leave_and_enter() {
    let (_kube, client) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    api.create(&PostParams::default(), &config_map("a", json!({"team": "x"})))
        .await
        .unwrap();
    let rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = api
        .watch(&WatchParams::default().labels("team=x").disable_bookmarks(), &rv)
        .await
        .unwrap()
        .boxed();
    let relabel = |team: &'static str| {
        let api = api.clone();
        async move {
            api.patch(
                "a",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {"team": team}}})),
            )
            .await
            .unwrap();
        }
    };
    relabel("y").await;
    relabel("x").await;
    let kinds: Vec<&str> = stream
        .by_ref()
        .take(2)
        .map(|e| match e.unwrap() {
            WatchEvent::Added(_) => "ADDED",
            WatchEvent::Deleted(_) => "DELETED",
            other => panic!("unexpected {other:?}"),
        })
        .collect()
        .await;
    assert_eq!(kinds, ["DELETED", "ADDED"]);
}

#[tokio::test]
async fn watch_from_a_forgotten_resource_version_gets_410() {
    let (kube, client) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    api.create(&PostParams::default(), &config_map("a", json!({})))
        .await
        .unwrap();
    kube.compact_history();
    let mut stream = api.watch(&WatchParams::default(), "1").await.unwrap().boxed();
    match stream.try_next().await.unwrap() {
        Some(WatchEvent::Error(e)) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        other => panic!("expected a 410 error event, got {other:?}"),
    }
    assert!(
        stream.try_next().await.unwrap().is_none(),
        "the watch ends after the error"
    );
}

type Events = futures::stream::BoxStream<'static, Result<watcher::Event<ConfigMap>, watcher::Error>>;

async fn next(events: &mut Events) -> Result<watcher::Event<ConfigMap>, watcher::Error> {
    tokio::time::timeout(std::time::Duration::from_secs(10), events.next())
        .await
        .expect("watcher event in time")
        .expect("watcher stream continues")
}

/// Reads a watcher's initial sync and returns the names it delivered.
async fn initial_sync(events: &mut Events) -> Vec<String> {
    let mut names = Vec::new();
    loop {
        match next(events).await {
            Ok(watcher::Event::Init) => names.clear(),
            Ok(watcher::Event::InitApply(cm)) => names.push(cm.name_any()),
            Ok(watcher::Event::InitDone) => return names,
            other => panic!("unexpected during initial sync: {other:?}"),
        }
    }
}

/// kube-rs's watcher, told its resourceVersion is gone, re-lists and carries on.
#[tokio::test]
async fn watcher_recovers_from_410() {
    let (kube, client) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    api.create(&PostParams::default(), &config_map("before", json!({})))
        .await
        .unwrap();
    let mut events: Events = watcher(api.clone(), watcher::Config::default()).boxed();

    assert_eq!(initial_sync(&mut events).await, ["before"]);

    api.create(&PostParams::default(), &config_map("during", json!({})))
        .await
        .unwrap();
    match next(&mut events).await {
        Ok(watcher::Event::Apply(cm)) => assert_eq!(cm.name_any(), "during"),
        other => panic!("expected Apply, got {other:?}"),
    }

    let lists_before = kube
        .requests()
        .iter()
        .filter(|r| r.verb == "list" && r.resource == "configmaps")
        .count();
    kube.compact_history();
    match next(&mut events).await {
        Err(watcher::Error::WatchError(e)) => assert_eq!(e.code, 410),
        other => panic!("expected the 410 watch error, got {other:?}"),
    }
    assert_eq!(
        initial_sync(&mut events).await,
        ["before", "during"],
        "the watcher re-listed"
    );
    let lists_after = kube
        .requests()
        .iter()
        .filter(|r| r.verb == "list" && r.resource == "configmaps")
        .count();
    assert_eq!(lists_after, lists_before + 1);

    api.create(&PostParams::default(), &config_map("after", json!({})))
        .await
        .unwrap();
    match next(&mut events).await {
        Ok(watcher::Event::Apply(cm)) => assert_eq!(cm.name_any(), "after"),
        other => panic!("expected Apply, got {other:?}"),
    }
}

/// A watch that falls further behind than the kept history is expired as well.
#[tokio::test]
async fn lagging_watch_beyond_history_gets_410() {
    let (_kube, client) = start_with(fake_kube::Config {
        watch_history: 5,
        ..fake_kube::Config::default()
    })
    .await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    for i in 0..10 {
        api.create(&PostParams::default(), &config_map(&format!("c{i}"), json!({})))
            .await
            .unwrap();
    }
    let mut stream = api.watch(&WatchParams::default(), &rv).await.unwrap().boxed();
    match stream.try_next().await.unwrap() {
        Some(WatchEvent::Error(e)) => assert_eq!(e.code, 410),
        other => panic!("expected a 410 error event, got {other:?}"),
    }
}

#[tokio::test]
async fn streaming_list_and_metadata_watchers() {
    let (kube, client) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for name in ["a", "b"] {
        api.create(&PostParams::default(), &config_map(name, json!({})))
            .await
            .unwrap();
    }
    kube.clear_requests();
    let names: Vec<String> = watcher(api.clone(), watcher::Config::default().streaming_lists())
        .take_while(|e| futures::future::ready(!matches!(e, Ok(watcher::Event::InitDone))))
        .filter_map(|e| async move {
            match e.unwrap() {
                watcher::Event::InitApply(cm) => Some(cm.name_any()),
                _ => None,
            }
        })
        .collect()
        .await;
    assert_eq!(names, ["a", "b"]);
    let verbs: Vec<String> = kube.requests().iter().map(|r| r.verb.clone()).collect();
    assert_eq!(verbs, ["watch"], "a streaming list needs no list call");

    let meta_api: Api<PartialObjectMeta<ConfigMap>> = Api::namespaced(client, "default");
    let meta_names: Vec<String> = watcher(meta_api, watcher::Config::default())
        .take_while(|e| futures::future::ready(!matches!(e, Ok(watcher::Event::InitDone))))
        .filter_map(|e| async move {
            match e.unwrap() {
                watcher::Event::InitApply(m) => Some(m.name_any()),
                _ => None,
            }
        })
        .collect()
        .await;
    assert_eq!(meta_names, ["a", "b"]);
}

#[tokio::test]
async fn server_side_apply_creates_updates_and_prunes() {
    let (_kube, client) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let pp = PatchParams::apply("test-manager");
    let first = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "ssa", "labels": {"a": "1", "b": "2"}}, "data": {"k1": "v1", "k2": "v2"}});
    let created = api.patch("ssa", &pp, &Patch::Apply(&first)).await.unwrap();
    assert_eq!(created.labels().len(), 2);

    // Another writer's field survives this manager's next apply; the fields it dropped go.
    api.patch(
        "ssa",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"theirs": "x"}})),
    )
    .await
    .unwrap();
    let second = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "ssa", "labels": {"a": "1"}}, "data": {"k1": "v1-new"}});
    let updated = api.patch("ssa", &pp, &Patch::Apply(&second)).await.unwrap();
    assert_eq!(updated.labels().keys().collect::<Vec<_>>(), ["a"]);
    let data = updated.data.unwrap();
    assert_eq!(data.get("k1").map(String::as_str), Some("v1-new"));
    assert!(!data.contains_key("k2"));
    assert_eq!(data.get("theirs").map(String::as_str), Some("x"));
}

#[tokio::test]
async fn events_recorded_through_events_v1_show_in_core_v1() {
    let (_kube, client) = start().await;
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), "default");
    let ing = ingresses
        .create(&PostParams::default(), &ingress("web"))
        .await
        .unwrap();
    let recorder = Recorder::new(client.clone(), "test-controller".into());
    let event = Event {
        type_: EventType::Normal,
        reason: "Sync".into(),
        note: Some("load balancer created".into()),
        action: "Create".into(),
        secondary: None,
    };
    let reference = ing.object_ref(&());
    recorder.publish(&event, &reference).await.unwrap();
    // The same event again becomes a series (a merge patch of the events.k8s.io object).
    recorder.publish(&event, &reference).await.unwrap();

    let core: Api<CoreEvent> = Api::namespaced(client.clone(), "default");
    let selector = format!(
        "involvedObject.name=web,involvedObject.kind=Ingress,involvedObject.uid={}",
        ing.uid().unwrap()
    );
    let found = core
        .list(&ListParams::default().fields(&selector))
        .await
        .unwrap()
        .items;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].message.as_deref(), Some("load balancer created"));
    assert_eq!(found[0].reporting_component.as_deref(), Some("test-controller"));
    assert_eq!(found[0].series.as_ref().map(|s| s.count), Some(Some(2)));

    let v1: Api<EventV1> = Api::namespaced(client, "default");
    let found = v1
        .list(&ListParams::default().fields("regarding.name=web"))
        .await
        .unwrap()
        .items;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].note.as_deref(), Some("load balancer created"));
}

#[tokio::test]
async fn leases_use_optimistic_concurrency() {
    let (_kube, client) = start().await;
    let api: Api<Lease> = Api::namespaced(client, "kube-system");
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": "cloud-lb-controller"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}
    }))
    .unwrap();
    api.create(&PostParams::default(), &lease).await.unwrap();
    let mut held = api.get("cloud-lb-controller").await.unwrap();
    let stale = held.clone();
    held.spec.as_mut().unwrap().holder_identity = Some("b".into());
    let taken = api
        .replace("cloud-lb-controller", &PostParams::default(), &held)
        .await
        .unwrap();
    assert_eq!(taken.spec.unwrap().holder_identity.as_deref(), Some("b"));
    let lost = status(
        api.replace("cloud-lb-controller", &PostParams::default(), &stale)
            .await,
    );
    assert_eq!((lost.code, lost.reason.as_str()), (409, "Conflict"));
}

#[tokio::test]
async fn namespaces_are_seeded_and_terminate_after_their_content() {
    let (kube, client) = start().await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let names: Vec<String> = namespaces
        .list(&ListParams::default())
        .await
        .unwrap()
        .iter()
        .map(|n| n.name_any())
        .collect();
    for seeded in ["default", "kube-system", "kube-public"] {
        assert!(names.contains(&seeded.to_string()), "{seeded} is seeded");
    }
    let kube_system = namespaces.get("kube-system").await.unwrap();
    assert_eq!(
        kube_system.uid().as_deref(),
        Some(fake_kube::DEFAULT_KUBE_SYSTEM_UID)
    );
    assert_eq!(kube_system.uid().as_deref(), Some(kube.kube_system_uid()));

    let team: Namespace = serde_json::from_value(json!({"metadata": {"name": "team"}})).unwrap();
    namespaces.create(&PostParams::default(), &team).await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    let mut held = config_map("held", json!({}));
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    cms.create(&PostParams::default(), &held).await.unwrap();
    cms.create(&PostParams::default(), &config_map("free", json!({})))
        .await
        .unwrap();

    namespaces.delete("team", &DeleteParams::default()).await.unwrap();
    let terminating = namespaces.get("team").await.unwrap();
    assert_eq!(terminating.status.unwrap().phase.as_deref(), Some("Terminating"));
    assert!(cms.get_opt("free").await.unwrap().is_none());
    assert!(
        cms.get("held")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    );
    let refused = status(
        cms.create(&PostParams::default(), &config_map("new", json!({})))
            .await,
    );
    assert_eq!(refused.code, 403);

    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    eventually("the namespace to go", || {
        let namespaces = namespaces.clone();
        async move { namespaces.get_opt("team").await.unwrap().is_none().then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn services_get_cluster_ips_and_unique_node_ports() {
    let (_kube, client) = start().await;
    let api: Api<Service> = Api::namespaced(client, "default");
    let svc = |name: &str, node_port: Option<u16>| -> Service {
        let mut port = json!({"port": 80, "targetPort": 8080});
        if let Some(n) = node_port {
            port["nodePort"] = json!(n);
        }
        serde_json::from_value(
            json!({"metadata": {"name": name}, "spec": {"type": "NodePort", "ports": [port]}}),
        )
        .unwrap()
    };
    let a = api.create(&PostParams::default(), &svc("a", None)).await.unwrap();
    let spec = a.spec.unwrap();
    let node_port = spec.ports.as_ref().unwrap()[0].node_port.unwrap();
    assert!((30000..=32767).contains(&node_port));
    assert!(spec.cluster_ip.unwrap().starts_with("10.96."));

    let clash = status(
        api.create(&PostParams::default(), &svc("b", Some(node_port as u16)))
            .await,
    );
    assert_eq!(clash.code, 422);
    assert_eq!(
        clash.details.as_ref().unwrap().causes[0].field,
        "spec.ports[0].nodePort"
    );

    let relabelled = api
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        relabelled.spec.unwrap().ports.unwrap()[0].node_port,
        Some(node_port)
    );
    api.delete("a", &DeleteParams::default()).await.unwrap();
    api.create(&PostParams::default(), &svc("b", Some(node_port as u16)))
        .await
        .unwrap();
}

#[tokio::test]
async fn requests_are_recorded() {
    let (kube, client) = start().await;
    let api: Api<Ingress> = Api::namespaced(client, "default");
    kube.clear_requests();
    api.create(&PostParams::default(), &ingress("web")).await.unwrap();
    api.get("web").await.unwrap();
    api.list(&ListParams::default()).await.unwrap();
    api.patch_status(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {}})),
    )
    .await
    .unwrap();
    let _ = api.get("missing").await;
    api.delete("web", &DeleteParams::default()).await.unwrap();
    /// verb, group, resource, subresource, name, status
    type Row = (String, String, String, Option<String>, Option<String>, u16);
    let seen: Vec<Row> = kube
        .requests()
        .into_iter()
        .map(|r| (r.verb, r.group, r.resource, r.subresource, r.name, r.status))
        .collect();
    let row = |verb: &str, sub: Option<&str>, name: Option<&str>, code: u16| -> Row {
        (
            verb.to_string(),
            "networking.k8s.io".to_string(),
            "ingresses".to_string(),
            sub.map(String::from),
            name.map(String::from),
            code,
        )
    };
    assert_eq!(
        seen,
        [
            row("create", None, None, 201),
            row("get", None, Some("web"), 200),
            row("list", None, None, 200),
            row("patch", Some("status"), Some("web"), 200),
            row("get", None, Some("missing"), 404),
            row("delete", None, Some("web"), 200),
        ]
    );
    assert!(kube.requests().iter().all(|r| r.is_resource_request()));
}

#[tokio::test]
async fn shutdown_ends_open_watches() {
    let (kube, client) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let mut stream = api
        .watch(&WatchParams::default().timeout(300), "0")
        .await
        .unwrap()
        .boxed();
    let reader = tokio::spawn(async move { while let Ok(Some(_)) = stream.try_next().await {} });
    tokio::time::timeout(std::time::Duration::from_secs(10), kube.shutdown())
        .await
        .expect("shutdown does not wait for the watch's timeout");
    tokio::time::timeout(std::time::Duration::from_secs(10), reader)
        .await
        .expect("the client sees the watch end")
        .unwrap();
}

#[tokio::test]
async fn watches_end_after_timeout_seconds() {
    let (_kube, client) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = api
        .watch(&WatchParams::default().timeout(1).disable_bookmarks(), &rv)
        .await
        .unwrap()
        .boxed();
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), stream.try_next())
        .await
        .expect("the server ends the watch");
    assert!(ended.unwrap().is_none(), "no events, just the end");
}

/// The shape of the real controller: a kube-rs `Controller` over Ingresses that also watches
/// Services, with a finalizer and status writes. Create gets an address; delete runs cleanup.
#[tokio::test]
async fn a_kube_rs_controller_runs_against_the_fake() {
    use kube::Client;
    use kube::runtime::Controller;
    use kube::runtime::reflector::ObjectRef;

    let (kube, client) = start().await;
    let ingresses: Api<Ingress> = Api::all(client.clone());
    let services: Api<Service> = Api::all(client.clone());
    let cleaned = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));

    let ctx = (client.clone(), cleaned.clone());
    let controller = Controller::new(ingresses.clone(), watcher::Config::default())
        .watches(services, watcher::Config::default(), |svc: Service| {
            // Every Ingress in the Service's namespace named after it.
            let ns = svc.namespace().unwrap_or_default();
            Some(ObjectRef::new(&svc.name_any()).within(&ns))
        })
        .run(
            |ing: Arc<Ingress>, ctx: Arc<(Client, Arc<std::sync::Mutex<Vec<String>>>)>| async move {
                let api: Api<Ingress> = Api::namespaced(ctx.0.clone(), &ing.namespace().unwrap_or_default());
                finalizer(&api, "example.com/lb", ing, |event| async {
                    match event {
                        Finalizer::Apply(ing) => {
                            let status =
                                json!({"status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.50"}]}}});
                            api.patch_status(&ing.name_any(), &PatchParams::default(), &Patch::Merge(status))
                                .await
                                .map_err(Box::new)?;
                            Ok(Action::await_change())
                        }
                        Finalizer::Cleanup(ing) => {
                            ctx.1.lock().unwrap().push(ing.name_any());
                            Ok(Action::await_change())
                        }
                    }
                })
                .await
                .map_err(|e: kube::runtime::finalizer::Error<Box<kube::Error>>| {
                    std::io::Error::other(e.to_string())
                })
            },
            |_, _, _| Action::requeue(std::time::Duration::from_millis(100)),
            Arc::new(ctx),
        )
        .for_each(|_| futures::future::ready(()));
    let running = tokio::spawn(controller);

    let api: Api<Ingress> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &ingress("web")).await.unwrap();
    eventually("the controller to write the address", || {
        let api = api.clone();
        async move {
            let ing = api.get("web").await.unwrap();
            let lb = ing.status?.load_balancer?.ingress?;
            (lb[0].ip.as_deref() == Some("203.0.113.50")).then_some(())
        }
    })
    .await;
    api.delete("web", &DeleteParams::default()).await.unwrap();
    eventually("cleanup to finish and the Ingress to go", || {
        let api = api.clone();
        async move { api.get_opt("web").await.unwrap().is_none().then_some(()) }
    })
    .await;
    assert_eq!(*cleaned.lock().unwrap(), ["web"]);
    let verbs: std::collections::BTreeSet<(String, String, Option<String>)> = kube
        .requests()
        .into_iter()
        .map(|r| (r.verb, r.resource, r.subresource))
        .collect();
    for (verb, resource, sub) in [
        ("list", "ingresses", None),
        ("watch", "ingresses", None),
        ("list", "services", None),
        ("watch", "services", None),
        ("patch", "ingresses", Some("status")),
        ("patch", "ingresses", None),
    ] {
        let want = (verb.to_string(), resource.to_string(), sub.map(String::from));
        assert!(verbs.contains(&want), "{want:?} not in {verbs:?}");
    }
    running.abort();
}
