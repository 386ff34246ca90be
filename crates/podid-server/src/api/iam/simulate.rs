//! SimulatePrincipalPolicy: evaluates a user's or role's identity policies (plus any
//! `PolicyInputList` documents) for each action and resource, reporting the statements that
//! decided each result with their positions in the document text.
//!
//! Not simulated: permissions boundaries, resource policies, SCPs, `CallerArn`. The
//! `MissingContextValues` list is always empty (the engine does not report which condition keys
//! it could not find).

use crate::protocol::query::QueryError;
use axum::response::Response;
use podid_iam::{Evaluation, Policy, PrincipalInfo};

use super::errors::{invalid_input, role_not_found, user_not_found};
use super::handlers::Ctx;
use super::wire::{EvaluationResult, SimulatePrincipalPolicyResult, Statement};
use crate::domain::iam::NamedPolicy;
use crate::domain::iam::simulation::{self, Position, statement_positions};

/// Most (action, resource) pairs one call evaluates: bounds the work and the response size.
const MAX_EVALUATIONS: usize = 1000;

pub(super) fn simulate(cx: &Ctx<'_>) -> Result<Response, QueryError> {
    let source = cx.q.require("PolicySourceArn")?;
    cx.authorize(source)?;
    let (principal, mut policies) = principal(cx, source)?;
    for (i, text) in cx.q.list("PolicyInputList").into_iter().enumerate() {
        let policy = Policy::parse(text).map_err(|e| invalid_input(e.aws_message()))?;
        policy
            .check_identity_policy()
            .map_err(|e| invalid_input(e.aws_message()))?;
        policies.push(NamedPolicy {
            source_id: format!("PolicyInputList.{}", i + 1),
            policy,
        });
    }
    let actions = cx.q.list("ActionNames");
    if actions.is_empty() {
        return Err(cx
            .q
            .require("ActionNames.member.1")
            .err()
            .unwrap_or_else(|| invalid_input("ActionNames is empty")));
    }
    let mut resources = cx.q.list("ResourceArns");
    if resources.is_empty() {
        resources.push("*");
    }
    if actions.len().saturating_mul(resources.len()) > MAX_EVALUATIONS {
        return Err(invalid_input(format!(
            "At most {MAX_EVALUATIONS} action and resource combinations can be simulated at once."
        )));
    }
    let context = context_entries(cx);
    let spans: Vec<Vec<(Position, Position)>> = policies
        .iter()
        .map(|p| statement_positions(p.policy.text()))
        .collect();
    let results = simulation::evaluate_all(
        &principal,
        &policies,
        &actions,
        &resources,
        &context,
        time::OffsetDateTime::now_utc(),
    );
    cx.reply(&SimulatePrincipalPolicyResult {
        evaluation_results: results
            .iter()
            .map(|(action, resource, eval)| result(action, resource, eval, &policies, &spans))
            .collect(),
        is_truncated: false,
    })
}

/// The simulated principal and its own policies, from a user or role ARN.
fn principal(cx: &Ctx<'_>, arn: &str) -> Result<(PrincipalInfo, Vec<NamedPolicy>), QueryError> {
    let resource = arn.splitn(6, ':').nth(5).unwrap_or_default();
    let name = resource.rsplit('/').next().unwrap_or_default();
    if resource.starts_with("user/") {
        let u = cx
            .iam
            .user_entry(name)
            .filter(|u| u.record.arn == arn)
            .ok_or_else(|| user_not_found(name))?;
        let p = PrincipalInfo::user(arn).with_userid(&u.record.user_id);
        return Ok((p, cx.iam.named_user_policies(name)));
    }
    if resource.starts_with("role/") {
        let r = cx
            .iam
            .role_entry(name)
            .filter(|r| r.record.arn == arn)
            .ok_or_else(|| role_not_found(name))?;
        let p = PrincipalInfo::role(arn).with_userid(&r.record.role_id);
        return Ok((p, cx.iam.named_role_policies(name)));
    }
    Err(invalid_input(format!(
        "Invalid ARN: {arn} is not the ARN of a user or role."
    )))
}

/// `ContextEntries.member.N.{ContextKeyName, ContextKeyValues.member.M}`; types are not needed
/// because every condition operator parses its own operand.
fn context_entries(cx: &Ctx<'_>) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for fields in cx.q.struct_list("ContextEntries") {
        let Some((_, name)) = fields.iter().find(|(k, _)| *k == "ContextKeyName") else {
            continue;
        };
        let mut values: Vec<(usize, String)> = fields
            .iter()
            .filter_map(|(k, v)| {
                Some((
                    k.strip_prefix("ContextKeyValues.member.")?.parse().ok()?,
                    (*v).to_owned(),
                ))
            })
            .collect();
        values.sort_by_key(|(i, _)| *i);
        out.push((
            (*name).to_owned(),
            values.into_iter().map(|(_, v)| v).collect(),
        ));
    }
    out
}

/// One `EvaluationResult`, its matched statements located by `spans` (per policy, per
/// statement).
fn result<'a>(
    action: &'a str,
    resource: &'a str,
    eval: &Evaluation,
    policies: &'a [NamedPolicy],
    spans: &[Vec<(Position, Position)>],
) -> EvaluationResult<'a> {
    let matched_statements = eval
        .matched_statements
        .iter()
        .map(|m| {
            let (start, end) = spans
                .get(m.policy_index)
                .and_then(|s| s.get(m.statement_index))
                .copied()
                .unwrap_or_default();
            Statement {
                source_policy_id: policies.get(m.policy_index).map(|p| p.source_id.as_str()),
                source_policy_type: m.source.into(),
                start_position: start.into(),
                end_position: end.into(),
            }
        })
        .collect();
    EvaluationResult {
        eval_action_name: action,
        eval_resource_name: resource,
        eval_decision: eval.decision.into(),
        matched_statements,
        missing_context_values: Vec::new(),
    }
}
