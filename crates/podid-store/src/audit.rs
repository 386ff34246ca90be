//! The audit-event log: append-only CloudTrail-style records, looked up newest first.
//!
//! Owns: the [`AuditLog`] trait, its record/query types, the caps on what may be stored, and the
//! opaque pagination token. Does not own: building or redacting the CloudTrail JSON, or the
//! `LookupEvents` wire format (that is the API layer's job).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::{Error, Result};

/// Page size when [`AuditQuery::max_results`] is 0; CloudTrail's `LookupEvents` default is 50.
pub const DEFAULT_MAX_RESULTS: usize = 50;
/// Largest page the store returns, whatever is asked: bounds the memory one lookup can pin
/// (each record may carry up to [`MAX_EVENT_JSON_BYTES`]). CloudTrail itself caps pages at 50.
pub const MAX_RESULTS: usize = 1000;
/// CloudTrail's own limit for one event record is 256 KiB; anything larger is a caller bug and
/// would let one request bloat the log.
pub const MAX_EVENT_JSON_BYTES: usize = 256 * 1024;
/// Records per [`AuditLog::append`] call: one transaction must stay short for the shared writer.
pub const MAX_APPEND_BATCH: usize = 10_000;
/// Resources attached to one record; CloudTrail events name a handful at most.
pub const MAX_RESOURCES_PER_RECORD: usize = 64;
/// Tokens we issue are well under 200 bytes; refuse anything longer before decoding it.
const MAX_NEXT_TOKEN_LEN: usize = 512;

/// One audit event, as stored and returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Unique per event (CloudTrail uses a UUID). Appending an id twice keeps the first.
    pub event_id: String,
    pub event_time_ms: i64,
    pub event_name: String,
    pub event_source: String,
    pub username: Option<String>,
    pub access_key_id: Option<String>,
    pub read_only: bool,
    /// `(resource type, resource name)` pairs, in the order given.
    pub resources: Vec<(String, String)>,
    /// The full CloudTrail record, already redacted; stored and returned verbatim.
    pub event_json: String,
}

/// The single filter CloudTrail's `LookupEvents` allows (its `LookupAttributes` holds at most one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupAttribute {
    EventId(String),
    EventName(String),
    ReadOnly(bool),
    Username(String),
    ResourceType(String),
    ResourceName(String),
    EventSource(String),
    AccessKeyId(String),
}

/// A lookup: optional filter, inclusive time bounds, page size and continuation token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub attribute: Option<LookupAttribute>,
    /// Oldest event time included (inclusive), if any.
    pub start_ms: Option<i64>,
    /// Newest event time included (inclusive), if any.
    pub end_ms: Option<i64>,
    /// 0 means [`DEFAULT_MAX_RESULTS`]; values above [`MAX_RESULTS`] are lowered to it.
    pub max_results: usize,
    /// A token from a previous page of this same query; anything else is [`Error::BadNextToken`].
    pub next_token: Option<String>,
}

/// One page of results, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPage {
    pub records: Vec<AuditRecord>,
    /// Present when more records may follow.
    pub next_token: Option<String>,
}

/// Durable, append-only audit storage.
#[async_trait::async_trait]
pub trait AuditLog: Send + Sync + fmt::Debug + 'static {
    /// Store `batch` in one transaction: all of it is durable on `Ok`, none of it on `Err`.
    async fn append(&self, batch: Vec<AuditRecord>) -> Result<()>;
    /// Records matching `q`, newest first (ties in time broken by insertion order, newest first;
    /// events stored before schema version 3 keep their old tie-break by event id).
    async fn lookup(&self, q: AuditQuery) -> Result<AuditPage>;
    /// Delete every record older than `cutoff_ms`; returns how many were deleted.
    async fn purge_before(&self, cutoff_ms: i64) -> Result<u64>;
}

impl AuditQuery {
    /// The page size actually used.
    pub fn page_size(&self) -> usize {
        match self.max_results {
            0 => DEFAULT_MAX_RESULTS,
            n => n.min(MAX_RESULTS),
        }
    }
}

/// Refuse a batch that breaks a cap, before it reaches the writer.
pub(crate) fn check_batch(batch: &[AuditRecord]) -> Result<()> {
    if batch.len() > MAX_APPEND_BATCH {
        return Err(Error::TooLarge {
            what: "audit batch",
            max: MAX_APPEND_BATCH,
        });
    }
    for r in batch {
        if r.event_json.len() > MAX_EVENT_JSON_BYTES {
            return Err(Error::TooLarge {
                what: "audit event",
                max: MAX_EVENT_JSON_BYTES,
            });
        }
        if r.resources.len() > MAX_RESOURCES_PER_RECORD {
            let max = MAX_RESOURCES_PER_RECORD;
            return Err(Error::TooLarge {
                what: "audit event resources",
                max,
            });
        }
    }
    Ok(())
}

/// Where the next page starts: strictly older than this `(time, seq)`, `seq` being the store's
/// insertion order (the tie-break within one millisecond).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub(crate) time_ms: i64,
    pub(crate) seq: i64,
}

/// A decoded `NextToken`: the current form, or one issued before schema version 3, which named
/// the last event by id; the store resolves that id to its `seq` (or refuses the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenCursor {
    Seq(Cursor),
    EventId { time_ms: i64, event_id: String },
}

/// Marks the current token layout; version-2 tokens start with the time, never with a letter.
const TOKEN_V3: &str = "v3:";

/// Token layout (before base64url): `v3:<time>:<query fingerprint hex>:<seq>` (before schema
/// version 3: `<time>:<query fingerprint hex>:<event id>`, still accepted). The fingerprint
/// binds the token to its query, as CloudTrail refuses a token reused with other parameters.
pub(crate) fn encode_token(q: &AuditQuery, cursor: Cursor) -> String {
    let raw = format!(
        "{TOKEN_V3}{}:{:016x}:{}",
        cursor.time_ms,
        fingerprint(q),
        cursor.seq
    );
    URL_SAFE_NO_PAD.encode(raw)
}

/// The cursor in `q.next_token`, if any.
pub(crate) fn decode_token(q: &AuditQuery) -> Result<Option<TokenCursor>> {
    let Some(token) = &q.next_token else {
        return Ok(None);
    };
    if token.len() > MAX_NEXT_TOKEN_LEN {
        return Err(Error::BadNextToken);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| Error::BadNextToken)?;
    let raw = String::from_utf8(bytes).map_err(|_| Error::BadNextToken)?;
    let (current, raw) = match raw.strip_prefix(TOKEN_V3) {
        Some(rest) => (true, rest),
        None => (false, raw.as_str()),
    };
    let mut parts = raw.splitn(3, ':');
    let (Some(time), Some(fp), Some(last)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(Error::BadNextToken);
    };
    let time_ms = time.parse::<i64>().map_err(|_| Error::BadNextToken)?;
    let fp = u64::from_str_radix(fp, 16).map_err(|_| Error::BadNextToken)?;
    if fp != fingerprint(q) || last.is_empty() {
        return Err(Error::BadNextToken);
    }
    Ok(Some(if current {
        let seq = last.parse::<i64>().map_err(|_| Error::BadNextToken)?;
        TokenCursor::Seq(Cursor { time_ms, seq })
    } else {
        TokenCursor::EventId {
            time_ms,
            event_id: last.to_owned(),
        }
    }))
}

/// A version-2 token, as the store issued them before schema version 3 (for migration tests).
#[cfg(test)]
pub(crate) fn encode_v2_token(q: &AuditQuery, time_ms: i64, event_id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{time_ms}:{:016x}:{event_id}", fingerprint(q)))
}

/// FNV-1a over the query's filter and bounds (not its page size, which may change between
/// pages). Stable across builds and replicas, unlike `std`'s `DefaultHasher`.
fn fingerprint(q: &AuditQuery) -> u64 {
    let (kind, value) = match &q.attribute {
        None => ("", String::new()),
        Some(LookupAttribute::EventId(v)) => ("EventId", v.clone()),
        Some(LookupAttribute::EventName(v)) => ("EventName", v.clone()),
        Some(LookupAttribute::ReadOnly(v)) => ("ReadOnly", v.to_string()),
        Some(LookupAttribute::Username(v)) => ("Username", v.clone()),
        Some(LookupAttribute::ResourceType(v)) => ("ResourceType", v.clone()),
        Some(LookupAttribute::ResourceName(v)) => ("ResourceName", v.clone()),
        Some(LookupAttribute::EventSource(v)) => ("EventSource", v.clone()),
        Some(LookupAttribute::AccessKeyId(v)) => ("AccessKeyId", v.clone()),
    };
    let canon = format!("{kind}\0{value}\0{:?}\0{:?}", q.start_ms, q.end_ms);
    canon.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str) -> AuditQuery {
        let attribute = Some(LookupAttribute::EventName(name.to_owned()));
        AuditQuery {
            attribute,
            ..AuditQuery::default()
        }
    }

    #[test]
    fn garbage_tokens_are_refused() {
        for token in [
            "",
            "!!!",
            "bm9jb2xvbnM",
            &"A".repeat(MAX_NEXT_TOKEN_LEN + 1),
        ] {
            let q = AuditQuery {
                next_token: Some(token.to_owned()),
                ..query("X")
            };
            assert!(
                matches!(decode_token(&q), Err(Error::BadNextToken)),
                "{token:?}"
            );
        }
    }

    #[test]
    fn token_from_another_query_is_refused() {
        let cursor = Cursor { time_ms: 5, seq: 9 };
        let token = encode_token(&query("A"), cursor);
        let other = AuditQuery {
            next_token: Some(token.clone()),
            ..query("B")
        };
        assert!(matches!(decode_token(&other), Err(Error::BadNextToken)));
        let same = AuditQuery {
            next_token: Some(token),
            max_results: 7,
            ..query("A")
        };
        assert_eq!(decode_token(&same).unwrap(), Some(TokenCursor::Seq(cursor)));
    }

    #[test]
    fn version_2_tokens_still_decode() {
        let token = encode_v2_token(&query("A"), 5, "e:1");
        let q = AuditQuery {
            next_token: Some(token),
            ..query("A")
        };
        let want = TokenCursor::EventId {
            time_ms: 5,
            event_id: "e:1".into(),
        };
        assert_eq!(decode_token(&q).unwrap(), Some(want));
    }

    #[test]
    fn current_tokens_with_a_bad_seq_are_refused() {
        for raw in ["v3:5:0:x", "v3:5:0:", "v3:5"] {
            let fp = format!("{:016x}", fingerprint(&query("A")));
            let q = AuditQuery {
                next_token: Some(URL_SAFE_NO_PAD.encode(raw.replace(":0:", &format!(":{fp}:")))),
                ..query("A")
            };
            assert!(
                matches!(decode_token(&q), Err(Error::BadNextToken)),
                "{raw}"
            );
        }
    }

    #[test]
    fn oversized_batches_are_refused() {
        let rec = AuditRecord {
            event_id: "e".into(),
            event_time_ms: 0,
            event_name: "n".into(),
            event_source: "s".into(),
            username: None,
            access_key_id: None,
            read_only: true,
            resources: vec![],
            event_json: "x".repeat(MAX_EVENT_JSON_BYTES + 1),
        };
        assert!(matches!(check_batch(&[rec]), Err(Error::TooLarge { .. })));
    }

    #[test]
    fn page_size_is_defaulted_and_capped() {
        assert_eq!(AuditQuery::default().page_size(), DEFAULT_MAX_RESULTS);
        let q = AuditQuery {
            max_results: usize::MAX,
            ..AuditQuery::default()
        };
        assert_eq!(q.page_size(), MAX_RESULTS);
    }
}
