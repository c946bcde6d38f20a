//! The metadata-server endpoints Google's client libraries use.

use crate::common::Api;

#[tokio::test]
async fn metadata_server_needs_the_flavor_header() {
    let api = Api::start().await;
    let get = |path: &str, flavor: bool| {
        let mut req = api.client.get(api.url(path));
        if flavor {
            req = req.header("Metadata-Flavor", "Google");
        }
        req.send()
    };
    let r = get("/computeMetadata/v1/project/project-id", true)
        .await
        .expect("answer");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers().get("metadata-flavor").map(|v| v.as_bytes()),
        Some(&b"Google"[..])
    );
    assert_eq!(r.text().await.ok().as_deref(), Some("p"));
    let r = get("/computeMetadata/v1/project/project-id", false)
        .await
        .expect("answer");
    assert_eq!(r.status(), 403);
    let token = get(
        "/computeMetadata/v1/instance/service-accounts/default/token",
        true,
    )
    .await
    .expect("answer")
    .json::<serde_json::Value>()
    .await
    .expect("json");
    assert_eq!(token["access_token"], "fake-gce-token");
    assert_eq!(token["token_type"], "Bearer");
    assert!(token["expires_in"].as_u64().is_some_and(|s| s > 0));
    let email = get(
        "/computeMetadata/v1/instance/service-accounts/default/email",
        true,
    )
    .await
    .expect("answer");
    assert!(
        email
            .text()
            .await
            .ok()
            .is_some_and(|e| e.ends_with(".iam.gserviceaccount.com"))
    );
    assert_eq!(
        get("/computeMetadata/v1/nope", true)
            .await
            .map(|r| r.status().as_u16())
            .ok(),
        Some(404)
    );
    assert_eq!(get("/", true).await.map(|r| r.status().as_u16()).ok(), Some(200));
    assert_eq!(api.gce.stats().metadata, 6);
    assert_eq!(
        api.gce.stats().total.total,
        0,
        "metadata requests are not Compute calls"
    );
}
