//! The Kubernetes 1.2 Ingress announcement, through the real binary and fake-gce's data plane:
//! `curl ADDRESS` → 301 to https; `curl -k https://ADDRESS` → the echo, over TLS with the
//! Secret's certificate; `curl -Lk ADDRESS` → the echo after the redirect. Then the Secret's
//! certificate is rotated while requests keep coming: none fails, and the new certificate is
//! served from then on. Only loopback addresses are contacted.

mod e2e;

use e2e::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const SERVICE: &str = include_str!("../examples/echoheaders/service.yaml");
const INGRESS: &str = include_str!("../examples/echoheaders/ingress.yaml");

fn secret(cert: &str, key: &str) -> String {
    serde_json::json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "tls"}, "type": "kubernetes.io/tls",
        "stringData": {"tls.crt": cert, "tls.key": key},
    })
    .to_string()
}

/// A certificate for `echoheaders` with the subject CN=echoheaders, and its key; also the DER.
fn echoheaders_certificate() -> (String, String, Vec<u8>) {
    let mut params = rcgen::CertificateParams::new(vec!["echoheaders".to_owned()]).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "echoheaders");
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("certificate");
    (cert.pem(), key.serialize_pem(), cert.der().to_vec())
}

fn client(follow: bool) -> reqwest::Client {
    let policy = if follow {
        reqwest::redirect::Policy::limited(3)
    } else {
        reqwest::redirect::Policy::none()
    };
    reqwest::Client::builder()
        .redirect(policy)
        .tls_danger_accept_invalid_certs(true)
        .tls_info(true)
        .no_proxy()
        // A new connection (and so a new handshake) per request: the certificate is chosen then.
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// The leaf certificate a response came with.
fn leaf(response: &reqwest::Response) -> Option<Vec<u8>> {
    response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()?
        .peer_certificate()
        .map(<[u8]>::to_vec)
}

fn url(scheme: &str, addr: std::net::SocketAddr) -> String {
    assert!(addr.ip().is_loopback(), "only loopback is contacted, not {addr}");
    format!("{scheme}://{addr}/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_announcement_curl_steps_and_a_certificate_rotation_without_a_failed_request() {
    let Some(mut env) = Env::start_serving(Duration::from_millis(200)).await else {
        return;
    };
    let (cert, key, der) = echoheaders_certificate();
    env.apply(SERVICE).await;
    env.apply(&secret(&cert, &key)).await;
    env.apply(INGRESS).await;
    env.start_controller_with(&["--health-interval", "1s"]);

    // The final condition for traffic: the backend reported HEALTHY (the load balancer sends
    // requests only to healthy instances).
    let address = env.wait_address("test").await;
    eventually("the echoheaders backend HEALTHY", WAIT, || async {
        let raw = env
            .annotation("test", cloud_lb_controller::annotations::BACKENDS)
            .await?;
        raw.contains("HEALTHY")
            .then_some(())
            .filter(|_| !raw.contains("UNHEALTHY"))
    })
    .await;
    let http = env.serving_address(&address, 80);
    let https = env.serving_address(&address, 443);

    // 1. curl ADDRESS → 301 to https.
    let first = client(false)
        .get(url("http", http))
        .send()
        .await
        .expect("GET http");
    assert_eq!(first.status().as_u16(), 301, "{first:?}");
    let location = first
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        location.starts_with(&format!("https://{address}")),
        "Location {location:?} is not https://{address}…"
    );

    // 2. curl -k https://ADDRESS → the echo, with the Secret's certificate.
    let second = client(false)
        .get(url("https", https))
        .send()
        .await
        .expect("GET https");
    assert_eq!(second.status().as_u16(), 200);
    assert_eq!(
        leaf(&second).as_deref(),
        Some(der.as_slice()),
        "not the Secret's certificate"
    );
    let echo = second.text().await.expect("body");
    assert!(echo.starts_with("CLIENT VALUES:"), "{echo}");
    assert_eq!(
        cloud_lb_controller::sandbox::echo::field(&echo, "command"),
        Some("GET")
    );
    assert_eq!(
        cloud_lb_controller::sandbox::echo::field(&echo, "real path"),
        Some("/")
    );
    assert_eq!(
        cloud_lb_controller::sandbox::echo::field(&echo, "x-forwarded-proto"),
        Some("https")
    );
    let served_by = cloud_lb_controller::sandbox::echo::field(&echo, "served_by").unwrap_or_default();
    assert!(served_by.contains("/echoheaders:8080"), "{served_by}");

    // 3. curl -Lk ADDRESS → the same echo after the redirect.
    let third = client(true).get(url("http", http)).send().await.expect("GET -L");
    assert_eq!(third.status().as_u16(), 200);
    assert_eq!(third.url().scheme(), "https");
    let echo = third.text().await.expect("body");
    assert!(echo.starts_with("CLIENT VALUES:"), "{echo}");

    // Rotation: requests keep coming on new connections while the Secret changes; every one
    // succeeds, and once the new certificate is served the old one never is again.
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let (stop, target) = (Arc::clone(&stop), url("https", https));
        tokio::spawn(async move {
            let client = client(false);
            let mut seen: Vec<Result<Vec<u8>, String>> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let answer = match client.get(&target).send().await {
                    Ok(r) if r.status().is_success() => leaf(&r).ok_or_else(|| "no certificate".to_owned()),
                    Ok(r) => Err(format!("status {}", r.status())),
                    Err(e) => Err(format!("{e}")),
                };
                seen.push(answer);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            seen
        })
    };
    let (new_cert, new_key, new_der) = echoheaders_certificate();
    env.apply(&secret(&new_cert, &new_key)).await;
    let probe = client(false);
    eventually("the rotated certificate served", WAIT, || async {
        let r = probe.get(url("https", https)).send().await.ok()?;
        (leaf(&r).as_deref() == Some(new_der.as_slice())).then_some(())
    })
    .await;
    // A little more traffic after the switch, then stop.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let seen = traffic.await.expect("traffic task");
    let failures: Vec<&String> = seen.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed during the rotation: {failures:?}\ncontroller log:\n{}",
        failures.len(),
        seen.len(),
        env.controller_log()
    );
    let certs: Vec<&Vec<u8>> = seen.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert!(
        certs.iter().all(|c| **c == der || **c == new_der),
        "an unknown certificate was served"
    );
    let first_new = certs.iter().position(|c| **c == new_der);
    if let Some(i) = first_new {
        assert!(
            certs[i..].iter().all(|c| **c == new_der),
            "the old certificate was served again after the new one"
        );
    }

    // Bad input from the cluster: no node serves the Service any more. The health checks fail,
    // the load balancer answers 502 itself, and the Ingress says Degraded with the reason.
    for node in env.node_names() {
        env.set_node_serving(node, false).await;
    }
    let state = eventually("Degraded with NoHealthyBackend", WAIT, || async {
        let state = env.state("test").await?;
        (state["state"] == "Degraded" && state["reason"] == "NoHealthyBackend").then_some(state)
    })
    .await;
    let message = state["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("echoheaders"),
        "the message names the Service: {message}"
    );
    let down = client(false)
        .get(url("https", https))
        .send()
        .await
        .expect("GET https");
    assert_eq!(
        down.status().as_u16(),
        502,
        "no healthy backend: the load balancer answers 502"
    );
    // One node back: HEALTHY, Ready, and served again.
    env.set_node_serving(env.node_names()[0], true).await;
    eventually("Ready again", WAIT, || async {
        let state = env.state("test").await?;
        (state["state"] == "Ready").then_some(())
    })
    .await;
    let back = client(false)
        .get(url("https", https))
        .send()
        .await
        .expect("GET https");
    assert_eq!(back.status().as_u16(), 200);
    env.kill_controller();
}
