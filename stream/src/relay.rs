//! The outbox relay: publishes pending outbox rows to the Kafka-protocol log and marks them
//! published.
//!
//! - One active relay per database: on PostgreSQL it holds a session advisory lock on a
//!   dedicated connection (other replicas wait as standbys); SQLite is single-process.
//! - Pending means `published_at IS NULL`, a per-row flag, never an id watermark (ids commit
//!   out of order on PostgreSQL).
//! - Rows are read in id order, grouped per (topic, partition) with Kafka's murmur2 key
//!   partitioning, and each group is produced as one batch (acks=all), so one task's events
//!   keep their order. A failed group blocks its partition for the round; other partitions
//!   go on. Each round's rows are marked in one UPDATE, recording partition and offset. A
//!   drain runs rounds in three overlapping stages (round N produced while N−1 is marked and
//!   N+1 read; see [`Relay::publish_pending`]).
//! - While the broker is down rows accumulate; the relay backs off and resumes without loss.
//!   A crash between produce and mark re-publishes those rows: delivery is at-least-once, and
//!   consumers dedupe on the event id.
//! - It wakes on [`crate::outbox::notify_committed`] and polls slowly besides. It deletes
//!   nothing: published rows are pruned by the retention loop ([`crate::retention`]), which
//!   runs in both modes with one setting.
//! - Telemetry: with span export on, each row gets a `relay.publish` span, a child of the
//!   trace the event was written in, and the record's `ce_traceparent` names that span;
//!   published rows and produce errors are counted per topic; [`refresh_backlog_gauges`]
//!   feeds the outbox backlog gauges at scrape time.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::Utc;
use entities::outbox;
use futures_util::FutureExt;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};

use crate::log::{LogError, LogWriter, OutgoingRecord};
use crate::outbox::{header, to_record};
use crate::partitioner::partition_for_key;

/// Relay settings. Defaults suit both a laptop and a production database.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// Most rows read per round. Large enough to amortise round trips, small enough that one
    /// round's produce requests stay well under the broker's message size limit.
    pub batch_size: u64,
    /// Slow poll when no commit wakes the relay: commits of its own process wake it, and on
    /// PostgreSQL those of other processes through [`crate::wakeup::run`], so the default is
    /// [`crate::wakeup::FALLBACK_POLL`].
    pub poll_interval: Duration,
    /// How often a standby (PostgreSQL) tries to become the active relay: bounds the takeover
    /// time after the active relay stops.
    pub standby_retry: Duration,
    /// First and largest pause after a failed round.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

impl Default for RelayConfig {
    fn default() -> RelayConfig {
        RelayConfig {
            batch_size: 500,
            poll_interval: crate::wakeup::FALLBACK_POLL,
            standby_retry: Duration::from_secs(5),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
        }
    }
}

/// The advisory lock key that elects the active relay on PostgreSQL ("tskrelay" in ASCII).
pub const RELAY_LOCK_KEY: i64 = 0x74736b_72656c61;

/// What one round did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoundReport {
    pub published: usize,
    pub failed: usize,
}

/// Publishes the outbox to a log.
pub struct Relay<W: LogWriter> {
    db: DatabaseConnection,
    log: W,
    config: RelayConfig,
    partition_counts: tokio::sync::Mutex<HashMap<String, i32>>,
}

impl<W: LogWriter> Relay<W> {
    pub fn new(db: DatabaseConnection, log: W, config: RelayConfig) -> Relay<W> {
        Relay {
            db,
            log,
            config,
            partition_counts: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Runs until `shutdown` resolves: elects itself (PostgreSQL), then publishes rounds,
    /// backing off after failures. Between two rounds of a drain it checks for shutdown and,
    /// on PostgreSQL, that it still holds the lock; the current round finishes (produced and
    /// marked) before it returns.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
        tokio::pin!(shutdown);
        let mut lock: Option<sea_orm::sqlx::PgConnection> = None;
        let mut backoff = self.config.backoff_initial;
        loop {
            if self.db.get_database_backend() == DbBackend::Postgres {
                let held = tokio::select! {
                    () = &mut shutdown => return Ok(()),
                    held = ensure_leader(&self.db, &mut lock) => held,
                };
                if !held {
                    tokio::select! {
                        () = &mut shutdown => return Ok(()),
                        () = tokio::time::sleep(self.config.standby_retry.min(self.config.poll_interval)) => continue,
                    }
                }
            }
            // Between rounds of a long drain: stop for shutdown, and go on only while this
            // process still holds the relay lock (checked every round, as before the drain).
            let mut between = Between {
                shutdown: shutdown.as_mut(),
                lock: &mut lock,
                stopping: false,
            };
            let drained = self.publish_while(Some(&mut between)).await;
            if between.stopping {
                return drained.map(|_| ());
            }
            let pause = match drained {
                Ok(report) if report.failed == 0 => {
                    backoff = self.config.backoff_initial;
                    None
                }
                Ok(report) => {
                    tracing::warn!(
                        failed = report.failed,
                        published = report.published,
                        ?backoff,
                        "relay round had failures; backing off"
                    );
                    Some(backoff)
                }
                Err(e) => {
                    tracing::warn!(error = %e, ?backoff, "relay round failed; backing off");
                    Some(backoff)
                }
            };
            if let Some(p) = pause {
                backoff = (backoff * 2).min(self.config.backoff_max);
                tokio::select! {
                    () = &mut shutdown => return Ok(()),
                    () = tokio::time::sleep(p) => {},
                }
                continue;
            }
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                () = crate::outbox::wait_for_commit(self.config.poll_interval) => {},
            }
        }
    }

    async fn partition_count(&self, topic: &str) -> Result<i32, LogError> {
        let mut counts = self.partition_counts.lock().await;
        if let Some(n) = counts.get(topic) {
            return Ok(*n);
        }
        let n = self.log.partition_count(topic).await?;
        counts.insert(topic.to_owned(), n);
        Ok(n)
    }

    /// Publishes up to one batch of pending rows and marks them. Used by tests and benchmarks;
    /// [`Relay::run`] drains with [`Relay::publish_pending`].
    #[tracing::instrument(name = "relay.round", level = "debug", skip_all)]
    pub async fn publish_round(&self) -> anyhow::Result<RoundReport> {
        let rows = self.read_pending(Vec::new()).await?;
        let round = self.produce_rows(rows).await?;
        mark_published(&self.db, &round.published).await?;
        Ok(round.report)
    }

    /// Publishes every pending row, round after round, until a round reads less than a full
    /// batch or has a failure, and returns the rounds' sum. The rounds overlap in three
    /// stages: while round N is produced, round N−1's rows are marked published and round
    /// N+1's are read. Round N+1 is produced only once round N's produce has finished, and
    /// not at all when round N had a failure.
    ///
    /// Round N+1 reads the first pending rows in id order as any round does, leaving out
    /// rounds N−1's and N's (being marked or produced) by id (ranges of consecutive ids,
    /// [`passed_over`]). So it reads the set a round after N's marking would read, a row that
    /// committed late with a smaller id included, and per-key order holds as without overlap.
    /// A failed group ends the call, so no later row of its partition overtakes it.
    pub async fn publish_pending(&self) -> anyhow::Result<RoundReport> {
        self.publish_while(None::<&mut Between<'_, std::future::Ready<()>>>)
            .await
    }

    /// [`Relay::publish_pending`], asking `between` before each round after the first whether
    /// to start it ([`Relay::run`]). Rows already produced are marked either way.
    #[tracing::instrument(name = "relay.drain", level = "debug", skip_all)]
    async fn publish_while<S: std::future::Future<Output = ()>>(
        &self,
        mut between: Option<&mut Between<'_, S>>,
    ) -> anyhow::Result<RoundReport> {
        let mut total = RoundReport::default();
        let mut marking: Vec<Published> = Vec::new();
        let mut rows = self.read_pending(Vec::new()).await?;
        loop {
            let full = rows.len() as u64 >= self.config.batch_size;
            // Rounds N−1 (being marked) and N (about to be produced).
            let in_flight: Vec<i64> = marking
                .iter()
                .map(|p| p.id)
                .chain(rows.iter().map(|row| row.id))
                .collect();
            let read_next = async {
                if full {
                    self.read_pending(in_flight).await
                } else {
                    Ok(Vec::new())
                }
            };
            let (marked, round, next) = tokio::join!(
                mark_published(&self.db, &marking),
                self.produce_rows(rows),
                read_next
            );
            marked?;
            let round = round?;
            total.published += round.report.published;
            total.failed += round.report.failed;
            let go_on = round.report.failed == 0
                && full
                && next.is_ok()
                && match between.as_mut() {
                    Some(between) => between.go_on(&self.db).await,
                    None => true,
                };
            if !go_on {
                mark_published(&self.db, &round.published).await?;
                next?;
                return Ok(total);
            }
            marking = round.published;
            rows = next?;
        }
    }

    /// Reads up to one batch of pending rows in id order, passing over those `in_flight`
    /// (published and being marked, or read by the round being produced).
    async fn read_pending(&self, mut in_flight: Vec<i64>) -> Result<Vec<outbox::Record>, DbErr> {
        let mut pending = outbox::Entity::find().filter(outbox::Column::PublishedAt.is_null());
        if !in_flight.is_empty() {
            pending = pending.filter(passed_over(&mut in_flight));
        }
        pending
            .order_by_asc(outbox::Column::Id)
            .limit(self.config.batch_size)
            .into_partial_model::<outbox::Record>()
            .all(&self.db)
            .await
    }

    /// Produces `rows`, one batch per (topic, partition); records failures, leaves marking to
    /// the caller.
    async fn produce_rows(&self, rows: Vec<outbox::Record>) -> anyhow::Result<Round> {
        let mut round = Round::default();
        if rows.is_empty() {
            return Ok(round);
        }
        // Group per (topic, partition), keeping id order inside each group.
        let mut groups: BTreeMap<(String, i32), Vec<outbox::Record>> = BTreeMap::new();
        for row in rows {
            let partitions = self.partition_count(&row.topic).await?;
            let partition = partition_for_key(row.key.as_bytes(), partitions);
            groups
                .entry((row.topic.clone(), partition))
                .or_default()
                .push(row);
        }
        let results = futures_util::future::join_all(groups.into_iter().map(
            |((topic, partition), rows)| async move {
                // A row whose headers are corrupt holds its group back (a failure, retried).
                let built: Result<Vec<_>, _> = rows
                    .iter()
                    .map(|row| traced_record(row, partition))
                    .collect();
                let (records, spans): (Vec<_>, Vec<_>) = match built {
                    Ok(built) => built.into_iter().unzip(),
                    Err(e) => {
                        let outcome = Err(LogError::Fatal(e.to_string()));
                        return (topic, partition, rows, outcome, Vec::new());
                    }
                };
                let outcome = self.log.produce(&topic, partition, records).await;
                (topic, partition, rows, outcome, spans)
            },
        ))
        .await;
        let metrics = telemetry::metrics::metrics();
        for (topic, partition, rows, outcome, spans) in &results {
            let labels = telemetry::metrics::TopicLabels {
                topic: topic.clone(),
            };
            match outcome {
                Ok(offsets) if offsets.len() == rows.len() => {
                    for (span, offset) in spans.iter().zip(offsets) {
                        span.record("messaging.kafka.offset", offset);
                    }
                    round
                        .published
                        .extend(rows.iter().zip(offsets).map(|(row, offset)| Published {
                            id: row.id,
                            partition: *partition,
                            offset: *offset,
                        }));
                    round.report.published += rows.len();
                    metrics
                        .relay_published
                        .get_or_create(&labels)
                        .inc_by(rows.len() as u64);
                }
                Ok(offsets) => {
                    let msg = format!(
                        "broker returned {} offsets for {} records",
                        offsets.len(),
                        rows.len()
                    );
                    record_failure(&self.db, rows, &msg).await?;
                    round.report.failed += rows.len();
                    metrics
                        .relay_produce_errors
                        .get_or_create(&labels)
                        .inc_by(rows.len() as u64);
                }
                Err(e) => {
                    for span in spans {
                        span.in_scope(|| tracing::warn!(error = %e, "produce failed"));
                    }
                    record_failure(&self.db, rows, &e.to_string()).await?;
                    round.report.failed += rows.len();
                    metrics
                        .relay_produce_errors
                        .get_or_create(&labels)
                        .inc_by(rows.len() as u64);
                }
            }
        }
        Ok(round)
    }
}

/// Most runs of consecutive ids [`passed_over`] writes as ranges before it lists the ids.
const MAX_PASSED_OVER_RUNS: usize = 32;

/// The condition that leaves out exactly the rows whose ids are in `ids` (sorted here): one
/// `id NOT BETWEEN first AND last` per run of consecutive ids when there are at most
/// [`MAX_PASSED_OVER_RUNS`] runs, else `id NOT IN (…)`.
///
/// The rounds in flight usually hold one or two runs (identity ids of rows read in id order),
/// and a range is two comparisons per row scanned, where a list of up to two batches of ids
/// is compared one id at a time in a prepared statement's generic plan: that made the read of
/// a round take about 20 ms on PostgreSQL. A run only covers ids that are all in `ids`, so a
/// row that committed late inside the span of a round is never left out.
fn passed_over(ids: &mut [i64]) -> sea_orm::Condition {
    ids.sort_unstable();
    let mut runs: Vec<(i64, i64)> = Vec::new();
    for &id in ids.iter() {
        match runs.last_mut() {
            Some((_, last)) if id <= *last + 1 => *last = Ord::max(*last, id),
            _ => runs.push((id, id)),
        }
    }
    if runs.len() > MAX_PASSED_OVER_RUNS {
        return sea_orm::Condition::all().add(outbox::Column::Id.is_not_in(ids.iter().copied()));
    }
    runs.into_iter()
        .fold(sea_orm::Condition::all(), |all, (first, last)| {
            all.add(outbox::Column::Id.not_between(first, last))
        })
}

/// What [`Relay::run`] checks between two rounds of a drain: no shutdown requested, and on
/// PostgreSQL the relay lock still held.
struct Between<'a, S> {
    shutdown: std::pin::Pin<&'a mut S>,
    lock: &'a mut Option<sea_orm::sqlx::PgConnection>,
    /// Shutdown was seen (the future is done and must not be polled again).
    stopping: bool,
}

impl<S: std::future::Future<Output = ()>> Between<'_, S> {
    async fn go_on(&mut self, db: &DatabaseConnection) -> bool {
        if self.shutdown.as_mut().now_or_never().is_some() {
            self.stopping = true;
            return false;
        }
        db.get_database_backend() != DbBackend::Postgres || ensure_leader(db, self.lock).await
    }
}

/// One round of [`Relay::produce_rows`]: the rows that went out (to be marked) and the counts.
#[derive(Default)]
struct Round {
    published: Vec<Published>,
    report: RoundReport,
}

/// Where an outbox row went.
struct Published {
    id: i64,
    partition: i32,
    offset: i64,
}

/// The record of `row` and, when spans are exported, its publish span: a child of the trace
/// the event was written in (its `ce_traceparent`), which becomes the record's
/// `ce_traceparent` on the broker, so the consumer's span hangs below the publish. Without
/// export the span is disabled and the headers are the row's.
fn traced_record(
    row: &outbox::Record,
    partition: i32,
) -> Result<(OutgoingRecord, tracing::Span), outbox::CorruptHeaders> {
    let mut record = to_record(row)?;
    if !telemetry::exporting() {
        return Ok((record, tracing::Span::none()));
    }
    let span = tracing::info_span!(
        "relay.publish",
        otel.name = %format!("{} publish", row.topic),
        otel.kind = "producer",
        messaging.system = "kafka",
        messaging.destination.name = %row.topic,
        messaging.destination.partition.id = partition,
        messaging.message.id = %row.event_id,
        messaging.kafka.offset = tracing::field::Empty,
    );
    telemetry::continue_trace(
        &span,
        record.headers.get(header::TRACEPARENT).map(String::as_str),
    );
    if let Some(traceparent) = telemetry::trace_context::traceparent_of(&span) {
        record
            .headers
            .insert(header::TRACEPARENT.to_owned(), traceparent);
    }
    Ok((record, span))
}

/// Marks rows published with their partitions and offsets, all in one statement: an
/// `UPDATE … FROM (VALUES …)` join, so its cost grows with the rows, not with their square
/// (as a `CASE` per row would). Both databases read `VALUES` columns as `column1`, `column2`, ….
async fn mark_published(db: &DatabaseConnection, published: &[Published]) -> Result<(), DbErr> {
    use std::fmt::Write as _;
    if published.is_empty() {
        return Ok(());
    }
    let backend = db.get_database_backend();
    let mut values: Vec<sea_orm::Value> = Vec::with_capacity(1 + 3 * published.len());
    values.push(Utc::now().into());
    let mut rows = String::with_capacity(24 * published.len());
    for (i, row) in published.iter().enumerate() {
        let n = 2 + 3 * i;
        let separator = if i == 0 { "" } else { ", " };
        // Writing to a String cannot fail.
        let _ = match backend {
            DbBackend::Postgres => write!(
                rows,
                "{separator}(${n}::bigint, ${}::integer, ${}::bigint)",
                n + 1,
                n + 2
            ),
            _ => write!(rows, "{separator}(?, ?, ?)"),
        };
        values.extend([row.id.into(), row.partition.into(), row.offset.into()]);
    }
    let now = if backend == DbBackend::Postgres {
        "$1"
    } else {
        "?"
    };
    let sql = format!(
        r#"UPDATE outbox SET published_at = {now}, "partition" = v.column2, "offset" = v.column3 FROM (VALUES {rows}) AS v WHERE outbox.id = v.column1"#
    );
    db.execute_raw(sea_orm::Statement::from_sql_and_values(
        backend, sql, values,
    ))
    .await?;
    Ok(())
}

async fn record_failure(
    db: &DatabaseConnection,
    rows: &[outbox::Record],
    error: &str,
) -> Result<(), DbErr> {
    let error: String = error.chars().take(1_000).collect();
    outbox::Entity::update_many()
        .col_expr(
            outbox::Column::Attempts,
            Expr::col(outbox::Column::Attempts).add(1),
        )
        .col_expr(outbox::Column::LastError, Expr::val(error))
        .filter(outbox::Column::Id.is_in(rows.iter().map(|r| r.id)))
        .exec(db)
        .await?;
    Ok(())
}

/// Makes sure this process holds the relay lock on a dedicated PostgreSQL connection; returns
/// whether it does. A broken connection loses the lock (PostgreSQL releases it), so liveness
/// is checked every round and the lock taken again.
async fn ensure_leader(
    db: &DatabaseConnection,
    lock: &mut Option<sea_orm::sqlx::PgConnection>,
) -> bool {
    use sea_orm::sqlx::Row;
    if let Some(conn) = lock.as_mut() {
        if sea_orm::sqlx::query("SELECT 1")
            .execute(&mut *conn)
            .await
            .is_ok()
        {
            return true;
        }
        tracing::warn!("lost the relay lock connection; re-electing");
        *lock = None;
    }
    let pool = db.get_postgres_connection_pool();
    let mut conn = match pool.acquire().await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "cannot get a connection for the relay lock");
            return false;
        }
    };
    let got = sea_orm::sqlx::query("SELECT pg_try_advisory_lock($1) AS locked")
        .bind(RELAY_LOCK_KEY)
        .fetch_one(&mut *conn)
        .await
        .and_then(|row| row.try_get::<bool, _>("locked"));
    match got {
        Ok(true) => {
            tracing::info!("this process is the active outbox relay");
            // Take the connection out of the pool for good: when the relay stops, is
            // cancelled or panics, dropping it closes the session and so releases the lock.
            // Returned to the pool, it would keep the lock alive for whoever borrowed it next.
            *lock = Some(conn.detach());
            true
        }
        Ok(false) => {
            tracing::debug!("another process is the active relay; standing by");
            false
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot take the relay lock");
            false
        }
    }
}

/// How many outbox rows are waiting to be published, and the age of the oldest.
pub async fn pending_stats<C: ConnectionTrait>(
    db: &C,
) -> Result<(u64, Option<chrono::Duration>), DbErr> {
    let pending = outbox::Entity::find()
        .filter(outbox::Column::PublishedAt.is_null())
        .count(db)
        .await?;
    let oldest = outbox::Entity::find()
        .filter(outbox::Column::PublishedAt.is_null())
        .order_by_asc(outbox::Column::Id)
        .one(db)
        .await?;
    Ok((pending, oldest.map(|r| Utc::now() - r.created_at)))
}

/// Refreshes the gauges read from the database: pending outbox rows and the oldest one's
/// age (only with `relayed`: in embedded mode nothing publishes the outbox, it *is* the log,
/// and consumer lag measures the backlog instead; the gauges stay 0), and parked dead
/// letters. Called on each `/metrics` scrape (a few indexed counts); a failing query leaves
/// the previous values and logs at warn.
pub async fn refresh_backlog_gauges<C: ConnectionTrait>(db: &C, relayed: bool) {
    let metrics = telemetry::metrics::metrics();
    let stats = if relayed {
        pending_stats(db).await
    } else {
        Ok((0, None))
    };
    match stats {
        Ok((pending, oldest)) => {
            metrics
                .outbox_pending
                .set(i64::try_from(pending).unwrap_or(i64::MAX));
            let age = oldest.map_or(0.0, |d| d.as_seconds_f64().max(0.0));
            metrics.outbox_oldest_pending_age.set(age);
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the outbox backlog for /metrics"),
    }
    let parked = entities::dead_letter::Entity::find()
        .filter(
            entities::dead_letter::Column::Status
                .eq(crate::dead_letters::DeadLetterStatus::Parked.as_str()),
        )
        .count(db)
        .await;
    match parked {
        Ok(n) => {
            metrics
                .dead_letters_parked
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        Err(e) => tracing::warn!(error = %e, "cannot count parked dead letters for /metrics"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{QueryTrait, sea_query::PostgresQueryBuilder};

    fn sql(ids: &mut [i64]) -> String {
        outbox::Entity::find()
            .filter(passed_over(ids))
            .into_query()
            .to_string(PostgresQueryBuilder)
    }

    #[test]
    fn consecutive_ids_are_passed_over_as_ranges_and_gaps_stay_readable() {
        let where_clause = sql(&mut [12, 10, 11, 14, 15, 20]);
        assert!(
            where_clause.contains(r#""id" NOT BETWEEN 10 AND 12"#),
            "{where_clause}"
        );
        assert!(
            where_clause.contains(r#""id" NOT BETWEEN 14 AND 15"#),
            "{where_clause}"
        );
        assert!(
            where_clause.contains(r#""id" NOT BETWEEN 20 AND 20"#),
            "{where_clause}"
        );
        // 13 and 16..=19 are not in flight: no range covers them.
        assert_eq!(
            where_clause.matches("NOT BETWEEN").count(),
            3,
            "{where_clause}"
        );
        assert!(!where_clause.contains("NOT IN"), "{where_clause}");
    }

    #[test]
    fn scattered_ids_are_listed() {
        let mut ids: Vec<i64> = (0..=MAX_PASSED_OVER_RUNS as i64).map(|i| i * 2).collect();
        let where_clause = sql(&mut ids);
        assert!(
            where_clause.contains(r#""id" NOT IN (0, 2, 4"#),
            "{where_clause}"
        );
        assert!(!where_clause.contains("BETWEEN"), "{where_clause}");
    }
}
