//! SSL certificates (global and regional): immutable. Self-managed ones must be valid PEM with a
//! private key that matches the leaf certificate; the key is never returned (the store keeps it
//! apart, for the data plane's TLS handshakes). Managed ones are
//! reported ACTIVE at once (the fake serves no DNS to wait for).

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use serde_json::{Value, json};

use crate::errors::ApiError;
use crate::ids::rfc3339;
use crate::json::{Obj, as_str, enum_field, opt_array, opt_obj, opt_str};
use crate::kinds::Key;

/// Certificates per chain.
const MAX_CHAIN: usize = 5;
/// Domains per managed certificate.
const MAX_DOMAINS: usize = 100;

pub(super) fn normalize(obj: &mut Obj) -> Result<Vec<Key>, ApiError> {
    opt_str(obj, "description", "resource.description")?;
    let ty = enum_field(
        obj,
        "type",
        "resource.type",
        &["SELF_MANAGED", "MANAGED"],
        Some("SELF_MANAGED"),
    )?;
    if ty.as_deref() == Some("MANAGED") {
        managed(obj)?;
    } else {
        self_managed(obj)?;
    }
    Ok(Vec::new())
}

/// The private key of a self-managed certificate's insert body (`privateKey`, or
/// `selfManaged.privateKey`); none for a managed one.
pub(super) fn private_key(body: &Obj) -> Option<String> {
    if body.get("type").and_then(Value::as_str) == Some("MANAGED") {
        return None;
    }
    let field = |o: &Obj| o.get("privateKey").and_then(Value::as_str).map(str::to_string);
    field(body).or_else(|| body.get("selfManaged").and_then(Value::as_object).and_then(field))
}

fn self_managed(obj: &mut Obj) -> Result<(), ApiError> {
    let nested = opt_obj(obj, "selfManaged", "resource.selfManaged")?.cloned();
    let pick = |field: &str| -> Result<Option<String>, ApiError> {
        if let Some(v) = opt_str(obj, field, &format!("resource.{field}"))? {
            return Ok(Some(v.to_string()));
        }
        match &nested {
            Some(n) => Ok(opt_str(n, field, &format!("resource.selfManaged.{field}"))?.map(str::to_string)),
            None => Ok(None),
        }
    };
    let cert = pick("certificate")?.ok_or_else(|| {
        ApiError::invalid_field(
            "resource.certificate",
            "",
            "The SSL certificate must be specified.",
        )
    })?;
    let key = pick("privateKey")?.ok_or_else(|| {
        ApiError::invalid_field("resource.privateKey", "", "The SSL key must be specified.")
    })?;
    let (expire, sans) = check_pair(&cert, &key)?;
    obj.shift_remove("privateKey");
    if let Some(Value::Object(n)) = obj.get_mut("selfManaged") {
        n.shift_remove("privateKey");
    }
    obj.insert("certificate".into(), cert.into());
    obj.insert("expireTime".into(), expire.into());
    if !sans.is_empty() {
        obj.insert("subjectAlternativeNames".into(), json!(sans));
    }
    Ok(())
}

/// Parses the chain and the key and checks they belong together; returns the leaf's expiry
/// and DNS names.
fn check_pair(cert_pem: &str, key_pem: &str) -> Result<(String, Vec<String>), ApiError> {
    let cert_err = || {
        ApiError::invalid_field(
            "resource.certificate",
            "",
            "The SSL certificate could not be parsed.",
        )
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|_| cert_err())?;
    if chain.is_empty() {
        return Err(cert_err());
    }
    if chain.len() > MAX_CHAIN {
        return Err(ApiError::invalid_field(
            "resource.certificate",
            "",
            &format!("The certificate chain may contain at most {MAX_CHAIN} certificates."),
        ));
    }
    let (_, leaf) = x509_parser::parse_x509_certificate(&chain[0]).map_err(|_| cert_err())?;
    let expire = jiff::Timestamp::from_second(leaf.validity().not_after.timestamp())
        .map(rfc3339)
        .map_err(|_| cert_err())?;
    let sans = match leaf.subject_alternative_name() {
        Ok(Some(ext)) => ext
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                x509_parser::extensions::GeneralName::DNSName(d) => Some((*d).to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let key_err = || ApiError::invalid_field("resource.privateKey", "", "The SSL key could not be parsed.");
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|_| key_err())?;
    let signing_key = rustls::crypto::ring::default_provider()
        .key_provider
        .load_private_key(key)
        .map_err(|_| key_err())?;
    match CertifiedKey::new(chain, signing_key).keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok((expire, sans))
        }
        Err(_) => Err(ApiError::invalid_field(
            "resource.privateKey",
            "",
            "The SSL key does not match the certificate.",
        )),
    }
}

fn managed(obj: &mut Obj) -> Result<(), ApiError> {
    if obj.get("certificate").is_some_and(|v| !v.is_null()) {
        return Err(ApiError::invalid_field(
            "resource.certificate",
            "",
            "A managed certificate cannot carry a certificate.",
        ));
    }
    let m = opt_obj(obj, "managed", "resource.managed")?
        .cloned()
        .unwrap_or_default();
    let domains = opt_array(&m, "domains", "resource.managed.domains")?;
    if domains.is_empty() || domains.len() > MAX_DOMAINS {
        return Err(ApiError::invalid_field(
            "resource.managed.domains",
            &domains.len().to_string(),
            &format!("Between 1 and {MAX_DOMAINS} domains must be specified."),
        ));
    }
    let mut names = Vec::with_capacity(domains.len());
    let mut status = Obj::new();
    for (i, d) in domains.iter().enumerate() {
        let d = as_str(d, &format!("resource.managed.domains[{i}]"))?;
        names.push(d.to_string());
        status.insert(d.to_string(), "ACTIVE".into());
    }
    let mut m = m;
    m.insert("status".into(), "ACTIVE".into());
    m.insert("domainStatus".into(), Value::Object(status));
    obj.insert("managed".into(), Value::Object(m));
    obj.insert("subjectAlternativeNames".into(), json!(names));
    Ok(())
}
