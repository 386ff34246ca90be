//! IAM's refusals (botocore `iam/2010-05-08` error shapes) with IAM's message texts, as
//! [`QueryError`]s; the query codec turns them into wire errors.

use crate::domain::iam::store::StoreFailure;
use crate::protocol::query::QueryError;

pub(super) fn no_such_entity(message: impl Into<String>) -> QueryError {
    QueryError::NoSuchEntity(message.into())
}

pub(super) fn role_not_found(name: &str) -> QueryError {
    no_such_entity(format!("The role with name {name} cannot be found."))
}

pub(super) fn user_not_found(name: &str) -> QueryError {
    no_such_entity(format!("The user with name {name} cannot be found."))
}

/// GetRolePolicy / GetUserPolicy / Delete…Policy on a missing inline policy.
pub(super) fn inline_not_found(kind: &str, policy: &str) -> QueryError {
    no_such_entity(format!(
        "The {kind} policy with name {policy} cannot be found."
    ))
}

pub(super) fn policy_not_found(arn: &str) -> QueryError {
    no_such_entity(format!("Policy {arn} was not found."))
}

pub(super) fn policy_not_attachable(arn: &str) -> QueryError {
    no_such_entity(format!("Policy {arn} does not exist or is not attachable."))
}

pub(super) fn access_key_not_found(id: &str) -> QueryError {
    no_such_entity(format!("The Access Key with id {id} cannot be found."))
}

pub(super) fn already_exists(message: impl Into<String>) -> QueryError {
    QueryError::EntityAlreadyExists(message.into())
}

pub(super) fn delete_conflict(message: &'static str) -> QueryError {
    QueryError::DeleteConflict(message)
}

/// `Cannot exceed quota for <quota>: <limit>`.
pub(super) fn quota_exceeded(quota: &str, limit: usize) -> QueryError {
    QueryError::LimitExceeded(format!("Cannot exceed quota for {quota}: {limit}"))
}

pub(super) fn limit_exceeded(message: String) -> QueryError {
    QueryError::LimitExceeded(message)
}

pub(super) fn malformed(e: &podid_iam::PolicyError) -> QueryError {
    QueryError::MalformedPolicyDocument(e.aws_message())
}

pub(super) fn invalid_input(message: impl Into<String>) -> QueryError {
    QueryError::InvalidInput(message.into())
}

/// The query protocol's constraint-violation error, worded as IAM words it.
pub(super) fn validation(value: &str, member: &str, constraint: &str) -> QueryError {
    QueryError::ConstraintViolation {
        value: value.to_owned(),
        member: member.to_owned(),
        constraint: constraint.to_owned(),
    }
}

/// An id or key could not be generated: the detail goes to the log.
pub(super) fn generation_failed(error: &podid_issuer::Error) -> QueryError {
    tracing::error!(%error, "generating an IAM id or key failed");
    QueryError::ServiceFailure
}

pub(super) fn contention() -> QueryError {
    QueryError::ConcurrentModification
}

impl From<StoreFailure> for QueryError {
    /// A store failure: the detail goes to the log, the caller gets IAM's ServiceFailure (or
    /// ConcurrentModification when writers kept colliding).
    fn from(failure: StoreFailure) -> Self {
        match failure {
            StoreFailure::Contention => Self::ConcurrentModification,
            StoreFailure::Store { .. } | StoreFailure::Codec { .. } | StoreFailure::Seal { .. } => {
                tracing::error!(error = %failure, "iam store operation failed");
                Self::ServiceFailure
            }
        }
    }
}
