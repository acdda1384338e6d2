//! Opening a gRPC channel to one node through our own connector.
//!
//! tonic's built-in TLS would build a rustls config per channel and lump
//! connect and handshake under one timeout. talstrap talks to hundreds of
//! nodes with one shared `Arc<ClientConfig>`, wants separate connect and TLS
//! timeouts, and wants to know exactly which phase failed. So the channel
//! is given an `http://` URI (tonic must not try TLS itself) and a connector
//! that does TCP connect, then the tokio-rustls handshake against the
//! dialled IP, then waits for the server's first bytes (its verdict on our
//! client certificate), then hands the stream to hyper.
//!
//! No HTTP/2 keepalive pings are configured: Talos keeps grpc-go's default
//! enforcement and answers eager pings with GOAWAY `too_many_pings`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::client::ResolvesClientCert;
use rustls::pki_types::ServerName;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tonic::transport::{Channel, Endpoint, Uri};

use super::error::{Cause, DialError, ErrorClass, TalosError, TrustKind, chain_text, from_chain};
use super::primed::Primed;

/// Per-phase time limits for one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connect.
    pub connect: Duration,
    /// TLS handshake, after TCP is up.
    pub tls: Duration,
    /// Each unary call (and each whole List/Kubeconfig stream).
    pub rpc: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(3),
            tls: Duration::from_secs(5),
            rpc: Duration::from_secs(15),
        }
    }
}

/// TCP connect within `limit`.
pub(crate) async fn tcp_connect(
    addr: SocketAddr,
    limit: Duration,
) -> Result<TcpStream, TalosError> {
    match tokio::time::timeout(limit, TcpStream::connect(addr)).await {
        Err(_) => Err(TalosError::Unreachable {
            addr,
            reason: format!("TCP connect timed out after {limit:?}"),
        }),
        Ok(Err(e)) => Err(TalosError::Unreachable {
            addr,
            reason: e.to_string(),
        }),
        Ok(Ok(stream)) => {
            // Small request/response frames: do not wait to coalesce them.
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
    }
}

/// Notes whether the server asked for a client certificate during one
/// handshake; never offers one.
#[derive(Debug, Default)]
struct CertRequestSeen(AtomicBool);

impl CertRequestSeen {
    fn seen(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

impl ResolvesClientCert for CertRequestSeen {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.0.store(true, Ordering::SeqCst);
        None
    }

    fn has_certs(&self) -> bool {
        false
    }
}

/// The error for a certificate-less (maintenance) connection to a server
/// that demands a client certificate.
fn wants_client_cert(addr: SocketAddr) -> TalosError {
    TalosError::Trust {
        addr,
        detail: format!(
            "{addr} asks for a client certificate: it is a configured Talos node (apid, mutual \
             TLS), not in maintenance mode; it needs the talosconfig credentials"
        ),
        kind: TrustKind::ClientCertRejected,
    }
}

/// Whether a failed handshake failed because we refused the server's
/// certificate.
fn server_cert_refused(e: &std::io::Error) -> bool {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|tls| matches!(tls, rustls::Error::InvalidCertificate(_)))
}

/// TCP connect, then a TLS handshake verified against the dialled IP.
///
/// A config without a client certificate (maintenance mode) is given a
/// per-connection resolver that notes a CertificateRequest. Talos's
/// maintenance server never sends one and apid always does. With TLS 1.3
/// the handshake still completes on our side and apid's refusal (alert
/// `certificate_required`) arrives later, or is lost when the server's close
/// resets the connection first: without this check the same situation shows
/// up as an alert (trust) or as a broken pipe (retryable), by chance.
pub(crate) async fn dial(
    addr: SocketAddr,
    tls: Arc<ClientConfig>,
    t: &Timeouts,
) -> Result<Primed<TlsStream<TcpStream>>, TalosError> {
    let tcp = tcp_connect(addr, t.connect).await?;
    let server_name = ServerName::IpAddress(addr.ip().into());
    let (tls, cert_request) = if tls.client_auth_cert_resolver.has_certs() {
        (tls, None)
    } else {
        let seen = Arc::new(CertRequestSeen::default());
        let mut config = (*tls).clone();
        config.client_auth_cert_resolver = seen.clone();
        (Arc::new(config), Some(seen))
    };
    let asked_for_cert = || cert_request.as_ref().is_some_and(|s| s.seen());
    let connector = tokio_rustls::TlsConnector::from(tls);
    let stream = match tokio::time::timeout(t.tls, connector.connect(server_name, tcp)).await {
        Err(_) => return Err(TalosError::TlsTimeout { addr, after: t.tls }),
        Ok(Err(e)) => {
            // Our own verdict on the server certificate (e.g. a pin
            // mismatch) says more than the server's wish for a certificate.
            if asked_for_cert() && !server_cert_refused(&e) {
                return Err(wants_client_cert(addr));
            }
            return Err(
                from_chain(&e, addr, None).unwrap_or_else(|| TalosError::Transport {
                    addr,
                    detail: format!("TLS handshake failed: {}", chain_text(&e)),
                    class: ErrorClass::Permanent,
                    code: None,
                    cause: Cause::Tls,
                }),
            );
        }
        Ok(Ok(stream)) => stream,
    };
    if asked_for_cert() {
        return Err(wants_client_cert(addr));
    }
    if stream.get_ref().1.alpn_protocol() != Some(b"h2".as_slice()) {
        return Err(TalosError::Transport {
            addr,
            detail: "the server did not agree to HTTP/2 (ALPN h2); not a Talos API endpoint"
                .to_string(),
            class: ErrorClass::Permanent,
            code: None,
            cause: Cause::Protocol,
        });
    }
    tracing::debug!(%addr, "TLS connection established");
    await_server_verdict(addr, stream, t.tls).await
}

/// Waits for the server's first bytes before HTTP/2 may write anything.
///
/// With TLS 1.3 the server judges our client certificate only after our
/// side of the handshake is done. A refusal is an alert followed by a
/// close; if our HTTP/2 preface and request are already on the wire, that
/// close resets the connection and the alert is lost, so a refused
/// certificate would look like a dropped connection (retryable) instead of
/// a trust failure. Talos's grpc-go servers (and tonic's) send their HTTP/2
/// SETTINGS right after accepting the connection, so reading first is
/// deterministic: an alert means refused, data means accepted. The data is
/// handed to HTTP/2 untouched. A server that stays silent is left to HTTP/2.
pub(crate) async fn await_server_verdict(
    addr: SocketAddr,
    mut stream: TlsStream<TcpStream>,
    limit: Duration,
) -> Result<Primed<TlsStream<TcpStream>>, TalosError> {
    use tokio::io::AsyncReadExt as _;
    let mut head = vec![0u8; 1024];
    match tokio::time::timeout(limit, stream.read(&mut head)).await {
        Err(_) => Ok(Primed::new(Vec::new(), stream)),
        Ok(Ok(0)) => Err(TalosError::Transport {
            addr,
            detail: "the server closed the connection right after the TLS handshake".to_string(),
            class: ErrorClass::Retryable,
            code: Some(tonic::Code::Unavailable),
            cause: Cause::Refused,
        }),
        Ok(Ok(n)) => {
            head.truncate(n);
            Ok(Primed::new(head, stream))
        }
        Ok(Err(e)) => Err(
            from_chain(&e, addr, None).unwrap_or_else(|| TalosError::Transport {
                addr,
                detail: format!(
                    "connection lost right after the TLS handshake: {}",
                    chain_text(&e)
                ),
                class: ErrorClass::Retryable,
                code: Some(tonic::Code::Unavailable),
                cause: Cause::Refused,
            }),
        ),
    }
}

/// A connection already open (a probe's), for [`open_channel`] to use
/// before it dials.
pub(crate) type OpenStream = Primed<TlsStream<TcpStream>>;

/// Opens a channel to `addr`; the first connection is made now, so trust
/// and reachability errors surface here, a refused client certificate
/// included, and before any HTTP/2 machinery is built (a node that is down
/// costs one failed connect and nothing else). With `first`, that
/// connection is used instead (later reconnects dial as usual).
pub(crate) async fn open_channel(
    addr: SocketAddr,
    tls: Arc<ClientConfig>,
    t: &Timeouts,
    first: Option<OpenStream>,
) -> Result<Channel, TalosError> {
    let first = match first {
        Some(stream) => stream,
        None => dial(addr, tls.clone(), t).await?,
    };
    let first = Some(first);
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| TalosError::Input(format!("invalid node address {addr}: {e}")))?;
    let timeouts = t.clone();
    let first = Arc::new(std::sync::Mutex::new(first));
    let connector = tower::service_fn(move |_uri: Uri| {
        let tls = tls.clone();
        let timeouts = timeouts.clone();
        let ready = first
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        async move {
            match ready {
                Some(stream) => Ok(TokioIo::new(stream)),
                None => dial(addr, tls, &timeouts)
                    .await
                    .map(TokioIo::new)
                    .map_err(DialError),
            }
        }
    });
    endpoint
        .connect_with_connector(connector)
        .await
        .map_err(|e| {
            from_chain(&e, addr, None).unwrap_or_else(|| TalosError::Transport {
                addr,
                detail: format!("cannot open the gRPC channel: {}", chain_text(&e)),
                class: ErrorClass::Retryable,
                code: Some(tonic::Code::Unavailable),
                cause: Cause::Refused,
            })
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testkit::{loopback_ip, refused_addr, silent_server};

    #[test]
    fn default_timeouts() {
        let t = Timeouts::default();
        assert_eq!(
            (t.connect, t.tls, t.rpc),
            (
                Duration::from_secs(3),
                Duration::from_secs(5),
                Duration::from_secs(15)
            )
        );
    }

    #[tokio::test]
    async fn refused_connect_is_unreachable_and_retryable() {
        let addr = refused_addr().await;
        let err = dial(
            addr,
            crate::tls::maintenance_config(&[]),
            &Timeouts::default(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, TalosError::Unreachable { .. }), "{err:?}");
        assert!(err.is_retryable());
        assert_eq!(err.code(), Some(tonic::Code::Unavailable));
    }

    #[tokio::test]
    async fn silent_server_hits_the_tls_timeout() {
        let (addr, task) = silent_server().await;
        let t = Timeouts {
            tls: Duration::from_millis(200),
            ..Timeouts::default()
        };
        let err = tokio::time::timeout(
            Duration::from_secs(20),
            dial(addr, crate::tls::maintenance_config(&[]), &t),
        )
        .await
        .expect("hang guard")
        .unwrap_err();
        assert!(matches!(err, TalosError::TlsTimeout { .. }), "{err:?}");
        assert!(err.is_retryable());
        task.abort();
    }

    /// A configured apid (client certificate required) dialled with the
    /// maintenance config: always the same trust error, never a retryable
    /// "connection lost", whichever TLS version is negotiated.
    #[tokio::test]
    async fn maintenance_dial_to_a_node_that_wants_a_client_cert_is_a_trust_error() {
        use crate::testkit::{Pki, ServerTls, server_cert, server_config};
        let pki = Pki::new("talos");
        for tls12_only in [false, true] {
            let ip = loopback_ip();
            let leaf = server_cert(&pki, ip, "cp-1");
            let config = server_config(
                &leaf,
                ServerTls::RequireClientCert(pki.ca_der.clone().into()),
                tls12_only,
            );
            let (addr, task) = dropping_server_at(ip, config).await;
            let err = tokio::time::timeout(
                Duration::from_secs(20),
                dial(
                    addr,
                    crate::tls::maintenance_config(&[]),
                    &Timeouts::default(),
                ),
            )
            .await
            .expect("hang guard")
            .unwrap_err();
            assert_eq!(
                err.class(),
                ErrorClass::Trust,
                "tls12={tls12_only}: {err:?}"
            );
            assert!(
                err.message().contains("asks for a client certificate"),
                "{err}"
            );
            task.abort();
        }
    }

    /// A pinned maintenance dial to apid: the pin mismatch is reported, not
    /// the certificate request.
    #[tokio::test]
    async fn pin_mismatch_wins_over_the_certificate_request() {
        use crate::testkit::{Pki, ServerTls, server_cert, server_config};
        let pki = Pki::new("talos");
        let ip = loopback_ip();
        let leaf = server_cert(&pki, ip, "cp-1");
        let config = server_config(
            &leaf,
            ServerTls::RequireClientCert(pki.ca_der.clone().into()),
            false,
        );
        let (addr, task) = dropping_server_at(ip, config).await;
        let pins = ["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_string()];
        let err = dial(
            addr,
            crate::tls::maintenance_config(&pins),
            &Timeouts::default(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.class(), ErrorClass::Trust, "{err:?}");
        assert!(err.message().contains("pinned"), "{err}");
        task.abort();
    }

    #[test]
    fn cert_request_recorder_notes_the_request_and_offers_nothing() {
        let seen = CertRequestSeen::default();
        assert!(!seen.has_certs());
        assert!(seen.resolve(&[], &[]).is_none());
        assert!(seen.seen());
    }

    /// `dropping_server` on a chosen address.
    async fn dropping_server_at(
        ip: std::net::IpAddr,
        config: Arc<rustls::ServerConfig>,
    ) -> (SocketAddr, tokio::task::JoinHandle<()>) {
        use tokio::io::AsyncReadExt as _;
        let listener = tokio::net::TcpListener::bind(SocketAddr::new(ip, 0))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(stream).await {
                        let mut buf = [0u8; 64];
                        let _ = tls.read(&mut buf).await;
                    }
                });
            }
        });
        (addr, task)
    }

    #[tokio::test]
    async fn open_channel_reports_the_dial_error() {
        let addr = refused_addr().await;
        let err = open_channel(
            addr,
            crate::tls::maintenance_config(&[]),
            &Timeouts::default(),
            None,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, TalosError::Unreachable { .. }), "{err:?}");
    }
}
