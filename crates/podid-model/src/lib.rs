//! podid's domain records: clusters and pod identity associations, valid by construction.
//!
//! Owns: the record types the store persists and the server serves, the validation rules EKS
//! applies to their fields (Kubernetes names, IAM role ARNs, tags), and id/ARN generation. Does not
//! own: wire shapes (each router has its own), storage keys, or policy semantics.
#![forbid(unsafe_code)]

mod association;
mod cluster;
mod names;

pub use association::{
    Association, AssociationId, AssociationSpec, MAX_POLICY_LEN, MAX_TAGS, Scope, Tags,
    validate_tags,
};
pub use cluster::{Cluster, ClusterName, KeySource, MAX_CA_BUNDLE_BYTES};
pub use names::{validate_namespace, validate_service_account};

/// A field that failed validation, with the message EKS-style errors carry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidField {
    /// The wire name of the field (e.g. `serviceAccount`).
    pub field: &'static str,
    pub message: String,
}

impl InvalidField {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// Milliseconds since the Unix epoch, the unit records keep time in.
pub fn now_millis() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}
