//! The admin API's output shapes (podid's own; documented in docs/server.md).

use podid_model::{Cluster, KeySource};
use serde::Serialize;

/// A registered cluster, with its token-verification keys as given.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ClusterShape<'a> {
    name: &'a str,
    arn: &'a str,
    id: &'a str,
    issuer: &'a str,
    created_at: f64,
    /// The inline key set, as a JSON document (stored compact).
    #[serde(skip_serializing_if = "Option::is_none")]
    jwks: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jwks_uri: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jwks_ca_bundle: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jwks_token_file: Option<&'a str>,
}

impl<'a> From<&'a Cluster> for ClusterShape<'a> {
    fn from(c: &'a Cluster) -> Self {
        let (jwks, jwks_uri, jwks_ca_bundle, jwks_token_file) = match &c.keys {
            // Stored only after validation as a JSON object; an unreadable one shows as null.
            KeySource::Inline { jwks } => (
                Some(serde_json::from_str(jwks).unwrap_or(serde_json::Value::Null)),
                None,
                None,
                None,
            ),
            KeySource::Uri {
                jwks_uri,
                ca_bundle,
                token_file,
            } => (
                None,
                Some(jwks_uri.as_str()),
                ca_bundle.as_deref(),
                token_file.as_deref(),
            ),
        };
        Self {
            name: &c.name,
            arn: &c.arn,
            id: &c.id,
            issuer: &c.issuer,
            created_at: crate::api::eks::epoch_seconds(c.created_at_ms),
            jwks,
            jwks_uri,
            jwks_ca_bundle,
            jwks_token_file,
        }
    }
}

/// `{"cluster": …}`: the output of register, describe, update and delete.
#[derive(Debug, Serialize)]
pub(super) struct ClusterResponse<'a> {
    pub(super) cluster: ClusterShape<'a>,
}

/// `{"clusters": […]}`.
#[derive(Debug, Serialize)]
pub(super) struct ListClustersResponse<'a> {
    pub(super) clusters: Vec<ClusterShape<'a>>,
}

/// The audit trail's `requestParameters` of a cluster write.
#[derive(Debug, Serialize)]
pub(super) struct AuditedClusterRequest<'a> {
    pub(super) name: &'a str,
    pub(super) issuer: &'a str,
}
