//! Who is calling: the [`Caller`] a verified signature resolves to, the [`RequestInfo`] every
//! API call carries, and the [`CredentialResolver`] interface the edge authenticates through.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use podid_aws::sigv4::SigV4Error;

/// Who signed a request.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) access_key_id: String,
    /// `arn:aws:iam::<account>:user/<name>`, `...:root`, or an assumed-role session ARN.
    pub(crate) arn: String,
    pub(crate) account_id: String,
    pub(crate) kind: CallerKind,
}

#[derive(Debug, Clone)]
pub(crate) enum CallerKind {
    /// An IAM user's long-term access key (the bootstrap administrator is user `podid-admin`).
    User { name: String, user_id: String },
    /// Temporary credentials of an assumed-role session, opened from the sealed session token.
    AssumedRole(Arc<podid_issuer::SessionClaims>),
}

impl Caller {
    /// `UserId` as GetCallerIdentity reports it: `AIDA…` for users, `AROA…:<session>` for roles.
    pub(crate) fn user_id(&self) -> String {
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
pub(crate) struct ResolvedKey {
    pub(crate) secret_access_key: podid_issuer::SecretKey,
    pub(crate) caller: Caller,
}

impl fmt::Debug for ResolvedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolvedKey")
            .field("caller", &self.caller)
            .finish_non_exhaustive()
    }
}

/// Finds the secret for an access key (and validates a session token when one is presented).
pub(crate) trait CredentialResolver: Send + Sync + 'static {
    fn resolve(
        &self,
        access_key_id: &str,
        session_token: Option<&str>,
    ) -> Result<ResolvedKey, SigV4Error>;
}

/// What handlers know about the request beyond its body.
#[derive(Debug, Clone)]
pub(crate) struct RequestInfo {
    pub(crate) request_id: String,
    /// The SigV4 service the request was signed for (`eks`, `eks-auth`, `iam`, `sts`, ...).
    pub(crate) service: String,
    pub(crate) region: String,
    pub(crate) source_ip: Option<IpAddr>,
    /// Whether the request came over TLS (`aws:SecureTransport`).
    pub(crate) secure_transport: bool,
    pub(crate) user_agent: Option<String>,
    pub(crate) caller: Caller,
}
