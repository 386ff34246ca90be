//! Protocol codecs: how requests are read and answers and refusals are written, per AWS protocol.
//!
//! Owns: the query protocol (IAM, STS: form-encoded parameters in, XML out), rest-json (EKS,
//! EKS Auth, podid's admin API) and JSON 1.1 (CloudTrail). Each protocol has one error enum
//! holding every refusal its services send, and one exhaustive `match` turning it into the
//! service's wire error (code, HTTP status, message text); nothing else in the crate builds an
//! [`AwsError`]. Knows nothing of routing, handlers or policy: the API modules decode with these
//! types, and map their domain errors into these enums.

pub(crate) mod json11;
pub(crate) mod query;
pub(crate) mod rest_json;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use podid_aws::sigv4::SigV4Error;
use podid_aws::{AwsError, Protocol};

/// Refusals made before a request reaches an API: authentication, the body, the route.
#[derive(Debug)]
pub(crate) enum EdgeRefusal {
    SigV4(SigV4Error),
    BodyTooLarge { max: usize },
    BodyTimeout,
    UnknownOperation { method: String, path: String },
}

impl EdgeRefusal {
    fn into_aws(self, protocol: Protocol) -> AwsError {
        match self {
            Self::SigV4(e) => e.to_aws(protocol),
            Self::BodyTooLarge { max } => AwsError::new(
                "RequestEntityTooLargeException",
                413,
                format!("Request body must be at most {max} bytes"),
            ),
            Self::BodyTimeout => AwsError::new(
                "RequestTimeoutException",
                408,
                "Timed out reading the request body",
            ),
            Self::UnknownOperation { method, path } => AwsError::new(
                "UnknownOperationException",
                404,
                format!("podid does not implement {method} {path}"),
            ),
        }
    }

    /// The refusal in `protocol`'s error shape.
    pub(crate) fn respond(self, protocol: Protocol, request_id: &str) -> Response {
        encode(self.into_aws(protocol), protocol, request_id)
    }
}

/// The AWS error code and message of an error response, carried as a response extension so the
/// audit trail can record refused calls without decoding the body again.
#[derive(Debug, Clone)]
pub(crate) struct WireError {
    pub(crate) code: String,
    pub(crate) message: String,
}

impl WireError {
    /// Is this an identity-policy (or trust) refusal, in any protocol's spelling?
    pub(crate) fn is_denial(&self) -> bool {
        matches!(self.code.as_str(), "AccessDenied" | "AccessDeniedException")
    }
}

/// Encodes an AWS error for `protocol` (status, headers, body), with its [`WireError`].
fn encode(error: AwsError, protocol: Protocol, request_id: &str) -> Response {
    let wire = WireError {
        code: error.code.to_string(),
        message: error.message.clone(),
    };
    let mut response = error
        .into_response(protocol, request_id)
        .map(Body::from)
        .into_response();
    response.extensions_mut().insert(wire);
    response
}

/// AWS's text for an identity-policy refusal; the same in every protocol, only the code and
/// status differ.
fn denied_message(d: &crate::domain::authz::Denied) -> String {
    use crate::domain::authz::DenyReason;
    let why = match d.reason {
        DenyReason::NoIdentityAllow => {
            format!(
                "because no identity-based policy allows the {} action",
                d.action
            )
        }
        DenyReason::NoSessionAllow => {
            format!("because no session policy allows the {} action", d.action)
        }
        DenyReason::ExplicitIdentityDeny => {
            "with an explicit deny in an identity-based policy".into()
        }
        DenyReason::ExplicitSessionDeny => "with an explicit deny in a session policy".into(),
    };
    format!(
        "User: {} is not authorized to perform: {} on resource: {} {why}",
        d.caller_arn, d.action, d.resource
    )
}
