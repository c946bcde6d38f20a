//! Ingress annotations: ingress-gce's keys (so manifests carry over) and ours, parsed strictly.
//!
//! A value that does not parse is an error, never a silent default (ingress-gce treats an
//! unparsable `allow-http` as true). Keys that look like ours or ingress-gce's but mean nothing
//! are warnings with a "did you mean", because a misspelt key is otherwise simply absent.

use super::problems::{Problems, annotation_field};
use super::syntax::{BOOL_HELP, gce_name_error, nearest, parse_bool};
use crate::annotations as keys;
use cloud::model::RedirectCode;
use k8s_openapi::api::networking::v1::Ingress;

/// What the Ingress's annotations ask for (each value already validated).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IngressSettings {
    /// `kubernetes.io/ingress.allow-http`, default true.
    pub(crate) allow_http: bool,
    /// `kubernetes.io/ingress.global-static-ip-name`.
    pub(crate) static_ip: Option<String>,
    /// `ingress.gcp.kubernetes.io/pre-shared-cert`, in order, each once.
    pub(crate) pre_shared_certs: Vec<String>,
    /// `cloud-lb-controller.io/redirect-to-https`, default false.
    pub(crate) redirect_to_https: bool,
    /// `cloud-lb-controller.io/redirect-response-code`, when set.
    pub(crate) redirect_code: Option<RedirectCode>,
    /// `cloud-lb-controller.io/ssl-policy`.
    pub(crate) ssl_policy: Option<String>,
}

/// Ingress-gce key prefixes whose unknown keys are checked for typos.
const GCE_PREFIXES: &[&str] = &["kubernetes.io/ingress.", "ingress.gcp.kubernetes.io/"];
/// Ingress-gce keys this controller reads on an Ingress.
const GCE_KEYS: &[&str] = &[
    keys::INGRESS_CLASS,
    keys::ALLOW_HTTP,
    keys::STATIC_IP,
    keys::PRE_SHARED_CERT,
];

/// Parses the annotations, reporting every invalid value and suspicious key.
pub(crate) fn parse(ingress: &Ingress, problems: &mut Problems) -> IngressSettings {
    let empty = Default::default();
    let annotations = ingress.metadata.annotations.as_ref().unwrap_or(&empty);
    let get = |key: &str| annotations.get(key).map(String::as_str);

    let allow_http = boolean(keys::ALLOW_HTTP, get(keys::ALLOW_HTTP), problems).unwrap_or(true);
    let static_ip = gce_name(keys::STATIC_IP, get(keys::STATIC_IP), "an address", problems);
    let pre_shared_certs = pre_shared(get(keys::PRE_SHARED_CERT), problems);
    let redirect_to_https =
        boolean(keys::REDIRECT_TO_HTTPS, get(keys::REDIRECT_TO_HTTPS), problems).unwrap_or(false);
    let redirect_code = get(keys::REDIRECT_RESPONSE_CODE).and_then(|value| {
        let code = value.parse::<u16>().ok().and_then(RedirectCode::from_status);
        if code.is_none() {
            problems.error(
                annotation_field(keys::REDIRECT_RESPONSE_CODE),
                format!("{value:?} is not a redirect status; use 301, 302, 303, 307 or 308"),
            );
        }
        code
    });
    let ssl_policy = gce_name(keys::SSL_POLICY, get(keys::SSL_POLICY), "an SSL policy", problems);

    for key in annotations.keys() {
        check_key(key, problems);
    }

    IngressSettings {
        allow_http,
        static_ip,
        pre_shared_certs,
        redirect_to_https,
        redirect_code,
        ssl_policy,
    }
}

fn boolean(key: &str, value: Option<&str>, problems: &mut Problems) -> Option<bool> {
    let value = value?;
    let parsed = parse_bool(value);
    if parsed.is_none() {
        problems.error(
            annotation_field(key),
            format!("{value:?} is not a boolean; {BOOL_HELP}"),
        );
    }
    parsed
}

/// A cloud resource name. An empty value is an error rather than "unset": for a static IP,
/// quietly falling back to an ephemeral address is the outage ingress-gce users hit.
fn gce_name(key: &str, value: Option<&str>, what: &str, problems: &mut Problems) -> Option<String> {
    let value = value?;
    match gce_name_error(value) {
        None => Some(value.to_owned()),
        Some(reason) => {
            problems.error(
                annotation_field(key),
                format!("{value:?} is not a valid name of {what}: {reason}"),
            );
            None
        }
    }
}

/// The comma-separated certificate names, trimmed, empties dropped, duplicates reported.
fn pre_shared(value: Option<&str>, problems: &mut Problems) -> Vec<String> {
    let Some(value) = value else {
        return Vec::new();
    };
    let field = annotation_field(keys::PRE_SHARED_CERT);
    let mut names: Vec<String> = Vec::new();
    for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if let Some(reason) = gce_name_error(name) {
            problems.error(
                &field,
                format!("{name:?} is not a valid certificate name: {reason}"),
            );
        } else if names.iter().any(|n| n == name) {
            problems.warn(&field, format!("{name:?} is listed twice; it is attached once"));
        } else {
            names.push(name.to_owned());
        }
    }
    if names.is_empty() && value.split(',').all(|n| n.trim().is_empty()) {
        problems.warn(&field, "names no certificate; it is ignored");
    }
    names
}

/// Reports keys that are ours (or ingress-gce's) but unknown, misplaced or unsupported.
fn check_key(key: &str, problems: &mut Problems) {
    let field = annotation_field(key);
    if keys::UNSUPPORTED_INGRESS_GCE_KEYS.contains(&key) {
        problems.warn(
            field,
            "this ingress-gce annotation is not supported by cloud-lb-controller; it is ignored",
        );
        return;
    }
    if let Some(suffix) = key.strip_prefix(keys::PREFIX) {
        if keys::KNOWN_INGRESS_KEYS.contains(&key) {
            return;
        }
        if keys::KNOWN_SERVICE_KEYS.contains(&key) {
            problems.warn(
                field,
                "this is a Service annotation; put it on the Service the backend names",
            );
            return;
        }
        let known: Vec<&str> = keys::KNOWN_INGRESS_KEYS
            .iter()
            .chain(keys::KNOWN_SERVICE_KEYS)
            .filter(|k| **k != keys::STATE)
            .filter_map(|k| k.strip_prefix(keys::PREFIX))
            .collect();
        match nearest(suffix, &known) {
            Some(near) => problems.warn(
                field,
                format!("unknown annotation; did you mean \"{}{near}\"?", keys::PREFIX),
            ),
            None => problems.warn(field, "unknown annotation; it is ignored"),
        }
        return;
    }
    // Under ingress-gce's prefixes only likely typos are reported: other controllers use
    // those prefixes too.
    if GCE_PREFIXES.iter().any(|p| key.starts_with(p)) && !GCE_KEYS.contains(&key) {
        let known: Vec<&str> = GCE_KEYS
            .iter()
            .chain(keys::UNSUPPORTED_INGRESS_GCE_KEYS)
            .copied()
            .collect();
        if let Some(near) = nearest(key, &known).filter(|near| GCE_KEYS.contains(near)) {
            problems.warn(field, format!("unknown annotation; did you mean {near:?}?"));
        }
    }
}
