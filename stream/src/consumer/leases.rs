//! Partition leases: the partitions of a consumer's topic shared out among its live instances,
//! the same way on every transport (Kafka, NATS JetStream, embedded), through the application
//! database every instance already writes its offsets to.
//!
//! # Tables
//!
//! - `consumer_members`: one row per running instance of a consumer on a topic, with an expiry
//!   its heartbeat pushes forward. A row past its expiry is a dead (or partitioned-away)
//!   instance.
//! - `consumer_leases`: one row per partition, naming the instance that holds it (`owner`) and
//!   until when. A lease past its expiry is free, whatever its owner believes.
//!
//! Times are read from the database's clock (`clock_timestamp()` on PostgreSQL, `julianday`
//! on SQLite) and stored as milliseconds since the epoch, so instances on hosts whose clocks
//! disagree still agree on who holds what.
//!
//! # The heartbeat
//!
//! Every [`LeaseConfig::heartbeat_interval`] (a third of the lease period) each instance:
//! 1. renews its membership and every lease it still holds (one transaction; a lease already
//!    past its expiry is *not* renewed: it may have been taken, so it counts as lost);
//! 2. reads the live members and every lease of the topic;
//! 3. computes its fair share ([`fair_share`]): the partitions dealt round-robin to the live
//!    members sorted by id, so every instance computes the same assignment from the same
//!    rows, and each gets `⌊P/n⌋` or `⌈P/n⌉` partitions;
//! 4. takes the free or expired leases of its share, one conditional `UPDATE` each (two
//!    instances racing for one partition: exactly one row changes);
//! 5. reports the partitions it holds beyond its share: the consumer stops their tasks (each
//!    finishes its in-flight batch and stores its offset) and then releases them, and their new
//!    owner takes them at its next heartbeat.
//!
//! So a new instance gets its share within one lease period (its first heartbeat makes it a
//! member; the others release at their next heartbeat, it takes at its next); a dead
//! instance's partitions are taken once its lease and membership expire (at most one lease
//! period plus one heartbeat); a graceful shutdown releases everything and leaves at once.
//!
//! # Fencing: a zombie applies nothing
//!
//! Leases decide who *should* consume; the offset compare-and-set decides what *can* be
//! applied. With leases, the compare-and-set also requires that the instance still holds an
//! unexpired lease on the partition ([`held_lease`], evaluated by the database in the same
//! statement). An instance that was paused past its expiry (a long GC pause, a stopped
//! process, a network partition) may still have a batch in flight when it wakes: its commit
//! moves no offset, so its transaction is rolled back with every effect, and the partition
//! task stops. The lease's new owner meanwhile started from the stored offset.
//!
//! # Why a table and not advisory locks
//!
//! PostgreSQL's advisory locks are tied to a session: a pooled connection holding one would
//! have to stay reserved for the lock's lifetime, a lost connection drops it silently, and
//! SQLite has nothing like it. Rows with expiries work on both databases, can be read by an
//! operator (`SELECT * FROM consumer_leases`), and carry the owner the fence checks.

use std::collections::BTreeSet;
use std::time::Duration;

use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query, SelectStatement, SimpleExpr};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use crate::outbox::begin_write;
use entities::{consumer_lease, consumer_member};

/// How an instance takes part in sharing out partitions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseConfig {
    /// This instance's id, unique among the instances of the consumer ([`instance_id`]).
    pub instance: String,
    /// How long a lease and a membership last without a heartbeat: the longest a dead
    /// instance's partitions wait before another instance takes them.
    pub ttl: Duration,
}

impl LeaseConfig {
    /// The default lease period: ten seconds. Long enough that a busy database or a short
    /// pause does not move partitions back and forth; short enough that a crashed instance's
    /// partitions move within seconds (Kafka's default session timeout is 45 s).
    pub const DEFAULT_TTL: Duration = Duration::from_secs(10);

    /// The shortest lease period accepted: heartbeats every third of it must fit several
    /// database round trips.
    pub const MIN_TTL: Duration = Duration::from_millis(300);

    pub fn new(instance: impl Into<String>, ttl: Duration) -> LeaseConfig {
        LeaseConfig {
            instance: instance.into(),
            ttl,
        }
    }

    /// How often an instance renews its leases and rebalances: a third of the lease period,
    /// so two heartbeats may fail before a lease lapses.
    pub fn heartbeat_interval(&self) -> Duration {
        self.ttl / 3
    }

    pub(super) fn validate(&self) -> Option<String> {
        if self.instance.trim().is_empty() || self.instance.len() > 255 {
            Some("the instance id must have 1 to 255 characters".to_owned())
        } else if self.ttl < Self::MIN_TTL {
            Some(format!(
                "the lease period must be at least {:?} (got {:?})",
                Self::MIN_TTL,
                self.ttl
            ))
        } else {
            None
        }
    }

    fn ttl_ms(&self) -> i64 {
        i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX / 2)
    }
}

/// An id for this process among a consumer's instances: the host name (the pod name on
/// Kubernetes), the process id and a random suffix, so that a restarted process on the same
/// host is a new member rather than the ghost of the old one.
pub fn instance_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "host".to_owned());
    let random = uuid::Uuid::new_v4().simple().to_string();
    let mut id = format!("{host}-{}-{}", std::process::id(), &random[..8]);
    id.truncate(255);
    id
}

/// The database's clock in milliseconds since the epoch, as an SQL expression.
fn now_ms(backend: DbBackend) -> SimpleExpr {
    Expr::cust(match backend {
        DbBackend::Postgres => "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT",
        DbBackend::MySql => "CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)",
        _ => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
    })
}

fn expires_in(backend: DbBackend, ttl_ms: i64) -> SimpleExpr {
    now_ms(backend).add(ttl_ms)
}

/// `CASE WHEN expires_at_ms > <now> THEN 1 ELSE 0 END` (built, not written as custom SQL with
/// placeholders: sea-query substitutes `$1`-style placeholders on PostgreSQL only).
fn lease_is_live(backend: DbBackend) -> SimpleExpr {
    Expr::case(
        Expr::col(consumer_lease::Column::ExpiresAtMs).gt(now_ms(backend)),
        1,
    )
    .finally(0)
    .into()
}

/// `SELECT 1 FROM consumer_leases WHERE <the partition> AND owner = <owner> AND <unexpired>`:
/// the fence every offset compare-and-set of a leased partition includes (`EXISTS (...)`).
pub(crate) fn held_lease(
    backend: DbBackend,
    consumer: &str,
    topic: &str,
    partition: i32,
    owner: &str,
) -> SelectStatement {
    Query::select()
        .expr(Expr::val(1))
        .from(consumer_lease::Entity)
        .and_where(consumer_lease::Column::Consumer.eq(consumer))
        .and_where(consumer_lease::Column::Topic.eq(topic))
        .and_where(consumer_lease::Column::Partition.eq(partition))
        .and_where(consumer_lease::Column::Owner.eq(owner))
        .and_where(Expr::col(consumer_lease::Column::ExpiresAtMs).gt(now_ms(backend)))
        .to_owned()
}

/// The partitions of `pool` that `me` should hold when `members` are the live instances: the
/// pool in ascending order dealt round-robin to the members in ascending id order. Every
/// instance computes the same answer from the same rows; each member gets `⌊P/n⌋` or
/// `⌈P/n⌉`. Empty if `me` is not a member.
pub fn fair_share(pool: &[i32], members: &[String], me: &str) -> BTreeSet<i32> {
    let mut members: Vec<&str> = members.iter().map(String::as_str).collect();
    members.sort_unstable();
    members.dedup();
    let Some(index) = members.iter().position(|m| *m == me) else {
        return BTreeSet::new();
    };
    let mut pool = pool.to_vec();
    pool.sort_unstable();
    pool.dedup();
    pool.into_iter()
        .enumerate()
        .filter(|(k, _)| k % members.len() == index)
        .map(|(_, p)| p)
        .collect()
}

/// What one heartbeat found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Heartbeat {
    /// The partitions this instance holds an unexpired lease on now.
    pub held: BTreeSet<i32>,
    /// Those of `held` beyond its fair share, to stop and release.
    pub surplus: BTreeSet<i32>,
    /// How many instances are live (this one included).
    pub members: usize,
}

/// One instance's view of the leases of one consumer on one topic.
pub(crate) struct Leases {
    db: DatabaseConnection,
    consumer: String,
    topic: String,
    pool: Vec<i32>,
    config: LeaseConfig,
}

impl Leases {
    pub(crate) fn new(
        db: DatabaseConnection,
        consumer: &str,
        topic: &str,
        pool: &[i32],
        config: LeaseConfig,
    ) -> Leases {
        Leases {
            db,
            consumer: consumer.to_owned(),
            topic: topic.to_owned(),
            pool: pool.to_vec(),
            config,
        }
    }

    pub(crate) fn config(&self) -> &LeaseConfig {
        &self.config
    }

    fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    fn lease_filter(&self) -> sea_orm::Condition {
        sea_orm::Condition::all()
            .add(consumer_lease::Column::Consumer.eq(self.consumer.as_str()))
            .add(consumer_lease::Column::Topic.eq(self.topic.as_str()))
    }

    fn member_filter(&self) -> sea_orm::Condition {
        sea_orm::Condition::all()
            .add(consumer_member::Column::Consumer.eq(self.consumer.as_str()))
            .add(consumer_member::Column::Topic.eq(self.topic.as_str()))
    }

    /// Creates the lease rows of the pool's partitions that do not exist yet (free).
    pub(crate) async fn create_rows(&self) -> Result<(), DbErr> {
        let mut insert = Query::insert();
        insert.into_table(consumer_lease::Entity).columns([
            consumer_lease::Column::Consumer,
            consumer_lease::Column::Topic,
            consumer_lease::Column::Partition,
            consumer_lease::Column::Owner,
            consumer_lease::Column::ExpiresAtMs,
        ]);
        for &partition in &self.pool {
            insert.values_panic([
                Expr::val(self.consumer.as_str()),
                Expr::val(self.topic.as_str()),
                Expr::val(partition),
                Expr::val(Option::<String>::None),
                Expr::val(0_i64),
            ]);
        }
        insert.on_conflict(
            OnConflict::columns([
                consumer_lease::Column::Consumer,
                consumer_lease::Column::Topic,
                consumer_lease::Column::Partition,
            ])
            .do_nothing()
            .to_owned(),
        );
        let txn = begin_write(&self.db).await?;
        txn.execute(&insert).await?;
        txn.commit().await
    }

    /// Renews the membership and the leases still held, takes the free leases of this
    /// instance's fair share, and says which it holds and which it should give up.
    pub(crate) async fn heartbeat(&self) -> Result<Heartbeat, DbErr> {
        let backend = self.backend();
        let ttl_ms = self.config.ttl_ms();
        let me = self.config.instance.as_str();

        // 1. Membership and renewal, in one transaction.
        let txn = begin_write(&self.db).await?;
        let mut upsert = Query::insert();
        upsert
            .into_table(consumer_member::Entity)
            .columns([
                consumer_member::Column::Consumer,
                consumer_member::Column::Topic,
                consumer_member::Column::Instance,
                consumer_member::Column::ExpiresAtMs,
            ])
            .values_panic([
                Expr::val(self.consumer.as_str()),
                Expr::val(self.topic.as_str()),
                Expr::val(me),
                expires_in(backend, ttl_ms),
            ])
            .on_conflict(
                OnConflict::columns([
                    consumer_member::Column::Consumer,
                    consumer_member::Column::Topic,
                    consumer_member::Column::Instance,
                ])
                .update_column(consumer_member::Column::ExpiresAtMs)
                .to_owned(),
            );
        txn.execute(&upsert).await?;
        consumer_lease::Entity::update_many()
            .col_expr(
                consumer_lease::Column::ExpiresAtMs,
                expires_in(backend, ttl_ms),
            )
            .filter(self.lease_filter())
            .filter(consumer_lease::Column::Owner.eq(me))
            .filter(Expr::col(consumer_lease::Column::ExpiresAtMs).gt(now_ms(backend)))
            .exec(&txn)
            .await?;
        txn.commit().await?;

        // 2. Who is live, and who holds what.
        let members: Vec<String> = consumer_member::Entity::find()
            .select_only()
            .column(consumer_member::Column::Instance)
            .filter(self.member_filter())
            .filter(Expr::col(consumer_member::Column::ExpiresAtMs).gt(now_ms(backend)))
            .order_by_asc(consumer_member::Column::Instance)
            .into_tuple()
            .all(&self.db)
            .await?;
        let live = lease_is_live(backend);
        let leases: Vec<(i32, Option<String>, i32)> = consumer_lease::Entity::find()
            .select_only()
            .column(consumer_lease::Column::Partition)
            .column(consumer_lease::Column::Owner)
            .expr(live)
            .filter(self.lease_filter())
            .into_tuple()
            .all(&self.db)
            .await?;

        // 3. The fair share, and 4. the free leases of it.
        let share = fair_share(&self.pool, &members, me);
        let mut held = BTreeSet::new();
        let mut free = Vec::new();
        for (partition, owner, live) in leases {
            if !self.pool.contains(&partition) {
                continue;
            }
            match (owner.as_deref(), live == 1) {
                (Some(owner), true) if owner == me => {
                    held.insert(partition);
                }
                (Some(_), true) => {}
                _ => free.push(partition),
            }
        }
        for partition in free.into_iter().filter(|p| share.contains(p)) {
            if self.take(partition).await? {
                held.insert(partition);
            }
        }

        // 5. What to give up.
        let surplus = held.difference(&share).copied().collect();
        Ok(Heartbeat {
            held,
            surplus,
            members: members.len(),
        })
    }

    /// Takes `partition` if its lease is free or expired; true if it did.
    async fn take(&self, partition: i32) -> Result<bool, DbErr> {
        let backend = self.backend();
        let txn = begin_write(&self.db).await?;
        let result = consumer_lease::Entity::update_many()
            .col_expr(
                consumer_lease::Column::Owner,
                Expr::val(self.config.instance.as_str()),
            )
            .col_expr(
                consumer_lease::Column::ExpiresAtMs,
                expires_in(backend, self.config.ttl_ms()),
            )
            .filter(self.lease_filter())
            .filter(consumer_lease::Column::Partition.eq(partition))
            .filter(
                sea_orm::Condition::any()
                    .add(consumer_lease::Column::Owner.is_null())
                    .add(Expr::col(consumer_lease::Column::ExpiresAtMs).lte(now_ms(backend))),
            )
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(result.rows_affected == 1)
    }

    /// Gives up `partitions` (only those this instance still holds), so that their new owner
    /// takes them at its next heartbeat instead of after the expiry.
    pub(crate) async fn release(&self, partitions: &[i32]) -> Result<(), DbErr> {
        if partitions.is_empty() {
            return Ok(());
        }
        let txn = begin_write(&self.db).await?;
        consumer_lease::Entity::update_many()
            .col_expr(
                consumer_lease::Column::Owner,
                Expr::val(Option::<String>::None),
            )
            .col_expr(consumer_lease::Column::ExpiresAtMs, Expr::val(0_i64))
            .filter(self.lease_filter())
            .filter(consumer_lease::Column::Owner.eq(self.config.instance.as_str()))
            .filter(consumer_lease::Column::Partition.is_in(partitions.iter().copied()))
            .exec(&txn)
            .await?;
        txn.commit().await
    }

    /// Leaves the group: releases every lease and deletes the membership, so the others
    /// rebalance at their next heartbeat. Also prunes memberships long expired.
    pub(crate) async fn leave(&self) -> Result<(), DbErr> {
        self.release(&self.pool).await?;
        let backend = self.backend();
        let txn = begin_write(&self.db).await?;
        consumer_member::Entity::delete_many()
            .filter(self.member_filter())
            .filter(
                sea_orm::Condition::any()
                    .add(consumer_member::Column::Instance.eq(self.config.instance.as_str()))
                    .add(Expr::col(consumer_member::Column::ExpiresAtMs).lt(now_ms(backend))),
            )
            .exec(&txn)
            .await?;
        txn.commit().await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use super::{LeaseConfig, fair_share, instance_id};

    fn members(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn six_partitions_over_three_members_give_two_each_and_cover_the_pool() {
        let pool: Vec<i32> = (0..6).collect();
        let all = members(&["c", "a", "b"]);
        let shares: Vec<BTreeSet<i32>> = ["a", "b", "c"]
            .iter()
            .map(|me| fair_share(&pool, &all, me))
            .collect();
        assert_eq!(shares[0], BTreeSet::from([0, 3]));
        assert_eq!(shares[1], BTreeSet::from([1, 4]));
        assert_eq!(shares[2], BTreeSet::from([2, 5]));
    }

    #[test]
    fn uneven_pools_differ_by_at_most_one_and_a_lone_member_takes_all() {
        let pool = [4, 0, 2, 1, 3];
        let all = members(&["x", "y"]);
        let x = fair_share(&pool, &all, "x");
        let y = fair_share(&pool, &all, "y");
        assert_eq!((x.len(), y.len()), (3, 2));
        assert!(x.is_disjoint(&y));
        assert_eq!(
            fair_share(&pool, &members(&["x"]), "x"),
            BTreeSet::from([0, 1, 2, 3, 4])
        );
    }

    #[test]
    fn a_non_member_and_more_members_than_partitions_get_nothing_extra() {
        let pool = [0, 1];
        assert!(fair_share(&pool, &members(&["a", "b"]), "z").is_empty());
        let all = members(&["a", "b", "c"]);
        assert!(fair_share(&pool, &all, "c").is_empty());
        assert_eq!(fair_share(&pool, &all, "a"), BTreeSet::from([0]));
    }

    #[test]
    fn lease_settings_are_validated_naming_the_problem() {
        let ok = LeaseConfig::new("i-1", Duration::from_secs(10));
        assert_eq!(ok.validate(), None);
        assert_eq!(ok.heartbeat_interval(), Duration::from_secs(10) / 3);
        let short = LeaseConfig::new("i-1", Duration::from_millis(10)).validate();
        assert!(short.unwrap().contains("lease period"));
        let blank = LeaseConfig::new(" ", Duration::from_secs(1)).validate();
        assert!(blank.unwrap().contains("instance id"));
        let long = LeaseConfig::new("x".repeat(256), Duration::from_secs(1)).validate();
        assert!(long.unwrap().contains("instance id"));
    }

    #[test]
    fn the_lease_statements_compare_with_the_database_clock_on_both_databases() {
        use sea_orm::sea_query::{PostgresQueryBuilder, Query, SqliteQueryBuilder};
        for backend in [sea_orm::DbBackend::Sqlite, sea_orm::DbBackend::Postgres] {
            let select = Query::select()
                .expr(super::lease_is_live(backend))
                .from(entities::consumer_lease::Entity)
                .to_owned();
            let fence = super::held_lease(backend, "c", "t", 0, "me");
            let (sql, clock) = match backend {
                sea_orm::DbBackend::Sqlite => (
                    [
                        select.to_string(SqliteQueryBuilder),
                        fence.to_string(SqliteQueryBuilder),
                    ],
                    "julianday('now')",
                ),
                _ => (
                    [
                        select.to_string(PostgresQueryBuilder),
                        fence.to_string(PostgresQueryBuilder),
                    ],
                    "clock_timestamp()",
                ),
            };
            for sql in sql {
                assert!(sql.contains(clock), "{sql}");
                assert!(!sql.contains("$1"), "no unsubstituted placeholder: {sql}");
            }
        }
    }

    #[test]
    fn instance_ids_differ_per_call_and_fit_the_column() {
        let (a, b) = (instance_id(), instance_id());
        assert_ne!(a, b);
        assert!(a.len() <= 255 && a.contains(&std::process::id().to_string()));
    }
}
