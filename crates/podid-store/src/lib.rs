//! Durable, versioned key-value storage for podid, behind one trait.
//!
//! Owns: the [`Store`] trait (get, prefix range, compare-and-swap transactions, a change feed), its
//! SQLite backend, and the audit-event log. Records are opaque bytes here: typed records, their
//! validation and their in-memory indexes belong to the callers (`podid-server`). The key space is
//! flat UTF-8 strings; callers build hierarchical keys such as `assoc/<cluster>/<id>`.
//!
//! The trait deliberately has the shape of etcd v3 (revisions, `Compare` + `Op` transactions, a watch
//! stream), so the SQLite and etcd backends are interchangeable and HA replicas can follow each
//! other's writes through [`Store::subscribe`].
//!
//! The audit log ([`AuditLog`]) is a second, append-only trait for CloudTrail-style records; it
//! lives here so one durable file (and one writer) holds both. Rendering and redacting the
//! CloudTrail JSON is the caller's job: this crate stores it verbatim.
//!
//! [`envelope`] seals secret values at rest under a key-encryption key (envelope encryption,
//! AES-256-GCM). The store itself stays opaque: callers decide which records are secret and seal
//! them before they put them, so the change feed and every backend carry only ciphertext.
#![forbid(unsafe_code)]

pub mod audit;
pub mod envelope;
mod limits;
mod sqlite;

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::broadcast;

pub use audit::{AuditLog, AuditPage, AuditQuery, AuditRecord, LookupAttribute};
pub use limits::{MAX_KEY_BYTES, MAX_TXN_COMPARES, MAX_TXN_OPS, MAX_VALUE_BYTES};
pub use sqlite::{SqliteStore, WriterStats};

/// A store-wide, strictly increasing commit number. Every committed transaction gets a new one.
pub type Revision = u64;

/// One stored key with its value and the revision of the transaction that last wrote it.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    pub mod_revision: Revision,
}

impl fmt::Debug for KeyValue {
    // Values can hold secrets (access keys); print only their size.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyValue")
            .field("key", &self.key)
            .field("value_len", &self.value.len())
            .field("mod_revision", &self.mod_revision)
            .finish()
    }
}

/// A precondition of a transaction; all must hold for its operations to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compare {
    /// The key does not exist.
    Absent(String),
    /// The key exists.
    Present(String),
    /// The key exists and was last written at exactly this revision.
    ModRevision(String, Revision),
}

/// A write inside a transaction.
#[derive(Clone, PartialEq, Eq)]
pub enum Op {
    Put { key: String, value: Bytes },
    Delete { key: String },
}

impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Put { key, value } => write!(f, "Put({key}, {} bytes)", value.len()),
            Op::Delete { key } => write!(f, "Delete({key})"),
        }
    }
}

/// An atomic compare-and-swap: if every compare holds, every op applies in one commit; otherwise
/// nothing is written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Txn {
    pub compares: Vec<Compare>,
    pub ops: Vec<Op>,
}

impl Txn {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn when(mut self, compare: Compare) -> Self {
        self.compares.push(compare);
        self
    }
    pub fn put(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.ops.push(Op::Put {
            key: key.into(),
            value: value.into(),
        });
        self
    }
    pub fn delete(mut self, key: impl Into<String>) -> Self {
        self.ops.push(Op::Delete { key: key.into() });
        self
    }
}

/// The outcome of [`Store::txn`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOutcome {
    /// Every compare held; the ops are durable at this revision.
    Committed { revision: Revision },
    /// The compare at this index (into `Txn::compares`) did not hold; nothing was written.
    Failed { failed_compare: usize },
}

/// One key's change inside a committed transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Put(KeyValue),
    Delete { key: String, mod_revision: Revision },
}

/// Everything one committed transaction changed, in op order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub revision: Revision,
    pub events: Vec<Event>,
}

/// Why a store operation failed. Conflicts are not errors: they are [`TxnOutcome::Failed`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("store schema version {found} is newer than this podid understands ({supported})")]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("store location {0:?} is not understood (expected sqlite:<path>)")]
    BadLocation(String),
    #[error("the store's writer has stopped")]
    WriterGone,
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The group commit holding this write failed as a whole; nothing of it was applied.
    #[error("sqlite commit failed: {0}")]
    Commit(#[source] Arc<rusqlite::Error>),
    /// A request exceeded one of the store's size caps; nothing was written.
    #[error("{what} exceeds the store limit of {max}")]
    TooLarge { what: &'static str, max: usize },
    /// An [`AuditQuery::next_token`] that this store did not issue for this same query.
    #[error("the next token is malformed or belongs to a different query")]
    BadNextToken,
    /// A stored row holds a value this code cannot represent (e.g. a negative revision).
    #[error("store data is corrupt: {0}")]
    Corrupt(&'static str),
    /// Another connection held the database longer than the busy timeout.
    #[error("store is busy: {0}")]
    Busy(&'static str),
    /// A blocking read task panicked or was cancelled.
    #[error("a store read task failed")]
    ReaderFailed,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Durable, versioned key-value storage.
///
/// Contract every backend keeps:
/// * a `txn` that returns `Committed` is durable (survives `kill -9` and power loss as far as the
///   medium's fsync allows) before it returns;
/// * revisions are strictly increasing; each committed transaction is published exactly once, in
///   revision order, to every [`Store::subscribe`] receiver;
/// * a transaction with no ops and only compares commits nothing and returns the current revision;
///   so does one whose ops change nothing (only deletes of absent keys), as in etcd.
#[async_trait::async_trait]
pub trait Store: Send + Sync + fmt::Debug + 'static {
    /// The current value of `key`.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;

    /// Every key starting with `prefix`, in key order, and the revision this snapshot reflects.
    async fn range(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision)>;

    /// Apply `txn` atomically.
    async fn txn(&self, txn: Txn) -> Result<TxnOutcome>;

    /// Committed changes from now on. A receiver that lags far enough to miss changes sees
    /// `RecvError::Lagged` and must reload with [`Store::range`].
    fn subscribe(&self) -> broadcast::Receiver<Arc<Change>>;

    /// Makes sure values overwritten or deleted so far survive nowhere in the backend's files
    /// (called after plaintext secrets were replaced by sealed ones). SQLite zeroes freed
    /// content as it goes (`secure_delete`) and here truncates the WAL, whose older frames
    /// would still hold the old pages. Default: nothing to do.
    async fn purge_overwritten(&self) -> Result<()> {
        Ok(())
    }
}

/// Open the store named by a `--store` location such as `sqlite:/var/lib/podid/podid.db`.
pub async fn open(location: &str) -> Result<Backend> {
    match location.split_once(':') {
        Some(("sqlite", path)) if !path.is_empty() => {
            let sqlite = Arc::new(SqliteStore::open(std::path::Path::new(path)).await?);
            Ok(Backend {
                store: sqlite.clone(),
                audit: sqlite,
            })
        }
        _ => Err(Error::BadLocation(location.to_owned())),
    }
}

/// An opened backend: the key-value store and the audit log (one database for SQLite).
#[derive(Debug, Clone)]
pub struct Backend {
    pub store: Arc<dyn Store>,
    pub audit: Arc<dyn AuditLog>,
}
