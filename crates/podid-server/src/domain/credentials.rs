//! Resolves access keys to secrets: IAM users' long-term keys (AKIA) from the IAM index, and
//! temporary credentials (ASIA + session token) by opening the sealed token, statelessly.

use std::sync::Arc;

use podid_aws::sigv4::SigV4Error;
use podid_issuer::{LocalIssuer, OpenError, Principal};
use time::OffsetDateTime;

use super::caller::{Caller, CallerKind, CredentialResolver, ResolvedKey};
use super::iam::Iam;

/// The server's resolver.
pub(crate) struct ServerCredentials {
    pub(crate) iam: Arc<Iam>,
    pub(crate) issuer: Arc<LocalIssuer>,
    pub(crate) account_id: String,
}

impl CredentialResolver for ServerCredentials {
    fn resolve(
        &self,
        access_key_id: &str,
        session_token: Option<&str>,
    ) -> Result<ResolvedKey, SigV4Error> {
        match session_token {
            Some(token) => self.temporary(access_key_id, token),
            None => self.long_term(access_key_id),
        }
    }
}

impl ServerCredentials {
    fn long_term(&self, access_key_id: &str) -> Result<ResolvedKey, SigV4Error> {
        let key = self
            .iam
            .access_key(access_key_id)
            .filter(|k| k.active)
            .ok_or(SigV4Error::UnknownAccessKey)?;
        let (arn, user_id) = self
            .iam
            .user_identity(&key.user_name)
            .ok_or(SigV4Error::UnknownAccessKey)?;
        Ok(ResolvedKey {
            secret_access_key: key.secret_access_key,
            caller: Caller {
                access_key_id: access_key_id.to_owned(),
                arn,
                account_id: self.account_id.clone(),
                kind: CallerKind::User {
                    name: key.user_name,
                    user_id,
                },
            },
        })
    }

    fn temporary(&self, access_key_id: &str, token: &str) -> Result<ResolvedKey, SigV4Error> {
        let claims = self
            .issuer
            .verify(access_key_id, token, OffsetDateTime::now_utc())
            .map_err(|e| match e {
                OpenError::Expired { .. } => SigV4Error::ExpiredSessionToken,
                OpenError::Malformed(_)
                | OpenError::UnknownKey(_)
                | OpenError::Tampered
                | OpenError::AccessKeyMismatch => SigV4Error::InvalidSessionToken,
            })?;
        let Principal::AssumedRole(role) = &claims.principal else {
            return Err(SigV4Error::InvalidSessionToken);
        };
        let arn = format!(
            "arn:aws:sts::{}:assumed-role/{}/{}",
            claims.account_id, role.role_name, role.session_name
        );
        Ok(ResolvedKey {
            secret_access_key: claims.secret_access_key.clone(),
            caller: Caller {
                access_key_id: access_key_id.to_owned(),
                arn,
                account_id: claims.account_id.clone(),
                kind: CallerKind::AssumedRole(Arc::new(claims)),
            },
        })
    }
}
