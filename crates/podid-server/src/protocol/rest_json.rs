//! rest-json (EKS, EKS Auth, podid's admin API): request bodies read member by member, and
//! [`RestJsonError`], every refusal these services send.
//!
//! serde's derived errors say "invalid type: integer, expected a string at line 1 column 9"; AWS
//! says which member is wrong. Bodies are parsed to a `Value` once (after the size cap) and members
//! are taken with these accessors.

use std::collections::BTreeMap;

use axum::response::{IntoResponse, Response};
use podid_aws::{AwsError, Protocol};
use serde_json::{Map, Value};

use crate::domain::authz::Denied;

/// A JSON object body.
#[derive(Debug)]
pub(crate) struct Body(Map<String, Value>);

/// Which refusal bad input answers with (EKS: [`RestJsonError::InvalidParameter`]; EKS Auth:
/// [`RestJsonError::InvalidRequest`] for most members).
pub(crate) type ErrorFn = fn(String) -> RestJsonError;

impl Body {
    /// Parses `bytes` as a JSON object; an empty body is an empty object (SDKs send nothing when
    /// every member is absent).
    pub(crate) fn parse(bytes: &[u8], err: ErrorFn) -> Result<Self, RestJsonError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(Map::new()));
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            Ok(_) => Err(err("The request body must be a JSON object".into())),
            Err(e) => Err(err(format!("The request body is not valid JSON: {e}"))),
        }
    }

    pub(crate) fn opt_str(&self, field: &str, err: ErrorFn) -> Result<Option<&str>, RestJsonError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(err(format!("{field} must be a string"))),
        }
    }

    pub(crate) fn req_str(&self, field: &str, err: ErrorFn) -> Result<&str, RestJsonError> {
        self.opt_str(field, err)?
            .ok_or_else(|| err(format!("{field} is required and must not be null")))
    }

    pub(crate) fn opt_bool(
        &self,
        field: &str,
        err: ErrorFn,
    ) -> Result<Option<bool>, RestJsonError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(err(format!("{field} must be a boolean"))),
        }
    }

    pub(crate) fn opt_string_map(
        &self,
        field: &str,
        err: ErrorFn,
    ) -> Result<Option<BTreeMap<String, String>>, RestJsonError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    _ => Err(err(format!("{field}.{k} must be a string"))),
                })
                .collect::<Result<_, _>>()
                .map(Some),
            Some(_) => Err(err(format!("{field} must be a map of strings"))),
        }
    }

    /// A member that may be a JSON string holding a document, or the document itself.
    pub(crate) fn opt_document(
        &self,
        field: &str,
        err: ErrorFn,
    ) -> Result<Option<String>, RestJsonError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v @ Value::Object(_)) => Ok(Some(v.to_string())),
            Some(_) => Err(err(format!("{field} must be a JSON document or a string"))),
        }
    }
}

/// Every refusal EKS, EKS Auth and the admin API send. [`RestJsonError::into_aws`] is the one
/// place one becomes a wire error: codes and statuses from botocore's `eks/2017-11-01` and
/// `eks-auth/2023-11-26` shapes (EKS Auth models `AccessDeniedException` as 400, EKS as 403).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RestJsonError {
    /// A member is missing or malformed (message names it).
    InvalidParameter(String),
    /// The request as a whole is not acceptable (message says why).
    InvalidRequest(String),
    ClusterNotFound {
        cluster: String,
    },
    AssociationNotFound {
        cluster: String,
        id: String,
    },
    AssociationInUse {
        cluster: String,
        existing_id: String,
    },
    AssociationLimit {
        cluster: String,
        limit: usize,
    },
    ClientTokenReused {
        operation: &'static str,
    },
    /// Admin API: the cluster name is taken.
    ClusterExists {
        cluster: String,
    },
    /// Admin API: a cluster with associations cannot be deregistered.
    ClusterHasAssociations {
        cluster: String,
        count: usize,
    },
    /// EKS and the admin API: the caller's identity policies refuse the action (403).
    AccessDenied(Denied),
    /// EKS: too many concurrent writers of one association.
    Contention,
    /// EKS and the admin API: a 500 whose detail is in the server log.
    ServerException,
    /// EKS Auth: the caller may not call AssumeRoleForPodIdentity on this cluster.
    PodIdentityDenied(Denied),
    /// EKS Auth: no association for the token's service account.
    NoAssociation {
        cluster: String,
        namespace: String,
        service_account: String,
    },
    /// EKS Auth: the token fails verification (reason worded by the token verifier).
    InvalidToken(String),
    ExpiredToken,
    /// EKS Auth: the token names another node than the request's `eksNodeName`.
    TokenForAnotherNode,
    /// EKS Auth: the cluster's signing keys cannot be fetched.
    KeysUnavailable {
        cluster: String,
    },
    /// EKS Auth: the association's (or target) role is missing.
    RoleCannotBeAssumed {
        role_arn: String,
        target: bool,
    },
    /// EKS Auth: the role's trust policy refuses the Pod Identity service principal.
    TrustRefused {
        role_arn: String,
        actions: String,
    },
    /// EKS Auth: the association's role may not assume its target role.
    ChainRefused {
        role_arn: String,
        action: String,
        target_arn: String,
    },
    /// EKS Auth: the target role's trust policy refuses the association's role.
    TargetTrustRefused {
        target_arn: String,
        role_arn: String,
    },
    /// EKS Auth: the association's session policy and tags do not fit a session.
    SessionTooLarge,
    /// EKS Auth: a 500 whose detail is in the server log.
    InternalServerException,
    /// EKS Auth (`sts` mode): upstream STS refused the role session; its message.
    UpstreamDenied(String),
    /// EKS Auth (`sts` mode): upstream STS, or podid's rate limit in front of it, throttles.
    Throttling(String),
    /// EKS Auth (`sts` mode): upstream STS did not answer, after retries.
    ServiceUnavailable(String),
}

impl From<Denied> for RestJsonError {
    fn from(denied: Denied) -> Self {
        Self::AccessDenied(denied)
    }
}

impl RestJsonError {
    /// The wire error. Exhaustive on purpose: a new refusal must be worded here.
    pub(crate) fn into_aws(self) -> AwsError {
        match self {
            Self::InvalidParameter(m) => AwsError::new("InvalidParameterException", 400, m),
            Self::InvalidRequest(m) => AwsError::new("InvalidRequestException", 400, m),
            Self::ClusterNotFound { cluster } => AwsError::new(
                "ResourceNotFoundException",
                404,
                format!("No cluster found for name: {cluster}."),
            )
            .with_field("clusterName", cluster),
            Self::AssociationNotFound { cluster, id } => AwsError::new(
                "ResourceNotFoundException",
                404,
                format!("No Pod Identity Association found for id {id} in cluster {cluster}."),
            )
            .with_field("clusterName", cluster),
            Self::AssociationInUse {
                cluster,
                existing_id,
            } => AwsError::new(
                "ResourceInUseException",
                409,
                format!("Association already exists: {existing_id}"),
            )
            .with_field("clusterName", cluster),
            Self::AssociationLimit { cluster, limit } => AwsError::new(
                "ResourceLimitExceededException",
                400,
                format!(
                    "Cluster {cluster} already has the maximum of {limit} pod identity associations."
                ),
            )
            .with_field("clusterName", cluster),
            Self::ClientTokenReused { operation } => AwsError::new(
                "InvalidRequestException",
                400,
                format!(
                    "The clientRequestToken was already used for a {operation} request with different parameters."
                ),
            ),
            Self::ClusterExists { cluster } => AwsError::new(
                "ResourceInUseException",
                409,
                format!("Cluster already exists with name: {cluster}"),
            )
            .with_field("clusterName", cluster),
            Self::ClusterHasAssociations { cluster, count } => AwsError::new(
                "ResourceInUseException",
                409,
                format!(
                    "Cluster {cluster} still has {count} pod identity association(s); delete them before deleting the cluster."
                ),
            )
            .with_field("clusterName", cluster),
            Self::AccessDenied(d) => {
                AwsError::new("AccessDeniedException", 403, super::denied_message(&d))
            }
            Self::Contention => AwsError::new(
                "ServerException",
                500,
                "Too many concurrent updates of this association; try again.",
            ),
            Self::ServerException => AwsError::internal("ServerException"),
            Self::PodIdentityDenied(d) => AwsError::new(
                "AccessDeniedException",
                400,
                format!(
                    "User: {} is not authorized to perform: {} on resource: {}",
                    d.caller_arn, d.action, d.resource
                ),
            ),
            Self::NoAssociation {
                cluster,
                namespace,
                service_account,
            } => AwsError::new(
                "ResourceNotFoundException",
                404,
                format!(
                    "No Pod Identity Association found for service account {namespace}/{service_account} in cluster {cluster}."
                ),
            ),
            Self::InvalidToken(reason) => AwsError::new(
                "InvalidTokenException",
                400,
                format!("The service account token is invalid: {reason}."),
            ),
            Self::ExpiredToken => AwsError::new(
                "ExpiredTokenException",
                400,
                "The service account token has expired.",
            ),
            Self::TokenForAnotherNode => AwsError::new(
                "InvalidTokenException",
                400,
                "The token was issued for a pod on another node than eksNodeName.",
            ),
            Self::KeysUnavailable { cluster } => AwsError::new(
                "ServiceUnavailableException",
                503,
                format!("The signing keys of cluster {cluster} are unavailable; try again."),
            ),
            Self::RoleCannotBeAssumed { role_arn, target } => AwsError::new(
                "AccessDeniedException",
                400,
                format!(
                    "The {} {role_arn} does not exist or cannot be assumed.",
                    if target { "target role" } else { "role" }
                ),
            ),
            Self::TrustRefused { role_arn, actions } => AwsError::new(
                "AccessDeniedException",
                400,
                format!(
                    "The trust policy of role {role_arn} does not allow pods.eks.amazonaws.com to perform {actions} with this request's context."
                ),
            ),
            Self::ChainRefused {
                role_arn,
                action,
                target_arn,
            } => AwsError::new(
                "AccessDeniedException",
                400,
                format!(
                    "Role {role_arn} is not allowed to perform {action} on the target role {target_arn}."
                ),
            ),
            Self::TargetTrustRefused {
                target_arn,
                role_arn,
            } => AwsError::new(
                "AccessDeniedException",
                400,
                format!(
                    "The trust policy of the target role {target_arn} does not allow role {role_arn} with this association's external id."
                ),
            ),
            Self::SessionTooLarge => AwsError::new(
                "InvalidRequestException",
                400,
                "The association's session policy and tags are too large.",
            ),
            Self::InternalServerException => AwsError::internal("InternalServerException"),
            Self::UpstreamDenied(m) => AwsError::new("AccessDeniedException", 400, m),
            Self::Throttling(m) => AwsError::new("ThrottlingException", 429, m),
            Self::ServiceUnavailable(m) => AwsError::new("ServiceUnavailableException", 503, m),
        }
    }
}

impl IntoResponse for RestJsonError {
    /// The error response; the edge adds the request id header.
    fn into_response(self) -> Response {
        super::encode(self.into_aws(), Protocol::RestJson, "")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(m: String) -> RestJsonError {
        RestJsonError::InvalidParameter(m)
    }

    fn message(e: RestJsonError) -> String {
        e.into_aws().message
    }

    #[test]
    fn names_the_field() {
        let b = Body::parse(br#"{"namespace": 5, "tags": {"a": 1}, "x": null}"#, e).unwrap();
        assert_eq!(
            message(b.opt_str("namespace", e).unwrap_err()),
            "namespace must be a string"
        );
        assert_eq!(
            message(b.opt_string_map("tags", e).unwrap_err()),
            "tags.a must be a string"
        );
        assert!(message(b.req_str("x", e).unwrap_err()).starts_with("x is required"));
        assert!(Body::parse(b"[1]", e).is_err());
        assert!(Body::parse(b"{", e).is_err());
        assert!(
            Body::parse(b"", e)
                .unwrap()
                .opt_str("a", e)
                .unwrap()
                .is_none()
        );
    }
}
