//! Entry points for `cargo bench` only (`benches/association_index.rs`): not part of the crate's
//! API, hidden from docs, and free to change with the index. Lets a benchmark build the real
//! in-memory association index from store records and probe it exactly as the credential path
//! and the list API do, without a store or a server.

use std::sync::Arc;

use podid_model::{Association, AssociationId};
use podid_store::KeyValue;

use super::follow::Index;
use super::keys;
use super::registry::{AssociationFilter, AssociationIndex, Registry};

/// The association half of the server's registry, loaded from a snapshot of store records.
#[derive(Debug)]
pub struct AssociationIndexBench {
    registry: Arc<Registry>,
}

impl AssociationIndexBench {
    /// The index a server would build at start from these `assoc/…` records.
    pub fn load(kvs: &[KeyValue]) -> Self {
        let registry = Arc::new(Registry::default());
        AssociationIndex(Arc::clone(&registry)).load(kvs);
        Self { registry }
    }

    /// The store key under which `a` is kept.
    pub fn store_key(a: &Association) -> String {
        keys::association(&a.cluster_name, &a.association_id)
    }

    /// The credential path's lookup (`Registry::lookup`).
    pub fn lookup(
        &self,
        cluster: &str,
        namespace: &str,
        service_account: &str,
    ) -> Option<Arc<Association>> {
        self.registry.lookup(cluster, namespace, service_account)
    }

    /// One unfiltered ListPodIdentityAssociations page after `after` (`Registry::list`).
    pub fn list_page(
        &self,
        cluster: &str,
        after: Option<&AssociationId>,
        limit: usize,
    ) -> (Vec<Arc<Association>>, bool) {
        self.registry
            .list(cluster, &AssociationFilter::default(), after, limit)
    }

    /// How many associations `cluster` has.
    pub fn count(&self, cluster: &str) -> usize {
        self.registry.association_count(cluster)
    }
}
