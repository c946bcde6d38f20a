//! An echo server standing in for the `echoheaders` pods: it answers every request with what it
//! received — the client address, the method, the real path, the query, the Host and every
//! header — in the `CLIENT VALUES:` / `HEADERS RECEIVED:` layout of the echoserver image used by
//! the Kubernetes 1.2 Ingress announcement. It also says which node and Service answered, so a
//! test can tell which backend a request reached.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, Version, header};
use axum::response::IntoResponse;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A running echo server. [`EchoServer::stop`] closes its socket before returning; dropping it
/// stops accepting soon after (connections already open may finish their requests).
#[derive(Debug)]
pub struct EchoServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl EchoServer {
    /// Serves on `addr` (a loopback address), answering as `identity` (e.g. `node-1 default/echoheaders:8080`).
    pub async fn start(addr: SocketAddr, identity: &str) -> std::io::Result<EchoServer> {
        if !addr.ip().is_loopback() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("the echo server listens on loopback only, not {addr}"),
            ));
        }
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let identity = Arc::new(format!("{identity} ({addr})"));
        let app = Router::new().fallback(echo).with_state(identity);
        let task = tokio::spawn(async move {
            let service = app.into_make_service_with_connect_info::<SocketAddr>();
            if let Err(e) = axum::serve(listener, service).await {
                tracing::debug!("echo server on {addr} stopped: {e}");
            }
        });
        Ok(EchoServer { addr, task })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting; the socket is closed when this returns, so its address can be bound
    /// again at once.
    pub async fn stop(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn echo(
    State(identity): State<Arc<String>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    method: Method,
    version: Version,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let text = render(&identity, client, &method, version, &uri, &headers, &body);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
}

/// The answer's text.
fn render(
    identity: &str,
    client: SocketAddr,
    method: &Method,
    version: Version,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> String {
    use std::fmt::Write as _;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let version = match version {
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        _ => "1.1",
    };
    let mut out = String::new();
    let _ = writeln!(out, "CLIENT VALUES:");
    let _ = writeln!(out, "client_address={}", client.ip());
    let _ = writeln!(out, "command={method}");
    let _ = writeln!(out, "real path={}", uri.path());
    let _ = writeln!(out, "query={}", uri.query().unwrap_or("nil"));
    let _ = writeln!(out, "request_version={version}");
    let _ = writeln!(out, "request_uri=http://{host}{uri}");
    let _ = writeln!(out);
    let _ = writeln!(out, "SERVER VALUES:");
    let _ = writeln!(out, "server_version=cloud-lb-controller sandbox echo");
    let _ = writeln!(out, "served_by={identity}");
    let _ = writeln!(out);
    let _ = writeln!(out, "HEADERS RECEIVED:");
    let mut names: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        for value in headers.get_all(name) {
            let _ = writeln!(out, "{name}={}", String::from_utf8_lossy(value.as_bytes()));
        }
    }
    let _ = writeln!(out, "BODY:");
    if body.is_empty() {
        let _ = writeln!(out, "-no body in request-");
    } else {
        let _ = writeln!(out, "{}", String::from_utf8_lossy(body));
    }
    out
}

/// The value of `key=` on a line of an echo answer (`served_by`, `real path`, `host`, ...).
pub fn field<'a>(answer: &'a str, key: &str) -> Option<&'a str> {
    answer
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_shows_the_request() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "foo.example".parse().expect("header"));
        headers.insert("x-forwarded-proto", "https".parse().expect("header"));
        let uri: Uri = "/a/b?x=1".parse().expect("uri");
        let client: SocketAddr = "127.0.0.9:5000".parse().expect("addr");
        let text = render(
            "node-1",
            client,
            &Method::GET,
            Version::HTTP_11,
            &uri,
            &headers,
            b"",
        );
        assert_eq!(field(&text, "client_address"), Some("127.0.0.9"));
        assert_eq!(field(&text, "command"), Some("GET"));
        assert_eq!(field(&text, "real path"), Some("/a/b"));
        assert_eq!(field(&text, "query"), Some("x=1"));
        assert_eq!(field(&text, "host"), Some("foo.example"));
        assert_eq!(field(&text, "x-forwarded-proto"), Some("https"));
        assert_eq!(field(&text, "served_by"), Some("node-1"));
        assert!(text.starts_with("CLIENT VALUES:\n"));
    }
}
