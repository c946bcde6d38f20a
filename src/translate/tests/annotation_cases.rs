//! Ingress annotations: listeners, address, pre-shared certificates, redirect, SSL policy, and
//! unknown or unsupported keys.

use super::*;
use cloud::model::{AddressRequest, RedirectCode};

fn ann(key: &str) -> String {
    format!("metadata.annotations[{key:?}]")
}

/// An Ingress with these annotations and only a default backend.
fn plain(annotations: Value) -> Value {
    annotated(annotations, default_only())
}

/// An Ingress with these annotations, a default backend and the `tls` Secret.
fn with_tls(annotations: Value) -> Value {
    annotated(
        annotations,
        json!({"defaultBackend": svc("echo", 80), "tls": [{"secretName": "tls"}]}),
    )
}

const ALLOW_HTTP: &str = "kubernetes.io/ingress.allow-http";
const REDIRECT: &str = "cloud-lb-controller.io/redirect-to-https";
const CODE: &str = "cloud-lb-controller.io/redirect-response-code";
const POLICY: &str = "cloud-lb-controller.io/ssl-policy";
const PRE_SHARED: &str = "ingress.gcp.kubernetes.io/pre-shared-cert";
const STATIC_IP: &str = "kubernetes.io/ingress.global-static-ip-name";

/// `errors` with the annotation key turned into its field path.
fn ann_errors<const N: usize>(rows: [(&str, &str); N]) -> Expect {
    Expect::Errors(rows.iter().map(|(k, m)| (ann(k), (*m).to_owned())).collect())
}

/// `ok` with the annotation key turned into its field path.
fn ann_ok<const N: usize>(rows: [(&str, &str); N], check: fn(&LoadBalancer)) -> Expect {
    Expect::Ok {
        warnings: rows.iter().map(|(k, m)| (ann(k), (*m).to_owned())).collect(),
        check: Check::Model(check),
    }
}

#[test]
fn annotation_cases() {
    let cases = vec![
        case(
            "allow-http false with TLS",
            with_tls(json!({ALLOW_HTTP: "false"})),
            ok([], |lb| {
                assert!(!lb.frontends.http && lb.frontends.https.is_some())
            }),
        ),
        case(
            "allow-http in Go's other spellings",
            with_tls(json!({ALLOW_HTTP: "F"})),
            ok([], |lb| assert!(!lb.frontends.http)),
        ),
        case(
            "allow-http true",
            plain(json!({ALLOW_HTTP: "True"})),
            ok([], |lb| assert!(lb.frontends.http)),
        ),
        case(
            "allow-http not a boolean",
            with_tls(json!({ALLOW_HTTP: "no"})),
            ann_errors([(ALLOW_HTTP, r#""no" is not a boolean; use true or false"#)]),
        ),
        case(
            "allow-http false without TLS",
            plain(json!({ALLOW_HTTP: "false"})),
            ann_errors([(
                ALLOW_HTTP,
                "both HTTP and HTTPS are disabled: HTTP is off and there is no spec.tls or pre-shared certificate",
            )]),
        ),
        case(
            "allow-http false with only a pre-shared certificate",
            plain(json!({ALLOW_HTTP: "0", PRE_SHARED: "my-cert"})),
            ok([], |lb| {
                assert!(!lb.frontends.http);
                let https = lb
                    .frontends
                    .https
                    .as_ref()
                    .map(|h| h.pre_shared_certificates.clone());
                assert_eq!(https, Some(vec!["my-cert".to_owned()]));
            }),
        ),
        case(
            "static IP",
            plain(json!({STATIC_IP: "my-ip"})),
            ok([], |lb| {
                assert_eq!(lb.address, AddressRequest::Static { name: "my-ip".into() })
            }),
        ),
        case(
            "static IP not a GCE name",
            plain(json!({STATIC_IP: "My_IP"})),
            ann_errors([(
                STATIC_IP,
                r#""My_IP" is not a valid name of an address: it must start with a lower-case letter"#,
            )]),
        ),
        case(
            "empty static IP",
            plain(json!({STATIC_IP: ""})),
            ann_errors([(STATIC_IP, r#""" is not a valid name of an address: it is empty"#)]),
        ),
        case(
            "pre-shared certificates trimmed and deduplicated",
            plain(json!({PRE_SHARED: " a, b,,a "})),
            ann_ok(
                [(PRE_SHARED, r#""a" is listed twice; it is attached once"#)],
                |lb| {
                    let https = lb
                        .frontends
                        .https
                        .as_ref()
                        .map(|h| h.pre_shared_certificates.clone());
                    assert_eq!(https, Some(vec!["a".to_owned(), "b".to_owned()]));
                    assert!(lb.frontends.http);
                },
            ),
        ),
        case(
            "pre-shared certificate with an invalid name",
            plain(json!({PRE_SHARED: "a,B-cert"})),
            ann_errors([(
                PRE_SHARED,
                r#""B-cert" is not a valid certificate name: it must start with a lower-case letter"#,
            )]),
        ),
        case(
            "pre-shared certificate list naming nothing",
            plain(json!({PRE_SHARED: " , "})),
            ann_ok([(PRE_SHARED, "names no certificate; it is ignored")], |lb| {
                assert!(lb.frontends.https.is_none())
            }),
        ),
        case(
            "secrets and pre-shared certificates together",
            with_tls(json!({PRE_SHARED: "a"})),
            ok([], |lb| {
                let https = lb.frontends.https.as_ref().map(|h| h.certificate_count());
                assert_eq!(https, Some(2));
            }),
        ),
        case(
            "redirect to HTTPS",
            with_tls(json!({REDIRECT: "true"})),
            ok([], |lb| {
                assert_eq!(
                    lb.frontends.redirect_to_https,
                    Some(RedirectCode::MovedPermanently)
                );
                assert!(lb.frontends.http);
            }),
        ),
        case(
            "redirect with 308",
            with_tls(json!({REDIRECT: "true", CODE: "308"})),
            ok([], |lb| {
                assert_eq!(
                    lb.frontends.redirect_to_https,
                    Some(RedirectCode::PermanentRedirect)
                )
            }),
        ),
        case(
            "redirect false",
            with_tls(json!({REDIRECT: "false"})),
            ok([], |lb| assert_eq!(lb.frontends.redirect_to_https, None)),
        ),
        case(
            "redirect without HTTPS",
            plain(json!({REDIRECT: "true"})),
            ann_errors([(
                REDIRECT,
                "redirecting to HTTPS needs HTTPS: add spec.tls or a pre-shared certificate",
            )]),
        ),
        case(
            "redirect with HTTP off",
            with_tls(json!({REDIRECT: "true", ALLOW_HTTP: "false"})),
            ann_errors([(
                REDIRECT,
                "contradicts kubernetes.io/ingress.allow-http: false (the redirect is served on HTTP)",
            )]),
        ),
        case(
            "redirect not a boolean",
            with_tls(json!({REDIRECT: "yes"})),
            ann_errors([(REDIRECT, r#""yes" is not a boolean; use true or false"#)]),
        ),
        case(
            "redirect code not a redirect",
            with_tls(json!({REDIRECT: "true", CODE: "300"})),
            ann_errors([(
                CODE,
                r#""300" is not a redirect status; use 301, 302, 303, 307 or 308"#,
            )]),
        ),
        case(
            "redirect code without redirect",
            with_tls(json!({CODE: "302"})),
            ann_ok(
                [(
                    CODE,
                    r#"has no effect without cloud-lb-controller.io/redirect-to-https: "true""#,
                )],
                |lb| assert_eq!(lb.frontends.redirect_to_https, None),
            ),
        ),
        case(
            "SSL policy",
            with_tls(json!({POLICY: "modern-tls"})),
            ok([], |lb| {
                let policy = lb.frontends.https.as_ref().and_then(|h| h.ssl_policy.clone());
                assert_eq!(policy.as_deref(), Some("modern-tls"));
            }),
        ),
        case(
            "SSL policy without HTTPS",
            plain(json!({POLICY: "modern-tls"})),
            ann_ok(
                [(
                    POLICY,
                    "has no effect without HTTPS (spec.tls or pre-shared-cert)",
                )],
                |lb| assert!(lb.frontends.https.is_none()),
            ),
        ),
        case(
            "SSL policy not a GCE name",
            with_tls(json!({POLICY: "Modern"})),
            ann_errors([(
                POLICY,
                r#""Modern" is not a valid name of an SSL policy: it must start with a lower-case letter"#,
            )]),
        ),
        case(
            "misspelt key of ours",
            plain(json!({"cloud-lb-controller.io/redirect-to-http": "true"})),
            ann_ok(
                [(
                    "cloud-lb-controller.io/redirect-to-http",
                    r#"unknown annotation; did you mean "cloud-lb-controller.io/redirect-to-https"?"#,
                )],
                |_| {},
            ),
        ),
        case(
            "unknown key of ours",
            plain(json!({"cloud-lb-controller.io/frobnicate": "1"})),
            ann_ok(
                [(
                    "cloud-lb-controller.io/frobnicate",
                    "unknown annotation; it is ignored",
                )],
                |_| {},
            ),
        ),
        case(
            "Service key on the Ingress",
            plain(json!({"cloud-lb-controller.io/health-check-path": "/healthz"})),
            ann_ok(
                [(
                    "cloud-lb-controller.io/health-check-path",
                    "this is a Service annotation; put it on the Service the backend names",
                )],
                |_| {},
            ),
        ),
        case(
            "unsupported ingress-gce key",
            plain(json!({"networking.gke.io/v1beta1.FrontendConfig": "fc"})),
            ann_ok(
                [(
                    "networking.gke.io/v1beta1.FrontendConfig",
                    "this ingress-gce annotation is not supported by cloud-lb-controller; it is ignored",
                )],
                |_| {},
            ),
        ),
        case(
            "misspelt ingress-gce key",
            plain(json!({"kubernetes.io/ingress.allow-htp": "false"})),
            ann_ok(
                [(
                    "kubernetes.io/ingress.allow-htp",
                    r#"unknown annotation; did you mean "kubernetes.io/ingress.allow-http"?"#,
                )],
                |lb| assert!(lb.frontends.http),
            ),
        ),
        case(
            "other controllers' keys and our state key are left alone",
            plain(json!({
                "kubernetes.io/ingress.class": "gce",
                "nginx.ingress.kubernetes.io/rewrite-target": "/",
                "cloud-lb-controller.io/state": "{}",
                "ingress.kubernetes.io/url-map": "um",
            })),
            ok([], |_| {}),
        ),
        case(
            "several annotation errors at once",
            plain(json!({ALLOW_HTTP: "nope", STATIC_IP: "-x", CODE: "abc"})),
            ann_errors([
                (ALLOW_HTTP, r#""nope" is not a boolean; use true or false"#),
                (
                    STATIC_IP,
                    r#""-x" is not a valid name of an address: it must start with a lower-case letter"#,
                ),
                (
                    CODE,
                    r#""abc" is not a redirect status; use 301, 302, 303, 307 or 308"#,
                ),
            ]),
        ),
    ];
    run(cases);
}
