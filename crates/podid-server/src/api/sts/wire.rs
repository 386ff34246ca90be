//! STS's output shapes (botocore `sts/2011-06-15`) as typed structs, each writing its own XML
//! members in the model's order, and the audit trail's copies derived from the same structs.

use podid_aws::xml::XmlWriter;
use serde::Serialize;

/// STS's XML namespace.
pub(super) const XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// `GetCallerIdentityResponse`.
#[derive(Debug)]
pub(super) struct GetCallerIdentityResult<'a> {
    pub(super) user_id: &'a str,
    pub(super) account: &'a str,
    pub(super) arn: &'a str,
}

impl GetCallerIdentityResult<'_> {
    pub(super) fn write(&self, w: &mut XmlWriter) {
        w.leaf("UserId", self.user_id);
        w.leaf("Account", self.account);
        w.leaf("Arn", self.arn);
    }
}

/// `Credentials`: the only place an STS secret and session token are written.
pub(super) struct Credentials<'a> {
    pub(super) access_key_id: &'a str,
    pub(super) secret_access_key: &'a str,
    pub(super) session_token: &'a str,
    /// ISO 8601, whole seconds.
    pub(super) expiration: &'a str,
}

impl std::fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

/// `AssumedRoleUser`.
#[derive(Debug, Clone, Copy, Serialize)]
pub(super) struct AssumedRoleUser<'a> {
    #[serde(skip)]
    pub(super) assumed_role_id: &'a str,
    pub(super) arn: &'a str,
}

/// `AssumeRoleResponse`.
#[derive(Debug)]
pub(super) struct AssumeRoleResult<'a> {
    pub(super) credentials: Credentials<'a>,
    pub(super) assumed_role_user: AssumedRoleUser<'a>,
    pub(super) packed_policy_size: Option<usize>,
    pub(super) source_identity: Option<&'a str>,
}

impl AssumeRoleResult<'_> {
    pub(super) fn write(&self, w: &mut XmlWriter) {
        let c = &self.credentials;
        w.open("Credentials");
        w.leaf("AccessKeyId", c.access_key_id);
        w.leaf("SecretAccessKey", c.secret_access_key);
        w.leaf("SessionToken", c.session_token);
        w.leaf("Expiration", c.expiration);
        w.close("Credentials");
        w.open("AssumedRoleUser");
        w.leaf("AssumedRoleId", self.assumed_role_user.assumed_role_id);
        w.leaf("Arn", self.assumed_role_user.arn);
        w.close("AssumedRoleUser");
        if let Some(size) = self.packed_policy_size {
            w.leaf("PackedPolicySize", &size.to_string());
        }
        w.leaf_opt("SourceIdentity", self.source_identity);
    }

    /// CloudTrail's `responseElements`: the credentials' id and expiry, and the session's ARN.
    pub(super) fn audit_copy(&self) -> AuditedAssumeRole<'_> {
        AuditedAssumeRole {
            credentials: AuditedCredentials {
                access_key_id: self.credentials.access_key_id,
                expiration: self.credentials.expiration,
            },
            assumed_role_user: self.assumed_role_user,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AuditedAssumeRole<'a> {
    credentials: AuditedCredentials<'a>,
    assumed_role_user: AssumedRoleUser<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct AuditedCredentials<'a> {
    access_key_id: &'a str,
    expiration: &'a str,
}

/// CloudTrail's `requestParameters` of an `AssumeRole`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AuditedAssumeRoleRequest<'a> {
    pub(super) role_arn: &'a str,
    pub(super) role_session_name: &'a str,
    pub(super) duration_seconds: Option<&'a str>,
}

/// CloudTrail's `requestParameters` of a `GetCallerIdentity` (it has none).
#[derive(Debug, Serialize)]
pub(super) struct NoParameters {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assume_role_writes_members_in_model_order_and_audits_no_secret() {
        let result = AssumeRoleResult {
            credentials: Credentials {
                access_key_id: "ASIA1",
                secret_access_key: "SECRET",
                session_token: "TOKEN",
                expiration: "2026-01-01T00:00:00Z",
            },
            assumed_role_user: AssumedRoleUser {
                assumed_role_id: "AROA1:s",
                arn: "arn:aws:sts::1:assumed-role/r/s",
            },
            packed_policy_size: Some(3),
            source_identity: None,
        };
        let mut w = XmlWriter::new();
        result.write(&mut w);
        let xml = w.finish();
        let order = [
            "<AccessKeyId>",
            "<SecretAccessKey>",
            "<SessionToken>",
            "<Expiration>",
            "<AssumedRoleId>",
            "<Arn>",
            "<PackedPolicySize>3<",
        ];
        let positions: Vec<usize> = order.iter().map(|t| xml.find(t).unwrap()).collect();
        assert!(positions.windows(2).all(|p| p[0] < p[1]), "{xml}");
        assert!(!xml.contains("SourceIdentity"));
        let audit = serde_json::to_string(&result.audit_copy()).unwrap();
        assert_eq!(
            audit,
            r#"{"credentials":{"accessKeyId":"ASIA1","expiration":"2026-01-01T00:00:00Z"},"assumedRoleUser":{"arn":"arn:aws:sts::1:assumed-role/r/s"}}"#
        );
    }
}
