//! Unit tests for `recurrence`: parsing and normalisation in `parsing`, date expansion in
//! `expansion`. The helpers here build UTC instants and valid rules for both.

use super::*;
use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;

mod expansion;
mod parsing;

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .expect("valid UTC time")
}

fn local(zone: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    zone.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .expect("unambiguous local time")
        .with_timezone(&Utc)
}

fn rule(text: &str, zone: &str) -> RecurrenceRule {
    RecurrenceRule::parse(text, zone, RecurrenceAnchor::Schedule).expect("valid rule")
}
