//! `podid-agent-loadgen`: the node agent benchmarks of docs/BENCHMARKS.md ("Node agent") that
//! wrk cannot do: cold misses, filling the cache for RSS, and a burst of new pods followed by a
//! token rotation, each with the agent's own Prometheus counters read before and after.
//!
//! Tokens are minted in-process with the dev cluster's key (`<data-dir>/dev-cluster-signing-key.pem`)
//! before any timing starts. Only loopback addresses are ever contacted. Run it via ../run.sh.

mod pods;
mod probe;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use reqwest::header::AUTHORIZATION;

use crate::pods::Minter;
use crate::probe::{Counters, Rss, percentiles};

/// Pods served before the "warm" RSS reading of `fill`.
const WARM_UP_PODS: u64 = 16;

#[derive(Parser)]
struct Cli {
    /// The `podid dev` data dir (for the cluster signing key).
    #[arg(long)]
    data_dir: PathBuf,
    /// The agent's credentials URL.
    #[arg(long, default_value = "http://127.0.0.1:7481/v1/credentials")]
    agent: String,
    /// The agent's metrics URL.
    #[arg(long, default_value = "http://127.0.0.1:7483/metrics")]
    metrics: String,
    #[arg(long, default_value = "default")]
    namespace: String,
    #[arg(long, default_value = "bench-sa")]
    service_account: String,
    #[command(subcommand)]
    step: Step,
}

#[derive(Subcommand)]
enum Step {
    /// First request of `pods` new pods, one after another: each is a miss through the server.
    Cold {
        #[arg(long, default_value_t = 500)]
        pods: u64,
    },
    /// Cache `pods` new pods (`concurrency` in flight) and report the agent's RSS around it.
    Fill {
        #[arg(long)]
        pods: u64,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// The agent's pid, for /proc/<pid>/status.
        #[arg(long)]
        pid: u32,
    },
    /// `pods` new pods asking `per_pod` times each, all at once; then all rotate their token.
    Burst {
        #[arg(long, default_value_t = 500)]
        pods: u64,
        #[arg(long, default_value_t = 3)]
        per_pod: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let minter = Minter::load(&cli.data_dir, &cli.namespace, &cli.service_account)?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(4096)
        .timeout(Duration::from_secs(30))
        .build()?;
    let bench = Bench {
        cli: &cli,
        minter,
        client,
    };
    match cli.step {
        Step::Cold { pods } => bench.cold(pods).await,
        Step::Fill {
            pods,
            concurrency,
            pid,
        } => bench.fill(pods, concurrency, pid).await,
        Step::Burst { pods, per_pod } => bench.burst(pods, per_pod).await,
    }
}

struct Bench<'a> {
    cli: &'a Cli,
    minter: Minter,
    client: reqwest::Client,
}

impl Bench<'_> {
    async fn counters(&self) -> anyhow::Result<Counters> {
        Counters::scrape(&self.client, &self.cli.metrics).await
    }

    async fn cold(&self, pods: u64) -> anyhow::Result<()> {
        let tokens = self.minter.tokens(1, pods, 5)?;
        let before = self.counters().await?;
        let mut micros = Vec::with_capacity(tokens.len());
        for token in &tokens {
            let started = Instant::now();
            let len = get(&self.client, &self.cli.agent, token).await?;
            micros.push(u64::try_from(started.elapsed().as_micros())?);
            std::hint::black_box(len);
        }
        let delta = self.counters().await?.since(before);
        println!("cold-miss sequential: {}", percentiles(&mut micros));
        println!("cold-miss counters: {delta}");
        Ok(())
    }

    async fn fill(&self, pods: u64, concurrency: usize, pid: u32) -> anyhow::Result<()> {
        let tokens = Arc::new(self.minter.tokens(2, pods, 5)?);
        let warm_up = self.minter.tokens(4, WARM_UP_PODS, 5)?;
        // Idle: nothing served yet. Warm: a few pods served, so the upstream connection, the
        // cluster keys and the runtime's buffers exist; growth past that is the cache's.
        let rss_idle = Rss::read(pid)?;
        for token in &warm_up {
            get(&self.client, &self.cli.agent, token).await?;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss_before = Rss::read(pid)?;
        let before = self.counters().await?;
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..concurrency {
            let (client, url, tokens, next) = (
                self.client.clone(),
                self.cli.agent.clone(),
                Arc::clone(&tokens),
                Arc::clone(&next),
            );
            workers.spawn(async move {
                let mut bytes = 0usize;
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(token) = tokens.get(i) else {
                        return Ok::<_, anyhow::Error>(bytes);
                    };
                    bytes += get(&client, &url, token).await?;
                }
            });
        }
        let mut bytes = 0usize;
        while let Some(done) = workers.join_next().await {
            bytes += done??;
        }
        // Let moka's housekeeping and the allocator settle before reading RSS.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let delta = self.counters().await?.since(before);
        let rss_after = Rss::read(pid)?;
        let avg = bytes as f64 / pods as f64;
        let grown = rss_after.vm_rss.saturating_sub(rss_before.vm_rss) * 1024;
        println!("fill {pods} pods: response bytes total={bytes} avg={avg:.0}");
        println!("fill rss idle:   {rss_idle}");
        println!("fill rss warm:   {rss_before} (after {WARM_UP_PODS} pods)");
        println!("fill rss after:  {rss_after}");
        // Each entry keeps the pod's token for its refreshes: the other irreducible part.
        let token_bytes: usize = tokens.iter().map(String::len).sum();
        println!(
            "fill growth warm->after: {grown} bytes = {:.0} bytes/pod = {:.2}x the cached response bytes (overhead {:.0} bytes/pod)",
            grown as f64 / pods as f64,
            grown as f64 / bytes as f64,
            (grown as f64 - bytes as f64) / pods as f64
        );
        println!(
            "fill per pod: response {avg:.0} + token {:.0} + agent overhead {:.0} bytes",
            token_bytes as f64 / pods as f64,
            (grown as f64 - bytes as f64 - token_bytes as f64) / pods as f64
        );
        let from_idle = rss_after.vm_rss.saturating_sub(rss_idle.vm_rss) * 1024;
        println!(
            "fill growth idle->after: {from_idle} bytes = {:.2}x the cached response bytes",
            from_idle as f64 / bytes as f64
        );
        println!("fill counters: {delta}");
        if delta.cache_size < (pods + WARM_UP_PODS) as f64 {
            bail!(
                "only {} pods cached of {pods}: raise --max-cache-size",
                delta.cache_size
            );
        }
        Ok(())
    }

    async fn burst(&self, pods: u64, per_pod: usize) -> anyhow::Result<()> {
        let first = self.minter.tokens(3, pods, 5)?;
        let rotated = self.minter.tokens(3, pods, 0)?;
        for (label, tokens) in [("burst", &first), ("rotation", &rotated)] {
            let before = self.counters().await?;
            let started = Instant::now();
            let mut all = tokio::task::JoinSet::new();
            for token in tokens.iter() {
                for _ in 0..per_pod {
                    let (client, url, token) =
                        (self.client.clone(), self.cli.agent.clone(), token.clone());
                    all.spawn(async move {
                        let t = Instant::now();
                        get(&client, &url, &token).await.map(|_| t.elapsed())
                    });
                }
            }
            let mut micros = Vec::new();
            while let Some(done) = all.join_next().await {
                micros.push(u64::try_from(done??.as_micros())?);
            }
            let wall = started.elapsed();
            let delta = self.counters().await?.since(before);
            println!(
                "{label}: {pods} pods x {per_pod} concurrent requests in {:.0} ms; {}",
                wall.as_secs_f64() * 1000.0,
                percentiles(&mut micros)
            );
            println!(
                "{label} counters: {delta} -> {:.2} upstream calls per pod",
                delta.upstream_calls / pods as f64
            );
        }
        Ok(())
    }
}

/// One credentials request; the response body's length. Anything but 200 is an error.
async fn get(client: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<usize> {
    let response = client
        .get(url)
        .header(AUTHORIZATION, token)
        .send()
        .await
        .context("agent request")?;
    let status = response.status();
    let body = response.bytes().await?;
    if !status.is_success() {
        bail!(
            "agent answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(body.len())
}
