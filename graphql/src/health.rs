//! What `/readyz` knows beyond the database: whether each long-lived task of the gateway (the
//! in-process subscribers, the relay, the live tail) is still running.
//!
//! A task that stops before shutdown was asked for has halted (it returned, failed or
//! panicked): it is marked here with its reason, logged as an error, exported as
//! `taskstream_component_up{component} 0`, and `/readyz` answers 503 naming it, so an
//! orchestrator stops routing to (and eventually restarts) a gateway that would otherwise
//! accept writes nobody processes. Each component runs on its own task of the process's
//! [`TaskTracker`] ([`Components::spawn`]), so one that panics is seen at once.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use stream::lifecycle::{CancellationToken, TaskTracker};
use tokio::task::JoinHandle;

/// The state of one component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ComponentState {
    Running,
    /// Stopped before shutdown, with the reason.
    Halted(String),
}

/// The gateway's long-lived components, shared by the tasks (which report) and `/readyz`
/// (which reads).
#[derive(Clone, Debug, Default)]
pub struct Components(Arc<Mutex<BTreeMap<&'static str, ComponentState>>>);

impl Components {
    pub fn new() -> Components {
        Components::default()
    }

    /// Marks `name` running (it is then part of readiness).
    pub fn running(&self, name: &'static str) {
        self.lock().insert(name, ComponentState::Running);
        telemetry::metrics::metrics().component_up(name, true);
    }

    /// Marks `name` halted with `reason`.
    pub fn halted(&self, name: &'static str, reason: impl Into<String>) {
        let reason = reason.into();
        tracing::error!(component = name, %reason, "a gateway component halted; /readyz now fails");
        self.lock().insert(name, ComponentState::Halted(reason));
        telemetry::metrics::metrics().component_up(name, false);
    }

    /// Every component and its state, by name.
    pub fn snapshot(&self) -> BTreeMap<&'static str, ComponentState> {
        self.lock().clone()
    }

    /// Whether every registered component is running.
    pub fn all_running(&self) -> bool {
        self.lock()
            .values()
            .all(|state| *state == ComponentState::Running)
    }

    /// Runs `task` as component `name` on its own task of `tracker`: running now, halted if it
    /// ends (with its error, "stopped on its own", or its panic) before `shutdown` is
    /// cancelled. The handle yields the task's result, a panic as an error.
    pub fn spawn<F>(
        &self,
        tracker: &TaskTracker,
        name: &'static str,
        shutdown: &CancellationToken,
        task: F,
    ) -> JoinHandle<anyhow::Result<()>>
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.running(name);
        let components = self.clone();
        let shutdown = shutdown.clone();
        let task = tracker.spawn(task);
        tracker.spawn(async move {
            let result = task
                .await
                .unwrap_or_else(|e| Err(anyhow::anyhow!("the task {e}")));
            if !shutdown.is_cancelled() {
                let reason = match &result {
                    Ok(()) => "stopped on its own".to_owned(),
                    Err(e) => format!("{e:#}"),
                };
                components.halted(name, reason);
            }
            result
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, ComponentState>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        name: &'static str,
        shutdown: &CancellationToken,
        task: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) -> (Components, JoinHandle<anyhow::Result<()>>) {
        let components = Components::new();
        let handle = components.spawn(&TaskTracker::new(), name, shutdown, task);
        (components, handle)
    }

    #[tokio::test]
    async fn a_task_that_fails_before_shutdown_is_halted_with_its_error() {
        let (components, handle) = run("relay", &CancellationToken::new(), async {
            Err(anyhow::anyhow!("broker gone"))
        });
        assert!(handle.await.unwrap().is_err());
        assert_eq!(
            components.snapshot()["relay"],
            ComponentState::Halted("broker gone".into())
        );
        assert!(!components.all_running());
    }

    #[tokio::test]
    async fn a_task_that_ends_after_shutdown_stays_healthy() {
        let shutdown = CancellationToken::new();
        let stopped = shutdown.clone();
        let (components, handle) = run("live", &shutdown, async move {
            stopped.cancelled().await;
            Ok(())
        });
        shutdown.cancel();
        handle.await.unwrap().unwrap();
        assert!(components.all_running());
    }

    #[tokio::test]
    async fn a_task_that_returns_early_without_an_error_is_halted_too() {
        let (components, handle) = run("subscribers", &CancellationToken::new(), async { Ok(()) });
        handle.await.unwrap().unwrap();
        assert_eq!(
            components.snapshot()["subscribers"],
            ComponentState::Halted("stopped on its own".into())
        );
    }

    #[tokio::test]
    async fn a_task_that_panics_is_halted_naming_the_panic() {
        let (components, handle) = run("scheduler", &CancellationToken::new(), async {
            panic!("boom")
        });
        assert!(handle.await.unwrap().is_err());
        let ComponentState::Halted(reason) = &components.snapshot()["scheduler"] else {
            panic!("still running");
        };
        assert!(
            reason.contains("panicked") && reason.contains("boom"),
            "{reason}"
        );
    }
}
