//! STS's output shapes (botocore `sts/2011-06-15`) as typed `Serialize` structs, members in the
//! model's order under its names (written as query-protocol XML by [`podid_aws::xml`]), and the
//! audit trail's copies derived from the same structs.

use serde::Serialize;

/// STS's XML namespace.
pub(super) const XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// `GetCallerIdentityResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct GetCallerIdentityResult<'a> {
    pub(super) user_id: &'a str,
    pub(super) account: &'a str,
    pub(super) arn: &'a str,
}

/// `Credentials`: the only place an STS secret and session token are written.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
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
#[serde(rename_all = "PascalCase")]
pub(super) struct AssumedRoleUser<'a> {
    pub(super) assumed_role_id: &'a str,
    pub(super) arn: &'a str,
}

/// `AssumeRoleResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct AssumeRoleResult<'a> {
    pub(super) credentials: Credentials<'a>,
    pub(super) assumed_role_user: AssumedRoleUser<'a>,
    /// Percent of the allowed packed size; present when a session policy or tags were passed.
    pub(super) packed_policy_size: Option<usize>,
    pub(super) source_identity: Option<&'a str>,
}

impl AssumeRoleResult<'_> {
    /// CloudTrail's `responseElements`: the credentials' id and expiry, and the session's ARN.
    pub(super) fn audit_copy(&self) -> AuditedAssumeRole<'_> {
        AuditedAssumeRole {
            credentials: AuditedCredentials {
                access_key_id: self.credentials.access_key_id,
                expiration: self.credentials.expiration,
            },
            assumed_role_user: AuditedAssumedRoleUser {
                arn: self.assumed_role_user.arn,
            },
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AuditedAssumeRole<'a> {
    credentials: AuditedCredentials<'a>,
    assumed_role_user: AuditedAssumedRoleUser<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct AuditedCredentials<'a> {
    access_key_id: &'a str,
    expiration: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct AuditedAssumedRoleUser<'a> {
    arn: &'a str,
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
        let mut w = podid_aws::xml::XmlWriter::new();
        podid_aws::xml::write_members(&mut w, &result).unwrap();
        assert_eq!(
            w.finish(),
            "<Credentials><AccessKeyId>ASIA1</AccessKeyId><SecretAccessKey>SECRET</SecretAccessKey>\
             <SessionToken>TOKEN</SessionToken><Expiration>2026-01-01T00:00:00Z</Expiration>\
             </Credentials><AssumedRoleUser><AssumedRoleId>AROA1:s</AssumedRoleId>\
             <Arn>arn:aws:sts::1:assumed-role/r/s</Arn></AssumedRoleUser>\
             <PackedPolicySize>3</PackedPolicySize>"
        );
        let audit = serde_json::to_string(&result.audit_copy()).unwrap();
        assert_eq!(
            audit,
            r#"{"credentials":{"accessKeyId":"ASIA1","expiration":"2026-01-01T00:00:00Z"},"assumedRoleUser":{"arn":"arn:aws:sts::1:assumed-role/r/s"}}"#
        );
        let debug = format!("{result:?}");
        assert!(
            !debug.contains("SECRET") && !debug.contains("TOKEN"),
            "{debug}"
        );
    }
}
