//! EKS Auth's output shapes (botocore `eks-auth/2023-11-26`), members in the order EKS writes
//! them, and the audit trail's copies of them, derived from the same structs.

use serde::Serialize;

/// `AssumeRoleForPodIdentityResponse`, generic over its credentials member so that the response
/// ([`Credentials`]) and its audit copy ([`AuditedCredentials`]) share every other member.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AssumeRoleForPodIdentityResponse<'a, C> {
    pub(super) subject: Subject<'a>,
    pub(super) audience: &'static str,
    pub(super) pod_identity_association: PodIdentityAssociation<'a>,
    pub(super) assumed_role_user: AssumedRoleUser<'a>,
    pub(super) credentials: C,
}

/// `Subject`.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Subject<'a> {
    pub(super) namespace: &'a str,
    pub(super) service_account: &'a str,
}

/// `PodIdentityAssociation`.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PodIdentityAssociation<'a> {
    pub(super) association_arn: &'a str,
    pub(super) association_id: &'a str,
}

/// `AssumedRoleUser`.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AssumedRoleUser<'a> {
    pub(super) arn: &'a str,
    pub(super) assume_role_id: &'a str,
}

/// `Credentials`: the only place the secret and the session token are serialized.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Credentials<'a> {
    pub(super) session_token: &'a str,
    pub(super) secret_access_key: &'a str,
    pub(super) access_key_id: &'a str,
    /// Epoch seconds (rest-json timestamp).
    pub(super) expiration: i64,
}

impl std::fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

/// The audit trail's `credentials`: what identifies them, never the secret or the token.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AuditedCredentials<'a> {
    pub(super) access_key_id: &'a str,
    pub(super) expiration: i64,
}

impl<'a> AssumeRoleForPodIdentityResponse<'a, Credentials<'a>> {
    /// The same response with its credentials reduced to their id and expiry.
    pub(super) fn audit_copy(
        &self,
    ) -> AssumeRoleForPodIdentityResponse<'a, AuditedCredentials<'a>> {
        AssumeRoleForPodIdentityResponse {
            subject: self.subject,
            audience: self.audience,
            pod_identity_association: self.pod_identity_association,
            assumed_role_user: self.assumed_role_user,
            credentials: AuditedCredentials {
                access_key_id: self.credentials.access_key_id,
                expiration: self.credentials.expiration,
            },
        }
    }
}

/// The audited request parameters (the token itself is never recorded).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AuditedRequest<'a> {
    pub(super) cluster_name: &'a str,
    pub(super) eks_node_name: Option<&'a str>,
    pub(super) instance_id: Option<&'a str>,
    pub(super) zone: Option<&'a str>,
}

/// The audited parameters of a request refused before its body was read.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AuditedPath<'a> {
    pub(super) cluster_name: &'a str,
}

/// `userIdentity` of the STS `AssumeRole` EKS Auth makes on the service principal's behalf.
#[derive(Debug, Serialize)]
#[serde(tag = "type")]
pub(super) enum ServiceIdentity<'a> {
    #[serde(rename = "AWSService", rename_all = "camelCase")]
    Service { invoked_by: &'static str },
    #[serde(rename = "AssumedRole", rename_all = "camelCase")]
    ChainedFrom {
        arn: &'a str,
        account_id: &'a str,
        invoked_by: &'static str,
    },
}

/// `requestParameters` of that STS `AssumeRole`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ServiceAssumeRequest<'a> {
    pub(super) role_arn: &'a str,
    pub(super) role_session_name: &'a str,
    pub(super) tags: Vec<SessionTag<'a>>,
}

/// One session tag, as CloudTrail records it.
#[derive(Debug, Serialize)]
pub(super) struct SessionTag<'a> {
    pub(super) key: &'a str,
    pub(super) value: &'a str,
}

/// `responseElements` of that STS `AssumeRole`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ServiceAssumeResponse<'a> {
    pub(super) assumed_role_user: AssumedRoleArn<'a>,
}

#[derive(Debug, Serialize)]
pub(super) struct AssumedRoleArn<'a> {
    pub(super) arn: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_in_eks_order_and_the_audit_copy_has_no_secrets() {
        let response = AssumeRoleForPodIdentityResponse {
            subject: Subject {
                namespace: "ns",
                service_account: "sa",
            },
            audience: "pods.eks.amazonaws.com",
            pod_identity_association: PodIdentityAssociation {
                association_arn: "arn",
                association_id: "a-1",
            },
            assumed_role_user: AssumedRoleUser {
                arn: "role-arn",
                assume_role_id: "AROA:s",
            },
            credentials: Credentials {
                session_token: "TOKEN",
                secret_access_key: "SECRET",
                access_key_id: "ASIA1",
                expiration: 7,
            },
        };
        assert_eq!(
            serde_json::to_string(&response).unwrap(),
            r#"{"subject":{"namespace":"ns","serviceAccount":"sa"},"audience":"pods.eks.amazonaws.com","podIdentityAssociation":{"associationArn":"arn","associationId":"a-1"},"assumedRoleUser":{"arn":"role-arn","assumeRoleId":"AROA:s"},"credentials":{"sessionToken":"TOKEN","secretAccessKey":"SECRET","accessKeyId":"ASIA1","expiration":7}}"#
        );
        let audit = serde_json::to_string(&response.audit_copy()).unwrap();
        assert!(audit.ends_with(r#""credentials":{"accessKeyId":"ASIA1","expiration":7}}"#));
        assert!(!audit.contains("SECRET") && !audit.contains("TOKEN"));
        assert!(!format!("{:?}", response.credentials).contains("SECRET"));
    }

    #[test]
    fn service_identities_have_cloudtrail_shapes() {
        let service = ServiceIdentity::Service {
            invoked_by: "pods.eks.amazonaws.com",
        };
        assert_eq!(
            serde_json::to_string(&service).unwrap(),
            r#"{"type":"AWSService","invokedBy":"pods.eks.amazonaws.com"}"#
        );
        let chained = ServiceIdentity::ChainedFrom {
            arn: "a",
            account_id: "1",
            invoked_by: "pods.eks.amazonaws.com",
        };
        assert_eq!(
            serde_json::to_string(&chained).unwrap(),
            r#"{"type":"AssumedRole","arn":"a","accountId":"1","invokedBy":"pods.eks.amazonaws.com"}"#
        );
    }
}
