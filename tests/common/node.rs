//! Herald nodes as separate processes (the `herald` binary), so a test can SIGKILL one: no
//! shutdown code runs, as when a machine or a container dies.

use std::path::PathBuf;
use std::process::Stdio;

use herald::config::Config;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::{TestServer, WAIT};

/// A `herald` process and the addresses it bound.
pub struct NodeProcess {
    pub server: TestServer,
    child: Child,
    file: PathBuf,
}

impl NodeProcess {
    /// Runs `herald --config <config as TOML>` and waits for it to listen.
    pub async fn spawn(config: &Config) -> Self {
        let file = std::env::temp_dir().join(format!("herald-node-{}-{}.toml", std::process::id(), rand_suffix()));
        std::fs::write(&file, toml::to_string(config).expect("config as TOML")).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
            .arg("--config")
            .arg(&file)
            .env_remove("HERALD_CONFIG")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("herald runs");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let listening = loop {
            let line = tokio::time::timeout(WAIT, lines.next_line()).await.expect("herald starts in time").unwrap();
            let line = line.expect("herald exited before listening");
            if line.contains("herald listening") {
                break line;
            }
        };
        // Keep reading stderr so the process never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let field = |name: &str| {
            let start = listening.find(&format!("{name}=")).expect("address logged") + name.len() + 1;
            listening[start..].split_whitespace().next().unwrap().to_owned()
        };
        let (addr, metrics) = (field("addr"), field("metrics_addr"));
        let prefix = &config.server.path_prefix;
        let server = TestServer {
            running: None,
            ws_base: format!("ws://{addr}{prefix}"),
            http_base: format!("http://{addr}{prefix}"),
            metrics_base: format!("http://{metrics}"),
        };
        Self { server, child, file }
    }

    /// SIGKILL: the node vanishes without leaving the cluster.
    pub async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_file(&self.file);
    }
}

fn rand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}
