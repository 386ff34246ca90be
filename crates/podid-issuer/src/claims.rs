//! What a sealed session token says: the credential itself, who it speaks
//! for, and the limits (tags, session policy, expiry) that travel with it.
//!
//! The serde names are deliberately short: the sealed token rides in every
//! signed request (`X-Amz-Security-Token`), so each byte here costs bytes on
//! the wire. Unknown fields are ignored so a newer replica may add purely
//! informative fields; a field that *restricts* a session must instead bump
//! [`crate::TOKEN_VERSION`], or an older replica would silently drop it.

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Everything a local-mode temporary credential carries, sealed into its
/// session token so any replica can verify it without shared state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    /// `ASIA…`, 20 characters; must equal the access key id the request was
    /// signed with.
    #[serde(rename = "ak")]
    pub access_key_id: String,
    /// The SigV4 secret paired with `access_key_id`.
    #[serde(rename = "sk")]
    pub secret_access_key: SecretKey,
    /// Twelve-digit account the principal belongs to.
    #[serde(rename = "a")]
    pub account_id: String,
    /// Who the credential speaks for.
    #[serde(rename = "p")]
    pub principal: Principal,
    /// ARN of the role whose session assumed this one, when roles are chained
    /// (association `targetRoleArn`); `None` for a first hop.
    #[serde(rename = "si", default, skip_serializing_if = "Option::is_none")]
    pub source_identity: Option<String>,
    /// Session tags, in request order, as (key, value).
    #[serde(rename = "tg", default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<(String, String)>,
    /// Tag keys that pass on to a chained session.
    #[serde(rename = "tt", default, skip_serializing_if = "Vec::is_empty")]
    pub transitive_tag_keys: Vec<String>,
    /// Inline session policy, JSON text, already validated by the caller.
    #[serde(rename = "sp", default, skip_serializing_if = "Option::is_none")]
    pub session_policy: Option<String>,
    /// Managed session policies (`PolicyArns`), evaluated at each request with the inline one,
    /// as AWS evaluates them: a policy deleted since allows nothing.
    #[serde(rename = "spa", default, skip_serializing_if = "Vec::is_empty")]
    pub session_policy_arns: Vec<String>,
    /// `ExternalId` presented when the role was assumed.
    #[serde(rename = "x", default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Unix seconds at issue.
    #[serde(rename = "i")]
    pub issued_at: i64,
    /// Unix seconds at expiry; the token is refused once `now >= expires_at`.
    #[serde(rename = "e")]
    pub expires_at: i64,
    /// Where the credential came from, for the audit trail.
    #[serde(rename = "src", default, skip_serializing_if = "Option::is_none")]
    pub source: Option<IssueSource>,
}

/// The kind of principal a credential speaks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "k")]
#[non_exhaustive]
pub enum Principal {
    /// `arn:aws:sts::<account>:assumed-role/<role_name>/<session_name>`.
    #[serde(rename = "ar")]
    AssumedRole(AssumedRole),
}

/// An assumed-role session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssumedRole {
    /// `arn:aws:iam::<account>:role/<path><name>`.
    #[serde(rename = "r")]
    pub role_arn: String,
    /// The role's unique id (`AROA…`).
    #[serde(rename = "id")]
    pub role_id: String,
    /// The role's name, without path.
    #[serde(rename = "n")]
    pub role_name: String,
    /// `RoleSessionName`.
    #[serde(rename = "s")]
    pub session_name: String,
}

/// The EKS Pod Identity association a credential was issued for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueSource {
    /// `a-…` association id.
    #[serde(rename = "as")]
    pub association_id: String,
    /// `arn:aws:eks:<region>:<account>:cluster/<name>`.
    #[serde(rename = "c")]
    pub cluster_arn: String,
}

/// A SigV4 secret access key. `Debug` prints only the type name; the bytes
/// are wiped on drop; equality is constant-time. It serializes as a plain
/// string because it must travel inside the sealed claims; never serialize
/// claims anywhere but [`crate::seal`].
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(transparent)]
pub struct SecretKey(String);

impl SecretKey {
    /// Wraps an existing secret.
    pub fn new(secret: String) -> Self {
        Self(secret)
    }

    /// The secret text, for SigV4 signing or the one response that returns it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl PartialEq for SecretKey {
    fn eq(&self, other: &Self) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(self.0.as_bytes(), other.0.as_bytes())
            .is_ok()
    }
}

impl Eq for SecretKey {}
