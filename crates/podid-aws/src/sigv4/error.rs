//! Why a request's SigV4 authentication failed, and the AWS error each failure answers with.

use crate::error::{AwsError, Protocol};

/// A SigV4 refusal. Messages never include secrets, signatures or session tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    #[error("request is not signed")]
    Missing,
    #[error("incomplete signature: {0}")]
    Incomplete(String),
    #[error("unknown access key")]
    UnknownAccessKey,
    #[error("signature does not match")]
    SignatureMismatch,
    #[error("signature expired: {signed} is outside the {skew_minutes} minute window around {now}")]
    SkewTooLarge {
        signed: String,
        now: String,
        skew_minutes: u64,
    },
    #[error("presigned request expired")]
    PresignExpired,
    #[error("credential scoped to service {found}, expected {expected}")]
    WrongService { expected: String, found: String },
    #[error("credential scoped to region {found}, which this endpoint does not serve")]
    WrongRegion { found: String },
    #[error("payload hash does not match the body")]
    PayloadHashMismatch,
    #[error("session token is invalid")]
    InvalidSessionToken,
    #[error("session token has expired")]
    ExpiredSessionToken,
}

const SIG_MISMATCH_MSG: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
const INVALID_TOKEN_MSG: &str = "The security token included in the request is invalid.";
const EXPIRED_TOKEN_MSG: &str = "The security token included in the request is expired";

impl SigV4Error {
    /// The error the real service family answers with. REST (EKS) and JSON (CloudTrail) services
    /// share Coral's `...Exception` codes (403 for REST, 400 for JSON); query services (IAM, STS)
    /// use the short codes.
    pub fn to_aws(&self, protocol: Protocol) -> AwsError {
        let query = protocol == Protocol::Query;
        let auth_status = if protocol == Protocol::Json11 {
            400
        } else {
            403
        };
        let pick = |rest: &'static str, q: &'static str| if query { q } else { rest };
        match self {
            SigV4Error::Missing => {
                let msg = if query {
                    "Request is missing Authentication Token"
                } else {
                    "Missing Authentication Token"
                };
                AwsError::new(
                    pick(
                        "MissingAuthenticationTokenException",
                        "MissingAuthenticationToken",
                    ),
                    auth_status,
                    msg,
                )
            }
            SigV4Error::Incomplete(detail) => AwsError::new(
                pick("IncompleteSignatureException", "IncompleteSignature"),
                auth_status,
                detail.clone(),
            ),
            SigV4Error::UnknownAccessKey | SigV4Error::InvalidSessionToken => AwsError::new(
                pick("UnrecognizedClientException", "InvalidClientTokenId"),
                auth_status,
                INVALID_TOKEN_MSG,
            ),
            SigV4Error::ExpiredSessionToken => AwsError::new(
                pick("ExpiredTokenException", "ExpiredToken"),
                if protocol == Protocol::RestJson {
                    403
                } else {
                    400
                },
                EXPIRED_TOKEN_MSG,
            ),
            SigV4Error::SignatureMismatch | SigV4Error::PayloadHashMismatch => AwsError::new(
                pick("InvalidSignatureException", "SignatureDoesNotMatch"),
                auth_status,
                SIG_MISMATCH_MSG,
            ),
            SigV4Error::SkewTooLarge {
                signed,
                now,
                skew_minutes,
            } => AwsError::new(
                pick("InvalidSignatureException", "SignatureDoesNotMatch"),
                auth_status,
                format!(
                    "Signature expired: {signed} is now earlier or later than {now} by more than {skew_minutes} min."
                ),
            ),
            SigV4Error::PresignExpired => AwsError::new(
                pick("InvalidSignatureException", "AccessDenied"),
                auth_status,
                "Request has expired",
            ),
            SigV4Error::WrongService { expected, .. } => AwsError::new(
                pick("InvalidSignatureException", "SignatureDoesNotMatch"),
                auth_status,
                format!("Credential should be scoped to correct service: '{expected}'. "),
            ),
            SigV4Error::WrongRegion { .. } => AwsError::new(
                pick("InvalidSignatureException", "SignatureDoesNotMatch"),
                auth_status,
                "Credential should be scoped to a valid region. ",
            ),
        }
    }
}
