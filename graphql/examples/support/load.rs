//! What the benchmark programs share to measure a server over HTTP: a GraphQL client
//! ([`Api`]), one measured run ([`Measured`]: throughput, sorted latencies, failures), and a
//! guard that kills a child process (a peer server) when dropped. Included with `#[path]`, like
//! the other files here; each benchmark uses a part of it.
#![allow(dead_code)]

use std::process::Child;
use std::time::Duration;

use serde_json::Value;

/// One measured run: throughput, latencies, failures.
#[derive(Clone, Debug, Default)]
pub struct Measured {
    pub per_second: f64,
    /// Sorted, ms.
    pub latencies: Vec<f64>,
    pub requests: usize,
    pub failed: usize,
    pub first_failures: Vec<String>,
}

impl Measured {
    pub fn p(&self, q: f64) -> f64 {
        percentile(&self.latencies, q)
    }

    /// `N req/s, p50 X ms, p99 Y ms`, and the failures if any.
    pub fn line(&self) -> String {
        format!(
            "{:.0} req/s, p50 {:.2} ms, p99 {:.2} ms{}",
            self.per_second,
            self.p(0.5),
            self.p(0.99),
            self.failures_note()
        )
    }

    /// `req/s p50 p99` for a table cell, and the failures if any.
    pub fn cells(&self) -> String {
        format!(
            "{:>7.0} {:>7.2} {:>7.2}{}",
            self.per_second,
            self.p(0.5),
            self.p(0.99),
            self.failures_note()
        )
    }

    fn failures_note(&self) -> String {
        if self.failed > 0 {
            format!(", {} FAILED", self.failed)
        } else {
            String::new()
        }
    }

    /// Prints the failures loudly, if any.
    pub fn shout(&self, what: &str) {
        if self.failed == 0 {
            return;
        }
        println!(
            "!!! {what}: {} of {} requests FAILED; first failures:",
            self.failed, self.requests
        );
        for f in &self.first_failures {
            println!("!!!   {f}");
        }
    }
}

pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

/// GraphQL over HTTP, with a bearer token when it has one.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub url: String,
    pub token: Option<String>,
}

impl Api {
    /// The response's `data`, or why it failed (transport, status, `errors`, no data).
    pub async fn call(&self, body: &Value) -> Result<Value, String> {
        let mut request = self
            .http
            .post(&self.url)
            .json(body)
            .timeout(Duration::from_secs(30));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| format!("HTTP: {e}"))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| format!("HTTP: {e}"))?;
        let value: Value = serde_json::from_str(&text)
            .map_err(|_| format!("status {status}: {}", truncate(&text, 300)))?;
        if !value["errors"].is_null() {
            return Err(format!(
                "status {status}: {}",
                truncate(&value["errors"].to_string(), 300)
            ));
        }
        if !status.is_success() || value["data"].is_null() {
            return Err(format!("status {status}: {}", truncate(&text, 300)));
        }
        Ok(value["data"].clone())
    }
}

/// `text` cut to `width` characters, with an ellipsis when cut.
pub fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let cut: String = text.chars().take(width.saturating_sub(1)).collect();
    format!("{cut}…")
}

/// Kills the child process when dropped.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running PostGraphile (the peer of the write and list benchmarks).
pub struct PostGraphile {
    pub api: Api,
    pub version: String,
    pub port: u16,
    _child: ChildGuard,
}

/// Starts PostGraphile from `dir` (its npm project: `packages` are npm-installed there first
/// when `node_modules/<first package>` is missing) on `database_url`'s `public` schema, query
/// log and GraphiQL off, and waits (90 s at most) until it answers; its output goes to `log`.
/// Run from `dir`, so a `.postgraphilerc.js` there is read.
pub async fn start_postgraphile(
    dir: &std::path::Path,
    packages: &[&str],
    database_url: &str,
    log: &std::path::Path,
) -> anyhow::Result<PostGraphile> {
    use anyhow::Context;
    use std::process::{Command, Stdio};

    let bin = dir.join("node_modules/.bin/postgraphile");
    let installed = packages.iter().all(|p| {
        let name = p.rsplit_once('@').map_or(*p, |(name, _)| name);
        dir.join("node_modules").join(name).is_dir()
    });
    if !bin.is_file() || !installed {
        println!(
            "==> installing {} with npm into {}",
            packages.join(", "),
            dir.display()
        );
        std::fs::create_dir_all(dir)?;
        if !dir.join("package.json").is_file() {
            std::fs::write(
                dir.join("package.json"),
                r#"{ "name": "taskstream-bench-postgraphile", "private": true }"#,
            )?;
        }
        let status = Command::new("npm")
            .current_dir(dir)
            .args(["install", "--no-audit", "--no-fund"])
            .args(packages)
            .stdout(Stdio::null())
            .status()
            .context("running npm")?;
        anyhow::ensure!(
            status.success() && bin.is_file(),
            "npm install {} failed",
            packages.join(" ")
        );
    }
    let version = Command::new(&bin).arg("--version").output()?;
    let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new(&bin)
        .current_dir(dir)
        .args(["-c", database_url])
        .args(["--schema", "public", "--host", "127.0.0.1"])
        .args(["--port", &port.to_string()])
        .args(["--disable-graphiql", "--disable-query-log"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log)?)
        .spawn()
        .context("starting PostGraphile")?;
    let child = ChildGuard(child);
    let api = Api {
        http: reqwest::Client::new(),
        url: format!("http://127.0.0.1:{port}/graphql"),
        token: None,
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while api
        .call(&serde_json::json!({ "query": "{ __typename }" }))
        .await
        .is_err()
    {
        if std::time::Instant::now() > deadline {
            anyhow::bail!(
                "PostGraphile did not answer within 90 s; its log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(PostGraphile {
        api,
        version,
        port,
        _child: child,
    })
}
