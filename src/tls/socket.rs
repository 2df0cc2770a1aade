//! A TLS session driven by readiness, as the WebSocket session drives a plain `TcpStream`.
//! Must not buffer beyond rustls: plaintext goes into rustls, records out to the kernel.
//!
//! Reads: plaintext rustls already decrypted first, then one `read` of records from the kernel.
//! Writes: the frames of a batch are encrypted together (rustls packs them into records) and
//! the records go out in one `writev`; records the kernel does not take stay in rustls (up to
//! its buffer limit, then the stream takes nothing more) until [`Socket::flush_held`].
//! The session lives on one worker thread and never holds the borrow across an `await`.

use std::cell::{Cell, RefCell};
use std::io::{self, IoSlice, Read, Write};
use std::task::{Context, Poll};

use rustls::ServerConnection;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use crate::net::{Accepted, Socket};

/// A TLS stream after its handshake, for the WebSocket session.
pub struct TlsSocket {
    tcp: TcpStream,
    conn: RefCell<ServerConnection>,
    /// Decrypted bytes (or the peer's close) wait in rustls: a read needs no readiness.
    buffered: Cell<bool>,
}

impl Accepted for TlsStream<TcpStream> {
    type Socket = TlsSocket;

    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }

    fn into_socket(self) -> TlsSocket {
        let (tcp, conn) = self.into_inner();
        // The HTTP dispatcher read through rustls: decrypted bytes may wait in it.
        TlsSocket { tcp, conn: RefCell::new(conn), buffered: Cell::new(true) }
    }
}

/// The TCP stream as `io::Read`/`io::Write` for rustls, by readiness (never blocking).
struct Kernel<'a>(&'a TcpStream);

impl Read for Kernel<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

impl Write for Kernel<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes the records rustls holds until the kernel takes no more; `Ok(true)` when all went.
fn push(conn: &mut ServerConnection, tcp: &TcpStream) -> io::Result<bool> {
    while conn.wants_write() {
        match conn.write_tls(&mut Kernel(tcp)) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

impl TlsSocket {
    /// Plaintext into rustls, records out: how much of `bufs` was taken.
    fn write_plain(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut conn = self.conn.borrow_mut();
        push(&mut conn, &self.tcp)?;
        let taken = conn.writer().write_vectored(bufs)?;
        push(&mut conn, &self.tcp)?;
        if taken == 0 && bufs.iter().any(|b| !b.is_empty()) {
            // rustls is at its buffer limit and the kernel took nothing (readiness is cleared).
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(taken)
    }
}

impl Socket for TlsSocket {
    fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    async fn readable(&self) -> io::Result<()> {
        if self.buffered.get() {
            return Ok(());
        }
        self.tcp.readable().await
    }

    fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.buffered.get() {
            return Poll::Ready(Ok(()));
        }
        self.tcp.poll_read_ready(cx)
    }

    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut conn = self.conn.borrow_mut();
        loop {
            match conn.reader().read(buf) {
                Ok(n) => {
                    let state = conn.process_new_packets().map_err(io::Error::other)?;
                    self.buffered.set(state.plaintext_bytes_to_read() > 0 || state.peer_has_closed());
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.buffered.set(false),
                Err(e) => return Err(e),
            }
            if conn.read_tls(&mut Kernel(&self.tcp))? == 0 {
                return Ok(0);
            }
            if let Err(e) = conn.process_new_packets() {
                // rustls queued an alert saying why; send it if the kernel takes it.
                let _ = push(&mut conn, &self.tcp);
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            // Records of its own rustls may owe the peer (a key update's answer).
            push(&mut conn, &self.tcp)?;
        }
    }

    fn writable(&self) -> impl Future<Output = io::Result<()>> {
        self.tcp.writable()
    }

    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.write_plain(&[IoSlice::new(buf)])
    }

    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.write_plain(bufs)
    }

    fn holds_output(&self) -> bool {
        self.conn.borrow().wants_write()
    }

    fn flush_held(&self) -> io::Result<bool> {
        push(&mut self.conn.borrow_mut(), &self.tcp)
    }

    fn close_notify(&self) {
        let mut conn = self.conn.borrow_mut();
        conn.send_close_notify();
        let _ = push(&mut conn, &self.tcp);
    }
}
