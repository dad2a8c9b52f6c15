//! A real local NATS server with JetStream for tests and benchmarks: `nats-server` (Debian's
//! package, 2.9 or newer) on a free loopback port, with its JetStream store in its own temporary
//! directory.
//!
//! Like [`crate::broker_process`], not a production launcher: its data is deleted when the
//! [`NatsServer`] is dropped (kept, and its path printed, when the drop happens during a panic).
//! The server can be killed with SIGKILL and restarted on the same port and store (JetStream
//! recovers the streams from its files), and paused with SIGSTOP and resumed with SIGCONT.

use std::fs::{self, OpenOptions};
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::broker_process::{free_port, log_tail, search_path};
use crate::nats::{NatsConfig, NatsLog};

/// Names the nats-server binary to use; otherwise `nats-server` is looked up on `PATH`, then in
/// `/usr/sbin` (where Debian installs it).
pub const NATS_SERVER_ENV: &str = "TASKSTREAM_NATS_SERVER";

const INSTALL_HINT: &str = "nats-server is not installed: run scripts/test (it installs it) or \
     apt-get install nats-server";
/// How long a starting server has to accept a JetStream client (well under a second when idle).
const READY_DEADLINE: Duration = Duration::from_secs(30);
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// A running (or killed) nats-server process.
#[derive(Debug)]
pub struct NatsServer {
    binary: PathBuf,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
    /// Extra command-line arguments ([`NatsServer::start_with`]).
    extra: Vec<String>,
    /// Whether readiness waits for JetStream (not for a server started without it).
    jetstream: bool,
}

impl NatsServer {
    /// Starts a server with JetStream on a free port in a new temporary directory and waits
    /// until a client can use JetStream (30 s at most; the error then includes the log tail).
    pub async fn start() -> anyhow::Result<NatsServer> {
        NatsServer::start_with(&[]).await
    }

    /// [`NatsServer::start`] with extra arguments (`--user`, `--pass`, `--auth`, …), for tests
    /// of authentication. The probe then only waits for the port.
    pub async fn start_with(extra: &[&str]) -> anyhow::Result<NatsServer> {
        NatsServer::launch(extra, true).await
    }

    /// A server without JetStream (plain NATS), for the error a misconfigured server gives.
    pub async fn start_without_jetstream() -> anyhow::Result<NatsServer> {
        NatsServer::launch(&[], false).await
    }

    async fn launch(extra: &[&str], jetstream: bool) -> anyhow::Result<NatsServer> {
        let binary = nats_server_binary()?;
        let dir = std::env::temp_dir().join(format!(
            "taskstream-nats-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut server = NatsServer {
            binary,
            dir,
            port: 0,
            child: None,
            extra: extra.iter().map(|a| (*a).to_owned()).collect(),
            jetstream,
        };
        let mut last_error = None;
        for _ in 0..3 {
            server.port = free_port()?;
            match server.spawn_and_wait().await {
                Ok(()) => return Ok(server),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("nats-server did not start")))
    }

    /// The server's URL, `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The server's working directory (its JetStream store and `nats-server.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server's combined output, appended across restarts.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("nats-server.log")
    }

    /// The process id, while the server runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server with SIGKILL and reaps it. The store stays for [`NatsServer::restart`].
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open but nothing is answered.
    pub fn pause(&self) -> anyhow::Result<()> {
        self.signal("-STOP")
    }

    /// Resumes a paused server (SIGCONT).
    pub fn resume(&self) -> anyhow::Result<()> {
        self.signal("-CONT")
    }

    fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let pid = self.pid().context("nats-server is not running")?;
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .context("running kill")?;
        if !status.success() {
            bail!("kill {signal} {pid} failed");
        }
        Ok(())
    }

    /// Kills the server if it still runs, then starts it again on the same port and store, and
    /// waits until it is ready.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            match self.spawn_and_wait().await {
                Ok(()) => return Ok(()),
                Err(error) if Instant::now() >= deadline => return Err(error),
                Err(error) => {
                    tracing::debug!(%error, "nats-server did not restart yet, retrying");
                    tokio::time::sleep(POLL_INTERVAL).await;
                }
            }
        }
    }

    async fn spawn_and_wait(&mut self) -> anyhow::Result<()> {
        let log_path = self.log_path();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let mut command = Command::new(&self.binary);
        command
            .args(["--addr", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--server_name", "taskstream-test"])
            .args(&self.extra);
        if self.jetstream {
            command
                .args(["--jetstream", "--store_dir"])
                .arg(self.dir.join("jetstream"));
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::from(
                log.try_clone().context("duplicating the log file")?,
            ))
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        self.child = Some(child);
        if let Err(error) = self.wait_ready().await {
            self.kill();
            return Err(error.context(format!(
                "nats-server on {} did not become ready; last lines of {}:\n{}",
                self.url(),
                log_path.display(),
                log_tail(&log_path)
            )));
        }
        Ok(())
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_DEADLINE;
        let mut last_error = String::from("no attempt yet");
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait().context("checking nats-server")?
            {
                self.child = None;
                bail!("nats-server exited with {status}");
            }
            let address = (Ipv4Addr::LOCALHOST, self.port).into();
            let listening =
                TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok();
            if listening && (!self.jetstream || !self.extra.is_empty()) {
                return Ok(());
            }
            if listening {
                let mut probe = NatsConfig::from_url(&self.url())?;
                probe.client_name = "taskstream-server-probe".to_owned();
                probe.connect_timeout = Duration::from_secs(2);
                probe.request_timeout = Duration::from_secs(2);
                match NatsLog::connect(probe).await {
                    Ok(_) => return Ok(()),
                    Err(error) => last_error = error.to_string(),
                }
            } else {
                last_error = "connection refused".to_owned();
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        bail!("not ready within {READY_DEADLINE:?} (last error: {last_error})")
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        // A paused process ignores nothing but SIGKILL, which kill() sends.
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "nats-server directory kept for inspection: {}",
                self.dir.display()
            );
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// The nats-server binary: `TASKSTREAM_NATS_SERVER`, else `nats-server` on `PATH` or in
/// `/usr/sbin`.
pub fn nats_server_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(NATS_SERVER_ENV) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!(
                "{NATS_SERVER_ENV}={} is not a file. {INSTALL_HINT}",
                path.display()
            );
        }
        return Ok(path);
    }
    search_path("nats-server")
        .or_else(|| Some(PathBuf::from("/usr/sbin/nats-server")).filter(|p| p.is_file()))
        .ok_or_else(|| anyhow::anyhow!(INSTALL_HINT))
}
