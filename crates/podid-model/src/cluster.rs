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
    Uri { jwks_uri: String },
}

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
        if let KeySource::Uri { jwks_uri } = &keys
            && !(jwks_uri.starts_with("https://") || jwks_uri.starts_with("http://"))
        {
            {
                return Err(InvalidField::new(
                    "jwksUri",
                    "jwksUri must be an http(s) URL",
                ));
            }
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

#[cfg(test)]
mod tests {
    use super::*;

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
