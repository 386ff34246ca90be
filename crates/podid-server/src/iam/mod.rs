//! Local IAM (query protocol, botocore `iam/2010-05-08`): roles, users, access keys, inline and
//! managed policies, the bundled AWS managed-policy catalog, and SimulatePrincipalPolicy.
//!
//! Records live in the store under `iam/` ([`records`]); [`Iam`] is their in-memory index,
//! followed like every other index ([`IamIndex`]), and answers the lookups the credential and
//! authorization paths need (access keys, roles, the identity policies of a principal) without
//! touching the store. Handlers write with compare-and-swap transactions ([`store`]) and wait
//! until the index reflects their write.

mod catalog;
mod errors;
mod handlers;
mod index;
mod input;
mod managed;
mod principals;
mod records;
mod roles;
mod simulate;
mod store;
mod users;
mod xml;

#[cfg(test)]
mod tests;

use axum::response::Response;
use podid_aws::AwsError;

// `AccessKeyRecord` is what `Iam::access_key` returns; re-exported for callers that name it.
#[allow(unused_imports)]
pub(crate) use index::AccessKeyRecord;
pub(crate) use index::{Iam, IamIndex, RoleView};
pub(crate) use users::ensure_admin_user;

use crate::auth::RequestInfo;
use crate::query::QueryRequest;
use crate::state::AppState;
use handlers::Ctx;
use principals::Kind;

/// Runs one IAM action, after authorizing it against the caller's identity policies.
pub(crate) async fn dispatch(
    state: &AppState,
    info: &RequestInfo,
    request: &QueryRequest,
) -> Result<Response, AwsError> {
    let cx = Ctx {
        iam: &state.iam,
        state,
        info,
        q: request,
    };
    match request.action.as_str() {
        "CreateRole" => roles::create(&cx).await,
        "GetRole" => roles::get(&cx),
        "DeleteRole" => roles::delete(&cx).await,
        "ListRoles" => roles::list(&cx),
        "UpdateAssumeRolePolicy" => roles::update_trust(&cx).await,
        "TagRole" => roles::tag(&cx).await,
        "UntagRole" => roles::untag(&cx).await,
        "ListRoleTags" => roles::list_tags(&cx),
        "PutRolePolicy" => principals::put_inline(&cx, Kind::Role).await,
        "GetRolePolicy" => principals::get_inline(&cx, Kind::Role),
        "DeleteRolePolicy" => principals::delete_inline(&cx, Kind::Role).await,
        "ListRolePolicies" => principals::list_inline(&cx, Kind::Role),
        "AttachRolePolicy" => principals::attach(&cx, Kind::Role).await,
        "DetachRolePolicy" => principals::detach(&cx, Kind::Role).await,
        "ListAttachedRolePolicies" => principals::list_attached(&cx, Kind::Role),
        "PutUserPolicy" => principals::put_inline(&cx, Kind::User).await,
        "GetUserPolicy" => principals::get_inline(&cx, Kind::User),
        "DeleteUserPolicy" => principals::delete_inline(&cx, Kind::User).await,
        "ListUserPolicies" => principals::list_inline(&cx, Kind::User),
        "AttachUserPolicy" => principals::attach(&cx, Kind::User).await,
        "DetachUserPolicy" => principals::detach(&cx, Kind::User).await,
        "ListAttachedUserPolicies" => principals::list_attached(&cx, Kind::User),
        "CreatePolicy" => managed::create(&cx).await,
        "GetPolicy" => managed::get(&cx),
        "GetPolicyVersion" => managed::get_version(&cx),
        "DeletePolicy" => managed::delete(&cx).await,
        "CreateUser" => users::create(&cx).await,
        "GetUser" => users::get(&cx),
        "DeleteUser" => users::delete(&cx).await,
        "ListUsers" => users::list(&cx),
        "CreateAccessKey" => users::create_key(&cx).await,
        "DeleteAccessKey" => users::delete_key(&cx).await,
        "ListAccessKeys" => users::list_keys(&cx),
        "SimulatePrincipalPolicy" => simulate::simulate(&cx),
        other => Err(AwsError::new(
            "InvalidAction",
            400,
            format!("Could not find operation {other} for version 2010-05-08"),
        )),
    }
}
