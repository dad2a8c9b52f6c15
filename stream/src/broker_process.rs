//! A real local Kafka-protocol broker for tests and benchmarks: tansu 0.6.0 on the SQLite storage
//! engine, listening on a free loopback port, in its own temporary directory.
//!
//! It is not a production launcher: no configuration beyond what tests need, and its data is
//! deleted when the [`TansuBroker`] is dropped (kept, and its path printed, when the drop happens
//! during a panic, so a failed test can be investigated). The process handling is
//! [`crate::server_process`]'s, shared with the local nats-server.
//!
//! Why these flags:
//! - `--storage-engine=sqlite://broker.db` with the working directory set to the temporary
//!   directory: tansu resolves the SQLite path against its current directory. The memory engine
//!   is not used because tansu 0.6.0's memory engine drops the batch holding a mid-batch fetch
//!   offset, and it loses everything on restart.
//! - `--advertised-listener-url` equal to the listener, with `127.0.0.1` rather than `localhost`,
//!   so clients reconnect to exactly the bound address.
//! - tansu 0.6.0 opens no Prometheus listener unless told to (checked: two brokers run side by
//!   side, nothing listens on port 9100), so there is no second port to move.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::kafka::{KafkaConfig, KafkaLog, SaslMechanism, SaslSettings};
use crate::server_process::{self, POLL_INTERVAL, Server, ServerProcess, search_path};

/// The tansu release the tests are written against.
pub const TANSU_VERSION: &str = "0.6.0";
/// Names the tansu binary to use; otherwise `tansu` is looked up on `PATH`, then in
/// `$CARGO_HOME/bin` (default `~/.cargo/bin`).
pub const TANSU_ENV: &str = "TASKSTREAM_TANSU";

const INSTALL_HINT: &str = "tansu 0.6.0 is not installed: run scripts/test (it installs it) or \
     cargo install tansu --version 0.6.0 --locked --no-default-features --features libsql";
/// How long `stop` waits after SIGTERM before it kills.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// A running (or killed) tansu broker process.
#[derive(Debug)]
pub struct TansuBroker {
    process: ServerProcess,
    /// When set, the broker runs with `--authentication` and readiness is probed as this user.
    authentication: Option<SaslSettings>,
}

impl Server for TansuBroker {
    fn process(&mut self) -> &mut ServerProcess {
        &mut self.process
    }

    fn command(&self) -> Command {
        let url = format!("tcp://127.0.0.1:{}", self.process.port);
        let mut command = Command::new(&self.process.binary);
        command.arg("broker");
        if self.authentication.is_some() {
            command.arg("--authentication");
        }
        command
            .arg("--storage-engine=sqlite://broker.db")
            .arg(format!("--listener-url={url}"))
            .arg(format!("--advertised-listener-url={url}"))
            .arg("--cluster-id=taskstream-test");
        command
    }

    /// A Kafka client connects and lists topics.
    async fn probe(&self) -> Result<(), String> {
        let mut probe = probe_config(&self.brokers());
        probe.sasl = self.authentication.clone();
        let log = KafkaLog::connect(probe).await.map_err(|e| e.to_string())?;
        log.topic_partitions()
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

impl TansuBroker {
    /// Starts a broker on a free port in a new temporary directory and waits until a Kafka
    /// client can connect and list topics (30 s at most; the error then includes the log tail).
    pub async fn start() -> anyhow::Result<TansuBroker> {
        let mut broker = TansuBroker {
            process: ServerProcess::new("tansu", tansu_binary()?)?,
            authentication: None,
        };
        server_process::start(&mut broker).await?;
        Ok(broker)
    }

    /// The bootstrap address, `127.0.0.1:PORT`.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.process.port)
    }

    /// The broker's working directory (its SQLite file and `tansu.log`).
    pub fn dir(&self) -> &Path {
        &self.process.dir
    }

    /// The broker's combined stdout and stderr, appended across restarts.
    pub fn log_path(&self) -> PathBuf {
        self.process.log_path()
    }

    /// The process id, while the broker runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// Kills the broker with SIGKILL (no chance to flush anything) and reaps it. The storage
    /// file stays, so [`TansuBroker::restart`] resumes from it.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Stops the broker with SIGTERM, and kills it if it has not exited within 10 s. tansu 0.6.0
    /// takes about 2 s to exit, 5 s with clients connected.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if self.process.pid().is_none() {
            return Ok(());
        }
        if self.process.signal("-TERM").is_err() {
            // It is gone already (or cannot be signalled): make sure and reap it.
            self.process.kill();
            return Ok(());
        }
        let Some(mut child) = self.process.take_child() else {
            return Ok(());
        };
        let deadline = Instant::now() + STOP_DEADLINE;
        while Instant::now() < deadline {
            if child.try_wait().context("waiting for tansu")?.is_some() {
                return Ok(());
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        tracing::warn!(
            pid = child.id(),
            "tansu ignored SIGTERM for {STOP_DEADLINE:?}: killing it"
        );
        let _ = child.kill();
        let _ = child.wait();
        Ok(())
    }

    /// Creates a SCRAM user in the broker's storage (tansu's `user create` command; the broker
    /// must be running without authentication). Only SCRAM: tansu 0.6.0 has no PLAIN users (it
    /// closed the connection when rskafka tried PLAIN).
    pub fn create_scram_user(
        &self,
        mechanism: SaslMechanism,
        username: &str,
        password: &str,
    ) -> anyhow::Result<()> {
        let mechanism = match mechanism {
            SaslMechanism::ScramSha256 => "scram256",
            SaslMechanism::ScramSha512 => "scram512",
            SaslMechanism::Plain => bail!("tansu has no PLAIN users"),
        };
        let output = Command::new(&self.process.binary)
            .args(["user", "create", "--mechanism", mechanism, "--broker"])
            .arg(format!("tcp://127.0.0.1:{}", self.process.port))
            .args([username, password])
            .output()
            .context("running tansu user create")?;
        if !output.status.success() {
            bail!(
                "tansu user create {username} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    /// From the next (re)start on, the broker requires SASL authentication (`--authentication`);
    /// `probe` is the user readiness is checked as.
    pub fn require_authentication(&mut self, probe: SaslSettings) {
        self.authentication = Some(probe);
    }

    /// Kills the broker if it still runs, then starts it again on the same port and the same
    /// storage file, and waits until it is ready.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        server_process::restart(self).await
    }
}

/// The tansu binary, checked to be version 0.6.0 (once per process).
pub fn tansu_binary() -> anyhow::Result<PathBuf> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FOUND
        .get_or_init(|| find_tansu().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn find_tansu() -> anyhow::Result<PathBuf> {
    let binary = match std::env::var_os(TANSU_ENV) {
        Some(path) => {
            let path = PathBuf::from(path);
            if !path.is_file() {
                bail!(
                    "{TANSU_ENV}={} is not a file. {INSTALL_HINT}",
                    path.display()
                );
            }
            path
        }
        None => search_path("tansu").ok_or_else(|| anyhow::anyhow!(INSTALL_HINT))?,
    };
    let output = Command::new(&binary)
        .arg("--version")
        .output()
        .with_context(|| format!("running {} --version", binary.display()))?;
    let version = String::from_utf8_lossy(&output.stdout);
    if version.split_whitespace().nth(1) != Some(TANSU_VERSION) {
        bail!(
            "{} is {:?}, not tansu {TANSU_VERSION}. {INSTALL_HINT}",
            binary.display(),
            version.trim()
        );
    }
    Ok(binary)
}

/// Short timeouts: readiness is polled, so one attempt should fail fast.
fn probe_config(brokers: &str) -> KafkaConfig {
    let mut config = KafkaConfig::new(vec![brokers.to_owned()]);
    config.client_id = "taskstream-broker-probe".to_owned();
    config.connect_timeout = Duration::from_secs(2);
    config.request_timeout = Duration::from_secs(2);
    config.retry_deadline = Duration::from_millis(200);
    config
}
