//! TLS Secrets: presence, PEM, chains, key types, key match, validity, duplicates, host
//! coverage and the certificate limit.

use super::*;
use rcgen::{DistinguishedName, PKCS_ECDSA_P384_SHA384, PKCS_ED25519, PublicKeyData};
use rustls::pki_types::SubjectPublicKeyInfoDer;
use rustls::pki_types::pem::PemObject;

const SECRET: &str = "spec.tls[0].secretName";

/// An Ingress with a default backend and these `spec.tls` entries.
fn tls(entries: Value) -> Value {
    ingress(json!({"defaultBackend": svc("echo", 80), "tls": entries}))
}

/// An Ingress using only Secret `bad`.
fn uses_bad() -> Value {
    tls(json!([{"secretName": "bad"}]))
}

fn put(world: &mut Snapshot, name: &str, pair: &Pair) {
    world.insert_secret(tls_secret(name, &pair.chain, &pair.key));
}

fn certificates(lb: &LoadBalancer) -> &[cloud::model::Certificate] {
    lb.frontends
        .https
        .as_ref()
        .map(|h| h.certificates.as_slice())
        .unwrap_or(&[])
}

fn bad(message: &str) -> Expect {
    Expect::Errors(vec![(SECRET.to_owned(), format!("Secret default/bad{message}"))])
}

/// A certificate whose subject has a common name and no alternative names.
fn common_name_only() -> Pair {
    let key = new_key();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap_or_default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "CN.example.com");
    let cert = params.self_signed(&key).unwrap_or_else(|e| panic!("{e}"));
    Pair {
        chain: cert.pem(),
        key: key.serialize_pem(),
    }
}

/// An RSA public key given by its PKCS#1 bytes, for rcgen to put in a certificate.
struct RsaPublicKey(Vec<u8>);

impl PublicKeyData for RsaPublicKey {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_RSA_SHA256
    }
}

/// A certificate for the public half of the committed 1024-bit RSA key, signed by a throwaway
/// ECDSA issuer (ring cannot sign with so small a key).
fn rsa_1024() -> Pair {
    let spki =
        SubjectPublicKeyInfoDer::from_pem_slice(testdata("rsa1024.pub").as_bytes()).expect("rsa1024.pub");
    let (_, parsed) =
        <x509_parser::x509::SubjectPublicKeyInfo as x509_parser::prelude::FromDer<_>>::from_der(
            spki.as_ref(),
        )
        .expect("SubjectPublicKeyInfo");
    let public = RsaPublicKey(parsed.subject_public_key.data.to_vec());
    let issuer_key = new_key();
    let issuer = Issuer::new(CertificateParams::default(), issuer_key);
    let cert = CertificateParams::new(vec!["a.example.com".to_owned()])
        .unwrap_or_default()
        .signed_by(&public, &issuer)
        .unwrap_or_else(|e| panic!("{e}"));
    Pair {
        chain: cert.pem(),
        key: testdata("rsa1024.key"),
    }
}

#[test]
fn tls_cases() {
    let cases = vec![
        case(
            "ECDSA P-256 certificate",
            tls(json!([{"secretName": "tls", "hosts": ["a.example.com", "b.example.com"]}])),
            ok([], |lb| {
                let certs = certificates(lb);
                assert_eq!(certs.len(), 1);
                let c = &certs[0];
                assert_eq!(c.source, "default/tls");
                assert_eq!(c.dns_names, ["a.example.com", "*.example.com"]);
                assert_eq!(c.not_after, "2100-01-01T00:00:00Z");
                assert_eq!(c.chain_pem, ecdsa_pair().chain);
                assert_eq!(c.private_key.expose(), ecdsa_pair().key);
                assert!(c.sha256.len() == 64 && c.sha256.bytes().all(|b| b.is_ascii_hexdigit()));
                assert!(lb.frontends.http);
            }),
        ),
        case(
            "missing Secret",
            tls(json!([{"secretName": "nope"}])),
            errors([(SECRET, "Secret default/nope not found")]),
        ),
        Case {
            world: |w| w.insert_secret(secret("bad", json!({"tls.key": ecdsa_pair().key}))),
            ..case("Secret without tls.crt", uses_bad(), bad(" has no tls.crt"))
        },
        Case {
            world: |w| w.insert_secret(secret("bad", json!({"tls.crt": "", "tls.key": " \n"}))),
            ..case(
                "empty tls.crt and tls.key",
                uses_bad(),
                errors([
                    (SECRET, "Secret default/bad: tls.crt is empty"),
                    (SECRET, "Secret default/bad: tls.key is empty"),
                ]),
            )
        },
        Case {
            world: |w| w.insert_secret(tls_secret("bad", "hello", &ecdsa_pair().key)),
            ..case(
                "tls.crt without PEM",
                uses_bad(),
                bad(": tls.crt holds no PEM certificate (-----BEGIN CERTIFICATE-----)"),
            )
        },
        Case {
            world: |w| {
                w.insert_secret(tls_secret(
                    "bad",
                    "-----BEGIN CERTIFICATE-----\nMIIB\n",
                    &ecdsa_pair().key,
                ))
            },
            ..case(
                "truncated PEM",
                uses_bad(),
                bad(r#": tls.crt is not valid PEM: missing the line "-----END CERTIFICATE-----""#),
            )
        },
        Case {
            world: |w| {
                w.insert_secret(tls_secret(
                    "bad",
                    "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                    &ecdsa_pair().key,
                ))
            },
            ..case(
                "PEM that is not a certificate",
                uses_bad(),
                bad(
                    ": tls.crt certificate 1 is not a valid X.509 certificate: Parsing Error: Der(UnexpectedTag { expected: Some(Tag(16)), actual: Tag(0) })",
                ),
            )
        },
        Case {
            world: |w| {
                let pair = ecdsa_pair();
                w.insert_secret(tls_secret(
                    "bad",
                    &format!("{}{}", pair.chain, pair.key),
                    &pair.key,
                ))
            },
            ..case(
                "private key inside tls.crt",
                uses_bad(),
                bad(
                    ": tls.crt holds a PRIVATE KEY section; it must hold only certificates (the key belongs in tls.key)",
                ),
            )
        },
        Case {
            world: |w| {
                let pair = ecdsa_pair();
                w.insert_secret(tls_secret("bad", &pair.chain.repeat(6), &pair.key))
            },
            ..case(
                "six certificates",
                uses_bad(),
                bad(
                    ": tls.crt holds 6 certificates; at most 5 are allowed (the leaf, then its intermediates)",
                ),
            )
        },
        Case {
            world: |w| {
                let other = self_signed(&Spec::default(), &rcgen::PKCS_ECDSA_P256_SHA256);
                w.insert_secret(tls_secret("bad", &ecdsa_pair().chain, &other.key))
            },
            ..case(
                "key of another certificate",
                uses_bad(),
                bad(": tls.key does not match the leaf certificate of tls.crt"),
            )
        },
        Case {
            world: |w| {
                let p384 = self_signed(&Spec::default(), &PKCS_ECDSA_P384_SHA384);
                w.insert_secret(tls_secret("bad", &ecdsa_pair().chain, &p384.key))
            },
            ..case(
                "key of another type",
                uses_bad(),
                bad(": tls.key does not match the leaf certificate of tls.crt"),
            )
        },
        Case {
            world: |w| w.insert_secret(tls_secret("bad", &ecdsa_pair().chain, &ecdsa_pair().chain)),
            ..case(
                "certificate in tls.key",
                uses_bad(),
                bad(
                    ": tls.key holds no unencrypted private key (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)",
                ),
            )
        },
        Case {
            world: |w| {
                let pair = ecdsa_pair();
                w.insert_secret(tls_secret("bad", &pair.chain, &pair.key.repeat(2)))
            },
            ..case(
                "two keys in tls.key",
                uses_bad(),
                bad(": tls.key holds 2 private keys; it must hold exactly one"),
            )
        },
        Case {
            world: |w| put(w, "bad", &chain().0),
            ..case(
                "leaf and intermediate",
                uses_bad(),
                ok([], |lb| {
                    let c = &certificates(lb)[0];
                    assert_eq!(c.dns_names, ["a.example.com"]);
                    assert_eq!(c.chain_pem.matches("BEGIN CERTIFICATE").count(), 2);
                }),
            )
        },
        Case {
            world: |w| {
                let (pair, intermediate, leaf) = chain();
                w.insert_secret(tls_secret("bad", &format!("{intermediate}{leaf}"), &pair.key))
            },
            ..case(
                "intermediate before the leaf",
                uses_bad(),
                bad(
                    ": tls.key matches certificate 2 of tls.crt, not the first; put the leaf certificate first",
                ),
            )
        },
        Case {
            world: |w| {
                let (pair, _, leaf) = chain();
                w.insert_secret(tls_secret(
                    "bad",
                    &format!("{leaf}{}", ecdsa_pair().chain),
                    &pair.key,
                ))
            },
            ..case(
                "certificate that did not issue the leaf",
                uses_bad(),
                ok(
                    [(
                        SECRET,
                        "Secret default/bad: certificate 2 of tls.crt did not issue certificate 1; list the leaf first, then each issuer in turn",
                    )],
                    |lb| assert_eq!(certificates(lb).len(), 1),
                ),
            )
        },
        Case {
            world: |w| {
                let spec = Spec {
                    not_before: (2020, 1, 1),
                    not_after: (2021, 1, 1),
                    ..Spec::default()
                };
                put(w, "bad", &self_signed(&spec, &rcgen::PKCS_ECDSA_P256_SHA256))
            },
            ..case(
                "expired certificate",
                uses_bad(),
                ok(
                    [(
                        SECRET,
                        "Secret default/bad: the leaf certificate expired at 2021-01-01T00:00:00Z; clients will refuse it",
                    )],
                    |lb| assert_eq!(certificates(lb)[0].not_after, "2021-01-01T00:00:00Z"),
                ),
            )
        },
        Case {
            world: |w| {
                let spec = Spec {
                    not_before: (2030, 1, 1),
                    not_after: (2031, 1, 1),
                    ..Spec::default()
                };
                put(w, "bad", &self_signed(&spec, &rcgen::PKCS_ECDSA_P256_SHA256))
            },
            ..case(
                "certificate not yet valid",
                uses_bad(),
                ok(
                    [(
                        SECRET,
                        "Secret default/bad: the leaf certificate is not valid until 2030-01-01T00:00:00Z",
                    )],
                    |_| {},
                ),
            )
        },
        Case {
            world: |w| put(w, "bad", &self_signed(&Spec::default(), &PKCS_ECDSA_P384_SHA384)),
            ..case(
                "ECDSA P-384 certificate",
                uses_bad(),
                ok([], |lb| assert_eq!(certificates(lb).len(), 1)),
            )
        },
        Case {
            world: |w| put(w, "bad", &self_signed(&Spec::default(), &PKCS_ED25519)),
            ..case(
                "Ed25519 certificate",
                uses_bad(),
                bad(
                    ": the leaf certificate has an Ed25519 key; use RSA (2048 bits or more) or ECDSA P-256 or P-384",
                ),
            )
        },
        Case {
            world: |w| {
                let key = KeyPair::from_pem(&testdata("rsa2048.key")).unwrap_or_else(|e| panic!("{e}"));
                put(w, "bad", &self_signed_with(&Spec::default(), &key))
            },
            ..case(
                "RSA 2048 certificate",
                uses_bad(),
                ok([], |lb| assert_eq!(certificates(lb).len(), 1)),
            )
        },
        Case {
            world: |w| put(w, "bad", &rsa_1024()),
            ..case(
                "RSA 1024 certificate",
                uses_bad(),
                bad(
                    ": the leaf certificate has a 1024-bit RSA key; use RSA (2048 bits or more) or ECDSA P-256 or P-384",
                ),
            )
        },
        Case {
            world: |w| put(w, "bad", &common_name_only()),
            ..case(
                "common name when there are no alternative names",
                uses_bad(),
                ok([], |lb| {
                    assert_eq!(certificates(lb)[0].dns_names, ["cn.example.com"])
                }),
            )
        },
        Case {
            world: |w| {
                let pair = ecdsa_pair();
                let mut s: Secret = from_json(json!({
                    "metadata": {"name": "bad", "namespace": "default"},
                    "stringData": {"tls.crt": pair.chain, "tls.key": pair.key},
                }));
                s.data = None;
                w.insert_secret(s)
            },
            ..case(
                "Secret written with stringData",
                uses_bad(),
                ok([], |lb| assert_eq!(certificates(lb).len(), 1)),
            )
        },
        case(
            "same Secret twice",
            tls(json!([{"secretName": "tls"}, {"secretName": "tls"}])),
            ok(
                [(
                    "spec.tls[1].secretName",
                    r#"Secret "tls" is also named by spec.tls[0]; it is used once"#,
                )],
                |lb| assert_eq!(certificates(lb).len(), 1),
            ),
        ),
        Case {
            world: |w| put(w, "copy", &ecdsa_pair()),
            ..case(
                "two Secrets with the same content",
                tls(json!([{"secretName": "tls"}, {"secretName": "copy"}])),
                ok(
                    [(
                        "spec.tls[1].secretName",
                        "Secret default/copy holds the same certificate as Secret default/tls (spec.tls[0]); it is used once",
                    )],
                    |lb| assert_eq!(certificates(lb).len(), 1),
                ),
            )
        },
        Case {
            world: |w| {
                put(
                    w,
                    "second",
                    &self_signed(
                        &Spec {
                            names: &["b.example.org"],
                            ..Spec::default()
                        },
                        &rcgen::PKCS_ECDSA_P256_SHA256,
                    ),
                )
            },
            ..case(
                "several certificates in spec.tls order",
                tls(
                    json!([{"secretName": "second", "hosts": ["b.example.org"]}, {"secretName": "tls", "hosts": ["a.example.com"]}]),
                ),
                ok([], |lb| {
                    let sources: Vec<&str> = certificates(lb).iter().map(|c| c.source.as_str()).collect();
                    assert_eq!(sources, ["default/second", "default/tls"]);
                }),
            )
        },
        case(
            "TLS host no certificate covers",
            tls(
                json!([{"secretName": "tls", "hosts": ["x.example.com", "b.example.org", "a.b.example.com"]}]),
            ),
            ok(
                [
                    (
                        "spec.tls[0].hosts[1]",
                        r#""b.example.org" is not covered by any certificate (they cover a.example.com, *.example.com); clients asking for it get a certificate error"#,
                    ),
                    (
                        "spec.tls[0].hosts[2]",
                        r#""a.b.example.com" is not covered by any certificate (they cover a.example.com, *.example.com); clients asking for it get a certificate error"#,
                    ),
                ],
                |_| {},
            ),
        ),
        case(
            "TLS entry without a Secret",
            tls(json!([{"hosts": ["a.example.com"]}])),
            errors([(SECRET, "is required: this controller has no default certificate")]),
        ),
        case(
            "TLS entry without a Secret beside pre-shared certificates",
            annotated(
                json!({"ingress.gcp.kubernetes.io/pre-shared-cert": "shared"}),
                json!({"defaultBackend": svc("echo", 80), "tls": [{"hosts": ["b.example.org"]}]}),
            ),
            ok(
                [(
                    SECRET,
                    "no Secret named; this entry's hosts rely on the pre-shared certificates",
                )],
                |lb| {
                    assert_eq!(
                        lb.frontends.https.as_ref().map(|h| h.certificate_count()),
                        Some(1)
                    )
                },
            ),
        ),
        Case {
            world: |w| {
                put(
                    w,
                    "second",
                    &self_signed(&Spec::default(), &rcgen::PKCS_ECDSA_P256_SHA256),
                )
            },
            config: |c| c.limits.max_certificates = 2,
            ..case(
                "too many certificates",
                annotated(
                    json!({"ingress.gcp.kubernetes.io/pre-shared-cert": "shared"}),
                    json!({"defaultBackend": svc("echo", 80), "tls": [{"secretName": "tls"}, {"secretName": "second"}]}),
                ),
                errors([(
                    "spec.tls",
                    "3 certificates (2 from spec.tls, 1 pre-shared) exceed the limit of 2 per load balancer",
                )]),
            )
        },
        Case {
            config: |c| c.limits.max_certificates = 1,
            ..case(
                "too many pre-shared certificates",
                annotated(
                    json!({"ingress.gcp.kubernetes.io/pre-shared-cert": "a,b"}),
                    default_only(),
                ),
                errors([(
                    r#"metadata.annotations["ingress.gcp.kubernetes.io/pre-shared-cert"]"#,
                    "2 certificates (0 from spec.tls, 2 pre-shared) exceed the limit of 1 per load balancer",
                )]),
            )
        },
    ];
    run(cases);
}
