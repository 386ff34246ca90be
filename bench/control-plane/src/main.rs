//! `podid-loadgen`: load generators for podid's control-plane benchmarks (docs/BENCHMARKS.md).
//!
//! Owns: driving a running `podid server` (or moto) over loopback HTTP with SigV4-signed
//! requests, at a fixed number in flight, and printing rates and latency quantiles. Does not own:
//! starting servers (bench/run-control-plane.sh does) or the in-memory index benchmark (that is
//! `cargo bench -p podid-server --features bench-support --bench association_index`). Sends nothing off the machine:
//! endpoints must be loopback.

mod associations;
mod client;
mod cpu;
mod drive;
mod issuance;
mod sts;

use clap::{Parser, Subcommand};

use crate::client::Client;

#[derive(Debug, Parser)]
struct Cli {
    /// Server URL; must be a loopback address.
    #[arg(long, default_value = "http://127.0.0.1:7400")]
    endpoint: String,
    /// Tokio worker threads for the client (default: the CPUs this process may use).
    #[arg(long)]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Issue 2: create N associations in one cluster, then list them all in pages of 100.
    Associations {
        #[arg(long)]
        admin_credentials: String,
        #[arg(long, default_value = "bench-assoc")]
        cluster: String,
        #[arg(long, default_value_t = 100_000)]
        count: usize,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Omit clientRequestToken (the SDKs and CLI always send one).
        #[arg(long)]
        no_client_token: bool,
    },
    /// Issue 3: EKS Auth issuances/s over pre-minted tokens, beside raw RS256 verify rates.
    Issuance {
        #[arg(long)]
        admin_credentials: String,
        #[arg(long, default_value = "bench-issue")]
        cluster: String,
        #[arg(long, default_value_t = 1000)]
        service_accounts: usize,
        #[arg(long, default_value_t = 20_000)]
        tokens: usize,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Also measure the one-thread verify rates pinned to this CPU (the server's), while
        /// the server is idle, before the measured run.
        #[arg(long)]
        verify_cpu: Option<usize>,
        /// Sign each request as it is sent instead of before the measured run.
        #[arg(long)]
        sign_on_send: bool,
    },
    /// Issue 3's comparison: STS AssumeRole against a moto server.
    MotoSts {
        #[arg(long, default_value_t = 5000)]
        count: usize,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
    },
}

/// Anything that stops a benchmark.
#[derive(Debug)]
pub struct BenchError(String);

impl BenchError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
    pub fn of(e: impl std::fmt::Display) -> Self {
        Self(e.to_string())
    }
}

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BenchError {}

fn main() -> Result<(), BenchError> {
    let cli = Cli::parse();
    let host = cli
        .endpoint
        .parse::<reqwest::Url>()
        .map_err(BenchError::of)?
        .host_str()
        .map(str::to_owned)
        .unwrap_or_default();
    if !(host.starts_with("127.") || host == "[::1]" || host == "localhost") {
        return Err(BenchError::new("the endpoint must be a loopback address"));
    }
    let threads = cli
        .threads
        .or_else(|| std::thread::available_parallelism().ok().map(Into::into))
        .unwrap_or(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(BenchError::of)?;
    runtime.block_on(run(cli.command, &cli.endpoint, threads))
}

async fn run(command: Command, endpoint: &str, threads: usize) -> Result<(), BenchError> {
    match command {
        Command::Associations {
            admin_credentials,
            cluster,
            count,
            concurrency,
            no_client_token,
        } => {
            let (id, secret) = client::read_admin_credentials(&admin_credentials)?;
            let admin = Client::new(endpoint, &id, &secret);
            let params = associations::Params {
                cluster,
                count,
                concurrency,
                client_token: !no_client_token,
            };
            associations::run(&admin, &params).await
        }
        Command::Issuance {
            admin_credentials,
            cluster,
            service_accounts,
            tokens,
            concurrency,
            verify_cpu,
            sign_on_send,
        } => {
            let (id, secret) = client::read_admin_credentials(&admin_credentials)?;
            let admin = Client::new(endpoint, &id, &secret);
            let params = issuance::Params {
                cluster,
                service_accounts,
                tokens,
                concurrency,
                threads,
                verify_cpu,
                presign: !sign_on_send,
            };
            issuance::run(&admin, &params).await
        }
        Command::MotoSts { count, concurrency } => {
            // moto accepts any key; the requests are signed all the same, as a real client's are.
            let client = Client::new(endpoint, "AKIDBENCHMARK0000000", "bench-secret");
            sts::run(&client, count, concurrency).await
        }
    }
}
