//! Benchmark of the in-memory association index (`Registry`): build from store records, the
//! credential path's lookup by (cluster, namespace, service account), and full keyset listing.
//!
//! Plain `harness = false` loop with `std::hint::black_box`; run with
//! `cargo bench -p podid-server --features bench-support --bench association_index`. Sizes default to 100,000 and
//! 1,000,000 associations in one cluster; `PODID_BENCH_SIZES=1000,50000` overrides.

use std::error::Error;
use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use podid_model::{Association, AssociationSpec, Scope};
use podid_server::bench_support::AssociationIndexBench;
use podid_store::KeyValue;

const CLUSTER: &str = "bench";
const ACCOUNT: &str = "000000000000";
/// Service accounts per namespace: 1,000,000 associations = 1,000 namespaces x 1,000 accounts.
const PER_NAMESPACE: usize = 1000;
/// Lookups per timed round, and rounds per measurement (the median round is reported).
const PROBES: usize = 1_000_000;
const ROUNDS: usize = 5;

fn main() -> Result<(), Box<dyn Error>> {
    let sizes: Vec<usize> = std::env::var("PODID_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![100_000, 1_000_000]);
    println!("association_index: {PROBES} probes per round, median of {ROUNDS} rounds");
    for n in sizes {
        run(n)?;
    }
    Ok(())
}

fn run(n: usize) -> Result<(), Box<dyn Error>> {
    let rss_before = rss_kib();
    let kvs = records(n)?;
    let started = Instant::now();
    let index = AssociationIndexBench::load(&kvs);
    let load = started.elapsed();
    drop(kvs);
    let rss_after = rss_kib();
    assert_eq!(index.count(CLUSTER), n, "every record must be indexed");
    println!(
        "n={n}: load {:.2} s ({:.0} records/s); RSS +{} MiB (~{} bytes/association)",
        load.as_secs_f64(),
        n as f64 / load.as_secs_f64(),
        rss_after.saturating_sub(rss_before) / 1024,
        rss_after.saturating_sub(rss_before) * 1024 / n.max(1) as u64,
    );

    let hits = probes(n, false);
    let misses = probes(n, true);
    let hit = median(|| lookup_round(&index, &hits, true));
    let miss = median(|| lookup_round(&index, &misses, false));
    println!(
        "n={n}: lookup hit {:.1} ns, miss {:.1} ns (1 thread, random keys)",
        per_op_ns(hit, PROBES),
        per_op_ns(miss, PROBES),
    );
    let two = median(|| {
        std::thread::scope(|s| {
            let started = Instant::now();
            let a = s.spawn(|| lookup_round(&index, &hits, true));
            let b = s.spawn(|| lookup_round(&index, &hits, true));
            let _ = (a.join(), b.join());
            started.elapsed()
        })
    });
    println!(
        "n={n}: lookup hit, 2 threads: {:.2} M lookups/s aggregate",
        (2 * PROBES) as f64 / two.as_secs_f64() / 1e6
    );

    let started = Instant::now();
    let mut after = None;
    let mut pages = 0usize;
    let mut seen = 0usize;
    loop {
        let (page, more) = index.list_page(CLUSTER, after.as_ref(), 100);
        pages += 1;
        seen += page.len();
        after = page.last().map(|a| a.association_id.clone());
        black_box(&page);
        if !more {
            break;
        }
    }
    let list = started.elapsed();
    assert_eq!(seen, n, "listing must return every association once");
    println!(
        "n={n}: list all in pages of 100: {pages} pages in {:.3} s ({:.0} pages/s)",
        list.as_secs_f64(),
        pages as f64 / list.as_secs_f64()
    );
    Ok(())
}

/// `n` association records as the store holds them.
fn records(n: usize) -> Result<Vec<KeyValue>, Box<dyn Error>> {
    let role = format!("arn:aws:iam::{ACCOUNT}:role/bench-role");
    (0..n)
        .map(|i| {
            let spec = AssociationSpec::validate(&role, None, false, None, ACCOUNT)?;
            let a = Association::new(
                Scope {
                    region: "us-east-1",
                    account_id: ACCOUNT,
                },
                CLUSTER,
                &namespace(i),
                &service_account(i),
                spec,
                Default::default(),
                1_700_000_000_000,
            )?;
            Ok(KeyValue {
                key: AssociationIndexBench::store_key(&a),
                value: Bytes::from(serde_json::to_vec(&a)?),
                mod_revision: 1,
            })
        })
        .collect()
}

fn namespace(i: usize) -> String {
    format!("ns-{}", i / PER_NAMESPACE)
}

fn service_account(i: usize) -> String {
    format!("sa-{}", i % PER_NAMESPACE)
}

/// `PROBES` (namespace, service account) pairs spread pseudo-randomly over all `n` entries;
/// `miss` keeps the namespace but names an account that has no association.
fn probes(n: usize, miss: bool) -> Vec<(String, String)> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..PROBES)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let i = usize::try_from(x % n as u64).unwrap_or(0);
            let sa = if miss {
                format!("absent-{}", i % PER_NAMESPACE)
            } else {
                service_account(i)
            };
            (namespace(i), sa)
        })
        .collect()
}

fn lookup_round(
    index: &AssociationIndexBench,
    probes: &[(String, String)],
    expect_hit: bool,
) -> Duration {
    let started = Instant::now();
    let mut found = 0usize;
    for (ns, sa) in probes {
        if black_box(index.lookup(black_box(CLUSTER), ns, sa)).is_some() {
            found += 1;
        }
    }
    let elapsed = started.elapsed();
    assert_eq!(
        found == probes.len(),
        expect_hit,
        "unexpected lookup result"
    );
    elapsed
}

fn median(mut f: impl FnMut() -> Duration) -> Duration {
    let mut runs: Vec<Duration> = (0..ROUNDS).map(|_| f()).collect();
    runs.sort();
    runs.get(ROUNDS / 2).copied().unwrap_or_default()
}

fn per_op_ns(d: Duration, ops: usize) -> f64 {
    d.as_nanos() as f64 / ops as f64
}

/// Resident set size of this process, KiB (0 where /proc is unavailable).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
