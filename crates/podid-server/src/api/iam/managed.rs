//! Managed policies: CreatePolicy (customer managed, one version `v1`), GetPolicy,
//! GetPolicyVersion, DeletePolicy. AWS managed policies come from the read-only catalog.

use crate::protocol::query::QueryError;
use axum::response::Response;
use podid_iam::Policy;

use super::errors::{
    already_exists, delete_conflict, generation_failed, invalid_input, malformed, no_such_entity,
    policy_not_found, quota_exceeded,
};
use super::handlers::Ctx;
use super::input;
use super::principals::{MAX_POLICY_NAME, policy_arn};
use super::wire::{self, GetPolicyVersionResult, PolicyResult, PolicyVersion};
use crate::domain::iam::catalog;
use crate::domain::iam::index::Table;
use crate::domain::iam::records::{self, PolicyRecord};
use crate::domain::iam::store;

/// IAM's managed-policy size quota, in characters without whitespace.
const MAX_MANAGED_POLICY_CHARS: usize = 6144;

pub(super) async fn create(cx: &Ctx<'_>) -> Result<Response, QueryError> {
    let name = input::name(cx.q, "PolicyName", MAX_POLICY_NAME)?;
    let path = input::path(cx.q)?;
    let arn = records::arn(cx.account(), "policy", &path, name);
    cx.authorize(&arn)?;
    let text = cx.q.require("PolicyDocument")?;
    if text.chars().filter(|c| !c.is_whitespace()).count() > MAX_MANAGED_POLICY_CHARS {
        return Err(quota_exceeded("PolicySize", MAX_MANAGED_POLICY_CHARS));
    }
    let policy = Policy::parse(text).map_err(|e| malformed(&e))?;
    policy.check_identity_policy().map_err(|e| malformed(&e))?;
    let description = input::description(cx.q)?;
    let tags = input::tags(cx.q)?;
    let exists = || {
        already_exists(format!(
            "A policy called {name} already exists. Duplicate names are not allowed."
        ))
    };
    if cx.iam.name_taken(Table::Policy, name) {
        return Err(exists());
    }
    let record = PolicyRecord {
        name: name.to_owned(),
        path,
        policy_id: records::unique_id("ANPA").map_err(|e| generation_failed(&e))?,
        arn,
        description,
        create_date: records::now_iso(),
        document: text.to_owned(),
        tags,
    };
    store::create(
        &cx.state.store,
        records::policy_key(name),
        &record,
        exists(),
    )
    .await?;
    tracing::info!(policy = name, "iam policy created");
    cx.reply(&PolicyResult {
        policy: wire::Policy::customer(&record, 0),
    })
}

pub(super) fn get(cx: &Ctx<'_>) -> Result<Response, QueryError> {
    let arn = policy_arn(cx)?;
    cx.authorize(arn)?;
    let attachments = cx.iam.attachment_count(arn);
    if let Some(p) = cx.iam.catalog_policy(arn) {
        return cx.reply(&PolicyResult {
            policy: wire::Policy::aws(p, attachments),
        });
    }
    let p = cx
        .iam
        .customer_policy(arn)
        .ok_or_else(|| policy_not_found(arn))?;
    cx.reply(&PolicyResult {
        policy: wire::Policy::customer(&p.record, attachments),
    })
}

pub(super) fn get_version(cx: &Ctx<'_>) -> Result<Response, QueryError> {
    let arn = policy_arn(cx)?;
    let version = cx.q.require("VersionId")?;
    cx.authorize(arn)?;
    let (document, date) = match cx.iam.catalog_policy(arn) {
        Some(p) => (p.policy.text().to_owned(), catalog::CREATE_DATE.to_owned()),
        None => {
            let p = cx
                .iam
                .customer_policy(arn)
                .ok_or_else(|| policy_not_found(arn))?;
            (p.record.document.clone(), p.record.create_date.clone())
        }
    };
    if version != catalog::VERSION_ID {
        return Err(no_such_entity(format!(
            "Policy {arn} version {version} does not exist or is not attachable."
        )));
    }
    cx.reply(&GetPolicyVersionResult {
        policy_version: PolicyVersion::new(&document, &date),
    })
}

pub(super) async fn delete(cx: &Ctx<'_>) -> Result<Response, QueryError> {
    let arn = policy_arn(cx)?;
    cx.authorize(arn)?;
    if cx.iam.catalog_policy(arn).is_some() {
        return Err(invalid_input(format!(
            "Policy {arn} is an AWS managed policy and cannot be deleted."
        )));
    }
    let p = cx
        .iam
        .customer_policy(arn)
        .ok_or_else(|| policy_not_found(arn))?;
    // Checked on the index: an attachment racing this delete is skipped at lookup time.
    if cx.iam.attachment_count(arn) > 0 {
        return Err(delete_conflict(
            "Cannot delete a policy attached to entities.",
        ));
    }
    store::delete(
        &cx.state.store,
        records::policy_key(&p.record.name),
        policy_not_found(arn),
    )
    .await?;
    tracing::info!(policy = %p.record.name, "iam policy deleted");
    cx.empty()
}
