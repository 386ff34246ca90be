//! The policies of a role or a user: Put/Get/Delete/List…Policy (inline) and
//! Attach/Detach/ListAttached…Policies (managed). Both kinds keep them inside their own record.

use std::collections::BTreeMap;

use crate::protocol::query::QueryError;
use axum::response::Response;
use podid_iam::Policy;
use podid_store::Compare;

use super::errors::{
    inline_not_found, invalid_input, limit_exceeded, malformed, policy_not_attachable,
    policy_not_found, quota_exceeded, role_not_found, user_not_found,
};
use super::handlers::Ctx;
use super::input;
use super::wire::{
    AttachedPolicy, GetRolePolicyResult, GetUserPolicyResult, ListAttachedPoliciesResult,
    ListPolicyNamesResult,
};
use crate::domain::iam::records::{self, RoleRecord, UserRecord};
use crate::domain::iam::store::{self, Extra, Outcome};

/// `policyNameType` max length.
pub(super) const MAX_POLICY_NAME: usize = 128;
/// IAM's quota of managed policies attached to one role or user.
const MAX_ATTACHED: usize = 10;

/// Whose policies a request is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Role,
    User,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Role => "role",
            Kind::User => "user",
        }
    }
    fn name_param(self) -> &'static str {
        match self {
            Kind::Role => "RoleName",
            Kind::User => "UserName",
        }
    }
    /// `roleNameType` is 64; `existingUserNameType` allows 128.
    fn max_name(self) -> usize {
        match self {
            Kind::Role => 64,
            Kind::User => 128,
        }
    }
    fn not_found(self, name: &str) -> QueryError {
        match self {
            Kind::Role => role_not_found(name),
            Kind::User => user_not_found(name),
        }
    }
    /// IAM's aggregate inline-policy quota, in characters without whitespace.
    fn inline_quota(self) -> usize {
        match self {
            Kind::Role => 10_240,
            Kind::User => 2_048,
        }
    }
    fn quota_name(self) -> &'static str {
        match self {
            Kind::Role => "PoliciesPerRole",
            Kind::User => "PoliciesPerUser",
        }
    }
}

/// The two records that hold policies.
trait Holder {
    fn inline(&mut self) -> &mut BTreeMap<String, String>;
    fn attached(&mut self) -> &mut Vec<String>;
}

impl Holder for RoleRecord {
    fn inline(&mut self) -> &mut BTreeMap<String, String> {
        &mut self.inline_policies
    }
    fn attached(&mut self) -> &mut Vec<String> {
        &mut self.attached
    }
}

impl Holder for UserRecord {
    fn inline(&mut self) -> &mut BTreeMap<String, String> {
        &mut self.inline_policies
    }
    fn attached(&mut self) -> &mut Vec<String> {
        &mut self.attached
    }
}

pub(super) async fn put_inline(cx: &Ctx<'_>, kind: Kind) -> Result<Response, QueryError> {
    let name = owner(cx, kind)?;
    let policy_name = input::name(cx.q, "PolicyName", MAX_POLICY_NAME)?;
    let text = cx.q.require("PolicyDocument")?;
    let policy = Policy::parse(text).map_err(|e| malformed(&e))?;
    policy.check_identity_policy().map_err(|e| malformed(&e))?;
    edit(cx, kind, name, |h, _| {
        let inline = h.inline();
        inline.insert(policy_name.to_owned(), text.to_owned());
        let size: usize = inline
            .values()
            .map(|d| d.chars().filter(|c| !c.is_whitespace()).count())
            .sum();
        if size > kind.inline_quota() {
            return Err(limit_exceeded(format!(
                "Maximum policy size of {} bytes exceeded for {} {name}",
                kind.inline_quota(),
                kind.word()
            )));
        }
        Ok(Outcome::Put)
    })
    .await?;
    cx.empty()
}

pub(super) fn get_inline(cx: &Ctx<'_>, kind: Kind) -> Result<Response, QueryError> {
    let name = owner(cx, kind)?;
    let policy_name = input::name(cx.q, "PolicyName", MAX_POLICY_NAME)?;
    let (inline, _) = snapshot(cx, kind, name)?;
    let doc = inline
        .get(policy_name)
        .ok_or_else(|| inline_not_found(kind.word(), policy_name))?;
    let policy_document = records::url_encode(doc);
    match kind {
        Kind::Role => cx.reply(&GetRolePolicyResult {
            role_name: name,
            policy_name,
            policy_document,
        }),
        Kind::User => cx.reply(&GetUserPolicyResult {
            user_name: name,
            policy_name,
            policy_document,
        }),
    }
}

pub(super) async fn delete_inline(cx: &Ctx<'_>, kind: Kind) -> Result<Response, QueryError> {
    let name = owner(cx, kind)?;
    let policy_name = input::name(cx.q, "PolicyName", MAX_POLICY_NAME)?;
    edit(cx, kind, name, |h, _| {
        match h.inline().remove(policy_name) {
            Some(_) => Ok(Outcome::Put),
            None => Err(inline_not_found(kind.word(), policy_name)),
        }
    })
    .await?;
    cx.empty()
}

pub(super) fn list_inline(cx: &Ctx<'_>, kind: Kind) -> Result<Response, QueryError> {
    let name = owner(cx, kind)?;
    let (marker, max) = input::paging(cx.q)?;
    let (inline, _) = snapshot(cx, kind, name)?;
    let names: Vec<&str> = inline.keys().map(String::as_str).collect();
    let (page, next) = input::page(&names, |n| n, marker.as_deref(), max);
    cx.reply(&ListPolicyNamesResult {
        policy_names: page,
        is_truncated: next.is_some(),
        marker: next,
    })
}

pub(super) async fn attach(cx: &Ctx<'_>, kind: Kind) -> Result<Response, QueryError> {
    let name = owner(cx, kind)?;
    let arn = policy_arn(cx)?;
    let customer = match cx.iam.catalog_policy(arn) {
        Some(_) => None,
        None => Some(
            cx.iam
                .customer_policy(arn)
                .ok_or_else(|| policy_not_attachable(arn))?
                .record
                .name
                .clone(),
        ),
    };
    edit(cx, kind, name, |h, extra: &mut Extra<QueryError>| {
        if h.attached().iter().any(|a| a == arn) {
            return Ok(Outcome::Unchanged);
        }
        if h.attached().len() >= MAX_ATTACHED {
            return Err(quota_exceeded(kind.quota_name(), MAX_ATTACHED));
        }
        if let Some(policy) = &customer {
            // The policy must still exist when the attachment commits.
            extra.require(
                Compare::Present(records::policy_key(policy)),
                policy_not_attachable(arn),
            );
        }
        h.attached().push(arn.to_owned());
        Ok(Outcome::Put)
    })
    .await?;
    cx.empty()
}

pub(super) async fn detach(cx: &Ctx<'_>, kind: Kind) -> Result<Response, QueryError> {
    let name = owner(cx, kind)?;
    let arn = policy_arn(cx)?;
    edit(cx, kind, name, |h, _| {
        let before = h.attached().len();
        h.attached().retain(|a| a != arn);
        if h.attached().len() == before {
            return Err(policy_not_found(arn));
        }
        Ok(Outcome::Put)
    })
    .await?;
    cx.empty()
}

pub(super) fn list_attached(cx: &Ctx<'_>, kind: Kind) -> Result<Response, QueryError> {
    let name = owner(cx, kind)?;
    let prefix = cx.q.get("PathPrefix").unwrap_or("/");
    let (marker, max) = input::paging(cx.q)?;
    let (_, attached) = snapshot(cx, kind, name)?;
    let matching: Vec<&str> = attached
        .iter()
        .map(String::as_str)
        .filter(|a| policy_path(a).starts_with(prefix))
        .collect();
    let (page, next) = input::page(&matching, |a| a, marker.as_deref(), max);
    cx.reply(&ListAttachedPoliciesResult {
        attached_policies: page.into_iter().map(AttachedPolicy::new).collect(),
        is_truncated: next.is_some(),
        marker: next,
    })
}

/// The role or user named in the request, after authorizing the action on its ARN.
fn owner<'a>(cx: &Ctx<'a>, kind: Kind) -> Result<&'a str, QueryError> {
    let name = input::name(cx.q, kind.name_param(), kind.max_name())?;
    let arn = match kind {
        Kind::Role => super::roles::role_arn(cx, name),
        Kind::User => super::users::user_arn(cx, name),
    };
    cx.authorize(&arn)?;
    Ok(name)
}

/// `PolicyArn`, which must at least look like an ARN.
pub(super) fn policy_arn<'a>(cx: &Ctx<'a>) -> Result<&'a str, QueryError> {
    let arn = cx.q.require("PolicyArn")?;
    if podid_aws::arn::Arn::parse(arn).is_err() {
        return Err(invalid_input(format!("ARN {arn} is not valid.")));
    }
    Ok(arn)
}

/// The path of a policy ARN (`arn:aws:iam::acct:policy/path/Name` → `/path/`).
fn policy_path(arn: &str) -> &str {
    let resource = arn.splitn(6, ':').nth(5).unwrap_or_default();
    let after = resource.strip_prefix("policy").unwrap_or(resource);
    match after.rfind('/') {
        Some(end) => after.get(..=end).unwrap_or("/"),
        None => "/",
    }
}

/// The inline documents and attachments of a role or user, from the index.
fn snapshot(
    cx: &Ctx<'_>,
    kind: Kind,
    name: &str,
) -> Result<(BTreeMap<String, String>, Vec<String>), QueryError> {
    let found = match kind {
        Kind::Role => cx
            .iam
            .role_entry(name)
            .map(|e| (e.record.inline_policies.clone(), e.record.attached.clone())),
        Kind::User => cx
            .iam
            .user_entry(name)
            .map(|e| (e.record.inline_policies.clone(), e.record.attached.clone())),
    };
    found.ok_or_else(|| kind.not_found(name))
}

async fn edit(
    cx: &Ctx<'_>,
    kind: Kind,
    name: &str,
    mut change: impl FnMut(&mut dyn Holder, &mut Extra<QueryError>) -> Result<Outcome, QueryError>,
) -> Result<(), QueryError> {
    let not_found = || kind.not_found(name);
    match kind {
        Kind::Role => {
            let key = records::role_key(name);
            store::edit(&cx.state.store, &key, not_found, |r: &mut RoleRecord, x| {
                Ok((change(r, x)?, ()))
            })
            .await?;
        }
        Kind::User => {
            let key = records::user_key(name);
            store::edit(&cx.state.store, &key, not_found, |u: &mut UserRecord, x| {
                Ok((change(u, x)?, ()))
            })
            .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::policy_path;

    #[test]
    fn policy_paths_come_from_the_arn() {
        assert_eq!(
            policy_path("arn:aws:iam::aws:policy/AdministratorAccess"),
            "/"
        );
        assert_eq!(
            policy_path("arn:aws:iam::123456789012:policy/team/a/P"),
            "/team/a/"
        );
        assert_eq!(policy_path("not-an-arn"), "/");
    }
}
