//! [`LocalIssuer`]: mints credentials and verifies presented ones against a
//! shared [`KeyRing`].
//!
//! The ring sits behind `RwLock<Arc<KeyRing>>`: readers hold the lock only to
//! clone the `Arc`; a rotation builds the next ring outside the lock and
//! swaps it in, so seals and opens never wait on key generation.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use time::OffsetDateTime;

use crate::{
    AssumedRole, Error, IssueSource, KeyRing, OpenError, Principal, Rotation, SecretKey,
    SessionClaims, SessionToken, generate_access_key_id, generate_secret_access_key, open, seal,
};

/// What to mint a role session for. The caller has already authorized it
/// (trust policy, `iam:PassRole`, tag and policy limits, role max duration).
#[derive(Debug, Clone)]
pub struct IssueRequest {
    /// Account that owns the role.
    pub account_id: String,
    /// Role being assumed.
    pub role_arn: String,
    /// Role's unique id (`AROA…`).
    pub role_id: String,
    /// Role's name, without path.
    pub role_name: String,
    /// `RoleSessionName`.
    pub session_name: String,
    /// Session tags, (key, value), in request order.
    pub tags: Vec<(String, String)>,
    /// Tag keys that pass on when this session assumes another role.
    pub transitive_tag_keys: Vec<String>,
    /// Inline session policy (JSON text), already validated.
    pub session_policy: Option<String>,
    /// Managed session policy ARNs (`PolicyArns`).
    pub session_policy_arns: Vec<String>,
    /// `ExternalId` presented, if any.
    pub external_id: Option<String>,
    /// ARN of the role session this one was chained from, if any.
    pub source_identity: Option<String>,
    /// Association the credential is for, recorded for audit.
    pub source: Option<IssueSource>,
    /// Credential lifetime; whole seconds, 1 s up to the ring's maximum.
    pub duration: Duration,
    /// Issue time.
    pub now: OffsetDateTime,
}

/// A freshly minted credential. `Debug` redacts the secret and the token.
#[derive(Debug, Clone)]
pub struct IssuedCredentials {
    /// `ASIA…`.
    pub access_key_id: String,
    /// The SigV4 secret.
    pub secret_access_key: SecretKey,
    /// The sealed claims, to be presented as `X-Amz-Security-Token`.
    pub session_token: SessionToken,
    /// When the credential stops working (whole seconds).
    pub expiration: OffsetDateTime,
    /// What the token carries, for the audit trail and the response.
    pub claims: SessionClaims,
}

/// Issues and verifies local-mode temporary credentials. Share it behind an
/// `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct LocalIssuer {
    ring: RwLock<Arc<KeyRing>>,
    /// Serializes writers (rotate, replace) so none overwrites another's ring.
    writer: Mutex<()>,
}

impl LocalIssuer {
    /// An issuer over `ring` (freshly generated, or loaded from the store).
    pub fn new(ring: KeyRing) -> Self {
        Self {
            ring: RwLock::new(Arc::new(ring)),
            writer: Mutex::new(()),
        }
    }

    /// Mints a credential for `request` and seals it.
    pub fn issue(&self, request: IssueRequest) -> Result<IssuedCredentials, Error> {
        let ring = self.ring();
        let max_secs = ring.max_lifetime_secs();
        let requested_secs = i64::try_from(request.duration.as_secs()).unwrap_or(i64::MAX);
        if !(1..=max_secs).contains(&requested_secs) {
            return Err(Error::Lifetime {
                requested_secs,
                max_secs,
            });
        }
        let issued_at = request.now.unix_timestamp();
        let expires_at = issued_at.saturating_add(requested_secs);
        let expiration =
            OffsetDateTime::from_unix_timestamp(expires_at).map_err(|_| Error::Lifetime {
                requested_secs,
                max_secs,
            })?;
        let access_key_id = generate_access_key_id()?;
        let secret_access_key = generate_secret_access_key()?;
        let claims = SessionClaims {
            access_key_id: access_key_id.clone(),
            secret_access_key: secret_access_key.clone(),
            account_id: request.account_id,
            principal: Principal::AssumedRole(AssumedRole {
                role_arn: request.role_arn,
                role_id: request.role_id,
                role_name: request.role_name,
                session_name: request.session_name,
            }),
            source_identity: request.source_identity,
            tags: request.tags,
            transitive_tag_keys: request.transitive_tag_keys,
            session_policy: request.session_policy,
            session_policy_arns: request.session_policy_arns,
            external_id: request.external_id,
            issued_at,
            expires_at,
            source: request.source,
        };
        let session_token = seal(&ring, &claims)?;
        Ok(IssuedCredentials {
            access_key_id,
            secret_access_key,
            session_token,
            expiration,
            claims,
        })
    }

    /// Opens `session_token` at `now` and checks it was issued together with
    /// `access_key_id` (the one from the request's SigV4 credential scope).
    pub fn verify(
        &self,
        access_key_id: &str,
        session_token: &str,
        now: OffsetDateTime,
    ) -> Result<SessionClaims, OpenError> {
        let claims = open(&self.ring(), session_token, now)?;
        if claims.access_key_id != access_key_id {
            return Err(OpenError::AccessKeyMismatch);
        }
        Ok(claims)
    }

    /// Rotates the ring (see [`KeyRing::rotate`]) without blocking readers.
    /// When the result [`Rotation::changed`], persist [`LocalIssuer::ring`].
    pub fn rotate(&self, now: OffsetDateTime) -> Result<Rotation, Error> {
        let _writer = self.writer.lock();
        let mut next = KeyRing::clone(&self.ring());
        let rotation = next.rotate(now)?;
        if rotation.changed() {
            *self.ring.write() = Arc::new(next);
        }
        Ok(rotation)
    }

    /// The current ring, e.g. to persist it.
    pub fn ring(&self) -> Arc<KeyRing> {
        Arc::clone(&self.ring.read())
    }

    /// Installs a ring loaded from the store (another replica rotated).
    pub fn replace_ring(&self, ring: KeyRing) {
        let _writer = self.writer.lock();
        *self.ring.write() = Arc::new(ring);
    }
}

#[cfg(test)]
#[path = "issuer_tests.rs"]
mod tests;
