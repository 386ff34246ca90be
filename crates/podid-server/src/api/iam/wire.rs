//! IAM's output shapes (botocore `iam/2010-05-08`) as typed `Serialize` structs, members in the
//! model's order under its names; [`podid_aws::xml`] writes them as query-protocol XML (a list is
//! `<Name><member>…</member></Name>`, a `None` member is left out). Each `…Result` struct is the
//! content of the `<{Action}Result>` element; structs that serve several operations say which.
//!
//! Where IAM leaves a member out (tags of a role in `ListRoles`, an empty tag list) the struct
//! skips it; where IAM always writes it (`ListRoleTags`' `Tags`), it does not.

use serde::Serialize;

use crate::domain::iam::catalog::{self, ManagedPolicy};
use crate::domain::iam::records::{self, KeyRecord, PolicyRecord, RoleRecord, UserRecord};
use crate::domain::iam::simulation;

/// `Tag`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Tag<'a> {
    key: &'a str,
    value: &'a str,
}

/// A `tagListType` in wire form.
pub(super) fn tags(tags: &[records::Tag]) -> Vec<Tag<'_>> {
    tags.iter()
        .map(|t| Tag {
            key: &t.key,
            value: &t.value,
        })
        .collect()
}

/// `Role`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Role<'a> {
    path: &'a str,
    role_name: &'a str,
    role_id: &'a str,
    arn: &'a str,
    create_date: &'a str,
    /// URL-encoded, as IAM returns every policy document.
    assume_role_policy_document: String,
    description: Option<&'a str>,
    max_session_duration: u32,
    /// Omitted when empty, and always in `ListRoles` (as AWS does).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<Tag<'a>>,
}

impl<'a> Role<'a> {
    /// The role with its tags (CreateRole, GetRole).
    pub(super) fn new(r: &'a RoleRecord) -> Self {
        Self::with_tags(r, &r.tags)
    }

    /// A `ListRoles` member: AWS leaves the tags out of role lists.
    pub(super) fn listed(r: &'a RoleRecord) -> Self {
        Self::with_tags(r, &[])
    }

    fn with_tags(r: &'a RoleRecord, t: &'a [records::Tag]) -> Self {
        Self {
            path: &r.path,
            role_name: &r.name,
            role_id: &r.role_id,
            arn: &r.arn,
            create_date: &r.create_date,
            assume_role_policy_document: records::url_encode(&r.assume_role_policy),
            description: r.description.as_deref(),
            max_session_duration: r.max_session_duration,
            tags: tags(t),
        }
    }
}

/// `User`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct User<'a> {
    path: &'a str,
    user_name: &'a str,
    user_id: &'a str,
    arn: &'a str,
    create_date: &'a str,
    /// Omitted when empty, and always in `ListUsers`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<Tag<'a>>,
}

impl<'a> User<'a> {
    /// The user with its tags (CreateUser, GetUser).
    pub(super) fn new(u: &'a UserRecord) -> Self {
        Self::with_tags(u, &u.tags)
    }

    /// A `ListUsers` member: without tags, like role lists.
    pub(super) fn listed(u: &'a UserRecord) -> Self {
        Self::with_tags(u, &[])
    }

    fn with_tags(u: &'a UserRecord, t: &'a [records::Tag]) -> Self {
        Self {
            path: &u.path,
            user_name: &u.name,
            user_id: &u.user_id,
            arn: &u.arn,
            create_date: &u.create_date,
            tags: tags(t),
        }
    }
}

/// `Policy`, customer or AWS managed.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Policy<'a> {
    policy_name: &'a str,
    policy_id: &'a str,
    arn: &'a str,
    path: &'a str,
    default_version_id: &'static str,
    attachment_count: usize,
    /// podid has no permissions boundaries.
    permissions_boundary_usage_count: u32,
    is_attachable: bool,
    description: Option<&'a str>,
    create_date: &'a str,
    update_date: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<Tag<'a>>,
}

impl<'a> Policy<'a> {
    /// A customer managed policy (one version, never updated).
    pub(super) fn customer(p: &'a PolicyRecord, attachments: usize) -> Self {
        Self {
            policy_name: &p.name,
            policy_id: &p.policy_id,
            arn: &p.arn,
            path: &p.path,
            default_version_id: catalog::VERSION_ID,
            attachment_count: attachments,
            permissions_boundary_usage_count: 0,
            is_attachable: true,
            description: p.description.as_deref(),
            create_date: &p.create_date,
            update_date: &p.create_date,
            tags: tags(&p.tags),
        }
    }

    /// An AWS managed policy from the catalog: always a description, never tags.
    pub(super) fn aws(p: &'a ManagedPolicy, attachments: usize) -> Self {
        Self {
            policy_name: p.name,
            policy_id: &p.policy_id,
            arn: &p.arn,
            path: "/",
            default_version_id: catalog::VERSION_ID,
            attachment_count: attachments,
            permissions_boundary_usage_count: 0,
            is_attachable: true,
            description: Some(p.description),
            create_date: catalog::CREATE_DATE,
            update_date: catalog::CREATE_DATE,
            tags: Vec::new(),
        }
    }
}

/// `PolicyVersion`: the one (default) version every policy has here.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct PolicyVersion<'a> {
    /// URL-encoded JSON text.
    document: String,
    version_id: &'static str,
    is_default_version: bool,
    create_date: &'a str,
}

impl<'a> PolicyVersion<'a> {
    /// `document` is the raw JSON text.
    pub(super) fn new(document: &str, create_date: &'a str) -> Self {
        Self {
            document: records::url_encode(document),
            version_id: catalog::VERSION_ID,
            is_default_version: true,
            create_date,
        }
    }
}

/// `AccessKey` (CreateAccessKey): the only IAM shape with a secret, so its `Debug` leaves the
/// secret out.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct AccessKey<'a> {
    user_name: &'a str,
    access_key_id: &'a str,
    status: &'a str,
    secret_access_key: &'a str,
    create_date: &'a str,
}

impl<'a> AccessKey<'a> {
    pub(super) fn new(k: &'a KeyRecord) -> Self {
        Self {
            user_name: &k.user_name,
            access_key_id: &k.access_key_id,
            status: &k.status,
            secret_access_key: k.secret_access_key.expose(),
            create_date: &k.create_date,
        }
    }
}

impl<'a> AccessKey<'a> {
    /// CloudTrail's `responseElements` of CreateAccessKey: the key without its secret.
    pub(super) fn audit_copy(&self) -> AuditedCreateAccessKey<'a> {
        AuditedCreateAccessKey {
            access_key: AuditedAccessKey {
                user_name: self.user_name,
                access_key_id: self.access_key_id,
                status: self.status,
                create_date: self.create_date,
            },
        }
    }
}

/// [`AccessKey::audit_copy`]'s shape.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AuditedCreateAccessKey<'a> {
    access_key: AuditedAccessKey<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct AuditedAccessKey<'a> {
    user_name: &'a str,
    access_key_id: &'a str,
    status: &'a str,
    create_date: &'a str,
}

impl std::fmt::Debug for AccessKey<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey")
            .field("user_name", &self.user_name)
            .field("access_key_id", &self.access_key_id)
            .field("status", &self.status)
            .field("create_date", &self.create_date)
            .finish_non_exhaustive()
    }
}

/// `AccessKeyMetadata` (ListAccessKeys): an access key without its secret.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct AccessKeyMetadata<'a> {
    user_name: &'a str,
    access_key_id: &'a str,
    status: &'a str,
    create_date: &'a str,
}

impl<'a> AccessKeyMetadata<'a> {
    pub(super) fn new(k: &'a KeyRecord) -> Self {
        Self {
            user_name: &k.user_name,
            access_key_id: &k.access_key_id,
            status: &k.status,
            create_date: &k.create_date,
        }
    }
}

/// `AttachedPolicy`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct AttachedPolicy<'a> {
    policy_name: &'a str,
    policy_arn: &'a str,
}

impl<'a> AttachedPolicy<'a> {
    /// The policy's name is the last segment of its ARN.
    pub(super) fn new(arn: &'a str) -> Self {
        Self {
            policy_name: arn.rsplit('/').next().unwrap_or_default(),
            policy_arn: arn,
        }
    }
}

/// `EvaluationResult` (SimulatePrincipalPolicy). `MissingContextValues` is always empty: the
/// engine does not report which condition keys it could not find.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct EvaluationResult<'a> {
    pub(super) eval_action_name: &'a str,
    pub(super) eval_resource_name: &'a str,
    pub(super) eval_decision: EvalDecision,
    pub(super) matched_statements: Vec<Statement<'a>>,
    pub(super) missing_context_values: Vec<&'a str>,
}

/// `PolicyEvaluationDecisionType`.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) enum EvalDecision {
    Allowed,
    ExplicitDeny,
    ImplicitDeny,
}

impl From<podid_iam::Decision> for EvalDecision {
    fn from(d: podid_iam::Decision) -> Self {
        match d {
            podid_iam::Decision::Allowed => Self::Allowed,
            podid_iam::Decision::ExplicitDeny => Self::ExplicitDeny,
            podid_iam::Decision::ImplicitDeny => Self::ImplicitDeny,
        }
    }
}

/// `Statement`: a statement that decided a result, and where it is in its document.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Statement<'a> {
    pub(super) source_policy_id: Option<&'a str>,
    pub(super) source_policy_type: SourcePolicyType,
    pub(super) start_position: Position,
    pub(super) end_position: Position,
}

/// What IAM puts in `SourcePolicyType` (the botocore enum lists `user`, `role`, … but the
/// service answers with these labels).
#[derive(Debug, Clone, Copy, Serialize)]
pub(super) enum SourcePolicyType {
    #[serde(rename = "IAM Policy")]
    Iam,
    #[serde(rename = "Resource Policy")]
    Resource,
}

impl From<podid_iam::PolicySource> for SourcePolicyType {
    fn from(s: podid_iam::PolicySource) -> Self {
        match s {
            podid_iam::PolicySource::Identity | podid_iam::PolicySource::Session => Self::Iam,
            podid_iam::PolicySource::Resource => Self::Resource,
        }
    }
}

/// `Position`: 1-based line and column.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Position {
    line: usize,
    column: usize,
}

impl From<simulation::Position> for Position {
    fn from(p: simulation::Position) -> Self {
        Self {
            line: p.line,
            column: p.column,
        }
    }
}

/// `CreateRoleResponse`, `GetRoleResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct RoleResult<'a> {
    pub(super) role: Role<'a>,
}

/// `CreateUserResponse`, `GetUserResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct UserResult<'a> {
    pub(super) user: User<'a>,
}

/// `CreatePolicyResponse`, `GetPolicyResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct PolicyResult<'a> {
    pub(super) policy: Policy<'a>,
}

/// `GetPolicyVersionResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct GetPolicyVersionResult<'a> {
    pub(super) policy_version: PolicyVersion<'a>,
}

/// `CreateAccessKeyResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct CreateAccessKeyResult<'a> {
    pub(super) access_key: AccessKey<'a>,
}

/// `GetRolePolicyResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct GetRolePolicyResult<'a> {
    pub(super) role_name: &'a str,
    pub(super) policy_name: &'a str,
    /// URL-encoded JSON text.
    pub(super) policy_document: String,
}

/// `GetUserPolicyResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct GetUserPolicyResult<'a> {
    pub(super) user_name: &'a str,
    pub(super) policy_name: &'a str,
    /// URL-encoded JSON text.
    pub(super) policy_document: String,
}

// The list results below end in botocore's truncation members: `IsTruncated`, and `Marker`
// (the first item of the next page) only when it is true.

/// `ListRolesResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ListRolesResult<'a> {
    pub(super) roles: Vec<Role<'a>>,
    pub(super) is_truncated: bool,
    pub(super) marker: Option<String>,
}

/// `ListUsersResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ListUsersResult<'a> {
    pub(super) users: Vec<User<'a>>,
    pub(super) is_truncated: bool,
    pub(super) marker: Option<String>,
}

/// `ListRoleTagsResponse`: `Tags` is present even when empty.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ListRoleTagsResult<'a> {
    pub(super) tags: Vec<Tag<'a>>,
    pub(super) is_truncated: bool,
    pub(super) marker: Option<String>,
}

/// `ListRolePoliciesResponse`, `ListUserPoliciesResponse` (the same members).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ListPolicyNamesResult<'a> {
    pub(super) policy_names: Vec<&'a str>,
    pub(super) is_truncated: bool,
    pub(super) marker: Option<String>,
}

/// `ListAttachedRolePoliciesResponse`, `ListAttachedUserPoliciesResponse` (the same members).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ListAttachedPoliciesResult<'a> {
    pub(super) attached_policies: Vec<AttachedPolicy<'a>>,
    pub(super) is_truncated: bool,
    pub(super) marker: Option<String>,
}

/// `ListAccessKeysResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ListAccessKeysResult<'a> {
    pub(super) access_key_metadata: Vec<AccessKeyMetadata<'a>>,
    pub(super) is_truncated: bool,
    pub(super) marker: Option<String>,
}

/// `SimulatePolicyResponse` (SimulatePrincipalPolicy): every result in one page.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct SimulatePrincipalPolicyResult<'a> {
    pub(super) evaluation_results: Vec<EvaluationResult<'a>>,
    pub(super) is_truncated: bool,
}
