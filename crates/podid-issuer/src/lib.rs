//! Credential issuers: local mode's sealed temporary credentials, and the `sts` mode's
//! upstream `AssumeRole` ([`sts`]).
//!
//! Owns: the access key id and secret generator, the [`SessionClaims`] a
//! credential carries, the AES-256-GCM [`KeyRing`] (generation, rotation,
//! persistence as bytes) and the self-contained session token format
//! ([`seal`] / [`open`]), plus [`LocalIssuer`], which ties them together
//! behind a lock that rotation never holds while verifiers wait.
//!
//! [`sts`] owns the upstream STS client (aws-sdk-sts over aws-config's default chain) and the
//! quota protections in front of it: single flight, reuse, the per-account token bucket.
//!
//! Does not own: serving HTTP, IAM policy evaluation, role lookup, storage (the ring
//! goes in and out as bytes; the server persists it) or wire errors: the
//! server maps [`OpenError`] to STS's `InvalidClientTokenId` /
//! `ExpiredToken` and [`Error`] to its own responses.
#![forbid(unsafe_code)]

mod claims;
mod credentials;
mod issuer;
mod keyring;
mod persist;
pub mod sts;
#[cfg(test)]
mod test_support;
mod token;

pub use claims::{AssumedRole, IssueSource, Principal, SecretKey, SessionClaims};
pub use credentials::{
    ACCESS_KEY_ID_LEN, SECRET_ACCESS_KEY_LEN, generate_access_key_id,
    generate_long_term_access_key_id, generate_secret_access_key, generate_unique_id,
};
pub use issuer::{IssueRequest, IssuedCredentials, LocalIssuer};
pub use keyring::{KeyId, KeyRing, RingConfig, Rotation};
pub use persist::PersistedRing;
pub use token::{MAX_TOKEN_LEN, SessionToken, TOKEN_VERSION, open, seal};

/// Why minting, rotating or loading failed. Never carries key bytes, secrets
/// or tokens.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The operating system's random source failed.
    #[error("random number generator failed")]
    Rng,
    /// AES-GCM refused a key or a seal operation (should not happen with a
    /// 32-byte key; surfaced rather than hidden).
    #[error("aead operation failed")]
    Crypto,
    /// The ring holds no key that may seal (every key is retired).
    #[error("key ring has no active sealing key")]
    NoActiveKey,
    /// The requested lifetime is zero, or longer than the ring's maximum
    /// credential lifetime (which bounds how long retired keys are kept).
    #[error("credential lifetime of {requested_secs}s is outside 1..={max_secs}s")]
    Lifetime { requested_secs: i64, max_secs: i64 },
    /// The claims would seal into a token longer than [`MAX_TOKEN_LEN`]:
    /// too many or too long tags, or too long a session policy. STS answers
    /// the same situation with `PackedPolicyTooLarge`.
    #[error("sealed session token would be {len} bytes, over the {max} byte limit")]
    TokenTooLarge { len: usize, max: usize },
    /// The claims could not be encoded.
    #[error("session claims could not be encoded")]
    Encode(#[source] serde_json::Error),
    /// The ring configuration is unusable.
    #[error("invalid key ring configuration: {0}")]
    Config(&'static str),
    /// Persisted ring bytes are too long, not our JSON, or inconsistent.
    #[error("persisted key ring is invalid: {0}")]
    Persisted(&'static str),
    /// Persisted ring bytes are not valid JSON of the expected shape.
    #[error("persisted key ring could not be decoded")]
    PersistedJson(#[source] serde_json::Error),
}

/// Why a presented session token was refused. Kept apart from [`Error`] so
/// the server's mapping to STS errors is an exhaustive `match` over refusals
/// only. No variant carries the token or any secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Not a token of ours: too long, bad base64, too short, unknown version,
    /// or (after successful decryption) undecodable claims.
    #[error("session token is malformed: {0}")]
    Malformed(MalformedReason),
    /// The key id is not in the ring (never ours, or rotated out after every
    /// credential it sealed had expired).
    #[error("session token was sealed with an unknown key {0}")]
    UnknownKey(KeyId),
    /// AEAD authentication failed: the token was altered, or forged.
    #[error("session token failed authentication")]
    Tampered,
    /// The token is authentic but `expires_at <= now`.
    #[error("session token expired at {expired_at}")]
    Expired { expired_at: i64 },
    /// The token is authentic but the request's access key id is not the one
    /// sealed into it (a token lifted from another credential).
    #[error("access key id does not match the session token")]
    AccessKeyMismatch,
}

/// Detail for [`OpenError::Malformed`], for logs; all map to one wire error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MalformedReason {
    /// Longer than [`MAX_TOKEN_LEN`] before decoding.
    TooLong,
    /// Not canonical standard base64 with padding.
    Base64,
    /// Shorter than header plus tag.
    TooShort,
    /// First byte is not [`TOKEN_VERSION`].
    UnknownVersion,
    /// Decrypted, but the plaintext is not our claims encoding.
    Claims,
}

impl std::fmt::Display for MalformedReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::TooLong => "too long",
            Self::Base64 => "not base64",
            Self::TooShort => "too short",
            Self::UnknownVersion => "unknown version",
            Self::Claims => "undecodable claims",
        })
    }
}
