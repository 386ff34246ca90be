//! Shared helpers for the table-driven suites.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    dead_code,
    unreachable_pub,
    unused_imports
)]

use podid_iam::{Decision, Evaluation, Policy, PrincipalInfo, RequestContext};

pub const ACCT: &str = "111122223333";
pub const OTHER: &str = "444455556666";

pub fn pol(json: &str) -> Policy {
    match Policy::parse(json) {
        Ok(p) => p,
        Err(e) => panic!("policy should parse: {e}\n{json}"),
    }
}

pub fn alice() -> PrincipalInfo {
    PrincipalInfo::user(&format!("arn:aws:iam::{ACCT}:user/alice"))
}

pub fn user(acct: &str, name: &str) -> PrincipalInfo {
    PrincipalInfo::user(&format!("arn:aws:iam::{acct}:user/{name}"))
}

pub fn session(acct: &str, role: &str, name: &str) -> PrincipalInfo {
    PrincipalInfo::assumed_role(
        &format!("arn:aws:sts::{acct}:assumed-role/{role}/{name}"),
        &format!("arn:aws:iam::{acct}:role/{role}"),
    )
}

pub fn req(p: PrincipalInfo, action: &str, resource: &str) -> RequestContext {
    RequestContext::new(p, action).with_resource(resource)
}

/// One row: a name, the request, and the decision the AWS documentation gives.
pub type Row = (&'static str, RequestContext, Decision);

/// Runs every row, reporting all failures at once.
pub fn run(group: &str, eval: impl Fn(&RequestContext) -> Evaluation, rows: Vec<Row>) -> usize {
    let n = rows.len();
    let failures: Vec<String> = rows
        .into_iter()
        .filter_map(|(name, r, want)| {
            let got = eval(&r).decision;
            (got != want).then(|| format!("{group}/{name}: want {want:?}, got {got:?}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {n} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    n
}

pub use Decision::{Allowed as A, ExplicitDeny as D, ImplicitDeny as I};

/// Rows that each carry their own identity policy.
pub fn run_each(group: &str, rows: Vec<(&'static str, Policy, RequestContext, Decision)>) -> usize {
    let n = rows.len();
    let failures: Vec<String> = rows
        .into_iter()
        .filter_map(|(name, p, r, want)| {
            let got = podid_iam::evaluate(&[&p], &r).decision;
            (got != want).then(|| format!("{group}/{name}: want {want:?}, got {got:?}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {n} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    n
}
