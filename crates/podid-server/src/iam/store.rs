//! IAM writes: one compare-and-swap transaction each, then a wait until the index reflects it
//! (read-your-writes), as in [`crate::writes`].

use podid_aws::AwsError;
use podid_store::{Compare, Txn, TxnOutcome};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::errors::{contention, service_failure};
use crate::state::AppState;

/// Optimistic-concurrency retries before giving up with ConcurrentModification.
const MAX_ATTEMPTS: usize = 5;

/// What an edit does with the record it read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Write the edited record back.
    Put,
    /// Delete the record.
    Delete,
    /// Nothing to write (an idempotent repeat).
    Unchanged,
}

/// Further compares and ops an edit adds to its transaction; each compare carries the error
/// to return when it is the one that fails.
#[derive(Debug, Default)]
pub(super) struct Extra {
    txn: Txn,
    errors: Vec<AwsError>,
}

impl Extra {
    pub(super) fn require(&mut self, compare: Compare, otherwise: AwsError) {
        self.txn.compares.push(compare);
        self.errors.push(otherwise);
    }
    pub(super) fn put(&mut self, key: String, value: Vec<u8>) {
        self.txn = std::mem::take(&mut self.txn).put(key, value);
    }
    pub(super) fn delete(&mut self, key: String) {
        self.txn = std::mem::take(&mut self.txn).delete(key);
    }
}

pub(super) fn encode(value: &impl Serialize) -> Result<Vec<u8>, AwsError> {
    serde_json::to_vec(value).map_err(|e| service_failure("encode", &e))
}

/// Writes a new record at `key`; `exists` is the error when the key is already there.
pub(super) async fn create(
    state: &AppState,
    key: String,
    value: &impl Serialize,
    exists: AwsError,
) -> Result<(), AwsError> {
    let txn = Txn::new()
        .when(Compare::Absent(key.clone()))
        .put(key, encode(value)?);
    match state
        .store
        .txn(txn)
        .await
        .map_err(|e| service_failure("create", &e))?
    {
        TxnOutcome::Committed { revision } => {
            state.follower.wait_for(revision).await;
            Ok(())
        }
        TxnOutcome::Failed { .. } => Err(exists),
    }
}

/// Reads the record at `key`, lets `change` edit it (and add to the transaction), and writes
/// the result if nothing else wrote the record in between. Returns the edited record and what
/// `change` returned alongside.
pub(super) async fn edit<T, R>(
    state: &AppState,
    key: &str,
    not_found: impl Fn() -> AwsError,
    mut change: impl FnMut(&mut T, &mut Extra) -> Result<(Outcome, R), AwsError>,
) -> Result<(T, R), AwsError>
where
    T: Serialize + DeserializeOwned,
{
    for _ in 0..MAX_ATTEMPTS {
        let kv = state
            .store
            .get(key)
            .await
            .map_err(|e| service_failure("read", &e))?
            .ok_or_else(&not_found)?;
        let mut record: T =
            serde_json::from_slice(&kv.value).map_err(|e| service_failure("decode", &e))?;
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
        match state
            .store
            .txn(txn)
            .await
            .map_err(|e| service_failure("write", &e))?
        {
            TxnOutcome::Committed { revision } => {
                state.follower.wait_for(revision).await;
                return Ok((record, out));
            }
            TxnOutcome::Failed { failed_compare: 0 } => continue,
            TxnOutcome::Failed { failed_compare } => {
                let index = failed_compare.saturating_sub(1);
                return Err(extra
                    .errors
                    .into_iter()
                    .nth(index)
                    .unwrap_or_else(contention));
            }
        }
    }
    Err(contention())
}

/// Deletes `key` if it still exists.
pub(super) async fn delete(
    state: &AppState,
    key: String,
    not_found: AwsError,
) -> Result<(), AwsError> {
    let txn = Txn::new().when(Compare::Present(key.clone())).delete(key);
    match state
        .store
        .txn(txn)
        .await
        .map_err(|e| service_failure("delete", &e))?
    {
        TxnOutcome::Committed { revision } => {
            state.follower.wait_for(revision).await;
            Ok(())
        }
        TxnOutcome::Failed { .. } => Err(not_found),
    }
}
