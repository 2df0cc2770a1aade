//! Listening sockets for the main listener: one per worker, in one `SO_REUSEPORT` group.
//! Must not accept: `workers` does.

use std::io;
use std::net::{SocketAddr, TcpListener};

/// Pending connections the kernel queues per worker before it accepts them: reconnect storms
/// after a deploy arrive all at once.
const LISTEN_BACKLOG: i32 = 4096;

/// The first address `host` resolves to, with `port`.
///
/// # Errors
/// `host` does not resolve.
pub(super) fn resolve(host: &str, port: u16) -> io::Result<SocketAddr> {
    std::net::ToSocketAddrs::to_socket_addrs(&(host, port))?
        .next()
        .ok_or_else(|| io::Error::other(format!("{host} resolves to no address")))
}

/// Binds `count` listening sockets (0: one per CPU) to `addr` as one `SO_REUSEPORT` group (the
/// kernel spreads new connections over them). Port 0 picks one free port for all of them.
///
/// Members of a group share the port with any other socket of the same user that sets
/// `SO_REUSEPORT`, so a second Herald started on the same port would quietly take a share of
/// the connections instead of failing to start. A plain socket is bound first to make sure the
/// port is free (and to pick it, for port 0), then let go of for the group.
///
/// # Errors
/// The address is in use or cannot be bound.
pub(super) fn reuseport_group(addr: SocketAddr, count: usize) -> io::Result<Vec<TcpListener>> {
    let count = match count {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let addr = socket(addr, false)?.local_addr()?.as_socket().ok_or_else(|| io::Error::other("not an IP socket"))?;
    (0..count).map(|_| listener(addr, true)).collect()
}

fn socket(addr: SocketAddr, reuse_port: bool) -> io::Result<socket2::Socket> {
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
    // A restart can bind at once, with the last run's connections still in TIME_WAIT.
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// One listening socket of the group.
fn listener(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    let socket = socket(addr, reuse_port)?;
    // Accepted sockets inherit it from the listener (Linux): Pusher frames are small and latency
    // matters more than packet count, and no connection needs a `setsockopt` of its own.
    socket.set_tcp_nodelay(true)?;
    socket.set_nonblocking(true)?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_sockets_inherit_no_delay_from_the_listener() {
        let group = reuseport_group(resolve("127.0.0.1", 0).unwrap(), 1).unwrap();
        let _client = std::net::TcpStream::connect(group[0].local_addr().unwrap()).unwrap();
        group[0].set_nonblocking(false).unwrap();
        let (accepted, _) = group[0].accept().unwrap();
        assert!(accepted.nodelay().unwrap(), "TCP_NODELAY without a setsockopt per connection");
    }

    #[test]
    fn a_group_shares_one_port_that_no_one_else_may_take() {
        let group = reuseport_group(resolve("127.0.0.1", 0).unwrap(), 3).unwrap();
        let addr = group[0].local_addr().unwrap();
        assert!(group.iter().all(|l| l.local_addr().unwrap() == addr), "one port for the group");
        let second = reuseport_group(addr, 2).expect_err("a second server on the same port");
        assert_eq!(second.kind(), io::ErrorKind::AddrInUse);
        assert!(std::net::TcpListener::bind(addr).is_err(), "nor a plain socket");
    }
}
