//! IAM's error codes and statuses (botocore `iam/2010-05-08` error shapes) and its message texts.

use podid_aws::AwsError;

pub(super) fn no_such_entity(message: impl Into<String>) -> AwsError {
    AwsError::new("NoSuchEntity", 404, message)
}

pub(super) fn role_not_found(name: &str) -> AwsError {
    no_such_entity(format!("The role with name {name} cannot be found."))
}

pub(super) fn user_not_found(name: &str) -> AwsError {
    no_such_entity(format!("The user with name {name} cannot be found."))
}

/// GetRolePolicy / GetUserPolicy / Delete…Policy on a missing inline policy.
pub(super) fn inline_not_found(kind: &str, policy: &str) -> AwsError {
    no_such_entity(format!(
        "The {kind} policy with name {policy} cannot be found."
    ))
}

pub(super) fn policy_not_found(arn: &str) -> AwsError {
    no_such_entity(format!("Policy {arn} was not found."))
}

pub(super) fn policy_not_attachable(arn: &str) -> AwsError {
    no_such_entity(format!("Policy {arn} does not exist or is not attachable."))
}

pub(super) fn access_key_not_found(id: &str) -> AwsError {
    no_such_entity(format!("The Access Key with id {id} cannot be found."))
}

pub(super) fn already_exists(message: impl Into<String>) -> AwsError {
    AwsError::new("EntityAlreadyExists", 409, message)
}

pub(super) fn delete_conflict(message: &str) -> AwsError {
    AwsError::new("DeleteConflict", 409, message)
}

pub(super) fn limit_exceeded(message: impl Into<String>) -> AwsError {
    AwsError::new("LimitExceeded", 409, message)
}

pub(super) fn malformed(e: &podid_iam::PolicyError) -> AwsError {
    AwsError::new("MalformedPolicyDocument", 400, e.aws_message())
}

pub(super) fn invalid_input(message: impl Into<String>) -> AwsError {
    AwsError::new("InvalidInput", 400, message)
}

/// The query protocol's constraint-violation error, worded as IAM words it.
pub(super) fn validation(value: &str, member: &str, constraint: &str) -> AwsError {
    AwsError::new(
        "ValidationError",
        400,
        format!(
            "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {constraint}"
        ),
    )
}

/// A store failure: the detail goes to the log, the caller gets IAM's ServiceFailure.
pub(super) fn service_failure(what: &str, error: &dyn std::fmt::Display) -> AwsError {
    tracing::error!(%error, what, "iam store operation failed");
    AwsError::new(
        "ServiceFailure",
        500,
        "Request processing has failed due to an unknown error, exception or failure.",
    )
}

pub(super) fn contention() -> AwsError {
    AwsError::new(
        "ConcurrentModification",
        409,
        "Too many concurrent modifications of this entity; try again.",
    )
}
