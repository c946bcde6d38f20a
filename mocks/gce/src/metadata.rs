//! The metadata-server endpoints Google's client libraries use for credentials and the project
//! id, so that they run against the fake with `GCE_METADATA_HOST=127.0.0.1:PORT`. Every request
//! must carry `Metadata-Flavor: Google`, and every answer carries it too.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::Response;
use axum::routing::get;
use serde_json::json;

use crate::http::text;
use crate::state::Shared;

/// The token handed out when no token is required.
pub(crate) const DEFAULT_TOKEN: &str = "fake-gce-token";
const NUMERIC_PROJECT_ID: &str = "123456789012";

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/", get(serve))
        .route("/computeMetadata/{*rest}", get(serve))
}

async fn serve(State(shared): State<Arc<Shared>>, uri: Uri, headers: HeaderMap) -> Response {
    shared.lock().stats.metadata += 1;
    let mut r = answer(&shared, uri.path(), &headers);
    r.headers_mut()
        .insert("metadata-flavor", HeaderValue::from_static("Google"));
    r
}

fn answer(shared: &Shared, path: &str, headers: &HeaderMap) -> Response {
    const TEXT: &str = "application/text";
    if headers.get("metadata-flavor").and_then(|v| v.to_str().ok()) != Some("Google") {
        return text(
            StatusCode::FORBIDDEN,
            "text/html; charset=UTF-8",
            "Missing required header: Metadata-Flavor: Google\n".to_string(),
        );
    }
    let project = &shared.config.project_id;
    let zone = shared.config.zones.first().cloned().unwrap_or_default();
    let token = shared
        .config
        .require_token
        .clone()
        .unwrap_or_else(|| DEFAULT_TOKEN.to_string());
    let path = path.trim_end_matches('/');
    let ok = |body: String| text(StatusCode::OK, TEXT, body);
    match path {
        "" => ok("computeMetadata/\n".to_string()),
        "/computeMetadata/v1/project/project-id" => ok(project.clone()),
        "/computeMetadata/v1/project/numeric-project-id" => ok(NUMERIC_PROJECT_ID.to_string()),
        "/computeMetadata/v1/instance/zone" => ok(format!("projects/{NUMERIC_PROJECT_ID}/zones/{zone}")),
        "/computeMetadata/v1/instance/id" => ok("1000000000000000001".to_string()),
        "/computeMetadata/v1/instance/hostname" => ok(format!("fake-gce.c.{project}.internal")),
        "/computeMetadata/v1/instance/service-accounts/default/email" => {
            ok(format!("fake-gce@{project}.iam.gserviceaccount.com"))
        }
        "/computeMetadata/v1/instance/service-accounts/default/scopes" => {
            ok("https://www.googleapis.com/auth/cloud-platform\n".to_string())
        }
        "/computeMetadata/v1/instance/service-accounts/default/token" => text(
            StatusCode::OK,
            "application/json",
            json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"}).to_string(),
        ),
        _ => text(
            StatusCode::NOT_FOUND,
            "text/html; charset=UTF-8",
            format!("{path} not found\n"),
        ),
    }
}
