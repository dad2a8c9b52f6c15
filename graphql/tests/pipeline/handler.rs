//! The test handler, which records every call and writes one `effects` row per
//! application, and the checks on those effects.

use super::*;

// ---------------------------------------------------------------- the test handler

/// What the handler should do, and what it saw; shared with the test.
#[derive(Debug, Default)]
pub(crate) struct Script {
    /// Events of this task fail permanently (poison).
    pub(crate) poison_task: Option<String>,
    /// A pause per record, so that an abort lands while records are flowing.
    pub(crate) delay: Duration,
    /// Holds the handler forever on one call, so the test can kill the consumer there.
    pub(crate) hold: Option<Hold>,
    /// Every call, committed or not: (partition, offset, event id), in call order.
    calls: Vec<(i32, i64, Uuid)>,
}

#[derive(Clone, Debug)]
pub(crate) struct Hold {
    /// The 1-based call (across partitions) to hold.
    pub(crate) on_call: usize,
    /// Hold after writing the effect (inside the open transaction) rather than before.
    pub(crate) after_effect: bool,
    pub(crate) entered: Arc<Notify>,
}

#[derive(Clone)]
pub(crate) struct RecordingHandler {
    script: Arc<Mutex<Script>>,
}

impl RecordingHandler {
    pub(crate) fn new() -> RecordingHandler {
        RecordingHandler {
            script: Arc::default(),
        }
    }

    pub(crate) fn script(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script.lock().unwrap()
    }

    pub(crate) fn calls(&self) -> Vec<(i32, i64, Uuid)> {
        self.script().calls.clone()
    }
}

impl Handler for RecordingHandler {
    fn name(&self) -> &str {
        CONSUMER
    }

    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        record: &LogRecord,
    ) -> Result<HandlerOutcome, HandlerError> {
        let event: CloudEvent = serde_json::from_slice(record.value.as_deref().unwrap_or_default())
            .map_err(HandlerError::permanent)?;
        let version = event.aggregateversion.ok_or_else(|| {
            HandlerError::permanent(anyhow::anyhow!("event {} has no version", event.id))
        })?;
        let (delay, hold) = {
            let mut script = self.script();
            script
                .calls
                .push((record.partition, record.offset, event.id));
            if script.poison_task.as_deref() == Some(event.subject.as_str()) {
                return Err(HandlerError::permanent(anyhow::anyhow!(
                    "poison: events of task {} cannot be handled",
                    event.subject
                )));
            }
            let call = script.calls.len();
            let hold = script.hold.clone().filter(|h| h.on_call == call);
            (script.delay, hold)
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if let Some(hold) = hold.as_ref().filter(|h| !h.after_effect) {
            hold.entered.notify_one();
            std::future::pending::<()>().await;
        }
        let backend = txn.get_database_backend();
        let sql = match backend {
            DbBackend::Postgres => {
                "INSERT INTO effects (consumer, event_id, task_id, version, log_partition, \
                 log_offset) VALUES ($1, $2, $3, $4, $5, $6)"
            }
            _ => {
                "INSERT INTO effects (consumer, event_id, task_id, version, log_partition, \
                 log_offset) VALUES (?, ?, ?, ?, ?, ?)"
            }
        };
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [
                CONSUMER.into(),
                event.id.to_string().into(),
                event.subject.clone().into(),
                version.into(),
                i64::from(record.partition).into(),
                record.offset.into(),
            ],
        ))
        .await?;
        if let Some(hold) = hold.filter(|h| h.after_effect) {
            hold.entered.notify_one();
            std::future::pending::<()>().await;
        }
        Ok(HandlerOutcome::Applied)
    }
}

// ---------------------------------------------------------------- effects

pub(crate) async fn create_effects_table(db: &DatabaseConnection) {
    let seq = match db.get_database_backend() {
        DbBackend::Postgres => "seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        _ => "seq INTEGER PRIMARY KEY AUTOINCREMENT",
    };
    // No unique constraint on event_id: a second application is a second row.
    db.execute_unprepared(&format!(
        "CREATE TABLE effects ({seq}, consumer TEXT NOT NULL, event_id TEXT NOT NULL, \
         task_id TEXT NOT NULL, version BIGINT NOT NULL, log_partition BIGINT NOT NULL, \
         log_offset BIGINT NOT NULL)"
    ))
    .await
    .unwrap();
}

/// One committed application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Effect {
    pub(crate) event_id: Uuid,
    pub(crate) task_id: String,
    pub(crate) version: i64,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
}

/// The committed applications, in the order they were applied.
pub(crate) async fn effects(db: &impl ConnectionTrait) -> Vec<Effect> {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT event_id, task_id, version, log_partition, log_offset FROM effects \
                 WHERE consumer = '{CONSUMER}' ORDER BY seq"
            ),
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| Effect {
            event_id: Uuid::parse_str(&r.try_get::<String>("", "event_id").unwrap()).unwrap(),
            task_id: r.try_get("", "task_id").unwrap(),
            version: r.try_get("", "version").unwrap(),
            partition: i32::try_from(r.try_get::<i64>("", "log_partition").unwrap()).unwrap(),
            offset: r.try_get("", "log_offset").unwrap(),
        })
        .collect()
}

/// Every event of `expected` was applied exactly once and nothing else was; each task's
/// events were applied in version order.
pub(crate) async fn assert_applied_exactly_once(db: &DatabaseConnection, expected: &[Event]) {
    let effects = effects(db).await;
    let mut counts: BTreeMap<Uuid, usize> = BTreeMap::new();
    for e in &effects {
        *counts.entry(e.event_id).or_default() += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "applied more than once: {twice:?}");
    let expected_ids: BTreeSet<Uuid> = expected.iter().map(|e| e.id).collect();
    let applied: BTreeSet<Uuid> = counts.keys().copied().collect();
    let missing: Vec<_> = expected_ids.difference(&applied).collect();
    let unexpected: Vec<_> = applied.difference(&expected_ids).collect();
    assert!(
        missing.is_empty() && unexpected.is_empty(),
        "never applied: {missing:?}; applied but not expected: {unexpected:?}"
    );
    let mut per_task: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for e in &effects {
        per_task.entry(&e.task_id).or_default().push(e.version);
    }
    for (task, versions) in per_task {
        assert!(
            versions.windows(2).all(|w| w[0] < w[1]),
            "task {task}: applied out of version order: {versions:?}"
        );
    }
}
