//! The single writer thread and its group commit.
//!
//! Every write (key-value txns, audit appends, purges) arrives here as a [`Request`]. The thread
//! takes the first queued request, drains up to [`MAX_BATCH`] more that are already waiting,
//! and applies them all in ONE SQLite transaction, each inside its own SAVEPOINT, so one fsync
//! covers the whole batch. Each committed txn still gets its own revision, and sees the effects
//! of the txns before it in the batch.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior, params};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::audit as audit_sql;
use crate::audit::AuditRecord;
use crate::{Change, Compare, Error, Event, KeyValue, Op, Result, Revision, Txn, TxnOutcome};

/// Requests per group commit. Bounds the time one COMMIT keeps earlier requests waiting and the
/// memory a batch holds.
pub(crate) const MAX_BATCH: usize = 256;

/// One write for the writer thread; the reply travels back on the oneshot.
pub(crate) enum Request {
    Txn(Txn, oneshot::Sender<Result<TxnOutcome>>),
    Audit(Vec<AuditRecord>, oneshot::Sender<Result<()>>),
    Purge(i64, oneshot::Sender<Result<u64>>),
}

/// Counters for tests and metrics.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) batches: AtomicU64,
    pub(crate) requests: AtomicU64,
    pub(crate) largest_batch: AtomicU64,
}

/// The writer thread's body: runs until every sender is gone and the queue is drained, so
/// writes already queued when the store is dropped still complete.
pub(crate) fn run(
    mut conn: Connection,
    mut rx: mpsc::Receiver<Request>,
    changes: broadcast::Sender<Arc<Change>>,
    stats: Arc<Stats>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let size = u64::try_from(batch.len()).unwrap_or(u64::MAX);
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats.requests.fetch_add(size, Ordering::Relaxed);
        stats.largest_batch.fetch_max(size, Ordering::Relaxed);
        commit_batch(&mut conn, batch.drain(..), &changes);
    }
}

/// What one request produced inside the batch, before the COMMIT decides its fate.
enum Done {
    Txn(Result<TxnOutcome>, Option<Change>),
    Audit(Result<()>),
    Purge(Result<u64>),
}

fn commit_batch(
    conn: &mut Connection,
    batch: impl Iterator<Item = Request>,
    changes: &broadcast::Sender<Arc<Change>>,
) {
    let batch: Vec<Request> = batch.collect();
    match apply_all(conn, &batch) {
        Ok(done) => {
            // Publish before replying, so a caller that saw `Committed` and then looks at its
            // receiver finds the change there.
            for d in &done {
                if let Done::Txn(_, Some(change)) = d {
                    // No receivers is not an error: nobody is watching yet.
                    let _ = changes.send(Arc::new(change.clone()));
                }
            }
            for (req, d) in batch.into_iter().zip(done) {
                reply(req, d);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "store group commit failed");
            let shared = Arc::new(e);
            for req in batch {
                let err = || Error::Commit(Arc::clone(&shared));
                match req {
                    Request::Txn(_, tx) => drop(tx.send(Err(err()))),
                    Request::Audit(_, tx) => drop(tx.send(Err(err()))),
                    Request::Purge(_, tx) => drop(tx.send(Err(err()))),
                }
            }
        }
    }
}

/// Send each result back; a caller that gave up (dropped its future) is simply skipped.
fn reply(req: Request, done: Done) {
    match (req, done) {
        (Request::Txn(_, tx), Done::Txn(r, _)) => drop(tx.send(r)),
        (Request::Audit(_, tx), Done::Audit(r)) => drop(tx.send(r)),
        (Request::Purge(_, tx), Done::Purge(r)) => drop(tx.send(r)),
        // `apply_all` yields one `Done` per request, of the same kind, in order.
        (Request::Txn(_, tx), _) => drop(tx.send(Err(Error::WriterGone))),
        (Request::Audit(_, tx), _) => drop(tx.send(Err(Error::WriterGone))),
        (Request::Purge(_, tx), _) => drop(tx.send(Err(Error::WriterGone))),
    }
}

/// Apply the batch in one transaction. `Err` means nothing of the batch is durable.
fn apply_all(conn: &mut Connection, batch: &[Request]) -> rusqlite::Result<Vec<Done>> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Read, not cached: another process (or a previous store instance) may have written since.
    let base: i64 = tx.query_row("SELECT value FROM meta WHERE name = 'revision'", [], |r| {
        r.get(0)
    })?;
    let mut revision = base;
    let mut done = Vec::with_capacity(batch.len());
    for req in batch {
        let sp = tx.savepoint()?;
        let result = match req {
            Request::Txn(txn, _) => apply_txn(&sp, txn, revision).map(|(outcome, change)| {
                if let Some(c) = &change {
                    revision = i64::try_from(c.revision).unwrap_or(i64::MAX);
                }
                Done::Txn(Ok(outcome), change)
            }),
            Request::Audit(records, _) => {
                audit_sql::append(&sp, records).map(|()| Done::Audit(Ok(())))
            }
            Request::Purge(cutoff, _) => audit_sql::purge(&sp, *cutoff).map(|n| Done::Purge(Ok(n))),
        };
        match result {
            Ok(d) => {
                sp.commit()?;
                done.push(d);
            }
            Err(e) => {
                // Dropping the savepoint rolls back to it and releases it (errors ignored, as
                // the transaction may already be gone; checked just below).
                drop(sp);
                // Some errors (disk full, I/O) make SQLite abandon the whole transaction; later
                // statements would then autocommit one by one. Fail the batch instead.
                if tx.is_autocommit() {
                    return Err(e);
                }
                done.push(match req {
                    Request::Txn(..) => Done::Txn(Err(e.into()), None),
                    Request::Audit(..) => Done::Audit(Err(e.into())),
                    Request::Purge(..) => Done::Purge(Err(e.into())),
                });
            }
        }
    }
    if revision != base {
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE name = 'revision'",
            [revision],
        )?;
    }
    tx.commit()?;
    Ok(done)
}

/// Evaluate the compares against the current state, then apply the ops at `current + 1`.
/// Returns the change only if something was actually written.
fn apply_txn(
    conn: &Connection,
    txn: &Txn,
    current: i64,
) -> rusqlite::Result<(TxnOutcome, Option<Change>)> {
    let current_rev = Revision::try_from(current).unwrap_or(0);
    for (index, compare) in txn.compares.iter().enumerate() {
        if !holds(conn, compare)? {
            return Ok((
                TxnOutcome::Failed {
                    failed_compare: index,
                },
                None,
            ));
        }
    }
    let next = current.saturating_add(1);
    let next_rev = current_rev.saturating_add(1);
    let mut events = Vec::with_capacity(txn.ops.len());
    for op in &txn.ops {
        match op {
            Op::Put { key, value } => {
                let mut put = conn.prepare_cached(
                    "INSERT INTO kv (key, value, create_revision, mod_revision)
                     VALUES (?1, ?2, ?3, ?3)
                     ON CONFLICT (key) DO UPDATE
                     SET value = excluded.value, mod_revision = excluded.mod_revision",
                )?;
                put.execute(params![key, value.as_ref(), next])?;
                let kv = KeyValue {
                    key: key.clone(),
                    value: value.clone(),
                    mod_revision: next_rev,
                };
                events.push(Event::Put(kv));
            }
            Op::Delete { key } => {
                let mut del = conn.prepare_cached("DELETE FROM kv WHERE key = ?1")?;
                if del.execute([key])? > 0 {
                    events.push(Event::Delete {
                        key: key.clone(),
                        mod_revision: next_rev,
                    });
                }
            }
        }
    }
    if events.is_empty() {
        return Ok((
            TxnOutcome::Committed {
                revision: current_rev,
            },
            None,
        ));
    }
    let change = Change {
        revision: next_rev,
        events,
    };
    Ok((TxnOutcome::Committed { revision: next_rev }, Some(change)))
}

fn holds(conn: &Connection, compare: &Compare) -> rusqlite::Result<bool> {
    let key = match compare {
        Compare::Absent(k) | Compare::Present(k) | Compare::ModRevision(k, _) => k,
    };
    let mut stmt = conn.prepare_cached("SELECT mod_revision FROM kv WHERE key = ?1")?;
    let found: Option<i64> = stmt.query_row([key], |r| r.get(0)).optional()?;
    Ok(match (compare, found) {
        (Compare::Absent(_), found) => found.is_none(),
        (Compare::Present(_), found) => found.is_some(),
        (Compare::ModRevision(_, want), Some(rev)) => i64::try_from(*want).is_ok_and(|w| w == rev),
        (Compare::ModRevision(..), None) => false,
    })
}
