//! Token buckets: one per credential listener (the reference's `rate.NewLimiter(1000, 500)`,
//! answering `429 Too Many Requests`) and one for background refreshes (`--max-service-qps`).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::StatusCode;
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::handler::text_response;

/// A token bucket refilled continuously at `rate` tokens per second up to `burst`.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    pub(crate) fn new(rate: u32, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            rate: f64::from(rate.max(1)),
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Take one token if there is one; never waits.
    pub(crate) fn try_acquire(&self) -> bool {
        let now = Instant::now();
        let mut state = self.state.lock();
        let (tokens, last) = *state;
        let tokens = (tokens + now.duration_since(last).as_secs_f64() * self.rate).min(self.burst);
        if tokens >= 1.0 {
            *state = (tokens - 1.0, now);
            true
        } else {
            *state = (tokens, now);
            false
        }
    }
}

/// axum middleware: reject with the reference's 429 text when the listener's bucket is empty.
pub(crate) async fn limit(
    State(bucket): State<Arc<TokenBucket>>,
    request: Request,
    next: Next,
) -> Response {
    if bucket.try_acquire() {
        next.run(request).await
    } else {
        text_response(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bucket_allows_burst_then_refills() {
        let bucket = TokenBucket::new(2, 3);
        assert!((0..3).all(|_| bucket.try_acquire()));
        assert!(!bucket.try_acquire());
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(bucket.try_acquire());
        assert!(!bucket.try_acquire());
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!((0..3).all(|_| bucket.try_acquire()));
        assert!(!bucket.try_acquire());
    }
}
