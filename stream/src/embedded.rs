//! The embedded transport: in embedded mode the `outbox` table *is* the event log, read in id
//! order by the consumers of the same process (no relay, no broker).
//!
//! Mapping onto [`crate::log`]:
//! - a topic is `outbox.topic`; every topic has one partition, `0`;
//! - a record's offset is its `outbox.id`. Ids are shared by all topics, so a topic's offsets
//!   are increasing but sparse: a consumer's `next_offset` may point at an id of another topic,
//!   and a fetch simply returns the topic's next rows at or after it;
//! - the high watermark is per topic: one past the topic's newest committed row (0 for an
//!   empty topic). A caught-up consumer's stored offset therefore equals it, and lag is zero
//!   whatever the other topics do. Consequence for retention: a clean-up job must keep each
//!   topic's newest row; deleting it moves the end backwards and the consumers past it halt
//!   with [`LogError::OffsetOutOfRange`], which is the loud failure we want for lost data;
//! - records are built from rows by [`crate::outbox::to_record`], as the relay publishes them,
//!   so a `task-updates` deletion arrives as a tombstone in both modes;
//! - [`LogWriter::produce`] appends outbox rows (for tools and tests; the consumer runtime
//!   writes its dead-letter copies with its own transaction). Tombstones cannot be stored
//!   (`payload` is NOT NULL).
//!
//! Waking up: a fetch that finds nothing waits for the process-wide commit signal,
//! [`crate::outbox::notify_committed`], with its `max_wait` as the fallback poll (readers pass
//! [`LogReader::idle_fetch_wait`], 30 s: on PostgreSQL, [`crate::wakeup::run`] turns other
//! processes' commits into the same signal). Services call
//! it right after committing a transaction that wrote the outbox (the gateway through
//! `commit_and_notify`, the consumer runtime after each commit), so consumers react within a
//! query's time instead of a poll interval. The fetch registers for the signal *before* it
//! reads, so a commit landing during the read is not missed.
//!
//! # Shared reads
//!
//! One commit wakes every reader of the process at once (the gateway runs four subscribers and
//! the live updates on one log), and each would otherwise ask the database the same questions.
//! The clones of one [`EmbeddedLog`] share two answers instead:
//! - **topic ends**: one statement reads the end of every topic read so far. The answer is
//!   tagged with the process's commit wake-up count ([`crate::outbox::notify_committed`] and
//!   the cross-process wake-ups raise it before waking anyone), read just before the statement.
//!   A reader registers for the next wake-up, then reuses an answer whose count is still
//!   current, at most one second old: a commit missing from it was announced after the
//!   statement started, so it raised the count (the answer is not reused) or its wake-up is
//!   still coming (and wakes the reader, which reads again). An offset beyond a shared end is
//!   always checked by a fresh statement, so out of range is never judged on a shared answer;
//! - **the last read of each topic that reached its end**: its rows are final (every row up to
//!   the PostgreSQL horizon, every committed row on SQLite), so a reader whose offset falls
//!   within them takes its records from it. Reads that stop at `max_records` (a backlog) are
//!   not kept, so catching up copies nothing extra.
//!
//! Readers of one topic take turns reading it, so those woken together wait for the first
//! read and use it. Nothing here changes what a reader may see; it only changes who asks.
//!
//! # Reading by id is only sound when ids become visible in order
//!
//! A reader that advances past id `n` must never later see a row with an id below `n` appear.
//! - **SQLite** serialises writers (one write lock; every write transaction here is
//!   `BEGIN IMMEDIATE`), and the table is `AUTOINCREMENT`, so ids are never reused: a
//!   transaction that allocated an id commits before any later id is allocated. Every visible
//!   row is final; the reader needs nothing more.
//! - **PostgreSQL** allocates identity ids at `INSERT` but makes the row visible at `COMMIT`,
//!   so transactions can commit out of id order and a naive reader would skip the late one.
//!   Decision: a *reader-side* horizon, so writers ([`crate::outbox::append`]) stay unchanged
//!   and are never serialised. The reader delivers only rows at or below a *safe horizon*, the
//!   largest id it has proved final, the way Kafka's `read_committed` consumers stop at the last
//!   stable offset. The proof uses two facts: (a) an `INSERT` takes `ROW EXCLUSIVE` on `outbox`
//!   *before* it evaluates the id default (`nextval`) and keeps it until its transaction ends;
//!   (b) the id sequence has `CACHE 1` (the default), so its `last_value` is the largest id
//!   allocated by anyone. The reader (1) reads `L = last_value`, then (2) lists the
//!   transactions holding `ROW EXCLUSIVE` on `outbox` in `pg_locks` (fast-path locks included).
//!   Every transaction that allocated an id `<= L` did so before (1), so it either appears in
//!   (2) or had already ended, and a snapshot taken after (2) sees its row if it committed.
//!   Once none of the transactions listed in (2) still holds the lock (checked at a later
//!   fetch), every id `<= L` is final and the horizon moves to `L`. Pending `(L, holders)`
//!   pairs are kept per [`EmbeddedLog`] (shared by its clones, which take observations one at
//!   a time, so a later check always reads the lock holders after the pair it resolves), so
//!   the horizon trails the commits by about one transaction. The horizon never moves backwards: ids allocated later are all above `L`.
//!   The cost: a transaction that keeps `ROW EXCLUSIVE` on `outbox` open (idle in
//!   transaction, or a long batch) holds back delivery of later rows until it ends, never
//!   their correctness. The rejected alternative, serialising every outbox writer with an
//!   advisory lock, would make every PostgreSQL mutation wait on every other.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
};
use tokio::time::Instant;
use uuid::Uuid;

use crate::log::{Fetched, LogError, LogReader, LogRecord, LogWriter, OutgoingRecord};
use entities::outbox;

/// How often a fetch re-checks the PostgreSQL safe horizon while the topic has committed rows
/// beyond it (a writer's transaction is still open). Commits normally wake it earlier.
const HORIZON_RECHECK: Duration = Duration::from_millis(25);

/// How many unproven `(last id, lock holders)` observations are kept. Older ones are dropped
/// first; a newer observation proves a larger id anyway, so dropping only delays.
const MAX_PENDING_OBSERVATIONS: usize = 64;

/// How long topic ends read at one commit generation are shared (see "Shared reads" in the
/// module doc). Past it a reader queries again although no wake-up came, so a commit whose
/// wake-up never arrives (the LISTEN connection of [`crate::wakeup::run`] down, a writer that
/// does not announce its commits) is still seen at the next fallback poll, as without sharing.
const SHARED_ENDS_MAX_AGE: Duration = Duration::from_secs(1);

/// The outbox table read as an event log. Cheap to clone; clones share the horizon and the
/// shared reads, so a process makes one and gives a clone to each of its consumers (the
/// gateway: every in-process subscriber and the live updates).
#[derive(Clone, Debug)]
pub struct EmbeddedLog {
    db: DatabaseConnection,
    horizon: Arc<tokio::sync::Mutex<Horizon>>,
    ends: Arc<tokio::sync::Mutex<Ends>>,
    tails: Arc<std::sync::Mutex<HashMap<String, TailSlot>>>,
}

/// One topic's shared last read, taken in turns by that topic's readers.
type TailSlot = Arc<tokio::sync::Mutex<Option<Tail>>>;

impl EmbeddedLog {
    pub fn new(db: DatabaseConnection) -> EmbeddedLog {
        EmbeddedLog {
            db,
            horizon: Arc::default(),
            ends: Arc::default(),
            tails: Arc::default(),
        }
    }

    /// One read without waiting: the deliverable records, the topic's end, and whether
    /// committed rows of the topic are held back by the PostgreSQL horizon.
    async fn read(&self, topic: &str, offset: i64, max: usize) -> Result<Read, DbErr> {
        let end = self.topic_end(topic, offset).await?;
        if offset >= end {
            return Ok(Read {
                records: Vec::new(),
                end,
                held_back: false,
            });
        }
        let slot = self.tail_slot(topic);
        let mut tail = slot.lock().await;
        if let Some(shared) = tail.as_ref()
            && let Some(records) = shared.answer(offset, max, end)
        {
            return Ok(Read {
                records,
                end: end.max(shared.end),
                held_back: false,
            });
        }
        let safe = self.safe_horizon(end - 1).await?;
        if offset > safe {
            return Ok(Read {
                records: Vec::new(),
                end,
                held_back: true,
            });
        }
        let rows = outbox::Entity::find()
            .filter(outbox::Column::Topic.eq(topic))
            .filter(outbox::Column::Id.gte(offset))
            .filter(outbox::Column::Id.lte(safe))
            .order_by_asc(outbox::Column::Id)
            .limit(max as u64)
            .into_partial_model::<outbox::Record>()
            .all(&self.db)
            .await?;
        let records = rows
            .into_iter()
            .map(to_record)
            .collect::<Result<Vec<LogRecord>, _>>()?;
        // A row committed after `topic_end` was read may be in `records` (SQLite): keep the end
        // consistent with what was delivered.
        let end = records.last().map_or(end, |r| end.max(r.offset + 1));
        // A read that reached the topic's end is what the other readers woken by the same
        // commit want too. Every row from `offset` through `through` is final and was read:
        // on PostgreSQL every row at or below `safe`, on SQLite every committed row.
        if records.len() < max {
            *tail = Some(Tail {
                from: offset,
                through: safe.min(end - 1),
                end,
                records: records.clone(),
            });
        }
        Ok(Read {
            held_back: records.is_empty() && safe < end - 1,
            records,
            end,
        })
    }

    /// One past the topic's newest committed row, or 0. Shared by the readers of one commit
    /// generation (see "Shared reads" in the module doc): one statement reads the end of every
    /// topic read so far, and a reader that finds an answer of the current generation, at most
    /// [`SHARED_ENDS_MAX_AGE`] old and not below its `offset`, uses it.
    async fn topic_end(&self, topic: &str, offset: i64) -> Result<i64, DbErr> {
        let generation = crate::outbox::commit_generation();
        let mut ends = self.ends.lock().await;
        if let Some((read_generation, read_at)) = ends.read
            && read_generation == generation
            && read_at.elapsed() < SHARED_ENDS_MAX_AGE
            && let Some(&(_, end)) = ends.topics.iter().find(|(t, _)| t == topic)
            // An offset beyond the shared end (stored by a reader in another process, say) is
            // judged by a fresh read, never by a shared one: it may mean out of range.
            && offset <= end
        {
            return Ok(end);
        }
        if !ends.topics.iter().any(|(t, _)| t == topic) {
            ends.topics.push((topic.to_owned(), 0));
        }
        // Read before the statement starts: a commit announced after it may be missing from
        // the answer, and bumps the generation, so nobody reuses the answer for it.
        let generation = crate::outbox::commit_generation();
        let read_at = Instant::now();
        let backend = self.db.get_database_backend();
        let columns: Vec<String> = (1..=ends.topics.len())
            .map(|i| {
                let parameter = if backend == DbBackend::Postgres {
                    format!("${i}")
                } else {
                    "?".to_owned()
                };
                format!("(SELECT MAX(id) FROM outbox WHERE topic = {parameter}) AS end_{i}")
            })
            .collect();
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                format!("SELECT {}", columns.join(", ")),
                ends.topics.iter().map(|(t, _)| t.clone().into()),
            ))
            .await?
            .ok_or_else(|| DbErr::Custom("reading the outbox topic ends returned no row".into()))?;
        let mut found = 0;
        for (i, (t, end)) in ends.topics.iter_mut().enumerate() {
            let max: Option<i64> = row.try_get("", &format!("end_{}", i + 1))?;
            *end = max.map_or(0, |m| m + 1);
            if t == topic {
                found = *end;
            }
        }
        ends.read = Some((generation, read_at));
        Ok(found)
    }

    /// The shared last read of `topic` (see "Shared reads" in the module doc).
    fn tail_slot(&self, topic: &str) -> TailSlot {
        let mut tails = self
            .tails
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(tails.entry(topic.to_owned()).or_default())
    }

    /// The largest id proved final (see the module doc), advanced if `wanted` is beyond it.
    async fn safe_horizon(&self, wanted: i64) -> Result<i64, DbErr> {
        if self.db.get_database_backend() != DbBackend::Postgres {
            return Ok(i64::MAX);
        }
        // Held until the observation is recorded, so the readers sharing this log observe one at
        // a time: each observation's lock holders are read after the previous one's. Otherwise
        // an older holder list, recorded late, could prove a newer observation whose writer
        // took its lock after that list was read. A waiting reader may then find the horizon
        // already moved by another.
        let mut horizon = self.horizon.lock().await;
        if wanted <= horizon.safe {
            return Ok(horizon.safe);
        }
        // (1) the largest id allocated so far, strictly before (2).
        let row = self
            .db
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT s.seq, pg_sequence_last_value(s.seq::regclass) AS last_id \
                 FROM (SELECT pg_get_serial_sequence('outbox', 'id') AS seq) s",
            ))
            .await?
            .ok_or_else(|| {
                DbErr::Custom("reading the outbox id sequence returned no row".into())
            })?;
        let sequence: Option<String> = row.try_get("", "seq")?;
        if sequence.is_none() {
            return Err(DbErr::Custom(
                "outbox.id has no sequence: the embedded log cannot order PostgreSQL commits"
                    .into(),
            ));
        }
        let last_allocated: i64 = row.try_get::<Option<i64>>("", "last_id")?.unwrap_or(0);
        // (2) the transactions that may still be inserting rows at or below it.
        let holders: Vec<String> = self
            .db
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT virtualtransaction AS vxid FROM pg_locks \
                 WHERE locktype = 'relation' AND mode = 'RowExclusiveLock' AND granted \
                   AND relation = 'outbox'::regclass \
                   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            ))
            .await?
            .iter()
            .map(|r| r.try_get::<String>("", "vxid"))
            .collect::<Result<_, _>>()?;
        Ok(horizon.observe(last_allocated, holders))
    }
}

/// The ends of every topic read so far, as one statement read them.
#[derive(Debug, Default)]
struct Ends {
    /// The commit generation just before that statement, and when it ran.
    read: Option<(u64, Instant)>,
    /// Each topic (in the order first asked for) and one past its newest row.
    topics: Vec<(String, i64)>,
}

/// The last read of one topic that reached the topic's end.
#[derive(Debug)]
struct Tail {
    /// Every row of the topic with an id from `from` through `through` is final and in
    /// `records`.
    from: i64,
    through: i64,
    /// The topic's end as that read saw it.
    end: i64,
    records: Vec<LogRecord>,
}

impl Tail {
    /// The answer to a read of at most `max` records from `offset` on a topic that ends at
    /// `end`, when this read holds it: `offset` is within the rows it covers, and either it
    /// has records from there or the topic has no rows past them.
    fn answer(&self, offset: i64, max: usize, end: i64) -> Option<Vec<LogRecord>> {
        if offset < self.from || offset > self.through {
            return None;
        }
        let start = self.records.partition_point(|r| r.offset < offset);
        let records: Vec<LogRecord> = self.records[start..].iter().take(max).cloned().collect();
        (!records.is_empty() || self.through >= end - 1).then_some(records)
    }
}

/// What one read found.
struct Read {
    records: Vec<LogRecord>,
    end: i64,
    held_back: bool,
}

/// The PostgreSQL safe horizon and the observations that may still prove a larger one.
#[derive(Debug, Default)]
struct Horizon {
    /// Every id at or below it is final.
    safe: i64,
    /// `(largest id allocated, transactions that held ROW EXCLUSIVE on outbox right after)`.
    pending: VecDeque<(i64, Vec<String>)>,
}

impl Horizon {
    /// Records a new observation and resolves every pending one whose lock holders have all
    /// finished (none of them is in `holders_now`). Returns the new safe horizon.
    fn observe(&mut self, last_allocated: i64, holders_now: Vec<String>) -> i64 {
        self.pending
            .push_back((last_allocated, holders_now.clone()));
        let mut still_pending = VecDeque::with_capacity(self.pending.len());
        for (last, holders) in self.pending.drain(..) {
            if holders.iter().any(|h| holders_now.contains(h)) {
                still_pending.push_back((last, holders));
            } else {
                self.safe = self.safe.max(last);
            }
        }
        still_pending.retain(|(last, _)| *last > self.safe);
        while still_pending.len() > MAX_PENDING_OBSERVATIONS {
            still_pending.pop_front();
        }
        self.pending = still_pending;
        self.safe
    }
}

impl LogReader for EmbeddedLog {
    async fn fetch(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_records: usize,
        max_wait: Duration,
    ) -> Result<Fetched, LogError> {
        check_partition(topic, partition)?;
        let deadline = Instant::now() + max_wait;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let mut woken = std::pin::pin!(crate::outbox::wait_for_commit(remaining));
            // Poll once before reading: that registers the waiter, so a commit during the read
            // still wakes us (a later registration would miss it and sleep a full `max_wait`).
            let already_woken = std::future::poll_fn(|cx| Poll::Ready(woken.as_mut().poll(cx)))
                .await
                .is_ready();
            let read = self
                .read(topic, offset, max_records.max(1))
                .await
                .map_err(unavailable)?;
            if offset > read.end {
                return Err(LogError::OffsetOutOfRange {
                    topic: topic.to_owned(),
                    partition,
                    offset,
                    high_watermark: read.end,
                });
            }
            let now = Instant::now();
            if !read.records.is_empty() || now >= deadline {
                return Ok(Fetched {
                    records: read.records,
                    high_watermark: read.end,
                });
            }
            if already_woken {
                continue;
            }
            if read.held_back {
                tokio::select! {
                    () = woken => {}
                    () = tokio::time::sleep(HORIZON_RECHECK) => {}
                }
            } else {
                woken.await;
            }
        }
    }

    async fn partition_count(&self, _topic: &str) -> Result<i32, LogError> {
        Ok(1)
    }

    /// [`crate::wakeup::FALLBACK_POLL`]: every commit wakes a waiting fetch (in this process
    /// directly, from other processes through [`crate::wakeup::run`] on PostgreSQL), so
    /// an idle fetch only needs the slow fallback poll.
    fn idle_fetch_wait(&self) -> Duration {
        crate::wakeup::FALLBACK_POLL
    }
}

impl LogWriter for EmbeddedLog {
    /// Appends one outbox row per record in one transaction. Each row gets a fresh
    /// `event_id` (the column is unique, and a dead-lettered copy of an event must not collide
    /// with the original row); consumers dedupe on the record's `ce_id` header, which is kept.
    async fn produce(
        &self,
        topic: &str,
        partition: i32,
        records: Vec<OutgoingRecord>,
    ) -> Result<Vec<i64>, LogError> {
        check_partition(topic, partition)?;
        let mut rows = Vec::with_capacity(records.len());
        for record in records {
            let Some(value) = record.value else {
                return Err(LogError::Fatal(format!(
                    "the embedded log cannot store a tombstone (topic {topic}, key {})",
                    record.key
                )));
            };
            let payload = String::from_utf8(value).map_err(|_| {
                LogError::Fatal(format!(
                    "the embedded log stores UTF-8 payloads only (topic {topic}, key {})",
                    record.key
                ))
            })?;
            let row = crate::outbox::row(
                Uuid::now_v7(),
                topic,
                &record.key,
                payload,
                &record.headers,
                record.timestamp,
            )
            .map_err(|e| LogError::Fatal(e.to_string()))?;
            rows.push(row);
        }
        let txn = crate::outbox::begin_write(&self.db)
            .await
            .map_err(unavailable)?;
        let mut offsets = Vec::with_capacity(rows.len());
        for row in rows {
            offsets.push(row.insert(&txn).await.map_err(unavailable)?.id);
        }
        txn.commit().await.map_err(unavailable)?;
        crate::outbox::notify_committed();
        Ok(offsets)
    }

    async fn partition_count(&self, _topic: &str) -> Result<i32, LogError> {
        Ok(1)
    }
}

fn check_partition(topic: &str, partition: i32) -> Result<(), LogError> {
    if partition == 0 {
        Ok(())
    } else {
        Err(LogError::Fatal(format!(
            "the embedded log has one partition (0) per topic; asked for {topic}[{partition}]"
        )))
    }
}

/// Database errors while reading or appending are retried by the caller: the database is the
/// log here, so its outage is the log's.
fn unavailable(e: DbErr) -> LogError {
    LogError::Unavailable(format!("outbox table: {e}"))
}

/// An outbox row as a log record, exactly as the relay would publish it (a `task-updates`
/// deletion becomes a tombstone), so consumers see the same records in both modes. A row whose
/// headers are corrupt is a read error (retried, as the relay retries it), never empty headers.
fn to_record(row: outbox::Record) -> Result<LogRecord, DbErr> {
    let published = crate::outbox::to_record(&row)
        .map_err(|e| DbErr::Custom(format!("outbox row {}: {e}", row.id)))?;
    Ok(LogRecord {
        topic: row.topic,
        partition: 0,
        offset: row.id,
        key: Some(published.key),
        value: published.value,
        headers: published.headers,
        timestamp: published.timestamp,
    })
}

#[cfg(test)]
mod tests {
    use super::Horizon;

    fn vx(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn an_observation_without_lock_holders_is_final_at_once() {
        let mut h = Horizon::default();
        assert_eq!(h.observe(10, vx(&[])), 10);
    }

    #[test]
    fn the_horizon_waits_for_every_holder_seen_with_the_observation() {
        let mut h = Horizon::default();
        assert_eq!(h.observe(10, vx(&["3/1", "4/7"])), 0);
        // 3/1 finished, 4/7 still writing; a new writer 5/2 appeared.
        assert_eq!(h.observe(12, vx(&["4/7", "5/2"])), 0);
        // 4/7 finished: the first observation is proved, the second still waits on 5/2.
        assert_eq!(h.observe(15, vx(&["5/2"])), 10);
        assert_eq!(h.observe(15, vx(&[])), 15);
        assert!(h.pending.is_empty());
    }

    #[test]
    fn the_horizon_never_moves_backwards() {
        let mut h = Horizon::default();
        assert_eq!(h.observe(20, vx(&[])), 20);
        assert_eq!(h.observe(5, vx(&[])), 20);
    }

    #[test]
    fn pending_observations_are_bounded() {
        let mut h = Horizon::default();
        for i in 0..200 {
            h.observe(i, vx(&["1/1"]));
        }
        assert!(h.pending.len() <= super::MAX_PENDING_OBSERVATIONS);
        assert_eq!(h.observe(300, vx(&[])), 300);
    }
}
