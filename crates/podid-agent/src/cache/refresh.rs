//! Refresh-ahead: renew cached credentials before they are needed, within `--max-service-qps`,
//! and only for pods that are still asking.
//!
//! * Due at `min(retention, lifetime / 2)` minus jitter after the last fetch.
//! * Idle entries (no request for two refresh periods) are not refreshed: their pod has most
//!   likely terminated (reference issue #171: renewals for dead pods ate EKS Auth quota). They
//!   stay servable until they expire, and refresh again once their pod asks.
//! * Irrecoverable errors (the reference's set) evict at once; recoverable ones keep the cached
//!   credentials (they are served while more than `MIN_TTL` remain) and retry with backoff.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::time::{Instant, MissedTickBehavior};

use super::{CredentialCache, Entry};
use crate::ratelimit::TokenBucket;

/// Bounds of the scan interval (a tenth of the retention): fine-grained enough for short test
/// retentions, cheap enough for 2000 entries every few seconds.
const MIN_TICK: Duration = Duration::from_millis(50);
const MAX_TICK: Duration = Duration::from_secs(10);
/// Longest wait between retries after recoverable refresh failures.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(600);

impl CredentialCache {
    /// Scan for due entries forever. Returns at once when caching is disabled.
    pub(crate) async fn run_refresh(self: Arc<Self>, limiter: TokenBucket) {
        let Some(entries) = self.entries.clone() else {
            return;
        };
        let tick = (self.retention / 10).clamp(MIN_TICK, MAX_TICK);
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            interval.tick().await;
            let now = Instant::now();
            for (key, entry) in &entries {
                let token = {
                    let mut state = entry.state.lock();
                    if state.refreshing || now < state.next_refresh {
                        continue;
                    }
                    if now.saturating_duration_since(state.last_used) > entry.refresh_period * 2 {
                        continue;
                    }
                    if !limiter.try_acquire() {
                        break;
                    }
                    state.refreshing = true;
                    Arc::clone(&state.token)
                };
                tokio::spawn(Arc::clone(&self).refresh_one(key, entry, token));
            }
            self.names.purge();
            self.metrics
                .cache_size
                .set(i64::try_from(entries.entry_count()).unwrap_or(i64::MAX));
        }
    }

    async fn refresh_one(self: Arc<Self>, key: Arc<Arc<str>>, old: Arc<Entry>, token: Arc<str>) {
        let key: Arc<str> = Arc::clone(&key);
        let identity = (Arc::clone(&old.namespace), Arc::clone(&old.service_account));
        let last_used = old.state.lock().last_used;
        let result = match self.upstream.assume(&token).await {
            Ok(fetched) => self.build_entry(fetched, &token, identity, last_used),
            Err(e) => Err(e),
        };
        let Some(entries) = &self.entries else { return };
        let still_current = entries
            .get(&key)
            .await
            .is_some_and(|cur| Arc::ptr_eq(&cur, &old));
        match result {
            Ok(entry) => {
                self.metrics.cache_state("refresh");
                tracing::info!(association_id = %entry.association_id, "refreshed cached credentials for association");
                if still_current {
                    entries.insert(key, entry).await;
                }
            }
            Err(e) if e.is_irrecoverable() => {
                self.metrics.cache_error(false, e.code());
                tracing::warn!(association_id = %old.association_id, error = %e.body(), "refresh refused; evicting cached credentials");
                if still_current {
                    entries.invalidate(&key).await;
                }
            }
            Err(e) => {
                self.metrics.cache_error(true, e.code());
                let mut state = old.state.lock();
                state.failures = state.failures.saturating_add(1);
                let delay = retry_delay(state.failures, old.refresh_period);
                tracing::warn!(
                    association_id = %old.association_id,
                    error = %e.body(),
                    retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "refresh failed; serving cached credentials meanwhile"
                );
                state.next_refresh = Instant::now() + delay;
                state.refreshing = false;
            }
        }
    }
}

/// Exponential from a quarter period (at most a minute), capped, with 50–100% jitter.
fn retry_delay(failures: u32, period: Duration) -> Duration {
    let base = (period / 4).min(Duration::from_secs(60));
    let exp = failures.saturating_sub(1).min(16);
    base.saturating_mul(1u32 << exp)
        .min(MAX_RETRY_DELAY)
        .mul_f64(rand::rng().random_range(0.5..=1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_grows_and_is_capped() {
        let period = Duration::from_secs(3 * 3600);
        assert!(retry_delay(1, period) <= Duration::from_secs(60));
        assert!(retry_delay(1, period) >= Duration::from_secs(30));
        assert!(retry_delay(3, period) >= Duration::from_secs(120));
        assert!(retry_delay(u32::MAX, period) <= MAX_RETRY_DELAY);
        assert!(retry_delay(1, Duration::from_secs(1)) <= Duration::from_millis(250));
    }
}
