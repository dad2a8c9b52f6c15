//! The retry schedule: exponential, capped, deterministic.

use std::time::Duration;

/// The delay before retry number `failures` (1 = after the first failure): `initial`, then
/// doubled per further failure, never above `max`. No jitter: a partition retries one record
/// at a time, so there is no herd to spread, and a fixed schedule is easy to reason about in
/// logs and tests.
pub fn backoff_delay(initial: Duration, max: Duration, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(31);
    initial.saturating_mul(1 << doublings).min(max)
}

#[cfg(test)]
mod tests {
    use super::backoff_delay;
    use std::time::Duration;

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
}
