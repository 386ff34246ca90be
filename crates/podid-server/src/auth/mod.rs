//! Authentication of every API request: SigV4 in, a [`Caller`] out.
//!
//! The middleware buffers the body (under a cap), decides the request's protocol and the service
//! its credential scope must name, resolves the access key, verifies the signature, and hands the
//! handlers a [`RequestInfo`]. Every refusal leaves here in the protocol's error shape.

mod admin_key;
mod middleware;
mod resolver;

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

pub use admin_key::{AdminKey, AdminKeyError};
pub(crate) use middleware::{authenticate, respond};
use podid_aws::Protocol;
use podid_aws::sigv4::SigV4Error;
pub(crate) use resolver::ServerCredentials;

/// Who signed a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub access_key_id: String,
    /// `arn:aws:iam::<account>:user/<name>`, `...:root`, or an assumed-role session ARN.
    pub arn: String,
    pub account_id: String,
    pub kind: CallerKind,
}

#[derive(Debug, Clone)]
pub enum CallerKind {
    /// An IAM user's long-term access key (the bootstrap administrator is user `podid-admin`).
    User { name: String, user_id: String },
    /// Temporary credentials of an assumed-role session, opened from the sealed session token.
    AssumedRole(Arc<podid_issuer::SessionClaims>),
}

impl Caller {
    /// `UserId` as GetCallerIdentity reports it: `AIDA…` for users, `AROA…:<session>` for roles.
    pub fn user_id(&self) -> String {
        match &self.kind {
            CallerKind::User { user_id, .. } => user_id.clone(),
            CallerKind::AssumedRole(claims) => match &claims.principal {
                podid_issuer::Principal::AssumedRole(r) => {
                    format!("{}:{}", r.role_id, r.session_name)
                }
                _ => String::new(),
            },
        }
    }
}

/// The secret of a resolved access key and who it belongs to.
pub struct ResolvedKey {
    pub secret_access_key: String,
    pub caller: Caller,
}

impl fmt::Debug for ResolvedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolvedKey")
            .field("caller", &self.caller)
            .finish_non_exhaustive()
    }
}

/// Finds the secret for an access key (and validates a session token when one is presented).
pub trait CredentialResolver: Send + Sync + 'static {
    fn resolve(
        &self,
        access_key_id: &str,
        session_token: Option<&str>,
    ) -> Result<ResolvedKey, SigV4Error>;
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
