//! A real local Kafka-protocol broker for tests and benchmarks: tansu 0.6.0 on the SQLite storage
//! engine, listening on a free loopback port, in its own temporary directory.
//!
//! It is not a production launcher: no configuration beyond what tests need, and its data is
//! deleted when the [`TansuBroker`] is dropped (kept, and its path printed, when the drop happens
//! during a panic, so a failed test can be investigated).
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

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::kafka::{KafkaConfig, KafkaLog, SaslMechanism, SaslSettings};

/// The tansu release the tests are written against.
pub const TANSU_VERSION: &str = "0.6.0";
/// Names the tansu binary to use; otherwise `tansu` is looked up on `PATH`, then in
/// `$CARGO_HOME/bin` (default `~/.cargo/bin`).
pub const TANSU_ENV: &str = "TASKSTREAM_TANSU";

const INSTALL_HINT: &str = "tansu 0.6.0 is not installed: run scripts/test (it installs it) or \
     cargo install tansu --version 0.6.0 --locked --no-default-features --features libsql";
/// How long a starting broker has to accept a Kafka client. It is ready in well under a second
/// on an idle machine; the margin is for a loaded CI machine building in parallel.
const READY_DEADLINE: Duration = Duration::from_secs(30);
/// How long `stop` waits after SIGTERM before it kills.
const STOP_DEADLINE: Duration = Duration::from_secs(10);
/// Interval between readiness and exit checks.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// A running (or killed) tansu broker process.
#[derive(Debug)]
pub struct TansuBroker {
    binary: PathBuf,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
    /// When set, the broker runs with `--authentication` and readiness is probed as this user.
    authentication: Option<SaslSettings>,
}

impl TansuBroker {
    /// Starts a broker on a free port in a new temporary directory and waits until a Kafka
    /// client can connect and list topics (30 s at most; the error then includes the log tail).
    pub async fn start() -> anyhow::Result<TansuBroker> {
        let binary = tansu_binary()?;
        let dir = std::env::temp_dir().join(format!(
            "taskstream-tansu-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut broker = TansuBroker {
            binary,
            dir,
            port: 0,
            child: None,
            authentication: None,
        };
        // The free port is found by binding port 0 and releasing it, so another process can
        // take it before tansu binds it: then try another one.
        let mut last_error = None;
        for _ in 0..3 {
            broker.port = free_port()?;
            match broker.spawn_and_wait().await {
                Ok(()) => return Ok(broker),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("tansu did not start")))
    }

    /// The bootstrap address, `127.0.0.1:PORT`.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The broker's working directory (its SQLite file and `tansu.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The broker's combined stdout and stderr, appended across restarts.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("tansu.log")
    }

    /// The process id, while the broker runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the broker with SIGKILL (no chance to flush anything) and reaps it. The storage
    /// file stays, so [`TansuBroker::restart`] resumes from it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Fails only if the process was already reaped; either way it is gone.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the broker with SIGTERM, and kills it if it has not exited within 10 s. tansu 0.6.0
    /// takes about 2 s to exit, 5 s with clients connected.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .context("running kill -TERM")?;
        if !status.success() {
            // It is gone already (or cannot be signalled): make sure and reap it.
            let _ = child.kill();
            let _ = child.wait();
            return Ok(());
        }
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
        let output = Command::new(&self.binary)
            .args(["user", "create", "--mechanism", mechanism, "--broker"])
            .arg(format!("tcp://127.0.0.1:{}", self.port))
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
        self.kill();
        // Right after a kill the port can briefly refuse a new listener; retry within the
        // readiness deadline.
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            match self.spawn_and_wait().await {
                Ok(()) => return Ok(()),
                Err(error) if Instant::now() >= deadline => return Err(error),
                Err(error) => {
                    tracing::debug!(%error, "tansu did not restart yet, retrying");
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
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let mut command = Command::new(&self.binary);
        command.arg("broker");
        if self.authentication.is_some() {
            command.arg("--authentication");
        }
        let child = command
            .arg("--storage-engine=sqlite://broker.db")
            .arg(format!("--listener-url={url}"))
            .arg(format!("--advertised-listener-url={url}"))
            .arg("--cluster-id=taskstream-test")
            .current_dir(&self.dir)
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
                "tansu on {} did not become ready; last lines of {}:\n{}",
                self.brokers(),
                log_path.display(),
                log_tail(&log_path)
            )));
        }
        Ok(())
    }

    /// Waits until the broker accepts a Kafka client that can list topics.
    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_DEADLINE;
        let mut last_error = String::from("no attempt yet");
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait().context("checking tansu")?
            {
                self.child = None;
                bail!("tansu exited with {status}");
            }
            // A bare TCP connect first, so that a broker still starting does not fill the
            // test log with rskafka's connection warnings.
            let address = (Ipv4Addr::LOCALHOST, self.port).into();
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                let mut probe = probe_config(&self.brokers());
                probe.sasl = self.authentication.clone();
                match KafkaLog::connect(probe).await {
                    Ok(log) => match log.topic_partitions().await {
                        Ok(_) => return Ok(()),
                        Err(error) => last_error = error.to_string(),
                    },
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

impl Drop for TansuBroker {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "tansu broker directory kept for inspection: {}",
                self.dir.display()
            );
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
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

/// `name` in a directory of `PATH`, or in `$CARGO_HOME/bin` (default `~/.cargo/bin`).
pub(crate) fn search_path(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")));
    dirs.extend(cargo_home.map(|home| home.join("bin")));
    dirs.into_iter()
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// A loopback port nothing listens on right now.
pub(crate) fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port")?;
    Ok(listener.local_addr()?.port())
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

/// The last lines of a server's log, for error messages.
pub(crate) fn log_tail(path: &Path) -> String {
    const TAIL_BYTES: u64 = 4096;
    let read = || -> std::io::Result<String> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(TAIL_BYTES)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    read().unwrap_or_else(|e| format!("(cannot read the log: {e})"))
}
