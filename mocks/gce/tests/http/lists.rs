//! The list envelope: paging, filters, ordering.

use serde_json::{Value, json};

use crate::common::{Api, link};

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["name"].as_str().map(str::to_string))
        .collect()
}

async fn seeded(n: usize) -> Api {
    let api = Api::start().await;
    for i in 0..n {
        let name = if i % 2 == 0 {
            format!("k8s-hc-{i}")
        } else {
            format!("other-{i}")
        };
        api.create(
            "global/healthChecks",
            json!({"name": name, "type": "TCP", "description": format!("d{i}")}),
        )
        .await;
    }
    api
}

#[tokio::test]
async fn envelope_and_paging() {
    let api = Api::start().await;
    let empty = api.get("global/healthChecks").await.ok();
    assert_eq!(
        empty,
        json!({"kind": "compute#healthCheckList", "id": "projects/p/global/healthChecks",
               "selfLink": link("global/healthChecks")}),
        "an empty list has no items field"
    );
    let api = seeded(5).await;
    let mut all = Vec::new();
    let mut url = "global/healthChecks?maxResults=2".to_string();
    let mut pages = 0;
    loop {
        let page = api.get(&url).await.ok();
        pages += 1;
        all.extend(names(&page));
        match page["nextPageToken"].as_str() {
            Some(t) => url = format!("global/healthChecks?maxResults=2&pageToken={t}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        all,
        ["k8s-hc-0", "k8s-hc-2", "k8s-hc-4", "other-1", "other-3"],
        "name order"
    );
    assert_eq!(
        names(&api.get("global/healthChecks?maxResults=0").await.ok()).len(),
        5
    );
    api.get("global/healthChecks?maxResults=501")
        .await
        .assert_error(400, "invalid");
    api.get("global/healthChecks?pageToken=garbage")
        .await
        .assert_error(400, "invalid");
    let newest = api
        .get("global/healthChecks?orderBy=creationTimestamp%20desc&maxResults=5")
        .await
        .ok();
    assert_eq!(names(&newest).len(), 5);
    api.get("global/healthChecks?orderBy=description")
        .await
        .assert_error(400, "invalid");
}

#[tokio::test]
async fn filters_in_both_dialects() {
    let api = seeded(5).await;
    let q = |f: &str| {
        let url = api.url("global/healthChecks");
        api.send(api.client.get(url).query(&[("filter", f)]))
    };
    assert_eq!(
        names(&q("name eq k8s-hc-.*").await.ok()),
        ["k8s-hc-0", "k8s-hc-2", "k8s-hc-4"]
    );
    assert_eq!(names(&q("name ne k8s-hc-.*").await.ok()), ["other-1", "other-3"]);
    assert_eq!(
        names(&q("name eq k8s").await.ok()).len(),
        0,
        "legacy regexes match the whole field"
    );
    assert_eq!(names(&q("name = \"other-3\"").await.ok()), ["other-3"]);
    assert_eq!(
        names(&q("name = \"k8s-hc-*\" AND description = d2").await.ok()),
        ["k8s-hc-2"]
    );
    assert_eq!(
        names(&q("(name eq other-.*)(description eq d1)").await.ok()),
        ["other-1"]
    );
    assert_eq!(
        names(&q("name = other-1 OR name = other-3").await.ok()),
        ["other-1", "other-3"]
    );
    q("name eq (").await.assert_error(400, "invalid");
    q("name").await.assert_error(400, "invalid");
    // Filters combine with paging.
    let url = api.url("global/healthChecks");
    let page = api
        .send(
            api.client
                .get(&url)
                .query(&[("filter", "name eq k8s-hc-.*"), ("maxResults", "2")]),
        )
        .await
        .ok();
    assert_eq!(names(&page), ["k8s-hc-0", "k8s-hc-2"]);
    let token = page["nextPageToken"].as_str().unwrap_or_default().to_string();
    let next = api
        .send(api.client.get(&url).query(&[
            ("filter", "name eq k8s-hc-.*"),
            ("maxResults", "2"),
            ("pageToken", &token),
        ]))
        .await
        .ok();
    assert_eq!(names(&next), ["k8s-hc-4"]);
    assert!(next.get("nextPageToken").is_none());
}
