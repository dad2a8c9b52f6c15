//! The invariants ARCHITECTURE.md states that a program can check, checked by reading the
//! workspace's manifests and Rust sources (comments and string literals are not code: they are
//! blanked before any search). Each failure names the file, the line and the invariant.
//!
//! - `rskafka`: only `stream` depends on it, and within `stream` only `src/kafka.rs` and
//!   `src/kafka/**` name it.
//! - `async-nats`: only `stream` depends on it, and within `stream` only `src/nats/**` names
//!   it (and the NATS transport's own tests, which inspect the streams with a client of their
//!   own).
//! - GraphQL and the HTTP server: only `graphql` depends on `async-graphql`,
//!   `async-graphql-axum`, `axum`, `hyper`, `hyper-util` or `tower-http`, with two exceptions:
//!   `subscribers` uses `axum` in `src/metrics_server.rs` only (the subscriber binaries'
//!   `/metrics` and `/healthz`), and `telemetry` in its tests only (TLS receivers).
//! - `entities` does no IO: its `[dependencies]` are [`ENTITIES_DEPENDENCIES`] (crates that do
//!   no IO, and `sea-orm` for its model types and derives), and its sources contain no
//!   `.await` (so no query can run: every sea-orm execution is async), no `std::fs`, `net`,
//!   `io`, `process`, `env`, `thread` or `os`, no `tokio`, `sqlx`, `reqwest` or `hyper`, no
//!   print macros, and do not read the clock or entropy (`Utc::now`, `Local::now`,
//!   `SystemTime`, `Instant`, `Uuid::new_v4`/`now_v7`, `rand`): its rules are pure functions.
//! - `telemetry` installs the subscriber and exporter: no other crate's `src/` names
//!   `tracing_subscriber`, `opentelemetry*`, `prometheus_client` or `set_global_default`
//!   (metrics go through `telemetry::metrics`); and `telemetry` knows nothing of tasks, GraphQL
//!   or the database: none of the workspace's crates, `sea-orm` or `async-graphql` among its
//!   `[dependencies]`.
//! - Migrations: every `migration/src/m*.rs` has a `down`, is declared and listed in
//!   `Migrator::migrations()` in name (date) order, and uses nothing of `entities` but
//!   `entities::search`.
//! - Resolvers are thin: `graphql/src/schema/` names nothing of `sea_orm` but
//!   `DatabaseConnection` and none of its query traits; the queries are in `service/`.
//! - Nothing publishes to a broker from a request handler: `graphql/src/schema/` and
//!   `graphql/src/service/` name no `kafka`, `KafkaLog`, `KafkaConfig`, `LogWriter` or
//!   `Relay`; events are outbox rows.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

/// What `entities` may depend on (each does no IO; `sea-orm` is there for `DeriveEntityModel`
/// and the column types, and the source checks keep its executors out).
const ENTITIES_DEPENDENCIES: &[&str] = &[
    "chrono",
    "chrono-tz",
    "rrule",
    "rust-stemmers",
    "sea-orm",
    "serde",
    "serde_json",
    "thiserror",
    "unicode-normalization",
    "uuid",
];

/// Crates that serve HTTP or GraphQL.
const SERVER_CRATES: &[&str] = &[
    "async-graphql",
    "async-graphql-axum",
    "axum",
    "hyper",
    "hyper-util",
    "tower-http",
];

/// One dependency line of a manifest.
#[derive(Debug)]
struct Dependency {
    /// The crate's real name (`package = "..."` wins over the key).
    name: String,
    /// `dependencies`, `dev-dependencies`, `build-dependencies` (target tables included).
    section: String,
    line: usize,
}

/// One Rust source file: its path from the workspace root and its code with comments and
/// string literals blanked (lines kept).
struct Source {
    path: String,
    code: String,
}

struct Crate {
    name: String,
    manifest: String,
    dependencies: Vec<Dependency>,
    sources: Vec<Source>,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn workspace() -> Vec<Crate> {
    let root = workspace_root();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    members(&manifest)
        .into_iter()
        .map(|member| {
            let dir = root.join(&member);
            let manifest_path = format!("{member}/Cargo.toml");
            let text = std::fs::read_to_string(root.join(&manifest_path)).unwrap();
            let mut files = Vec::new();
            rust_files(&dir, &mut files);
            files.sort();
            Crate {
                name: member.clone(),
                manifest: manifest_path,
                dependencies: dependencies(&text),
                sources: files
                    .into_iter()
                    .map(|f| Source {
                        path: f
                            .strip_prefix(&root)
                            .unwrap()
                            .to_string_lossy()
                            .replace('\\', "/"),
                        code: blank_comments_and_strings(&std::fs::read_to_string(&f).unwrap()),
                    })
                    .collect(),
            }
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy();
        if path.is_dir() {
            if name != "target" && name != "node_modules" && !name.starts_with('.') {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

/// The `members = [...]` of the root manifest.
fn members(manifest: &str) -> Vec<String> {
    let start = manifest.find("members").expect("no workspace members");
    let list = &manifest[start..];
    let list = &list[list.find('[').unwrap() + 1..list.find(']').unwrap()];
    list.split(',')
        .map(|m| m.trim().trim_matches('"').to_owned())
        .filter(|m| !m.is_empty())
        .collect()
}

/// The dependencies of a member manifest: `name = ...` and `name.workspace = true` lines in
/// dependency tables, and `[dependencies.name]` headers (the forms Cargo accepts).
fn dependencies(manifest: &str) -> Vec<Dependency> {
    let mut out = Vec::new();
    let mut section: Option<String> = None;
    for (i, raw) in manifest.lines().enumerate() {
        let line = raw.split('#').next().unwrap().trim();
        if line.starts_with('[') {
            let header = line.trim_matches(|c| c == '[' || c == ']').trim();
            let table = header.rsplit('.').next().unwrap_or(header);
            section = None;
            for kind in ["dependencies", "dev-dependencies", "build-dependencies"] {
                if header == kind || header.ends_with(&format!(".{kind}")) {
                    section = Some(kind.to_owned());
                } else if let Some(name) = header.strip_prefix(&format!("{kind}.")) {
                    out.push(Dependency {
                        name: name.to_owned(),
                        section: kind.to_owned(),
                        line: i + 1,
                    });
                } else if header.contains(&format!(".{kind}.")) {
                    out.push(Dependency {
                        name: table.to_owned(),
                        section: kind.to_owned(),
                        line: i + 1,
                    });
                }
            }
            continue;
        }
        let (Some(kind), Some((key, value))) = (&section, line.split_once('=')) else {
            continue;
        };
        let key = key.trim().trim_end_matches(".workspace").trim_matches('"');
        let name = value
            .split_once("package")
            .and_then(|(_, rest)| rest.split('"').nth(1))
            .unwrap_or(key);
        out.push(Dependency {
            name: name.to_owned(),
            section: kind.clone(),
            line: i + 1,
        });
    }
    out
}

/// `code` with comments, string and char literals replaced by spaces (newlines kept), so that
/// searches see only code. Lifetimes are kept.
fn blank_comments_and_strings(code: &str) -> String {
    let chars: Vec<char> = code.chars().collect();
    let mut out = String::with_capacity(code.len());
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                blank(&mut out, chars[i]);
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
            }
        } else if let Some(hashes) = raw_string_start(&chars, i) {
            // r"..", r#".."#, br#".."#: no escapes; ends at a quote and as many hashes.
            let open = chars[i..].iter().position(|&c| c == '"').unwrap() + i;
            for &c in &chars[i..=open] {
                blank(&mut out, c);
            }
            i = open + 1;
            while i < chars.len() {
                if chars[i] == '"' && chars[i + 1..].iter().take(hashes).all(|&c| c == '#') {
                    for _ in 0..=hashes {
                        out.push(' ');
                    }
                    i += 1 + hashes;
                    break;
                }
                blank(&mut out, chars[i]);
                i += 1;
            }
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() {
                let d = chars[i];
                if d == '\\' {
                    blank(&mut out, d);
                    if let Some(&e) = chars.get(i + 1) {
                        blank(&mut out, e);
                    }
                    i += 2;
                    continue;
                }
                blank(&mut out, d);
                i += 1;
                if d == '"' {
                    break;
                }
            }
        } else if c == '\'' && is_char_literal(&chars, i) {
            out.push(' ');
            i += 1;
            while i < chars.len() {
                let d = chars[i];
                if d == '\\' {
                    out.push_str("  ");
                    i += 2;
                    continue;
                }
                out.push(' ');
                i += 1;
                if d == '\'' {
                    break;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The number of `#` of a raw string literal starting at `i` (`r"`, `r#"`, `br##"`...).
fn raw_string_start(chars: &[char], i: usize) -> Option<usize> {
    if i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') {
        return None;
    }
    let mut j = i;
    if chars.get(j) == Some(&'b') || chars.get(j) == Some(&'c') {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let hashes = chars[j..].iter().take_while(|&&c| c == '#').count();
    (chars.get(j + hashes) == Some(&'"')).then_some(hashes)
}

/// Whether the `'` at `i` opens a char literal (`'a'`, `'\n'`, `'\u{1F600}'`) rather than a
/// lifetime or label (`'a`, `'static`).
fn is_char_literal(chars: &[char], i: usize) -> bool {
    match chars.get(i + 1) {
        Some('\\') => true,
        Some(_) => chars.get(i + 2) == Some(&'\''),
        None => false,
    }
}

/// The 1-based lines where identifier `word` occurs in `code` as a whole word.
fn word_lines(code: &str, word: &str) -> Vec<usize> {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    code.lines()
        .enumerate()
        .filter(|(_, line)| {
            line.match_indices(word).any(|(at, _)| {
                let before = line[..at].chars().next_back();
                let after = line[at + word.len()..].chars().next();
                !before.is_some_and(ident) && !after.is_some_and(ident)
            })
        })
        .map(|(n, _)| n + 1)
        .collect()
}

/// The 1-based lines where the path `std::<module>` is used, directly or in a `std::{...}`
/// group (`use std::{fs, io::{self, Write}}`).
fn std_module_lines(code: &str, module: &str) -> Vec<usize> {
    let compact: String = code
        .chars()
        .filter(|c| !c.is_whitespace() || *c == '\n')
        .collect();
    let leading_ident = |s: &str| -> String {
        s.trim_start_matches('\n')
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut lines = Vec::new();
    for (at, _) in compact.match_indices("std::") {
        let rest = &compact[at + "std::".len()..];
        let named = match rest.strip_prefix('{') {
            // The group's top-level items: split at depth-0 commas, up to its closing brace.
            Some(group) => {
                let mut depth = 0;
                let mut items = vec![String::new()];
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => items.push(String::new()),
                        _ => {}
                    }
                    if depth == 0 && c != ',' {
                        items.last_mut().unwrap().push(c);
                    }
                }
                items.iter().any(|item| leading_ident(item) == module)
            }
            None => leading_ident(rest) == module,
        };
        if named {
            lines.push(compact[..at].matches('\n').count() + 1);
        }
    }
    lines
}

/// Violations of one invariant, as `file:line: what (invariant)`.
type Findings = Vec<String>;

fn finding(file: &str, line: usize, what: &str, invariant: &str) -> String {
    format!("{file}:{line}: {what} ({invariant})")
}

/// `crate_name` may depend on `dependency` only where `allowed(crate, section)` says so.
fn check_dependency(
    crates: &[Crate],
    dependency: &str,
    allowed: impl Fn(&str, &str) -> bool,
    invariant: &str,
) -> Findings {
    let mut out = Vec::new();
    for krate in crates {
        for dep in &krate.dependencies {
            if dep.name == dependency && !allowed(&krate.name, &dep.section) {
                out.push(finding(
                    &krate.manifest,
                    dep.line,
                    &format!("[{}] has {dependency}", dep.section),
                    invariant,
                ));
            }
        }
    }
    out
}

/// Identifier `word` may occur only in files `allowed(path)` accepts.
fn check_word(
    crates: &[Crate],
    word: &str,
    allowed: impl Fn(&str) -> bool,
    invariant: &str,
) -> Findings {
    let mut out = Vec::new();
    for source in crates.iter().flat_map(|c| &c.sources) {
        if allowed(&source.path) {
            continue;
        }
        for line in word_lines(&source.code, word) {
            out.push(finding(
                &source.path,
                line,
                &format!("uses `{word}`"),
                invariant,
            ));
        }
    }
    out
}

const RSKAFKA: &str = "only stream/src/kafka* uses rskafka";

fn kafka_outside_stream(crates: &[Crate]) -> Findings {
    let mut out = check_dependency(crates, "rskafka", |c, _| c == "stream", RSKAFKA);
    out.extend(check_word(
        crates,
        "rskafka",
        |path| path == "stream/src/kafka.rs" || path.starts_with("stream/src/kafka/"),
        RSKAFKA,
    ));
    out
}

const ASYNC_NATS: &str = "only stream/src/nats/ uses async-nats";

fn nats_outside_stream(crates: &[Crate]) -> Findings {
    let mut out = check_dependency(crates, "async-nats", |c, _| c == "stream", ASYNC_NATS);
    out.extend(check_word(
        crates,
        "async_nats",
        |path| {
            path.starts_with("stream/src/nats/") || path.starts_with("stream/tests/nats_transport/")
        },
        ASYNC_NATS,
    ));
    out
}

const SERVER: &str = "only graphql knows about GraphQL or serves HTTP (subscribers: /metrics and /healthz in src/metrics_server.rs)";

fn graphql_and_http(crates: &[Crate]) -> Findings {
    let mut out = Vec::new();
    for dependency in SERVER_CRATES {
        out.extend(check_dependency(
            crates,
            dependency,
            |krate, section| {
                krate == "graphql"
                    || (*dependency == "axum"
                        && ((krate == "subscribers" && section == "dependencies")
                            || (krate == "telemetry" && section == "dev-dependencies")))
            },
            SERVER,
        ));
    }
    for word in [
        "async_graphql",
        "async_graphql_axum",
        "hyper",
        "hyper_util",
        "tower_http",
    ] {
        out.extend(check_word(
            crates,
            word,
            |path| path.starts_with("graphql/"),
            SERVER,
        ));
    }
    out.extend(check_word(
        crates,
        "axum",
        |path| {
            path.starts_with("graphql/")
                || path == "subscribers/src/metrics_server.rs"
                || path.starts_with("telemetry/tests/")
        },
        SERVER,
    ));
    out
}

const PURE: &str = "entities does no IO: every rule is a pure function";

fn io_in_entities(crates: &[Crate]) -> Findings {
    let mut out = Vec::new();
    let Some(entities) = crates.iter().find(|c| c.name == "entities") else {
        return vec!["no `entities` member in the workspace".to_owned()];
    };
    for dep in &entities.dependencies {
        if dep.section != "dev-dependencies" && !ENTITIES_DEPENDENCIES.contains(&dep.name.as_str())
        {
            out.push(finding(
                &entities.manifest,
                dep.line,
                &format!(
                    "[{}] has {}, which is not in ENTITIES_DEPENDENCIES (graphql/tests/architecture.rs); \
                     add it there only if it does no IO",
                    dep.section, dep.name
                ),
                PURE,
            ));
        }
    }
    for source in &entities.sources {
        let code = &source.code;
        let mut flag = |lines: Vec<usize>, what: &str| {
            for line in lines {
                out.push(finding(&source.path, line, what, PURE));
            }
        };
        flag(
            code.lines()
                .enumerate()
                .filter(|(_, l)| l.contains(".await"))
                .map(|(n, _)| n + 1)
                .collect(),
            "awaits (a query or other async IO)",
        );
        for module in ["fs", "net", "io", "process", "env", "thread", "os"] {
            flag(
                std_module_lines(code, module),
                &format!("uses std::{module}"),
            );
        }
        for word in [
            "tokio",
            "sqlx",
            "reqwest",
            "hyper",
            "rand",
            "SystemTime",
            "Instant",
        ] {
            flag(word_lines(code, word), &format!("uses `{word}`"));
        }
        // A word on a line that also holds `text` (`now` in `Utc::now`, `println` in `println!`).
        let word_with = |word: &str, text: &str| -> Vec<usize> {
            word_lines(code, word)
                .into_iter()
                .filter(|&n| code.lines().nth(n - 1).unwrap().contains(text))
                .collect()
        };
        for call in ["Utc::now", "Local::now", "new_v4", "now_v7"] {
            flag(
                word_with(call.rsplit("::").next().unwrap(), call),
                &format!("reads the clock or entropy (`{call}`)"),
            );
        }
        for print in ["println", "eprintln", "print", "eprint", "dbg"] {
            flag(
                word_with(print, &format!("{print}!")),
                &format!("writes to the terminal (`{print}!`)"),
            );
        }
    }
    out
}

const TELEMETRY: &str = "only telemetry installs the subscriber and exporter, and it knows nothing of tasks, GraphQL or the database";

fn telemetry_alone(crates: &[Crate]) -> Findings {
    let mut out = Vec::new();
    for word in [
        "tracing_subscriber",
        "opentelemetry",
        "opentelemetry_sdk",
        "opentelemetry_otlp",
        "prometheus_client",
        "set_global_default",
    ] {
        out.extend(check_word(
            crates,
            word,
            |path| {
                // Tests and examples may install a subscriber of their own.
                path.starts_with("telemetry/") || path.split('/').nth(1) != Some("src")
            },
            TELEMETRY,
        ));
    }
    let members: Vec<&str> = crates.iter().map(|c| c.name.as_str()).collect();
    for krate in crates.iter().filter(|c| c.name == "telemetry") {
        for dep in &krate.dependencies {
            let forbidden = members.contains(&dep.name.as_str())
                || ["sea-orm", "async-graphql", "entities"].contains(&dep.name.as_str());
            if dep.section == "dependencies" && forbidden {
                out.push(finding(
                    &krate.manifest,
                    dep.line,
                    &format!("[dependencies] has {}", dep.name),
                    TELEMETRY,
                ));
            }
        }
    }
    out
}

const MIGRATIONS: &str = "migrations are append-only (listed in date order), each with a down, and use nothing of entities but entities::search";

fn migrations(crates: &[Crate]) -> Findings {
    let mut out = Vec::new();
    let Some(migration) = crates.iter().find(|c| c.name == "migration") else {
        return vec!["no `migration` member in the workspace".to_owned()];
    };
    let lib = migration
        .sources
        .iter()
        .find(|s| s.path == "migration/src/lib.rs")
        .unwrap();
    let mut modules: Vec<&str> = migration
        .sources
        .iter()
        .filter_map(|s| s.path.strip_prefix("migration/src/"))
        .filter(|f| f.starts_with('m') && f.ends_with(".rs") && f != &"main.rs")
        .map(|f| f.trim_end_matches(".rs"))
        .collect();
    modules.sort_unstable();
    let mut last_listed = 0;
    for module in &modules {
        let path = format!("migration/src/{module}.rs");
        let source = migration.sources.iter().find(|s| s.path == path).unwrap();
        if !source.code.contains("async fn down") {
            out.push(finding(&path, 1, "has no `down`", MIGRATIONS));
        }
        if !lib.code.contains(&format!("mod {module};")) {
            out.push(finding(
                &lib.path,
                1,
                &format!("does not declare {module}"),
                MIGRATIONS,
            ));
        }
        match lib.code.find(&format!("{module}::Migration")) {
            None => out.push(finding(
                &lib.path,
                1,
                &format!("Migrator::migrations() does not list {module}"),
                MIGRATIONS,
            )),
            Some(at) if at < last_listed => out.push(finding(
                &lib.path,
                lib.code[..at].matches('\n').count() + 1,
                &format!("{module} is listed before an earlier-dated migration"),
                MIGRATIONS,
            )),
            Some(at) => last_listed = at,
        }
    }
    for source in &migration.sources {
        for line in word_lines(&source.code, "entities") {
            let text = source.code.lines().nth(line - 1).unwrap();
            let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            let only_search = compact
                .match_indices("entities")
                .all(|(at, _)| compact[at..].starts_with("entities::search"));
            if !only_search {
                out.push(finding(
                    &source.path,
                    line,
                    "uses entities beyond entities::search",
                    MIGRATIONS,
                ));
            }
        }
    }
    out
}

const THIN: &str = "resolvers are thin: database work is in graphql/src/service/";
const NO_BROKER: &str =
    "nothing publishes to a broker from a request handler: events are outbox rows";

fn request_handlers(crates: &[Crate]) -> Findings {
    let mut out = Vec::new();
    let Some(graphql) = crates.iter().find(|c| c.name == "graphql") else {
        return vec!["no `graphql` member in the workspace".to_owned()];
    };
    let schema = |s: &&Source| s.path.starts_with("graphql/src/schema/");
    for source in graphql.sources.iter().filter(schema) {
        let compact: String = source.code.chars().filter(|c| *c != ' ').collect();
        for (at, _) in compact.match_indices("sea_orm::") {
            let rest = &compact[at + "sea_orm::".len()..];
            let named: Vec<&str> = match rest.strip_prefix('{') {
                Some(group) => group[..group.find('}').unwrap_or(group.len())]
                    .split(',')
                    .map(str::trim)
                    .collect(),
                None => vec![
                    rest.split(|c: char| !c.is_alphanumeric() && c != '_')
                        .next()
                        .unwrap(),
                ],
            };
            for name in named.into_iter().filter(|n| *n != "DatabaseConnection") {
                out.push(finding(
                    &source.path,
                    compact[..at].matches('\n').count() + 1,
                    &format!("uses sea_orm::{name}"),
                    THIN,
                ));
            }
        }
        for word in [
            "sea_query",
            "EntityTrait",
            "ActiveModelTrait",
            "ModelTrait",
            "QueryFilter",
            "QuerySelect",
            "QueryOrder",
            "PaginatorTrait",
            "ConnectionTrait",
            "TransactionTrait",
            "Statement",
        ] {
            for line in word_lines(&source.code, word) {
                out.push(finding(&source.path, line, &format!("uses `{word}`"), THIN));
            }
        }
    }
    let handlers = |s: &&Source| {
        s.path.starts_with("graphql/src/schema/") || s.path.starts_with("graphql/src/service/")
    };
    for source in graphql.sources.iter().filter(handlers) {
        for word in [
            "kafka",
            "KafkaLog",
            "KafkaConfig",
            "LogWriter",
            "Relay",
            "relay",
        ] {
            for line in word_lines(&source.code, word) {
                out.push(finding(
                    &source.path,
                    line,
                    &format!("uses `{word}`"),
                    NO_BROKER,
                ));
            }
        }
    }
    out
}

const LAYERS: &str = "stream is layered one way: the log's parts (embedded log, Kafka log, NATS log, relay, consumer runtime) know each other only through the lower modules (outbox, log, envelope, lifecycle, ...), which know none of them";

/// The stream modules that implement one part of the log; none may name another.
const STREAM_PARTS: &[&str] = &["embedded", "kafka", "nats", "relay", "consumer"];

/// The stream modules every part builds on; they may name no part.
const STREAM_BASE: &[&str] = &[
    "db",
    "envelope",
    "lifecycle",
    "log",
    "notification_events",
    "outbox",
    "partitioner",
    "reminder_events",
    "task_events",
    "topics",
    "wakeup",
    "write_txn",
];

fn stream_layers(crates: &[Crate]) -> Findings {
    let mut out = Vec::new();
    let Some(stream) = crates.iter().find(|c| c.name == "stream") else {
        return vec!["no `stream` member in the workspace".to_owned()];
    };
    for source in &stream.sources {
        let Some(rest) = source.path.strip_prefix("stream/src/") else {
            continue;
        };
        let module = rest.split(['/', '.']).next().unwrap_or_default();
        let forbidden: Vec<&str> = if STREAM_PARTS.contains(&module) {
            STREAM_PARTS
                .iter()
                .copied()
                .filter(|p| *p != module)
                .collect()
        } else if STREAM_BASE.contains(&module) {
            STREAM_PARTS.to_vec()
        } else {
            continue;
        };
        for part in forbidden {
            for line in word_lines(&source.code, &format!("crate::{part}")) {
                out.push(finding(
                    &source.path,
                    line,
                    &format!("uses `crate::{part}`"),
                    LAYERS,
                ));
            }
        }
    }
    out
}

fn assert_none(findings: Findings) {
    assert!(
        findings.is_empty(),
        "{} architecture invariant violation(s) (ARCHITECTURE.md):\n{}",
        findings.len(),
        findings.join("\n")
    );
}

#[test]
fn only_stream_kafka_uses_rskafka() {
    assert_none(kafka_outside_stream(&workspace()));
}

#[test]
fn only_stream_nats_uses_async_nats() {
    assert_none(nats_outside_stream(&workspace()));
}

#[test]
fn only_graphql_serves_graphql_and_http() {
    assert_none(graphql_and_http(&workspace()));
}

#[test]
fn entities_does_no_io() {
    assert_none(io_in_entities(&workspace()));
}

#[test]
fn only_telemetry_installs_the_subscriber_and_exporter() {
    assert_none(telemetry_alone(&workspace()));
}

#[test]
fn migrations_are_listed_in_order_with_a_down() {
    assert_none(migrations(&workspace()));
}

#[test]
fn stream_is_layered_one_way() {
    assert_none(stream_layers(&workspace()));
}

#[test]
fn resolvers_are_thin_and_request_handlers_never_publish() {
    assert_none(request_handlers(&workspace()));
}

// The checks themselves, on made-up crates.

fn fake(name: &str, manifest: &str, sources: &[(&str, &str)]) -> Crate {
    Crate {
        name: name.to_owned(),
        manifest: format!("{name}/Cargo.toml"),
        dependencies: dependencies(manifest),
        sources: sources
            .iter()
            .map(|(path, code)| Source {
                path: (*path).to_owned(),
                code: blank_comments_and_strings(code),
            })
            .collect(),
    }
}

#[test]
fn comments_strings_and_char_literals_are_not_code() {
    let code = "let a = \"rskafka::x\"; // rskafka\n/* rskafka /* nested */ still */ let b = 'r';\n\
                let c = r#\"rskafka \"quoted\" \"#; let d: &'static str = x; tokio::spawn(f)";
    let blanked = blank_comments_and_strings(code);
    assert_eq!(blanked.lines().count(), code.lines().count());
    assert!(word_lines(&blanked, "rskafka").is_empty(), "{blanked}");
    assert!(blanked.contains("&'static str"), "{blanked}");
    assert_eq!(word_lines(&blanked, "tokio"), vec![3]);
    assert!(word_lines(&blanked, "toki").is_empty());
}

#[test]
fn manifests_are_read_in_every_form_cargo_accepts() {
    let deps = dependencies(
        "[package]\nname = \"x\"\n\n[dependencies]\nrskafka.workspace = true\n\
         kafka = { package = \"rskafka\", version = \"0.6\" } # renamed\n\
         [target.'cfg(unix)'.dependencies]\ntokio = \"1\"\n[dev-dependencies.axum]\nversion = \"0.8\"\n\
         [lints]\nworkspace = true\n",
    );
    let got: Vec<(&str, &str, usize)> = deps
        .iter()
        .map(|d| (d.name.as_str(), d.section.as_str(), d.line))
        .collect();
    assert_eq!(
        got,
        vec![
            ("rskafka", "dependencies", 5),
            ("rskafka", "dependencies", 6),
            ("tokio", "dependencies", 8),
            ("axum", "dev-dependencies", 9),
        ]
    );
}

#[test]
fn each_check_names_the_file_line_and_invariant_it_breaks() {
    let crates = [
        fake(
            "stream",
            "[dependencies]\nrskafka.workspace = true\n",
            &[
                ("stream/src/kafka/mod.rs", "use rskafka::client::Client;"),
                (
                    "stream/src/relay.rs",
                    "// rskafka is fine in a comment\nuse rskafka::x;",
                ),
            ],
        ),
        fake(
            "entities",
            "[dependencies]\nchrono.workspace = true\ntokio.workspace = true\n",
            &[(
                "entities/src/lib.rs",
                "use std::{collections::HashMap, fs};\nfn f() { let t = chrono::Utc::now(); }\n\
                 async fn g(db: &D) { db.query().await; println!(\"x\"); }",
            )],
        ),
        fake(
            "subscribers",
            "[dependencies]\naxum.workspace = true\nasync-graphql.workspace = true\n",
            &[
                ("subscribers/src/metrics_server.rs", "use axum::Router;"),
                ("subscribers/src/webhook.rs", "use axum::Json;"),
                (
                    "subscribers/src/lib.rs",
                    "tracing_subscriber::fmt().init();",
                ),
            ],
        ),
        fake(
            "graphql",
            "[dependencies]\naxum.workspace = true\n",
            &[
                (
                    "graphql/src/schema/task.rs",
                    "use sea_orm::{DatabaseConnection, EntityTrait};",
                ),
                (
                    "graphql/src/service/task.rs",
                    "stream::kafka::KafkaLog::connect()",
                ),
                (
                    "graphql/tests/observability.rs",
                    "tracing_subscriber::fmt()",
                ),
            ],
        ),
    ];
    let findings = [
        kafka_outside_stream(&crates),
        graphql_and_http(&crates),
        io_in_entities(&crates),
        telemetry_alone(&crates),
        request_handlers(&crates),
    ]
    .concat();
    let expected = [
        "stream/src/relay.rs:2: uses `rskafka` (only stream/src/kafka* uses rskafka)",
        "subscribers/Cargo.toml:3: [dependencies] has async-graphql (only graphql",
        "subscribers/src/webhook.rs:1: uses `axum` (only graphql",
        "entities/Cargo.toml:3: [dependencies] has tokio, which is not in ENTITIES_DEPENDENCIES",
        "entities/src/lib.rs:1: uses std::fs (entities does no IO",
        "entities/src/lib.rs:2: reads the clock or entropy (`Utc::now`)",
        "entities/src/lib.rs:3: awaits (a query or other async IO)",
        "entities/src/lib.rs:3: writes to the terminal (`println!`)",
        "subscribers/src/lib.rs:1: uses `tracing_subscriber` (only telemetry installs",
        "graphql/src/schema/task.rs:1: uses sea_orm::EntityTrait (resolvers are thin",
        "graphql/src/schema/task.rs:1: uses `EntityTrait` (resolvers are thin",
        "graphql/src/service/task.rs:1: uses `kafka` (nothing publishes to a broker",
        "graphql/src/service/task.rs:1: uses `KafkaLog` (nothing publishes to a broker",
    ];
    for prefix in expected {
        assert!(
            findings.iter().any(|f| f.starts_with(prefix)),
            "no finding starts with {prefix:?}; findings:\n{}",
            findings.join("\n")
        );
    }
    assert_eq!(findings.len(), expected.len(), "{}", findings.join("\n"));
}

#[test]
fn the_stream_layering_check_names_a_part_that_uses_another() {
    let crates = [fake(
        "stream",
        "[dependencies]\n",
        &[
            (
                "stream/src/embedded.rs",
                "use crate::log::LogReader;\nuse crate::relay::Relay;",
            ),
            ("stream/src/consumer/apply.rs", "use crate::outbox::header;"),
            ("stream/src/outbox.rs", "fn f() { crate::consumer::run() }"),
            (
                "stream/src/dead_letters.rs",
                "use crate::consumer::Handler;",
            ),
        ],
    )];
    let findings = stream_layers(&crates);
    assert_eq!(findings.len(), 2, "{findings:#?}");
    assert!(
        findings[0].starts_with("stream/src/embedded.rs:2"),
        "{findings:#?}"
    );
    assert!(
        findings[1].starts_with("stream/src/outbox.rs:1"),
        "{findings:#?}"
    );
}
