//! Durability under `kill -9`: every write the store acknowledged must be there after a crash.
//!
//! The parent test re-executes this test binary, selecting only `kill9_child` and switching it
//! on through an environment variable. The child commits txns from several tasks and prints
//! each acknowledged `(key, revision)`; the parent SIGKILLs it mid-stream, reads what was
//! printed, reopens the database and checks every acknowledged write.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use podid_store::{Compare, SqliteStore, Store, Txn, TxnOutcome};

/// Set (to the database path) only in the child process.
const CHILD_ENV: &str = "PODID_STORE_KILL9_DB";
/// Acknowledgements the parent waits for before it kills the child.
const KILL_AFTER: usize = 300;
/// Concurrent writers in the child, so group commits of several txns are in flight at the kill.
const WRITERS: usize = 4;

#[test]
fn acknowledged_writes_survive_kill_9() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("podid.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["kill9_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut acks = Vec::new();
    let mut killed = false;
    // Lines already in the pipe when the child dies are acknowledgements too: read to EOF.
    for line in stdout.lines() {
        let line = line.unwrap();
        let Some(rest) = line.strip_prefix("ACK ") else {
            continue;
        };
        let (key, rev) = rest.split_once(' ').unwrap();
        acks.push((key.to_owned(), rev.parse::<u64>().unwrap()));
        if acks.len() >= KILL_AFTER && !killed {
            child.kill().unwrap(); // SIGKILL on Unix
            killed = true;
        }
    }
    let status = child.wait().unwrap();
    assert!(
        killed,
        "child exited before {KILL_AFTER} acknowledgements: {status:?}"
    );
    assert_eq!(
        status.signal(),
        Some(9),
        "child was not killed by SIGKILL: {status:?}"
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = SqliteStore::open(&path).await.unwrap();
        let (all, revision) = store.range("").await.unwrap();
        for (key, rev) in &acks {
            let kv = store.get(key).await.unwrap();
            let kv = kv.unwrap_or_else(|| panic!("acknowledged {key} at {rev} is missing"));
            assert_eq!(kv.mod_revision, *rev, "{key}");
        }
        let max_ack = acks.iter().map(|(_, r)| *r).max().unwrap();
        assert!(revision >= max_ack);
        assert!(all.len() >= acks.len());
    });
}

/// The child half; does nothing unless started by the parent above.
#[test]
fn kill9_child() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build();
    rt.unwrap().block_on(async move {
        let store = Arc::new(SqliteStore::open(Path::new(&path)).await.unwrap());
        // In case the parent dies without killing us.
        let deadline = Instant::now() + Duration::from_secs(60);
        let tasks: Vec<_> = (0..WRITERS)
            .map(|w| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    for i in 0u64.. {
                        if Instant::now() > deadline {
                            return;
                        }
                        let key = format!("w{w}/{i:08}");
                        let txn = Txn::new()
                            .when(Compare::Absent(key.clone()))
                            .put(&*key, "v");
                        let TxnOutcome::Committed { revision } = store.txn(txn).await.unwrap()
                        else {
                            panic!("{key} already existed");
                        };
                        // Straight to the fd (not the test harness's capture), one line each.
                        let mut out = std::io::stdout().lock();
                        writeln!(out, "ACK {key} {revision}").unwrap();
                        out.flush().unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
}
