//! The feed route's rate limit: a token bucket per key, kept as GCRA (the generic cell rate
//! algorithm: one "theoretical arrival time" per key, no timer), in memory, per gateway
//! process. Two limiters guard `GET /calendar/...`:
//!
//! - per client address (`CALENDAR_FEED_RATE_PER_ADDRESS` requests a minute, default 60),
//!   checked before the feed is looked up, so unknown secrets cost a client its own budget;
//!   the address is the TCP peer, an IPv6 one counted by its /64 (one host's addresses);
//! - per feed (`CALENDAR_FEED_RATE_PER_FEED`, default 10 a minute), checked once the feed is
//!   found, so a feed shared too widely cannot make the gateway render it without end.
//!
//! A limit of `n` a minute allows a burst of `n` requests, then one every `60/n` s. A refused
//! request is 429 with `Retry-After` (whole seconds until one more would pass). 0 turns a
//! limiter off. Behind a reverse proxy every client has the proxy's address, so there the
//! per-address limit counts them all together: raise it, or set 0 and let the proxy limit
//! clients (the per-feed limit still applies). Not shared between gateway replicas: each
//! allows its own budget.
//!
//! Memory is bounded: at most [`MAX_KEYS`] keys per limiter; when full, keys whose bucket has
//! refilled are forgotten (they are as good as new), and if none has, all are (a flood of
//! distinct keys then passes for a moment rather than using memory without end).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

/// Most keys one limiter remembers.
pub const MAX_KEYS: usize = 100_000;

/// Default of `CALENDAR_FEED_RATE_PER_ADDRESS`: a household or office behind one address
/// with many subscriptions stays well within it; a client hammering the route does not.
pub const DEFAULT_PER_ADDRESS_PER_MINUTE: u32 = 60;

/// Default of `CALENDAR_FEED_RATE_PER_FEED`: calendar apps refresh a subscription every few
/// minutes at most (Apple's shortest is 5), so ten a minute covers a user's devices together.
pub const DEFAULT_PER_FEED_PER_MINUTE: u32 = 10;

/// A request that may not pass yet: when one would.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    /// Whole seconds, rounded up (the `Retry-After` header's unit), at least 1.
    pub fn seconds(self) -> u64 {
        let whole = self.0.as_secs() + u64::from(self.0.subsec_nanos() > 0);
        whole.max(1)
    }
}

/// One GCRA limiter over keys of type `K`.
#[derive(Debug)]
pub struct Limiter<K> {
    /// Time between two requests at the sustained rate; `None`: off.
    interval: Option<Duration>,
    /// How far ahead of now a key's arrival time may run: (burst - 1) intervals.
    tolerance: Duration,
    /// Each key's theoretical arrival time.
    keys: Mutex<HashMap<K, Instant>>,
}

impl<K: Eq + Hash + Clone> Limiter<K> {
    /// `per_minute` requests a minute, in bursts of as many; 0 is off.
    pub fn per_minute(per_minute: u32) -> Limiter<K> {
        let interval = (per_minute > 0).then(|| Duration::from_secs(60) / per_minute);
        Limiter {
            interval,
            tolerance: interval.unwrap_or_default() * per_minute.saturating_sub(1),
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request of `key` at `now`, or says when it may come back.
    pub fn check(&self, key: &K, now: Instant) -> Result<(), RetryAfter> {
        let Some(interval) = self.interval else {
            return Ok(());
        };
        let mut keys = self
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let arrival = keys.get(key).copied().unwrap_or(now).max(now);
        let allowed_from = arrival.checked_sub(self.tolerance).unwrap_or(now);
        if now < allowed_from {
            return Err(RetryAfter(allowed_from - now));
        }
        if keys.len() >= MAX_KEYS && !keys.contains_key(key) {
            keys.retain(|_, arrival| *arrival > now);
            if keys.len() >= MAX_KEYS {
                keys.clear();
            }
        }
        keys.insert(key.clone(), arrival + interval);
        Ok(())
    }
}

/// The two limiters of the feed route.
#[derive(Debug)]
pub struct FeedRateLimits {
    pub per_address: Limiter<IpAddr>,
    pub per_feed: Limiter<Uuid>,
}

impl FeedRateLimits {
    pub fn new(per_address_per_minute: u32, per_feed_per_minute: u32) -> FeedRateLimits {
        FeedRateLimits {
            per_address: Limiter::per_minute(per_address_per_minute),
            per_feed: Limiter::per_minute(per_feed_per_minute),
        }
    }
}

impl Default for FeedRateLimits {
    fn default() -> FeedRateLimits {
        FeedRateLimits::new(DEFAULT_PER_ADDRESS_PER_MINUTE, DEFAULT_PER_FEED_PER_MINUTE)
    }
}

/// The key a client address is counted under: an IPv4 address (also when mapped into IPv6),
/// or the /64 network of an IPv6 address, since one host or home network holds a whole /64.
pub fn address_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let network = u128::from(v6) & (u128::MAX << 64);
                IpAddr::V6(network.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_one_request_per_interval() {
        let limiter = Limiter::per_minute(3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check(&"a", t0), Ok(()));
        }
        // The fourth waits for the first token to come back: 20 s at 3 a minute.
        assert_eq!(
            limiter.check(&"a", t0),
            Err(RetryAfter(Duration::from_secs(20)))
        );
        // Other keys have their own bucket.
        assert_eq!(limiter.check(&"b", t0), Ok(()));
        let later = t0 + Duration::from_secs(20);
        assert_eq!(limiter.check(&"a", later), Ok(()));
        assert_eq!(
            limiter.check(&"a", later),
            Err(RetryAfter(Duration::from_secs(20)))
        );
        // A minute of quiet refills the bucket.
        let quiet = later + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(limiter.check(&"a", quiet), Ok(()));
        }
        assert!(limiter.check(&"a", quiet).is_err());
    }

    #[test]
    fn refusals_do_not_count() {
        let limiter = Limiter::per_minute(1);
        let t0 = Instant::now();
        assert!(limiter.check(&1, t0).is_ok());
        for _ in 0..10 {
            assert!(limiter.check(&1, t0 + Duration::from_secs(30)).is_err());
        }
        assert!(limiter.check(&1, t0 + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn zero_is_off() {
        let limiter = Limiter::per_minute(0);
        let t0 = Instant::now();
        for _ in 0..1000 {
            assert!(limiter.check(&1, t0).is_ok());
        }
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(RetryAfter(Duration::from_millis(1)).seconds(), 1);
        assert_eq!(RetryAfter(Duration::from_millis(20_001)).seconds(), 21);
        assert_eq!(RetryAfter(Duration::from_secs(20)).seconds(), 20);
        assert_eq!(RetryAfter(Duration::ZERO).seconds(), 1);
    }

    #[test]
    fn memory_is_bounded() {
        let limiter = Limiter::per_minute(1);
        let t0 = Instant::now();
        for key in 0..(MAX_KEYS + 10) {
            assert!(limiter.check(&key, t0).is_ok());
        }
        assert!(limiter.keys.lock().unwrap().len() <= MAX_KEYS);
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }
}
