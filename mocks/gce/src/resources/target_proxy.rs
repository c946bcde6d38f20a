//! Target HTTP and HTTPS proxies (global and regional): `setUrlMap`, `setSslCertificates`,
//! `setSslPolicy`, `setQuicOverride`; `patch` needs the fingerprint, the set* verbs do not.

use serde_json::Value;

use crate::errors::ApiError;
use crate::json::{Obj, enum_field, int_in_range, opt_array, opt_str};
use crate::kinds::{Key, Kind};
use crate::mutation::CustomVerb;
use crate::resources::Cx;
use crate::store::Entry;

const NO_CERTIFICATE: &str =
    "At least 1 SSL certificate must be specified for setting SSL certificates in TargetHttpsProxy";

pub(super) fn normalize(cx: &Cx, obj: &mut Obj) -> Result<Vec<Key>, ApiError> {
    opt_str(obj, "description", "resource.description")?;
    let url_map = cx
        .ref_field(obj, "urlMap", "resource.urlMap", &[Kind::UrlMap])?
        .ok_or_else(|| ApiError::invalid_field("resource.urlMap", "", "A URL map must be specified."))?;
    int_in_range(
        obj,
        "httpKeepAliveTimeoutSec",
        "resource.httpKeepAliveTimeoutSec",
        None,
        5,
        1200,
    )?;
    let mut refs = vec![url_map];
    if cx.key.kind == Kind::TargetHttpsProxy {
        let certs = cx.ref_list(
            obj,
            "sslCertificates",
            "resource.sslCertificates",
            &[Kind::SslCertificate],
        )?;
        let cert_map = opt_str(obj, "certificateMap", "resource.certificateMap")?.is_some();
        if certs.is_empty() && !cert_map {
            return Err(ApiError::invalid(NO_CERTIFICATE));
        }
        if certs.len() > cx.limits.max_certs {
            return Err(ApiError::invalid_field(
                "resource.sslCertificates",
                &certs.len().to_string(),
                &format!(
                    "A target HTTPS proxy can have at most {} SSL certificates.",
                    cx.limits.max_certs
                ),
            ));
        }
        refs.extend(certs);
        if let Some(p) = cx.ref_field(obj, "sslPolicy", "resource.sslPolicy", &[Kind::SslPolicy])? {
            refs.push(p);
        }
        enum_field(
            obj,
            "quicOverride",
            "resource.quicOverride",
            &["NONE", "ENABLE", "DISABLE"],
            Some("NONE"),
        )?;
    }
    Ok(refs)
}

pub(super) fn custom(cx: &Cx, verb: CustomVerb, entry: &mut Entry, body: &Obj) -> Result<(), ApiError> {
    let obj = &mut entry.obj;
    match verb {
        CustomVerb::SetUrlMap => {
            let s = opt_str(body, "urlMap", "urlMap")?
                .filter(|s| !s.is_empty())
                .ok_or_else(|| ApiError::invalid_field("urlMap", "", "A URL map must be specified."))?;
            obj.insert("urlMap".into(), s.into());
        }
        CustomVerb::SetSslCertificates => {
            let certs = opt_array(body, "sslCertificates", "sslCertificates")?;
            if certs.is_empty() {
                return Err(ApiError::invalid(NO_CERTIFICATE));
            }
            obj.insert("sslCertificates".into(), Value::Array(certs.to_vec()));
        }
        CustomVerb::SetSslPolicy => match opt_str(body, "sslPolicy", "sslPolicy")? {
            Some(p) if !p.is_empty() => {
                obj.insert("sslPolicy".into(), p.into());
            }
            _ => {
                obj.shift_remove("sslPolicy");
            }
        },
        CustomVerb::SetQuicOverride => {
            let mut b = body.clone();
            let q = enum_field(
                &mut b,
                "quicOverride",
                "quicOverride",
                &["NONE", "ENABLE", "DISABLE"],
                Some("NONE"),
            )?;
            obj.insert("quicOverride".into(), q.unwrap_or_default().into());
        }
        _ => {}
    }
    entry.refs = normalize(cx, &mut entry.obj)?;
    Ok(())
}
