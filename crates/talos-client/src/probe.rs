//! What is listening on an address: nothing, something that is not Talos, a
//! Talos node in maintenance mode, or a configured Talos node (ours or
//! another cluster's).
//!
//! One TCP connect and one TLS handshake, without verification and without
//! a client certificate, offering ALPN `h2`:
//! - the maintenance server never asks for a client certificate and its
//!   leaf's CN is `maintenance-service.talos.dev`;
//! - a configured apid always asks for one (mutual TLS). With TLS 1.3 the
//!   handshake may still complete (the server complains afterwards), with
//!   TLS 1.2 it fails; either way our resolver saw the CertificateRequest.
//!
//! The leaf is captured by the verifier, which sees it even when the
//! handshake fails later. No retries here: callers decide.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rustls::client::ResolvesClientCert;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::connect::{Timeouts, tcp_connect};
use super::error::chain_text;
use super::talosconfig::Credentials;
use super::tls::{TalosCaVerifier, builder, finish, provider, spki_fingerprint};

/// The CN of the certificate Talos's maintenance service presents.
pub(crate) const MAINTENANCE_CN: &str = "maintenance-service.talos.dev";

/// What an address turned out to be.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum ProbeResult {
    /// TCP connect refused or timed out.
    Unreachable { reason: String },
    /// TCP works but it is not a Talos API: TLS failed or hung, no HTTP/2,
    /// or neither Talos signature.
    NotTalos { reason: String },
    /// Maintenance mode; `fingerprint` is the leaf's SPKI SHA-256 (base64),
    /// what the node prints on its console. It changes within one boot (a
    /// new key on address, hostname or time changes and every 12 h);
    /// `ca_key_id`, the leaf's authority key id, names the ephemeral CA
    /// Talos creates once per boot, so it changes only with a reboot.
    Maintenance {
        fingerprint: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        ca_key_id: Option<String>,
    },
    /// A configured apid (it asked for a client certificate). `ours`: the
    /// leaf chains to the talosconfig CA (`None` without a talosconfig).
    Configured {
        ours: Option<bool>,
        issuer: String,
        subject: String,
    },
}

impl ProbeResult {
    /// TCP connected but the TLS handshake never finished: a hung node or
    /// a listener that does not speak TLS.
    pub fn tls_hung(&self) -> bool {
        matches!(self, ProbeResult::NotTalos { reason } if reason.starts_with(TLS_HUNG))
    }

    /// The TCP connection was actively refused (nothing listens there), as
    /// opposed to a connect that got no answer.
    pub fn refused(&self) -> bool {
        matches!(self, ProbeResult::Unreachable { reason } if reason.to_ascii_lowercase().contains("refused"))
    }
}

const TLS_HUNG: &str = "TLS handshake did not finish within";

/// Probes one address. Never panics, never retries.
pub async fn probe(addr: SocketAddr, trust: Option<&Credentials>, t: &Timeouts) -> ProbeResult {
    probe_holding(addr, trust, t).await.0
}

/// A probe's TLS connection to a node in maintenance mode, left open so
/// that the maintenance client can be opened over it
/// ([`crate::NodeClient::maintenance_over`]) instead of a second TCP
/// connect and TLS handshake. Talos's servers never resume sessions
/// (siderolabs/crypto v0.6.4 `tls/tls.go` `defaultConfig` sets
/// `SessionTicketsDisabled`, used by Talos v1.12.11
/// `internal/app/maintenance/provider.go` and
/// `internal/app/apid/pkg/provider/provider.go`), so every new connection
/// costs a full handshake on both sides. Nothing has been written on it
/// yet: HTTP/2 starts on it from scratch.
pub struct HeldConnection {
    pub(crate) addr: SocketAddr,
    /// The leaf the node presented (what pins are checked against).
    pub(crate) leaf: CertificateDer<'static>,
    pub(crate) stream: TlsStream<TcpStream>,
}

impl std::fmt::Debug for HeldConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldConnection")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// [`probe`], keeping the connection when the node is in maintenance mode
/// (the handshake completed, ALPN h2, no certificate request): the caller
/// may then open its maintenance client over it. For every other answer
/// the connection is closed, as [`probe`] does.
pub async fn probe_holding(
    addr: SocketAddr,
    trust: Option<&Credentials>,
    t: &Timeouts,
) -> (ProbeResult, Option<HeldConnection>) {
    let tcp = match tcp_connect(addr, t.connect).await {
        Ok(tcp) => tcp,
        Err(e) => {
            return (
                ProbeResult::Unreachable {
                    reason: e.message(),
                },
                None,
            );
        }
    };

    let recorder = Arc::new(Recorder::default());
    let config = finish(
        builder()
            .dangerous()
            .with_custom_certificate_verifier(recorder.clone())
            .with_client_cert_resolver(recorder.clone()),
    );
    let connector = tokio_rustls::TlsConnector::from(config);
    let server_name = ServerName::IpAddress(addr.ip().into());
    let outcome = tokio::time::timeout(t.tls, connector.connect(server_name, tcp)).await;

    let asked_for_cert = recorder.cert_requested.load(Ordering::SeqCst);
    let chain = recorder.chain();
    let (handshake, stream) = match outcome {
        Err(_) => {
            return (
                ProbeResult::NotTalos {
                    reason: format!("{TLS_HUNG} {:?}", t.tls),
                },
                None,
            );
        }
        Ok(Err(e)) => (Err(chain_text(&e)), None),
        Ok(Ok(stream)) => (
            Ok(stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec)),
            Some(stream),
        ),
    };
    let mode = classify(addr, trust, asked_for_cert, &chain, handshake);
    let held = match (&mode, stream, chain.into_iter().next()) {
        (ProbeResult::Maintenance { .. }, Some(stream), Some(leaf)) => {
            Some(HeldConnection { addr, leaf, stream })
        }
        _ => None,
    };
    (mode, held)
}

/// What the handshake's evidence says the address is.
fn classify(
    addr: SocketAddr,
    trust: Option<&Credentials>,
    asked_for_cert: bool,
    chain: &[CertificateDer<'static>],
    handshake: Result<Option<Vec<u8>>, String>,
) -> ProbeResult {
    let Some(leaf) = chain.first() else {
        return ProbeResult::NotTalos {
            reason: match handshake {
                Err(e) => format!("TLS handshake failed: {e}"),
                Ok(_) => "the server presented no certificate".to_string(),
            },
        };
    };
    if let Ok(alpn) = &handshake
        && alpn.as_deref() != Some(b"h2".as_slice())
    {
        return ProbeResult::NotTalos {
            reason: "TLS works but the server does not speak HTTP/2 (ALPN h2)".to_string(),
        };
    }
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf) else {
        return ProbeResult::NotTalos {
            reason: "the server certificate does not parse".to_string(),
        };
    };
    // Every Talos CA is "O=talos": the authority key id tells them apart.
    let issuer = match authority_key_id(&cert) {
        Some(id) => format!("{}, key id {id}", cert.issuer()),
        None => cert.issuer().to_string(),
    };
    let subject = cert.subject().to_string();

    if asked_for_cert {
        let ours = trust.map(|creds| chains_to(creds, chain, addr));
        return ProbeResult::Configured {
            ours,
            issuer,
            subject,
        };
    }
    let is_maintenance = cert
        .subject()
        .iter_common_name()
        .any(|cn| cn.as_str().map(|s| s == MAINTENANCE_CN).unwrap_or(false));
    match (is_maintenance, handshake) {
        (true, Ok(_)) => match spki_fingerprint(leaf) {
            Ok(fingerprint) => ProbeResult::Maintenance {
                fingerprint,
                ca_key_id: authority_key_id(&cert),
            },
            Err(e) => ProbeResult::NotTalos {
                reason: e.message(),
            },
        },
        (true, Err(e)) => ProbeResult::NotTalos {
            reason: format!("maintenance-style certificate but the TLS handshake failed: {e}"),
        },
        (false, Ok(_)) => ProbeResult::NotTalos {
            reason: format!(
                "TLS server that neither asks for a client certificate nor presents the maintenance certificate (subject: {subject})"
            ),
        },
        (false, Err(e)) => ProbeResult::NotTalos {
            reason: format!("TLS handshake failed: {e}"),
        },
    }
}

/// Does `chain` lead to the talosconfig CA? Name mismatches do not matter
/// here (the chain was fine if webpki got as far as checking the name), and
/// validity periods are taken out of the question by checking at a moment
/// inside the leaf's validity.
fn chains_to(creds: &Credentials, chain: &[CertificateDer<'static>], addr: SocketAddr) -> bool {
    let Ok(verifier) = TalosCaVerifier::inner_webpki(creds.ca_certs()) else {
        return false;
    };
    let name = ServerName::IpAddress(addr.ip().into());
    let (leaf, intermediates) = match chain.split_first() {
        Some(split) => split,
        None => return false,
    };
    let check = |now: UnixTime| verifier.verify_server_cert(leaf, intermediates, &name, &[], now);
    let verdict = |result: Result<ServerCertVerified, rustls::Error>| match result {
        Ok(_) => Some(true),
        Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        )) => Some(true),
        Err(rustls::Error::InvalidCertificate(
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. },
        )) => None,
        Err(_) => Some(false),
    };
    match verdict(check(UnixTime::now())) {
        Some(answer) => answer,
        None => {
            // The leaf (Talos node certs live 24 h) is outside its validity
            // by our clock: judge the chain at the middle of its lifetime.
            let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf) else {
                return false;
            };
            let v = cert.validity();
            let mid = v.not_before.timestamp() / 2 + v.not_after.timestamp() / 2;
            let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                u64::try_from(mid).unwrap_or(0),
            ));
            verdict(check(at)).unwrap_or(false)
        }
    }
}

/// Accepts any certificate (keeping a copy of the chain), checks handshake
/// signatures, and notes whether the server asked for a client certificate
/// (we never send one).
#[derive(Debug)]
struct Recorder {
    cert_requested: AtomicBool,
    chain: Mutex<Vec<CertificateDer<'static>>>,
    algs: WebPkiSupportedAlgorithms,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            cert_requested: AtomicBool::new(false),
            chain: Mutex::new(Vec::new()),
            algs: provider().signature_verification_algorithms,
        }
    }
}

impl Recorder {
    fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.chain.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut chain) = self.chain.lock() {
            chain.clear();
            chain.push(end_entity.clone().into_owned());
            chain.extend(intermediates.iter().map(|c| c.clone().into_owned()));
        }
        Ok(ServerCertVerified::assertion())
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

impl ResolvesClientCert for Recorder {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.cert_requested.store(true, Ordering::SeqCst);
        None
    }

    fn has_certs(&self) -> bool {
        false
    }
}

/// Short hex of a certificate's authority key identifier (the issuing CA's key).
pub(crate) fn authority_key_id(
    cert: &x509_parser::certificate::X509Certificate<'_>,
) -> Option<String> {
    cert.extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(aki) => {
                aki.key_identifier.as_ref().map(|k| short_hex(k.0))
            }
            _ => None,
        })
}

/// Short hex of a certificate's own subject key identifier.
pub fn subject_key_id(cert: &x509_parser::certificate::X509Certificate<'_>) -> Option<String> {
    cert.extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => {
                Some(short_hex(k.0))
            }
            _ => None,
        })
}

fn short_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
