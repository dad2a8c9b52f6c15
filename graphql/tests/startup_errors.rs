//! What a newcomer sees when start-up or a command cannot work: the real `taskstream` binary,
//! run with bad settings; each error must say what is wrong and what to do, quickly.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "a-start-up-test-secret-that-is-long-enough";

/// Runs `taskstream ARGS` in a fresh directory with `env`, killing it after `limit`.
fn run(args: &[&str], env: &[(&str, &str)], dir: &std::path::Path, limit: Duration) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_taskstream"));
    command
        .args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("KAFKA_BROKERS")
        .env_remove("NATS_URL")
        .env("JWT_SECRET", SECRET)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().unwrap();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn temp_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("taskstream-startup-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn an_unsupported_database_url_shows_the_accepted_forms_without_the_password() {
    let dir = temp_dir();
    let out = run(
        &["--database-url", "mysql://root:hunter2@db/tasks"],
        &[],
        &dir,
        Duration::from_secs(20),
    );
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(err.contains("sqlite://FILE?mode=rwc"), "{err}");
    assert!(err.contains("postgres://USER"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn a_sqlite_file_in_a_missing_directory_names_the_directory() {
    let dir = temp_dir();
    let out = run(
        &["--database-url", "sqlite:///no/such/dir/tasks.db?mode=rwc"],
        &[],
        &dir,
        Duration::from_secs(20),
    );
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(err.contains("/no/such/dir"), "{err}");
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn an_unreachable_postgres_fails_within_seconds_naming_host_and_port() {
    // A port nothing listens on: bind one, note it, free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = temp_dir();
    let started = Instant::now();
    let url = format!("postgres://postgres@127.0.0.1:{port}/tasks");
    let out = run(
        &["--database-url", &url],
        &[],
        &dir,
        Duration::from_secs(30),
    );
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(err.contains("cannot reach PostgreSQL"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_host_name_listen_address_is_accepted() {
    use std::io::BufRead as _;
    let dir = temp_dir();
    let mut child = Command::new(env!("CARGO_BIN_EXE_taskstream"))
        .args([
            "--listen-addr",
            "localhost:0",
            "--database-url",
            "sqlite://tasks.db?mode=rwc",
        ])
        .current_dir(&dir)
        .env("JWT_SECRET", SECRET)
        .env_remove("KAFKA_BROKERS")
        .env_remove("NATS_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let banner = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.starts_with("Web app: http://") => break Some(line),
            Ok(_) => continue,
            Err(_) => break None,
        }
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let banner = banner.expect("the server did not start on localhost:0");
    assert!(banner.contains("GraphiQL: http://"), "{banner}");
}

#[test]
fn events_tail_refuses_an_unknown_topic_and_never_creates_a_database() {
    let dir = temp_dir();
    let out = run(
        &["events", "tail", "--topic", "task-event"],
        &[],
        &dir,
        Duration::from_secs(20),
    );
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(err.contains("unknown topic"), "{err}");
    assert!(err.contains("task-events"), "{err}");

    // Global flags after the subcommand; the file does not exist.
    let out = run(
        &[
            "events",
            "tail",
            "--topic",
            "task-events",
            "--database-url",
            "sqlite://nothing-here.db?mode=rwc",
        ],
        &[],
        &dir,
        Duration::from_secs(20),
    );
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(err.contains("no database at"), "{err}");
    assert!(
        !dir.join("nothing-here.db").exists(),
        "events tail created a database file"
    );
}

#[test]
fn taskstream_relay_stops_with_the_error_when_its_relay_cannot_run() {
    // The relay is the process in `taskstream relay`: a relay that stops (here: a TLS CA file
    // that does not exist, which retrying cannot fix) stops the process with its error.
    let dir = temp_dir();
    let database_url = format!("sqlite://{}?mode=rwc", dir.join("relay.db").display());
    let started = Instant::now();
    let out = run(
        &["relay"],
        &[
            ("DATABASE_URL", &database_url),
            ("KAFKA_BROKERS", "127.0.0.1:9"),
            ("KAFKA_TLS_CA_FILE", "/no/such/ca.pem"),
            ("METRICS_ADDR", "off"),
        ],
        &dir,
        Duration::from_secs(30),
    );
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("the outbox relay stopped"), "{err}");
    assert!(err.contains("/no/such/ca.pem"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(20), "{err}");
}

#[test]
fn both_brokers_or_a_bad_nats_url_are_refused_naming_the_variables() {
    let dir = temp_dir();
    let database_url = format!("sqlite://{}?mode=rwc", dir.join("brokers.db").display());
    // (environment, words the error must contain)
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: [Case; 4] = [
        (
            &[
                ("KAFKA_BROKERS", "127.0.0.1:9"),
                ("NATS_URL", "nats://127.0.0.1:9"),
            ],
            &["KAFKA_BROKERS", "NATS_URL", "only one"],
        ),
        (
            &[("NATS_URL", "http://127.0.0.1:4222")],
            &["NATS_URL", "http://"],
        ),
        (
            &[
                ("NATS_URL", "nats://127.0.0.1:4222"),
                ("NATS_PARTITIONS", "0"),
            ],
            &["NATS_PARTITIONS"],
        ),
        (
            &[
                ("NATS_URL", "nats://127.0.0.1:4222"),
                ("NATS_STREAM_PREFIX", "a.b"),
            ],
            &["NATS_STREAM_PREFIX"],
        ),
    ];
    for (env, expected) in cases {
        let mut env = env.to_vec();
        env.extend([
            ("DATABASE_URL", database_url.as_str()),
            ("METRICS_ADDR", "off"),
        ]);
        let out = run(&["relay"], &env, &dir, Duration::from_secs(30));
        let err = stderr(&out);
        assert!(!out.status.success(), "{env:?}: {err}");
        for word in expected {
            assert!(err.contains(word), "{env:?}: expected {word:?} in {err}");
        }
    }
}

#[test]
fn events_tail_on_an_unreachable_nats_server_names_it() {
    let dir = temp_dir();
    let database_url = format!("sqlite://{}?mode=rwc", dir.join("tail.db").display());
    // A database that exists (events tail never creates one).
    std::fs::write(dir.join("tail.db"), b"").unwrap();
    let out = run(
        &["events", "tail", "--topic", "task-events"],
        &[
            ("DATABASE_URL", &database_url),
            ("NATS_URL", "nats://127.0.0.1:9"),
        ],
        &dir,
        Duration::from_secs(30),
    );
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("cannot reach the NATS servers nats://127.0.0.1:9"),
        "{err}"
    );
}
