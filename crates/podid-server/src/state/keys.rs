//! The store key layout. Every key podid writes is built here.
//!
//! ```text
//! cluster/<name>                      → Cluster JSON
//! assoc/<cluster>/<association id>    → Association JSON
//! assoc-sa/<cluster>/<ns>/<sa>        → association id (uniqueness guard, written in the same txn)
//! ```

use podid_model::AssociationId;

pub(crate) const CLUSTER_PREFIX: &str = "cluster/";
pub(crate) const ASSOCIATION_PREFIX: &str = "assoc/";

pub(crate) fn cluster(name: &str) -> String {
    format!("{CLUSTER_PREFIX}{name}")
}

pub(crate) fn association(cluster: &str, id: &AssociationId) -> String {
    format!("{ASSOCIATION_PREFIX}{cluster}/{}", id.as_str())
}

/// Namespaces and service-account names cannot contain '/', so the key is unambiguous.
pub(crate) fn service_account_guard(
    cluster: &str,
    namespace: &str,
    service_account: &str,
) -> String {
    format!("assoc-sa/{cluster}/{namespace}/{service_account}")
}

pub(crate) fn parse_association_key(key: &str) -> Option<(&str, AssociationId)> {
    let rest = key.strip_prefix(ASSOCIATION_PREFIX)?;
    let (cluster, id) = rest.split_once('/')?;
    Some((cluster, AssociationId::parse(id)?))
}
