//! Pod identity associations: (cluster, namespace, service account) → IAM role.

use std::collections::BTreeMap;

use podid_aws::arn::RoleArn;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::InvalidField;
use crate::names::{truncate, validate_namespace, validate_service_account};

/// Tag map as EKS stores it (sorted for stable output).
pub type Tags = BTreeMap<String, String>;

/// EKS `TagMap`: at most 50 tags; keys 1-128 characters, values at most 256; the `aws:` prefix is
/// reserved for AWS.
pub const MAX_TAGS: usize = 50;
const MAX_TAG_KEY: usize = 128;
const MAX_TAG_VALUE: usize = 256;
/// Session policies are limited to 2,048 characters by STS (AssumeRole `Policy`), so EKS cannot
/// accept a longer association policy.
pub const MAX_POLICY_LEN: usize = 2048;

/// `a-` followed by 17 lowercase letters and digits, as EKS mints them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AssociationId(String);

impl AssociationId {
    const ALPHABET: &'static [u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

    pub fn generate() -> Self {
        let mut rng = rand::rng();
        let mut s = String::with_capacity(19);
        s.push_str("a-");
        for _ in 0..17 {
            let i = rng.random_range(0..Self::ALPHABET.len());
            s.push(char::from(Self::ALPHABET.get(i).copied().unwrap_or(b'a')));
        }
        Self(s)
    }

    /// Accepts only well-formed ids; anything else cannot name an association.
    pub fn parse(s: &str) -> Option<Self> {
        let rest = s.strip_prefix("a-")?;
        (rest.len() == 17 && rest.bytes().all(|b| Self::ALPHABET.contains(&b)))
            .then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The mutable, validated part of an association: what a create or an update asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociationSpec {
    pub role_arn: RoleArn,
    pub target_role_arn: Option<RoleArn>,
    pub disable_session_tags: bool,
    pub policy: Option<String>,
}

impl AssociationSpec {
    /// Checks the cross-field rules: the role must be in the cluster's account, and a session
    /// policy requires session tags to be disabled.
    pub fn validate(
        role_arn: &str,
        target_role_arn: Option<&str>,
        disable_session_tags: bool,
        policy: Option<&str>,
        account_id: &str,
    ) -> Result<Self, InvalidField> {
        let role_arn = parse_role(role_arn, "roleArn")?;
        if role_arn.account() != account_id {
            return Err(InvalidField::new(
                "roleArn",
                format!("roleArn must be in the cluster's account {account_id}"),
            ));
        }
        let target_role_arn = target_role_arn
            .map(|t| parse_role(t, "targetRoleArn"))
            .transpose()?;
        if let Some(p) = policy {
            if !disable_session_tags {
                return Err(InvalidField::new(
                    "policy",
                    "policy can only be set when disableSessionTags is true",
                ));
            }
            validate_policy_text(p)?;
        }
        Ok(Self {
            role_arn,
            target_role_arn,
            disable_session_tags,
            policy: policy.map(str::to_owned),
        })
    }
}

fn parse_role(s: &str, field: &'static str) -> Result<RoleArn, InvalidField> {
    RoleArn::parse(s).map_err(|_| {
        InvalidField::new(
            field,
            format!(
                "{field} '{}' is not a valid IAM role ARN (arn:aws:iam::<account>:role/<name>)",
                truncate(s)
            ),
        )
    })
}

fn validate_policy_text(p: &str) -> Result<(), InvalidField> {
    if p.is_empty() || p.chars().count() > MAX_POLICY_LEN {
        return Err(InvalidField::new(
            "policy",
            format!("policy must be between 1 and {MAX_POLICY_LEN} characters"),
        ));
    }
    match serde_json::from_str::<serde_json::Value>(p) {
        Ok(serde_json::Value::Object(_)) => Ok(()),
        _ => Err(InvalidField::new(
            "policy",
            "policy must be a JSON policy document",
        )),
    }
}

/// Checks an EKS `TagMap`.
pub fn validate_tags(tags: &Tags) -> Result<(), InvalidField> {
    if tags.len() > MAX_TAGS {
        return Err(InvalidField::new(
            "tags",
            format!("tags can contain at most {MAX_TAGS} entries"),
        ));
    }
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > MAX_TAG_KEY {
            return Err(InvalidField::new(
                "tags",
                format!("tags keys must be between 1 and {MAX_TAG_KEY} characters"),
            ));
        }
        if v.chars().count() > MAX_TAG_VALUE {
            return Err(InvalidField::new(
                "tags",
                format!("tags values must be at most {MAX_TAG_VALUE} characters"),
            ));
        }
        if k.to_ascii_lowercase().starts_with("aws:") {
            return Err(InvalidField::new(
                "tags",
                "tags keys starting with 'aws:' are reserved",
            ));
        }
    }
    Ok(())
}

/// Where records live: the region and account ARNs are minted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope<'a> {
    pub region: &'a str,
    pub account_id: &'a str,
}

/// A stored association, in the members of botocore's `PodIdentityAssociation` shape plus the
/// idempotency bookkeeping that never leaves the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Association {
    pub cluster_name: String,
    pub namespace: String,
    pub service_account: String,
    pub role_arn: String,
    pub association_id: AssociationId,
    pub association_arn: String,
    #[serde(default)]
    pub tags: Tags,
    pub created_at_ms: i64,
    pub modified_at_ms: i64,
    #[serde(default)]
    pub owner_arn: Option<String>,
    #[serde(default)]
    pub disable_session_tags: bool,
    #[serde(default)]
    pub target_role_arn: Option<String>,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub policy: Option<String>,
    /// `clientRequestToken` of the create, and a fingerprint of its parameters.
    #[serde(default)]
    pub create_token: Option<(String, String)>,
    /// `clientRequestToken` of the last update, and a fingerprint of its parameters.
    #[serde(default)]
    pub update_token: Option<(String, String)>,
}

impl Association {
    /// A new association in `cluster`.
    pub fn new(
        scope: Scope<'_>,
        cluster_name: &str,
        namespace: &str,
        service_account: &str,
        spec: AssociationSpec,
        tags: Tags,
        now_ms: i64,
    ) -> Result<Self, InvalidField> {
        validate_namespace(namespace)?;
        validate_service_account(service_account)?;
        validate_tags(&tags)?;
        let association_id = AssociationId::generate();
        let association_arn = format!(
            "arn:aws:eks:{}:{}:podidentityassociation/{cluster_name}/{}",
            scope.region,
            scope.account_id,
            association_id.as_str()
        );
        let mut a = Self {
            cluster_name: cluster_name.to_owned(),
            namespace: namespace.to_owned(),
            service_account: service_account.to_owned(),
            role_arn: String::new(),
            association_id,
            association_arn,
            tags,
            created_at_ms: now_ms,
            modified_at_ms: now_ms,
            owner_arn: None,
            disable_session_tags: false,
            target_role_arn: None,
            external_id: None,
            policy: None,
            create_token: None,
            update_token: None,
        };
        a.apply(spec);
        Ok(a)
    }

    /// Replaces the mutable fields. A target role gets an external id the first time one is set,
    /// and keeps it while a target role remains (the target's trust policy names it).
    pub fn apply(&mut self, spec: AssociationSpec) {
        self.role_arn = spec.role_arn.as_str().to_owned();
        self.disable_session_tags = spec.disable_session_tags;
        self.policy = spec.policy;
        match spec.target_role_arn {
            Some(target) => {
                self.target_role_arn = Some(target.as_str().to_owned());
                if self.external_id.is_none() {
                    self.external_id = Some(uuid::Uuid::new_v4().to_string());
                }
            }
            None => {
                self.target_role_arn = None;
                self.external_id = None;
            }
        }
    }

    /// The current mutable fields, as a spec (for merging a partial update).
    pub fn spec(&self) -> Result<AssociationSpec, InvalidField> {
        Ok(AssociationSpec {
            role_arn: parse_role(&self.role_arn, "roleArn")?,
            target_role_arn: self
                .target_role_arn
                .as_deref()
                .map(|t| parse_role(t, "targetRoleArn"))
                .transpose()?,
            disable_session_tags: self.disable_session_tags,
            policy: self.policy.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLE: &str = "arn:aws:iam::000000000000:role/my-role";

    #[test]
    fn ids_have_the_eks_shape() {
        for _ in 0..100 {
            let id = AssociationId::generate();
            assert_eq!(id.as_str().len(), 19);
            assert!(AssociationId::parse(id.as_str()).is_some());
        }
        for bad in [
            "",
            "a-",
            "a-ABCDEFGHIJKLMNOPQ",
            "b-abcdefghijklmnopq",
            "a-abcdefghijklmnopqr",
        ] {
            assert!(AssociationId::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn spec_rules() {
        AssociationSpec::validate(ROLE, None, false, None, "000000000000").unwrap();
        let e =
            AssociationSpec::validate(ROLE, None, false, Some("{}"), "000000000000").unwrap_err();
        assert_eq!(e.field, "policy");
        let e =
            AssociationSpec::validate(ROLE, None, true, Some("[1]"), "000000000000").unwrap_err();
        assert_eq!(e.field, "policy");
        let e = AssociationSpec::validate(
            "arn:aws:iam::111111111111:role/x",
            None,
            false,
            None,
            "000000000000",
        )
        .unwrap_err();
        assert_eq!(e.field, "roleArn");
        let e =
            AssociationSpec::validate(ROLE, Some("nope"), false, None, "000000000000").unwrap_err();
        assert_eq!(e.field, "targetRoleArn");
        let long = format!("{{\"a\":\"{}\"}}", "x".repeat(3000));
        assert!(AssociationSpec::validate(ROLE, None, true, Some(&long), "000000000000").is_err());
    }

    #[test]
    fn external_id_follows_the_target_role() {
        let spec = AssociationSpec::validate(
            ROLE,
            Some("arn:aws:iam::222222222222:role/target"),
            false,
            None,
            "000000000000",
        )
        .unwrap();
        let mut a = Association::new(
            Scope {
                region: "us-east-1",
                account_id: "000000000000",
            },
            "dev",
            "default",
            "sa",
            spec.clone(),
            Tags::new(),
            1,
        )
        .unwrap();
        let ext = a.external_id.clone().unwrap();
        assert!(a.association_arn.ends_with(a.association_id.as_str()));
        a.apply(spec);
        assert_eq!(a.external_id.as_deref(), Some(ext.as_str()));
        a.apply(AssociationSpec::validate(ROLE, None, false, None, "000000000000").unwrap());
        assert!(a.external_id.is_none() && a.target_role_arn.is_none());
    }

    #[test]
    fn tags_are_bounded() {
        let mut t = Tags::new();
        t.insert("k".repeat(129), "v".into());
        assert!(validate_tags(&t).is_err());
        let mut t = Tags::new();
        t.insert("k".into(), "v".repeat(257));
        assert!(validate_tags(&t).is_err());
        let t: Tags = (0..51).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(validate_tags(&t).is_err());
        let mut t = Tags::new();
        t.insert("aws:x".into(), "v".into());
        assert!(validate_tags(&t).is_err());
    }
}
