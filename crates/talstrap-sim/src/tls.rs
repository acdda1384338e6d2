//! Server TLS for simulated nodes, one config per listener incarnation.
//!
//! Maintenance mode is server-only TLS with the ephemeral maintenance
//! certificate. A configured node's apid is mutual TLS: the client chain
//! must verify against the node's accepted CAs, and (as apid's
//! `verifyExtKeyUsage` insists) every non-CA certificate in it must carry
//! EKU exactly `[ClientAuth]`; otherwise the handshake fails, which a TLS 1.3
//! client sees as an alert on its first read. Both advertise ALPN `h2`
//! (Go gRPC servers enforce it) and send no session tickets, like Talos.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};

use super::pki::{self, IssuedLeaf, PkiError};

static PROVIDER: LazyLock<Arc<CryptoProvider>> =
    LazyLock::new(|| Arc::new(rustls::crypto::ring::default_provider()));

/// The ring provider, used explicitly so no process-wide default is needed
/// (built once: it is the same list of algorithms for every listener).
pub fn provider() -> Arc<CryptoProvider> {
    PROVIDER.clone()
}

fn certs(pem: &str, what: &'static str) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let out = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| PkiError::BadPem { what })?;
    if out.is_empty() {
        return Err(PkiError::BadPem { what });
    }
    Ok(out)
}

fn key(pem: &str) -> Result<PrivateKeyDer<'static>, PkiError> {
    PrivateKeyDer::from_pem_slice(pki::normalize_key_pem(pem).as_bytes()).map_err(|_| {
        PkiError::BadPem {
            what: "server private key",
        }
    })
}

fn finish(mut cfg: ServerConfig) -> Arc<ServerConfig> {
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    cfg.send_tls13_tickets = 0;
    cfg.session_storage = Arc::new(NoServerSessionStorage {});
    Arc::new(cfg)
}

fn tls_error(e: rustls::Error) -> PkiError {
    PkiError::BadCert {
        what: "TLS configuration",
        reason: e.to_string(),
    }
}

/// The maintenance server's certificate, swapped in place when it is
/// re-issued: Talos keeps it in an atomic pointer read at each handshake,
/// so the listener never closes for a refresh (v1.12.11
/// internal/app/maintenance/provider.go `Update`, `GetCertificate`).
#[derive(Debug)]
pub struct MaintenanceCert {
    current: std::sync::RwLock<Arc<rustls::sign::CertifiedKey>>,
}

impl MaintenanceCert {
    /// Serves `leaf` (chain: leaf, then `ca_pem`).
    pub fn new(leaf: IssuedLeaf, ca_pem: &str) -> Result<Arc<Self>, PkiError> {
        Ok(Arc::new(Self {
            current: std::sync::RwLock::new(certified(leaf, ca_pem)?),
        }))
    }

    /// The leaf presented now (DER).
    pub fn leaf_der(&self) -> Vec<u8> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .cert
            .first()
            .map(|c| c.as_ref().to_vec())
            .unwrap_or_default()
    }

    /// Handshakes from now on present `leaf`; open connections keep theirs.
    pub fn replace(&self, leaf: IssuedLeaf, ca_pem: &str) -> Result<(), PkiError> {
        let next = certified(leaf, ca_pem)?;
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = next;
        Ok(())
    }
}

impl rustls::server::ResolvesServerCert for MaintenanceCert {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        )
    }
}

fn certified(leaf: IssuedLeaf, ca_pem: &str) -> Result<Arc<rustls::sign::CertifiedKey>, PkiError> {
    let mut chain = certs(&leaf.pem.cert_pem, "maintenance certificate")?;
    chain.extend(certs(ca_pem, "maintenance CA")?);
    let signing = signing_key(leaf)?;
    Ok(Arc::new(rustls::sign::CertifiedKey::new(chain, signing)))
}

/// The key rustls signs handshakes with. An Ed25519 key made here is used
/// as it is, not read back from its PEM: Ed25519 signatures are
/// deterministic, so they are the bytes rustls's own ring key would give.
/// Any other key is read from the PEM by the provider.
fn signing_key(leaf: IssuedLeaf) -> Result<Arc<dyn rustls::sign::SigningKey>, PkiError> {
    if leaf.key.algorithm() == &rcgen::PKCS_ED25519 {
        return Ok(Arc::new(Ed25519Key(Arc::new(leaf.key))));
    }
    provider()
        .key_provider
        .load_private_key(key(&leaf.pem.key_pem)?)
        .map_err(tls_error)
}

/// An Ed25519 key as rustls's ring provider would present it: the
/// ED25519 scheme only, the same SubjectPublicKeyInfo.
struct Ed25519Key(Arc<rcgen::KeyPair>);

impl std::fmt::Debug for Ed25519Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ed25519Key(<redacted>)")
    }
}

impl rustls::sign::SigningKey for Ed25519Key {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn rustls::sign::Signer>> {
        if offered.contains(&SignatureScheme::ED25519) {
            Some(Box::new(Ed25519Key(self.0.clone())))
        } else {
            None
        }
    }

    fn public_key(&self) -> Option<rustls::pki_types::SubjectPublicKeyInfoDer<'_>> {
        use rcgen::PublicKeyData as _;
        Some(rustls::sign::public_key_to_spki(
            &rustls::pki_types::alg_id::ED25519,
            self.0.der_bytes(),
        ))
    }

    fn algorithm(&self) -> rustls::SignatureAlgorithm {
        rustls::SignatureAlgorithm::ED25519
    }
}

impl rustls::sign::Signer for Ed25519Key {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        rcgen::SigningKey::sign(&*self.0, message)
            .map_err(|e| rustls::Error::General(format!("Ed25519 signing failed: {e}")))
    }

    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::ED25519
    }
}

/// Server-only TLS presenting whatever `cert` holds at each handshake.
pub fn maintenance_config(cert: Arc<MaintenanceCert>) -> Result<Arc<ServerConfig>, PkiError> {
    let cfg = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    Ok(finish(cfg))
}

/// apid's mutual TLS: serve `server` (chain: leaf, then `issuing_ca_pem`),
/// accept clients chaining to any of `client_cas`.
pub fn apid_config(
    server: IssuedLeaf,
    issuing_ca_pem: &str,
    client_cas: &[String],
) -> Result<Arc<ServerConfig>, PkiError> {
    let verifier = client_verifier(client_cas)?;
    let mut chain = certs(&server.pem.cert_pem, "apid certificate")?;
    chain.extend(certs(issuing_ca_pem, "issuing CA")?);
    // What `with_single_cert` does with a PEM key: the certificate must be
    // the key's, one certificate for every handshake.
    let served = rustls::sign::CertifiedKey::new(chain, signing_key(server)?);
    match served.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(e) => return Err(tls_error(e)),
    }
    let cfg = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(served)));
    Ok(finish(cfg))
}

/// Most accepted-CA lists [`client_verifier`] keeps; beyond it the cache
/// starts over (a fleet has one per cluster, or a few during a CA rotation).
const VERIFIER_CACHE_LIMIT: usize = 64;

static VERIFIERS: LazyLock<Mutex<HashMap<Vec<String>, Arc<ExactClientAuth>>>> =
    LazyLock::new(Mutex::default);

/// apid's client verifier for `client_cas`, built once per list of CAs:
/// it holds nothing but the roots, and every node of a cluster accepts the
/// same ones. Errors are not kept (a bad list fails at each use).
fn client_verifier(client_cas: &[String]) -> Result<Arc<ExactClientAuth>, PkiError> {
    if let Some(hit) = crate::pki::recall(&VERIFIERS, client_cas) {
        return Ok(hit);
    }
    let mut roots = RootCertStore::empty();
    for ca in client_cas {
        for c in certs(ca, "accepted CA")? {
            roots.add(c).map_err(tls_error)?;
        }
    }
    let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| PkiError::BadCert {
            what: "client verifier",
            reason: e.to_string(),
        })?;
    let verifier = Arc::new(ExactClientAuth { inner });
    crate::pki::remember(
        &VERIFIERS,
        VERIFIER_CACHE_LIMIT,
        client_cas.to_vec(),
        verifier.clone(),
    );
    Ok(verifier)
}

/// Rewrites a client-certificate rejection so that rustls sends the alert
/// Go's TLS server sends for it (rustls picks the alert from the error):
/// a chain that does not verify against the accepted CAs is `unknown_ca`
/// (Go reports x509.UnknownAuthorityError even when a CA of the same
/// subject but another key is found, where webpki says BadSignature and
/// rustls would send decrypt_error), an expired or not-yet-valid one is
/// `certificate_expired`, anything else is `bad_certificate`.
fn go_alert(err: rustls::Error) -> rustls::Error {
    use rustls::CertificateError as E;
    let rustls::Error::InvalidCertificate(cert) = err else {
        return err;
    };
    let mapped = match cert {
        E::UnknownIssuer
        | E::BadSignature
        | E::UnsupportedSignatureAlgorithmContext { .. }
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => E::UnknownIssuer,
        e @ (E::Expired
        | E::ExpiredContext { .. }
        | E::NotValidYet
        | E::NotValidYetContext { .. }) => e,
        _ => E::BadEncoding,
    };
    rustls::Error::InvalidCertificate(mapped)
}

/// Chain verification plus apid's "EKU must be exactly ClientAuth" rule.
#[derive(Debug)]
struct ExactClientAuth {
    inner: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for ExactClientAuth {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)
            .map_err(go_alert)?;
        let leaf_and_intermediates = std::iter::once(end_entity).chain(intermediates.iter());
        for cert in leaf_and_intermediates {
            if !pki::ca_or_exactly_client_auth(cert) {
                // apid's extra check fails in Go's VerifyPeerCertificate
                // hook, which answers bad_certificate.
                return Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::BadEncoding,
                ));
            }
        }
        Ok(verified)
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

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::{AlertDescription, CertificateError as E};

    fn alert(err: rustls::Error) -> AlertDescription {
        match go_alert(err) {
            rustls::Error::InvalidCertificate(e) => e.into(),
            other => panic!("not a certificate error: {other:?}"),
        }
    }

    #[test]
    fn a_leaf_key_in_hand_signs_as_rustls_reading_its_pem_does() {
        let ca = pki::new_talos_ca().unwrap();
        let leaf =
            pki::issue_server_leaf(&ca, "cp1", &["127.1.2.3".parse().unwrap()], &[]).unwrap();
        let from_pem = provider()
            .key_provider
            .load_private_key(key(&leaf.pem.key_pem).unwrap())
            .unwrap();
        let chain = certs(&leaf.pem.cert_pem, "leaf").unwrap();
        let in_hand = signing_key(leaf).unwrap();
        assert_eq!(in_hand.algorithm(), from_pem.algorithm());
        assert_eq!(in_hand.public_key(), from_pem.public_key());
        rustls::sign::CertifiedKey::new(chain, in_hand.clone())
            .keys_match()
            .unwrap();
        let offered = [
            SignatureScheme::ECDSA_NISTP256_SHA256,
            SignatureScheme::ED25519,
        ];
        let (a, b) = (
            in_hand.choose_scheme(&offered).unwrap(),
            from_pem.choose_scheme(&offered).unwrap(),
        );
        assert_eq!(a.scheme(), b.scheme());
        let message = b"TLS 1.3, server CertificateVerify";
        assert_eq!(a.sign(message).unwrap(), b.sign(message).unwrap());
        // A client that offers no Ed25519 gets no signer from either.
        let no_ed = [SignatureScheme::RSA_PSS_SHA256];
        assert!(in_hand.choose_scheme(&no_ed).is_none());
        assert!(from_pem.choose_scheme(&no_ed).is_none());
        // And the apid listener is built from such a key.
        let leaf =
            pki::issue_server_leaf(&ca, "cp1", &["127.1.2.3".parse().unwrap()], &[]).unwrap();
        apid_config(leaf, &ca.cert_pem, std::slice::from_ref(&ca.cert_pem)).unwrap();
    }

    #[test]
    fn client_certificate_rejections_use_go_alerts() {
        let inv = rustls::Error::InvalidCertificate;
        assert_eq!(alert(inv(E::UnknownIssuer)), AlertDescription::UnknownCA);
        // Same subject, other key: Go still says "unknown authority".
        assert_eq!(alert(inv(E::BadSignature)), AlertDescription::UnknownCA);
        assert_eq!(alert(inv(E::Expired)), AlertDescription::CertificateExpired);
        assert_eq!(
            alert(inv(E::InvalidPurpose)),
            AlertDescription::BadCertificate
        );
        assert!(matches!(
            go_alert(rustls::Error::HandshakeNotComplete),
            rustls::Error::HandshakeNotComplete
        ));
    }
}
