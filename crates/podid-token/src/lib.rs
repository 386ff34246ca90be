//! Verifies Kubernetes projected service-account tokens, and mints look-alikes for development.
//!
//! Owns: the compact-JWS checks (size caps, segments, algorithm allow-list RS256/ES256/ES384),
//! per-cluster JWKS parsing, fetching and caching ([`ClusterKeys`]), every claim check on a
//! projected token (issuer, audience, expiry, `sub` against the `kubernetes.io` claims) in
//! [`Verifier`], an unverified peek for cache keying ([`peek_unverified`]) and an RSA dev signer
//! ([`DevSigner`]) whose tokens have the shape the kube-apiserver issues.
//!
//! Does not own: serving HTTP (this crate serves nothing; it only fetches a `jwks_uri`), association
//! lookup, IAM, or wire errors. Callers map [`TokenError`] to EKS Auth errors in one place:
//! [`TokenError::is_expired`] → `ExpiredTokenException`, [`TokenError::is_keys_unavailable`] → a
//! server-side error (the cluster's keys could not be loaded), everything else →
//! `InvalidTokenException`. No error text ever contains the token or its signature.
//!
//! Signature checks call aws-lc-rs directly on keys parsed once per JWKS refresh
//! (`ParsedPublicKey`), not `jsonwebtoken::decode`: that reads the wall clock (so `now` could not
//! be injected), re-parses the RSA key on every call and parses the claims twice.
#![forbid(unsafe_code)]

mod claims;
mod egress;
mod jwks;
mod jwt;
mod keys;
mod signer;
mod verify;

#[cfg(test)]
mod testkit;

use std::path::PathBuf;
use std::sync::Arc;

pub use claims::{NodeRef, ObjectRef, UnverifiedClaims, VerifiedToken};
pub use egress::{EgressPolicy, EgressRefusal};
pub use jwks::{KeySet, MAX_JWKS_BYTES, MAX_JWKS_KEYS};
pub use jwt::{MAX_TOKEN_BYTES, peek_unverified};
pub use keys::{ClusterKeys, FetchedJwks, KeySource, KeysConfig, fetch_jwks};
pub use signer::{DevSigner, MintRequest};
pub use verify::{DEFAULT_AUDIENCE, MAX_LEEWAY, Verifier, VerifierConfig};

/// Why a token, a key set or a signing key was refused. No variant carries the token, its
/// signature or key material.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token exceeds [`MAX_TOKEN_BYTES`]; it was not parsed.
    #[error("token is longer than {max} bytes")]
    TooLong {
        /// The cap.
        max: usize,
    },
    /// Not a compact JWS: wrong segment count, bad base64url, bad JSON, oversized header.
    #[error("token is malformed: {0}")]
    Malformed(&'static str),
    /// The header `alg` is not RS256, ES256 or ES384 (`none` and every HS* land here).
    #[error("token algorithm is not accepted")]
    UnsupportedAlgorithm,
    /// The header `kid` names a key whose type or curve does not fit the header `alg`.
    #[error("token algorithm does not match its signing key")]
    KeyMismatch,
    /// No key in the cluster's set has the token's `kid` (or, without `kid`, fits its `alg`).
    #[error("token signing key is not in the cluster key set")]
    UnknownKey,
    /// The signature does not verify under the selected key(s).
    #[error("token signature is invalid")]
    BadSignature,
    /// `iss` is not exactly the cluster's issuer.
    #[error("token issuer does not match the cluster issuer")]
    WrongIssuer,
    /// `aud` does not contain the accepted audience.
    #[error("token audience does not include {expected}")]
    WrongAudience {
        /// The audience this verifier accepts.
        expected: Arc<str>,
    },
    /// `exp` has passed, beyond the leeway. The only variant meaning "expired".
    #[error("token has expired")]
    Expired,
    /// `nbf` is in the future, beyond the leeway.
    #[error("token is not valid yet")]
    NotYetValid,
    /// `iat` is in the future, beyond the leeway.
    #[error("token was issued in the future")]
    IssuedInFuture,
    /// A required claim is absent.
    #[error("token is missing claim {0}")]
    MissingClaim(&'static str),
    /// A claim is present but unusable (empty name, too many audiences).
    #[error("token claim {0} is invalid")]
    InvalidClaim(&'static str),
    /// `sub` is not `system:serviceaccount:<namespace>:<serviceaccount>` of its own claims.
    #[error("token subject does not match its kubernetes.io claims")]
    SubjectMismatch,

    /// A `jwks_uri` source has never produced a key set (and a fetch is not allowed yet).
    #[error("signing keys for this cluster are unavailable")]
    KeysUnavailable,
    /// Fetching the JWKS failed (connect, TLS, timeout, body). The message carries the whole
    /// cause chain (e.g. the certificate error under "error sending request"): operators need
    /// the real cause, and the logs print only the top-level message.
    #[error("fetching the JWKS failed: {}", Chain(.0))]
    JwksFetch(#[source] reqwest::Error),
    /// The `jwks_uri` is refused by the egress policy (scheme, credentials, or address).
    #[error("the jwks_uri is refused: {0}")]
    JwksUriRefused(EgressRefusal),
    /// The bearer-token file for a JWKS fetch cannot be used.
    #[error("the JWKS bearer token file {path} cannot be used: {reason}")]
    BearerTokenFile { path: String, reason: String },
    /// The JWKS endpoint answered with a non-success status.
    #[error("the JWKS endpoint answered HTTP {0}")]
    JwksStatus(u16),
    /// The JWKS document exceeds [`MAX_JWKS_BYTES`].
    #[error("the JWKS document is larger than {max} bytes")]
    JwksTooLarge {
        /// The cap.
        max: usize,
    },
    /// The JWKS document lists more than [`MAX_JWKS_KEYS`] keys.
    #[error("the JWKS document has more than {max} keys")]
    JwksTooManyKeys {
        /// The cap.
        max: usize,
    },
    /// The JWKS document is not a JSON `{"keys": [...]}` object.
    #[error("the JWKS document is invalid")]
    JwksInvalid(#[source] serde_json::Error),

    /// Reading or writing the dev signer's key file failed.
    #[error("dev signer key file {path}")]
    SignerKeyFile {
        /// The key file.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// The dev signer's key is unusable, or signing failed.
    #[error("dev signer key: {0}")]
    SignerKey(&'static str),
}

impl TokenError {
    /// True only for [`TokenError::Expired`] (EKS Auth `ExpiredTokenException`).
    pub fn is_expired(&self) -> bool {
        matches!(self, Self::Expired)
    }

    /// True when the cluster's keys could not be loaded: the token was not judged, so this is a
    /// server-side failure rather than `InvalidTokenException`.
    pub fn is_keys_unavailable(&self) -> bool {
        matches!(
            self,
            Self::KeysUnavailable
                | Self::JwksFetch(_)
                | Self::BearerTokenFile { .. }
                | Self::JwksStatus(_)
                | Self::JwksTooLarge { .. }
                | Self::JwksTooManyKeys { .. }
                | Self::JwksInvalid(_)
        )
    }
}

/// Displays an error's `source()` chain after its own message, `: `-separated.
struct Chain<'e>(&'e reqwest::Error);

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = std::error::Error::source(self.0);
        while let Some(e) = cause {
            write!(f, ": {e}")?;
            cause = e.source();
        }
        Ok(())
    }
}
