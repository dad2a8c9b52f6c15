//! A real local NATS server with JetStream for tests and benchmarks: `nats-server` (Debian's
//! package, 2.9 or newer) on a free loopback port, with its JetStream store in its own temporary
//! directory.
//!
//! Like [`crate::broker_process`], not a production launcher, and on the same process handling
//! ([`crate::server_process`]): its data is deleted when the [`NatsServer`] is dropped (kept, and
//! its path printed, when the drop happens during a panic).
//! The server can be killed with SIGKILL and restarted on the same port and store (JetStream
//! recovers the streams from its files), and paused with SIGSTOP and resumed with SIGCONT.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::bail;

use crate::nats::{NatsConfig, NatsLog};
use crate::server_process::{self, Server, ServerProcess, search_path};

/// Names the nats-server binary to use; otherwise `nats-server` is looked up on `PATH`, then in
/// `/usr/sbin` (where Debian installs it).
pub const NATS_SERVER_ENV: &str = "TASKSTREAM_NATS_SERVER";

const INSTALL_HINT: &str = "nats-server is not installed: run scripts/test (it installs it) or \
     apt-get install nats-server";

/// A running (or killed) nats-server process.
#[derive(Debug)]
pub struct NatsServer {
    process: ServerProcess,
    /// Extra command-line arguments ([`NatsServer::start_with`]).
    extra: Vec<String>,
    /// Whether the server runs JetStream (not [`NatsServer::start_without_jetstream`]'s).
    jetstream: bool,
}

impl Server for NatsServer {
    fn process(&mut self) -> &mut ServerProcess {
        &mut self.process
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.process.binary);
        command
            .args([
                "--addr",
                "127.0.0.1",
                "--port",
                &self.process.port.to_string(),
            ])
            .args(["--server_name", "taskstream-test"])
            .args(&self.extra);
        if self.jetstream {
            command
                .args(["--jetstream", "--store_dir"])
                .arg(self.process.dir.join("jetstream"));
        }
        command
    }

    /// A JetStream client connects and lists streams. A server started with extra arguments
    /// (credentials the probe does not have) or without JetStream is ready once it listens.
    async fn probe(&self) -> Result<(), String> {
        if !self.jetstream || !self.extra.is_empty() {
            return Ok(());
        }
        let mut probe = NatsConfig::from_url(&self.url()).map_err(|e| e.to_string())?;
        probe.client_name = "taskstream-server-probe".to_owned();
        probe.connect_timeout = Duration::from_secs(2);
        probe.request_timeout = Duration::from_secs(2);
        NatsLog::connect(probe)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

impl NatsServer {
    /// Starts a server with JetStream on a free port in a new temporary directory and waits
    /// until a client can use JetStream (30 s at most; the error then includes the log tail).
    pub async fn start() -> anyhow::Result<NatsServer> {
        NatsServer::start_with(&[]).await
    }

    /// [`NatsServer::start`] with extra arguments (`--user`, `--pass`, `--auth`, …), for tests
    /// of authentication. Readiness then only waits for the port.
    pub async fn start_with(extra: &[&str]) -> anyhow::Result<NatsServer> {
        NatsServer::launch(extra, true).await
    }

    /// A server without JetStream (plain NATS), for the error a misconfigured server gives.
    pub async fn start_without_jetstream() -> anyhow::Result<NatsServer> {
        NatsServer::launch(&[], false).await
    }

    async fn launch(extra: &[&str], jetstream: bool) -> anyhow::Result<NatsServer> {
        let mut server = NatsServer {
            process: ServerProcess::new("nats-server", nats_server_binary()?)?,
            extra: extra.iter().map(|a| (*a).to_owned()).collect(),
            jetstream,
        };
        server_process::start(&mut server).await?;
        Ok(server)
    }

    /// The server's URL, `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.process.port)
    }

    /// The server's working directory (its JetStream store and `nats-server.log`).
    pub fn dir(&self) -> &Path {
        &self.process.dir
    }

    /// The server's combined output, appended across restarts.
    pub fn log_path(&self) -> PathBuf {
        self.process.log_path()
    }

    /// The process id, while the server runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// Kills the server with SIGKILL and reaps it. The store stays for [`NatsServer::restart`].
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Freezes the server (SIGSTOP): connections stay open but nothing is answered.
    pub fn pause(&self) -> anyhow::Result<()> {
        self.process.signal("-STOP")
    }

    /// Resumes a paused server (SIGCONT).
    pub fn resume(&self) -> anyhow::Result<()> {
        self.process.signal("-CONT")
    }

    /// Kills the server if it still runs, then starts it again on the same port and store, and
    /// waits until it is ready.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        server_process::restart(self).await
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
