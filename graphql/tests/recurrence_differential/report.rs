//! What the differential test found: how much it checked, and every mismatch, classified and
//! grouped so that one run reads as a list of distinct faults with a small example each.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::api::{Answer, Refusal};
use crate::oracle::{Case, Expected, SEED_VAR};

/// A refusal as "too many iterations" is a mismatch only when dateutil found what was asked
/// within this many periods (FREQ times INTERVAL) of wall-clock time after the due date; past
/// that it is tolerated (and counted).
const HORIZON_PERIODS: f64 = 10_000.0;

/// Examples shown per class of mismatch, the smallest cases first.
const EXAMPLES_PER_CLASS: usize = 3;

/// One disagreement between the API and the oracle.
struct Mismatch {
    class: String,
    case: Case,
    /// Which call, and where in the chain.
    what: String,
    expected: String,
    got: String,
}

/// Counts of what was checked, and the mismatches found.
#[derive(Default)]
pub struct Report {
    pub previews: usize,
    pub creates: usize,
    pub upcomings: usize,
    pub chains: usize,
    pub successors: usize,
    pub chain_ends: usize,
    mismatches: Vec<Mismatch>,
    tolerated: Vec<Mismatch>,
}

/// A date as the report shows it, `2027-03-28T01:30:00Z`.
pub fn text(date: &DateTime<Utc>) -> String {
    date.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn list(dates: &[DateTime<Utc>]) -> String {
    if dates.is_empty() {
        return "(none)".to_owned();
    }
    dates.iter().map(text).collect::<Vec<_>>().join(" ")
}

fn signed(d: chrono::Duration) -> String {
    let (sign, s) = if d < chrono::Duration::zero() {
        ("-", -d.num_seconds())
    } else {
        ("+", d.num_seconds())
    };
    match (s / 86_400, s % 86_400 / 3600, s % 3600 / 60) {
        (0, h, m) => format!("{sign}{h}h{m:02}m"),
        (days, h, m) => format!("{sign}{days}d{h}h{m:02}m"),
    }
}

/// What is wrong with dates `got` where `expected` were due (all strictly after `after`).
fn classify(expected: &[DateTime<Utc>], got: &[DateTime<Utc>], after: DateTime<Utc>) -> String {
    if got.windows(2).any(|w| w[0] == w[1]) {
        return "the same date twice".to_owned();
    }
    if got.windows(2).any(|w| w[0] > w[1]) {
        return "dates out of order".to_owned();
    }
    if got.iter().any(|d| *d <= after) {
        return "a date at or before the due date".to_owned();
    }
    // Compared up to the earlier of the two last dates, so that a date left out (which pulls
    // one more date into a list of `count`) reads as left out, not as a different list.
    let horizon = match (expected.last(), got.last()) {
        (Some(e), Some(g)) => *e.min(g),
        (None, _) => return "dates after the series ended".to_owned(),
        (_, None) => return "the series ends too early".to_owned(),
    };
    let missing = expected.iter().any(|d| *d <= horizon && !got.contains(d));
    let extra = got.iter().any(|d| *d <= horizon && !expected.contains(d));
    match (missing, extra) {
        (false, false) if got.len() < expected.len() => "the series ends too early".to_owned(),
        (false, false) => "dates after the series ended".to_owned(),
        (true, false) => "dates of the series left out".to_owned(),
        (false, true) => "dates that are not in the series".to_owned(),
        (true, true) => {
            let mut shifts: Vec<String> = got
                .iter()
                .zip(expected)
                .filter(|(g, e)| g != e)
                .map(|(g, e)| signed(*g - *e))
                .collect();
            shifts.dedup();
            match shifts.as_slice() {
                [one] if got.len() == expected.len() => format!("dates moved by {one}"),
                _ => "other dates".to_owned(),
            }
        }
    }
}

impl Report {
    /// Records a mismatch of `class` in the call `what` of `case`.
    pub fn mismatch(
        &mut self,
        case: &Case,
        class: &str,
        what: &str,
        expected: String,
        got: String,
    ) {
        self.mismatches.push(Mismatch {
            class: class.to_owned(),
            case: case.clone(),
            what: what.to_owned(),
            expected,
            got,
        });
    }

    /// Checks the answer of call `op` (`what`: where) against `expected`, the dates after
    /// `after`.
    pub fn dates(
        &mut self,
        case: &Case,
        op: &str,
        what: &str,
        expected: &[DateTime<Utc>],
        after: DateTime<Utc>,
        got: &Answer<Vec<DateTime<Utc>>>,
    ) {
        match got {
            Ok(got) if got == expected => {}
            Ok(got) => {
                let class = format!("{op}: {}", classify(expected, got, after));
                self.mismatch(case, &class, what, list(expected), list(got));
            }
            Err(refusal) => self.unexpected_refusal(case, op, what, list(expected), refusal),
        }
    }

    /// A refusal of a rule the oracle expands; tolerated when it is "too many iterations" and
    /// dateutil had to look further than [`HORIZON_PERIODS`].
    pub fn unexpected_refusal(
        &mut self,
        case: &Case,
        op: &str,
        what: &str,
        expected: String,
        refusal: &Refusal,
    ) {
        let span = match &case.expected {
            Expected::Series { span_periods, .. } => span_periods.unwrap_or(f64::INFINITY),
            Expected::Refused { .. } => f64::INFINITY,
        };
        let too_many = refusal.message.contains("too many iterations");
        let class = if too_many {
            format!(
                "{op}: refused as too expensive, though dateutil finds the dates within \
                 {HORIZON_PERIODS} periods"
            )
        } else {
            format!("{op}: refuses a rule that dateutil expands")
        };
        let mismatch = Mismatch {
            class,
            case: case.clone(),
            what: what.to_owned(),
            expected,
            got: format!("{refusal} [dateutil looked {span:.0} periods ahead]"),
        };
        if too_many && span > HORIZON_PERIODS {
            self.tolerated.push(mismatch);
        } else {
            self.mismatches.push(mismatch);
        }
    }

    /// Checks that call `op` refused the case's rule with BAD_USER_INPUT naming `field`.
    pub fn refused<T: std::fmt::Debug>(
        &mut self,
        case: &Case,
        op: &str,
        field: &str,
        got: &Answer<T>,
    ) {
        let Expected::Refused { refused, why } = &case.expected else {
            panic!("BUG: case {} is not a refusal", case.id);
        };
        let expected = format!("BAD_USER_INPUT ({field}): {why}");
        let class = match got {
            Ok(_) => format!("{op}: accepts a rule it must refuse ({refused})"),
            Err(r) if r.code != "BAD_USER_INPUT" => format!("{op}: refuses with {}", r.code),
            Err(r) if r.field.as_deref() != Some(field) => {
                format!("{op}: the refusal names {:?}, not {field}", r.field)
            }
            Err(_) => return,
        };
        let got = match got {
            Ok(value) => format!("accepted: {value:?}"),
            Err(r) => r.to_string(),
        };
        self.mismatch(case, &class, op, expected, got);
    }

    /// Checks the due date `got` of the successor of the task at `position`, due at `previous`;
    /// `expected` is the next element of the series. Returns whether it matched.
    pub fn successor(
        &mut self,
        case: &Case,
        position: usize,
        previous: DateTime<Utc>,
        expected: DateTime<Utc>,
        got: DateTime<Utc>,
    ) -> bool {
        if got == expected {
            return true;
        }
        let series = case.series().unwrap_or_default();
        let class = if got <= previous {
            "chain: a successor due at or before its predecessor"
        } else if series.contains(&got) {
            "chain: a successor skips dates of the series"
        } else if got < expected {
            "chain: a successor due before the next date, at a date not in the series"
        } else {
            "chain: a successor due at a date not in the series"
        };
        let what = format!(
            "successor of the task at position {position} (due {})",
            text(&previous)
        );
        self.mismatch(case, class, &what, text(&expected), text(&got));
        false
    }

    /// Prints what was checked and fails with the grouped mismatches, if any.
    pub fn finish(self, backend: &str, seed: u64, cases: &[Case]) {
        let mut families: BTreeMap<&str, usize> = BTreeMap::new();
        for case in cases {
            *families.entry(case.family.as_str()).or_default() += 1;
        }
        let families: Vec<String> = families.iter().map(|(f, n)| format!("{n} {f}")).collect();
        let summary = format!(
            "recurrence vs python-dateutil on {backend} (seed {seed}; {SEED_VAR}={seed} repeats \
             it): {} cases ({}); checked {} previews, {} createTask, {} upcoming, {} chains with \
             {} successors and {} series ends; {} mismatches; {} too-expensive refusals \
             tolerated (dateutil looked more than {HORIZON_PERIODS} periods ahead)",
            cases.len(),
            families.join(", "),
            self.previews,
            self.creates,
            self.upcomings,
            self.chains,
            self.successors,
            self.chain_ends,
            self.mismatches.len(),
            self.tolerated.len(),
        );
        for t in &self.tolerated {
            println!(
                "  tolerated: case {} {} in {}: {}",
                t.case.id, t.case.rule, t.case.zone, t.got
            );
        }
        if self.mismatches.is_empty() {
            println!("{summary}");
            return;
        }
        panic!("{summary}\n\n{}", grouped(self.mismatches));
    }
}

/// The mismatches by class, the most frequent class first, each with the case ids and the
/// smallest examples.
fn grouped(mismatches: Vec<Mismatch>) -> String {
    let mut classes: BTreeMap<String, Vec<Mismatch>> = BTreeMap::new();
    for m in mismatches {
        classes.entry(m.class.clone()).or_default().push(m);
    }
    let mut classes: Vec<(String, Vec<Mismatch>)> = classes.into_iter().collect();
    classes.sort_by_key(|(_, ms)| std::cmp::Reverse(ms.len()));
    let mut out = String::new();
    for (class, mut ms) in classes {
        let mut ids: Vec<usize> = ms.iter().map(|m| m.case.id).collect();
        ids.sort_unstable();
        ids.dedup();
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let _ = writeln!(out, "== {class}: {} (cases {})", ms.len(), ids.join(" "));
        ms.sort_by_key(|m| (m.case.rule.len() + m.case.count, m.case.id));
        for m in ms.iter().take(EXAMPLES_PER_CLASS) {
            let c = &m.case;
            let _ = writeln!(
                out,
                "  case {} ({}: {})\n    rule {}  zone {}  dueAt {} (local {})  count {}\n    \
                 {}\n      expected: {}\n      got:      {}",
                c.id,
                c.family,
                c.note,
                c.rule,
                c.zone,
                text(&c.due_at),
                c.local,
                c.count,
                m.what,
                m.expected,
                m.got
            );
        }
        out.push('\n');
    }
    out
}
