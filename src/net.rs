//! The byte streams the main listener accepts: plain TCP, or TLS over it (`tls/`).
//! Must not know HTTP or WebSocket: this is only how bytes move.
//!
//! actix-http hands an upgraded connection over as the stream its dispatcher read from
//! ([`Accepted`]); the WebSocket session then drives it by readiness ([`Socket`]), with no
//! buffer held while it idles. A plain socket is the `TcpStream` itself, so the plain path
//! compiles to exactly the calls it makes without TLS.

use std::io::{self, IoSlice};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// A connection as the HTTP dispatcher hands it over at an upgrade.
pub trait Accepted: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// What the WebSocket session drives.
    type Socket: Socket;

    /// The TCP stream underneath (peer address, socket options, readiness).
    fn tcp(&self) -> &TcpStream;

    /// The stream as the session drives it; nothing read or written so far is lost.
    fn into_socket(self) -> Self::Socket;
}

/// A stream read and written by readiness, through a shared reference, as `TcpStream` is.
///
/// Writes are accepted whole or in part, never lost; a layer that keeps accepted bytes in user
/// space (TLS records the kernel did not take) says so through [`Socket::holds_output`], and
/// [`Socket::flush_held`] moves them on.
pub trait Socket: 'static {
    /// The TCP stream underneath.
    fn tcp(&self) -> &TcpStream;

    /// Waits until a read may make progress.
    fn readable(&self) -> impl Future<Output = io::Result<()>>;

    /// `readable` as a poll: `Ready` when a read may make progress, else the task is woken when
    /// one may. Only the waker of the latest call is kept, in a slot of its own (no waiter list
    /// to join and leave): for the one task that owns the socket and polls it on every wake-up.
    fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Reads what is there; `WouldBlock` when nothing is, `Ok(0)` at the end of the stream.
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize>;

    /// Waits until a write may make progress.
    fn writable(&self) -> impl Future<Output = io::Result<()>>;

    /// Writes what the stream takes now; `WouldBlock` when it takes nothing.
    fn try_write(&self, buf: &[u8]) -> io::Result<usize>;

    /// Writes what the stream takes now of `bufs`, in order, in one call.
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;

    /// Whether written bytes still wait in user space for the kernel.
    fn holds_output(&self) -> bool {
        false
    }

    /// Moves held bytes on to the kernel; `Ok(true)` once none are held.
    ///
    /// # Errors
    /// The stream failed.
    fn flush_held(&self) -> io::Result<bool> {
        Ok(true)
    }

    /// Says goodbye at this layer (a TLS `close_notify`) before the stream is dropped.
    fn close_notify(&self) {}
}

impl Accepted for TcpStream {
    type Socket = Self;

    fn tcp(&self) -> &TcpStream {
        self
    }

    fn into_socket(self) -> Self {
        self
    }
}

impl Socket for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }

    fn readable(&self) -> impl Future<Output = io::Result<()>> {
        Self::readable(self)
    }

    fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Self::poll_read_ready(self, cx)
    }

    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        Self::try_read(self, buf)
    }

    fn writable(&self) -> impl Future<Output = io::Result<()>> {
        Self::writable(self)
    }

    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        Self::try_write(self, buf)
    }

    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        Self::try_write_vectored(self, bufs)
    }
}
