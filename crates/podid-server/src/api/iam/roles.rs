//! CreateRole, GetRole, DeleteRole, ListRoles, UpdateAssumeRolePolicy, TagRole, UntagRole,
//! ListRoleTags.

use crate::protocol::query::QueryError;
use axum::response::Response;
use podid_iam::Policy;

use super::errors::{
    already_exists, delete_conflict, generation_failed, malformed, quota_exceeded, role_not_found,
    validation,
};
use super::handlers::Ctx;
use super::input;
use super::wire::{ListRoleTagsResult, ListRolesResult, Role, RoleResult, tags};
use crate::domain::iam::index::Table;
use crate::domain::iam::records::{self, RoleRecord, Tag};
use crate::domain::iam::store::{self, Outcome};

/// `roleNameType` max length.
pub(super) const MAX_ROLE_NAME: usize = 64;
/// `roleMaxSessionDurationType`: 1 to 12 hours; IAM's default is one hour.
const MIN_SESSION: u32 = 3600;
const MAX_SESSION: u32 = 43_200;
/// IAM's default trust-policy quota (ACLSizePerRole), counted without whitespace as IAM does.
const MAX_TRUST_POLICY_CHARS: usize = 2048;
/// IAM's tags-per-role quota.
const MAX_TAGS_PER_ROLE: usize = 50;

pub(super) async fn create(cx: &Ctx<'_>) -> Result<Response, QueryError> {
    let name = input::name(cx.q, "RoleName", MAX_ROLE_NAME)?;
    let path = input::path(cx.q)?;
    let arn = records::arn(cx.account(), "role", &path, name);
    cx.authorize(&arn)?;
    let document = trust_policy(cx.q.require("AssumeRolePolicyDocument")?)?;
    let description = input::description(cx.q)?;
    let max_session_duration = match cx.q.get("MaxSessionDuration") {
        None => MIN_SESSION,
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (MIN_SESSION..=MAX_SESSION).contains(&n) => n,
            _ => {
                return Err(validation(
                    v,
                    "maxSessionDuration",
                    "Member must have value between 3600 and 43200",
                ));
            }
        },
    };
    let tags = input::tags(cx.q)?;
    let exists = || already_exists(format!("Role with name {name} already exists."));
    if cx.iam.name_taken(Table::Role, name) {
        return Err(exists());
    }
    let record = RoleRecord {
        name: name.to_owned(),
        path,
        role_id: records::unique_id("AROA").map_err(|e| generation_failed(&e))?,
        arn,
        create_date: records::now_iso(),
        assume_role_policy: document,
        description,
        max_session_duration,
        tags,
        inline_policies: Default::default(),
        attached: Vec::new(),
    };
    store::create(&cx.state.store, records::role_key(name), &record, exists()).await?;
    tracing::info!(role = name, "iam role created");
    cx.reply(&RoleResult {
        role: Role::new(&record),
    })
}

pub(super) fn get(cx: &Ctx<'_>) -> Result<Response, QueryError> {
    let name = input::name(cx.q, "RoleName", MAX_ROLE_NAME)?;
    cx.authorize(&role_arn(cx, name))?;
    let r = cx
        .iam
        .role_entry(name)
        .ok_or_else(|| role_not_found(name))?;
    cx.reply(&RoleResult {
        role: Role::new(&r.record),
    })
}

pub(super) async fn delete(cx: &Ctx<'_>) -> Result<Response, QueryError> {
    let name = input::name(cx.q, "RoleName", MAX_ROLE_NAME)?;
    cx.authorize(&role_arn(cx, name))?;
    store::edit(
        &cx.state.store,
        &records::role_key(name),
        || role_not_found(name),
        |r: &mut RoleRecord, _| {
            if !r.inline_policies.is_empty() {
                return Err(delete_conflict(
                    "Cannot delete entity, must delete policies first.",
                ));
            }
            if !r.attached.is_empty() {
                return Err(delete_conflict(
                    "Cannot delete entity, must detach all policies first.",
                ));
            }
            Ok((Outcome::Delete, ()))
        },
    )
    .await?;
    tracing::info!(role = name, "iam role deleted");
    cx.empty()
}

pub(super) fn list(cx: &Ctx<'_>) -> Result<Response, QueryError> {
    let prefix = cx.q.get("PathPrefix").unwrap_or("/");
    let (marker, max) = input::paging(cx.q)?;
    cx.authorize(&format!("arn:aws:iam::{}:role/", cx.account()))?;
    let (roles, next) = cx.iam.roles_page(prefix, marker.as_deref(), max);
    cx.reply(&ListRolesResult {
        roles: roles.iter().map(Role::listed).collect(),
        is_truncated: next.is_some(),
        marker: next,
    })
}

pub(super) async fn update_trust(cx: &Ctx<'_>) -> Result<Response, QueryError> {
    let name = input::name(cx.q, "RoleName", MAX_ROLE_NAME)?;
    cx.authorize(&role_arn(cx, name))?;
    let document = trust_policy(cx.q.require("PolicyDocument")?)?;
    store::edit(
        &cx.state.store,
        &records::role_key(name),
        || role_not_found(name),
        |r: &mut RoleRecord, _| {
            r.assume_role_policy = document.clone();
            Ok((Outcome::Put, ()))
        },
    )
    .await?;
    cx.empty()
}

pub(super) async fn tag(cx: &Ctx<'_>) -> Result<Response, QueryError> {
    let name = input::name(cx.q, "RoleName", MAX_ROLE_NAME)?;
    cx.authorize(&role_arn(cx, name))?;
    let new = input::tags(cx.q)?;
    store::edit(
        &cx.state.store,
        &records::role_key(name),
        || role_not_found(name),
        |r: &mut RoleRecord, _| {
            for t in &new {
                match r
                    .tags
                    .iter_mut()
                    .find(|old| old.key.eq_ignore_ascii_case(&t.key))
                {
                    Some(old) => *old = t.clone(),
                    None => r.tags.push(t.clone()),
                }
            }
            if r.tags.len() > MAX_TAGS_PER_ROLE {
                return Err(quota_exceeded("TagsPerRole", MAX_TAGS_PER_ROLE));
            }
            Ok((Outcome::Put, ()))
        },
    )
    .await?;
    cx.empty()
}

pub(super) async fn untag(cx: &Ctx<'_>) -> Result<Response, QueryError> {
    let name = input::name(cx.q, "RoleName", MAX_ROLE_NAME)?;
    cx.authorize(&role_arn(cx, name))?;
    let keys = cx.q.list("TagKeys");
    store::edit(
        &cx.state.store,
        &records::role_key(name),
        || role_not_found(name),
        |r: &mut RoleRecord, _| {
            r.tags
                .retain(|t| !keys.iter().any(|k| k.eq_ignore_ascii_case(&t.key)));
            Ok((Outcome::Put, ()))
        },
    )
    .await?;
    cx.empty()
}

pub(super) fn list_tags(cx: &Ctx<'_>) -> Result<Response, QueryError> {
    let name = input::name(cx.q, "RoleName", MAX_ROLE_NAME)?;
    let (marker, max) = input::paging(cx.q)?;
    cx.authorize(&role_arn(cx, name))?;
    let r = cx
        .iam
        .role_entry(name)
        .ok_or_else(|| role_not_found(name))?;
    let (page, next) = input::page(
        &r.record.tags,
        |t: &Tag| t.key.as_str(),
        marker.as_deref(),
        max,
    );
    cx.reply(&ListRoleTagsResult {
        tags: tags(&page),
        is_truncated: next.is_some(),
        marker: next,
    })
}

/// The ARN of role `name`: the stored one (with its path), or the root-path ARN of a role that
/// does not exist (what authorization is evaluated against before NoSuchEntity).
pub(super) fn role_arn(cx: &Ctx<'_>, name: &str) -> String {
    cx.iam.role_entry(name).map_or_else(
        || records::arn(cx.account(), "role", "/", name),
        |r| r.record.arn.clone(),
    )
}

/// Checks a trust policy: IAM's size quota, the grammar, and a Principal in every statement.
fn trust_policy(text: &str) -> Result<String, QueryError> {
    if text.chars().filter(|c| !c.is_whitespace()).count() > MAX_TRUST_POLICY_CHARS {
        return Err(quota_exceeded("ACLSizePerRole", MAX_TRUST_POLICY_CHARS));
    }
    let policy = Policy::parse(text).map_err(|e| malformed(&e))?;
    policy.check_resource_policy().map_err(|e| malformed(&e))?;
    Ok(text.to_owned())
}
