//! Every write of clusters and associations: one compare-and-swap transaction each, then a wait
//! until the indexes reflect it (read-your-writes for the caller, through [`StoreHandle::commit`]).
//!
//! Invariants kept by the transactions themselves, so they hold across HA replicas too:
//! at most one association per (cluster, namespace, service account) (a guard key written with
//! `Absent`), no association without its cluster (`Present(cluster)`), and no lost updates
//! (`ModRevision` with a bounded retry).

use podid_model::{Association, AssociationId, Cluster};
use podid_store::{Compare, Txn, TxnOutcome};

use crate::state::{StoreHandle, keys};

/// Why a write did not happen.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WriteError {
    #[error("cluster not found")]
    ClusterNotFound,
    #[error("association not found")]
    AssociationNotFound,
    #[error("service account already has association {existing_id}")]
    InUse { existing_id: String },
    #[error("cluster already exists")]
    ClusterExists,
    #[error("too many concurrent writers; try again")]
    Contention,
    #[error("store: {0}")]
    Store(#[from] podid_store::Error),
    #[error("encoding record: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Optimistic-concurrency retries before giving up with `Contention`.
const MAX_ATTEMPTS: usize = 5;

pub(crate) async fn create_association(
    store: &StoreHandle,
    a: &Association,
) -> Result<(), WriteError> {
    let guard = keys::service_account_guard(&a.cluster_name, &a.namespace, &a.service_account);
    let txn = Txn::new()
        .when(Compare::Absent(guard.clone()))
        .when(Compare::Present(keys::cluster(&a.cluster_name)))
        .put(
            keys::association(&a.cluster_name, &a.association_id),
            serde_json::to_vec(a)?,
        )
        .put(guard.clone(), a.association_id.as_str().to_owned());
    match store.commit(txn).await? {
        TxnOutcome::Committed { .. } => Ok(()),
        TxnOutcome::Failed { failed_compare: 0 } => {
            let existing = store.get(&guard).await?;
            let existing_id = existing
                .map(|kv| String::from_utf8_lossy(&kv.value).into_owned())
                .unwrap_or_default();
            Err(WriteError::InUse { existing_id })
        }
        TxnOutcome::Failed { .. } => Err(WriteError::ClusterNotFound),
    }
}

/// Reads the stored association, lets `change` edit it, and writes it back if nothing else did in
/// between. `change` returning `Ok(false)` means "nothing to write" (an idempotent repeat).
pub(crate) async fn update_association<E>(
    store: &StoreHandle,
    cluster: &str,
    id: &AssociationId,
    mut change: impl FnMut(&mut Association) -> Result<bool, E>,
) -> Result<Result<Association, E>, WriteError> {
    let key = keys::association(cluster, id);
    for _ in 0..MAX_ATTEMPTS {
        let Some(kv) = store.get(&key).await? else {
            return Err(WriteError::AssociationNotFound);
        };
        let mut a: Association = serde_json::from_slice(&kv.value)?;
        match change(&mut a) {
            Err(e) => return Ok(Err(e)),
            Ok(false) => return Ok(Ok(a)),
            Ok(true) => {}
        }
        let txn = Txn::new()
            .when(Compare::ModRevision(key.clone(), kv.mod_revision))
            .put(key.clone(), serde_json::to_vec(&a)?);
        if let TxnOutcome::Committed { .. } = store.commit(txn).await? {
            return Ok(Ok(a));
        }
    }
    Err(WriteError::Contention)
}

pub(crate) async fn delete_association(
    store: &StoreHandle,
    cluster: &str,
    id: &AssociationId,
) -> Result<Association, WriteError> {
    let key = keys::association(cluster, id);
    for _ in 0..MAX_ATTEMPTS {
        let Some(kv) = store.get(&key).await? else {
            return Err(WriteError::AssociationNotFound);
        };
        let a: Association = serde_json::from_slice(&kv.value)?;
        let txn = Txn::new()
            .when(Compare::ModRevision(key.clone(), kv.mod_revision))
            .delete(key.clone())
            .delete(keys::service_account_guard(
                cluster,
                &a.namespace,
                &a.service_account,
            ));
        if let TxnOutcome::Committed { .. } = store.commit(txn).await? {
            return Ok(a);
        }
    }
    Err(WriteError::Contention)
}

pub(crate) async fn put_cluster(
    store: &StoreHandle,
    c: &Cluster,
    must_be_new: bool,
) -> Result<(), WriteError> {
    let key = keys::cluster(&c.name);
    let compare = if must_be_new {
        Compare::Absent(key.clone())
    } else {
        Compare::Present(key.clone())
    };
    match store
        .commit(Txn::new().when(compare).put(key, serde_json::to_vec(c)?))
        .await?
    {
        TxnOutcome::Committed { .. } => Ok(()),
        TxnOutcome::Failed { .. } if must_be_new => Err(WriteError::ClusterExists),
        TxnOutcome::Failed { .. } => Err(WriteError::ClusterNotFound),
    }
}

/// Deletes a cluster that has no associations. The caller checks emptiness on the index first;
/// creates need `Present(cluster)`, so none can start after this commits.
pub(crate) async fn delete_cluster(store: &StoreHandle, name: &str) -> Result<(), WriteError> {
    let key = keys::cluster(name);
    match store
        .commit(Txn::new().when(Compare::Present(key.clone())).delete(key))
        .await?
    {
        TxnOutcome::Committed { .. } => Ok(()),
        TxnOutcome::Failed { .. } => Err(WriteError::ClusterNotFound),
    }
}
