//! Task input as the client sent it (`NewTask`, `TaskPatch`, recurrences and reminders) and its
//! validation, plus the preview of a recurrence that is not saved yet. Part of `task`, which
//! re-exports the public items.
//!
//! What it is not: it writes nothing; the only database read is the caller's time zone, the
//! default when a recurrence names none.

use chrono::{DateTime, Utc};
use entities::limits;
use entities::priority::Priority;
use entities::recurrence::{MAX_UPCOMING, RecurrenceAnchor, RecurrenceRule};
use entities::reminder_offset::ReminderSpec;
use entities::task;
use sea_orm::DatabaseConnection;

use super::task::TaskChangeContext;
use super::user;
use crate::error::{ApiError, ApiResult};

/// Recurrence as the client sent it (not yet validated).
#[derive(Clone, Debug)]
pub struct RecurrenceInput {
    pub rule: String,
    pub timezone: Option<String>,
    pub anchor: RecurrenceAnchor,
}

/// A reminder as the client sent it: exactly one field must be set.
#[derive(Clone, Copy, Debug)]
pub struct ReminderInput {
    pub minutes_before_due: Option<i32>,
    pub at: Option<DateTime<Utc>>,
}

/// `createTask` input.
#[derive(Clone, Debug, Default)]
pub struct NewTask {
    pub title: String,
    pub description: Option<String>,
    pub priority: Priority,
    pub due_at: Option<DateTime<Utc>>,
    pub tags: Option<Vec<String>>,
    pub recurrence: Option<RecurrenceInput>,
    pub reminders: Option<Vec<ReminderInput>>,
}

/// `updateTask` input: `None` = absent (unchanged), `Some(None)` = null (clear).
#[derive(Clone, Debug, Default)]
pub struct TaskPatch {
    pub title: Option<Option<String>>,
    pub description: Option<Option<String>>,
    pub priority: Option<Option<Priority>>,
    pub due_at: Option<Option<DateTime<Utc>>>,
    pub tags: Option<Option<Vec<String>>>,
    pub recurrence: Option<Option<RecurrenceInput>>,
    pub reminders: Option<Option<Vec<ReminderInput>>>,
    pub expected_version: Option<i32>,
}

impl TaskPatch {
    pub(super) fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.description.is_none()
            && self.priority.is_none()
            && self.due_at.is_none()
            && self.tags.is_none()
            && self.recurrence.is_none()
            && self.reminders.is_none()
    }
}

/// The first `count` dates (1 to [`MAX_UPCOMING`]) of a recurrence that is not saved yet,
/// strictly after `due_at`: what `Recurrence.upcoming` returns once a task with this due date
/// and recurrence is saved (the same parsing, zone default and due-date precision). Reads the
/// caller's settings only when the zone is missing; writes nothing.
pub async fn preview_recurrence(
    db: &DatabaseConnection,
    ctx: &TaskChangeContext,
    input: &RecurrenceInput,
    due_at: DateTime<Utc>,
    count: i32,
) -> ApiResult<Vec<DateTime<Utc>>> {
    let count = usize::try_from(count)
        .ok()
        .filter(|n| (1..=MAX_UPCOMING).contains(n))
        .ok_or_else(|| {
            ApiError::invalid(
                "count",
                format!("count must be between 1 and {MAX_UPCOMING}"),
            )
        })?;
    let default_tz = match &input.timezone {
        Some(_) => user::DEFAULT_TIMEZONE.to_owned(),
        None => user_timezone(db, ctx).await?,
    };
    validate_date("dueAt", due_at)?;
    let rule = parse_recurrence("recurrence", input, &default_tz)?;
    let due_at = entities::to_db_precision(due_at);
    expand_off_the_runtime(move || rule.upcoming(due_at, count))
        .await?
        .map_err(|e| ApiError::invalid("recurrence.rule", format!("recurrence.rule: {e}")))
}

/// Runs a recurrence expansion on the blocking pool: an expansion is bounded (see
/// [`RecurrenceRule::following`]) but can take milliseconds of CPU, which must not stall the
/// async workers (and with them the request timeout and other users' requests).
pub async fn expand_off_the_runtime<T: Send + 'static>(
    expand: impl FnOnce() -> T + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(expand)
        .await
        .map_err(|e| ApiError::internal(anyhow::anyhow!("recurrence expansion failed: {e}")))
}

/// Checks that the series of `rule` starting at `due_at` can be expanded, exactly as
/// `previewRecurrence` expands it, so that a rule is accepted by `createTask` and
/// `updateTask` if and only if the preview shows its dates; errors name `field`.
pub(super) async fn check_series_expands(
    field: &str,
    rule: &RecurrenceRule,
    due_at: DateTime<Utc>,
) -> ApiResult<()> {
    let rule = rule.clone();
    expand_off_the_runtime(move || rule.upcoming(due_at, 1))
        .await?
        .map(|_| ())
        .map_err(|e| ApiError::invalid(field, format!("{field}: {e}")))
}

/// The recurrence stored on `task`, if it has one that still parses.
pub(super) fn stored_rule(task: &task::Model) -> Option<RecurrenceRule> {
    let (Some(rule), Some(zone), Some(anchor)) = (
        &task.recurrence_rule,
        &task.recurrence_timezone,
        &task.recurrence_anchor,
    ) else {
        return None;
    };
    RecurrenceRule::parse(rule, zone, *anchor).ok()
}

pub(super) fn bad(field: &str, msg: String) -> ApiError {
    ApiError::invalid(field, msg)
}

pub(super) fn validate_title(value: &str) -> ApiResult<String> {
    limits::required_text("input.title", value, limits::MAX_TITLE_CHARS)
        .map_err(ApiError::at("input.title"))
}

pub(super) fn validate_description(value: &str) -> ApiResult<String> {
    limits::optional_text("input.description", value, limits::MAX_DESCRIPTION_CHARS)
        .map_err(ApiError::at("input.description"))
}

/// Checks a date-time input that is stored: in the accepted range
/// ([`limits::date_in_range`]); `field` names it. Digits below the microsecond are cut when it
/// is stored ([`entities::to_db_precision`]), as clients that send nanoseconds expect; only
/// filter bounds, where a cut would change which tasks match, refuse them.
pub(super) fn validate_date(field: &str, value: DateTime<Utc>) -> ApiResult<()> {
    limits::date_in_range(field, value).map_err(ApiError::at(field))
}

pub(super) fn validate_reminders(inputs: &[ReminderInput]) -> ApiResult<Vec<ReminderSpec>> {
    if inputs.len() > limits::MAX_REMINDERS_PER_TASK {
        return Err(bad(
            "input.reminders",
            format!(
                "input.reminders has {} entries; the limit is {}",
                inputs.len(),
                limits::MAX_REMINDERS_PER_TASK
            ),
        ));
    }
    inputs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let field = format!("input.reminders[{i}]");
            if let Some(at) = r.at {
                validate_date(&format!("{field}.at"), at)?;
            }
            ReminderSpec::from_input(&field, r.minutes_before_due, r.at)
                .map_err(ApiError::at(&field))
        })
        .collect()
}

/// Parses a recurrence; the zone defaults to the user's. Error messages name `field.rule` or
/// `field.timezone`, where `field` is the argument path (`input.recurrence` in mutations).
fn parse_recurrence(
    field: &str,
    input: &RecurrenceInput,
    default_timezone: &str,
) -> ApiResult<RecurrenceRule> {
    limits::no_nul(&format!("{field}.rule"), &input.rule)
        .map_err(ApiError::at(format!("{field}.rule")))?;
    let timezone = input.timezone.as_deref().unwrap_or(default_timezone);
    limits::no_nul(&format!("{field}.timezone"), timezone)
        .map_err(ApiError::at(format!("{field}.timezone")))?;
    RecurrenceRule::parse(&input.rule, timezone, input.anchor).map_err(|e| match e {
        entities::recurrence::RecurrenceError::UnknownTimezone(_) => bad(
            &format!("{field}.timezone"),
            format!("{field}.timezone: {e}"),
        ),
        _ => bad(&format!("{field}.rule"), format!("{field}.rule: {e}")),
    })
}

/// Validates a recurrence against the task's (final) due date; the zone defaults to the
/// user's. The series must expand from that due date (see [`check_series_expands`]).
pub(super) async fn validate_recurrence(
    input: &RecurrenceInput,
    due_at: Option<DateTime<Utc>>,
    default_timezone: &str,
) -> ApiResult<RecurrenceRule> {
    let rule = parse_recurrence("input.recurrence", input, default_timezone)?;
    let Some(due_at) = due_at else {
        return Err(bad(
            "input.recurrence",
            "input.recurrence requires input.dueAt: the due date starts the series".to_owned(),
        ));
    };
    check_series_expands("input.recurrence.rule", &rule, due_at).await?;
    Ok(rule)
}

pub(super) async fn user_timezone(
    db: &DatabaseConnection,
    ctx: &TaskChangeContext,
) -> ApiResult<String> {
    Ok(user::find_or_default(db, &ctx.owner_id, ctx.now)
        .await?
        .timezone)
}
