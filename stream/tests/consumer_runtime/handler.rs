//! The test handler: scripted transient failures and gates, a call count per event, and one
//! `test_effects` row per application.

use super::*;

/// What the handler should do, and what it saw; shared with the test.
#[derive(Debug, Default)]
pub(crate) struct Script {
    /// Events that fail transiently this many more times.
    pub(crate) fail_times: HashMap<Uuid, u32>,
    /// Events that fail transiently until removed (a bug that is later fixed).
    pub(crate) broken: HashSet<Uuid>,
    /// How often the handler was called per event.
    pub(crate) calls: HashMap<Uuid, u32>,
    /// An event whose handling announces itself and then waits for a permit.
    pub(crate) gate: Option<Gate>,
}

#[derive(Clone, Debug)]
pub(crate) struct Gate {
    pub(crate) event: Uuid,
    pub(crate) entered: Arc<tokio::sync::Notify>,
    pub(crate) release: Arc<tokio::sync::Semaphore>,
}

#[derive(Clone)]
pub(crate) struct TestHandler {
    name: String,
    script: Arc<Mutex<Script>>,
    /// The event types it acts on (`None`: all).
    only: Option<&'static [&'static str]>,
}

impl TestHandler {
    pub(crate) fn new() -> TestHandler {
        TestHandler::named(CONSUMER)
    }

    pub(crate) fn named(name: &str) -> TestHandler {
        TestHandler {
            name: name.to_owned(),
            script: Arc::default(),
            only: None,
        }
    }

    /// The same handler acting on `types` only (the runtime skips the others).
    pub(crate) fn acting_on(self, types: &'static [&'static str]) -> TestHandler {
        TestHandler {
            only: Some(types),
            ..self
        }
    }

    pub(crate) fn script(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script.lock().unwrap()
    }

    pub(crate) fn calls(&self, id: Uuid) -> u32 {
        self.script().calls.get(&id).copied().unwrap_or(0)
    }
}

impl Handler for TestHandler {
    fn name(&self) -> &str {
        &self.name
    }

    fn event_types(&self) -> Option<&'static [&'static str]> {
        self.only
    }

    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        record: &LogRecord,
    ) -> Result<HandlerOutcome, HandlerError> {
        let event: CloudEvent = serde_json::from_slice(record.value.as_deref().unwrap_or_default())
            .map_err(HandlerError::permanent)?;
        let gate = {
            let mut script = self.script();
            *script.calls.entry(event.id).or_default() += 1;
            if script.broken.contains(&event.id) {
                return Err(HandlerError::transient(anyhow::anyhow!(
                    "dependency down for {}",
                    event.id
                )));
            }
            if let Some(left) = script.fail_times.get_mut(&event.id).filter(|n| **n > 0) {
                *left -= 1;
                return Err(HandlerError::transient(anyhow::anyhow!("flaky dependency")));
            }
            script.gate.clone().filter(|g| g.event == event.id)
        };
        if let Some(gate) = gate {
            gate.entered.notify_one();
            let _permit = gate.release.acquire().await.unwrap();
        }
        let backend = txn.get_database_backend();
        let sql = match backend {
            DbBackend::Postgres => {
                "INSERT INTO test_effects (consumer, event_id, log_offset) VALUES ($1, $2, $3)"
            }
            _ => "INSERT INTO test_effects (consumer, event_id, log_offset) VALUES (?, ?, ?)",
        };
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [
                self.name.clone().into(),
                event.id.to_string().into(),
                record.offset.into(),
            ],
        ))
        .await?;
        Ok(HandlerOutcome::Applied)
    }
}
