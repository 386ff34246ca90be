//! JSON 1.1 (CloudTrail): `X-Amz-Target` requests, JSON answers, and [`Json11Error`], every
//! refusal podid's CloudTrail sends.

use axum::body::Body;
use axum::response::Response;
use http::HeaderValue;
use podid_aws::{AwsError, Protocol};
use serde::Serialize;

use crate::domain::authz::Denied;

/// The content type of every JSON 1.1 answer.
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// A JSON 1.1 success response.
pub(crate) fn respond<T: Serialize>(body: &T, request_id: &str) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut r = Response::new(Body::from(bytes));
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static(CONTENT_TYPE),
            );
            r
        }
        Err(error) => {
            tracing::error!(%error, "encoding a JSON 1.1 response failed");
            Json11Error::InternalFailure.respond(request_id)
        }
    }
}

/// Every refusal CloudTrail sends. [`Json11Error::into_aws`] is the one place one becomes a wire
/// error (codes from botocore's `cloudtrail/2013-11-01` shapes; all are 400 but the 500).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Json11Error {
    Serialization(String),
    InvalidLookupAttributes(String),
    InvalidTimeRange(&'static str),
    InvalidMaxResults,
    InvalidNextToken,
    UnknownOperation {
        target: String,
    },
    AccessDenied(Denied),
    /// A 500 whose detail is in the server log.
    InternalFailure,
}

impl From<Denied> for Json11Error {
    fn from(denied: Denied) -> Self {
        Self::AccessDenied(denied)
    }
}

impl Json11Error {
    /// The wire error. Exhaustive on purpose: a new refusal must be worded here.
    pub(crate) fn into_aws(self) -> AwsError {
        match self {
            Self::Serialization(m) => AwsError::new("SerializationException", 400, m),
            Self::InvalidLookupAttributes(m) => {
                AwsError::new("InvalidLookupAttributesException", 400, m)
            }
            Self::InvalidTimeRange(m) => AwsError::new("InvalidTimeRangeException", 400, m),
            Self::InvalidMaxResults => AwsError::new(
                "InvalidMaxResultsException",
                400,
                "MaxResults must be between 1 and 50.",
            ),
            Self::InvalidNextToken => {
                AwsError::new("InvalidNextTokenException", 400, "Invalid NextToken.")
            }
            Self::UnknownOperation { target } => AwsError::new(
                "UnknownOperationException",
                400,
                format!("podid does not implement {target}"),
            ),
            Self::AccessDenied(d) => {
                AwsError::new("AccessDeniedException", 400, super::denied_message(&d))
            }
            Self::InternalFailure => AwsError::internal("InternalFailure"),
        }
    }

    /// The JSON 1.1 error response.
    pub(crate) fn respond(self, request_id: &str) -> Response {
        super::encode(self.into_aws(), Protocol::Json11, request_id)
    }
}
