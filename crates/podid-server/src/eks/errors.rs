//! EKS error values, and the one place EKS domain refusals become wire errors.

use axum::response::{IntoResponse, Response};
use podid_aws::{AwsError, Protocol};

/// A rest-json EKS error; the middleware adds the request id header.
#[derive(Debug)]
pub(crate) struct EksError(pub(crate) AwsError);

impl From<AwsError> for EksError {
    fn from(e: AwsError) -> Self {
        Self(e)
    }
}

impl IntoResponse for EksError {
    fn into_response(self) -> Response {
        self.0
            .into_response(Protocol::RestJson, "")
            .map(axum::body::Body::from)
            .into_response()
    }
}

pub(crate) fn invalid_parameter(message: impl Into<String>) -> AwsError {
    AwsError::new("InvalidParameterException", 400, message)
}

pub(crate) fn invalid_parameter_s(message: String) -> AwsError {
    invalid_parameter(message)
}

pub(crate) fn invalid_request(message: impl Into<String>) -> AwsError {
    AwsError::new("InvalidRequestException", 400, message)
}

pub(crate) fn cluster_not_found(name: &str) -> AwsError {
    AwsError::new(
        "ResourceNotFoundException",
        404,
        format!("No cluster found for name: {name}."),
    )
    .with_field("clusterName", name)
}

pub(crate) fn association_not_found(cluster: &str, id: &str) -> AwsError {
    AwsError::new(
        "ResourceNotFoundException",
        404,
        format!("No Pod Identity Association found for id {id} in cluster {cluster}."),
    )
    .with_field("clusterName", cluster)
}

pub(crate) fn association_in_use(cluster: &str, existing_id: &str) -> AwsError {
    AwsError::new(
        "ResourceInUseException",
        409,
        format!("Association already exists: {existing_id}"),
    )
    .with_field("clusterName", cluster)
}

pub(crate) fn limit_exceeded(cluster: &str, limit: usize) -> AwsError {
    AwsError::new(
        "ResourceLimitExceededException",
        400,
        format!("Cluster {cluster} already has the maximum of {limit} pod identity associations."),
    )
    .with_field("clusterName", cluster)
}

pub(crate) fn server_error(context: &str, error: &dyn std::fmt::Display) -> AwsError {
    tracing::error!(%error, context, "internal error");
    AwsError::internal("ServerException")
}

/// Field validation failures are InvalidParameterException with the field's message.
pub(crate) fn invalid_field(e: podid_model::InvalidField) -> AwsError {
    invalid_parameter(e.message)
}
