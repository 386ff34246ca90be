//! SQL for the audit log: appends and purges (run by the writer), lookups (run by readers).

use rusqlite::types::Value;
use rusqlite::{Connection, params, params_from_iter};

use crate::Result;
use crate::audit::encode_token;
use crate::audit::{AuditPage, AuditQuery, AuditRecord, Cursor, LookupAttribute, decode_token};

/// Rows one purge request deletes. A retention purge may cover millions of rows; chunking keeps
/// each group commit short so it does not stall the writes queued behind it.
pub(crate) const PURGE_CHUNK: i64 = 5_000;

/// Insert `records`; an `event_id` already present is skipped (so a retried batch is harmless).
pub(crate) fn append(conn: &Connection, records: &[AuditRecord]) -> rusqlite::Result<()> {
    let mut event = conn.prepare_cached(
        "INSERT INTO audit_event (event_id, event_time_ms, event_name, event_source, username,
             access_key_id, read_only, event_json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (event_id) DO NOTHING",
    )?;
    let mut resource = conn.prepare_cached(
        "INSERT INTO audit_resource (seq, resource_type, resource_name) VALUES (?1, ?2, ?3)",
    )?;
    for r in records {
        let inserted = event.execute(params![
            r.event_id,
            r.event_time_ms,
            r.event_name,
            r.event_source,
            r.username,
            r.access_key_id,
            r.read_only,
            r.event_json,
        ])?;
        if inserted == 0 {
            continue;
        }
        let seq = conn.last_insert_rowid();
        for (kind, name) in &r.resources {
            resource.execute(params![seq, kind, name])?;
        }
    }
    Ok(())
}

/// Delete up to [`PURGE_CHUNK`] records older than `cutoff_ms`, with their resources.
pub(crate) fn purge(conn: &Connection, cutoff_ms: i64) -> rusqlite::Result<u64> {
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS purge_seq (seq INTEGER PRIMARY KEY)",
        [],
    )?;
    conn.execute("DELETE FROM temp.purge_seq", [])?;
    conn.execute(
        "INSERT INTO temp.purge_seq (seq)
         SELECT seq FROM audit_event WHERE event_time_ms < ?1 LIMIT ?2",
        params![cutoff_ms, PURGE_CHUNK],
    )?;
    conn.execute(
        "DELETE FROM audit_resource WHERE seq IN (SELECT seq FROM temp.purge_seq)",
        [],
    )?;
    let n = conn.execute(
        "DELETE FROM audit_event WHERE seq IN (SELECT seq FROM temp.purge_seq)",
        [],
    )?;
    conn.execute("DELETE FROM temp.purge_seq", [])?;
    Ok(u64::try_from(n).unwrap_or(u64::MAX))
}

/// One page for `q`, newest first, read in one read transaction.
pub(crate) fn lookup(conn: &mut Connection, q: &AuditQuery) -> Result<AuditPage> {
    let cursor = decode_token(q)?;
    let limit = q.page_size();
    let (sql, args) = build_query(q, cursor.as_ref(), limit);
    let tx = conn.transaction()?;
    let mut records = Vec::with_capacity(limit.min(64));
    {
        let mut stmt = tx.prepare_cached(&sql)?;
        let mut res = tx.prepare_cached(
            "SELECT resource_type, resource_name FROM audit_resource WHERE seq = ?1 ORDER BY rowid",
        )?;
        let mut rows = stmt.query(params_from_iter(args))?;
        while let Some(row) = rows.next()? {
            let seq: i64 = row.get(0)?;
            let resources = res
                .query_map([seq], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<Vec<(String, String)>>>()?;
            records.push(AuditRecord {
                event_id: row.get(1)?,
                event_time_ms: row.get(2)?,
                event_name: row.get(3)?,
                event_source: row.get(4)?,
                username: row.get(5)?,
                access_key_id: row.get(6)?,
                read_only: row.get(7)?,
                resources,
                event_json: row.get(8)?,
            });
        }
    }
    tx.commit()?;
    // One row beyond the page was fetched to learn whether another page exists.
    let next_token = if records.len() > limit {
        records.truncate(limit);
        records.last().map(|last| {
            let cursor = Cursor {
                time_ms: last.event_time_ms,
                event_id: last.event_id.clone(),
            };
            encode_token(q, &cursor)
        })
    } else {
        None
    };
    Ok(AuditPage {
        records,
        next_token,
    })
}

fn build_query(q: &AuditQuery, cursor: Option<&Cursor>, limit: usize) -> (String, Vec<Value>) {
    let mut sql = String::from(
        "SELECT seq, event_id, event_time_ms, event_name, event_source, username, access_key_id,
             read_only, event_json
         FROM audit_event WHERE 1",
    );
    let mut args = Vec::new();
    if let Some(attr) = &q.attribute {
        let (cond, value) = match attr {
            LookupAttribute::EventId(v) => ("event_id = ?", Value::Text(v.clone())),
            LookupAttribute::EventName(v) => ("event_name = ?", Value::Text(v.clone())),
            LookupAttribute::ReadOnly(v) => ("read_only = ?", Value::Integer(i64::from(*v))),
            LookupAttribute::Username(v) => ("username = ?", Value::Text(v.clone())),
            LookupAttribute::EventSource(v) => ("event_source = ?", Value::Text(v.clone())),
            LookupAttribute::AccessKeyId(v) => ("access_key_id = ?", Value::Text(v.clone())),
            LookupAttribute::ResourceType(v) => (
                "seq IN (SELECT seq FROM audit_resource WHERE resource_type = ?)",
                Value::Text(v.clone()),
            ),
            LookupAttribute::ResourceName(v) => (
                "seq IN (SELECT seq FROM audit_resource WHERE resource_name = ?)",
                Value::Text(v.clone()),
            ),
        };
        sql.push_str(" AND ");
        sql.push_str(cond);
        args.push(value);
    }
    if let Some(start) = q.start_ms {
        sql.push_str(" AND event_time_ms >= ?");
        args.push(Value::Integer(start));
    }
    if let Some(end) = q.end_ms {
        sql.push_str(" AND event_time_ms <= ?");
        args.push(Value::Integer(end));
    }
    if let Some(c) = cursor {
        sql.push_str(" AND (event_time_ms, event_id) < (?, ?)");
        args.push(Value::Integer(c.time_ms));
        args.push(Value::Text(c.event_id.clone()));
    }
    sql.push_str(" ORDER BY event_time_ms DESC, event_id DESC LIMIT ?");
    args.push(Value::Integer(
        i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX),
    ));
    (sql, args)
}
