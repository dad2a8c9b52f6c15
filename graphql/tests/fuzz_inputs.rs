//! Seeded random hostile input for the two parsers that take arbitrary text: GraphQL documents
//! (through the whole schema, document guard first) and RRULEs. Each case must end with data or
//! a coded error, never a panic or a stack overflow, and within a bound far above normal
//! (an exponential blow-up would take minutes, not seconds). The seeds are fixed so that a
//! failure names a reproducible case.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use entities::recurrence::{RecurrenceAnchor, RecurrenceRule};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Far above what any bounded case takes (milliseconds), far below an exponential one.
const BOUND: Duration = Duration::from_secs(5);

const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    "\"",
    "\"\"\"",
    "\\",
    "#",
    "\n",
    "...",
    "query",
    "mutation",
    "subscription",
    "fragment F on Query",
    "fragment G on Task",
    "...F",
    "...G",
    "...on Query",
    "me",
    "id",
    "tasks",
    "task(id: \"x\")",
    "nodes",
    "title",
    "tags",
    "name",
    "totalCount",
    "__schema",
    "__type(name: \"Task\")",
    "types",
    "fields",
    "ofType",
    "kind",
    "a:",
    "b:",
    ":",
    "$v",
    "($v: [String!])",
    "@skip(if: true)",
    "@include(if: $v)",
    "\"x\"",
    "1",
    "-1",
    "1.5e9",
    "true",
    "null",
    "é",
    "\u{0}",
    "\u{1F600}",
    "filter:",
    "tags: { any:",
    "not:",
    "or:",
    "createTask(input: { title: \"t\" })",
    "previewRecurrence(recurrence: { rule: \"FREQ=DAILY\" }, dueAt: \"2030-01-01T00:00:00Z\")",
    ",",
    " ",
    "=",
    "!",
    "|",
    "&",
];

fn random_document(rng: &mut StdRng) -> String {
    let mut doc = String::new();
    let pieces = rng.gen_range(1..200);
    for _ in 0..pieces {
        match rng.gen_range(0..20) {
            // Runs of one opening bracket: the nesting attack.
            0 => {
                doc.push_str(&["[", "{", "("][rng.gen_range(0..3)].repeat(rng.gen_range(1..3_000)))
            }
            // A balanced deep selection.
            1 => {
                let depth = rng.gen_range(1..40);
                doc.push_str(&"me { ".repeat(depth));
                doc.push_str("id");
                doc.push_str(&" }".repeat(depth));
            }
            _ => doc.push_str(TOKENS[rng.gen_range(0..TOKENS.len())]),
        }
        doc.push(' ');
    }
    doc
}

#[tokio::test]
async fn random_hostile_documents_end_in_data_or_a_coded_error_within_the_bound() {
    let t = support::TestDb::migrated(support::Backend::Sqlite)
        .await
        .unwrap();
    let app = support::TestApp::on(&t);
    let mut rng = StdRng::seed_from_u64(0x7a5c_57e4);
    for case in 0..600 {
        let doc = random_document(&mut rng);
        let started = Instant::now();
        let response = app.exec("fuzz", &doc, serde_json::json!({})).await;
        assert!(
            started.elapsed() < BOUND,
            "case {case} took {:?}: {doc:?}",
            started.elapsed()
        );
        for error in &response.errors {
            assert!(
                error
                    .extensions
                    .as_ref()
                    .is_some_and(|e| e.get("code").is_some()),
                "case {case}: an error without a code: {error:?}"
            );
        }
    }
}

#[tokio::test]
async fn random_hostile_variables_end_in_data_or_a_coded_error_within_the_bound() {
    let t = support::TestDb::migrated(support::Backend::Sqlite)
        .await
        .unwrap();
    let app = support::TestApp::on(&t);
    let mut rng = StdRng::seed_from_u64(0x0dd_ba11);
    let query = "query Q($f: TaskFilter, $t: [String!]) { tasks(filter: $f) { totalCount } \
                 t: __typename }";
    for case in 0..200 {
        // Nest a filter or a list to a random depth (serde_json itself refuses past 128).
        let depth = rng.gen_range(1..120);
        let mut filter = serde_json::json!({ "tags": { "any": ["x"] } });
        let mut list = serde_json::json!("x");
        for _ in 0..depth {
            filter = match rng.gen_range(0..3) {
                0 => serde_json::json!({ "not": filter }),
                1 => serde_json::json!({ "or": [filter] }),
                _ => serde_json::json!({ "and": [filter, {}] }),
            };
            list = serde_json::json!([list]);
        }
        let started = Instant::now();
        let response = app
            .exec("fuzz", query, serde_json::json!({ "f": filter, "t": list }))
            .await;
        assert!(started.elapsed() < BOUND, "case {case} (depth {depth})");
        assert!(
            !response.errors.is_empty(),
            "case {case}: nesting {depth} was accepted"
        );
    }
}

const RULE_PARTS: &[&str] = &[
    "FREQ=YEARLY",
    "FREQ=MONTHLY",
    "FREQ=WEEKLY",
    "FREQ=DAILY",
    "FREQ=HOURLY",
    "FREQ=MINUTELY",
    "FREQ=SECONDLY",
    "FREQ=",
    "INTERVAL=1",
    "INTERVAL=7",
    "INTERVAL=1000",
    "INTERVAL=-1",
    "INTERVAL=99999999999",
    "COUNT=3",
    "COUNT=0",
    "COUNT=100000",
    "UNTIL=20300101T000000Z",
    "UNTIL=19000101",
    "UNTIL=99991231T235959Z",
    "BYDAY=MO,TU",
    "BYDAY=-1FR",
    "BYDAY=53MO",
    "BYDAY=+5SU,-5MO",
    "BYDAY=XX",
    "BYMONTHDAY=31",
    "BYMONTHDAY=-1",
    "BYMONTHDAY=30,31",
    "BYMONTHDAY=0",
    "BYMONTH=2",
    "BYMONTH=13",
    "BYYEARDAY=366",
    "BYYEARDAY=-366",
    "BYWEEKNO=53",
    "BYWEEKNO=-53",
    "BYSETPOS=-1",
    "BYSETPOS=366",
    "BYHOUR=0,12,23",
    "BYHOUR=24",
    "BYMINUTE=0,59",
    "BYSECOND=60",
    "WKST=SU",
    "WKST=XX",
    "DTSTART=20300101",
    "RRULE:",
    "X-FOO=1",
    ";",
    ";;",
    "=",
    "\u{0}",
    "é",
    " ",
];

const ZONES: &[&str] = &[
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Atlantic/Azores",
    "America/Santiago",
    "Pacific/Chatham",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "Nope/Nowhere",
    "",
];

#[test]
fn random_hostile_rrules_are_refused_or_expanded_within_the_bound() {
    let mut rng = StdRng::seed_from_u64(0x5545);
    let mut expanded = 0;
    for case in 0..1_500 {
        let parts = rng.gen_range(0..6);
        // Mostly a supported FREQ first, so that many cases get as far as expansion.
        let freq = if rng.gen_bool(0.8) {
            RULE_PARTS[rng.gen_range(0..5)]
        } else {
            RULE_PARTS[rng.gen_range(0..RULE_PARTS.len())]
        };
        let rule: Vec<&str> = std::iter::once(freq)
            .chain((0..parts).map(|_| RULE_PARTS[rng.gen_range(0..RULE_PARTS.len())]))
            .collect();
        let rule = rule.join(";");
        let zone = ZONES[rng.gen_range(0..ZONES.len())];
        let due = Utc
            .timestamp_opt(rng.gen_range(0..4_000_000_000), 0)
            .single()
            .unwrap();
        let started = Instant::now();
        if let Ok(parsed) = RecurrenceRule::parse(&rule, zone, RecurrenceAnchor::Schedule) {
            // Refusing an expensive expansion is fine; panicking or running away is not.
            if parsed.upcoming(due, rng.gen_range(1..=50)).is_ok() {
                expanded += 1;
            }
        }
        assert!(
            started.elapsed() < BOUND,
            "case {case} took {:?}: {rule:?} in {zone:?} from {due}",
            started.elapsed()
        );
    }
    assert!(
        expanded > 150,
        "the generator rarely made a valid rule ({expanded})"
    );
}
