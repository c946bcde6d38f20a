//! TLS: the certificate a target HTTPS proxy presents, chosen by SNI at each handshake from the
//! store (so `setSslCertificates` applies to new connections at once), and the client side used
//! towards HTTPS and HTTP/2 backends (no verification, as Google's load balancers do).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, ServerConfig, SignatureScheme};
use serde_json::Value;

use crate::kinds::{Key, Kind, parse_ref};
use crate::state::Shared;
use crate::store::{PrivateKeyPem, Store};

/// The crypto the data plane uses, whatever the process default is.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Why a TLS configuration or certificate could not be built.
#[derive(Debug, thiserror::Error)]
pub(super) enum TlsError {
    /// rustls refused the configuration or the key.
    #[error(transparent)]
    Rustls(#[from] rustls::Error),
    /// The PEM of a stored certificate or key did not parse (checked at insert, so unexpected).
    #[error("stored certificate {0} does not parse")]
    Pem(String),
}

/// The server side of a target HTTPS proxy's listener: ALPN `h2` and `http/1.1`, the
/// certificate resolved from the store at each handshake, no session resumption (a resumed
/// session would skip the choice of certificate).
pub(super) fn server_config(shared: Weak<Shared>, rule: Key) -> Arc<ServerConfig> {
    let resolver = Arc::new(StoreCerts { shared, rule });
    let mut config =
        match ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions() {
            Ok(b) => b.with_no_client_auth().with_cert_resolver(resolver),
            // The ring provider supports the default versions; keep the process default otherwise.
            Err(_) => ServerConfig::builder()
                .with_no_client_auth()
                .with_cert_resolver(resolver),
        };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Arc::new(config)
}

/// Resolves the certificate of the proxy behind forwarding rule `rule`, at each handshake.
#[derive(Debug)]
struct StoreCerts {
    shared: Weak<Shared>,
    rule: Key,
}

impl ResolvesServerCert for StoreCerts {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let shared = self.shared.upgrade()?;
        let plane = shared.dataplane.as_ref()?;
        let certs = {
            let st = shared.lock();
            proxy_certificates(&st.store, &self.rule)
        };
        let certs: Vec<Servable> = certs.into_iter().map(Servable::named).collect();
        let chosen = choose(&certs, hello.server_name())?;
        match plane.certs.certified(chosen) {
            Ok(ck) => Some(ck),
            Err(e) => {
                tracing::warn!("data plane: certificate {}: {e}", chosen.link);
                None
            }
        }
    }
}

/// A certificate of the proxy that can serve: self-managed, with its key.
#[derive(Clone, Debug)]
struct Servable {
    link: String,
    /// DNS names (SANs, else the CN), as written.
    names: Vec<String>,
    chain_pem: String,
    key: PrivateKeyPem,
}

impl Servable {
    /// Fills `names` with the subject CN when the certificate has no DNS SAN.
    fn named(mut self) -> Servable {
        if self.names.is_empty() {
            self.names.extend(common_name(&self.chain_pem));
        }
        self
    }
}

/// The servable certificates of the proxy forwarding rule `rule` targets, in the proxy's order.
/// Managed certificates have no key here and cannot serve: skipped.
fn proxy_certificates(store: &Store, rule: &Key) -> Vec<Servable> {
    let text =
        |o: &serde_json::Map<String, Value>, f: &str| o.get(f).and_then(Value::as_str).map(str::to_string);
    let Some(proxy) = store
        .get(rule)
        .and_then(|fr| text(&fr.obj, "target"))
        .and_then(|t| parse_ref(&t, &rule.project))
        .filter(|k| k.kind == Kind::TargetHttpsProxy)
        .and_then(|k| store.get(&k))
    else {
        return Vec::new();
    };
    let links = proxy.obj.get("sslCertificates").and_then(Value::as_array);
    let mut out = Vec::new();
    for link in links.into_iter().flatten().filter_map(Value::as_str) {
        let Some(ck) = parse_ref(link, &rule.project) else {
            continue;
        };
        let (Some(entry), Some(key)) = (store.get(&ck), store.private_key(&ck)) else {
            continue;
        };
        let Some(chain_pem) = text(&entry.obj, "certificate") else {
            continue;
        };
        let names = entry
            .obj
            .get("subjectAlternativeNames")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
        out.push(Servable {
            link: ck.link(),
            names,
            chain_pem,
            key: key.clone(),
        });
    }
    out
}

/// The certificate for `sni`: the first whose names contain it exactly (case-insensitively),
/// else the first with a wildcard name covering it, else — no SNI, or no match — the first of
/// the list (Google's "primary" certificate).
fn choose<'a>(certs: &'a [Servable], sni: Option<&str>) -> Option<&'a Servable> {
    if let Some(sni) = sni {
        let exact = certs
            .iter()
            .find(|c| c.names.iter().any(|n| n.eq_ignore_ascii_case(sni)));
        let wildcard = || {
            certs
                .iter()
                .find(|c| c.names.iter().any(|n| wildcard_covers(n, sni)))
        };
        if let Some(c) = exact.or_else(wildcard) {
            return Some(c);
        }
    }
    certs.first()
}

/// Whether `*.example.com` covers `host`: exactly one more label, not empty (the rule of
/// certificate wildcards, RFC 6125 §6.4.3).
fn wildcard_covers(pattern: &str, host: &str) -> bool {
    let Some(suffix) = pattern.strip_prefix('*') else {
        return false;
    };
    if !suffix.starts_with('.') || host.len() <= suffix.len() {
        return false;
    }
    let (label, rest) = host.split_at(host.len() - suffix.len());
    rest.eq_ignore_ascii_case(suffix) && !label.contains('.')
}

/// The subject CN of the leaf, if any.
fn common_name(chain_pem: &str) -> Option<String> {
    let leaf = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .next()?
        .ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(&leaf).ok()?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    Some(cn)
}

/// Certified keys built from the store, by certificate link, valid while the stored chain is
/// the same (certificates are immutable, but one can be deleted and created again under the
/// same name, and ids repeat after a reset).
#[derive(Debug, Default)]
pub(super) struct CertCache {
    map: Mutex<HashMap<String, (String, Arc<CertifiedKey>)>>,
}

impl CertCache {
    /// Deleted certificates stay cached until this many are: then the cache starts over.
    const MAX: usize = 256;

    fn certified(&self, c: &Servable) -> Result<Arc<CertifiedKey>, TlsError> {
        if let Some((chain, ck)) = super::lock(&self.map).get(&c.link)
            && *chain == c.chain_pem
        {
            return Ok(Arc::clone(ck));
        }
        let chain = CertificateDer::pem_slice_iter(c.chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| TlsError::Pem(c.link.clone()))?;
        let key = PrivateKeyDer::from_pem_slice(c.key.pem().as_bytes())
            .map_err(|_| TlsError::Pem(c.link.clone()))?;
        let ck = Arc::new(CertifiedKey::from_der(chain, key, &provider())?);
        let mut map = super::lock(&self.map);
        if map.len() >= Self::MAX {
            map.clear();
        }
        map.insert(c.link.clone(), (c.chain_pem.clone(), Arc::clone(&ck)));
        Ok(ck)
    }
}

/// A client configuration towards backends: any certificate is accepted (Google's load
/// balancers do not verify backend certificates), `alpn` offered.
pub(super) fn backend_client(alpn: &[&[u8]]) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider();
    let verifier = Arc::new(AcceptAnyServerCert(provider.signature_verification_algorithms));
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Accepts any server certificate; signatures are still checked, so the handshake is real.
#[derive(Debug)]
struct AcceptAnyServerCert(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(names: &[&str]) -> Servable {
        Servable {
            link: names.join(","),
            names: names.iter().map(|n| n.to_string()).collect(),
            chain_pem: String::new(),
            key: PrivateKeyPem::new(String::new()),
        }
    }

    #[test]
    fn sni_picks_exact_then_wildcard_then_the_first() {
        let certs = [
            cert(&["a.example.com"]),
            cert(&["*.example.com"]),
            cert(&["b.example.com"]),
        ];
        let pick = |sni| choose(&certs, sni).map(|c| c.link.as_str());
        assert_eq!(pick(Some("b.example.com")), Some("b.example.com"));
        assert_eq!(pick(Some("B.Example.com")), Some("b.example.com"));
        assert_eq!(pick(Some("c.example.com")), Some("*.example.com"));
        assert_eq!(pick(Some("x.c.example.com")), Some("a.example.com"));
        assert_eq!(pick(Some("other.org")), Some("a.example.com"));
        assert_eq!(pick(None), Some("a.example.com"));
        assert_eq!(choose(&[], Some("a")).map(|c| c.link.clone()), None);
    }

    #[test]
    fn wildcards_cover_one_label() {
        assert!(wildcard_covers("*.example.com", "a.example.com"));
        assert!(wildcard_covers("*.example.com", "A.EXAMPLE.COM"));
        assert!(!wildcard_covers("*.example.com", "example.com"));
        assert!(!wildcard_covers("*.example.com", ".example.com"));
        assert!(!wildcard_covers("*.example.com", "a.b.example.com"));
        assert!(!wildcard_covers("a.example.com", "a.example.com"));
    }

    #[test]
    fn the_common_name_stands_in_for_missing_sans() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "cn.example.com");
        let key = rcgen::KeyPair::generate().expect("key");
        let pem = params.self_signed(&key).expect("cert").pem();
        assert_eq!(common_name(&pem).as_deref(), Some("cn.example.com"));
    }
}
