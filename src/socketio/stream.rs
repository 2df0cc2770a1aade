//! The upgraded stream (TCP, or TLS over it) handed to socketioxide, with a kill switch.
//! Must not buffer or reorder bytes: reads and writes go straight through.
//!
//! socketioxide only lets the server end a socket with a socket.io DISCONNECT, after which
//! socket.io clients do not reconnect. A node that drains, or a socket closed as a slow
//! consumer, must make its clients reconnect (to another node), as a closed connection does:
//! killing the stream ends the WebSocket under socketioxide's feet, and clients see a
//! transport close and reconnect.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::BytesMut;
use futures_util::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Ends a [`Killable`] stream from outside. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub(super) struct KillSwitch(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    killed: AtomicBool,
    reader: AtomicWaker,
}

impl KillSwitch {
    /// Makes the stream fail its next read and write (and wakes a waiting read).
    pub(super) fn kill(&self) {
        self.0.killed.store(true, Ordering::Release);
        self.0.reader.wake();
    }

    fn killed(&self) -> bool {
        self.0.killed.load(Ordering::Acquire)
    }
}

/// The upgraded stream, with what actix's codec read ahead of the upgrade (normally nothing:
/// a client waits for the 101 before it sends a frame).
pub(super) struct Killable<S> {
    pub(super) pre: BytesMut,
    pub(super) io: S,
    pub(super) switch: KillSwitch,
}

fn killed() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "closed by the server")
}

impl<S: AsyncRead + Unpin> AsyncRead for Killable<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.switch.0.reader.register(cx.waker());
        if self.switch.killed() {
            return Poll::Ready(Err(killed()));
        }
        if !self.pre.is_empty() {
            let n = self.pre.len().min(buf.remaining());
            let chunk = self.pre.split_to(n);
            buf.put_slice(&chunk);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Killable<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        if self.switch.killed() {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut self.io).poll_write(cx, b)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
