//! Retention: one task that bounds the growth of every table nothing else trims, in embedded
//! and distributed mode alike. Started by the gateway (both modes) and by `taskstream relay`;
//! several at once only repeat work.
//!
//! Every `RETENTION_INTERVAL_SECS` it runs one pass ([`prune_once`]): for each table whose
//! setting is not 0, it computes a cutoff from the clock and deletes what is past it and
//! provably unneeded, [`stream::retention::BATCH_ROWS`] rows per statement, so no statement
//! holds a lock for long. Each table's deletions are logged and counted in
//! `taskstream_retention_deleted_rows_total{table}`. The log's tables follow the rules in
//! [`stream::retention`]; the subscribers' tables here:
//! - `webhook_deliveries`: `DELIVERED` and `FAILED` rows last changed before the cutoff,
//!   except a `FAILED` one whose dead letter is still `PARKED` (a replay re-arms that row);
//! - `notifications`: rows read before the cutoff (unread ones stay);
//! - `idempotency_keys`: keys past their own expiry (`IDEMPOTENCY_KEY_TTL_HOURS`).
//!
//! It deliberately keeps no state between passes: a pass reads what to delete from the
//! database, so a restart, a second instance or a changed setting needs no bookkeeping.

use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Args;
use entities::{dead_letter, notification, webhook_delivery};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use stream::lifecycle::CancellationToken;
use stream::retention::{LogMode, Pruned, in_batches};
use uuid::Uuid;

/// Retention settings (`taskstream --help`). Fractions are allowed (`0.5` hours); 0 keeps the
/// table's rows forever.
#[derive(Debug, Clone, Args)]
pub struct RetentionArgs {
    /// Hours an event stays in the outbox at least. Embedded mode (the outbox is the event
    /// log): an older event is deleted only once every consumer of its topic has processed
    /// it, and the newest event of each topic always stays, so `taskstream events tail` shows
    /// this much history. Distributed mode: published rows older than this are deleted (the
    /// broker keeps the history); unpublished rows are never deleted. 0 keeps every row.
    #[arg(long, env = "RETENTION_OUTBOX_HOURS", default_value_t = 168.0, value_parser = non_negative)]
    pub retention_outbox_hours: f64,

    /// Hours a consumer remembers an event id it processed, to skip a redelivery. Entries
    /// whose event could still reach the consumer again (still ahead of its offset, or not
    /// yet marked published by the relay) are kept whatever their age; this horizon is the
    /// margin on top. 0 keeps every entry.
    #[arg(long, env = "RETENTION_PROCESSED_EVENTS_HOURS", default_value_t = 168.0, value_parser = non_negative)]
    pub retention_processed_events_hours: f64,

    /// Days a finished webhook delivery (DELIVERED, or FAILED once its dead letter is no
    /// longer parked) stays in the delivery log, for support questions. Pending deliveries
    /// are never deleted. 0 keeps every delivery.
    #[arg(long, env = "RETENTION_WEBHOOK_DELIVERIES_DAYS", default_value_t = 30.0, value_parser = non_negative)]
    pub retention_webhook_deliveries_days: f64,

    /// Days a DISCARDED or REPLAYED dead letter stays for the record after its last change.
    /// PARKED dead letters are never deleted: they wait for `taskstream dlq replay` or
    /// `discard`. 0 keeps every dead letter.
    #[arg(long, env = "RETENTION_DEAD_LETTERS_DAYS", default_value_t = 30.0, value_parser = non_negative)]
    pub retention_dead_letters_days: f64,

    /// Days a notification stays in the inbox after it was marked read. Unread
    /// notifications are never deleted. 0 keeps every notification.
    #[arg(long, env = "RETENTION_READ_NOTIFICATIONS_DAYS", default_value_t = 90.0, value_parser = non_negative)]
    pub retention_read_notifications_days: f64,

    /// Days a task's past versions (`Task.history`, `task(asOf:)`, `deletedTasks`) are kept.
    /// An older version is deleted unless it is the newest version of a task that still
    /// exists, so every task keeps at least its current version; a task deleted longer ago
    /// than this can no longer be restored. 0 (the default) keeps the whole history.
    #[arg(long, env = "RETENTION_TASK_HISTORY_DAYS", default_value_t = 0.0, value_parser = non_negative)]
    pub retention_task_history_days: f64,

    /// Seconds between two pruning passes (the first runs at start-up).
    #[arg(long, env = "RETENTION_INTERVAL_SECS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub retention_interval_secs: u64,
}

impl RetentionArgs {
    /// The settings as a policy.
    pub fn policy(&self) -> RetentionPolicy {
        const HOUR: f64 = 3_600.0;
        const DAY: f64 = 86_400.0;
        RetentionPolicy {
            outbox: age(self.retention_outbox_hours, HOUR),
            processed_events: age(self.retention_processed_events_hours, HOUR),
            webhook_deliveries: age(self.retention_webhook_deliveries_days, DAY),
            dead_letters: age(self.retention_dead_letters_days, DAY),
            read_notifications: age(self.retention_read_notifications_days, DAY),
            task_history: age(self.retention_task_history_days, DAY),
            interval: Duration::from_secs(self.retention_interval_secs),
            batch_rows: stream::retention::BATCH_ROWS,
        }
    }
}

impl Default for RetentionArgs {
    fn default() -> RetentionArgs {
        crate::config::ServerConfig::default().retention
    }
}

fn non_negative(value: &str) -> Result<f64, String> {
    match value.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("{value:?} is not a non-negative number")),
    }
}

/// `value` units of `unit_secs` seconds as a duration; `None` for 0 (keep forever). Capped
/// at 100 years so the cutoff arithmetic cannot overflow.
fn age(value: f64, unit_secs: f64) -> Option<chrono::Duration> {
    let millis = (value * unit_secs * 1_000.0).min(100.0 * 365.0 * 86_400_000.0);
    (millis >= 1.0).then(|| chrono::Duration::milliseconds(millis as i64))
}

/// How long each table keeps its rows (`None`: forever), how often to prune and how many
/// rows one statement deletes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub outbox: Option<chrono::Duration>,
    pub processed_events: Option<chrono::Duration>,
    pub webhook_deliveries: Option<chrono::Duration>,
    pub dead_letters: Option<chrono::Duration>,
    pub read_notifications: Option<chrono::Duration>,
    pub task_history: Option<chrono::Duration>,
    pub interval: Duration,
    pub batch_rows: u64,
}

/// The tables retention prunes, as they are named in logs and the metric label.
pub const TABLES: [&str; 8] = [
    "outbox",
    "processed_events",
    "webhook_deliveries",
    "dead_letters",
    "notifications",
    "idempotency_keys",
    "task_versions",
    "consumer_members",
];

/// What one pass did: per table, what was deleted, or the error that stopped that table (the
/// other tables still ran).
#[derive(Debug, Default)]
pub struct PassReport {
    pub pruned: Vec<(&'static str, Pruned)>,
    pub failed: Vec<(&'static str, DbErr)>,
}

impl PassReport {
    /// Rows deleted from `table` in this pass.
    pub fn rows(&self, table: &str) -> u64 {
        self.pruned
            .iter()
            .find(|(t, _)| *t == table)
            .map_or(0, |(_, p)| p.rows)
    }
}

/// The log mode of a gateway: distributed with Kafka settings, else embedded with the
/// consumers the gateway runs in-process.
pub fn log_mode(distributed: bool) -> LogMode {
    if distributed {
        LogMode::Distributed
    } else {
        LogMode::Embedded {
            registered: subscribers::registry::Subscriber::ALL
                .iter()
                .map(|s| (s.name().to_owned(), s.topic().to_owned()))
                .collect(),
        }
    }
}

/// The pruning loop of a process, with the system clock, until `shutdown` is cancelled (run
/// as the `retention` component of [`crate::app`]).
pub fn run_with(
    args: &RetentionArgs,
    db: DatabaseConnection,
    distributed: bool,
    shutdown: CancellationToken,
) -> impl std::future::Future<Output = anyhow::Result<()>> + Send + 'static {
    let (policy, mode) = (args.policy(), log_mode(distributed));
    async move {
        run(db, policy, mode, subscribers::Clock::System, shutdown).await;
        Ok(())
    }
}

/// One pass now, then one every `policy.interval`, until `shutdown` is cancelled. Shutdown
/// abandons a pass in progress: each delete statement commits on its own, so nothing is left
/// half-done, and the next start carries on.
pub async fn run(
    db: DatabaseConnection,
    policy: RetentionPolicy,
    mode: LogMode,
    clock: subscribers::Clock,
    shutdown: CancellationToken,
) {
    tracing::info!(?policy, "retention loop started");
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            report = prune_once(&db, &policy, &mode, clock.now()) => log(&report),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(policy.interval) => {}
        }
    }
}

fn log(report: &PassReport) {
    let deleted: Vec<String> = report
        .pruned
        .iter()
        .filter(|(_, p)| p.rows > 0)
        .map(|(t, p)| format!("{t}={}", p.rows))
        .collect();
    if !deleted.is_empty() {
        tracing::info!(deleted = %deleted.join(" "), "retention pass deleted old rows");
    }
    for (table, e) in &report.failed {
        tracing::warn!(table, error = %e, "retention could not prune a table; retried next pass");
    }
}

/// One pass over every table whose setting is not "forever", with `now` as the clock.
/// Counts the deletions in the metrics.
pub async fn prune_once(
    db: &DatabaseConnection,
    policy: &RetentionPolicy,
    mode: &LogMode,
    now: DateTime<Utc>,
) -> PassReport {
    let batch = policy.batch_rows;
    let mut report = PassReport::default();
    let mut record = |table: &'static str, outcome: Result<Pruned, DbErr>| match outcome {
        Ok(pruned) => {
            telemetry::metrics::metrics().count_retention_deleted(table, pruned.rows);
            report.pruned.push((table, pruned));
        }
        Err(e) => report.failed.push((table, e)),
    };
    if let Some(age) = policy.outbox {
        record(
            "outbox",
            stream::retention::prune_outbox(db, mode, now - age, batch).await,
        );
    }
    if let Some(age) = policy.processed_events {
        record(
            "processed_events",
            stream::retention::prune_processed_events(db, mode, now - age, batch).await,
        );
    }
    if let Some(age) = policy.webhook_deliveries {
        record(
            "webhook_deliveries",
            prune_webhook_deliveries(db, now - age, batch).await,
        );
    }
    if let Some(age) = policy.dead_letters {
        record(
            "dead_letters",
            stream::retention::prune_dead_letters(db, now - age, batch).await,
        );
    }
    if let Some(age) = policy.read_notifications {
        record(
            "notifications",
            prune_read_notifications(db, now - age, batch).await,
        );
    }
    if let Some(age) = policy.task_history {
        record(
            "task_versions",
            prune_task_history(db, now - age, batch).await,
        );
    }
    // Keys carry their own expiry (`IDEMPOTENCY_KEY_TTL_HOURS`); an expired one is already
    // ignored, so it always goes.
    record(
        "idempotency_keys",
        prune_expired_idempotency_keys(db, now, batch).await,
    );
    // Instances that died without leaving (SIGKILL, a lost node); the live ones renew theirs
    // every few seconds, so an hour past expiry is long gone.
    record(
        "consumer_members",
        prune_departed_members(db, now - chrono::Duration::hours(1)).await,
    );
    report
}

/// Deletes subscriber instances' memberships that expired before `cutoff` (their leases are
/// free already; a member row is all that is left of them).
pub async fn prune_departed_members(
    db: &DatabaseConnection,
    cutoff: DateTime<Utc>,
) -> Result<Pruned, DbErr> {
    use entities::consumer_member;
    let deleted = consumer_member::Entity::delete_many()
        .filter(consumer_member::Column::ExpiresAtMs.lt(cutoff.timestamp_millis()))
        .exec(db)
        .await?
        .rows_affected;
    // Few rows (one per instance that ever died without leaving): one statement.
    Ok(Pruned {
        rows: deleted,
        batches: u64::from(deleted > 0),
        largest_batch: deleted,
    })
}

/// Deletes idempotency keys that expired before `now`.
pub async fn prune_expired_idempotency_keys(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    batch: u64,
) -> Result<Pruned, DbErr> {
    use entities::idempotency_key::{Column, Entity};
    in_batches(async || {
        let keys: Vec<(String, String)> = Entity::find()
            .select_only()
            .column(Column::OwnerId)
            .column(Column::Key)
            .filter(Column::ExpiresAt.lt(now))
            .order_by_asc(Column::ExpiresAt)
            .limit(std::cmp::max(batch, 1))
            .into_tuple()
            .all(db)
            .await?;
        if keys.is_empty() {
            return Ok((0, 0));
        }
        let selected = keys.len() as u64;
        let deleted = Entity::delete_many()
            .filter(
                Expr::tuple([
                    Expr::col((Entity, Column::OwnerId)),
                    Expr::col((Entity, Column::Key)),
                ])
                .is_in(
                    keys.into_iter()
                        .map(|(owner, key)| Expr::tuple([Expr::val(owner), Expr::val(key)])),
                ),
            )
            // A key reused since it was selected has a new expiry.
            .filter(Column::ExpiresAt.lt(now))
            .exec(db)
            .await?
            .rows_affected;
        Ok((selected, deleted))
    })
    .await
}

/// Deletes finished webhook deliveries last changed before `cutoff`: `DELIVERED` ones, and
/// `FAILED` ones unless a `PARKED` dead letter still points at their source record (its
/// replay re-arms the row, keeping its history).
pub async fn prune_webhook_deliveries(
    db: &DatabaseConnection,
    cutoff: DateTime<Utc>,
    batch: u64,
) -> Result<Pruned, DbErr> {
    let finished = [
        webhook_delivery::DeliveryStatus::Delivered,
        webhook_delivery::DeliveryStatus::Failed,
    ];
    let w = |c: webhook_delivery::Column| Expr::col((webhook_delivery::Entity, c));
    let d = |c: dead_letter::Column| Expr::col((dead_letter::Entity, c));
    let parked = Query::select()
        .expr(Expr::val(1))
        .from(dead_letter::Entity)
        .and_where(
            d(dead_letter::Column::Status).eq(stream::dead_letters::DeadLetterStatus::Parked),
        )
        .and_where(d(dead_letter::Column::Topic).eq(w(webhook_delivery::Column::SourceTopic)))
        .and_where(
            d(dead_letter::Column::Partition).eq(w(webhook_delivery::Column::SourcePartition)),
        )
        .and_where(d(dead_letter::Column::Offset).eq(w(webhook_delivery::Column::SourceOffset)))
        .to_owned();
    in_batches(async || {
        let ids: Vec<Uuid> = webhook_delivery::Entity::find()
            .select_only()
            .column(webhook_delivery::Column::Id)
            .filter(webhook_delivery::Column::Status.is_in(finished))
            .filter(webhook_delivery::Column::UpdatedAt.lt(cutoff))
            .filter(Expr::exists(parked.clone()).not())
            .order_by_asc(webhook_delivery::Column::UpdatedAt)
            .limit(std::cmp::max(batch, 1))
            .into_tuple()
            .all(db)
            .await?;
        if ids.is_empty() {
            return Ok((0, 0));
        }
        let selected = ids.len() as u64;
        let deleted = webhook_delivery::Entity::delete_many()
            .filter(webhook_delivery::Column::Id.is_in(ids))
            // A replay may have re-armed a row since it was selected.
            .filter(webhook_delivery::Column::Status.is_in(finished))
            .exec(db)
            .await?
            .rows_affected;
        Ok((selected, deleted))
    })
    .await
}

/// Deletes notifications read before `cutoff`.
pub async fn prune_read_notifications(
    db: &DatabaseConnection,
    cutoff: DateTime<Utc>,
    batch: u64,
) -> Result<Pruned, DbErr> {
    in_batches(async || {
        let ids: Vec<Uuid> = notification::Entity::find()
            .select_only()
            .column(notification::Column::Id)
            .filter(notification::Column::ReadAt.lt(cutoff))
            .order_by_asc(notification::Column::ReadAt)
            .limit(std::cmp::max(batch, 1))
            .into_tuple()
            .all(db)
            .await?;
        if ids.is_empty() {
            return Ok((0, 0));
        }
        let selected = ids.len() as u64;
        let deleted = notification::Entity::delete_many()
            .filter(notification::Column::Id.is_in(ids))
            .exec(db)
            .await?
            .rows_affected;
        Ok((selected, deleted))
    })
    .await
}

/// Deletes task versions recorded before `cutoff`, except the newest version of each task
/// that still exists (whose newest version is not a deletion).
pub async fn prune_task_history(
    db: &DatabaseConnection,
    cutoff: DateTime<Utc>,
    batch: u64,
) -> Result<Pruned, DbErr> {
    use entities::task_version::{self, VersionKind};
    use sea_orm::sea_query::Expr;
    in_batches(async || {
        let keys: Vec<(Uuid, i32)> = task_version::Entity::find()
            .select_only()
            .column(task_version::Column::TaskId)
            .column(task_version::Column::Version)
            .filter(task_version::Column::ChangedAt.lt(cutoff))
            .filter(
                sea_orm::Condition::any()
                    .add(Expr::exists(
                        crate::service::task_history::newer_version_exists(),
                    ))
                    .add(task_version::Column::Kind.eq(VersionKind::Deleted)),
            )
            .order_by_asc(task_version::Column::ChangedAt)
            .limit(std::cmp::max(batch, 1))
            .into_tuple()
            .all(db)
            .await?;
        if keys.is_empty() {
            return Ok((0, 0));
        }
        let selected = keys.len() as u64;
        let mut which = sea_orm::Condition::any();
        for (task_id, version) in keys {
            which = which.add(
                sea_orm::Condition::all()
                    .add(task_version::Column::TaskId.eq(task_id))
                    .add(task_version::Column::Version.eq(version)),
            );
        }
        let deleted = task_version::Entity::delete_many()
            .filter(which)
            .exec(db)
            .await?
            .rows_affected;
        Ok((selected, deleted))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_keeps_forever_and_fractions_are_allowed() {
        assert_eq!(age(0.0, 3_600.0), None);
        assert_eq!(age(0.5, 3_600.0), Some(chrono::Duration::minutes(30)));
        assert_eq!(age(30.0, 86_400.0), Some(chrono::Duration::days(30)));
        assert!(non_negative("-1").is_err());
        assert!(non_negative("NaN").is_err());
        assert_eq!(non_negative("0.25"), Ok(0.25));
    }

    #[test]
    fn the_defaults_keep_a_week_of_events_and_a_month_of_deliveries() {
        let policy = RetentionArgs::default().policy();
        assert_eq!(policy.outbox, Some(chrono::Duration::days(7)));
        assert_eq!(policy.processed_events, Some(chrono::Duration::days(7)));
        assert_eq!(policy.webhook_deliveries, Some(chrono::Duration::days(30)));
        assert_eq!(policy.dead_letters, Some(chrono::Duration::days(30)));
        assert_eq!(policy.read_notifications, Some(chrono::Duration::days(90)));
        assert_eq!(policy.interval, Duration::from_secs(600));
        assert_eq!(policy.batch_rows, 1_000);
    }
}
