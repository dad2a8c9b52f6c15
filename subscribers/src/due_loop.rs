//! The loop shared by the workers that act on rows when their time comes (the reminder
//! scheduler, the webhook dispatcher): run a pass, then sleep until the next row is due, at
//! most `poll`, or until a commit in this process wakes it.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::DbErr;

/// Runs `pass` until `shutdown` completes. A pass returns how long to sleep; a failed pass is
/// logged and retried after `poll`. A pass in flight when `shutdown` completes finishes first.
pub(crate) async fn run_passes<P, F>(
    name: &str,
    poll: Duration,
    shutdown: impl Future<Output = ()>,
    mut pass: P,
) where
    P: FnMut() -> F,
    F: Future<Output = Result<Duration, DbErr>>,
{
    tokio::pin!(shutdown);
    loop {
        // Created before the pass, so a commit during it is not missed.
        let woken = stream::outbox::committed();
        let wait = match pass().await {
            Ok(wait) => wait,
            Err(e) => {
                tracing::warn!(error = %e, "{name} pass failed; retrying");
                poll
            }
        };
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            () = woken => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
    tracing::info!("{name} stopped");
}

/// One pass of a worker whose rows come due: asks `next` when the earliest row is due and
/// runs `work` (which says whether it filled its batch) only when that time has come, so a
/// wake-up with nothing due (most commits wake every worker of the process) costs one query
/// and no write transaction. Returns how long to sleep, as [`sleep_after_pass`].
pub(crate) async fn pass_when_due<N, W>(
    now: impl Fn() -> DateTime<Utc>,
    poll: Duration,
    next: impl Fn() -> N,
    work: impl FnOnce() -> W,
) -> Result<Duration, DbErr>
where
    N: Future<Output = Result<Option<DateTime<Utc>>, DbErr>>,
    W: Future<Output = Result<bool, DbErr>>,
{
    let due = next().await?;
    if due.is_some_and(|at| at <= now()) {
        if work().await? {
            return Ok(sleep_after_pass(true, None, now(), poll));
        }
        let due = next().await?;
        return Ok(sleep_after_pass(false, due, now(), poll));
    }
    Ok(sleep_after_pass(false, due, now(), poll))
}

/// How long to sleep after a pass: no time when the pass filled its batch (more are due),
/// else until `next` (the earliest due row, if any), at most `poll`. The 10 ms floor keeps a
/// pass woken a moment too soon from spinning on sub-millisecond remainders.
pub(crate) fn sleep_after_pass(
    batch_full: bool,
    next: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    poll: Duration,
) -> Duration {
    if batch_full {
        return Duration::ZERO;
    }
    let Some(next) = next else {
        return poll;
    };
    (next - now)
        .to_std()
        .unwrap_or(Duration::ZERO)
        .max(Duration::from_millis(10))
        .min(poll)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sleep_is_zero_for_a_full_batch_else_until_the_next_row_within_bounds() {
        let now = Utc::now();
        let poll = Duration::from_secs(10);
        assert_eq!(sleep_after_pass(true, None, now, poll), Duration::ZERO);
        assert_eq!(sleep_after_pass(false, None, now, poll), poll);
        let soon = now + chrono::Duration::seconds(2);
        assert_eq!(
            sleep_after_pass(false, Some(soon), now, poll),
            Duration::from_secs(2)
        );
        let late = now + chrono::Duration::minutes(5);
        assert_eq!(sleep_after_pass(false, Some(late), now, poll), poll);
        let past = now - chrono::Duration::seconds(1);
        assert_eq!(
            sleep_after_pass(false, Some(past), now, poll),
            Duration::from_millis(10)
        );
    }
}
