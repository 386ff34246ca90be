//! SimulatePrincipalPolicy: evaluates a user's or role's identity policies (plus any
//! `PolicyInputList` documents) for each action and resource, reporting the statements that
//! decided each result with their positions in the document text.
//!
//! Not simulated: permissions boundaries, resource policies, SCPs, `CallerArn`. The
//! `MissingContextValues` list is always empty (the engine does not report which condition keys
//! it could not find).

use axum::response::Response;
use podid_aws::AwsError;
use podid_aws::xml::XmlWriter;
use podid_iam::{
    Decision, Evaluation, Policy, PolicySource, PrincipalInfo, RequestContext, evaluate,
};

use super::errors::{invalid_input, role_not_found, user_not_found};
use super::handlers::Ctx;
use super::index::NamedPolicy;

/// Most (action, resource) pairs one call evaluates: bounds the work and the response size.
const MAX_EVALUATIONS: usize = 1000;

pub(super) fn simulate(cx: &Ctx<'_>) -> Result<Response, AwsError> {
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
    let refs: Vec<&Policy> = policies.iter().map(|p| &p.policy).collect();
    let now = time::OffsetDateTime::now_utc();
    let mut results = Vec::with_capacity(actions.len() * resources.len());
    for action in &actions {
        for resource in &resources {
            let mut req = RequestContext::new(principal.clone(), action)
                .with_resource(resource)
                .with_time(now);
            for (key, values) in &context {
                req.set(key, values.clone());
            }
            results.push((*action, *resource, evaluate(&refs, &req)));
        }
    }
    cx.reply(|w| {
        w.open("EvaluationResults");
        for (action, resource, eval) in &results {
            result(w, action, resource, eval, &policies, &spans);
        }
        w.close("EvaluationResults");
        w.leaf("IsTruncated", "false");
    })
}

/// The simulated principal and its own policies, from a user or role ARN.
fn principal(cx: &Ctx<'_>, arn: &str) -> Result<(PrincipalInfo, Vec<NamedPolicy>), AwsError> {
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

fn result(
    w: &mut XmlWriter,
    action: &str,
    resource: &str,
    eval: &Evaluation,
    policies: &[NamedPolicy],
    spans: &[Vec<(Position, Position)>],
) {
    w.open("member");
    w.leaf("EvalActionName", action);
    w.leaf("EvalResourceName", resource);
    w.leaf("EvalDecision", decision(eval.decision));
    w.open("MatchedStatements");
    for m in &eval.matched_statements {
        w.open("member");
        w.leaf_opt(
            "SourcePolicyId",
            policies.get(m.policy_index).map(|p| p.source_id.as_str()),
        );
        w.leaf("SourcePolicyType", source_type(m.source));
        let (start, end) = spans
            .get(m.policy_index)
            .and_then(|s| s.get(m.statement_index))
            .copied()
            .unwrap_or_default();
        position(w, "StartPosition", start);
        position(w, "EndPosition", end);
        w.close("member");
    }
    w.close("MatchedStatements");
    w.open("MissingContextValues");
    w.close("MissingContextValues");
    w.close("member");
}

pub(super) fn decision(d: Decision) -> &'static str {
    match d {
        Decision::Allowed => "allowed",
        Decision::ExplicitDeny => "explicitDeny",
        Decision::ImplicitDeny => "implicitDeny",
    }
}

/// What IAM puts in `SourcePolicyType` (the botocore enum lists `user`, `role`, … but the
/// service answers with these labels).
fn source_type(s: PolicySource) -> &'static str {
    match s {
        PolicySource::Identity | PolicySource::Session => "IAM Policy",
        PolicySource::Resource => "Resource Policy",
    }
}

/// A 1-based line and column in a policy document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Position {
    pub(super) line: usize,
    pub(super) column: usize,
}

impl Default for Position {
    fn default() -> Self {
        Self { line: 1, column: 1 }
    }
}

fn position(w: &mut XmlWriter, element: &str, p: Position) {
    w.open(element);
    w.leaf("Line", &p.line.to_string());
    w.leaf("Column", &p.column.to_string());
    w.close(element);
}

/// Where each statement object of a document starts (its `{`) and ends (just after its `}`),
/// in statement order. A scan of the raw text: strings and escapes are skipped, and only the
/// root object's `Statement` member is looked at.
pub(super) fn statement_positions(text: &str) -> Vec<(Position, Position)> {
    statement_spans(text)
        .into_iter()
        .map(|(s, e)| (locate(text, s), locate(text, e.saturating_add(1))))
        .collect()
}

fn statement_spans(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let (mut i, mut depth) = (0usize, 0usize);
    let (mut key_is_statement, mut value_next, mut in_array) = (false, false, false);
    let mut open: Option<(usize, usize)> = None;
    let mut spans = Vec::new();
    while let Some(&c) = b.get(i) {
        match c {
            b'"' => {
                let end = skip_string(b, i);
                if depth == 1 && !value_next {
                    key_is_statement = text.get(i + 1..end.saturating_sub(1)) == Some("Statement");
                }
                i = end;
                continue;
            }
            b':' if depth == 1 => value_next = key_is_statement,
            b',' if depth == 1 => value_next = false,
            b'{' | b'[' => {
                depth += 1;
                if value_next && depth == 2 {
                    if c == b'[' {
                        in_array = true;
                    } else {
                        open = Some((i, depth));
                    }
                    value_next = false;
                } else if in_array && depth == 3 && c == b'{' && open.is_none() {
                    open = Some((i, depth));
                }
            }
            b'}' | b']' => {
                if let Some((start, d)) = open
                    && d == depth
                    && c == b'}'
                {
                    spans.push((start, i));
                    open = None;
                }
                if in_array && depth == 2 && c == b']' {
                    in_array = false;
                }
                depth = depth.saturating_sub(1);
            }
            _ => {}
        }
        i += 1;
    }
    spans
}

/// The index just after the string starting at `start` (a `"`).
fn skip_string(b: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while let Some(&c) = b.get(i) {
        match c {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

fn locate(text: &str, offset: usize) -> Position {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Position { line, column }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_skip_strings_and_nested_objects() {
        let doc = "{\n  \"Version\": \"2012-10-17\",\n  \"Id\": \"Statement\",\n  \"Statement\": [\n    {\"Sid\": \"a}\\\"{\", \"Effect\": \"Allow\", \"Action\": \"s3:*\", \"Resource\": \"*\", \"Condition\": {\"Bool\": {\"aws:SecureTransport\": \"true\"}}},\n    {\"Effect\": \"Deny\", \"Action\": \"s3:Delete*\", \"Resource\": \"*\"}\n  ]\n}";
        let p = statement_positions(doc);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].0, Position { line: 5, column: 5 });
        assert_eq!(p[1].0, Position { line: 6, column: 5 });
        let line6 = doc.lines().nth(5).unwrap();
        assert_eq!(
            p[1].1,
            Position {
                line: 6,
                column: line6.chars().count() + 1
            }
        );
    }

    #[test]
    fn single_statement_object_and_garbage() {
        let p = statement_positions(
            r#"{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}"#,
        );
        assert_eq!(
            p,
            vec![(
                Position {
                    line: 1,
                    column: 15
                },
                Position {
                    line: 1,
                    column: 66
                }
            )]
        );
        assert!(statement_positions("{\"Statement\": [ {\"a\": \"\\").is_empty());
        assert!(statement_positions("").is_empty());
    }
}
