//! A stream with a few bytes already read from it put back in front.
//!
//! The connector reads the server's first bytes itself before handing the
//! connection to HTTP/2 (see `connect::await_server_verdict`); those bytes
//! belong to the HTTP/2 layer and are replayed from here.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// `inner`, with `head` read first.
#[derive(Debug)]
pub(crate) struct Primed<S> {
    head: Vec<u8>,
    pos: usize,
    inner: S,
    /// Dropped with the stream: its receivers learn that the connection
    /// is gone (HTTP/2 drops the stream when the peer closes it).
    alive: Option<tokio::sync::watch::Sender<()>>,
}

impl<S> Primed<S> {
    pub(crate) fn new(head: Vec<u8>, inner: S) -> Self {
        Primed {
            head,
            pos: 0,
            inner,
            alive: None,
        }
    }

    /// This stream, telling `alive`'s receivers when it is dropped.
    pub(crate) fn tracked(mut self, alive: tokio::sync::watch::Sender<()>) -> Self {
        self.alive = Some(alive);
        self
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Primed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pos < this.head.len() {
            let rest = &this.head[this.pos..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.pos += n;
            if this.pos == this.head.len() {
                this.head = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Primed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[tokio::test]
    async fn head_is_read_first_then_the_stream() {
        let (client, mut server) = tokio::io::duplex(64);
        server.write_all(b" world").await.unwrap();
        drop(server);
        let mut primed = Primed::new(b"hello".to_vec(), client);
        let mut out = String::new();
        primed.read_to_string(&mut out).await.unwrap();
        assert_eq!(out, "hello world");
    }

    #[tokio::test]
    async fn small_reads_drain_the_head_in_pieces() {
        let (client, server) = tokio::io::duplex(64);
        drop(server);
        let mut primed = Primed::new(b"abc".to_vec(), client);
        let mut two = [0u8; 2];
        assert_eq!(primed.read(&mut two).await.unwrap(), 2);
        assert_eq!(&two, b"ab");
        assert_eq!(primed.read(&mut two).await.unwrap(), 1);
        assert_eq!(two[0], b'c');
        assert_eq!(primed.read(&mut two).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_tracked_stream_says_when_it_is_dropped() {
        let (client, _server) = tokio::io::duplex(64);
        let (tx, mut rx) = tokio::sync::watch::channel(());
        let primed = Primed::new(Vec::new(), client).tracked(tx);
        assert!(rx.has_changed().is_ok(), "open while the stream lives");
        drop(primed);
        assert!(rx.changed().await.is_err(), "closed once it is dropped");
    }

    #[tokio::test]
    async fn writes_go_straight_through() {
        let (client, mut server) = tokio::io::duplex(64);
        let mut primed = Primed::new(b"unread".to_vec(), client);
        primed.write_all(b"ping").await.unwrap();
        let mut got = [0u8; 4];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");
    }
}
