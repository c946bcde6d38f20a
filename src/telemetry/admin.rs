//! The admin HTTP server: `/healthz` (the controller is not wedged: see [`Liveness`]), `/readyz`
//! (the controller's caches have synced, or it is a standby replica waiting for the lease),
//! `/metrics`.

use super::liveness::Liveness;
use super::metrics::Metrics;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Readiness, shared between the controller and the admin server.
#[derive(Debug, Default)]
pub struct Health {
    ready: AtomicBool,
}

impl Health {
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}

#[derive(Clone)]
struct AppState {
    health: Arc<Health>,
    liveness: Arc<Liveness>,
    metrics: Arc<Metrics>,
}

/// The routes; `health` and `metrics` choose which of them this listener serves.
fn router(state: AppState, health: bool, metrics: bool) -> Router {
    let mut router = Router::new();
    if health {
        router = router
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz));
    }
    if metrics {
        router = router.route("/metrics", get(metrics_text));
    }
    router.with_state(state)
}

async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    match state.liveness.check() {
        Ok(()) => (StatusCode::OK, "ok".to_owned()),
        Err(problems) => (StatusCode::SERVICE_UNAVAILABLE, problems.join("\n")),
    }
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.health.is_ready() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

/// Binds the admin listeners (one when both addresses are equal).
pub async fn bind(
    health_addr: SocketAddr,
    metrics_addr: SocketAddr,
) -> std::io::Result<Vec<(tokio::net::TcpListener, bool, bool)>> {
    if health_addr == metrics_addr {
        return Ok(vec![(
            tokio::net::TcpListener::bind(health_addr).await?,
            true,
            true,
        )]);
    }
    Ok(vec![
        (tokio::net::TcpListener::bind(health_addr).await?, true, false),
        (tokio::net::TcpListener::bind(metrics_addr).await?, false, true),
    ])
}

/// Serves the bound listeners until `shutdown` resolves.
pub async fn serve(
    listeners: Vec<(tokio::net::TcpListener, bool, bool)>,
    health: Arc<Health>,
    liveness: Arc<Liveness>,
    metrics: Arc<Metrics>,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    let state = AppState {
        health,
        liveness,
        metrics,
    };
    let servers = listeners.into_iter().map(|(listener, h, m)| {
        let app = router(state.clone(), h, m);
        let shutdown = shutdown.clone();
        async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await
        }
    });
    for result in futures::future::join_all(servers).await {
        result?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serves_health_readiness_and_metrics() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listeners = bind("127.0.0.1:0".parse().unwrap(), "127.0.0.2:0".parse().unwrap())
            .await
            .unwrap();
        let health_port = listeners[0].0.local_addr().unwrap().port();
        let metrics_port = listeners[1].0.local_addr().unwrap().port();
        let health = Arc::new(Health::default());
        let metrics = Arc::new(Metrics::default());
        metrics.set_leader(true);
        let cancel = tokio_util::sync::CancellationToken::new();
        let liveness = Arc::new(Liveness::new(
            std::time::Duration::from_secs(3600),
            std::time::Duration::ZERO,
        ));
        let server = tokio::spawn(serve(
            listeners,
            health.clone(),
            liveness.clone(),
            metrics,
            cancel.clone(),
        ));
        let get = |port: u16, path: &'static str| async move {
            let r = reqwest::get(format!(
                "http://{}:{port}{path}",
                if port == health_port {
                    "127.0.0.1"
                } else {
                    "127.0.0.2"
                }
            ))
            .await
            .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        };
        assert_eq!(get(health_port, "/healthz").await.0, 200);
        // Any reconcile counts as stuck with a zero limit.
        let stuck = liveness.reconciling("default/web");
        let (status, text) = get(health_port, "/healthz").await;
        assert_eq!(status, 503);
        assert!(text.contains("default/web"), "{text}");
        drop(stuck);
        assert_eq!(get(health_port, "/healthz").await.0, 200);
        assert_eq!(get(health_port, "/readyz").await.0, 503);
        health.set_ready(true);
        assert_eq!(get(health_port, "/readyz").await.0, 200);
        assert_eq!(
            get(health_port, "/metrics").await.0,
            404,
            "metrics live on their own address"
        );
        let (status, text) = get(metrics_port, "/metrics").await;
        assert_eq!(status, 200);
        assert!(text.contains("cloud_lb_controller_leader 1"), "{text}");
        cancel.cancel();
        server.await.unwrap().unwrap();
    }
}
