//! Runs N jobs with C in flight and summarises their latencies and outcomes.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::BenchError;
use crate::client::Reply;

/// What a run did: wall time, latencies (µs, sorted) and the count per HTTP status.
#[derive(Debug)]
pub struct Outcome {
    pub elapsed: Duration,
    pub latencies: Vec<u64>,
    pub statuses: BTreeMap<u16, usize>,
    pub transport_errors: usize,
    pub first_error: Option<String>,
}

impl Outcome {
    pub fn ok(&self) -> usize {
        self.statuses
            .iter()
            .filter(|(s, _)| (200..300).contains(*s))
            .map(|(_, n)| n)
            .sum()
    }

    pub fn rate(&self) -> f64 {
        self.ok() as f64 / self.elapsed.as_secs_f64()
    }

    /// The `q` quantile (0..=1) of the latencies, in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let last = self.latencies.len() - 1;
        let i = ((last as f64) * q).round() as usize;
        self.latencies.get(i.min(last)).copied().unwrap_or(0) as f64 / 1000.0
    }

    pub fn summary(&self, what: &str) -> String {
        format!(
            "{what}: {} ok of {} in {:.2} s = {:.0}/s; latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms; statuses {:?}; transport errors {}{}",
            self.ok(),
            self.latencies.len() + self.transport_errors,
            self.elapsed.as_secs_f64(),
            self.rate(),
            self.quantile_ms(0.5),
            self.quantile_ms(0.9),
            self.quantile_ms(0.99),
            self.quantile_ms(1.0),
            self.statuses,
            self.transport_errors,
            self.first_error
                .as_deref()
                .map(|e| format!("; first error: {e}"))
                .unwrap_or_default(),
        )
    }
}

/// Calls `job(i)` for every `i` in `0..count`, at most `concurrency` at a time.
pub async fn run<F, Fut>(count: usize, concurrency: usize, job: F) -> Outcome
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Reply, BenchError>> + Send + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let job = Arc::new(job);
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let next = Arc::clone(&next);
            let job = Arc::clone(&job);
            tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
                let mut errors = 0usize;
                let mut first_error = None;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    match job(i).await {
                        Ok(r) => {
                            if !(200..300).contains(&r.status) && first_error.is_none() {
                                first_error = Some(format!(
                                    "HTTP {}: {}",
                                    r.status,
                                    String::from_utf8_lossy(&r.body)
                                        .chars()
                                        .take(300)
                                        .collect::<String>()
                                ));
                            }
                            lat.push(r.micros);
                            *statuses.entry(r.status).or_default() += 1;
                        }
                        Err(e) => {
                            errors += 1;
                            first_error.get_or_insert(e.to_string());
                        }
                    }
                }
                (lat, statuses, errors, first_error)
            })
        })
        .collect();
    let mut out = Outcome {
        elapsed: Duration::ZERO,
        latencies: Vec::with_capacity(count),
        statuses: BTreeMap::new(),
        transport_errors: 0,
        first_error: None,
    };
    for w in workers {
        match w.await {
            Ok((lat, statuses, errors, first_error)) => {
                out.latencies.extend(lat);
                for (s, n) in statuses {
                    *out.statuses.entry(s).or_default() += n;
                }
                out.transport_errors += errors;
                if out.first_error.is_none() {
                    out.first_error = first_error;
                }
            }
            Err(e) => {
                out.transport_errors += 1;
                out.first_error.get_or_insert(e.to_string());
            }
        }
    }
    out.elapsed = started.elapsed();
    out.latencies.sort_unstable();
    out
}
