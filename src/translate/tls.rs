//! `spec.tls`: TLS Secrets to validated [`Certificate`]s.
//!
//! Everything the cloud would refuse, or that would make browsers refuse the site, is caught
//! here with the Secret's name in the message: a missing Secret or key, PEM that does not parse,
//! a key that does not match the leaf, a key type the cloud does not take. An expired or
//! not-yet-valid certificate, and a `spec.tls[].hosts` entry no certificate covers, are warnings:
//! they may be deliberate (a renewal on its way) but are classic silent failures.

use super::Objects;
use super::hosts::certificate_covers;
use super::problems::Problems;
use cloud::model::{Certificate, PrivateKeyPem};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::Ingress;
use rustls::pki_types::pem::{self, PemObject, SectionKind};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_NIST_EC_P521, OID_PKCS1_RSAENCRYPTION,
    OID_SIG_ED25519,
};
use x509_parser::public_key::PublicKey;

/// The Secret keys holding the chain and the key, as for `kubernetes.io/tls` Secrets.
pub const CERT_KEY: &str = "tls.crt";
pub const PRIVATE_KEY_KEY: &str = "tls.key";

/// At most this many certificates in `tls.crt`: the leaf and up to four intermediates.
pub const MAX_CHAIN_LENGTH: usize = 5;

/// The certificates of an Ingress's `spec.tls`.
#[derive(Debug, Default)]
pub(crate) struct TlsCertificates {
    /// In `spec.tls` order, each Secret and each distinct content once.
    pub(crate) certificates: Vec<Certificate>,
    /// Secrets that could not be used (already reported), still counted against the limit.
    pub(crate) failed: usize,
}

/// Loads every Secret `spec.tls` names. With pre-shared certificates in play, a `spec.tls`
/// entry without a Secret is only a warning (its hosts may be served by those), and host
/// coverage is not checked (their names are unknown here).
pub(crate) fn certificates(
    ingress: &Ingress,
    objects: &dyn Objects,
    namespace: &str,
    now: jiff::Timestamp,
    has_pre_shared: bool,
    problems: &mut Problems,
) -> TlsCertificates {
    let entries = ingress
        .spec
        .as_ref()
        .and_then(|s| s.tls.as_deref())
        .unwrap_or(&[]);
    let mut out = TlsCertificates::default();
    // Secret name → the entry that first named it; sha256 → the Secret that first held it.
    let mut by_name: BTreeMap<&str, usize> = BTreeMap::new();
    let mut by_content: BTreeMap<String, (String, usize)> = BTreeMap::new();
    let errors_before = problems.error_count();

    for (i, entry) in entries.iter().enumerate() {
        let field = format!("spec.tls[{i}].secretName");
        let name = entry.secret_name.as_deref().unwrap_or("");
        if name.is_empty() {
            if has_pre_shared {
                problems.warn(
                    field,
                    "no Secret named; this entry's hosts rely on the pre-shared certificates",
                );
            } else {
                problems.error(field, "is required: this controller has no default certificate");
            }
            continue;
        }
        if let Some(first) = by_name.get(name) {
            problems.warn(
                field,
                format!("Secret {name:?} is also named by spec.tls[{first}]; it is used once"),
            );
            continue;
        }
        by_name.insert(name, i);

        let id = format!("{namespace}/{name}");
        let Some(secret) = objects.secret(namespace, name) else {
            problems.error(field, format!("Secret {id} not found"));
            out.failed += 1;
            continue;
        };
        match load(&secret, &id, now) {
            Err(messages) => {
                for message in messages {
                    problems.error(&field, message);
                }
                out.failed += 1;
            }
            Ok((certificate, warnings)) => {
                for message in warnings {
                    problems.warn(&field, message);
                }
                if let Some((first, j)) = by_content.get(&certificate.sha256) {
                    problems.warn(
                        field,
                        format!(
                            "Secret {id} holds the same certificate as Secret {first} (spec.tls[{j}]); it is used once"
                        ),
                    );
                    continue;
                }
                by_content.insert(certificate.sha256.clone(), (id, i));
                out.certificates.push(certificate);
            }
        }
    }

    if problems.error_count() == errors_before && !has_pre_shared {
        check_hosts(entries, &out.certificates, problems);
    }
    out
}

/// Warns about `spec.tls[].hosts` entries that no certificate covers: Kubernetes presents them
/// as "the hosts this certificate is for", and a typo there otherwise goes unnoticed until
/// browsers complain.
fn check_hosts(
    entries: &[k8s_openapi::api::networking::v1::IngressTLS],
    certificates: &[Certificate],
    problems: &mut Problems,
) {
    for (i, entry) in entries.iter().enumerate() {
        for (j, host) in entry.hosts.iter().flatten().enumerate() {
            let covered = certificates
                .iter()
                .flat_map(|c| c.dns_names.iter())
                .any(|name| certificate_covers(name, host));
            if !covered {
                let names: Vec<&str> = certificates
                    .iter()
                    .flat_map(|c| c.dns_names.iter())
                    .map(String::as_str)
                    .collect();
                problems.warn(
                    format!("spec.tls[{i}].hosts[{j}]"),
                    format!(
                        "{host:?} is not covered by any certificate (they cover {}); clients asking for it get a \
                         certificate error",
                        if names.is_empty() { "no DNS name".to_owned() } else { names.join(", ") }
                    ),
                );
            }
        }
    }
}

/// Validates one TLS Secret (`id` is `namespace/name`). Error and warning messages name the
/// Secret.
fn load(secret: &Secret, id: &str, now: jiff::Timestamp) -> Result<(Certificate, Vec<String>), Vec<String>> {
    let mut errors = Vec::new();
    let crt = text(secret, CERT_KEY, id, &mut errors);
    let key = text(secret, PRIVATE_KEY_KEY, id, &mut errors);
    let (Some(crt), Some(key)) = (crt, key) else {
        return Err(errors);
    };

    let chain = match parse_chain(crt.as_bytes(), id) {
        Ok(chain) => chain,
        Err(message) => {
            errors.push(message);
            Vec::new()
        }
    };
    let private_key = match parse_key(key.as_bytes(), id) {
        Ok(key) => Some(key),
        Err(message) => {
            errors.push(message);
            None
        }
    };

    let mut parsed = Vec::with_capacity(chain.len());
    for (n, der) in chain.iter().enumerate() {
        match x509_parser::parse_x509_certificate(der) {
            Ok((_, certificate)) => parsed.push(certificate),
            Err(e) => errors.push(format!(
                "Secret {id}: {CERT_KEY} certificate {} is not a valid X.509 certificate: {e}",
                n + 1
            )),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let Some(leaf) = parsed.first() else {
        return Err(vec![format!("Secret {id}: {CERT_KEY} holds no certificate")]);
    };
    if let Some(message) = key_type_error(leaf) {
        return Err(vec![format!("Secret {id}: {message}")]);
    }
    if let Some(private_key) = private_key {
        check_key_matches(&chain, private_key, id)?;
    }

    let mut warnings = Vec::new();
    check_validity(&parsed, now, id, &mut warnings);
    check_order(&parsed, id, &mut warnings);

    let mut hasher = Sha256::new();
    for der in &chain {
        hasher.update(der.as_ref());
    }
    let mut sha256 = String::with_capacity(64);
    for byte in hasher.finalize() {
        let _ = write!(sha256, "{byte:02x}");
    }

    let certificate = Certificate {
        source: id.to_owned(),
        chain_pem: crt,
        private_key: PrivateKeyPem::new(key),
        sha256,
        dns_names: dns_names(leaf),
        not_after: rfc3339(leaf.validity().not_after.timestamp()),
    };
    Ok((certificate, warnings))
}

/// The value of `key` in the Secret as text (`data`, else `stringData` for manifests that were
/// never through the API server, e.g. with `plan`).
fn text(secret: &Secret, key: &str, id: &str, errors: &mut Vec<String>) -> Option<String> {
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| b.0.clone())
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(key))
                .map(|s| s.clone().into_bytes())
        });
    let Some(bytes) = bytes else {
        errors.push(format!("Secret {id} has no {key}"));
        return None;
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        errors.push(format!("Secret {id}: {key} is empty"));
        return None;
    }
    match String::from_utf8(bytes) {
        Ok(text) => Some(text),
        Err(_) => {
            errors.push(format!("Secret {id}: {key} is not PEM text"));
            None
        }
    }
}

/// The DER certificates of `tls.crt`, leaf first. Any other PEM section is refused: a private
/// key pasted into `tls.crt` would otherwise be uploaded as part of the certificate.
fn parse_chain(pem_bytes: &[u8], id: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut chain = Vec::new();
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem_bytes) {
        match section {
            Err(e) => {
                return Err(format!(
                    "Secret {id}: {CERT_KEY} is not valid PEM: {}",
                    describe_pem_error(&e)
                ));
            }
            Ok((SectionKind::Certificate, der)) => chain.push(CertificateDer::from(der)),
            Ok((kind, _)) => {
                return Err(format!(
                    "Secret {id}: {CERT_KEY} holds a {} section; it must hold only certificates (the key \
                     belongs in {PRIVATE_KEY_KEY})",
                    label(kind)
                ));
            }
        }
    }
    match chain.len() {
        0 => Err(format!(
            "Secret {id}: {CERT_KEY} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        )),
        n if n > MAX_CHAIN_LENGTH => Err(format!(
            "Secret {id}: {CERT_KEY} holds {n} certificates; at most {MAX_CHAIN_LENGTH} are allowed (the leaf, \
             then its intermediates)"
        )),
        _ => Ok(chain),
    }
}

/// The one private key of `tls.key`.
fn parse_key(pem_bytes: &[u8], id: &str) -> Result<PrivateKeyDer<'static>, String> {
    let mut keys = Vec::new();
    for key in PrivateKeyDer::pem_slice_iter(pem_bytes) {
        match key {
            Ok(key) => keys.push(key),
            Err(e) => {
                return Err(format!(
                    "Secret {id}: {PRIVATE_KEY_KEY} is not valid PEM: {}",
                    describe_pem_error(&e)
                ));
            }
        }
    }
    let count = keys.len();
    match keys.pop() {
        Some(key) if count == 1 => Ok(key),
        Some(_) => Err(format!(
            "Secret {id}: {PRIVATE_KEY_KEY} holds {count} private keys; it must hold exactly one"
        )),
        None => Err(format!(
            "Secret {id}: {PRIVATE_KEY_KEY} holds no unencrypted private key (PRIVATE KEY, RSA PRIVATE KEY or EC \
             PRIVATE KEY)"
        )),
    }
}

/// Refuses leaf keys GCE does not take: RSA under 2048 bits, ECDSA other than P-256 or P-384,
/// and any other algorithm.
fn key_type_error(leaf: &X509Certificate<'_>) -> Option<String> {
    let spki = leaf.public_key();
    let algorithm = &spki.algorithm.algorithm;
    const HELP: &str = "use RSA (2048 bits or more) or ECDSA P-256 or P-384";
    if *algorithm == OID_PKCS1_RSAENCRYPTION {
        let bits = match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) => rsa_bits(rsa.modulus),
            _ => return Some(format!("the leaf certificate's RSA key cannot be read; {HELP}")),
        };
        return (bits < 2048).then(|| format!("the leaf certificate has a {bits}-bit RSA key; {HELP}"));
    }
    if *algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok());
        return match curve {
            Some(c) if c == OID_EC_P256 || c == OID_NIST_EC_P384 => None,
            Some(c) if c == OID_NIST_EC_P521 => {
                Some(format!("the leaf certificate has a P-521 ECDSA key; {HELP}"))
            }
            Some(c) => Some(format!(
                "the leaf certificate has an ECDSA key on curve {}; {HELP}",
                c.to_id_string()
            )),
            None => Some(format!(
                "the leaf certificate's ECDSA curve cannot be read; {HELP}"
            )),
        };
    }
    if *algorithm == OID_SIG_ED25519 {
        return Some(format!("the leaf certificate has an Ed25519 key; {HELP}"));
    }
    Some(format!(
        "the leaf certificate's key algorithm {} is not supported; {HELP}",
        algorithm.to_id_string()
    ))
}

/// Bits of an RSA modulus given as a DER integer's big-endian bytes (maybe with a leading 0).
fn rsa_bits(modulus: &[u8]) -> usize {
    let significant = modulus
        .iter()
        .position(|b| *b != 0)
        .and_then(|i| modulus.get(i..))
        .unwrap_or(&[]);
    match significant.first() {
        Some(first) => significant.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

/// Checks that the key belongs to the leaf, telling the user when it belongs to another
/// certificate of the chain (the chain is then in the wrong order).
fn check_key_matches(
    chain: &[CertificateDer<'static>],
    key: PrivateKeyDer<'static>,
    id: &str,
) -> Result<(), Vec<String>> {
    let signing_key = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|_| {
        vec![format!(
            "Secret {id}: {PRIVATE_KEY_KEY} is not a usable RSA or ECDSA private key (or its type differs from \
             the certificate's)"
        )]
    })?;
    let matches = |der: &CertificateDer<'static>| {
        rustls::sign::CertifiedKey::new(vec![der.clone()], signing_key.clone()).keys_match()
    };
    let Some(leaf) = chain.first() else {
        return Ok(());
    };
    match matches(leaf) {
        Ok(()) => Ok(()),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            let other = chain.iter().skip(1).position(|der| matches(der).is_ok());
            Err(vec![match other {
                Some(n) => format!(
                    "Secret {id}: {PRIVATE_KEY_KEY} matches certificate {} of {CERT_KEY}, not the first; put the \
                     leaf certificate first",
                    n + 2
                ),
                None => format!(
                    "Secret {id}: {PRIVATE_KEY_KEY} does not match the leaf certificate of {CERT_KEY}"
                ),
            }])
        }
        Err(e) => Err(vec![format!(
            "Secret {id}: cannot check {PRIVATE_KEY_KEY} against {CERT_KEY}: {e}"
        )]),
    }
}

/// Warns about certificates of the chain outside their validity period at `now`.
fn check_validity(chain: &[X509Certificate<'_>], now: jiff::Timestamp, id: &str, warnings: &mut Vec<String>) {
    let now = now.as_second();
    for (n, certificate) in chain.iter().enumerate() {
        let which = if n == 0 {
            "the leaf certificate".to_owned()
        } else {
            format!("certificate {} of {CERT_KEY}", n + 1)
        };
        let validity = certificate.validity();
        let not_after = validity.not_after.timestamp();
        let not_before = validity.not_before.timestamp();
        if not_after < now {
            warnings.push(format!(
                "Secret {id}: {which} expired at {}; clients will refuse it",
                rfc3339(not_after)
            ));
        } else if not_before > now {
            warnings.push(format!(
                "Secret {id}: {which} is not valid until {}",
                rfc3339(not_before)
            ));
        }
    }
}

/// Warns when certificate n+1 of the chain did not issue certificate n: the chain is out of
/// order or incomplete, and some clients will not build a path to their roots.
fn check_order(chain: &[X509Certificate<'_>], id: &str, warnings: &mut Vec<String>) {
    for (n, pair) in chain.windows(2).enumerate() {
        if let [child, parent] = pair
            && child.issuer().as_raw() != parent.subject().as_raw()
        {
            warnings.push(format!(
                "Secret {id}: certificate {} of {CERT_KEY} did not issue certificate {}; list the leaf first, then \
                 each issuer in turn",
                n + 2,
                n + 1
            ));
        }
    }
}

/// The leaf's DNS names: its subject alternative names, else its common name.
fn dns_names(leaf: &X509Certificate<'_>) -> Vec<String> {
    let mut names: Vec<String> = match leaf.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(name) => Some(name.to_ascii_lowercase()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    if names.is_empty() {
        names = leaf
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok())
            .map(str::to_ascii_lowercase)
            .collect();
    }
    names.dedup();
    names
}

fn rfc3339(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds)
        .map_or_else(|_| format!("{seconds} s after 1970"), |t| t.to_string())
}

/// The PEM label of a section kind, as the user sees it in the file.
fn label(kind: SectionKind) -> &'static str {
    match kind {
        SectionKind::Certificate => "CERTIFICATE",
        SectionKind::PublicKey => "PUBLIC KEY",
        SectionKind::RsaPrivateKey => "RSA PRIVATE KEY",
        SectionKind::PrivateKey => "PRIVATE KEY",
        SectionKind::EcPrivateKey => "EC PRIVATE KEY",
        SectionKind::Crl => "X509 CRL",
        SectionKind::Csr => "CERTIFICATE REQUEST",
        _ => "non-certificate",
    }
}

/// A PEM error in words (the library's own text prints raw bytes).
fn describe_pem_error(error: &pem::Error) -> String {
    match error {
        pem::Error::MissingSectionEnd { end_marker } => {
            format!(
                "missing the line \"-----END {}-----\"",
                String::from_utf8_lossy(end_marker)
            )
        }
        pem::Error::IllegalSectionStart { line } => {
            format!("malformed BEGIN line {:?}", String::from_utf8_lossy(line))
        }
        pem::Error::Base64Decode(e) => format!("bad base64 ({e})"),
        other => other.to_string(),
    }
}
