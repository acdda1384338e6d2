//! Opening a gRPC channel to one node through our own connector.
//!
//! tonic's built-in TLS would build a rustls config per channel and lump
//! connect and handshake under one timeout. talstrap talks to hundreds of
//! nodes with one shared `Arc<ClientConfig>`, wants separate connect and TLS
//! timeouts, and wants to know exactly which phase failed. So the channel
//! is given an `http://` URI (tonic must not try TLS itself) and a connector
//! that does TCP connect, then the tokio-rustls handshake against the
//! dialled IP, then hands the stream to hyper.
//!
//! No HTTP/2 keepalive pings are configured: Talos keeps grpc-go's default
//! enforcement and answers eager pings with GOAWAY `too_many_pings`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tonic::transport::{Channel, Endpoint, Uri};

use super::error::{DialError, ErrorClass, TalosError, chain_text, from_chain};

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

/// TCP connect, then a TLS handshake verified against the dialled IP.
pub(crate) async fn dial(
    addr: SocketAddr,
    tls: Arc<ClientConfig>,
    t: &Timeouts,
) -> Result<TlsStream<TcpStream>, TalosError> {
    let tcp = tcp_connect(addr, t.connect).await?;
    let server_name = ServerName::IpAddress(addr.ip().into());
    let connector = tokio_rustls::TlsConnector::from(tls);
    let stream = match tokio::time::timeout(t.tls, connector.connect(server_name, tcp)).await {
        Err(_) => return Err(TalosError::TlsTimeout { addr, after: t.tls }),
        Ok(Err(e)) => {
            return Err(
                from_chain(&e, addr, None).unwrap_or_else(|| TalosError::Transport {
                    addr,
                    detail: format!("TLS handshake failed: {}", chain_text(&e)),
                    class: ErrorClass::Permanent,
                    code: None,
                }),
            );
        }
        Ok(Ok(stream)) => stream,
    };
    if stream.get_ref().1.alpn_protocol() != Some(b"h2".as_slice()) {
        return Err(TalosError::Transport {
            addr,
            detail: "the server did not agree to HTTP/2 (ALPN h2); not a Talos API endpoint"
                .to_string(),
            class: ErrorClass::Permanent,
            code: None,
        });
    }
    tracing::debug!(%addr, "TLS connection established");
    Ok(stream)
}

/// Opens a channel to `addr`; the first connection is made now, so trust
/// and reachability errors surface here (except a TLS 1.3 client-cert
/// rejection, which only shows on the first call).
pub(crate) async fn open_channel(
    addr: SocketAddr,
    tls: Arc<ClientConfig>,
    t: &Timeouts,
) -> Result<Channel, TalosError> {
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| TalosError::Input(format!("invalid node address {addr}: {e}")))?;
    let timeouts = t.clone();
    let connector = tower::service_fn(move |_uri: Uri| {
        let tls = tls.clone();
        let timeouts = timeouts.clone();
        async move {
            dial(addr, tls, &timeouts)
                .await
                .map(TokioIo::new)
                .map_err(DialError)
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
            })
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::talos::testkit::{refused_addr, silent_server};

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
            crate::talos::tls::maintenance_config(&[]),
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
            dial(addr, crate::talos::tls::maintenance_config(&[]), &t),
        )
        .await
        .expect("hang guard")
        .unwrap_err();
        assert!(matches!(err, TalosError::TlsTimeout { .. }), "{err:?}");
        assert!(err.is_retryable());
        task.abort();
    }

    #[tokio::test]
    async fn open_channel_reports_the_dial_error() {
        let addr = refused_addr().await;
        let err = open_channel(
            addr,
            crate::talos::tls::maintenance_config(&[]),
            &Timeouts::default(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, TalosError::Unreachable { .. }), "{err:?}");
    }
}
