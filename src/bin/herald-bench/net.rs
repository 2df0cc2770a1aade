//! Connections to the server under test: TCP from spread loopback source addresses, the
//! WebSocket handshake, the few Pusher frames the scenarios send and wait for, the two ways
//! of leaving (close handshake, RST), and plain GETs of pages such as its `/metrics`.
//! Must not measure anything: scenarios time what they need around these calls.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use herald::protocol::signature;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::client::conn::http1;
use hyper::header::HOST;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};

use crate::{Result, TargetArgs};

/// A client WebSocket over plain TCP.
pub(crate) type Ws = WebSocketStream<TcpStream>;

/// Connections per source address before spreading over more 127.x addresses: comfortably
/// below the 22k ports of [`BIND_PORTS`].
const PORTS_PER_SOURCE: usize = 20_000;

/// The source ports connections to a loopback target bind in turn. Letting the kernel choose
/// (port 0, or no bind) fails or costs seconds of CPU per thousand connections once an earlier
/// run left tens of thousands of sockets in TIME_WAIT; explicit ports with SO_REUSEADDR do not.
/// They stay below the kernel's ephemeral range (32768–60999 by default): the kernel never
/// picks a port someone bound explicitly, so binds all over that range would leave every
/// other program on the host (a metrics scrape, a REST client, Redis clients) without one.
/// A port a server listens on for every address is skipped like any other clash.
const BIND_PORTS: std::ops::Range<u32> = 10_000..32_000;

/// How long one handshake step (TCP, upgrade, `connection_established`, a subscribe) may take.
pub(crate) const STEP_TIMEOUT: Duration = Duration::from_secs(15);

/// The server under test and how to reach it.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    /// The resolved address of each node (one for a single server).
    addrs: Arc<[SocketAddr]>,
    /// `host:port` as given, for the `Host` header and URLs.
    pub(crate) authority: String,
    /// Mount prefix of both the WebSocket and the REST paths (e.g. `/herald`), or empty.
    pub(crate) prefix: String,
    pub(crate) app_id: String,
    pub(crate) key: String,
    pub(crate) secret: String,
    /// Source addresses connections rotate over (loopback targets only); empty lets the
    /// kernel choose.
    sources: Arc<[IpAddr]>,
    /// Next explicit source port (see [`BIND_PORTS`]), shared by every connection.
    next_port: Arc<AtomicU32>,
}

impl Target {
    /// Resolves `--host`/`--port` (or `--ports`) and picks source addresses for
    /// `connections` sockets.
    pub(crate) async fn resolve(args: &TargetArgs, connections: usize) -> Result<Self> {
        let ports = if args.ports.is_empty() { vec![args.port] } else { args.ports.clone() };
        let authority = format!("{}:{}", args.host, ports[0]);
        let mut addrs = Vec::with_capacity(ports.len());
        for port in &ports {
            let node = format!("{}:{port}", args.host);
            let addr = tokio::net::lookup_host(&node)
                .await?
                .find(SocketAddr::is_ipv4)
                .ok_or_else(|| format!("{node} has no IPv4 address"))?;
            addrs.push(addr);
        }
        let addr = addrs[0];
        let wanted = match args.source_ips {
            0 => connections.div_ceil(PORTS_PER_SOURCE).max(1),
            n => usize::from(n),
        };
        let sources: Vec<IpAddr> = if addr.ip().is_loopback() {
            let first = usize::from(args.first_source_ip.max(1));
            (first..=(first + wanted - 1).min(254)).map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i as u8))).collect()
        } else {
            if wanted > 1 {
                eprintln!("note: {connections} connections may exhaust ports; source spreading needs a 127.x target");
            }
            Vec::new()
        };
        Ok(Self {
            addrs: addrs.into(),
            authority,
            prefix: args.path_prefix.trim_end_matches('/').to_owned(),
            app_id: args.app_id.clone(),
            key: args.key.clone(),
            secret: args.secret.clone(),
            sources: sources.into(),
            next_port: Arc::new(AtomicU32::new(rand::random_range(BIND_PORTS))),
        })
    }

    /// How many source addresses connections are spread over (0: the kernel's choice).
    pub(crate) fn source_count(&self) -> usize {
        self.sources.len()
    }

    /// How many nodes connections are spread over.
    pub(crate) fn node_count(&self) -> usize {
        self.addrs.len()
    }

    /// Opens a TCP connection; the `n`th connection binds the `n`th source address and goes to
    /// node `n mod N`, round robin.
    pub(crate) async fn tcp(&self, n: usize) -> Result<TcpStream> {
        let addr = self.addrs[n % self.addrs.len()];
        let mut clashes = 0;
        loop {
            let socket = TcpSocket::new_v4()?;
            if !self.sources.is_empty() && !self.bind_next(&socket, n) {
                clashes += 1;
            } else {
                match tokio::time::timeout(STEP_TIMEOUT, socket.connect(addr)).await {
                    Err(_) => return Err("tcp timeout".into()),
                    Ok(Ok(stream)) => {
                        stream.set_nodelay(true)?;
                        return Ok(stream);
                    }
                    // An explicit port can meet a live 4-tuple: take the next one.
                    Ok(Err(e)) if !self.sources.is_empty() && is_port_clash(&e) => clashes += 1,
                    Ok(Err(e)) => return Err(e.into()),
                }
            }
            if clashes >= 64 {
                return Err("no free source port after 64 tries".into());
            }
        }
    }

    /// Binds the `n`th source address and the next port of [`BIND_PORTS`]; false if taken.
    fn bind_next(&self, socket: &TcpSocket, n: usize) -> bool {
        let span = BIND_PORTS.end - BIND_PORTS.start;
        let port = BIND_PORTS.start + self.next_port.fetch_add(1, Ordering::Relaxed) % span;
        let port = u16::try_from(port).unwrap_or(u16::MAX); // BIND_PORTS lies within u16
        let ip = self.sources[n % self.sources.len()];
        // Lets a port whose last socket sits in TIME_WAIT be bound again.
        socket.set_reuseaddr(true).is_ok() && socket.bind(SocketAddr::new(ip, port)).is_ok()
    }

    /// Opens the `n`th WebSocket and waits for `pusher:connection_established`.
    pub(crate) async fn connect(&self, n: usize) -> Result<Conn> {
        let tcp = self.tcp(n).await?;
        let url = format!(
            "ws://{}{}/app/{}?protocol=7&client=herald-bench&version={}&flash=false",
            self.authority,
            self.prefix,
            self.key,
            env!("CARGO_PKG_VERSION")
        );
        // Small buffers: 20k idle clients must not cost the generator gigabytes.
        let config = WebSocketConfig::default().read_buffer_size(8 * 1024).write_buffer_size(0);
        let handshake = tokio_tungstenite::client_async_with_config(url, tcp, Some(config));
        let (ws, _) = tokio::time::timeout(STEP_TIMEOUT, handshake).await.map_err(|_| "upgrade timeout")??;
        let mut conn = Conn { ws, socket_id: String::new() };
        let established = conn.expect("pusher:connection_established", None).await?;
        let data = established.data_value();
        conn.socket_id = data["socket_id"].as_str().ok_or("connection_established without socket_id")?.to_owned();
        Ok(conn)
    }

    /// Opens the `n`th WebSocket and, unless `channel` is empty, subscribes it to that public
    /// channel and waits for `subscription_succeeded`.
    pub(crate) async fn connect_subscribed(&self, n: usize, channel: &str) -> Result<Conn> {
        let mut conn = self.connect(n).await?;
        if !channel.is_empty() {
            conn.subscribe(channel, "", None).await?;
            conn.expect("pusher_internal:subscription_succeeded", Some(channel)).await?;
        }
        Ok(conn)
    }

    /// The `auth` a private channel subscription of `socket_id` needs, signed locally.
    pub(crate) fn private_auth(&self, socket_id: &str, channel: &str) -> String {
        signature::auth_token(&self.key, &self.secret, &signature::channel_string(socket_id, channel))
    }

    /// The `auth` a presence subscription with `channel_data` needs, signed locally.
    pub(crate) fn presence_auth(&self, socket_id: &str, channel: &str, channel_data: &str) -> String {
        signature::auth_token(&self.key, &self.secret, &signature::presence_string(socket_id, channel, channel_data))
    }
}

/// A parsed server frame (control frames only; fan-out traffic is scanned, not parsed).
#[derive(Debug, Deserialize)]
pub(crate) struct Frame {
    pub(crate) event: String,
    #[serde(default)]
    pub(crate) channel: Option<String>,
    #[serde(default)]
    data: Option<Box<RawValue>>,
}

impl Frame {
    /// `data` as JSON, undoing Pusher's double encoding when `data` is a JSON string.
    pub(crate) fn data_value(&self) -> Value {
        let Some(raw) = &self.data else { return Value::Null };
        match serde_json::from_str::<Value>(raw.get()) {
            Ok(Value::String(s)) => serde_json::from_str(&s).unwrap_or(Value::String(s)),
            Ok(v) => v,
            Err(_) => Value::Null,
        }
    }
}

/// One Pusher connection.
pub(crate) struct Conn {
    pub(crate) ws: Ws,
    pub(crate) socket_id: String,
}

impl Conn {
    /// Sends one text frame.
    pub(crate) async fn send_text(&mut self, text: String) -> Result<()> {
        self.ws.send(Message::text(text)).await?;
        Ok(())
    }

    /// Sends `pusher:subscribe`.
    pub(crate) async fn subscribe(&mut self, channel: &str, auth: &str, channel_data: Option<&str>) -> Result<()> {
        let mut data = serde_json::json!({ "channel": channel, "auth": auth });
        if let Some(cd) = channel_data {
            data["channel_data"] = Value::String(cd.to_owned());
        }
        self.send_text(serde_json::json!({ "event": "pusher:subscribe", "data": data }).to_string()).await
    }

    /// Sends `pusher:unsubscribe`.
    pub(crate) async fn unsubscribe(&mut self, channel: &str) -> Result<()> {
        let frame = serde_json::json!({ "event": "pusher:unsubscribe", "data": { "channel": channel } });
        self.send_text(frame.to_string()).await
    }

    /// The next text frame; answers `pusher:ping` on the way. `None` once the socket closed.
    pub(crate) async fn next_text(&mut self) -> Result<Option<Utf8Bytes>> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    if t.contains("\"pusher:ping\"") {
                        self.send_text(r#"{"event":"pusher:pong","data":{}}"#.to_owned()).await?;
                        continue;
                    }
                    return Ok(Some(t));
                }
                Some(Ok(Message::Close(_))) | None => return Ok(None),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
            }
        }
    }

    /// The closing handshake: a close frame (1000), then reads until the server's reply ends it,
    /// within [`STEP_TIMEOUT`].
    pub(crate) async fn close_cleanly(mut self) -> Result<()> {
        let closing = async {
            self.ws.close(Some(CloseFrame { code: CloseCode::Normal, reason: "".into() })).await?;
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Close(_))) | None => return Result::Ok(()),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e.into()),
                }
            }
        };
        tokio::time::timeout(STEP_TIMEOUT, closing).await.map_err(|_| "no close reply in time")?
    }

    /// Drops the TCP connection without a close frame. SO_LINGER 0 makes it an RST, not a FIN:
    /// a client whose network vanished mid-stream rather than one that said goodbye.
    pub(crate) fn drop_abruptly(self) {
        // A failed setsockopt still drops the socket, with a FIN: abrupt enough.
        let _ = socket2::SockRef::from(self.ws.get_ref()).set_linger(Some(Duration::ZERO));
    }

    /// Reads until `event` (on `channel`, when given) arrives, within [`STEP_TIMEOUT`]. A
    /// `pusher:error` or a `pusher:subscription_error` on the way is an error.
    pub(crate) async fn expect(&mut self, event: &str, channel: Option<&str>) -> Result<Frame> {
        tokio::time::timeout(STEP_TIMEOUT, self.expect_inner(event, channel))
            .await
            .map_err(|_| format!("no {event} within {STEP_TIMEOUT:?}"))?
    }

    async fn expect_inner(&mut self, event: &str, channel: Option<&str>) -> Result<Frame> {
        loop {
            let text = self.next_text().await?.ok_or_else(|| format!("closed while waiting for {event}"))?;
            let Ok(frame) = serde_json::from_str::<Frame>(&text) else { continue };
            if frame.event == event && (channel.is_none() || frame.channel.as_deref() == channel) {
                return Ok(frame);
            }
            if frame.event == "pusher:error" || frame.event == "pusher:subscription_error" {
                return Err(format!("{} while waiting for {event}: {}", frame.event, frame.data_value()).into());
            }
        }
    }
}

/// `GET url` (plain `http://host:port/path`) on a connection of its own; the body as text.
/// For pages beside the server under test, such as its Prometheus `/metrics` listener.
pub(crate) async fn http_get(url: &str) -> Result<String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("{url}: only http:// URLs"))?;
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
    let get = async {
        let tcp = TcpStream::connect(authority).await?;
        let (mut sender, conn) = http1::handshake(TokioIo::new(tcp)).await?;
        tokio::spawn(conn);
        let request = Request::get(path).header(HOST, authority).body(Empty::<Bytes>::new())?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            return Err(format!("GET {url}: HTTP {status}").into());
        }
        Result::Ok(String::from_utf8_lossy(&body).into_owned())
    };
    tokio::time::timeout(STEP_TIMEOUT, get).await.map_err(|_| format!("GET {url}: timeout"))?
}

fn is_port_clash(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::AddrInUse | std::io::ErrorKind::AddrNotAvailable)
}

/// Raises the soft open-files limit to the hard limit; returns the limit now in force.
pub(crate) fn raise_nofile() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("note: could not raise RLIMIT_NOFILE: {e}");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft).unwrap_or(0)
        }
    }
}
