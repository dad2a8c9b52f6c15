//! The feed's body: one `VCALENDAR` (RFC 5545) with a `VTODO` per task and a `VTIMEZONE` per
//! zone that a repeating task uses. Pure: the tasks, their tags and reminders come in, the
//! text goes out, the same text for the same rows (the ETag is its hash).
//!
//! A task becomes:
//! - `UID` `<task id>@taskstream` (stable across edits), `SEQUENCE` its version − 1 (RFC 5545
//!   starts at 0, a new task has version 1), `DTSTAMP` and `LAST-MODIFIED` its `updatedAt`
//!   (a published feed has no `METHOD`, so `DTSTAMP` is the last revision, §3.8.7.2),
//!   `CREATED`, `SUMMARY`, `DESCRIPTION` (when not empty), `STATUS:NEEDS-ACTION`;
//! - `PRIORITY` from [`ical_priority`] (none for priority NONE), `CATEGORIES` its tags;
//! - a one-off task: `DUE` in UTC. A repeating one: `DTSTART` and `DUE` at the occurrence's
//!   wall-clock time with `TZID` = its zone (the rule's wall-clock time, which §3.3.5 reads as
//!   the API does, so a time in a daylight-saving gap comes out as the task's due date), and
//!   the stored `RRULE` (see [`rule_from`]);
//! - a `VALARM` (`ACTION:DISPLAY`) per pending reminder: `TRIGGER;RELATED=END:-PT<n>M` for
//!   one relative to the due date (`END` is `DUE` in a `VTODO`, §3.8.6.3), an absolute
//!   `TRIGGER;VALUE=DATE-TIME` otherwise.

use std::collections::BTreeMap;

use chrono::{DateTime, SubsecRound, Utc};
use chrono_tz::Tz;
use entities::priority::Priority;
use entities::reminder_offset::ReminderStatus;
use entities::{reminder, tag, task};

use super::ics::{self, Writer};
use super::vtimezone;

/// The feed's `PRODID`.
pub const PRODID: &str = "-//Taskstream//Calendar feed//EN";

/// How often a calendar should fetch the feed again (`REFRESH-INTERVAL`, RFC 7986, and
/// `X-PUBLISHED-TTL`, which Apple and Microsoft read): a quarter of an hour keeps a
/// subscription fresh, and is far below the rate limit (see [`super::rate_limit`]).
pub const REFRESH_INTERVAL: &str = "PT15M";

/// One task of the feed, with its tags (by name) and its reminders.
#[derive(Clone, Copy, Debug)]
pub struct Entry<'a> {
    pub task: &'a task::Model,
    pub tags: &'a [tag::Model],
    pub reminders: &'a [reminder::Model],
}

/// The feed `name`'s calendar of `entries` (in the order given).
pub fn render(name: &str, entries: &[Entry<'_>]) -> String {
    let mut w = Writer::new();
    w.begin("VCALENDAR");
    w.property("VERSION", &[], "2.0");
    w.property("PRODID", &[], PRODID);
    w.property("CALSCALE", &[], "GREGORIAN");
    w.text("NAME", name);
    w.text("X-WR-CALNAME", name);
    w.property(
        "REFRESH-INTERVAL",
        &[("VALUE", "DURATION")],
        REFRESH_INTERVAL,
    );
    w.property("X-PUBLISHED-TTL", &[], REFRESH_INTERVAL);
    for (zone, earliest, latest) in zones(entries).into_values() {
        vtimezone::write(&mut w, zone, vtimezone::window(earliest, latest));
    }
    for entry in entries {
        todo(&mut w, entry);
    }
    w.end("VCALENDAR");
    w.finish()
}

/// RFC 5545's `PRIORITY` (§3.8.1.9: 1 highest, 9 lowest, 0 undefined) of a task priority:
/// URGENT 1, HIGH 3, MEDIUM 5 (the middle, "medium" in a three-level client), LOW 9; NONE has
/// no `PRIORITY` (undefined).
pub fn ical_priority(priority: Priority) -> Option<u8> {
    match priority {
        Priority::None => None,
        Priority::Low => Some(9),
        Priority::Medium => Some(5),
        Priority::High => Some(3),
        Priority::Urgent => Some(1),
    }
}

/// The `RRULE` of the occurrence at 1-based `index` of a series with `rule` (the stored,
/// normalised body). The rule is the stored one, except that a `COUNT` counts the occurrences
/// left from this one (`COUNT - index + 1`), since a calendar counts `COUNT` from the
/// `DTSTART` it is given, which here is this occurrence. `None` when none are left.
pub fn rule_from(rule: &str, index: i32) -> Option<String> {
    let parts: Option<Vec<String>> = rule
        .split(';')
        .map(|part| match part.split_once('=') {
            Some(("COUNT", n)) => {
                let count: i64 = n.parse().ok()?;
                let left = count - i64::from(index.max(1)) + 1;
                (left >= 1).then(|| format!("COUNT={left}"))
            }
            _ => Some(part.to_owned()),
        })
        .collect();
    parts.map(|p| p.join(";"))
}

/// The zone of a repeating task, when it has one that chrono-tz knows.
fn zone_of(task: &task::Model) -> Option<Tz> {
    task.recurrence_rule.as_ref()?;
    entities::recurrence::parse_timezone(task.recurrence_timezone.as_deref()?).ok()
}

/// Each zone the repeating entries use (by name, so the order is stable), with their earliest
/// and latest due dates.
fn zones(entries: &[Entry<'_>]) -> BTreeMap<&'static str, (Tz, DateTime<Utc>, DateTime<Utc>)> {
    let mut zones: BTreeMap<&'static str, (Tz, DateTime<Utc>, DateTime<Utc>)> = BTreeMap::new();
    for entry in entries {
        let (Some(zone), Some(due)) = (zone_of(entry.task), entry.task.due_at) else {
            continue;
        };
        zones
            .entry(zone.name())
            .and_modify(|(_, earliest, latest)| {
                *earliest = (*earliest).min(due);
                *latest = (*latest).max(due);
            })
            .or_insert((zone, due, due));
    }
    zones
}

fn todo(w: &mut Writer, entry: &Entry<'_>) {
    let task = entry.task;
    w.begin("VTODO");
    w.property("UID", &[], &format!("{}@taskstream", task.id));
    w.property("DTSTAMP", &[], &ics::utc(task.updated_at));
    w.property("CREATED", &[], &ics::utc(task.created_at));
    w.property("LAST-MODIFIED", &[], &ics::utc(task.updated_at));
    w.property("SEQUENCE", &[], &(task.version - 1).max(0).to_string());
    w.text("SUMMARY", &task.title);
    if !task.description.is_empty() {
        w.text("DESCRIPTION", &task.description);
    }
    w.property("STATUS", &[], "NEEDS-ACTION");
    if let Some(priority) = ical_priority(task.priority) {
        w.property("PRIORITY", &[], &priority.to_string());
    }
    if !entry.tags.is_empty() {
        let names: Vec<&str> = entry.tags.iter().map(|t| t.name.as_str()).collect();
        w.text_list("CATEGORIES", &names);
    }
    if let Some(due) = task.due_at {
        let due = due.trunc_subsecs(0);
        match (zone_of(task), task.recurrence_rule.as_deref()) {
            (Some(zone), Some(rule)) => {
                // The wall-clock time the rule gave this occurrence (see
                // `entities::recurrence::Occurrence::stored`).
                let local = task.occurrence_local.map_or_else(
                    || due.with_timezone(&zone).naive_local(),
                    |l| l.trunc_subsecs(0),
                );
                let local = ics::local(local);
                w.property("DTSTART", &[("TZID", zone.name())], &local);
                w.property("DUE", &[("TZID", zone.name())], &local);
                if let Some(rule) = rule_from(rule, task.occurrence_index.unwrap_or(1)) {
                    w.property("RRULE", &[], &rule);
                }
            }
            _ => w.property("DUE", &[], &ics::utc(due)),
        }
    }
    for reminder in entry.reminders {
        if reminder.status != ReminderStatus::Pending {
            continue;
        }
        let trigger = match (reminder.minutes_before_due, reminder.at) {
            (Some(minutes), _) => (
                "RELATED",
                "END",
                ics::minutes_before(u32::try_from(minutes).unwrap_or(0)),
            ),
            (None, Some(at)) => ("VALUE", "DATE-TIME", ics::utc(at)),
            (None, None) => continue,
        };
        w.begin("VALARM");
        w.property("ACTION", &[], "DISPLAY");
        w.text("DESCRIPTION", &task.title);
        w.property("TRIGGER", &[(trigger.0, trigger.1)], &trigger.2);
        w.end("VALARM");
    }
    w.end("VTODO");
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use uuid::Uuid;

    fn task(title: &str) -> task::Model {
        let at = Utc.with_ymd_and_hms(2030, 1, 2, 3, 4, 5).unwrap();
        task::Model {
            id: Uuid::nil(),
            owner_id: "alice".into(),
            title: title.into(),
            description: String::new(),
            priority: Priority::None,
            completed: false,
            completed_at: None,
            due_at: Some(Utc.with_ymd_and_hms(2030, 3, 4, 8, 0, 0).unwrap()),
            recurrence_rule: None,
            recurrence_timezone: None,
            recurrence_anchor: None,
            series_id: None,
            occurrence_index: None,
            occurrence_local: None,
            series_start_local: None,
            generated_from_task_id: None,
            version: 3,
            created_at: at,
            updated_at: at,
            search_title: String::new(),
            search_body: String::new(),
            title_key: String::new(),
        }
    }

    fn unfolded(text: &str) -> String {
        text.replace("\r\n ", "")
    }

    #[test]
    fn a_one_off_task_is_a_vtodo_due_in_utc() {
        let mut t = task("Pay rent; call Bob, then\nrelax \\o/");
        t.priority = Priority::High;
        let text = render(
            "Work",
            &[Entry {
                task: &t,
                tags: &[],
                reminders: &[],
            }],
        );
        assert!(text.starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:"));
        assert!(text.ends_with("END:VTODO\r\nEND:VCALENDAR\r\n"));
        assert!(!text.contains("VTIMEZONE"));
        let body = unfolded(&text);
        for line in [
            "UID:00000000-0000-0000-0000-000000000000@taskstream",
            "SEQUENCE:2",
            "DTSTAMP:20300102T030405Z",
            "SUMMARY:Pay rent\\; call Bob\\, then\\nrelax \\\\o/",
            "PRIORITY:3",
            "DUE:20300304T080000Z",
            "STATUS:NEEDS-ACTION",
            "X-WR-CALNAME:Work",
        ] {
            assert!(
                body.contains(&format!("\r\n{line}\r\n")),
                "{line} in {body}"
            );
        }
        assert!(!body.contains("DTSTART"));
        assert!(!body.contains("DESCRIPTION"));
    }

    #[test]
    fn a_repeating_task_is_due_at_its_wall_clock_time_in_its_zone() {
        let mut t = task("Water");
        t.recurrence_rule = Some("FREQ=DAILY;COUNT=10".into());
        t.recurrence_timezone = Some("Europe/Berlin".into());
        t.occurrence_index = Some(3);
        // In the gap of 31 March 2030: the rule said 02:30, due 01:30 UTC.
        t.due_at = Some(Utc.with_ymd_and_hms(2030, 3, 31, 1, 30, 0).unwrap());
        t.occurrence_local = Some(
            chrono::NaiveDate::from_ymd_opt(2030, 3, 31)
                .unwrap()
                .and_hms_opt(2, 30, 0)
                .unwrap(),
        );
        let body = unfolded(&render(
            "f",
            &[Entry {
                task: &t,
                tags: &[],
                reminders: &[],
            }],
        ));
        assert!(body.contains("\r\nDTSTART;TZID=Europe/Berlin:20300331T023000\r\n"));
        assert!(body.contains("\r\nDUE;TZID=Europe/Berlin:20300331T023000\r\n"));
        assert!(body.contains("\r\nRRULE:FREQ=DAILY;COUNT=8\r\n"), "{body}");
        assert!(body.contains("BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\n"));
        // The VTIMEZONE comes before the VTODO that names it.
        assert!(body.find("BEGIN:VTIMEZONE") < body.find("BEGIN:VTODO"));
    }

    #[test]
    fn pending_reminders_become_alarms() {
        let t = task("Call");
        let reminder = |minutes: Option<i32>, at: Option<DateTime<Utc>>, status| reminder::Model {
            id: Uuid::nil(),
            task_id: Uuid::nil(),
            owner_id: "alice".into(),
            minutes_before_due: minutes,
            at,
            fire_at: None,
            status,
            created_at: t.created_at,
            fired_at: None,
        };
        let reminders = [
            reminder(Some(30), None, ReminderStatus::Pending),
            reminder(
                None,
                Some(Utc.with_ymd_and_hms(2030, 3, 1, 9, 0, 0).unwrap()),
                ReminderStatus::Pending,
            ),
            reminder(Some(5), None, ReminderStatus::Fired),
        ];
        let body = unfolded(&render(
            "f",
            &[Entry {
                task: &t,
                tags: &[],
                reminders: &reminders,
            }],
        ));
        assert_eq!(body.matches("BEGIN:VALARM").count(), 2);
        assert!(body.contains("\r\nTRIGGER;RELATED=END:-PT30M\r\n"));
        assert!(body.contains("\r\nTRIGGER;VALUE=DATE-TIME:20300301T090000Z\r\n"));
        assert!(!body.contains("-PT5M"));
    }

    #[test]
    fn priorities_map_to_rfc_5545_levels() {
        let levels: Vec<Option<u8>> = Priority::ALL.iter().map(|p| ical_priority(*p)).collect();
        assert_eq!(levels, [None, Some(9), Some(5), Some(3), Some(1)]);
    }

    #[test]
    fn count_is_what_is_left_from_this_occurrence() {
        assert_eq!(
            rule_from("FREQ=DAILY;COUNT=5", 1).as_deref(),
            Some("FREQ=DAILY;COUNT=5")
        );
        assert_eq!(
            rule_from("FREQ=DAILY;COUNT=5", 5).as_deref(),
            Some("FREQ=DAILY;COUNT=1")
        );
        assert_eq!(rule_from("FREQ=DAILY;COUNT=5", 6), None);
        assert_eq!(
            rule_from("FREQ=WEEKLY;UNTIL=20301231T000000Z;BYDAY=MO", 9).as_deref(),
            Some("FREQ=WEEKLY;UNTIL=20301231T000000Z;BYDAY=MO")
        );
    }
}
