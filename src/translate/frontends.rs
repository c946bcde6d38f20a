//! The listeners: HTTP on/off, HTTPS with its certificates, the redirect, the address.
//!
//! HTTPS is on when the Ingress asks for it (a `spec.tls` entry or a pre-shared certificate),
//! HTTP unless `allow-http` is false. Settings that contradict each other are errors, settings
//! that cannot take effect are warnings.

use super::Limits;
use super::annotations::IngressSettings;
use super::problems::{Problems, annotation_field};
use super::tls::TlsCertificates;
use crate::annotations as keys;
use cloud::model::{AddressRequest, Frontends, HttpsFrontend, RedirectCode};

/// Assembles the frontends from the parsed annotations and certificates.
pub(crate) fn frontends(
    settings: &IngressSettings,
    tls: TlsCertificates,
    tls_entries: usize,
    limits: &Limits,
    problems: &mut Problems,
) -> Frontends {
    let wants_https = tls_entries > 0 || !settings.pre_shared_certs.is_empty();
    let count = tls.certificates.len() + tls.failed + settings.pre_shared_certs.len();
    if count > limits.max_certificates {
        problems.error(
            if tls_entries > 0 { "spec.tls".to_owned() } else { annotation_field(keys::PRE_SHARED_CERT) },
            format!(
                "{count} certificates ({} from spec.tls, {} pre-shared) exceed the limit of {} per load balancer",
                tls.certificates.len() + tls.failed,
                settings.pre_shared_certs.len(),
                limits.max_certificates
            ),
        );
    }

    if !settings.allow_http && !wants_https {
        problems.error(
            annotation_field(keys::ALLOW_HTTP),
            "both HTTP and HTTPS are disabled: HTTP is off and there is no spec.tls or pre-shared certificate",
        );
    }

    let redirect = if settings.redirect_to_https {
        let field = annotation_field(keys::REDIRECT_TO_HTTPS);
        if !wants_https {
            problems.error(
                &field,
                "redirecting to HTTPS needs HTTPS: add spec.tls or a pre-shared certificate",
            );
        }
        if !settings.allow_http {
            problems.error(
                &field,
                format!(
                    "contradicts {}: false (the redirect is served on HTTP)",
                    keys::ALLOW_HTTP
                ),
            );
        }
        Some(settings.redirect_code.unwrap_or_default())
    } else {
        if settings.redirect_code.is_some() {
            problems.warn(
                annotation_field(keys::REDIRECT_RESPONSE_CODE),
                format!("has no effect without {}: \"true\"", keys::REDIRECT_TO_HTTPS),
            );
        }
        None::<RedirectCode>
    };

    if settings.ssl_policy.is_some() && !wants_https {
        problems.warn(
            annotation_field(keys::SSL_POLICY),
            "has no effect without HTTPS (spec.tls or pre-shared-cert)",
        );
    }

    let https = wants_https.then(|| HttpsFrontend {
        certificates: tls.certificates,
        pre_shared_certificates: settings.pre_shared_certs.clone(),
        ssl_policy: settings.ssl_policy.clone(),
    });
    Frontends {
        http: settings.allow_http,
        https,
        redirect_to_https: redirect,
    }
}

/// The address: the named static one, else one the provider reserves.
pub(crate) fn address(settings: &IngressSettings) -> AddressRequest {
    match &settings.static_ip {
        Some(name) => AddressRequest::Static { name: name.clone() },
        None => AddressRequest::Ephemeral,
    }
}
