//! A token bucket per AWS account, protecting the account's STS quota (about 600 requests/s
//! for `AssumeRole`, shared by everything in the account).
//!
//! [`TokenBucket`] is pure arithmetic over instants the caller passes in: a request *reserves*
//! a token, possibly one that only accrues in the future, and is told how long to wait for it.
//! A reservation that would wait longer than the queueing limit is refused and takes nothing,
//! so a burst queues briefly and the excess is answered at once instead of piling up.
//! [`Limiter`] holds one bucket per account and does the waiting with `tokio::time`.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// A bucket of `burst` tokens refilled at `rate` per second.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    /// Tokens available at `at`; negative when reservations were made against future refill.
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`. `rate` is tokens per second (at least 1), `burst` at least 1.
    pub fn new(rate: u32, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            rate: f64::from(rate.max(1)),
            burst,
            tokens: burst,
            at: now,
        }
    }

    /// Reserves one token at `now`: `Some(wait)` (zero when one is available now) if it accrues
    /// within `max_wait`; `None`, taking nothing, otherwise.
    pub fn reserve(&mut self, now: Instant, max_wait: Duration) -> Option<Duration> {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.at = self.at.max(now);
        let after = self.tokens - 1.0;
        let wait = if after >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-after / self.rate)
        };
        if wait > max_wait {
            return None;
        }
        self.tokens = after;
        Some(wait)
    }
}

/// Buckets by account, and the waiting.
#[derive(Debug)]
pub struct Limiter {
    rate: u32,
    burst: u32,
    max_wait: Duration,
    buckets: Mutex<HashMap<String, TokenBucket>>,
}

/// Accounts tracked at most; podid talks to one account (plus target accounts' roles, whose
/// calls are made by the first account's sessions), so this only guards against a bug.
const MAX_ACCOUNTS: usize = 1024;

impl Limiter {
    pub fn new(rate: u32, burst: u32, max_wait: Duration) -> Self {
        Self {
            rate,
            burst,
            max_wait,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for a token of `account`'s bucket and says how long it waited; `None`, at once,
    /// when none accrues within the queueing limit (the caller answers `ThrottlingException`).
    pub async fn acquire(&self, account: &str) -> Option<Duration> {
        let wait = {
            let now = Instant::now();
            let mut buckets = self.buckets.lock();
            if !buckets.contains_key(account) && buckets.len() >= MAX_ACCOUNTS {
                buckets.clear();
            }
            buckets
                .entry(account.to_owned())
                .or_insert_with(|| TokenBucket::new(self.rate, self.burst, now))
                .reserve(now, self.max_wait)
        };
        let wait = wait?;
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Some(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_full_bucket_serves_its_burst_at_once_then_queues_then_refuses() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, 5, t0);
        for _ in 0..5 {
            assert_eq!(b.reserve(t0, 250 * MS), Some(Duration::ZERO));
        }
        // 10/s: the next tokens accrue 100 ms apart; two fit a 250 ms queue, the third does not.
        assert_eq!(b.reserve(t0, 250 * MS), Some(100 * MS));
        assert_eq!(b.reserve(t0, 250 * MS), Some(200 * MS));
        assert_eq!(b.reserve(t0, 250 * MS), None);
        // A refusal takes nothing: the next reservation still waits 300 ms, not 400.
        assert_eq!(b.reserve(t0, 400 * MS), Some(300 * MS));
    }

    #[test]
    fn refill_is_capped_at_the_burst() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(100, 3, t0);
        for _ in 0..3 {
            b.reserve(t0, Duration::ZERO).unwrap();
        }
        assert_eq!(b.reserve(t0, Duration::ZERO), None);
        // An hour later: three tokens, not 360,000.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(b.reserve(later, Duration::ZERO), Some(Duration::ZERO));
        }
        assert_eq!(b.reserve(later, Duration::ZERO), None);
        assert_eq!(
            b.reserve(later + 10 * MS, Duration::ZERO),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn sustained_rate_is_the_configured_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(500, 500, t0);
        let mut granted = 0;
        // Offer 2,000 requests per second for two seconds, with no queueing.
        for ms in 0..2000u64 {
            let now = t0 + Duration::from_millis(ms);
            for _ in 0..2 {
                if b.reserve(now, Duration::ZERO).is_some() {
                    granted += 1;
                }
            }
        }
        // The burst plus 500/s for the two seconds (give or take the last refill step).
        assert!((1499..=1501).contains(&granted), "{granted}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_limiter_keeps_one_bucket_per_account_and_waits_on_the_clock() {
        let limiter = Limiter::new(10, 1, 150 * MS);
        assert_eq!(limiter.acquire("111111111111").await, Some(Duration::ZERO));
        // Another account has its own full bucket.
        assert_eq!(limiter.acquire("222222222222").await, Some(Duration::ZERO));
        let before = Instant::now();
        assert_eq!(limiter.acquire("111111111111").await, Some(100 * MS));
        assert_eq!(Instant::now() - before, 100 * MS);
        // The bucket is empty again; 100 ms out is within 150 ms, 200 ms is not.
        let refused = {
            let first = limiter.acquire("111111111111");
            let second = limiter.acquire("111111111111");
            let (a, b) = tokio::join!(first, second);
            (a, b)
        };
        assert_eq!(refused, (Some(100 * MS), None));
    }
}
