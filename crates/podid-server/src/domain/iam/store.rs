//! IAM writes: one compare-and-swap transaction each, committed through [`StoreHandle::commit`]
//! (so the index reflects the write before the caller answers), as in [`crate::domain::writes`].
//!
//! Generic over the caller's error type `E`: an edit refuses with the API's own error (a
//! `DeleteConflict`, a quota), and store failures arrive as [`StoreFailure`], which the API maps
//! once.

use podid_store::{Compare, Txn, TxnOutcome};
use serde::Serialize;
use serde::de::DeserializeOwned;

use zeroize::Zeroizing;

use crate::domain::secrets::Secrets;
use crate::state::StoreHandle;

/// Optimistic-concurrency retries before giving up with [`StoreFailure::Contention`].
const MAX_ATTEMPTS: usize = 5;

/// Why a write failed for a reason of the store's, not of the request's.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreFailure {
    #[error("store {what}: {source}")]
    Store {
        what: &'static str,
        #[source]
        source: podid_store::Error,
    },
    #[error("{what} of an IAM record: {source}")]
    Codec {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("sealing {key}: {source}")]
    Seal {
        key: String,
        #[source]
        source: podid_store::envelope::EnvelopeError,
    },
    #[error("too many concurrent modifications")]
    Contention,
}

/// What an edit does with the record it read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Write the edited record back.
    Put,
    /// Delete the record.
    Delete,
    /// Nothing to write (an idempotent repeat).
    Unchanged,
}

/// Further compares and ops an edit adds to its transaction; each compare carries the error
/// to return when it is the one that fails.
#[derive(Debug)]
pub(crate) struct Extra<E> {
    txn: Txn,
    errors: Vec<E>,
}

impl<E> Default for Extra<E> {
    fn default() -> Self {
        Self {
            txn: Txn::default(),
            errors: Vec::new(),
        }
    }
}

impl<E> Extra<E> {
    pub(crate) fn require(&mut self, compare: Compare, otherwise: E) {
        self.txn.compares.push(compare);
        self.errors.push(otherwise);
    }
    pub(crate) fn put(&mut self, key: String, value: Vec<u8>) {
        self.txn = std::mem::take(&mut self.txn).put(key, value);
    }
    pub(crate) fn delete(&mut self, key: String) {
        self.txn = std::mem::take(&mut self.txn).delete(key);
    }
}

pub(crate) fn encode(value: &impl Serialize) -> Result<Vec<u8>, StoreFailure> {
    serde_json::to_vec(value).map_err(|source| StoreFailure::Codec {
        what: "encoding",
        source,
    })
}

/// The stored form of a secret record (an access key): its JSON, sealed for `key` under the
/// current KEK. The JSON never leaves a zeroizing buffer.
pub(crate) fn encode_secret(
    secrets: &Secrets,
    key: &str,
    value: &impl Serialize,
) -> Result<Vec<u8>, StoreFailure> {
    let mut json = Zeroizing::new(Vec::new());
    serde_json::to_writer(&mut *json, value).map_err(|source| StoreFailure::Codec {
        what: "encoding",
        source,
    })?;
    secrets
        .seal(key, &json)
        .map_err(|source| StoreFailure::Seal {
            key: key.to_owned(),
            source,
        })
}

fn store(what: &'static str) -> impl FnOnce(podid_store::Error) -> StoreFailure {
    move |source| StoreFailure::Store { what, source }
}

/// Writes a new record at `key`; `exists` is the error when the key is already there.
pub(crate) async fn create<E: From<StoreFailure>>(
    handle: &StoreHandle,
    key: String,
    value: &impl Serialize,
    exists: E,
) -> Result<(), E> {
    let txn = Txn::new()
        .when(Compare::Absent(key.clone()))
        .put(key, encode(value)?);
    match handle.commit(txn).await.map_err(store("create"))? {
        TxnOutcome::Committed { .. } => Ok(()),
        TxnOutcome::Failed { .. } => Err(exists),
    }
}

/// Reads the record at `key`, lets `change` edit it (and add to the transaction), and writes
/// the result if nothing else wrote the record in between. Returns the edited record and what
/// `change` returned alongside.
pub(crate) async fn edit<T, R, E>(
    handle: &StoreHandle,
    key: &str,
    not_found: impl Fn() -> E,
    mut change: impl FnMut(&mut T, &mut Extra<E>) -> Result<(Outcome, R), E>,
) -> Result<(T, R), E>
where
    T: Serialize + DeserializeOwned,
    E: From<StoreFailure>,
{
    for _ in 0..MAX_ATTEMPTS {
        let kv = handle
            .get(key)
            .await
            .map_err(store("read"))?
            .ok_or_else(&not_found)?;
        let mut record: T =
            serde_json::from_slice(&kv.value).map_err(|source| StoreFailure::Codec {
                what: "decoding",
                source,
            })?;
        let mut extra = Extra::default();
        let (outcome, out) = change(&mut record, &mut extra)?;
        let mut txn = Txn::new().when(Compare::ModRevision(key.to_owned(), kv.mod_revision));
        txn.compares.append(&mut extra.txn.compares);
        txn = match outcome {
            Outcome::Unchanged => return Ok((record, out)),
            Outcome::Put => txn.put(key.to_owned(), encode(&record)?),
            Outcome::Delete => txn.delete(key.to_owned()),
        };
        txn.ops.append(&mut extra.txn.ops);
        match handle.commit(txn).await.map_err(store("write"))? {
            TxnOutcome::Committed { .. } => return Ok((record, out)),
            TxnOutcome::Failed { failed_compare: 0 } => continue,
            TxnOutcome::Failed { failed_compare } => {
                let index = failed_compare.saturating_sub(1);
                return Err(extra
                    .errors
                    .into_iter()
                    .nth(index)
                    .unwrap_or_else(|| StoreFailure::Contention.into()));
            }
        }
    }
    Err(StoreFailure::Contention.into())
}

/// Deletes `key` if it still exists.
pub(crate) async fn delete<E: From<StoreFailure>>(
    handle: &StoreHandle,
    key: String,
    not_found: E,
) -> Result<(), E> {
    let txn = Txn::new().when(Compare::Present(key.clone())).delete(key);
    match handle.commit(txn).await.map_err(store("delete"))? {
        TxnOutcome::Committed { .. } => Ok(()),
        TxnOutcome::Failed { .. } => Err(not_found),
    }
}
