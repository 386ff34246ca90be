//! The request being authorised: who, what action, on which resource, with which
//! condition-key values.

use std::collections::HashMap;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::variables::VarSource;

/// What kind of caller a [`PrincipalInfo`] is; decides how `Principal` entries match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalKind {
    /// The account root user (`arn:aws:iam::<acct>:root`).
    AccountRoot,
    /// An IAM user.
    User,
    /// An IAM role acting as itself (rare; sessions are [`PrincipalKind::AssumedRole`]).
    Role,
    /// A role session (`arn:aws:sts::<acct>:assumed-role/<role>/<session>`); `role_arn`
    /// is the IAM role ARN (with its path), which a `Principal` naming the role matches.
    AssumedRole {
        /// `arn:aws:iam::<acct>:role/<path><name>`.
        role_arn: String,
    },
    /// An AWS service principal such as `pods.eks.amazonaws.com`.
    Service(String),
    /// A web-identity or SAML federated caller; the value is the provider
    /// (an `oidc-provider`/`saml-provider` ARN or a name like `cognito-identity.amazonaws.com`).
    Federated(String),
    /// An unauthenticated caller; only `"*"` principals match it.
    Anonymous,
}

/// The caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalInfo {
    /// The caller's ARN (for a service or federated caller, its name or provider).
    pub arn: String,
    /// The 12-digit account of an IAM caller; empty for services, federated and anonymous.
    pub account_id: String,
    /// What kind of caller this is.
    pub kind: PrincipalKind,
    /// `aws:username` (IAM users only).
    pub username: Option<String>,
    /// `aws:userid` (for example `AROAEXAMPLE:session`).
    pub userid: Option<String>,
}

impl PrincipalInfo {
    fn iam(arn: String, kind: PrincipalKind) -> Self {
        let account_id = arn.split(':').nth(4).unwrap_or_default().to_owned();
        Self {
            arn,
            account_id,
            kind,
            username: None,
            userid: None,
        }
    }

    /// The root user of `account_id`.
    pub fn account_root(account_id: &str) -> Self {
        Self::iam(
            format!("arn:aws:iam::{account_id}:root"),
            PrincipalKind::AccountRoot,
        )
    }

    /// An IAM user; `aws:username` is the last path segment of the ARN.
    pub fn user(arn: &str) -> Self {
        let mut p = Self::iam(arn.to_owned(), PrincipalKind::User);
        p.username = arn.rsplit('/').next().map(str::to_owned);
        p
    }

    /// An IAM role acting as itself.
    pub fn role(arn: &str) -> Self {
        Self::iam(arn.to_owned(), PrincipalKind::Role)
    }

    /// A session of `role_arn` whose ARN is `session_arn`.
    pub fn assumed_role(session_arn: &str, role_arn: &str) -> Self {
        Self::iam(
            session_arn.to_owned(),
            PrincipalKind::AssumedRole {
                role_arn: role_arn.to_owned(),
            },
        )
    }

    /// A service principal such as `pods.eks.amazonaws.com`.
    pub fn service(name: &str) -> Self {
        let kind = PrincipalKind::Service(name.to_owned());
        Self {
            arn: name.to_owned(),
            account_id: String::new(),
            kind,
            username: None,
            userid: None,
        }
    }

    /// A federated caller authenticated by `provider`.
    pub fn federated(provider: &str) -> Self {
        let kind = PrincipalKind::Federated(provider.to_owned());
        Self {
            arn: provider.to_owned(),
            account_id: String::new(),
            kind,
            username: None,
            userid: None,
        }
    }

    /// An anonymous caller.
    pub fn anonymous() -> Self {
        let (arn, account_id) = (String::new(), String::new());
        Self {
            arn,
            account_id,
            kind: PrincipalKind::Anonymous,
            username: None,
            userid: None,
        }
    }

    /// Sets `aws:userid`.
    #[must_use]
    pub fn with_userid(mut self, userid: &str) -> Self {
        self.userid = Some(userid.to_owned());
        self
    }

    /// `aws:PrincipalType` as AWS reports it.
    fn principal_type(&self) -> Option<&'static str> {
        Some(match self.kind {
            PrincipalKind::AccountRoot => "Account",
            PrincipalKind::User => "User",
            PrincipalKind::Role | PrincipalKind::AssumedRole { .. } => "AssumedRole",
            PrincipalKind::Federated(_) => "FederatedUser",
            PrincipalKind::Anonymous => "Anonymous",
            PrincipalKind::Service(_) => return None,
        })
    }

    /// `true` for callers that belong to an account (root, users, roles, sessions).
    pub(crate) fn is_iam(&self) -> bool {
        matches!(
            self.kind,
            PrincipalKind::AccountRoot
                | PrincipalKind::User
                | PrincipalKind::Role
                | PrincipalKind::AssumedRole { .. }
        )
    }
}

/// The values of one condition key in a request.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Vals<'a> {
    Many(&'a [String]),
    One(&'a str),
}

impl<'a> Vals<'a> {
    pub(crate) fn iter(self) -> impl Iterator<Item = &'a str> {
        let (many, one) = match self {
            Self::Many(m) => (m, None),
            Self::One(o) => (&[][..], Some(o)),
        };
        many.iter().map(String::as_str).chain(one)
    }
}

/// One request to authorise.
///
/// Condition keys are case-insensitive. `aws:PrincipalArn`, `aws:PrincipalAccount`,
/// `aws:PrincipalType`, `aws:username` and `aws:userid` default to values derived from
/// the [`PrincipalInfo`] unless set explicitly.
#[derive(Debug, Clone)]
pub struct RequestContext {
    principal: PrincipalInfo,
    action: String,
    resource: Option<String>,
    /// Lowercased key -> values. An empty list counts as an absent key.
    keys: HashMap<Box<str>, Vec<String>>,
}

impl RequestContext {
    /// A request by `principal` for `action` (for example `sts:AssumeRole`), with no
    /// resource and no condition keys yet.
    pub fn new(principal: PrincipalInfo, action: &str) -> Self {
        Self {
            principal,
            action: action.to_owned(),
            resource: None,
            keys: HashMap::new(),
        }
    }

    /// Sets the resource ARN. Without one (trust-policy evaluation) only statements
    /// with no Resource, `Resource: "*"`, or a NotResource not listing `*` apply.
    #[must_use]
    pub fn with_resource(mut self, arn: &str) -> Self {
        self.resource = Some(arn.to_owned());
        self
    }

    /// Sets `key` to a single value, replacing any previous values.
    #[must_use]
    pub fn with_value(mut self, key: &str, value: &str) -> Self {
        self.set(key, vec![value.to_owned()]);
        self
    }

    /// Sets `key` to several values (for example `aws:TagKeys`), replacing any previous ones.
    #[must_use]
    pub fn with_values<I, S>(mut self, key: &str, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.set(key, values.into_iter().map(Into::into).collect());
        self
    }

    /// Sets `aws:CurrentTime` (RFC 3339) and `aws:EpochTime` from `now`.
    #[must_use]
    pub fn with_time(mut self, now: OffsetDateTime) -> Self {
        if let Ok(t) = now.format(&Rfc3339) {
            self.set("aws:CurrentTime", vec![t]);
        }
        self.set("aws:EpochTime", vec![now.unix_timestamp().to_string()]);
        self
    }

    /// Sets `key` (case-insensitive) to `values`.
    pub fn set(&mut self, key: &str, values: Vec<String>) {
        self.keys
            .insert(key.to_ascii_lowercase().into_boxed_str(), values);
    }

    /// The caller.
    pub fn principal(&self) -> &PrincipalInfo {
        &self.principal
    }

    /// The action, for example `s3:GetObject`.
    pub fn action(&self) -> &str {
        &self.action
    }

    /// The resource ARN, if any.
    pub fn resource(&self) -> Option<&str> {
        self.resource.as_deref()
    }

    /// The values of `key` (case-insensitive), including principal-derived keys.
    pub fn values(&self, key: &str) -> Vec<&str> {
        self.lookup(&key.to_ascii_lowercase())
            .map(|v| v.iter().collect())
            .unwrap_or_default()
    }

    /// Values of an already-lowercased key; `None` when absent or empty.
    pub(crate) fn lookup(&self, key_lower: &str) -> Option<Vals<'_>> {
        if let Some(v) = self.keys.get(key_lower) {
            return (!v.is_empty()).then_some(Vals::Many(v));
        }
        let p = &self.principal;
        let derived = match key_lower {
            // For a role session AWS reports the role's ARN, not the session's
            // (global condition context keys, aws:PrincipalArn).
            "aws:principalarn" => match &p.kind {
                PrincipalKind::AssumedRole { role_arn } => Some(role_arn.as_str()),
                _ if p.is_iam() => Some(p.arn.as_str()),
                _ => None,
            },
            "aws:principalaccount" if p.is_iam() => Some(p.account_id.as_str()),
            "aws:principaltype" => p.principal_type(),
            "aws:username" => p.username.as_deref(),
            "aws:userid" => p.userid.as_deref(),
            _ => None,
        };
        derived.map(Vals::One)
    }
}

impl VarSource for RequestContext {
    fn var(&self, key_lower: &str) -> Option<&str> {
        // A multi-valued key cannot be substituted (AWS: the variable fails to resolve).
        match self.lookup(key_lower)? {
            Vals::One(v) => Some(v),
            Vals::Many([v]) => Some(v.as_str()),
            Vals::Many(_) => None,
        }
    }
}
