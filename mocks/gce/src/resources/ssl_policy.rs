//! SSL policies (global and regional). `enabledFeatures` is computed from the profile;
//! `patch` needs the fingerprint.

use serde_json::{Value, json};

use crate::errors::ApiError;
use crate::json::{Obj, as_str, enum_field, opt_array, opt_str};
use crate::kinds::Key;

/// Cipher-suite features, from the widest profile to the narrowest.
const FEATURES: &[&str] = &[
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
];

pub(super) fn normalize(obj: &mut Obj) -> Result<Vec<Key>, ApiError> {
    opt_str(obj, "description", "resource.description")?;
    let profile = enum_field(
        obj,
        "profile",
        "resource.profile",
        &["COMPATIBLE", "MODERN", "RESTRICTED", "CUSTOM"],
        Some("COMPATIBLE"),
    )?;
    enum_field(
        obj,
        "minTlsVersion",
        "resource.minTlsVersion",
        &["TLS_1_0", "TLS_1_1", "TLS_1_2"],
        Some("TLS_1_0"),
    )?;
    let custom = opt_array(obj, "customFeatures", "resource.customFeatures")?;
    let mut chosen = Vec::with_capacity(custom.len());
    for (i, f) in custom.iter().enumerate() {
        let field = format!("resource.customFeatures[{i}]");
        let f = as_str(f, &field)?;
        if !FEATURES.contains(&f) {
            return Err(ApiError::invalid_field(&field, f, "Unknown SSL feature."));
        }
        chosen.push(f.to_string());
    }
    let enabled: Vec<String> = match profile.as_deref() {
        Some("CUSTOM") => chosen,
        _ if !chosen.is_empty() => {
            return Err(ApiError::invalid_field(
                "resource.customFeatures",
                &chosen.join(","),
                "Custom features can only be specified with the CUSTOM profile.",
            ));
        }
        Some("RESTRICTED") => FEATURES[..6].iter().map(|s| s.to_string()).collect(),
        Some("MODERN") => FEATURES[..10].iter().map(|s| s.to_string()).collect(),
        _ => FEATURES.iter().map(|s| s.to_string()).collect(),
    };
    if custom.is_empty() {
        obj.shift_remove("customFeatures");
    }
    obj.insert("enabledFeatures".into(), json!(enabled));
    Ok(Vec::new())
}

/// `GET .../sslPolicies/listAvailableFeatures`.
pub(crate) fn available_features() -> Obj {
    let mut o = Obj::new();
    o.insert(
        "features".into(),
        Value::Array(FEATURES.iter().map(|f| Value::from(*f)).collect()),
    );
    o
}
