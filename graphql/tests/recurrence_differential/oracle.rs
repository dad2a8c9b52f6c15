//! The cases and the dates they must give, from `scripts/interop/rrule_oracle.py`
//! (python-dateutil's `rrule` with `zoneinfo` over the tzdata package, IANA 2025b like
//! chrono-tz): run once per test, its JSON lines parsed into [`Case`]s.

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// The environment variable that fixes the seed (else a new one per run, printed).
pub const SEED_VAR: &str = "TASKSTREAM_RRULE_SEED";

/// The environment variable that sets how many cases a database gets.
pub const CASES_VAR: &str = "TASKSTREAM_RRULE_CASES";

/// Cases per database unless [`CASES_VAR`] says otherwise.
const DEFAULT_CASES: usize = 300;

/// How many of the cases walk a chain of successors.
const CHAINS: usize = 40;

/// One rule, zone and due date, with what the API must answer.
#[derive(Clone, Debug, Deserialize)]
pub struct Case {
    pub id: usize,
    /// `random`, `regression` (from the bug report), `refusal` or `boundary` (at most 96 dates a
    /// day, accepted).
    pub family: String,
    /// Where the due date lies (which transition, how far from it) or what the case is about.
    pub note: String,
    pub rule: String,
    pub zone: String,
    #[serde(rename = "dueAt")]
    pub due_at: DateTime<Utc>,
    /// The due date's wall-clock time in the zone, for the report.
    pub local: String,
    /// The `count` of `previewRecurrence` and `upcoming`.
    pub count: usize,
    /// How many tasks of the series the test walks by completing them (0: none).
    pub chain: usize,
    pub expected: Expected,
}

/// What the API must answer.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Expected {
    /// The series from its first element (the due date itself); `ended` says whether it holds
    /// every element the series has. `span_periods`: how far (in FREQ x INTERVAL of wall-clock
    /// time) the oracle had to look; `None` when it had to exhaust the rule.
    Series {
        series: Vec<DateTime<Utc>>,
        ended: bool,
        span_periods: Option<f64>,
    },
    /// BAD_USER_INPUT: `frequency` (SECONDLY, MINUTELY), `too_frequent` (more than 96 dates a
    /// day) or `never` (no date after the due date, ever).
    Refused { refused: String, why: String },
}

impl Case {
    /// The series, or `None` when the rule must be refused.
    pub fn series(&self) -> Option<&[DateTime<Utc>]> {
        match &self.expected {
            Expected::Series { series, .. } => Some(series),
            Expected::Refused { .. } => None,
        }
    }

    /// What `upcoming(count)` of the task at 1-based `position` in the series lists: the
    /// `count` elements after it, fewer where the series ends.
    pub fn upcoming_at(&self, position: usize) -> Vec<DateTime<Utc>> {
        let series = self.complete_to(position + self.count);
        series[position.min(series.len())..].to_vec()
    }

    /// The due date of the successor of the task at 1-based `position`; `None` when the series
    /// ends with that task.
    pub fn successor_of(&self, position: usize) -> Option<DateTime<Utc>> {
        self.complete_to(position + 1).get(position).copied()
    }

    /// The series up to `len` elements, checking that the oracle computed that far.
    fn complete_to(&self, len: usize) -> &[DateTime<Utc>] {
        let Expected::Series { series, ended, .. } = &self.expected else {
            panic!("BUG: case {} has no series", self.id);
        };
        assert!(
            series.len() >= len || *ended,
            "BUG: the oracle gave case {} only {} elements, {len} are needed",
            self.id,
            series.len()
        );
        &series[..len.min(series.len())]
    }
}

/// The seed: [`SEED_VAR`] if set, else a new one.
pub fn seed() -> u64 {
    match std::env::var(SEED_VAR) {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{SEED_VAR}={text} is not a number")),
        Err(_) => u64::from(rand::random::<u32>()),
    }
}

/// How many cases: [`CASES_VAR`] if set, else [`DEFAULT_CASES`].
pub fn case_count() -> usize {
    std::env::var(CASES_VAR).map_or(DEFAULT_CASES, |text| {
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{CASES_VAR}={text} is not a number"))
    })
}

/// Runs the oracle for `seed` and returns its cases. Python reads zones from the tzdata
/// package only (`PYTHONTZPATH` empty), never from the machine's zoneinfo.
pub async fn cases(seed: u64, count: usize) -> Vec<Case> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scripts/interop/rrule_oracle.py"
    );
    let args = [
        script.to_owned(),
        format!("--seed={seed}"),
        format!("--cases={count}"),
        format!("--chains={CHAINS}"),
    ];
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .args(&args)
            .env("PYTHONTZPATH", "")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output()
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| {
        panic!(
            "cannot run python3 ({e}): the recurrence oracle needs python3 with python-dateutil \
             2.9.0.post0 and tzdata 2025.2; run scripts/test, which installs them"
        )
    });
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the recurrence oracle {script} failed ({}):\n{stderr}",
        output.status
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| {
                panic!("the oracle printed a line this test cannot read ({e}): {line}")
            })
        })
        .collect()
}
