//! What the benchmarks read from outside the agent: its Prometheus counters and its memory.

use anyhow::Context as _;

/// The counters the benchmarks compare before and after a step.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counters {
    /// `pod_identity_upstream_calls_total`, all results: EKS Auth HTTP attempts.
    pub(crate) upstream_calls: f64,
    /// `pod_identity_cache_state_total{state="miss"}`: requests that started an upstream fetch.
    pub(crate) misses: f64,
    /// `pod_identity_cache_state_total{state="hit"}`.
    pub(crate) hits: f64,
    /// `pod_identity_local_validation_total{result="success"}`: rotated tokens checked locally.
    pub(crate) local_ok: f64,
    /// `pod_identity_cache_size`.
    pub(crate) cache_size: f64,
}

impl Counters {
    pub(crate) async fn scrape(client: &reqwest::Client, url: &str) -> anyhow::Result<Self> {
        let text = client
            .get(url)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        let mut c = Self::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((name, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let value: f64 = value.parse().unwrap_or(0.0);
            if name.starts_with("pod_identity_upstream_calls_total") {
                c.upstream_calls += value;
            } else if name == r#"pod_identity_cache_state_total{state="miss"}"# {
                c.misses = value;
            } else if name == r#"pod_identity_cache_state_total{state="hit"}"# {
                c.hits = value;
            } else if name == r#"pod_identity_local_validation_total{result="success"}"# {
                c.local_ok = value;
            } else if name == "pod_identity_cache_size" {
                c.cache_size = value;
            }
        }
        Ok(c)
    }

    pub(crate) fn since(self, before: Self) -> Self {
        Self {
            upstream_calls: self.upstream_calls - before.upstream_calls,
            misses: self.misses - before.misses,
            hits: self.hits - before.hits,
            local_ok: self.local_ok - before.local_ok,
            cache_size: self.cache_size,
        }
    }
}

impl std::fmt::Display for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "upstream_calls={} misses={} hits={} local_validation_ok={} cache_size={}",
            self.upstream_calls, self.misses, self.hits, self.local_ok, self.cache_size
        )
    }
}

/// VmRSS, RssAnon and RssFile of `pid`, in KiB.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rss {
    pub(crate) vm_rss: u64,
    pub(crate) anon: u64,
    pub(crate) file: u64,
}

impl Rss {
    pub(crate) fn read(pid: u32) -> anyhow::Result<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("reading /proc/{pid}/status"))?;
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        Ok(Self {
            vm_rss: field("VmRSS:"),
            anon: field("RssAnon:"),
            file: field("RssFile:"),
        })
    }
}

impl std::fmt::Display for Rss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "VmRSS={} KiB RssAnon={} KiB RssFile={} KiB",
            self.vm_rss, self.anon, self.file
        )
    }
}

/// p50/p99/max of `samples` (microseconds), sorted in place.
pub(crate) fn percentiles(samples: &mut [u64]) -> String {
    samples.sort_unstable();
    let at = |p: f64| -> f64 {
        let n = samples.len();
        let rank = ((p * n as f64).ceil() as usize).clamp(1, n.max(1));
        samples.get(rank - 1).copied().unwrap_or(0) as f64 / 1000.0
    };
    format!(
        "n={} p50={:.2} ms p90={:.2} ms p99={:.2} ms max={:.2} ms",
        samples.len(),
        at(0.50),
        at(0.90),
        at(0.99),
        at(1.0)
    )
}
