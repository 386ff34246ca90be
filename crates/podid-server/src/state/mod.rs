//! The bottom layer: in-memory indexes fed by the store's change feed, and the write handle that
//! waits for its own commits to reach them.
//!
//! Imports nothing from the layers above (domain, api, protocol, edge). Every index is loaded
//! with one `range` at start and then follows committed changes in revision order
//! ([`follow`]), so local and remote (HA) writes take the same path into memory.

#[cfg(feature = "bench-support")]
pub mod bench_support;
pub(crate) mod follow;
pub(crate) mod keys;
pub(crate) mod registry;

use std::sync::Arc;

use podid_store::{Store, Txn, TxnOutcome};

pub(crate) use follow::{Follower, Index};
pub(crate) use registry::{AssociationFilter, AssociationIndex, ClusterIndex, Registry};

/// The store together with the follower that applies its changes to the indexes.
///
/// [`StoreHandle::commit`] is the one write path: run a transaction and, when it commits, wait
/// until every index reflects it, so a caller reads its own write on the next lookup.
#[derive(Clone)]
pub(crate) struct StoreHandle {
    pub(crate) store: Arc<dyn Store>,
    follower: Arc<Follower>,
}

impl std::fmt::Debug for StoreHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreHandle").finish_non_exhaustive()
    }
}

impl StoreHandle {
    pub(crate) fn new(store: Arc<dyn Store>, follower: Follower) -> Self {
        Self {
            store,
            follower: Arc::new(follower),
        }
    }

    /// Runs `txn`; when it commits, returns only after the indexes have applied it.
    pub(crate) async fn commit(&self, txn: Txn) -> Result<TxnOutcome, podid_store::Error> {
        let outcome = self.store.txn(txn).await?;
        if let TxnOutcome::Committed { revision } = outcome {
            self.follower.wait_for(revision).await;
        }
        Ok(outcome)
    }

    /// Reads one key straight from the store (writes read-modify-write through this).
    pub(crate) async fn get(
        &self,
        key: &str,
    ) -> Result<Option<podid_store::KeyValue>, podid_store::Error> {
        self.store.get(key).await
    }
}
