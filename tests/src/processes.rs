//! Whole processes a test starts, kills and starts again: the `devsignal` binary in any role
//! ([`Proc`]), a Redis server of the test's own ([`OwnRedis`]) and a PostgreSQL cluster of the
//! test's own ([`OwnPostgres`]) — so fault tests restart real servers without touching the ones
//! other tests share.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::{devsignal_bin, eventually};

/// A TCP port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16, what: &str) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not start listening on port {port}");
}

/// A running `devsignal` process whose output lines are collected.
pub struct Proc {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    /// Starts `devsignal <args>` in `cwd` with nothing but `PATH`, `RUST_LOG=info` and `env`.
    pub fn start(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Proc {
        let mut cmd = Command::new(devsignal_bin());
        cmd.args(args)
            .current_dir(cwd)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn devsignal");
        let lines = Arc::new(Mutex::new(Vec::new()));
        for out in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            });
        }
        Proc { child, lines }
    }

    /// The process id (to read its memory from `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn output(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    pub async fn wait_for_line(&self, needle: &str) -> String {
        eventually(Duration::from_secs(60), needle, || async {
            self.output().into_iter().find(|l| l.contains(needle))
        })
        .await
    }

    /// True while the process has not exited.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL: the process dies at once, mid-work.
    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then the exit status (SIGKILL and a panic after 10 s).
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child.kill().ok();
        panic!("devsignal did not exit within 10 s of SIGTERM");
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Redis of this test's own, on a port of its own, that the test can kill and start again.
pub struct OwnRedis {
    pub port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    pub fn start(port: u16) -> Self {
        let mut r = OwnRedis { port, child: None };
        r.restart();
        r
    }

    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is on PATH (.ci/run installs it)");
        self.child = Some(child);
        wait_for_port(self.port, "redis-server");
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `FLUSHALL`: every key is gone, as after a restart without persistence.
    pub fn flush(&self) {
        let status = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "FLUSHALL"])
            .stdout(Stdio::null())
            .status()
            .expect("redis-cli is on PATH");
        assert!(status.success(), "FLUSHALL failed");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A PostgreSQL cluster of this test's own (`initdb` into a temporary directory, trust auth, its
/// own port), which the test may stop and start again: a real restart, every connection dropped
/// and in-flight transactions rolled back. Run as the `postgres` user when the tests run as root
/// (PostgreSQL refuses root).
pub struct OwnPostgres {
    pub port: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
}

impl OwnPostgres {
    /// `None` when PostgreSQL's server programs are not installed.
    pub fn start() -> Option<Self> {
        let bin = postgres_bin_dir()?;
        let dir = tempfile::Builder::new()
            .prefix("devsignal-pg-")
            .tempdir()
            .expect("temporary directory");
        if as_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(status.success(), "chown the cluster directory to postgres");
        }
        let pg = OwnPostgres {
            port: free_port(),
            dir,
            bin,
        };
        let data = pg.data_dir();
        let out = pg
            .command("initdb")
            .args(["-D", &data, "-U", "postgres", "--auth=trust", "--no-sync"])
            .args(["--encoding=UTF8", "--locale=C"])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg.pg_ctl("start");
        Some(pg)
    }

    fn data_dir(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn pg_ctl(&self, action: &str) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        let mut c = self.command("pg_ctl");
        c.args(["-D", &self.data_dir(), "-l", &log, "-w", "-t", "60"]);
        if action != "stop" {
            c.args(["-o", &options]);
        }
        let out = c.args(["-m", "fast", action]).output().expect("run pg_ctl");
        assert!(
            out.status.success(),
            "pg_ctl {action} failed: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
        );
    }

    /// Stops the server (fast shutdown: clients are disconnected, open transactions roll back).
    pub fn stop(&self) {
        self.pg_ctl("stop");
    }

    /// Starts it again on the same port and data.
    pub fn start_again(&self) {
        self.pg_ctl("start");
        wait_for_port(self.port, "PostgreSQL");
    }

    /// The `postgres` database of this cluster.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let mut c = self.command("pg_ctl");
        c.args(["-D", &self.data_dir(), "-m", "immediate", "stop"]);
        let _ = c.stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

fn as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Where `initdb` and `pg_ctl` live: `PG_BIN_DIR`, else the newest
/// `/usr/lib/postgresql/<version>/bin` (Debian), else `pg_config --bindir`.
fn postgres_bin_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("PG_BIN_DIR") {
        return Some(PathBuf::from(dir));
    }
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    debian.sort();
    if let Some((_, bin)) = debian.pop() {
        return Some(bin);
    }
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    bin.join("initdb").exists().then_some(bin)
}
