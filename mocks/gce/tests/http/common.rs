//! Test helpers: a fake on an ephemeral port, a reqwest client, and request shorthands.

use std::time::Duration;

use fake_gce::{Config, FakeGce};
use reqwest::Method;
use serde_json::{Value, json};

pub const LINK: &str = "https://www.googleapis.com/compute/v1/";

/// A running fake and a client for project `p`.
pub struct Api {
    pub gce: FakeGce,
    pub client: reqwest::Client,
}

/// A response: status and JSON body (`Null` when the body is not JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
}

impl Resp {
    /// The `reason` of a synchronous error body.
    pub fn reason(&self) -> &str {
        self.body["error"]["errors"][0]["reason"].as_str().unwrap_or("")
    }

    pub fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }

    /// Asserts a synchronous error in the real shape.
    #[track_caller]
    pub fn assert_error(&self, status: u16, reason: &str) {
        assert_eq!(self.status, status, "{:#}", self.body);
        assert_eq!(self.reason(), reason, "{:#}", self.body);
        let e = &self.body["error"];
        assert_eq!(e["code"], status, "{e:#}");
        assert!(e["message"].is_string(), "{e:#}");
        assert_eq!(e["errors"][0]["domain"], "global", "{e:#}");
        assert_eq!(e["errors"][0]["message"], e["message"], "{e:#}");
    }

    #[track_caller]
    pub fn ok(self) -> Value {
        assert_eq!(self.status, 200, "{:#}", self.body);
        self.body
    }
}

/// The default configuration with project `p`.
pub fn config() -> Config {
    Config {
        project_id: "p".into(),
        ..Config::default()
    }
}

pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Api {
    /// A fake whose default project (for seeded instances) is `p`, the project tests use.
    pub async fn start() -> Api {
        Self::with(config()).await
    }

    pub async fn with(config: Config) -> Api {
        install_crypto();
        let gce = FakeGce::start(config).await.expect("fake starts");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        Api { gce, client }
    }

    /// `path` relative to `projects/p/`, or absolute from `/` (e.g. `/_fake/stats`), or a self link.
    pub fn url(&self, path: &str) -> String {
        if let Some(rest) = path.strip_prefix(LINK) {
            format!("{}{rest}", self.gce.base_url())
        } else if let Some(rest) = path.strip_prefix("https://www.googleapis.com/") {
            format!("{}/{rest}", self.gce.endpoint())
        } else if path.starts_with('/') {
            format!("{}{path}", self.gce.endpoint())
        } else {
            format!("{}projects/p/{path}", self.gce.base_url())
        }
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        let mut req = self.client.request(method, self.url(path));
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req).await
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp { status, body }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.call(Method::DELETE, path, None).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.call(Method::PATCH, path, Some(body)).await
    }

    /// Polls an operation with `wait` until it is DONE.
    pub async fn wait(&self, op: &Value) -> Value {
        let link = op["selfLink"].as_str().expect("operation selfLink");
        for _ in 0..100 {
            let got = self.post(&format!("{link}/wait"), json!({})).await.ok();
            if got["status"] == "DONE" {
                return got;
            }
        }
        panic!("operation never finished: {op:#}");
    }

    /// A mutation whose operation must finish without error; returns the DONE operation.
    pub async fn done(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let resp = self.call(method, path, body).await;
        let op = resp.ok();
        assert_eq!(op["kind"], "compute#operation", "{op:#}");
        let done = self.wait(&op).await;
        assert!(done.get("error").is_none(), "operation failed: {done:#}");
        done
    }

    /// Inserts into a collection and waits; returns the resource as a GET shows it.
    pub async fn create(&self, collection: &str, body: Value) -> Value {
        let name = body["name"].as_str().expect("name").to_string();
        self.done(Method::POST, collection, Some(body)).await;
        self.get(&format!("{collection}/{name}")).await.ok()
    }

    /// A mutation whose operation must fail; returns the failed DONE operation.
    pub async fn failed(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let op = self.call(method, path, body).await.ok();
        let done = self.wait(&op).await;
        assert!(
            done.get("error").is_some(),
            "operation should have failed: {done:#}"
        );
        done
    }

    pub async fn stats(&self) -> Value {
        self.get("/_fake/stats").await.ok()
    }
}

/// A self-signed certificate and its key, as PEM.
pub fn cert(host: &str) -> (String, String) {
    let ck = rcgen::generate_simple_self_signed(vec![host.to_string()]).expect("certificate");
    (ck.cert.pem(), ck.signing_key.serialize_pem())
}

pub fn link(path: &str) -> String {
    format!("{LINK}projects/p/{path}")
}

pub const ZONE: &str = "us-central1-a";

/// Seeds `n` instances `node-0..` in ZONE; returns their self links.
pub fn seed_nodes(api: &Api, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| api.gce.seed_instance(ZONE, &format!("node-{i}")).expect("seeded"))
        .collect()
}
