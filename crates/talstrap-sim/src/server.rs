//! Sockets of one simulated node: a listener incarnation per mode (each with
//! its own TLS identity), our own accept loop (so connections can be counted,
//! hung, reset and killed on reboot), and tonic serving the decrypted
//! streams. The `unreachable` fault is a listener with a backlog of one that
//! never accepts and whose queue we fill ourselves, so further SYNs are
//! dropped and clients time out instead of being refused.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

use super::node::SimNode;
use super::pki;
use super::rbac::Roles;
use super::services::{MachineApi, StateApi, StorageApi};
use super::state::{ListenerKind, ListenerWant, StopStyle};
use crate::proto::cosi::resource::state_server::StateServer;
use crate::proto::machine::machine_service_server::MachineServiceServer;
use crate::proto::storage::storage_service_server::StorageServiceServer;

/// Talos's gRPC message limit, both directions.
const MAX_MESSAGE: usize = 32 * 1024 * 1024;

/// Lets the simulator end one TCP connection from outside the stream.
#[derive(Debug)]
pub struct KillSwitch {
    sock: std::net::TcpStream,
}

impl KillSwitch {
    /// Abort with a RST: the peer sees "connection reset", never a reply.
    pub fn reset(&self) {
        if let Ok(dup) = self.sock.try_clone()
            && let Ok(t) = TcpStream::from_std(dup)
        {
            let _ = t.set_zero_linger();
        }
        let _ = self.sock.shutdown(std::net::Shutdown::Both);
    }

    /// Close both directions (reboot, listener stop).
    pub fn close(&self) {
        let _ = self.sock.shutdown(std::net::Shutdown::Both);
    }
}

/// What handlers know about the connection a request came on.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub kind: ListenerKind,
    pub generation: u64,
    pub peer: SocketAddr,
    pub roles: Roles,
    pub kill: Arc<KillSwitch>,
}

/// A decrypted connection handed to tonic.
pub struct SimConn {
    inner: tokio_rustls::server::TlsStream<TcpStream>,
    info: ConnInfo,
}

impl Connected for SimConn {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

impl AsyncRead for SimConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for SimConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Binds `addr` with SO_REUSEADDR (listeners come and go on the same port).
pub fn bind(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let sock = match addr.ip() {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    sock.set_reuseaddr(true)?;
    sock.bind(addr)?;
    sock.listen(backlog)
}

type Conns = Arc<Mutex<Vec<Weak<KillSwitch>>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One incarnation of a node's listener.
pub struct Listener {
    accept: Option<JoinHandle<()>>,
    serve: Option<JoinHandle<()>>,
    shutdown: Option<oneshot::Sender<()>>,
    conns: Conns,
    /// Sockets held open: hung connections, or the blackhole's queue fillers.
    held: Arc<Mutex<Vec<TcpStream>>>,
    blackhole: Option<TcpListener>,
}

impl Listener {
    /// Starts the listener `want` describes on the node's address.
    pub async fn start(
        node: &Arc<SimNode>,
        want: &ListenerWant,
        addr: SocketAddr,
    ) -> io::Result<Listener> {
        let held = Arc::new(Mutex::new(Vec::new()));
        if node.id.faults.unreachable || want.kind == ListenerKind::Silent {
            return Self::blackhole(addr, held).await;
        }
        let tls = want
            .tls
            .clone()
            .ok_or_else(|| io::Error::other("listener without TLS configuration"))?;
        let listener = bind(addr, 1024)?;
        let conns: Conns = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<io::Result<SimConn>>(64);
        let accept = tokio::spawn(accept_loop(
            node.clone(),
            listener,
            TlsAcceptor::from(tls),
            want.kind,
            want.generation,
            tx,
            conns.clone(),
            held.clone(),
        ));
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let router = tonic::transport::Server::builder()
            .add_service(
                MachineServiceServer::new(MachineApi::new(node.clone()))
                    .max_decoding_message_size(MAX_MESSAGE)
                    .max_encoding_message_size(MAX_MESSAGE),
            )
            .add_service(
                StorageServiceServer::new(StorageApi::new(node.clone()))
                    .max_decoding_message_size(MAX_MESSAGE)
                    .max_encoding_message_size(MAX_MESSAGE),
            )
            .add_service(
                StateServer::new(StateApi::new(node.clone()))
                    .max_decoding_message_size(MAX_MESSAGE)
                    .max_encoding_message_size(MAX_MESSAGE),
            );
        let serve = tokio::spawn(async move {
            let signal = async {
                let _ = shutdown_rx.await;
            };
            if let Err(e) = router
                .serve_with_incoming_shutdown(ReceiverStream::new(rx), signal)
                .await
            {
                tracing::debug!(error = %e, "simulated node server ended");
            }
        });
        Ok(Listener {
            accept: Some(accept),
            serve: Some(serve),
            shutdown: Some(shutdown_tx),
            conns,
            held,
            blackhole: None,
        })
    }

    /// A silent listener: backlog 1, never accepted, queue filled by us.
    async fn blackhole(addr: SocketAddr, held: Arc<Mutex<Vec<TcpStream>>>) -> io::Result<Listener> {
        let listener = bind(addr, 1)?;
        // Linux queues backlog+1 connections; fill them so new SYNs are dropped.
        for _ in 0..3 {
            match tokio::time::timeout(Duration::from_millis(100), TcpStream::connect(addr)).await {
                Ok(Ok(s)) => lock(&held).push(s),
                _ => break,
            }
        }
        Ok(Listener {
            accept: None,
            serve: None,
            shutdown: None,
            conns: Arc::new(Mutex::new(Vec::new())),
            held,
            blackhole: Some(listener),
        })
    }

    /// The connections still open, to be held past a [`StopStyle::Freeze`]
    /// stop (each holds a duplicate of its socket, which keeps it open).
    pub fn open_connections(&self) -> Vec<Arc<KillSwitch>> {
        lock(&self.conns).iter().filter_map(Weak::upgrade).collect()
    }

    fn kill_all(&self) {
        for c in lock(&self.conns).drain(..) {
            if let Some(c) = c.upgrade() {
                c.close();
            }
        }
        lock(&self.held).clear();
    }

    /// Takes the listener down. The listening socket is closed before this
    /// returns, so the address can be bound again at once.
    pub async fn stop(mut self, style: StopStyle) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
            let _ = accept.await;
        }
        self.blackhole = None;
        lock(&self.held).clear();
        match style {
            StopStyle::Abort => {
                self.kill_all();
                if let Some(serve) = self.serve.take() {
                    serve.abort();
                }
            }
            StopStyle::Freeze => {
                // Nothing is closed here: the caller keeps the connections
                // (`open_connections`) so their sockets stay open, silent.
                if let Some(serve) = self.serve.take() {
                    serve.abort();
                }
                self.shutdown = None;
            }
            StopStyle::Graceful => {
                if let Some(tx) = self.shutdown.take() {
                    let _ = tx.send(());
                }
                let serve = self.serve.take();
                let conns = std::mem::take(&mut *lock(&self.conns));
                // In-flight replies get a moment to finish, then the rest is cut.
                tokio::spawn(async move {
                    if let Some(mut serve) = serve
                        && tokio::time::timeout(Duration::from_secs(2), &mut serve)
                            .await
                            .is_err()
                    {
                        for c in conns {
                            if let Some(c) = c.upgrade() {
                                c.close();
                            }
                        }
                        serve.abort();
                    }
                });
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(a) = self.accept.take() {
            a.abort();
        }
        if let Some(s) = self.serve.take() {
            s.abort();
            self.kill_all();
        }
    }
}

fn kill_switch(tcp: TcpStream) -> io::Result<(TcpStream, Arc<KillSwitch>)> {
    let std = tcp.into_std()?;
    let dup = std.try_clone()?;
    Ok((
        TcpStream::from_std(std)?,
        Arc::new(KillSwitch { sock: dup }),
    ))
}

#[allow(clippy::too_many_arguments)]
async fn accept_loop(
    node: Arc<SimNode>,
    listener: TcpListener,
    acceptor: TlsAcceptor,
    kind: ListenerKind,
    generation: u64,
    tx: mpsc::Sender<io::Result<SimConn>>,
    conns: Conns,
    held: Arc<Mutex<Vec<TcpStream>>>,
) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        node.count_connection();
        let _ = tcp.set_nodelay(true);
        if node.id.faults.hang_after_accept {
            // Never speak TLS: the client's handshake hangs until it gives up.
            lock(&held).push(tcp);
            continue;
        }
        let Ok((tcp, kill)) = kill_switch(tcp) else {
            continue;
        };
        {
            let mut list = lock(&conns);
            list.retain(|w| w.strong_count() > 0);
            list.push(Arc::downgrade(&kill));
        }
        let acceptor = acceptor.clone();
        let tx = tx.clone();
        let node = node.clone();
        tokio::spawn(async move {
            let Ok(Ok(tls)) =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
            else {
                return;
            };
            node.count_handshake();
            let roles = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|leaf| Roles::from_orgs(pki::subject_organizations(leaf)))
                .unwrap_or_default();
            let info = ConnInfo {
                kind,
                generation,
                peer,
                roles,
                kill,
            };
            let _ = tx.send(Ok(SimConn { inner: tls, info })).await;
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A 127.x.y.z address in a random subnet, so parallel tests never meet.
    fn random_loopback() -> IpAddr {
        let mut b = [0u8; 3];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
        IpAddr::from([127, 1 + b[0] % 254, 1 + b[1] % 254, 1 + b[2] % 250])
    }

    #[tokio::test]
    async fn silent_listener_makes_connects_time_out() {
        let ip = random_loopback();
        // Find a free port first: the queue must be filled on a known port.
        let probe = bind(SocketAddr::new(ip, 0), 1).unwrap();
        let addr = probe.local_addr().unwrap();
        drop(probe);
        let hole = Listener::blackhole(addr, Arc::new(Mutex::new(Vec::new())))
            .await
            .unwrap();
        let attempt =
            tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(addr)).await;
        assert!(attempt.is_err(), "connect must time out, got {attempt:?}");
        hole.stop(StopStyle::Abort).await;
        // Once stopped, nothing listens: refused, not silent.
        let refused = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr)).await;
        assert!(
            matches!(refused, Ok(Err(ref e)) if e.kind() == io::ErrorKind::ConnectionRefused),
            "{refused:?}"
        );
    }
}
