//! A process's lifecycle, shared by the gateway and the subscriber binaries: one
//! [`CancellationToken`] that every long-lived task watches (cancelled at SIGINT or SIGTERM,
//! or by a part that cannot go on), one [`TaskTracker`] the process waits on before it exits,
//! and the retry schedule ([`backoff_delay`], [`Backoff`]) every reconnecting loop uses.
//!
//! At the bottom of the crate's layering: it imports nothing else of `stream`.

use std::time::Duration;

pub use tokio_util::sync::CancellationToken;
pub use tokio_util::task::TaskTracker;

/// The delay before retry number `failures` (1 = after the first failure): `initial`, then
/// doubled per further failure, never above `max`. No jitter: a partition retries one record
/// at a time, so there is no herd to spread, and a fixed schedule is easy to reason about in
/// logs and tests.
pub fn backoff_delay(initial: Duration, max: Duration, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(31);
    initial.saturating_mul(1 << doublings).min(max)
}

/// A retry schedule in progress: [`backoff_delay`] from `initial` up to `max`, by failures.
#[derive(Clone, Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    /// A schedule starting at `initial`, doubling up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max,
            failures: 0,
        }
    }

    /// The delay the next [`Backoff::pause`] will wait.
    pub fn next_delay(&self) -> Duration {
        backoff_delay(self.initial, self.max, self.failures.saturating_add(1))
    }

    /// Back to `initial` (after a success).
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Waits the next delay; `false` when `shutdown` was cancelled first.
    pub async fn pause(&mut self, shutdown: &CancellationToken) -> bool {
        let delay = self.next_delay();
        self.failures = self.failures.saturating_add(1);
        tokio::select! {
            () = shutdown.cancelled() => false,
            () = tokio::time::sleep(delay) => true,
        }
    }
}

/// Completes at SIGINT (Ctrl-C) or SIGTERM (Kubernetes, Docker). A signal that cannot be
/// listened for is logged and never completes (the other one still does).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested");
}

/// Cancels `token` at SIGINT or SIGTERM (the task ends early if `token` is cancelled
/// otherwise). Returns `token` for chaining.
pub fn cancel_on_signal(token: CancellationToken) -> CancellationToken {
    let watched = token.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = shutdown_signal() => watched.cancel(),
            () = watched.cancelled() => {}
        }
    });
    token
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_delay_doubles_from_the_initial_value() {
        let delays: Vec<Duration> = (1..=5)
            .map(|n| backoff_delay(100 * MS, Duration::from_secs(30), n))
            .collect();
        assert_eq!(delays, [100 * MS, 200 * MS, 400 * MS, 800 * MS, 1600 * MS]);
    }

    #[test]
    fn the_delay_is_capped_at_the_maximum() {
        assert_eq!(backoff_delay(100 * MS, 500 * MS, 4), 500 * MS);
        assert_eq!(backoff_delay(100 * MS, 500 * MS, 1_000), 500 * MS);
    }

    #[test]
    fn huge_failure_counts_do_not_overflow() {
        let max = Duration::from_secs(30);
        assert_eq!(backoff_delay(Duration::from_secs(1), max, u32::MAX), max);
        assert_eq!(backoff_delay(Duration::MAX, max, 3), max);
    }

    #[test]
    fn zero_failures_waits_the_initial_delay() {
        assert_eq!(backoff_delay(100 * MS, Duration::from_secs(1), 0), 100 * MS);
    }

    #[tokio::test]
    async fn a_backoff_doubles_resets_and_stops_at_cancellation() {
        let shutdown = CancellationToken::new();
        let mut backoff = Backoff::new(2 * MS, 5 * MS);
        assert_eq!(backoff.next_delay(), 2 * MS);
        assert!(backoff.pause(&shutdown).await);
        assert_eq!(backoff.next_delay(), 4 * MS);
        assert!(backoff.pause(&shutdown).await);
        assert_eq!(backoff.next_delay(), 5 * MS);
        backoff.reset();
        assert_eq!(backoff.next_delay(), 2 * MS);
        shutdown.cancel();
        assert!(!backoff.pause(&shutdown).await);
    }
}
