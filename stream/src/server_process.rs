//! What the local servers of tests and benchmarks ([`crate::broker_process`]'s tansu,
//! [`crate::nats_process`]'s nats-server) share: a temporary directory, a free loopback port, a
//! log file their output is appended to across restarts, start-up bounded by a readiness probe
//! (three ports tried), SIGKILL and restart on the same port and storage, and clean-up on drop
//! (the directory is kept, and its path printed, when the drop happens during a panic).

use std::fs::{self, File, OpenOptions};
use std::future::Future;
use std::io::{Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How long a starting server has to pass its probe. Servers are ready in well under a second
/// on an idle machine; the margin is for a loaded CI machine building in parallel.
const READY_DEADLINE: Duration = Duration::from_secs(30);
/// Interval between readiness and exit checks.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// A server child process with its directory, port and log.
#[derive(Debug)]
pub(crate) struct ServerProcess {
    /// What the server is, for messages (`tansu`, `nats-server`).
    name: &'static str,
    pub(crate) binary: PathBuf,
    pub(crate) dir: PathBuf,
    pub(crate) port: u16,
    child: Option<Child>,
}

/// A kind of server: how to launch it on the process's port and when it is ready.
pub(crate) trait Server {
    fn process(&mut self) -> &mut ServerProcess;
    /// The command that starts the server on `process().port` in `process().dir`.
    fn command(&self) -> Command;
    /// One readiness attempt, made once the port accepts connections.
    fn probe(&self) -> impl Future<Output = Result<(), String>>;
}

impl ServerProcess {
    /// A process-to-be of `binary` in a new temporary directory `taskstream-<name>-…`.
    pub(crate) fn new(name: &'static str, binary: PathBuf) -> anyhow::Result<ServerProcess> {
        let dir = std::env::temp_dir().join(format!(
            "taskstream-{name}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(ServerProcess {
            name,
            binary,
            dir,
            port: 0,
            child: None,
        })
    }

    /// The server's combined stdout and stderr, appended across restarts.
    pub(crate) fn log_path(&self) -> PathBuf {
        self.dir.join(format!("{}.log", self.name))
    }

    /// The process id, while the server runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Takes the child, to stop it another way than [`ServerProcess::kill`].
    pub(crate) fn take_child(&mut self) -> Option<Child> {
        self.child.take()
    }

    /// SIGKILL (no chance to flush anything), then reap. The directory stays.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Fails only if the process was already reaped; either way it is gone.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` (`-STOP`, `-CONT`, `-TERM`) to the running server.
    pub(crate) fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let pid = self
            .pid()
            .with_context(|| format!("{} is not running", self.name))?;
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .context("running kill")?;
        if !status.success() {
            bail!("kill {signal} {pid} failed");
        }
        Ok(())
    }

    fn spawn(&mut self, mut command: Command) -> anyhow::Result<()> {
        let log_path = self.log_path();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let child = command
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(
                log.try_clone().context("duplicating the log file")?,
            ))
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// An error if the server has exited.
    fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(child) = self.child.as_mut()
            && let Some(status) = child
                .try_wait()
                .with_context(|| format!("checking {}", self.name))?
        {
            self.child = None;
            bail!("{} exited with {status}", self.name);
        }
        Ok(())
    }

    fn port_open(&self) -> bool {
        let address = (Ipv4Addr::LOCALHOST, self.port).into();
        TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // A paused process ignores everything but SIGKILL, which kill() sends.
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "{} directory kept for inspection: {}",
                self.name,
                self.dir.display()
            );
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Starts `server` on a free port and waits until its probe passes. The free port is found by
/// binding port 0 and releasing it, so another process can take it first: three ports are
/// tried.
pub(crate) async fn start<S: Server>(server: &mut S) -> anyhow::Result<()> {
    let mut last_error = None;
    for _ in 0..3 {
        server.process().port = free_port()?;
        match spawn_and_wait(server).await {
            Ok(()) => return Ok(()),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| anyhow::anyhow!("the server did not start")))
}

/// Kills the server if it still runs, then starts it again on the same port and storage and
/// waits until it is ready. Right after a kill the port can briefly refuse a new listener, so
/// it retries within the readiness deadline.
pub(crate) async fn restart<S: Server>(server: &mut S) -> anyhow::Result<()> {
    server.process().kill();
    let deadline = Instant::now() + READY_DEADLINE;
    loop {
        match spawn_and_wait(server).await {
            Ok(()) => return Ok(()),
            Err(error) if Instant::now() >= deadline => return Err(error),
            Err(error) => {
                tracing::debug!(%error, "the server did not restart yet, retrying");
                tokio::time::sleep(POLL_INTERVAL).await;
            }
        }
    }
}

async fn spawn_and_wait<S: Server>(server: &mut S) -> anyhow::Result<()> {
    let command = server.command();
    server.process().spawn(command)?;
    if let Err(error) = wait_ready(server).await {
        let process = server.process();
        process.kill();
        let log_path = process.log_path();
        return Err(error.context(format!(
            "{} on 127.0.0.1:{} did not become ready; last lines of {}:\n{}",
            process.name,
            process.port,
            log_path.display(),
            log_tail(&log_path)
        )));
    }
    Ok(())
}

async fn wait_ready<S: Server>(server: &mut S) -> anyhow::Result<()> {
    let deadline = Instant::now() + READY_DEADLINE;
    let mut last_error = String::from("no attempt yet");
    while Instant::now() < deadline {
        server.process().check_running()?;
        // A bare TCP connect first, so that a server still starting does not fill the test
        // log with the client's connection warnings.
        if server.process().port_open() {
            match server.probe().await {
                Ok(()) => return Ok(()),
                Err(error) => last_error = error,
            }
        } else {
            last_error = "connection refused".to_owned();
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    bail!("not ready within {READY_DEADLINE:?} (last error: {last_error})")
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
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// The last lines of a server's log, for error messages.
fn log_tail(path: &Path) -> String {
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
