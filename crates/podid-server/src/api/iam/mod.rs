//! Local IAM (query protocol, botocore `iam/2010-05-08`): roles, users, access keys, inline and
//! managed policies, the bundled AWS managed-policy catalog, and SimulatePrincipalPolicy.
//!
//! The entity model, its records and its in-memory index live in [`crate::domain::iam`]; these
//! handlers read the index, authorize, validate the botocore shapes' constraints ([`input`]),
//! write through the domain's compare-and-swap helper, and answer with [`wire`]'s shapes.

mod audit;
mod errors;
mod handlers;
pub(in crate::api) mod input;
mod managed;
mod principals;
mod roles;
mod simulate;
mod users;
mod wire;

#[cfg(test)]
mod tests;

use axum::response::Response;

pub(crate) use users::ensure_admin_user;

use crate::api::ApiState;
use crate::domain::caller::RequestInfo;
use crate::protocol::query::{QueryError, QueryRequest};
use handlers::Ctx;
use principals::Kind;

/// The API version every IAM request names.
const VERSION: &str = "2010-05-08";

/// Runs one IAM action, after authorizing it against the caller's identity policies, and
/// records its audit event when it is a write or was denied.
pub(crate) async fn dispatch(
    state: &ApiState,
    info: &RequestInfo,
    request: &QueryRequest,
) -> Result<Response, QueryError> {
    let mut result = run(state, info, request).await;
    if !matches!(result, Err(QueryError::InvalidAction { .. })) {
        audit::record(state, info, request, &mut result);
    }
    result
}

async fn run(
    state: &ApiState,
    info: &RequestInfo,
    request: &QueryRequest,
) -> Result<Response, QueryError> {
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
        other => Err(QueryError::InvalidAction {
            action: other.to_owned(),
            version: VERSION,
        }),
    }
}
