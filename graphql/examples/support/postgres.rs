//! A throwaway PostgreSQL cluster for the benchmark programs, started the way
//! `scripts/lib/postgres.sh` starts one (initdb and pg_ctl from `/usr/lib/postgresql/*/bin`, as
//! user `postgres` when this process runs as root, since initdb refuses root; trust auth, 127.0.0.1
//! only, a free port), and its server log in `jsonlog` format, read record by record from an
//! offset. Statement logging is off at start; the caller turns it on and off with
//! `ALTER SYSTEM` and `pg_reload_conf()` (see [`Cluster::set_statement_logging`]). Included with
//! `#[path]` by `write_bench` and `list_bench`; dropping the cluster stops it and deletes its directory.
#![allow(dead_code)]

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context;

/// A running throwaway cluster.
pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    /// The OS user that owns the data directory (`postgres` when this process is root).
    owner: Option<String>,
    pub port: u16,
    /// `PostgreSQL 15.x`.
    pub version: String,
    stopped: bool,
}

impl Cluster {
    /// initdb's and starts a cluster in a new temporary directory. `bin` is the directory with
    /// initdb, pg_ctl and postgres (default: the newest `/usr/lib/postgresql/*/bin`); `settings`
    /// are extra `postgresql.conf` lines (`name = value`), added after the defaults.
    pub fn start(bin: Option<&Path>, settings: &[(String, String)]) -> anyhow::Result<Cluster> {
        let bin = match bin {
            Some(b) => b.to_path_buf(),
            None => find_bin_dir().context(
                "no PostgreSQL server binaries (initdb, pg_ctl, postgres) under \
                 /usr/lib/postgresql/*/bin; install Debian's postgresql package or pass --pg-bin",
            )?,
        };
        let root = std::fs::metadata("/proc/self")?.uid() == 0;
        let owner = root.then(|| "postgres".to_owned());
        let dir = std::env::temp_dir().join(format!(
            "taskstream-bench-pg-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir)?;
        let mut cluster = Cluster {
            dir,
            bin,
            owner,
            port: 0,
            version: String::new(),
            stopped: true,
        };
        if let Some(owner) = &cluster.owner {
            let status = Command::new("chown")
                .arg(format!("{owner}:"))
                .arg(&cluster.dir)
                .status()?;
            anyhow::ensure!(
                status.success(),
                "chown {owner} {} failed (is there a user {owner}?)",
                cluster.dir.display()
            );
        }
        let data = cluster.data_dir();
        let initdb = cluster
            .as_owner(&cluster.bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"])
            .arg("--no-sync")
            .output()?;
        anyhow::ensure!(
            initdb.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&initdb.stderr)
        );
        cluster.version = String::from_utf8_lossy(
            &Command::new(cluster.bin.join("postgres"))
                .arg("--version")
                .output()?
                .stdout,
        )
        .trim()
        .replace("postgres (PostgreSQL) ", "PostgreSQL ");

        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        cluster.port = port;
        let mut conf = format!(
            "\n# write_bench\nlisten_addresses = '127.0.0.1'\nport = {port}\n\
             unix_socket_directories = ''\nmax_connections = 200\n\
             logging_collector = on\nlog_destination = 'jsonlog'\nlog_directory = 'log'\n\
             log_filename = 'postgresql.log'\nlog_rotation_age = 0\nlog_rotation_size = 0\n\
             log_statement = 'none'\nlog_parameter_max_length = -1\n"
        );
        for (name, value) in settings {
            conf.push_str(&format!("{name} = {value}\n"));
        }
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))?;
        std::io::Write::write_all(&mut file, conf.as_bytes())?;

        let start = cluster
            .as_owner(&cluster.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(cluster.dir.join("startup.log"))
            .args(["-w", "-t", "60", "start"])
            .stdout(Stdio::null())
            .output()?;
        if !start.status.success() {
            let log = std::fs::read_to_string(cluster.dir.join("startup.log")).unwrap_or_default();
            anyhow::bail!(
                "pg_ctl start failed: {}{log}",
                String::from_utf8_lossy(&start.stderr)
            );
        }
        cluster.stopped = false;
        Ok(cluster)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A scratch directory inside the cluster's temporary directory (deleted with it).
    pub fn scratch(&self, name: &str) -> anyhow::Result<PathBuf> {
        let path = self.dir.join(name);
        std::fs::create_dir_all(&path)?;
        Ok(path)
    }

    fn as_owner(&self, program: &Path) -> Command {
        match &self.owner {
            Some(owner) => {
                let mut c = Command::new("runuser");
                c.args(["-u", owner, "--"]).arg(program).current_dir("/");
                c
            }
            None => Command::new(program),
        }
    }

    /// A client program of the cluster's version (`pgbench`, `psql`).
    pub fn tool(&self, name: &str) -> PathBuf {
        self.bin.join(name)
    }

    /// `postgres://postgres@127.0.0.1:PORT/DATABASE`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// The `jsonlog` file the server writes.
    pub fn log_file(&self) -> PathBuf {
        self.data_dir().join("log").join("postgresql.json")
    }

    /// Sets `log_statement` to `value` (`all`, `none`) for every session, through `db` (a
    /// connection to this cluster): `ALTER SYSTEM` and a reload, which each session applies at
    /// its next command once the reload signal has reached it (there is no reading another
    /// session's setting, so the signal is given 300 ms).
    pub async fn set_statement_logging(
        db: &sea_orm::DatabaseConnection,
        value: &str,
    ) -> anyhow::Result<()> {
        use sea_orm::ConnectionTrait;
        db.execute_unprepared(&format!("ALTER SYSTEM SET log_statement = '{value}'"))
            .await?;
        db.execute_unprepared("SELECT pg_reload_conf()").await?;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        Ok(())
    }

    /// The log's records from `from` on, once the logging collector (which writes
    /// asynchronously) has stopped adding to the file for 200 ms (10 s at most).
    pub async fn read_log_settled(&self, from: u64) -> anyhow::Result<Vec<LogRecord>> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut size = self.log_offset();
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            let now = self.log_offset();
            if now == size || std::time::Instant::now() > deadline {
                return read_log(&self.log_file(), from).map(|(records, _)| records);
            }
            size = now;
        }
    }

    /// The size of the log file: records written after this are read with [`read_log`].
    pub fn log_offset(&self) -> u64 {
        std::fs::metadata(self.log_file()).map_or(0, |m| m.len())
    }

    /// Stops the server (fast shutdown).
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let _ = self
            .as_owner(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "fast", "-w", "-t", "60", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The newest `/usr/lib/postgresql/*/bin` that has initdb, pg_ctl and postgres.
fn find_bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            ["initdb", "pg_ctl", "postgres"]
                .iter()
                .all(|t| bin.join(t).is_file())
                .then_some((version, bin))
        })
        .collect();
    dirs.sort();
    dirs.pop().map(|(_, bin)| bin)
}

/// One record of the server's `jsonlog`.
#[derive(Clone, Debug)]
pub struct LogRecord {
    pub pid: i64,
    /// The virtual transaction id (`backend/local`): the same for every statement of one
    /// transaction block, a new one for each autocommit statement.
    pub vxid: String,
    pub application: String,
    pub severity: String,
    pub message: String,
    pub detail: Option<String>,
}

/// The complete records written to `path` from byte `from` on, and the offset after the last
/// complete line (a record being written is left for the next read).
pub fn read_log(path: &Path, from: u64) -> anyhow::Result<(Vec<LogRecord>, u64)> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), from)),
        Err(e) => return Err(e.into()),
    };
    file.seek(SeekFrom::Start(from))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let text = String::from_utf8_lossy(&bytes[..complete]);
    let mut records = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
        records.push(LogRecord {
            pid: v["pid"].as_i64().unwrap_or_default(),
            vxid: s("vxid"),
            application: s("application_name"),
            severity: s("error_severity"),
            message: s("message"),
            detail: v["detail"].as_str().map(str::to_owned),
        });
    }
    Ok((records, from + complete as u64))
}
