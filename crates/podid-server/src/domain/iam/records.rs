//! The stored IAM records (JSON under `iam/`), their store keys, and the shapes of IAM's
//! generated values: unique ids, access keys, timestamps, and URL-encoded policy documents.

use std::collections::BTreeMap;
use std::fmt;

use podid_issuer::SecretKey;
use serde::{Deserialize, Serialize};

pub(crate) const PREFIX: &str = "iam/";
pub(crate) const ROLE_PREFIX: &str = "iam/role/";
pub(crate) const USER_PREFIX: &str = "iam/user/";
pub(crate) const POLICY_PREFIX: &str = "iam/policy/";
pub(crate) const KEY_PREFIX: &str = "iam/key/";

pub(crate) fn role_key(name: &str) -> String {
    format!("{ROLE_PREFIX}{name}")
}
pub(crate) fn user_key(name: &str) -> String {
    format!("{USER_PREFIX}{name}")
}
pub(crate) fn policy_key(name: &str) -> String {
    format!("{POLICY_PREFIX}{name}")
}
pub(crate) fn access_key_key(id: &str) -> String {
    format!("{KEY_PREFIX}{id}")
}

/// `Key`/`Value` pairs, in the order the caller gave them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Tag {
    pub(crate) key: String,
    pub(crate) value: String,
}

/// A role: `iam/role/<name>`. Inline policies and attachments live inside the record so that
/// DeleteRole's "no policies left" check and the delete are one compare-and-swap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RoleRecord {
    pub(crate) name: String,
    pub(crate) path: String,
    pub(crate) role_id: String,
    pub(crate) arn: String,
    pub(crate) create_date: String,
    pub(crate) assume_role_policy: String,
    #[serde(default)]
    pub(crate) description: Option<String>,
    pub(crate) max_session_duration: u32,
    #[serde(default)]
    pub(crate) tags: Vec<Tag>,
    /// Policy name → document.
    #[serde(default)]
    pub(crate) inline_policies: BTreeMap<String, String>,
    /// Attached managed policy ARNs, in attachment order.
    #[serde(default)]
    pub(crate) attached: Vec<String>,
}

/// A user: `iam/user/<name>`. Its access key ids are listed here so that DeleteUser's conflict
/// check and CreateAccessKey's per-user quota hold under concurrent writers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct UserRecord {
    pub(crate) name: String,
    pub(crate) path: String,
    pub(crate) user_id: String,
    pub(crate) arn: String,
    pub(crate) create_date: String,
    #[serde(default)]
    pub(crate) tags: Vec<Tag>,
    #[serde(default)]
    pub(crate) inline_policies: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) attached: Vec<String>,
    #[serde(default)]
    pub(crate) access_keys: Vec<String>,
}

/// A customer managed policy: `iam/policy/<name>`. Only version `v1` exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PolicyRecord {
    pub(crate) name: String,
    pub(crate) path: String,
    pub(crate) policy_id: String,
    pub(crate) arn: String,
    #[serde(default)]
    pub(crate) description: Option<String>,
    pub(crate) create_date: String,
    pub(crate) document: String,
    #[serde(default)]
    pub(crate) tags: Vec<Tag>,
}

/// An access key: `iam/key/<access key id>`. `Debug` never prints the secret.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct KeyRecord {
    pub(crate) access_key_id: String,
    pub(crate) user_name: String,
    /// Stored as the plain string it always was (`SecretKey` serializes transparently).
    pub(crate) secret_access_key: SecretKey,
    /// `Active` or `Inactive` (botocore `statusType`).
    pub(crate) status: String,
    pub(crate) create_date: String,
}

impl fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRecord")
            .field("access_key_id", &self.access_key_id)
            .field("user_name", &self.user_name)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// A fresh IAM unique id: `prefix` (`AROA`, `AIDA`, `ANPA`) + 17 random base32 characters,
/// from the issuer's CSPRNG-backed generator (the one generator for every id and key podid mints).
pub(crate) fn unique_id(prefix: &str) -> Result<String, podid_issuer::Error> {
    podid_issuer::generate_unique_id(prefix)
}

/// `AKIA` + 16 of `[A-Z2-7]`, and a 40-character secret (zeroized on drop), as IAM issues them.
pub(crate) fn new_access_key() -> Result<(String, SecretKey), podid_issuer::Error> {
    Ok((
        podid_issuer::generate_long_term_access_key_id()?,
        podid_issuer::generate_secret_access_key()?,
    ))
}

/// Now as IAM's `dateType` in XML: `2024-01-01T00:00:00Z`.
pub(crate) fn now_iso() -> String {
    iso(time::OffsetDateTime::now_utc())
}

pub(crate) fn iso(t: time::OffsetDateTime) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .unwrap_or_default()
}

/// Percent-encodes a policy document as IAM returns it: every byte outside `A-Z a-z 0-9 - _ . ~`
/// becomes `%XX`. botocore decodes with `urllib.parse.unquote`, which does not turn `+` into a
/// space, so spaces must be `%20`.
pub(crate) fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(
                HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0'),
            ));
            out.push(char::from(
                HEX.get(usize::from(b & 15)).copied().unwrap_or(b'0'),
            ));
        }
    }
    out
}

const HEX: &[u8] = b"0123456789ABCDEF";

/// `arn:aws:iam::<account>:<kind><path><name>` (path begins and ends with `/`).
pub(crate) fn arn(account: &str, kind: &str, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:{kind}{path}{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_iam_shapes() {
        let id = unique_id("AROA").unwrap();
        assert_eq!(id.len(), 21);
        assert!(id.starts_with("AROA"));
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        );
        let (akid, secret) = new_access_key().unwrap();
        assert_eq!(akid.len(), 20);
        assert!(akid.starts_with("AKIA"));
        assert_eq!(secret.expose().len(), 40);
        assert_ne!(new_access_key().unwrap().0, akid);
    }

    #[test]
    fn url_encoding_round_trips_through_unquote_rules() {
        let doc = r#"{"Version": "2012-10-17", "A": "x+y/é"}"#;
        let enc = url_encode(doc);
        assert!(!enc.contains(' ') && !enc.contains('+') && !enc.contains('"'));
        assert!(enc.starts_with("%7B%22Version%22%3A%20%222012-10-17%22"));
        assert!(enc.contains("x%2By%2F%C3%A9"));
        let decoded: String = form_urlencoded::parse(format!("d={enc}").as_bytes())
            .map(|(_, v)| v.into_owned())
            .collect();
        assert_eq!(decoded, doc);
    }

    #[test]
    fn timestamps_are_second_precision_utc() {
        let t = time::macros::datetime!(2024-01-01 00:00:00.123 +02:00);
        assert_eq!(iso(t), "2023-12-31T22:00:00Z");
    }

    #[test]
    fn key_debug_hides_secret() {
        let k = KeyRecord {
            access_key_id: "AKIAEXAMPLE".into(),
            user_name: "u".into(),
            secret_access_key: SecretKey::new("very-secret".into()),
            status: "Active".into(),
            create_date: now_iso(),
        };
        assert!(!format!("{k:?}").contains("very-secret"));
    }
}
