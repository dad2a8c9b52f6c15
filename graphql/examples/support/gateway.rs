//! The real `taskstream` binary as the benchmark programs run it: embedded mode on a fresh
//! SQLite database in a temporary directory, a free loopback port, an HS256 secret and a token
//! for one user. Shared by the benchmark programs (included with `#[path]`; Cargo does not
//! build this directory as an example of its own). Each benchmark uses a part of it. A
//! `DATABASE_URL` in the extra environment (a PostgreSQL URL, say) replaces the SQLite file.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running gateway; dropping it kills the process and removes its database.
pub struct Gateway {
    child: Child,
    dir: PathBuf,
    /// The SQLite database file, unless `DATABASE_URL` was given.
    sqlite_file: Option<PathBuf>,
    pub port: u16,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// A bearer token for the user `bench`.
    pub token: String,
}

impl Gateway {
    /// Starts the binary with `env` on top of the defaults (`OTEL_*` variables of this
    /// process are not passed on) and waits (30 s at most) until `/healthz` answers.
    pub async fn start(secret: &str, env: &[(&str, String)]) -> anyhow::Result<Gateway> {
        let dir = std::env::temp_dir().join(format!("taskstream-bench-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let sqlite_file =
            (!env.iter().any(|(name, _)| *name == "DATABASE_URL")).then(|| dir.join("t.db"));
        let mut command = Command::new(binary());
        command
            .env(
                "DATABASE_URL",
                format!("sqlite://{}?mode=rwc", dir.join("t.db").display()),
            )
            .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("JWT_SECRET", secret)
            .env("LOG_LEVEL", "warn")
            // The benchmarks hold hundreds of sockets for one user on purpose (fan-out to one
            // owner is the case they measure); the per-user caps protect production from
            // exactly that, so they are raised here.
            .env("WS_MAX_SOCKETS_PER_USER", "10000")
            .env("WS_MAX_SUBSCRIPTIONS_PER_USER", "100000")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("OTEL_")) {
            command.env_remove(name);
        }
        for (name, value) in env {
            command.env(name, value);
        }
        let gateway = Gateway {
            child: command.spawn()?,
            dir,
            sqlite_file,
            port,
            base: format!("http://127.0.0.1:{port}"),
            token: graphql::auth::Authenticator::hs256(secret.as_bytes())?
                .issue_token("bench", Duration::from_secs(3600))
                .expect("a token"),
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !http
            .get(format!("{}/healthz", gateway.base))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            anyhow::ensure!(Instant::now() < deadline, "the gateway did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(gateway)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The SQLite database file (`None` when `DATABASE_URL` was given); its WAL is the file
    /// beside it with `-wal` appended.
    pub fn sqlite_file(&self) -> Option<&std::path::Path> {
        self.sqlite_file.as_deref()
    }

    /// SIGTERM, then waits (60 s at most) until the process exits: it drains and flushes its
    /// spans first.
    pub async fn terminate(mut self) -> anyhow::Result<()> {
        let pid = self.pid().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status()?;
        anyhow::ensure!(status.success(), "kill -TERM {pid} failed");
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.child.try_wait()?.is_none() {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the gateway did not exit within 60 s of SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The `taskstream` binary beside this program, or `TASKSTREAM_BIN`.
fn binary() -> PathBuf {
    if let Ok(path) = std::env::var("TASKSTREAM_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join("taskstream");
    assert!(
        path.is_file(),
        "{} is missing: cargo build --release -p graphql --bin taskstream (or set TASKSTREAM_BIN)",
        path.display()
    );
    path
}
