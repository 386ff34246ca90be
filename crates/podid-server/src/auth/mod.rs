//! Authentication of every API request: SigV4 in, a [`Caller`] out.
//!
//! The middleware buffers the body (under a cap), decides the request's protocol and the service
//! its credential scope must name, resolves the access key, verifies the signature, and hands the
//! handlers a [`RequestInfo`]. Every refusal leaves here in the protocol's error shape.

mod admin_key;
mod middleware;

use std::fmt;
use std::net::IpAddr;

pub use admin_key::{AdminKey, AdminKeyError};
pub(crate) use middleware::{authenticate, respond};
use podid_aws::Protocol;
use podid_aws::sigv4::SigV4Error;

/// Who signed a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub access_key_id: String,
    /// `arn:aws:iam::<account>:user/<name>`, `...:root`, or an assumed-role session ARN.
    pub arn: String,
    pub account_id: String,
    pub kind: CallerKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerKind {
    /// The bootstrap administrator key: allowed everything.
    Administrator,
}

/// The secret of a resolved access key and who it belongs to.
pub struct ResolvedKey {
    pub secret_access_key: String,
    pub caller: Caller,
}

impl fmt::Debug for ResolvedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolvedKey").field("caller", &self.caller).finish_non_exhaustive()
    }
}

/// Finds the secret for an access key (and validates a session token when one is presented).
pub trait CredentialResolver: Send + Sync + 'static {
    fn resolve(&self, access_key_id: &str, session_token: Option<&str>) -> Result<ResolvedKey, SigV4Error>;
}

/// What handlers know about the request beyond its body.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    pub request_id: String,
    pub protocol: Protocol,
    /// The SigV4 service the request was signed for (`eks`, `eks-auth`, `iam`, `sts`, ...).
    pub service: String,
    pub region: String,
    pub source_ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub caller: Caller,
}

/// Resolves only the administrator key.
#[derive(Debug)]
pub struct AdminOnly {
    key: AdminKey,
    account_id: String,
}

impl AdminOnly {
    pub fn new(key: AdminKey, account_id: &str) -> Self {
        Self { key, account_id: account_id.to_owned() }
    }
}

impl CredentialResolver for AdminOnly {
    fn resolve(&self, access_key_id: &str, session_token: Option<&str>) -> Result<ResolvedKey, SigV4Error> {
        if session_token.is_some() || access_key_id != self.key.access_key_id {
            return Err(SigV4Error::UnknownAccessKey);
        }
        Ok(ResolvedKey {
            secret_access_key: self.key.secret_access_key().to_owned(),
            caller: Caller {
                access_key_id: access_key_id.to_owned(),
                arn: format!("arn:aws:iam::{}:user/{}", self.account_id, admin_key::ADMIN_USER_NAME),
                account_id: self.account_id.clone(),
                kind: CallerKind::Administrator,
            },
        })
    }
}
