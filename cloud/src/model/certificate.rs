//! TLS certificates and their private keys.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A certificate chain and its key, as taken from a TLS Secret (already validated).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Certificate {
    /// The Secret it came from, `namespace/name`, for messages.
    pub source: String,
    /// PEM, leaf first, then intermediates.
    pub chain_pem: String,
    pub private_key: PrivateKeyPem,
    /// SHA-256 of the DER of every certificate in the chain, lower-case hex. Providers name
    /// cloud certificates after it, so a changed certificate gets a new name and can be rotated
    /// in without a moment with no certificate.
    pub sha256: String,
    /// The leaf's DNS names (subject alternative names, or the common name), for messages.
    pub dns_names: Vec<String>,
    /// The leaf's expiry, RFC 3339.
    pub not_after: String,
}

/// A PEM private key. Its text never appears in `Debug` output, logs or serialized models;
/// [`PrivateKeyPem::expose`] is the only way to read it, and only providers call it.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKeyPem(String);

impl PrivateKeyPem {
    pub fn new(pem: impl Into<String>) -> Self {
        Self(pem.into())
    }

    /// The PEM text, for uploading to the cloud.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

const REDACTED: &str = "<redacted>";

impl fmt::Debug for PrivateKeyPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Serializes as `"<redacted>"`: a model printed by `plan` or a test never shows the key.
impl Serialize for PrivateKeyPem {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

/// Deserializes from the PEM text (fixtures); a redacted model does not round-trip its key.
impl<'de> Deserialize<'de> for PrivateKeyPem {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(PrivateKeyPem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_key_never_prints() {
        let key = PrivateKeyPem::new("-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----\n");
        assert!(!format!("{key:?}").contains("secret"));
        assert!(!serde_json::to_string(&key).unwrap().contains("secret"));
        assert!(key.expose().contains("secret"));
    }
}
