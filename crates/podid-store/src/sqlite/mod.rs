//! The SQLite backend of [`Store`] and [`AuditLog`], in one database file.
//!
//! One writer thread owns the only read-write connection and group-commits every write (see
//! `writer`); reads use a pool of read-only connections (see `read`). The file is created 0600
//! in WAL mode with `synchronous=FULL`; its schema is versioned through `PRAGMA user_version`
//! (see `schema`).

mod audit;
mod read;
mod schema;
mod writer;

#[cfg(test)]
mod audit_tests;
#[cfg(test)]
mod audit_v3_tests;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

use tokio::sync::{broadcast, mpsc, oneshot};

use self::read::Readers;
use self::writer::{Request, Stats};
use crate::audit::{AuditLog, AuditPage, AuditQuery, AuditRecord, check_batch};
use crate::{Change, Error, KeyValue, Result, Revision, Store, Txn, TxnOutcome, limits};

/// Change-feed buffer per subscriber; a subscriber further behind than this sees `Lagged`.
const CHANGE_FEED_CAPACITY: usize = 4096;
/// Writes queued for the writer before `txn`/`append` callers wait (backpressure, bounded
/// memory). Sixteen group commits' worth.
const WRITE_QUEUE: usize = 16 * writer::MAX_BATCH;

/// SQLite-backed [`Store`] and [`AuditLog`].
///
/// Dropping it closes the write queue and waits for the writer thread to finish what is
/// already queued (a few milliseconds), so a store reopened afterwards sees every write.
pub struct SqliteStore {
    path: PathBuf,
    requests: Option<mpsc::Sender<Request>>,
    writer: Option<JoinHandle<()>>,
    readers: Arc<Readers>,
    changes: broadcast::Sender<Arc<Change>>,
    stats: Arc<Stats>,
}

/// Group-commit counters since open: `requests / batches` is the mean batch size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// SQLite transactions (one fsync each) the writer has run.
    pub batches: u64,
    /// Write requests (txns, audit appends, purge chunks) those transactions carried.
    pub requests: u64,
    /// The most requests one transaction has carried.
    pub largest_batch: u64,
}

impl SqliteStore {
    /// Open (creating if needed) the database at `path` and start its writer thread.
    pub async fn open(path: &Path) -> Result<Self> {
        let path = path.to_owned();
        let p = path.clone();
        let conn = tokio::task::spawn_blocking(move || {
            let conn = schema::open_writer(&p)?;
            // Fail now, not on the first read, if readers cannot open the file.
            schema::open_reader(&p)?;
            Ok::<_, Error>(conn)
        })
        .await
        .map_err(|_| Error::ReaderFailed)??;
        let (requests, rx) = mpsc::channel(WRITE_QUEUE);
        let (changes, _) = broadcast::channel(CHANGE_FEED_CAPACITY);
        let stats = Arc::new(Stats::default());
        let (feed, counters) = (changes.clone(), Arc::clone(&stats));
        let writer = std::thread::Builder::new()
            .name("podid-store-writer".into())
            .spawn(move || writer::run(conn, rx, feed, counters))?;
        tracing::info!(path = %path.display(), "sqlite store open");
        let readers = Readers::new(path.clone());
        Ok(Self {
            path,
            requests: Some(requests),
            writer: Some(writer),
            readers,
            changes,
            stats,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Group-commit counters, for metrics and tests.
    pub fn writer_stats(&self) -> WriterStats {
        WriterStats {
            batches: self.stats.batches.load(Ordering::Relaxed),
            requests: self.stats.requests.load(Ordering::Relaxed),
            largest_batch: self.stats.largest_batch.load(Ordering::Relaxed),
        }
    }

    /// The schema version recorded in the file (`PRAGMA user_version`).
    pub async fn schema_version(&self) -> Result<i64> {
        self.readers.run(read::user_version).await
    }

    /// Queue a request for the writer and wait for its answer.
    async fn write<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T>>) -> Request,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        let queue = self.requests.as_ref().ok_or(Error::WriterGone)?;
        queue.send(make(tx)).await.map_err(|_| Error::WriterGone)?;
        rx.await.map_err(|_| Error::WriterGone)?
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let key = key.to_owned();
        self.readers.run(move |c| read::get(c, &key)).await
    }

    async fn range(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision)> {
        let prefix = prefix.to_owned();
        self.readers.run(move |c| read::range(c, &prefix)).await
    }

    async fn txn(&self, txn: Txn) -> Result<TxnOutcome> {
        limits::check_txn(&txn)?;
        self.write(|reply| Request::Txn(txn, reply)).await
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.changes.subscribe()
    }

    async fn purge_overwritten(&self) -> Result<()> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || schema::truncate_wal(&path))
            .await
            .map_err(|_| Error::ReaderFailed)?
    }
}

#[async_trait::async_trait]
impl AuditLog for SqliteStore {
    async fn append(&self, batch: Vec<AuditRecord>) -> Result<()> {
        check_batch(&batch)?;
        if batch.is_empty() {
            return Ok(());
        }
        self.write(|reply| Request::Audit(batch, reply)).await
    }

    async fn lookup(&self, q: AuditQuery) -> Result<AuditPage> {
        self.readers.run(move |c| audit::lookup(c, &q)).await
    }

    async fn purge_before(&self, cutoff_ms: i64) -> Result<u64> {
        // In chunks, each its own request, so other writes interleave with a big purge.
        let mut total = 0u64;
        loop {
            let n = self.write(|reply| Request::Purge(cutoff_ms, reply)).await?;
            total = total.saturating_add(n);
            if i64::try_from(n).map_or(true, |n| n < audit::PURGE_CHUNK) {
                return Ok(total);
            }
        }
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Closing the queue lets the writer drain what is queued and exit.
        drop(self.requests.take());
        if let Some(handle) = self.writer.take()
            && handle.join().is_err()
        {
            tracing::error!("sqlite store writer thread panicked");
        }
    }
}
