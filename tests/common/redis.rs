//! Real Redis servers for the cluster tests: `redis-server` on a free 127.0.0.1 port, started
//! by the test and stopped by its PID (never by name), with no persistence, so a restart comes
//! back empty (as a Redis without persistence does after a crash).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A `redis-server` of the test's own.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    extra: Vec<String>,
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

impl RedisServer {
    /// Starts one on a free port and waits until it answers.
    pub async fn start() -> Self {
        Self::start_with(free_port(), Vec::new()).await
    }

    /// Starts one on `port` with extra `redis-server` arguments.
    pub async fn start_with(port: u16, extra: Vec<String>) -> Self {
        let mut s = Self { port, child: None, extra };
        s.spawn().await;
        s
    }

    async fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--dir", &std::env::temp_dir().to_string_lossy()])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (apt-get install redis-server)");
        self.child = Some(child);
        wait_ping(self.port).await;
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server (SIGKILL: no shutdown work, nothing saved).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port: empty, as after a crash without persistence.
    pub async fn restart_empty(&mut self) {
        self.kill();
        self.spawn().await;
    }

    /// Runs one command (inline protocol) and returns the raw reply.
    pub async fn command(&self, args: &[&str]) -> String {
        command(self.port, args).await
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends one command as RESP and returns the raw reply text (enough for tests).
pub async fn command(port: u16, args: &[&str]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.expect("redis connect");
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await.expect("reply").unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

async fn wait_ping(port: u16) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)).await {
            let _ = s.write_all(b"PING\r\n").await;
            let mut buf = [0u8; 16];
            if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await
                && buf[..n].starts_with(b"+PONG")
            {
                return;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "redis-server on port {port} did not answer");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A local Redis Cluster of three masters (no replicas), each its own `redis-server`, joined
/// with `redis-cli --cluster create`; every slot is served once it returns.
pub struct RedisClusterServers {
    pub nodes: Vec<RedisServer>,
    dir: std::path::PathBuf,
}

impl RedisClusterServers {
    pub async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("herald-redis-cluster-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut nodes = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            let extra = vec![
                "--cluster-enabled".into(),
                "yes".into(),
                "--cluster-config-file".into(),
                dir.join(format!("nodes-{port}.conf")).to_string_lossy().into_owned(),
                "--cluster-node-timeout".into(),
                "2000".into(),
            ];
            nodes.push(RedisServer::start_with(port, extra).await);
        }
        let servers = Self { nodes, dir };
        servers.create().await;
        servers
    }

    /// Joins the servers into one cluster and waits until every slot is served.
    async fn create(&self) {
        let nodes = &self.nodes;
        let addrs: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let created = tokio::process::Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .expect("redis-cli runs");
        assert!(created.success(), "redis-cli --cluster create failed");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        for n in nodes {
            while !command(n.port, &["CLUSTER", "INFO"]).await.contains("cluster_state:ok") {
                assert!(tokio::time::Instant::now() < deadline, "the cluster never became ok");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// Kills every server (SIGKILL) and brings the cluster back on the same ports, empty.
    pub async fn restart_empty(&mut self) {
        for n in &mut self.nodes {
            n.kill();
        }
        for n in &self.nodes {
            let _ = std::fs::remove_file(self.dir.join(format!("nodes-{}.conf", n.port)));
        }
        for n in &mut self.nodes {
            n.restart_empty().await;
        }
        self.create().await;
    }

    /// Kills every server (SIGKILL).
    pub fn kill(&mut self) {
        for n in &mut self.nodes {
            n.kill();
        }
    }

    /// The seeds, comma-separated, as `adapter.redis_url` takes them.
    pub fn url(&self) -> String {
        self.nodes.iter().map(|n| format!("redis://127.0.0.1:{}", n.port)).collect::<Vec<_>>().join(",")
    }
}

impl Drop for RedisClusterServers {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Which Redis a cluster test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One redis-server: the `redis` driver.
    Single,
    /// A three-master Redis Cluster: the `redis_cluster` driver.
    Cluster,
}

/// The Redis behind a cluster test, of either kind.
pub enum Backing {
    Single(RedisServer),
    Cluster(RedisClusterServers),
}

impl Backing {
    pub async fn start(kind: Kind) -> Self {
        match kind {
            Kind::Single => Self::Single(RedisServer::start().await),
            Kind::Cluster => Self::Cluster(RedisClusterServers::start().await),
        }
    }

    /// A node's configuration on this Redis (short leases, see `cluster_config`).
    pub fn config(&self) -> herald::config::Config {
        match self {
            Self::Single(r) => super::cluster_config(&r.url()),
            Self::Cluster(c) => {
                let mut config = super::cluster_config(&c.url());
                config.adapter.driver = herald::config::AdapterDriver::RedisCluster;
                config
            }
        }
    }

    /// `n` in-process nodes on this Redis.
    pub async fn nodes(&self, n: usize) -> Vec<super::TestServer> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(super::TestServer::start(self.config()).await);
        }
        out
    }
}

/// Defines the async test `$name(backing: Backing)` twice, as `$name::on_redis` (one
/// redis-server) and `$name::on_redis_cluster` (a three-master Redis Cluster).
#[macro_export]
macro_rules! on_redis_and_cluster {
    ($(#[doc = $doc:literal])* async fn $name:ident($b:ident: Backing) $body:block) => {
        $(#[doc = $doc])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($b: $crate::common::redis::Backing) $body

            #[tokio::test]
            async fn on_redis() {
                run($crate::common::redis::Backing::start($crate::common::redis::Kind::Single).await).await
            }

            #[tokio::test]
            async fn on_redis_cluster() {
                run($crate::common::redis::Backing::start($crate::common::redis::Kind::Cluster).await).await
            }
        }
    };
}
