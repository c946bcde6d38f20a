//! Connections to backends — the only place the data plane connects anywhere, and only to
//! loopback addresses ([`loopback`]): an instance whose IP is not in `127.0.0.0/8` is
//! unreachable (its probes fail, it gets no traffic).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;

use hyper::body::{Body, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::tls;

/// The error type of a body sent to a backend.
pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a backend could not be reached or did not answer.
#[derive(Debug, thiserror::Error)]
pub(super) enum NetError {
    /// The address is not a loopback address: never connected to.
    #[error("{0} is not a loopback address: unreachable from the fake's data plane")]
    NotLoopback(String),
    /// TCP connect failed.
    #[error("connect to {addr}: {source}")]
    Connect {
        /// Where.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The TLS handshake failed (or no TLS client could be built).
    #[error("TLS with {addr}: {reason}")]
    Tls {
        /// Where.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// The HTTP exchange failed.
    #[error("HTTP with {addr}: {source}")]
    Http {
        /// Where.
        addr: SocketAddr,
        /// Why.
        source: hyper::Error,
    },
}

/// How the load balancer talks to a backend: a backend service's `protocol`, or a health
/// check's `type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Wire {
    /// HTTP/1.1 in the clear.
    Http,
    /// HTTP/1.1 over TLS.
    Https,
    /// HTTP/2 over TLS (ALPN `h2`).
    Http2,
}

impl Wire {
    /// `HTTP`, `HTTPS`, `HTTP2`; anything else (TCP, SSL, GRPC, ...) is not HTTP.
    pub(super) fn parse(s: &str) -> Option<Wire> {
        match s {
            "HTTP" => Some(Wire::Http),
            "HTTPS" => Some(Wire::Https),
            "HTTP2" => Some(Wire::Http2),
            _ => None,
        }
    }
}

/// The TLS client configurations towards backends (built once).
#[derive(Debug)]
pub(super) struct Clients {
    http1: Result<Arc<ClientConfig>, String>,
    h2: Result<Arc<ClientConfig>, String>,
}

impl Clients {
    pub(super) fn new() -> Clients {
        let build = |alpn: &[&[u8]]| tls::backend_client(alpn).map_err(|e| e.to_string());
        Clients {
            http1: build(&[b"http/1.1"]),
            h2: build(&[b"h2"]),
        }
    }
}

/// `ip` if it is a loopback IPv4 address; the data plane reaches nothing else.
pub(super) fn loopback(ip: &str) -> Result<Ipv4Addr, NetError> {
    match ip.parse::<Ipv4Addr>() {
        Ok(a) if a.is_loopback() => Ok(a),
        _ => Err(NetError::NotLoopback(ip.to_string())),
    }
}

/// Connects to `addr`, a loopback address (checked again here, whoever the caller).
pub(super) async fn connect(addr: SocketAddrV4) -> Result<TcpStream, NetError> {
    let ip = loopback(&addr.ip().to_string())?;
    let addr = SocketAddr::from((ip, addr.port()));
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|source| NetError::Connect { addr, source })?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// TLS over `stream`, without SNI (the peer is an address) and without verification.
pub(super) async fn tls(
    clients: &Clients,
    wire: Wire,
    stream: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, NetError> {
    let addr = stream
        .peer_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
    let tls_err = |reason: String| NetError::Tls { addr, reason };
    let config = match wire {
        Wire::Http2 => &clients.h2,
        _ => &clients.http1,
    };
    let config = config.as_ref().map_err(|e| tls_err(e.clone()))?;
    TlsConnector::from(Arc::clone(config))
        .connect(ServerName::IpAddress(addr.ip().into()), stream)
        .await
        .map_err(|e| tls_err(e.to_string()))
}

/// Sends `req` to the backend at `addr` on a new connection, speaking `wire`; the connection
/// lives until the response body is read (or dropped).
pub(super) async fn send<B>(
    clients: &Clients,
    wire: Wire,
    addr: SocketAddrV4,
    req: Request<B>,
) -> Result<Response<Incoming>, NetError>
where
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let stream = connect(addr).await?;
    let at = SocketAddr::V4(addr);
    match wire {
        Wire::Http => http1(stream, req, at).await,
        Wire::Https => http1(tls(clients, wire, stream).await?, req, at).await,
        Wire::Http2 => http2(tls(clients, wire, stream).await?, req, at).await,
    }
}

async fn http1<IO, B>(io: IO, req: Request<B>, addr: SocketAddr) -> Result<Response<Incoming>, NetError>
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let http = |source| NetError::Http { addr, source };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(http)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender.send_request(req).await.map_err(http)
}

async fn http2<IO, B>(io: IO, req: Request<B>, addr: SocketAddr) -> Result<Response<Incoming>, NetError>
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let http = |source| NetError::Http { addr, source };
    let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
        .await
        .map_err(http)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender.send_request(req).await.map_err(http)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_is_reachable() {
        assert!(loopback("127.3.4.5").is_ok());
        for ip in ["10.128.0.2", "34.120.0.1", "8.8.8.8", "::1", "localhost", ""] {
            assert!(matches!(loopback(ip), Err(NetError::NotLoopback(_))), "{ip}");
        }
    }
}
