//! The Kubernetes 1.2 Ingress announcement's three `curl` steps, sent to the sandbox's load
//! balancer through the fake Compute API's data plane:
//!
//! ```text
//! $ curl ADDRESS            -> 301 Moved Permanently (to https)
//! $ curl https://ADDRESS -k -> the echo, over TLS with the Secret's certificate (CN=echoheaders)
//! $ curl ADDRESS -Lk        -> the same echo, after the redirect
//! ```
//!
//! Only loopback addresses are ever contacted.

use anyhow::Context as _;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Where the load balancer's ports 80 and 443 are served (the same IP; the ports differ from
/// 80 and 443 when the data plane could not bind privileged ports).
#[derive(Clone, Copy, Debug)]
pub struct Frontends {
    /// Where port 80 is served.
    pub http: SocketAddr,
    /// Where port 443 is served.
    pub https: SocketAddr,
}

impl Frontends {
    /// `http://IP/` or `http://IP:PORT/` as a user types it.
    pub fn http_url(&self) -> String {
        url("http", self.http, 80)
    }

    /// `https://IP/` or `https://IP:PORT/`.
    pub fn https_url(&self) -> String {
        url("https", self.https, 443)
    }
}

fn url(scheme: &str, addr: SocketAddr, default_port: u16) -> String {
    if addr.port() == default_port {
        format!("{scheme}://{}/", addr.ip())
    } else {
        format!("{scheme}://{addr}/")
    }
}

/// The answers to the three steps.
#[derive(Clone, Debug)]
pub struct Answers {
    /// Step 1: the status (301 expected).
    pub redirect_status: u16,
    /// Step 1: the status's reason phrase.
    pub redirect_reason: String,
    /// Step 1: where it redirects to.
    pub location: Option<String>,
    /// Step 2: the subject of the certificate served (`CN=echoheaders`).
    pub certificate_subject: String,
    /// Step 2: the status.
    pub tls_status: u16,
    /// Step 2: the echo.
    pub tls_echo: String,
    /// Step 3: the status after following the redirect.
    pub followed_status: u16,
    /// Step 3: the echo.
    pub followed_echo: String,
}

impl Answers {
    /// Whether all three steps gave what the announcement shows.
    pub fn as_announced(&self) -> bool {
        self.redirect_status == 301
            && self
                .location
                .as_deref()
                .is_some_and(|l| l.starts_with("https://"))
            && self.tls_status == 200
            && self.followed_status == 200
            && self.tls_echo.starts_with("CLIENT VALUES:")
            && self.followed_echo.starts_with("CLIENT VALUES:")
    }

    /// The steps as a terminal would show them.
    pub fn render(&self, frontends: &Frontends) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "$ curl -si {}", frontends.http_url());
        let _ = writeln!(out, "HTTP/1.1 {} {}", self.redirect_status, self.redirect_reason);
        if let Some(location) = &self.location {
            let _ = writeln!(out, "Location: {location}");
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "$ curl -sk {}", frontends.https_url());
        let _ = writeln!(out, "# TLS certificate: {}", self.certificate_subject);
        out.push_str(&indent_echo(&self.tls_echo));
        let _ = writeln!(out);
        let _ = writeln!(out, "$ curl -sLk {}", frontends.http_url());
        out.push_str(&indent_echo(&self.followed_echo));
        out
    }
}

/// The echo's first section (the client values) and the headers the load balancer added.
fn indent_echo(echo: &str) -> String {
    let mut out = String::new();
    let mut in_headers = false;
    for line in echo.lines() {
        if line == "HEADERS RECEIVED:" {
            in_headers = true;
            let _ = writeln!(out, "{line}");
            continue;
        }
        if line == "BODY:" {
            break;
        }
        if line.is_empty() || line == "SERVER VALUES:" || (in_headers && line.starts_with("accept")) {
            continue;
        }
        let _ = writeln!(out, "{line}");
    }
    out
}

/// Sends the three steps, retrying until they all answer as announced or `timeout` passes
/// (the load balancer's health checks may not have passed yet); returns the last answers.
pub async fn run(frontends: &Frontends, timeout: Duration) -> anyhow::Result<Answers> {
    for addr in [frontends.http, frontends.https] {
        anyhow::ensure!(
            addr.ip().is_loopback(),
            "refusing to send a request to {addr}: the sandbox only talks to loopback addresses"
        );
    }
    let deadline = Instant::now() + timeout;
    loop {
        let answers = once(frontends).await;
        match answers {
            Ok(a) if a.as_announced() => return Ok(a),
            Ok(a) if Instant::now() > deadline => return Ok(a),
            Err(e) if Instant::now() > deadline => return Err(e),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

async fn once(frontends: &Frontends) -> anyhow::Result<Answers> {
    let plain = client(reqwest::redirect::Policy::none())?;
    let first = plain
        .get(frontends.http_url())
        .send()
        .await
        .context("step 1: GET over http")?;
    let redirect_status = first.status();
    let location = first
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned);

    let second = plain
        .get(frontends.https_url())
        .send()
        .await
        .context("step 2: GET over https")?;
    let certificate_subject = second
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .map(subject)
        .unwrap_or_else(|| "(none)".to_owned());
    let tls_status = second.status().as_u16();
    let tls_echo = second.text().await.context("step 2: reading the answer")?;

    let following = client(reqwest::redirect::Policy::limited(3))?;
    let third = following
        .get(frontends.http_url())
        .send()
        .await
        .context("step 3: GET following the redirect")?;
    let followed_status = third.status().as_u16();
    let followed_echo = third.text().await.context("step 3: reading the answer")?;
    Ok(Answers {
        redirect_status: redirect_status.as_u16(),
        redirect_reason: redirect_status.canonical_reason().unwrap_or("").to_owned(),
        location,
        certificate_subject,
        tls_status,
        tls_echo,
        followed_status,
        followed_echo,
    })
}

/// A client like `curl -k`: any certificate accepted (the sandbox's is self-signed), the peer
/// certificate kept for display, no proxy from the environment (only loopback is contacted).
fn client(redirects: reqwest::redirect::Policy) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(redirects)
        .tls_danger_accept_invalid_certs(true)
        .tls_info(true)
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .context("building the HTTP client")
}

/// `CN=echoheaders`, from a DER certificate.
fn subject(der: &[u8]) -> String {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => cert.subject().to_string(),
        Err(_) => "(unparsable certificate)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_port_only_when_it_is_not_the_default() {
        let f = Frontends {
            http: "127.1.2.1:80".parse().expect("addr"),
            https: "127.1.2.1:10443".parse().expect("addr"),
        };
        assert_eq!(f.http_url(), "http://127.1.2.1/");
        assert_eq!(f.https_url(), "https://127.1.2.1:10443/");
    }
}
