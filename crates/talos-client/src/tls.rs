//! rustls client configurations for talking to Talos nodes.
//!
//! Configs are built once and shared (`Arc<ClientConfig>`) across every
//! node channel. All use the ring provider explicitly (no process-wide
//! default), offer ALPN `h2` (Talos's grpc-go servers refuse connections
//! without it) and allow TLS 1.2 and 1.3.
//!
//! - [`secure_config`]: configured nodes. Trust = the talosconfig CA only;
//!   the server certificate is checked against the dialled IP (Talos puts
//!   every node address in its API certificate's IP SANs); client auth =
//!   the talosconfig certificate.
//! - [`maintenance_config`]: maintenance mode. The node's certificate comes
//!   from an ephemeral CA nobody else knows, so any certificate is accepted,
//!   optionally pinned by SPKI fingerprint; handshake signatures are still
//!   verified so the peer must hold the key it presents.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use super::error::{TalosError, TrustFailure, describe_cert_error};
use super::talosconfig::Credentials;

/// The one crypto provider talstrap uses (built once: every probe makes
/// a client config with it).
pub(crate) fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: std::sync::OnceLock<Arc<CryptoProvider>> = std::sync::OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// A client config builder with our provider and protocol versions.
pub(crate) fn builder() -> rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier> {
    ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .expect("the ring provider supports TLS 1.2 and 1.3")
}

/// ALPN `h2` is mandatory for Talos's grpc-go servers. No resumption:
/// Talos's servers disable session tickets (see `probe.rs`), so a session
/// cache would only cost memory per config and a store per handshake.
pub(crate) fn finish(mut config: ClientConfig) -> Arc<ClientConfig> {
    config.alpn_protocols = vec![b"h2".to_vec()];
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

/// mTLS config for configured nodes, from talosconfig credentials.
pub fn secure_config(creds: &Credentials) -> Result<Arc<ClientConfig>, TalosError> {
    let verifier = TalosCaVerifier::new(creds.ca_certs())?;
    let config = builder()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(creds.client_chain(), creds.client_key())
        .map_err(|e| {
            TalosError::Input(format!("talosconfig client certificate/key unusable: {e}"))
        })?;
    Ok(finish(config))
}

/// Config for maintenance mode: no client certificate, any server
/// certificate (pinned by SPKI SHA-256 when `pins` is non-empty).
pub fn maintenance_config(pins: &[String]) -> Arc<ClientConfig> {
    let verifier = AcceptAnyVerifier {
        pins: pins.iter().map(|p| p.trim().to_string()).collect(),
        algs: provider().signature_verification_algorithms,
    };
    let config = builder()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    finish(config)
}

/// Base64 (standard) of the SHA-256 of a certificate's SubjectPublicKeyInfo:
/// the fingerprint a Talos node prints on its console in maintenance mode.
pub fn spki_fingerprint(cert_der: &[u8]) -> Result<String, TalosError> {
    use base64::Engine as _;
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|e| TalosError::Input(format!("certificate does not parse: {e}")))?;
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.public_key().raw);
    Ok(base64::engine::general_purpose::STANDARD.encode(digest.as_ref()))
}

/// webpki verification against the talosconfig CA, with errors that say
/// what did not match (which issuer, which names).
#[derive(Debug)]
pub(crate) struct TalosCaVerifier {
    inner: Arc<WebPkiServerVerifier>,
}

impl TalosCaVerifier {
    pub(crate) fn new(cas: &[CertificateDer<'static>]) -> Result<Self, TalosError> {
        Ok(TalosCaVerifier {
            inner: Self::inner_webpki(cas)?,
        })
    }

    /// The plain webpki verifier for `cas`, with its original error kinds.
    pub(crate) fn inner_webpki(
        cas: &[CertificateDer<'static>],
    ) -> Result<Arc<WebPkiServerVerifier>, TalosError> {
        let unusable = |e: &dyn std::fmt::Display| {
            TalosError::Input(format!(
                "talosconfig CA cannot be used as a trust anchor: {e}"
            ))
        };
        let mut roots = RootCertStore::empty();
        for ca in cas {
            roots.add(ca.clone()).map_err(|e| unusable(&e))?;
        }
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| unusable(&e))
    }
}

impl ServerCertVerifier for TalosCaVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map_err(|e| explain(e, end_entity, server_name))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Rewrites a webpki rejection into a [`TrustFailure`] that names the
/// issuer or the certificate's names.
fn explain(
    err: rustls::Error,
    end_entity: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
) -> rustls::Error {
    let rustls::Error::InvalidCertificate(cert_err) = &err else {
        return err;
    };
    let ip = server_name.to_str().into_owned();
    let parsed = x509_parser::parse_x509_certificate(end_entity)
        .ok()
        .map(|(_, c)| c);
    let maintenance = parsed.as_ref().is_some_and(|c| {
        c.subject().iter_common_name().any(|cn| {
            cn.as_str()
                .map(|s| s == super::probe::MAINTENANCE_CN)
                .unwrap_or(false)
        })
    });
    let failure = match cert_err {
        CertificateError::UnknownIssuer | CertificateError::BadSignature if maintenance => {
            TrustFailure::MaintenanceMode { ip }
        }
        CertificateError::UnknownIssuer | CertificateError::BadSignature => {
            TrustFailure::ForeignIssuer {
                ip,
                issuer: parsed
                    .as_ref()
                    .map(|c| c.issuer().to_string())
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "unknown".to_string()),
            }
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            let names = match cert_err {
                CertificateError::NotValidForNameContext { presented, .. } => presented.join(", "),
                _ => String::from("?"),
            };
            TrustFailure::WrongName { ip, names }
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            TrustFailure::Expired {
                ip,
                not_after: parsed
                    .as_ref()
                    .map(|c| c.validity().not_after.to_string())
                    .unwrap_or_default(),
            }
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            TrustFailure::NotYetValid {
                ip,
                not_before: parsed
                    .as_ref()
                    .map(|c| c.validity().not_before.to_string())
                    .unwrap_or_default(),
            }
        }
        other => TrustFailure::Other {
            ip,
            detail: describe_cert_error(other),
        },
    };
    rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(
        failure,
    ))))
}

/// Whether a maintenance leaf passes `pins` (always, without pins): a
/// mismatch says which fingerprint it has; `Err(None)`: the leaf does not
/// parse.
pub(crate) fn check_pins(
    pins: &[String],
    leaf: &[u8],
    ip: &str,
) -> Result<(), Option<TrustFailure>> {
    if pins.is_empty() {
        return Ok(());
    }
    let actual = spki_fingerprint(leaf).map_err(|_| None)?;
    if pins.iter().any(|p| p.trim() == actual) {
        Ok(())
    } else {
        Err(Some(TrustFailure::PinMismatch {
            ip: ip.to_string(),
            actual,
        }))
    }
}

/// Accepts any server certificate (optionally pinned) but still checks the
/// handshake signatures, Ed25519 included.
#[derive(Debug)]
struct AcceptAnyVerifier {
    pins: Vec<String>,
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match check_pins(&self.pins, end_entity, &server_name.to_str()) {
            Ok(()) => Ok(ServerCertVerified::assertion()),
            Err(None) => Err(rustls::Error::InvalidCertificate(
                CertificateError::BadEncoding,
            )),
            Err(Some(failure)) => Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                rustls::OtherError(Arc::new(failure)),
            ))),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testkit::{Pki, client_cert, server_cert};

    fn trust_text(err: rustls::Error) -> String {
        match err {
            rustls::Error::InvalidCertificate(CertificateError::Other(other)) => {
                other.0.to_string()
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    fn ip_name(ip: &str) -> ServerName<'static> {
        ServerName::IpAddress(ip.parse::<std::net::IpAddr>().unwrap().into())
    }

    #[test]
    fn fingerprint_is_sha256_of_spki_in_base64() {
        let pki = Pki::new("talos");
        let leaf = server_cert(&pki, "127.0.0.1".parse().unwrap(), "node-1");
        let fp = spki_fingerprint(&leaf.cert_der).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&leaf.cert_der).unwrap();
        let expected = ring::digest::digest(&ring::digest::SHA256, cert.public_key().raw);
        use base64::Engine as _;
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(&fp)
                .unwrap(),
            expected.as_ref()
        );
        assert_eq!(fp.len(), 44);
        assert!(spki_fingerprint(b"garbage").is_err());
    }

    #[test]
    fn configs_offer_h2() {
        let pki = Pki::new("talos");
        let (crt, key) = client_cert(&pki, &["os:admin"]);
        let creds =
            Credentials::from_pem(pki.ca_pem.as_bytes(), crt.as_bytes(), key.as_bytes()).unwrap();
        let secure = secure_config(&creds).unwrap();
        assert_eq!(secure.alpn_protocols, vec![b"h2".to_vec()]);
        assert!(secure.client_auth_cert_resolver.has_certs());
        let maint = maintenance_config(&[]);
        assert_eq!(maint.alpn_protocols, vec![b"h2".to_vec()]);
        assert!(!maint.client_auth_cert_resolver.has_certs());
    }

    #[test]
    fn ca_verifier_names_the_foreign_issuer() {
        let ours = Pki::new("talos");
        let theirs = Pki::new("other");
        let leaf = server_cert(&theirs, "127.0.0.1".parse().unwrap(), "node-1");
        let verifier = TalosCaVerifier::new(&[ours.ca_der.clone().into()]).unwrap();
        let err = verifier
            .verify_server_cert(
                &leaf.cert_der.clone().into(),
                &[],
                &ip_name("127.0.0.1"),
                &[],
                UnixTime::now(),
            )
            .unwrap_err();
        assert_eq!(
            trust_text(err).split(';').next().unwrap(),
            "server certificate for 127.0.0.1 is not signed by the talosconfig CA (issuer: O=other)"
        );
    }

    #[test]
    fn ca_verifier_checks_the_ip_san() {
        let ours = Pki::new("talos");
        let leaf = server_cert(&ours, "127.0.0.1".parse().unwrap(), "node-1");
        let verifier = TalosCaVerifier::new(&[ours.ca_der.clone().into()]).unwrap();
        let der: CertificateDer<'_> = leaf.cert_der.clone().into();
        assert!(
            verifier
                .verify_server_cert(&der, &[], &ip_name("127.0.0.1"), &[], UnixTime::now())
                .is_ok()
        );
        let err = verifier
            .verify_server_cert(&der, &[], &ip_name("127.0.0.2"), &[], UnixTime::now())
            .unwrap_err();
        let text = trust_text(err);
        assert!(
            text.contains("127.0.0.2 is not valid for that address"),
            "{text}"
        );
        assert!(text.contains("127.0.0.1"), "{text}");
    }

    #[test]
    fn pins_accept_the_right_key_only() {
        let pki = Pki::new("");
        let leaf = server_cert(
            &pki,
            "127.0.0.1".parse().unwrap(),
            "maintenance-service.talos.dev",
        );
        let fp = spki_fingerprint(&leaf.cert_der).unwrap();
        let der: CertificateDer<'_> = leaf.cert_der.clone().into();
        let make = |pins: Vec<String>| AcceptAnyVerifier {
            pins,
            algs: provider().signature_verification_algorithms,
        };
        let name = ip_name("127.0.0.1");
        assert!(
            make(vec![])
                .verify_server_cert(&der, &[], &name, &[], UnixTime::now())
                .is_ok()
        );
        assert!(
            make(vec![fp.clone()])
                .verify_server_cert(&der, &[], &name, &[], UnixTime::now())
                .is_ok()
        );
        let err = make(vec!["AAAA".into()])
            .verify_server_cert(&der, &[], &name, &[], UnixTime::now())
            .unwrap_err();
        let text = trust_text(err);
        assert!(
            text.contains("not one of the pinned") && text.contains(&fp),
            "{text}"
        );
    }
}
