//! Wire shapes: the EKS Auth `AssumeRoleForPodIdentity` request/response/error (botocore
//! `eks-auth/2023-11-26`) and the container-credentials JSON the SDKs read.

use bytes::Bytes;
use podid_aws::Arn;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Request body; `clusterName` travels in the URI.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AssumeRequest<'a> {
    pub(crate) token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) eks_node_name: Option<&'a str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AssumeResponse {
    subject: Option<Subject>,
    pod_identity_association: Option<Association>,
    assumed_role_user: Option<AssumedRoleUser>,
    credentials: Option<WireCredentials>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Subject {
    namespace: Option<String>,
    service_account: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Association {
    association_arn: Option<String>,
    association_id: Option<String>,
}

#[derive(Deserialize)]
struct AssumedRoleUser {
    arn: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireCredentials {
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
    /// rest-json `Timestamp`: epoch seconds, possibly fractional.
    expiration: Option<f64>,
}

/// The agent's answer to the pod, in the reference's field order (`pkg/credentials/model.go`);
/// empty strings are omitted like Go's `omitempty`, `Expiration` is always present.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PodCredentials<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    access_key_id: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    secret_access_key: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    token: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    account_id: &'a str,
    expiration: &'a str,
}

/// A successful EKS Auth answer, already serialised for pods.
#[derive(Clone)]
pub(crate) struct Fetched {
    /// The compact JSON pods receive.
    pub(crate) body: Bytes,
    /// Credential expiry, unix milliseconds.
    pub(crate) expiration_ms: i64,
    pub(crate) namespace: Option<String>,
    pub(crate) service_account: Option<String>,
    pub(crate) association_id: String,
    pub(crate) association_arn: String,
    pub(crate) role_arn: String,
}

impl std::fmt::Debug for Fetched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetched")
            .field("expiration_ms", &self.expiration_ms)
            .field("association_id", &self.association_id)
            .finish_non_exhaustive()
    }
}

/// Parse a 200 body. Missing credentials or role is the reference's
/// `invalid response from server: credentials or assumed role empty`.
pub(crate) fn parse_success(body: &[u8]) -> Result<Fetched, String> {
    let wire: AssumeResponse = serde_json::from_slice(body).map_err(|_| {
        "invalid response from server: not an AssumeRoleForPodIdentity response".to_owned()
    })?;
    let empty = || "invalid response from server: credentials or assumed role empty".to_owned();
    let creds = wire.credentials.ok_or_else(empty)?;
    let role_arn = wire
        .assumed_role_user
        .and_then(|u| u.arn)
        .ok_or_else(empty)?;
    let expiration = creds
        .expiration
        .filter(|e| e.is_finite())
        .ok_or_else(|| "invalid response from server: credentials have no expiration".to_owned())?;
    // The SDKs parse the epoch value at millisecond precision; so do we.
    let expiration_ms = (expiration * 1000.0).round();
    if !(0.0..=253_402_300_799_000.0).contains(&expiration_ms) {
        return Err("invalid response from server: expiration out of range".to_owned());
    }
    #[allow(clippy::cast_possible_truncation)] // range-checked just above
    let expiration_ms = expiration_ms as i64;
    let expiration_text =
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(expiration_ms) * 1_000_000)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .ok_or_else(|| "invalid response from server: expiration out of range".to_owned())?;
    let account_id = Arn::parse(&role_arn).map(|a| a.account).unwrap_or_default();
    let body = serde_json::to_vec(&PodCredentials {
        access_key_id: creds.access_key_id.as_deref().unwrap_or(""),
        secret_access_key: creds.secret_access_key.as_deref().unwrap_or(""),
        token: creds.session_token.as_deref().unwrap_or(""),
        account_id: &account_id,
        expiration: &expiration_text,
    })
    .map_err(|_| "Unable to serialize credentials".to_owned())?;
    let (subject, association) = (wire.subject, wire.pod_identity_association);
    Ok(Fetched {
        // Exact-size: `Bytes::from(Vec)` keeps the Vec's doubled capacity (2 KiB for a
        // ~1.3 KiB answer), and this buffer lives in the cache for hours, once per pod.
        body: Bytes::from(body.into_boxed_slice()),
        expiration_ms,
        namespace: subject.as_ref().and_then(|s| s.namespace.clone()),
        service_account: subject.and_then(|s| s.service_account),
        association_id: association
            .as_ref()
            .and_then(|a| a.association_id.clone())
            .unwrap_or_default(),
        association_arn: association
            .and_then(|a| a.association_arn)
            .unwrap_or_default(),
        role_arn,
    })
}

#[derive(Deserialize)]
struct WireError {
    #[serde(alias = "Message")]
    message: Option<String>,
    #[serde(rename = "__type", alias = "code")]
    kind: Option<String>,
}

/// Error code and message of a rest-json error: the code from `x-amzn-ErrorType` (or the body's
/// `__type`/`code`), stripped of any `:`-suffix and `namespace#` prefix as botocore does.
pub(crate) fn parse_error(error_type_header: Option<&str>, body: &[u8]) -> (String, String) {
    let wire: Option<WireError> = serde_json::from_slice(body).ok();
    let (body_code, message) = match wire {
        Some(w) => (w.kind, w.message.unwrap_or_default()),
        None => (None, String::new()),
    };
    let raw = error_type_header
        .map(str::to_owned)
        .or(body_code)
        .unwrap_or_default();
    let code = raw.split(':').next().unwrap_or("");
    let code = code.rsplit('#').next().unwrap_or(code);
    let code = if code.is_empty() { "Unknown" } else { code };
    (code.to_owned(), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(expiration: &str) -> String {
        format!(
            r#"{{"assumedRoleUser":{{"arn":"arn:aws:sts::123456789012:assumed-role/r/s","assumeRoleId":"AROA:s"}},
            "audience":"pods.eks.amazonaws.com",
            "credentials":{{"accessKeyId":"ASIA1","secretAccessKey":"sec","sessionToken":"tok","expiration":{expiration}}},
            "podIdentityAssociation":{{"associationArn":"arn:aws:eks:us-east-1:123456789012:podidentityassociation/c/a-1","associationId":"a-1"}},
            "subject":{{"namespace":"ns","serviceAccount":"sa"}}}}"#
        )
    }

    #[test]
    fn refuses_incomplete_or_hostile_responses() {
        assert!(parse_success(b"not json").is_err());
        assert!(parse_success(br#"{"credentials":{"expiration":1}}"#).is_err());
        assert!(parse_success(br#"{"assumedRoleUser":{"arn":"x"}}"#).is_err());
        assert!(parse_success(response("1e300").as_bytes()).is_err());
        assert!(parse_success(response("-5").as_bytes()).is_err());
        assert!(parse_success(response("null").as_bytes()).is_err());
    }

    #[test]
    fn serialises_in_reference_field_order() {
        let f = parse_success(response("1707420778").as_bytes()).unwrap();
        assert_eq!(
            std::str::from_utf8(&f.body).unwrap(),
            r#"{"AccessKeyId":"ASIA1","SecretAccessKey":"sec","Token":"tok","AccountId":"123456789012","Expiration":"2024-02-08T19:32:58Z"}"#
        );
        assert_eq!(
            (f.association_id.as_str(), f.namespace.as_deref()),
            ("a-1", Some("ns"))
        );
        let f = parse_success(response("1707420778.25").as_bytes()).unwrap();
        assert!(
            std::str::from_utf8(&f.body)
                .unwrap()
                .ends_with(r#""Expiration":"2024-02-08T19:32:58.25Z"}"#)
        );
    }

    #[test]
    fn error_codes_are_normalised() {
        let body = br#"{"message":"bad token"}"#;
        assert_eq!(
            parse_error(Some("InvalidTokenException:http://x/"), body).0,
            "InvalidTokenException"
        );
        assert_eq!(
            parse_error(
                None,
                br#"{"__type":"aws#ThrottlingException","message":"m"}"#
            ),
            ("ThrottlingException".into(), "m".into())
        );
        assert_eq!(
            parse_error(None, b"<html>"),
            ("Unknown".into(), String::new())
        );
    }
}
