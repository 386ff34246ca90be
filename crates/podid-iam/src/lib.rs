//! The IAM policy language: parsing policy documents and evaluating requests against them.
//!
//! Owns: the policy grammar (Version, Statement, Effect, Principal/NotPrincipal,
//! Action/NotAction, Resource/NotResource, Condition with every operator, `IfExists`,
//! `ForAnyValue:`/`ForAllValues:`), policy variables (`${aws:username}`, defaults,
//! `${*}`/`${?}`/`${$}`), wildcard and ARN matching, and the evaluation logic for
//! identity-based policies, resource-based (trust) policies and session policies.
//!
//! Does not own: any I/O, storage of policies, the AWS wire error format, or building the
//! request context from a signed request. It does no allocation-heavy work per request:
//! every pattern is pre-compiled by [`Policy::parse`], and a [`Policy`] is immutable,
//! `Clone + Send + Sync`, so callers parse once and evaluate many times.
//!
//! ```
//! use podid_iam::{evaluate_resource_policy, Decision, Policy, PrincipalInfo, RequestContext};
//!
//! let trust = Policy::parse(r#"{
//!   "Version": "2012-10-17",
//!   "Statement": [{
//!     "Effect": "Allow",
//!     "Principal": {"Service": "pods.eks.amazonaws.com"},
//!     "Action": ["sts:AssumeRole", "sts:TagSession"]
//!   }]
//! }"#)?;
//! let req = RequestContext::new(PrincipalInfo::service("pods.eks.amazonaws.com"), "sts:AssumeRole");
//! assert_eq!(evaluate_resource_policy(&trust, &req).decision, Decision::Allowed);
//! # Ok::<(), podid_iam::PolicyError>(())
//! ```
#![forbid(unsafe_code)]

mod condition;
mod context;
mod eval;
mod policy;
mod principal;
mod variables;
mod wildcard;

pub use context::{PrincipalInfo, PrincipalKind, RequestContext};
pub use eval::{
    Decision, Evaluation, MatchedStatement, PolicySource, evaluate, evaluate_resource_policy,
    evaluate_with_session_policies,
};
pub use policy::{
    Effect, MAX_POLICY_BYTES, MAX_POLICY_DEPTH, MAX_POLICY_ELEMENTS, MAX_STATEMENTS, Policy,
    PolicyVersion, Statement,
};

/// Why a policy document was refused. Messages are lowercase; [`PolicyError::aws_message`]
/// gives the text IAM puts in a `MalformedPolicyDocument` error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The document exceeds [`MAX_POLICY_BYTES`].
    #[error("policy document is larger than {max} bytes")]
    TooLarge {
        /// The cap that was exceeded.
        max: usize,
    },
    /// The document is not JSON.
    #[error("policy document is not valid json")]
    InvalidJson(#[source] serde_json::Error),
    /// The document nests too deeply or holds too many elements or statements.
    #[error("policy document exceeds the {0} limit")]
    TooComplex(&'static str),
    /// `Version` is neither `2012-10-17` nor `2008-10-17`.
    #[error("unsupported policy version {0:?}")]
    UnsupportedVersion(String),
    /// An element the grammar does not have.
    #[error("unknown policy element {0:?}")]
    UnknownElement(String),
    /// A structural error described by the message.
    #[error("syntax error in policy: {0}")]
    Syntax(&'static str),
    /// No statement at all.
    #[error("policy has no statement")]
    MissingStatement,
    /// A statement without `Effect`.
    #[error("statement has no Effect")]
    MissingEffect,
    /// `Effect` other than `Allow` or `Deny`.
    #[error("invalid effect {0:?}")]
    InvalidEffect(String),
    /// A statement with neither `Action` nor `NotAction` (or an empty list).
    #[error("statement has no Action or NotAction")]
    MissingAction,
    /// A statement holding both forms of an element, e.g. `Action` and `NotAction`.
    #[error("statement has both {0}")]
    Conflicting(&'static str),
    /// An action that is neither `*` nor `service:action`.
    #[error("invalid action {0:?}")]
    InvalidAction(String),
    /// A resource that is neither `*` nor an ARN.
    #[error("invalid resource {0:?}")]
    InvalidResource(String),
    /// A malformed Principal/NotPrincipal entry.
    #[error("invalid principal {0}")]
    InvalidPrincipal(String),
    /// A condition operator IAM does not have.
    #[error("unknown condition operator {0:?}")]
    UnknownConditionOperator(String),
    /// A condition value that is not a string, number, boolean or array of them.
    #[error("invalid value for condition key {0:?}")]
    InvalidConditionValue(String),
    /// An identity-based policy with a Principal ([`Policy::check_identity_policy`]).
    #[error("identity-based policy has a Principal")]
    PrincipalNotAllowed,
    /// A resource-based policy statement without Principal ([`Policy::check_resource_policy`]).
    #[error("resource-based policy statement has no Principal")]
    MissingPrincipal,
    /// An identity-based policy statement without Resource ([`Policy::check_identity_policy`]).
    #[error("identity-based policy statement has no Resource")]
    MissingResource,
}

impl PolicyError {
    /// The message IAM returns with `MalformedPolicyDocument` for this problem, where
    /// IAM has a specific one; otherwise its generic "Syntax errors in policy.".
    pub fn aws_message(&self) -> String {
        match self {
            Self::TooLarge { max } => format!("Cannot exceed quota for PolicySize: {max}"),
            Self::InvalidJson(_) => "This policy contains invalid Json".into(),
            Self::UnsupportedVersion(_) => "The policy must contain a valid version string".into(),
            Self::MissingEffect => "Missing required field Effect".into(),
            Self::MissingAction => "Policy statement must contain actions.".into(),
            Self::MissingResource => "Policy statement must contain resources.".into(),
            Self::MissingPrincipal => "Missing required field Principal".into(),
            Self::PrincipalNotAllowed => "Policy document should not specify a principal.".into(),
            Self::InvalidPrincipal(p) => format!("Invalid principal in policy: {p}"),
            Self::InvalidAction(_) => {
                "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.".into()
            }
            Self::UnknownConditionOperator(op) => format!("Invalid Condition type : {op}."),
            Self::TooComplex(_)
            | Self::UnknownElement(_)
            | Self::Syntax(_)
            | Self::MissingStatement
            | Self::InvalidEffect(_)
            | Self::Conflicting(_)
            | Self::InvalidResource(_)
            | Self::InvalidConditionValue(_) => "Syntax errors in policy.".into(),
        }
    }
}
