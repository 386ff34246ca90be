//! SQL for the audit log: appends and purges (run by the writer), lookups (run by readers).
//!
//! Layout (schema version 3, see `schema`): one `audit_event` row per event, indexed by time,
//! event id, and (partially) username and access key id; `audit_resource_name` indexes resource
//! names; `audit_summary` says which event names, sources, read-only flags and resource types
//! occur in each [`BUCKET_MS`] of event time. A lookup by one of those four scans the time index
//! only inside buckets that hold a match, so its cost is bounded by the events of at most
//! `page size + 1` buckets, whatever the share of matches.

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension as _, Row, params};

use crate::audit::{AuditPage, AuditQuery, AuditRecord, Cursor, LookupAttribute, TokenCursor};
use crate::audit::{decode_token, encode_token};
use crate::{Error, Result};

/// Rows one purge request deletes. A retention purge may cover millions of rows; chunking keeps
/// each group commit short so it does not stall the writes queued behind it.
pub(crate) const PURGE_CHUNK: i64 = 5_000;

/// Width of an `audit_summary` bucket. Narrower buckets bound a rare-value lookup more tightly
/// (it reads at most the events of `page size + 1` buckets: at the goal's 30,000 events/s, 300
/// per bucket); wider ones cost fewer summary rows. At 10 ms a busy writer adds about one
/// summary row per 40 events, a quiet one a few per event (and is not the throughput concern).
/// Migration 3 hard-codes the same width.
pub(crate) const BUCKET_MS: i64 = 10;

/// The attributes answered through `audit_summary`, with their stored codes (migration 3 uses
/// the same numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum SummaryKind {
    EventName = 1,
    EventSource = 2,
    ReadOnly = 3,
    ResourceType = 4,
}

const COLUMNS: &str = "e.seq, e.event_id, e.event_time_ms, e.event_name, e.event_source,
    e.username, e.access_key_id, e.read_only, e.resources, e.event_json";

/// Insert `records`; an `event_id` already present is skipped (so a retried batch is harmless).
pub(crate) fn append(conn: &Connection, records: &[AuditRecord]) -> rusqlite::Result<()> {
    let mut event = conn.prepare_cached(
        "INSERT INTO audit_event (event_id, event_time_ms, event_name, event_source, username,
             access_key_id, read_only, resources, event_json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (event_id) DO NOTHING",
    )?;
    let mut resource = conn.prepare_cached(
        "INSERT OR IGNORE INTO audit_resource_name (resource_name, event_time_ms, seq)
         VALUES (?1, ?2, ?3)",
    )?;
    // (kind, value, bucket) of every record, deduplicated before touching the summary: a batch
    // of a thousand issuances spans a few buckets and holds a handful of distinct values.
    let mut summary: Vec<(SummaryKind, &str, i64)> = Vec::with_capacity(records.len() * 4);
    for r in records {
        let inserted = event.execute(params![
            r.event_id,
            r.event_time_ms,
            r.event_name,
            r.event_source,
            r.username,
            r.access_key_id,
            r.read_only,
            encode_resources(&r.resources),
            r.event_json,
        ])?;
        if inserted == 0 {
            continue;
        }
        let seq = conn.last_insert_rowid();
        let bucket = bucket_of(r.event_time_ms);
        summary.push((SummaryKind::EventName, &r.event_name, bucket));
        summary.push((SummaryKind::EventSource, &r.event_source, bucket));
        summary.push((SummaryKind::ReadOnly, read_only_value(r.read_only), bucket));
        for (kind, name) in &r.resources {
            summary.push((SummaryKind::ResourceType, kind, bucket));
            resource.execute(params![name, r.event_time_ms, seq])?;
        }
    }
    summary.sort_unstable();
    summary.dedup();
    let mut put = conn.prepare_cached(
        "INSERT OR IGNORE INTO audit_summary (kind, value, bucket) VALUES (?1, ?2, ?3)",
    )?;
    for (kind, value, bucket) in summary {
        put.execute(params![kind as i64, value, bucket])?;
    }
    Ok(())
}

/// Delete up to [`PURGE_CHUNK`] of the oldest records older than `cutoff_ms`, with their
/// resource-name entries, and the summary buckets wholly older than `cutoff_ms`.
pub(crate) fn purge(conn: &Connection, cutoff_ms: i64) -> rusqlite::Result<u64> {
    let mut doomed = conn.prepare_cached(
        "SELECT seq, event_time_ms, resources FROM audit_event
         WHERE event_time_ms < ?1 ORDER BY event_time_ms LIMIT ?2",
    )?;
    let rows = doomed
        .query_map(params![cutoff_ms, PURGE_CHUNK], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut name = conn.prepare_cached(
        "DELETE FROM audit_resource_name
         WHERE resource_name = ?1 AND event_time_ms = ?2 AND seq = ?3",
    )?;
    let mut event = conn.prepare_cached("DELETE FROM audit_event WHERE seq = ?1")?;
    let mut n = 0u64;
    for (seq, time_ms, resources) in rows {
        // A row this store wrote always decodes; an undecodable one still goes, its resource
        // names (if any) left as entries that match no event.
        for (_, resource_name) in decode_resources(&resources).unwrap_or_default() {
            name.execute(params![resource_name, time_ms, seq])?;
        }
        n = n.saturating_add(u64::try_from(event.execute([seq])?).unwrap_or(0));
    }
    conn.prepare_cached("DELETE FROM audit_summary WHERE bucket < ?1")?
        .execute([bucket_of(cutoff_ms)])?;
    Ok(n)
}

/// One page for `q`, newest first, read in one read transaction.
pub(crate) fn lookup(conn: &mut Connection, q: &AuditQuery) -> Result<AuditPage> {
    let token = decode_token(q)?;
    let limit = q.page_size();
    let tx = conn.transaction()?;
    let cursor = match token {
        None => None,
        Some(TokenCursor::Seq(c)) => Some(c),
        Some(TokenCursor::EventId { time_ms, event_id }) => {
            Some(resolve_v2_cursor(&tx, time_ms, &event_id)?)
        }
    };
    let bounds = Bounds::new(q, cursor);
    // One row beyond the page is fetched to learn whether another page exists.
    let want = limit.saturating_add(1);
    let mut rows = Vec::with_capacity(want.min(64));
    match plan(q.attribute.as_ref()) {
        Plan::Index { from, filter, t } => direct(&tx, from, filter, t, &bounds, want, &mut rows)?,
        Plan::Buckets {
            kind,
            value,
            filter,
        } => {
            by_buckets(&tx, kind, &value, &filter, &bounds, want, &mut rows)?;
        }
    }
    tx.commit()?;
    let next_token = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|(seq, last)| {
            let cursor = Cursor {
                time_ms: last.event_time_ms,
                seq: *seq,
            };
            encode_token(q, cursor)
        })
    } else {
        None
    };
    Ok(AuditPage {
        records: rows.into_iter().map(|(_, r)| r).collect(),
        next_token,
    })
}

/// A version-2 token names the last event it returned; migration 3 numbered events in version
/// 2's order, so that event's `seq` resumes the same sequence. If it is gone (purged), the
/// token cannot be placed and is refused like any stale token.
fn resolve_v2_cursor(conn: &Connection, time_ms: i64, event_id: &str) -> Result<Cursor> {
    let seq: Option<i64> = conn
        .prepare_cached("SELECT seq FROM audit_event WHERE event_id = ?1 AND event_time_ms = ?2")?
        .query_row(params![event_id, time_ms], |r| r.get(0))
        .optional()?;
    seq.map(|seq| Cursor { time_ms, seq })
        .ok_or(Error::BadNextToken)
}

/// Inclusive time range and the exclusive `(time, seq)` cursor, as SQL arguments. The cursor's
/// time also lowers the upper bound, so every scan is a plain range of a time-keyed index.
struct Bounds {
    start: i64,
    end: i64,
    cursor_time: i64,
    cursor_seq: i64,
}

impl Bounds {
    fn new(q: &AuditQuery, cursor: Option<Cursor>) -> Self {
        let (cursor_time, cursor_seq) = cursor.map_or((i64::MAX, i64::MAX), |c| (c.time_ms, c.seq));
        Self {
            start: q.start_ms.unwrap_or(i64::MIN),
            end: q.end_ms.unwrap_or(i64::MAX).min(cursor_time),
            cursor_time,
            cursor_seq,
        }
    }
}

/// The time and cursor conditions on `t` (the alias whose `event_time_ms` and `seq` order the
/// scan). With `event_time_ms <= cursor time` already in the range, `(time, seq) < cursor` is
/// `time < cursor time OR seq < cursor seq`.
fn range_sql(t: &str) -> String {
    format!(
        "{t}.event_time_ms BETWEEN ? AND ? AND ({t}.event_time_ms < ? OR {t}.seq < ?)
         ORDER BY {t}.event_time_ms DESC, {t}.seq DESC LIMIT ?"
    )
}

fn range_args(start: i64, end: i64, b: &Bounds, want: usize) -> [Value; 5] {
    [
        Value::Integer(start),
        Value::Integer(end),
        Value::Integer(b.cursor_time),
        Value::Integer(b.cursor_seq),
        Value::Integer(i64::try_from(want).unwrap_or(i64::MAX)),
    ]
}

/// The filters with a per-event index entry (or none): one index range scan.
fn direct(
    conn: &Connection,
    from: &str,
    filter: Option<(&str, Value)>,
    t: &str,
    b: &Bounds,
    want: usize,
    rows: &mut Vec<(i64, AuditRecord)>,
) -> Result<()> {
    let (cond, arg) = filter.unzip();
    let cond = cond.map_or_else(String::new, |c| format!("{c} AND"));
    let sql = format!("SELECT {COLUMNS} FROM {from} WHERE {cond} {}", range_sql(t));
    let mut args: Vec<Value> = arg.into_iter().collect();
    args.extend(range_args(b.start, b.end, b, want));
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut found = stmt.query(rusqlite::params_from_iter(args))?;
    while let Some(row) = found.next()? {
        rows.push(read_row(row)?);
    }
    Ok(())
}

/// The filters answered through `audit_summary`: for each bucket holding a match, newest first,
/// scan that bucket's slice of the time index until the page is full.
fn by_buckets(
    conn: &Connection,
    kind: SummaryKind,
    value: &str,
    filter: &(&'static str, Value),
    b: &Bounds,
    want: usize,
    rows: &mut Vec<(i64, AuditRecord)>,
) -> Result<()> {
    if b.start > b.end {
        return Ok(());
    }
    let mut buckets = conn.prepare_cached(
        "SELECT bucket FROM audit_summary
         WHERE kind = ?1 AND value = ?2 AND bucket BETWEEN ?3 AND ?4 ORDER BY bucket DESC",
    )?;
    let mut buckets = buckets.query(params![
        kind as i64,
        value,
        bucket_of(b.start),
        bucket_of(b.end)
    ])?;
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_event e WHERE {} AND {}",
        filter.0,
        range_sql("e")
    );
    let mut scan = conn.prepare_cached(&sql)?;
    while rows.len() < want {
        let Some(bucket) = buckets.next()? else {
            break;
        };
        let bucket: i64 = bucket.get(0)?;
        let first = bucket.saturating_mul(BUCKET_MS);
        let (lo, hi) = (
            first.max(b.start),
            first.saturating_add(BUCKET_MS - 1).min(b.end),
        );
        let mut args = vec![filter.1.clone()];
        args.extend(range_args(lo, hi, b, want - rows.len()));
        let mut found = scan.query(rusqlite::params_from_iter(args))?;
        while let Some(row) = found.next()? {
            rows.push(read_row(row)?);
        }
    }
    Ok(())
}

/// How a lookup finds its rows.
enum Plan {
    /// A range of one index: `t` is the alias whose `(event_time_ms, seq)` orders it.
    Index {
        from: &'static str,
        filter: Option<(&'static str, Value)>,
        t: &'static str,
    },
    /// The attributes kept in `audit_summary`: the summary key and the per-row filter.
    Buckets {
        kind: SummaryKind,
        value: String,
        filter: (&'static str, Value),
    },
}

fn plan(attribute: Option<&LookupAttribute>) -> Plan {
    let text = |v: &String| Value::Text(v.clone());
    let event = |cond: &'static str, v: &String| Plan::Index {
        from: "audit_event e",
        filter: Some((cond, text(v))),
        t: "e",
    };
    let buckets = |kind, value: &str, filter| Plan::Buckets {
        kind,
        value: value.to_owned(),
        filter,
    };
    match attribute {
        None => Plan::Index {
            from: "audit_event e",
            filter: None,
            t: "e",
        },
        Some(LookupAttribute::EventId(v)) => event("e.event_id = ?", v),
        Some(LookupAttribute::Username(v)) => event("e.username = ?", v),
        Some(LookupAttribute::AccessKeyId(v)) => event("e.access_key_id = ?", v),
        // CROSS JOIN keeps the name index as the outer loop: it is what orders the page.
        Some(LookupAttribute::ResourceName(v)) => Plan::Index {
            from: "audit_resource_name r CROSS JOIN audit_event e ON e.seq = r.seq",
            filter: Some(("r.resource_name = ?", text(v))),
            t: "r",
        },
        Some(LookupAttribute::EventName(v)) => {
            buckets(SummaryKind::EventName, v, ("e.event_name = ?", text(v)))
        }
        Some(LookupAttribute::EventSource(v)) => {
            buckets(SummaryKind::EventSource, v, ("e.event_source = ?", text(v)))
        }
        Some(LookupAttribute::ReadOnly(v)) => buckets(
            SummaryKind::ReadOnly,
            read_only_value(*v),
            ("e.read_only = ?", Value::Integer(i64::from(*v))),
        ),
        Some(LookupAttribute::ResourceType(v)) => buckets(
            SummaryKind::ResourceType,
            v,
            (
                "EXISTS (SELECT 1 FROM json_each(e.resources) j
                         WHERE json_extract(j.value, '$[0]') = ?)",
                text(v),
            ),
        ),
    }
}

fn read_row(row: &Row<'_>) -> Result<(i64, AuditRecord)> {
    let resources: String = row.get(8)?;
    Ok((
        row.get(0)?,
        AuditRecord {
            event_id: row.get(1)?,
            event_time_ms: row.get(2)?,
            event_name: row.get(3)?,
            event_source: row.get(4)?,
            username: row.get(5)?,
            access_key_id: row.get(6)?,
            read_only: row.get(7)?,
            resources: decode_resources(&resources)?,
            event_json: row.get(9)?,
        },
    ))
}

/// The summary bucket of a time: floor division, as migration 3 computes it in SQL.
fn bucket_of(time_ms: i64) -> i64 {
    time_ms.div_euclid(BUCKET_MS)
}

/// How `read_only` is spelled in `audit_summary` (SQLite's text of the stored integer).
fn read_only_value(read_only: bool) -> &'static str {
    if read_only { "1" } else { "0" }
}

/// `[[type, name], …]`: the shape SQLite's `json_group_array(json_array(…))` gives migration 3,
/// so migrated and new rows read alike.
fn encode_resources(resources: &[(String, String)]) -> String {
    // Serializing strings cannot fail.
    serde_json::to_string(resources).unwrap_or_else(|_| "[]".to_owned())
}

fn decode_resources(json: &str) -> Result<Vec<(String, String)>> {
    serde_json::from_str(json).map_err(|_| Error::Corrupt("audit event resources"))
}
