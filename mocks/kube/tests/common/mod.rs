//! Helpers shared by the integration tests.

#![allow(dead_code)] // each test binary uses a different subset

use std::future::Future;
use std::time::Duration;

use fake_kube::{Config, FakeKube};
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// Starts a fake with short bookmark intervals, and a kube-rs client built from its kubeconfig.
pub async fn start() -> (FakeKube, Client) {
    start_with(Config {
        bookmark_interval: Duration::from_millis(200),
        ..Config::default()
    })
    .await
}

pub async fn start_with(config: Config) -> (FakeKube, Client) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kube = FakeKube::start(config).await.expect("fake-kube starts");
    let kubeconfig = Kubeconfig::from_yaml(&kube.kubeconfig_yaml()).expect("kubeconfig parses");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kube-rs accepts the kubeconfig");
    let client = Client::try_from(config).expect("client builds");
    (kube, client)
}

/// Polls `check` until it returns `Some`, failing the test after 10 seconds.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `Status` of a kube-rs API error, or a panic describing what came back instead.
pub fn status<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> Box<kube::core::Status> {
    match result {
        Err(kube::Error::Api(status)) => status,
        other => panic!("expected an API error, got {other:?}"),
    }
}
