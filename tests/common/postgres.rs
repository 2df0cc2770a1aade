//! A real PostgreSQL for the app store tests: `initdb` into a temp dir and `pg_ctl` on a free
//! 127.0.0.1 port, stopped through its own data directory's PID file (never by name) and
//! removed afterwards. Debian's binaries live in /usr/lib/postgresql/<version>/bin; as root
//! (CI), the server runs as the `postgres` user, since PostgreSQL refuses to run as root.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::redis::free_port;

/// A PostgreSQL cluster of the test's own (trust authentication, user `herald`).
pub struct PostgresServer {
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
    run_as: Option<String>,
}

/// The directory holding `initdb` and `pg_ctl`: on PATH, or Debian's newest version.
fn bin_dir() -> PathBuf {
    if let Ok(out) = Command::new("sh").args(["-c", "command -v pg_ctl"]).output()
        && out.status.success()
    {
        let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        let real = std::fs::canonicalize(&path).unwrap_or(path);
        return real.parent().expect("a directory").to_path_buf();
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (apt-get install postgresql)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("pg_ctl").exists())
        .collect();
    versions.sort();
    versions.pop().expect("a PostgreSQL version with pg_ctl")
}

impl PostgresServer {
    /// Creates a cluster and starts it; waits until it accepts connections.
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("herald-pg-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        let root = Command::new("id").arg("-u").output().map(|o| o.stdout == b"0\n").unwrap_or(false);
        let run_as = root.then(|| "postgres".to_owned());
        if run_as.is_some() {
            let status = Command::new("chown").args(["postgres:", &dir.to_string_lossy()]).status().unwrap();
            assert!(status.success(), "chown the data directory to postgres");
        }
        let s = Self { port: free_port(), dir, bin: bin_dir(), run_as };
        let data = s.data();
        s.run("initdb", &["-D", &data, "-U", "herald", "--auth=trust", "-E", "UTF8", "--no-sync"]);
        s.pg_ctl_start();
        s
    }

    fn data(&self) -> String {
        self.dir.join("data").to_string_lossy().into_owned()
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let tool = self.bin.join(tool);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&tool);
                c
            }
            None => Command::new(&tool),
        };
        let out = cmd.args(args).stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{}: {e}", tool.display()));
        assert!(out.status.success(), "{} {args:?}: {}", tool.display(), String::from_utf8_lossy(&out.stderr));
    }

    fn pg_ctl_start(&self) {
        let (data, dir) = (self.data(), self.dir.to_string_lossy().into_owned());
        let opts = format!("-p {} -k {dir} -c listen_addresses=127.0.0.1 -c fsync=off", self.port);
        let log = self.dir.join("log").to_string_lossy().into_owned();
        self.run("pg_ctl", &["-D", &data, "-o", &opts, "-l", &log, "-w", "-t", "30", "start"]);
    }

    /// `postgres://herald@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://herald@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server at once (its data stays, for `restart`).
    pub fn stop(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "immediate", "-w", "stop"]);
    }

    /// Starts it again on the same port, with the same data.
    pub fn restart(&self) {
        self.pg_ctl_start();
    }

    /// A client of the test's own (to create and change apps as an admin tool would).
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls).await.expect("connect");
        tokio::spawn(conn);
        client
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        let data = self.data();
        let pid_file = Path::new(&data).join("postmaster.pid");
        if pid_file.exists() {
            let _ = std::panic::catch_unwind(|| self.stop());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
