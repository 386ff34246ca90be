//! EKS's output shapes (botocore `eks/2017-11-01`) as typed structs, members in the order EKS
//! writes them; optional members are omitted when absent, as EKS omits them.

use podid_model::{Association, Cluster, Tags};
use serde::Serialize;

/// Seconds since the epoch, the rest-json timestamp format botocore parses.
pub(crate) fn epoch_seconds(ms: i64) -> f64 {
    // i64 milliseconds → f64 seconds is exact for any date within the next 285,000 years.
    #[allow(clippy::cast_precision_loss)]
    let secs = ms as f64 / 1000.0;
    secs
}

/// `PodIdentityAssociation`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PodIdentityAssociation<'a> {
    cluster_name: &'a str,
    namespace: &'a str,
    service_account: &'a str,
    role_arn: &'a str,
    association_arn: &'a str,
    association_id: &'a str,
    tags: &'a Tags,
    created_at: f64,
    modified_at: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner_arn: Option<&'a str>,
    disable_session_tags: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_role_arn: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    external_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy: Option<&'a str>,
}

impl<'a> From<&'a Association> for PodIdentityAssociation<'a> {
    fn from(a: &'a Association) -> Self {
        Self {
            cluster_name: &a.cluster_name,
            namespace: &a.namespace,
            service_account: &a.service_account,
            role_arn: &a.role_arn,
            association_arn: &a.association_arn,
            association_id: a.association_id.as_str(),
            tags: &a.tags,
            created_at: epoch_seconds(a.created_at_ms),
            modified_at: epoch_seconds(a.modified_at_ms),
            owner_arn: a.owner_arn.as_deref(),
            disable_session_tags: a.disable_session_tags,
            target_role_arn: a.target_role_arn.as_deref(),
            external_id: a.external_id.as_deref(),
            policy: a.policy.as_deref(),
        }
    }
}

/// `PodIdentityAssociationSummary`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PodIdentityAssociationSummary<'a> {
    cluster_name: &'a str,
    namespace: &'a str,
    service_account: &'a str,
    association_arn: &'a str,
    association_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner_arn: Option<&'a str>,
}

impl<'a> From<&'a Association> for PodIdentityAssociationSummary<'a> {
    fn from(a: &'a Association) -> Self {
        Self {
            cluster_name: &a.cluster_name,
            namespace: &a.namespace,
            service_account: &a.service_account,
            association_arn: &a.association_arn,
            association_id: a.association_id.as_str(),
            owner_arn: a.owner_arn.as_deref(),
        }
    }
}

/// The output of Create, Describe, Update and DeletePodIdentityAssociation.
#[derive(Debug, Serialize)]
pub(super) struct AssociationResponse<'a> {
    pub(super) association: PodIdentityAssociation<'a>,
}

impl<'a> AssociationResponse<'a> {
    pub(super) fn of(a: &'a Association) -> Self {
        Self {
            association: a.into(),
        }
    }
}

/// `ListPodIdentityAssociationsResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ListPodIdentityAssociationsResponse<'a> {
    pub(super) associations: Vec<PodIdentityAssociationSummary<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) next_token: Option<String>,
}

/// `ListClustersResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ListClustersResponse {
    pub(super) clusters: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) next_token: Option<String>,
}

/// `DescribeClusterResponse`.
#[derive(Debug, Serialize)]
pub(super) struct DescribeClusterResponse<'a> {
    pub(super) cluster: ClusterShape<'a>,
}

/// `Cluster`, with the members a registered (not EKS-managed) cluster has.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ClusterShape<'a> {
    name: &'a str,
    arn: &'a str,
    id: &'a str,
    created_at: f64,
    status: &'static str,
    identity: Identity<'a>,
    tags: &'a Tags,
}

#[derive(Debug, Serialize)]
struct Identity<'a> {
    oidc: Oidc<'a>,
}

#[derive(Debug, Serialize)]
struct Oidc<'a> {
    issuer: &'a str,
}

impl<'a> From<&'a Cluster> for ClusterShape<'a> {
    fn from(c: &'a Cluster) -> Self {
        Self {
            name: &c.name,
            arn: &c.arn,
            id: &c.id,
            created_at: epoch_seconds(c.created_at_ms),
            status: "ACTIVE",
            identity: Identity {
                oidc: Oidc { issuer: &c.issuer },
            },
            tags: &c.tags,
        }
    }
}

/// The audit trail's `requestParameters` of an association write.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AuditedAssociationRequest<'a> {
    cluster_name: &'a str,
    namespace: &'a str,
    service_account: &'a str,
    role_arn: &'a str,
    target_role_arn: Option<&'a str>,
    disable_session_tags: bool,
}

impl<'a> From<&'a Association> for AuditedAssociationRequest<'a> {
    fn from(a: &'a Association) -> Self {
        Self {
            cluster_name: &a.cluster_name,
            namespace: &a.namespace,
            service_account: &a.service_account,
            role_arn: &a.role_arn,
            target_role_arn: a.target_role_arn.as_deref(),
            disable_session_tags: a.disable_session_tags,
        }
    }
}

/// The audit trail's `responseElements` of an association write: the summary, never the
/// session policy.
#[derive(Debug, Serialize)]
pub(super) struct AuditedAssociationResponse<'a> {
    pub(super) association: PodIdentityAssociationSummary<'a>,
}

#[cfg(test)]
mod tests {
    use podid_model::{AssociationSpec, Scope};

    use super::*;

    fn association(target: Option<&str>) -> Association {
        let spec = AssociationSpec::validate(
            "arn:aws:iam::000000000000:role/r",
            target,
            false,
            None,
            "000000000000",
        )
        .unwrap();
        Association::new(
            Scope {
                region: "us-east-1",
                account_id: "000000000000",
            },
            "dev",
            "ns",
            "sa",
            spec,
            Tags::new(),
            1_700_000_000_500,
        )
        .unwrap()
    }

    #[test]
    fn association_members_in_eks_order_without_absent_options() {
        let a = association(None);
        let json = serde_json::to_string(&AssociationResponse::of(&a)).unwrap();
        let keys = [
            "clusterName",
            "namespace",
            "serviceAccount",
            "roleArn",
            "associationArn",
            "associationId",
            "tags",
            "createdAt",
            "modifiedAt",
            "disableSessionTags",
        ];
        let positions: Vec<usize> = keys
            .iter()
            .map(|k| json.find(&format!("\"{k}\"")).unwrap())
            .collect();
        assert!(positions.windows(2).all(|p| p[0] < p[1]), "{json}");
        assert!(json.contains(r#""createdAt":1700000000.5"#));
        for absent in ["ownerArn", "targetRoleArn", "externalId", "policy"] {
            assert!(!json.contains(absent), "{absent} in {json}");
        }
        let chained = association(Some("arn:aws:iam::000000000000:role/t"));
        let json = serde_json::to_string(&AssociationResponse::of(&chained)).unwrap();
        assert!(
            json.contains(r#""targetRoleArn":"arn:aws:iam::000000000000:role/t","externalId":""#),
            "{json}"
        );
    }

    #[test]
    fn list_omits_an_absent_next_token() {
        let empty = ListClustersResponse {
            clusters: vec!["a".into()],
            next_token: None,
        };
        assert_eq!(
            serde_json::to_string(&empty).unwrap(),
            r#"{"clusters":["a"]}"#
        );
    }
}
