//! Opening connections and versioned migrations.
//!
//! Schema (version = `PRAGMA user_version` = number of [`MIGRATIONS`] applied):
//! * `kv`: one row per live key; `create_revision`/`mod_revision` as in etcd.
//! * `meta`: `('revision', n)` holds the store revision. It is stored, not derived from
//!   `max(kv.mod_revision)`, because a delete advances the revision while removing its row.
//! * `audit_event`, `audit_resource_name`, `audit_summary`: the audit log, keyed for newest-first
//!   keyset pages (see migration 3 for what each holds and why).

use std::fs::{DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::{Error, Result};

/// Applied in order, each once; append new entries, never edit shipped ones.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: key-value space and its revision counter.
    "CREATE TABLE kv (
        key TEXT PRIMARY KEY NOT NULL,
        value BLOB NOT NULL,
        create_revision INTEGER NOT NULL,
        mod_revision INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE meta (name TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL) WITHOUT ROWID;
    INSERT INTO meta (name, value) VALUES ('revision', 0);",
    // 2: audit log. Every filter index ends in (time, id) so a filtered page is an index range.
    "CREATE TABLE audit_event (
        seq INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL UNIQUE,
        event_time_ms INTEGER NOT NULL,
        event_name TEXT NOT NULL,
        event_source TEXT NOT NULL,
        username TEXT,
        access_key_id TEXT,
        read_only INTEGER NOT NULL,
        event_json TEXT NOT NULL
    );
    CREATE INDEX audit_by_time ON audit_event (event_time_ms, event_id);
    CREATE INDEX audit_by_name ON audit_event (event_name, event_time_ms, event_id);
    CREATE INDEX audit_by_source ON audit_event (event_source, event_time_ms, event_id);
    CREATE INDEX audit_by_user ON audit_event (username, event_time_ms, event_id);
    CREATE INDEX audit_by_key ON audit_event (access_key_id, event_time_ms, event_id);
    CREATE INDEX audit_by_ro ON audit_event (read_only, event_time_ms, event_id);
    CREATE TABLE audit_resource (
        seq INTEGER NOT NULL,
        resource_type TEXT NOT NULL,
        resource_name TEXT NOT NULL
    );
    CREATE INDEX audit_res_seq ON audit_resource (seq);
    CREATE INDEX audit_res_type ON audit_resource (resource_type, seq);
    CREATE INDEX audit_res_name ON audit_resource (resource_name, seq);",
    // 3: audit log with fewer b-tree entries per event (issue 7): each entry is a random-ish
    // b-tree insert, and version 2's eleven (table, six event indexes, resource row and its
    // three indexes) were most of the per-event cost. Ties in time are broken by `seq`, which
    // every index carries implicitly as the rowid, so no index repeats the 36-byte event id.
    // Resources live in the event row (a JSON array of [type, name] pairs) and only their
    // names get a per-event index. Username and access key id indexes are partial: the STS
    // half of every issuance has neither. EventName, EventSource, ReadOnly and ResourceType
    // (few distinct values) get no per-event entry; `audit_summary` records which values
    // occur in each 10 ms bucket of event time, and a lookup scans the time index only within
    // the buckets that hold a match. Rows are copied in (time, event id) order, so the new
    // `seq` order agrees with version 2's tie-break and version 2's NextTokens resume exactly.
    "ALTER TABLE audit_event RENAME TO audit_event_v2;
    CREATE TABLE audit_event (
        seq INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL UNIQUE,
        event_time_ms INTEGER NOT NULL,
        event_name TEXT NOT NULL,
        event_source TEXT NOT NULL,
        username TEXT,
        access_key_id TEXT,
        read_only INTEGER NOT NULL,
        resources TEXT NOT NULL,
        event_json TEXT NOT NULL
    );
    INSERT INTO audit_event (event_id, event_time_ms, event_name, event_source, username,
        access_key_id, read_only, resources, event_json)
    SELECT e.event_id, e.event_time_ms, e.event_name, e.event_source, e.username,
        e.access_key_id, e.read_only,
        coalesce((SELECT json_group_array(json_array(r.resource_type, r.resource_name)
                      ORDER BY r.rowid)
                  FROM audit_resource r WHERE r.seq = e.seq), '[]'),
        e.event_json
    FROM audit_event_v2 e ORDER BY e.event_time_ms, e.event_id;
    CREATE TABLE audit_resource_name (
        resource_name TEXT NOT NULL,
        event_time_ms INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (resource_name, event_time_ms, seq)
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO audit_resource_name (resource_name, event_time_ms, seq)
    SELECT r.resource_name, n.event_time_ms, n.seq
    FROM audit_resource r JOIN audit_event_v2 o ON o.seq = r.seq
        JOIN audit_event n ON n.event_id = o.event_id;
    DROP TABLE audit_resource;
    DROP TABLE audit_event_v2;
    CREATE INDEX audit_by_time ON audit_event (event_time_ms);
    CREATE INDEX audit_by_user ON audit_event (username, event_time_ms)
        WHERE username IS NOT NULL;
    CREATE INDEX audit_by_key ON audit_event (access_key_id, event_time_ms)
        WHERE access_key_id IS NOT NULL;
    CREATE TABLE audit_summary (
        kind INTEGER NOT NULL,
        value TEXT NOT NULL,
        bucket INTEGER NOT NULL,
        PRIMARY KEY (kind, value, bucket)
    ) WITHOUT ROWID;
    CREATE INDEX audit_summary_by_bucket ON audit_summary (bucket);
    -- Kinds and bucket width as in `audit::SummaryKind` and `audit::BUCKET_MS`; the bucket is
    -- floor(time / 10) (SQLite's `/` truncates toward zero, hence the correction).
    INSERT OR IGNORE INTO audit_summary (kind, value, bucket)
    SELECT 1, event_name, event_time_ms / 10 - (event_time_ms % 10 < 0) FROM audit_event
    UNION ALL SELECT 2, event_source, event_time_ms / 10 - (event_time_ms % 10 < 0)
        FROM audit_event
    UNION ALL SELECT 3, CAST(read_only AS TEXT), event_time_ms / 10 - (event_time_ms % 10 < 0)
        FROM audit_event
    UNION ALL SELECT 4, json_extract(j.value, '$[0]'),
        a.event_time_ms / 10 - (a.event_time_ms % 10 < 0)
        FROM audit_event a, json_each(a.resources) j;",
];

/// How long a connection waits on another's lock (another process, a checkpoint) before
/// failing with SQLITE_BUSY.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Create the file (0600) and its parent (0700) if needed, then open the writer connection:
/// WAL, `synchronous=FULL` (each commit fsyncs the WAL, so an acknowledged commit survives power
/// loss), migrated to the latest schema.
pub(crate) fn open_writer(path: &Path) -> Result<Connection> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)?;
    }
    // Create with 0600 ourselves: SQLite would use 0644, and it gives -wal/-shm the db's mode.
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Corrupt("the database refused WAL journal mode"));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Overwritten and deleted content is zeroed, not left in free space: when older databases'
    // plaintext secrets are sealed at start, their old bytes must not survive in the file.
    conn.pragma_update(None, "secure_delete", "ON")?;
    migrate(&mut conn)?;
    Ok(conn)
}

/// Copies the WAL into the database and truncates it to nothing (`wal_checkpoint(TRUNCATE)`),
/// on a connection of its own: the writer's stays busy with commits.
pub(crate) fn truncate_wal(path: &Path) -> Result<()> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
    if busy != 0 {
        return Err(Error::Busy(
            "the WAL could not be truncated: readers kept it busy",
        ));
    }
    Ok(())
}

/// A read-only connection to a database [`open_writer`] has already prepared.
pub(crate) fn open_reader(path: &Path) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// Bring the schema to `MIGRATIONS.len()` in one transaction; refuse a newer database.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    let supported = i64::try_from(MIGRATIONS.len()).map_err(|_| Error::Corrupt("migrations"))?;
    // IMMEDIATE: two processes opening a fresh file must not both run migration 1.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > supported {
        return Err(Error::SchemaTooNew { found, supported });
    }
    let done = usize::try_from(found).map_err(|_| Error::Corrupt("negative schema version"))?;
    for (version, sql) in (1i64..).zip(MIGRATIONS).skip(done) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version)?;
    }
    tx.commit()?;
    Ok(())
}

/// The schema version recorded in the database.
pub(crate) fn user_version(conn: &Connection) -> Result<i64> {
    Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
}
