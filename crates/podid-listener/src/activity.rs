//! Per-connection deadlines. The request wrapper marks requests in and out ([`Activity::begin`]);
//! a watchdog beside the connection ([`Activity::expired`]) wakes at the next deadline and
//! decides whether it has really passed. Requests therefore pay two atomic operations and one
//! clock read, and never wake the watchdog.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Which deadline closed a connection (the `phase` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// No request arrived within the header-read timeout of the connection's start.
    Header,
    /// No request arrived within the idle timeout of the previous response.
    Idle,
    /// The TLS handshake did not finish in time (only built with the `tls` feature; its counter
    /// is registered regardless, so dashboards see one set of labels).
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    TlsHandshake,
}

/// What one connection is doing, shared by its requests and its watchdog.
#[derive(Debug)]
pub(crate) struct Activity {
    /// When the connection became ready for its first request.
    origin: Instant,
    /// Requests read but not yet answered (more than one only on h2).
    in_flight: AtomicU32,
    /// True once the first request has been read.
    served: AtomicBool,
    /// Milliseconds after `origin` at which the last request was answered.
    idle_since_ms: AtomicU64,
}

/// A request in flight; dropping it marks the request answered.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Activity>);

impl Activity {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            origin: Instant::now(),
            in_flight: AtomicU32::new(0),
            served: AtomicBool::new(false),
            idle_since_ms: AtomicU64::new(0),
        })
    }

    /// Marks a request read (its head is complete; the body may still be arriving).
    pub(crate) fn begin(self: &Arc<Self>) -> InFlight {
        self.served.store(true, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(Arc::clone(self))
    }

    /// Resolves when the connection has waited too long for a request: `header` after its
    /// start if no request ever came, or `idle` after its last response. Never while a request
    /// is in flight.
    pub(crate) async fn expired(&self, header: Duration, idle: Duration) -> Phase {
        let mut deadline = self.origin + header;
        loop {
            tokio::time::sleep_until(deadline).await;
            match self.check(Instant::now(), idle) {
                Ok(phase) => return phase,
                Err(next) => deadline = next,
            }
        }
    }

    /// At or after the header deadline: the phase that expired, or when to look again.
    fn check(&self, now: Instant, idle: Duration) -> Result<Phase, Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            // Whatever happens next, idleness starts no earlier than now.
            return Err(now + idle);
        }
        if !self.served.load(Ordering::Relaxed) {
            return Ok(Phase::Header);
        }
        let idle_since =
            self.origin + Duration::from_millis(self.idle_since_ms.load(Ordering::Relaxed));
        let due = idle_since + idle;
        if due <= now {
            Ok(Phase::Idle)
        } else {
            Err(due)
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let elapsed = self.0.origin.elapsed().as_millis();
        self.0.idle_since_ms.store(
            u64::try_from(elapsed).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        // Release: a watchdog that sees zero in flight also sees the time stored above.
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: Duration = Duration::from_secs(5);
    const IDLE: Duration = Duration::from_secs(60);

    async fn expires_after(activity: &Activity) -> (Phase, Duration) {
        let start = Instant::now();
        let phase = activity.expired(HEADER, IDLE).await;
        (phase, start.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_without_requests_expires_after_the_header_timeout() {
        let activity = Activity::new();
        assert_eq!(expires_after(&activity).await, (Phase::Header, HEADER));
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_expires_idle_timeout_after_its_last_response() {
        let activity = Activity::new();
        tokio::time::advance(Duration::from_secs(1)).await;
        drop(activity.begin());
        // Answered at 1 s: idle until 61 s, measured from the connection's start.
        let (phase, after) = expires_after(&activity).await;
        assert_eq!(phase, Phase::Idle);
        assert_eq!(after, Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_flight_holds_the_deadline_off() {
        let activity = Activity::new();
        let request = activity.begin();
        let watchdog = {
            let activity = Arc::clone(&activity);
            tokio::spawn(async move { expires_after(&activity).await })
        };
        tokio::time::sleep(Duration::from_secs(100)).await;
        assert!(!watchdog.is_finished());
        drop(request);
        let (phase, after) = watchdog.await.unwrap();
        assert_eq!(phase, Phase::Idle);
        assert_eq!(after, Duration::from_secs(160));
    }
}
