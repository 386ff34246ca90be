//! Registered clusters: a name and the service-account token issuer podid trusts for it.

use serde::{Deserialize, Serialize};

use crate::{InvalidField, Tags};

/// Where a cluster's token-signing public keys come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeySource {
    /// A JWKS document, stored as given.
    Inline { jwks: String },
    /// A URL serving the JWKS (e.g. the apiserver's `/openid/v1/jwks`).
    Uri {
        jwks_uri: String,
        /// PEM certificates trusted for the fetch besides the system roots (a cluster's own CA).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ca_bundle: Option<String>,
        /// An absolute path, on the server's machine, of a file holding a bearer token sent
        /// with each fetch (read again every time, so a rotating projected token works).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_file: Option<String>,
    },
}

/// Largest CA bundle stored with a cluster: a handful of certificates.
pub const MAX_CA_BUNDLE_BYTES: usize = 64 * 1024;

/// A cluster name as EKS allows it: 1-100 characters, `[0-9A-Za-z][A-Za-z0-9\-_]*`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClusterName(String);

impl ClusterName {
    pub fn parse(s: &str) -> Result<Self, InvalidField> {
        let b = s.as_bytes();
        let ok = (1..=100).contains(&b.len())
            && b.first().is_some_and(u8::is_ascii_alphanumeric)
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidField::new(
                "name",
                "cluster name must be 1-100 characters of letters, digits, '-' or '_', starting with a letter or digit",
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A registered cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    pub name: String,
    pub arn: String,
    /// A UUID, as EKS's `Cluster.id`.
    pub id: String,
    pub created_at_ms: i64,
    /// The `iss` claim of the cluster's service-account tokens.
    pub issuer: String,
    pub keys: KeySource,
    #[serde(default)]
    pub tags: Tags,
}

impl Cluster {
    pub fn new(
        region: &str,
        account_id: &str,
        name: &ClusterName,
        issuer: &str,
        keys: KeySource,
        now_ms: i64,
    ) -> Result<Self, InvalidField> {
        if issuer.is_empty() || issuer.len() > 2048 {
            return Err(InvalidField::new(
                "issuer",
                "issuer must be 1-2048 characters",
            ));
        }
        if let KeySource::Uri {
            jwks_uri,
            ca_bundle,
            token_file,
        } = &keys
        {
            validate_uri_source(jwks_uri, ca_bundle.as_deref(), token_file.as_deref())?;
        }
        Ok(Self {
            name: name.as_str().to_owned(),
            arn: format!(
                "arn:aws:eks:{region}:{account_id}:cluster/{}",
                name.as_str()
            ),
            id: uuid::Uuid::new_v4().to_string(),
            created_at_ms: now_ms,
            issuer: issuer.to_owned(),
            keys,
            tags: Tags::new(),
        })
    }
}

fn validate_uri_source(
    jwks_uri: &str,
    ca_bundle: Option<&str>,
    token_file: Option<&str>,
) -> Result<(), InvalidField> {
    if !(jwks_uri.starts_with("https://") || jwks_uri.starts_with("http://")) {
        return Err(InvalidField::new(
            "jwksUri",
            "jwksUri must be an http(s) URL",
        ));
    }
    if let Some(pem) = ca_bundle
        && (pem.len() > MAX_CA_BUNDLE_BYTES || !pem.contains("-----BEGIN CERTIFICATE-----"))
    {
        return Err(InvalidField::new(
            "jwksCaBundle",
            "jwksCaBundle must be PEM certificates, at most 64 KiB",
        ));
    }
    if let Some(path) = token_file
        && (!path.starts_with('/') || path.len() > 4096 || path.contains('\0'))
    {
        return Err(InvalidField::new(
            "jwksTokenFile",
            "jwksTokenFile must be an absolute path",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_sources_are_checked() {
        let name = ClusterName::parse("c").unwrap();
        let uri = |jwks_uri: &str, ca: Option<&str>, token: Option<&str>| KeySource::Uri {
            jwks_uri: jwks_uri.to_owned(),
            ca_bundle: ca.map(str::to_owned),
            token_file: token.map(str::to_owned),
        };
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let cluster = |keys| Cluster::new("r", "1", &name, "https://i", keys, 0);
        assert!(cluster(uri("https://k/jwks", Some(pem), Some("/var/run/t"))).is_ok());
        for (keys, field) in [
            (uri("ftp://k", None, None), "jwksUri"),
            (uri("https://k", Some("not pem"), None), "jwksCaBundle"),
            (
                uri("https://k", None, Some("relative/token")),
                "jwksTokenFile",
            ),
        ] {
            assert_eq!(cluster(keys).unwrap_err().field, field);
        }
        // Records written before these fields existed still read.
        let old: KeySource = serde_json::from_str(r#"{"uri":{"jwks_uri":"https://k"}}"#).unwrap();
        assert_eq!(old, uri("https://k", None, None));
    }

    #[test]
    fn cluster_names() {
        for ok in ["dev", "a", "My_Cluster-1", &"a".repeat(100)] {
            ClusterName::parse(ok).unwrap();
        }
        for bad in ["", "-a", "_a", "a b", "a.b", &"a".repeat(101)] {
            assert!(ClusterName::parse(bad).is_err(), "{bad}");
        }
    }
}
