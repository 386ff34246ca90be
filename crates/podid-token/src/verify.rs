//! [`Verifier`]: every check a projected service-account token must pass before podid trusts the
//! pod identity it names.
//!
//! Order: length cap → three segments → header (`alg` allow-list, no `crit`) → key by `kid` (type
//! and curve must fit `alg`) → signature → claims (`iss`, `aud`, `kubernetes.io`, `sub`) → times.
//! Times come last so that [`TokenError::Expired`] only ever describes an otherwise valid token.

use std::sync::Arc;
use std::time::Duration;

use crate::TokenError;
use crate::claims::{VerifiedToken, WireClaims, check_times, subject_matches};
use crate::jwks::KeySet;
use crate::jwt::{self, SIGNATURE_BUF};
use crate::keys::{ClusterKeys, Refresh};

/// The audience EKS Pod Identity tokens carry (EKS Auth rejects any other).
pub const DEFAULT_AUDIENCE: &str = "pods.eks.amazonaws.com";

/// Largest clock-skew leeway honoured; larger configured values are clamped. A minute covers NTP
/// drift between nodes without meaningfully extending a stolen token's life.
pub const MAX_LEEWAY: Duration = Duration::from_secs(60);

/// What a [`Verifier`] accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierConfig {
    /// The cluster's service-account issuer; `iss` must equal it byte for byte.
    pub issuer: String,
    /// The audience `aud` must contain. Default [`DEFAULT_AUDIENCE`].
    pub audience: String,
    /// Clock skew allowed on `exp`, `nbf` and `iat`; clamped to [`MAX_LEEWAY`]. Default 60 s.
    pub leeway: Duration,
}

impl VerifierConfig {
    /// Defaults for `issuer`: audience [`DEFAULT_AUDIENCE`], leeway [`MAX_LEEWAY`].
    pub fn new(issuer: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: DEFAULT_AUDIENCE.to_owned(),
            leeway: MAX_LEEWAY,
        }
    }
}

/// Verifies tokens of one cluster (one issuer, one key source). Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Verifier {
    issuer: Arc<str>,
    audience: Arc<str>,
    leeway: i64,
    keys: Arc<ClusterKeys>,
}

impl Verifier {
    /// A verifier for `config` using `keys`.
    pub fn new(config: VerifierConfig, keys: Arc<ClusterKeys>) -> Self {
        let leeway = config.leeway.min(MAX_LEEWAY).as_secs();
        Self {
            issuer: Arc::from(config.issuer),
            audience: Arc::from(config.audience),
            leeway: i64::try_from(leeway).unwrap_or(0),
            keys,
        }
    }

    /// The key source this verifier uses.
    pub fn keys(&self) -> &Arc<ClusterKeys> {
        &self.keys
    }

    /// The clamped leeway, in seconds.
    pub fn leeway_secs(&self) -> i64 {
        self.leeway
    }

    /// Verify `token` at `now_unix`. A remote key source is fetched first if it never was; keys
    /// older than their max age are refreshed in the background (this call uses the current
    /// ones); a token naming an unknown `kid` waits for one rate-limited refetch, then retries.
    pub async fn verify(&self, token: &str, now_unix: i64) -> Result<VerifiedToken, TokenError> {
        if self.keys.is_stale(now_unix) {
            if self.keys.current().is_empty() {
                // Nothing to verify with yet: this request has to wait for the fetch.
                self.keys.refresh_unless_changed(None, now_unix).await?;
            } else {
                ClusterKeys::refresh_in_background(&self.keys, now_unix);
            }
        }
        let seen = self.keys.current();
        match self.verify_with(&seen, token, now_unix) {
            Err(TokenError::UnknownKey) if self.keys.is_remote() => {}
            other => return other,
        }
        match self
            .keys
            .refresh_unless_changed(Some(&seen), now_unix)
            .await
        {
            Ok(Refresh::Done) => self.verify_with(&self.keys.current(), token, now_unix),
            Ok(Refresh::Skipped) if seen.is_empty() => Err(TokenError::KeysUnavailable),
            Ok(Refresh::Skipped) => Err(TokenError::UnknownKey),
            Err(e) if seen.is_empty() => Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "JWKS refresh for an unknown kid failed");
                Err(TokenError::UnknownKey)
            }
        }
    }

    /// Verify `token` at `now_unix` against the keys already cached; never does I/O.
    pub fn verify_cached(&self, token: &str, now_unix: i64) -> Result<VerifiedToken, TokenError> {
        self.verify_with(&self.keys.current(), token, now_unix)
    }

    fn verify_with(
        &self,
        keys: &KeySet,
        token: &str,
        now: i64,
    ) -> Result<VerifiedToken, TokenError> {
        let segments = jwt::split(token)?;
        jwt::with_header(segments.header, |header| {
            let mut sig_buf = [0u8; SIGNATURE_BUF];
            let signature = jwt::decode_signature(segments.signature, &mut sig_buf)?;
            keys.verify(
                header.kid.as_deref(),
                header.alg,
                segments.signing_input.as_bytes(),
                signature,
            )
        })?;
        let payload = jwt::decode_payload(segments.payload)?;
        let claims = WireClaims::parse(&payload)?;
        self.check_claims(&claims, now)
    }

    fn check_claims(&self, claims: &WireClaims<'_>, now: i64) -> Result<VerifiedToken, TokenError> {
        let issuer = claims
            .iss
            .as_deref()
            .ok_or(TokenError::MissingClaim("iss"))?;
        if issuer != &*self.issuer {
            return Err(TokenError::WrongIssuer);
        }
        let audiences = claims.aud.as_ref().ok_or(TokenError::MissingClaim("aud"))?;
        if !audiences.0.iter().any(|a| **a == *self.audience) {
            return Err(TokenError::WrongAudience {
                expected: Arc::clone(&self.audience),
            });
        }
        let subject = claims
            .sub
            .as_deref()
            .ok_or(TokenError::MissingClaim("sub"))?;
        let k8s = claims.kubernetes()?;
        if !subject_matches(subject, k8s.namespace, k8s.service_account) {
            return Err(TokenError::SubjectMismatch);
        }
        let expires_at = claims.exp.ok_or(TokenError::MissingClaim("exp"))?;
        check_times(expires_at, claims.nbf, claims.iat, now, self.leeway)?;
        Ok(VerifiedToken {
            namespace: Arc::from(k8s.namespace),
            service_account: Arc::from(k8s.service_account),
            service_account_uid: Arc::from(k8s.service_account_uid),
            pod: k8s.pod,
            node: k8s.node,
            issuer: Arc::clone(&self.issuer),
            audiences: audiences.0.iter().map(|a| Arc::from(&**a)).collect(),
            subject: Arc::from(subject),
            issued_at: claims.iat,
            expires_at,
            not_before: claims.nbf,
        })
    }
}

#[cfg(test)]
mod tests;
