//! The read side: a small pool of read-only connections used from `spawn_blocking`, so reads
//! never queue behind the writer (WAL lets readers run beside a writing transaction).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension as _};

use super::schema;
use crate::{Error, KeyValue, Result, Revision};

/// Idle read connections kept open; more are opened under load and closed afterwards.
const MAX_IDLE_READERS: usize = 4;

#[derive(Debug)]
pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub(crate) fn new(path: PathBuf) -> Arc<Self> {
        Arc::new(Self {
            path,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Run `f` on a pooled read-only connection, on the blocking thread pool.
    pub(crate) async fn run<R, F>(self: &Arc<Self>, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R> + Send + 'static,
    {
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let mut conn = match this.lock().pop() {
                Some(conn) => conn,
                None => schema::open_reader(&this.path)?,
            };
            let out = f(&mut conn);
            // A connection left inside a transaction (an error mid-read) is not reused.
            let mut idle = this.lock();
            if conn.is_autocommit() && idle.len() < MAX_IDLE_READERS {
                idle.push(conn);
            }
            out
        })
        .await
        .map_err(|_| Error::ReaderFailed)?
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        // The guarded Vec stays consistent even if a holder panicked (push/pop only).
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

pub(crate) fn get(conn: &mut Connection, key: &str) -> Result<Option<KeyValue>> {
    let mut stmt = conn.prepare_cached("SELECT value, mod_revision FROM kv WHERE key = ?1")?;
    let row = stmt
        .query_row([key], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?))
        })
        .optional()?;
    row.map(|(value, rev)| {
        Ok(KeyValue {
            key: key.to_owned(),
            value: Bytes::from(value),
            mod_revision: revision(rev)?,
        })
    })
    .transpose()
}

/// Keys with `prefix`, in key order, and the revision of the same snapshot.
pub(crate) fn range(conn: &mut Connection, prefix: &str) -> Result<(Vec<KeyValue>, Revision)> {
    let tx = conn.transaction()?;
    let rev: i64 = tx.query_row("SELECT value FROM meta WHERE name = 'revision'", [], |r| {
        r.get(0)
    })?;
    let mut out = Vec::new();
    {
        // Keys sharing a prefix are contiguous in BINARY (byte) order from the prefix on, so
        // scan from it and stop at the first key without it.
        let mut stmt = tx.prepare_cached(
            "SELECT key, value, mod_revision FROM kv WHERE key >= ?1 ORDER BY key",
        )?;
        let mut rows = stmt.query([prefix])?;
        while let Some(row) = rows.next()? {
            let key: String = row.get(0)?;
            if !key.starts_with(prefix) {
                break;
            }
            let value: Vec<u8> = row.get(1)?;
            let mod_revision = revision(row.get(2)?)?;
            out.push(KeyValue {
                key,
                value: Bytes::from(value),
                mod_revision,
            });
        }
    }
    tx.commit()?;
    Ok((out, revision(rev)?))
}

/// The schema version, read through a reader connection.
pub(crate) fn user_version(conn: &mut Connection) -> Result<i64> {
    schema::user_version(conn)
}

fn revision(raw: i64) -> Result<Revision> {
    Revision::try_from(raw).map_err(|_| Error::Corrupt("negative revision"))
}
