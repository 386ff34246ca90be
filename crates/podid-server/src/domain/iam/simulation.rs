//! Policy simulation (what SimulatePrincipalPolicy reports): every (action, resource) pair
//! evaluated against a principal's policies, and where each statement sits in its document's
//! text, so a result can point at the statements that decided it.

use podid_iam::{Evaluation, Policy, PrincipalInfo, RequestContext, evaluate};
use time::OffsetDateTime;

use super::NamedPolicy;

/// Evaluates `policies` for every action on every resource, in action-major order.
pub(crate) fn evaluate_all<'a>(
    principal: &PrincipalInfo,
    policies: &[NamedPolicy],
    actions: &[&'a str],
    resources: &[&'a str],
    context: &[(String, Vec<String>)],
    now: OffsetDateTime,
) -> Vec<(&'a str, &'a str, Evaluation)> {
    let refs: Vec<&Policy> = policies.iter().map(|p| &p.policy).collect();
    let mut results = Vec::with_capacity(actions.len().saturating_mul(resources.len()));
    for action in actions {
        for resource in resources {
            let mut req = RequestContext::new(principal.clone(), action)
                .with_resource(resource)
                .with_time(now);
            for (key, values) in context {
                req.set(key, values.clone());
            }
            results.push((*action, *resource, evaluate(&refs, &req)));
        }
    }
    results
}

/// A 1-based line and column in a policy document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Position {
    pub(crate) line: usize,
    pub(crate) column: usize,
}

impl Default for Position {
    fn default() -> Self {
        Self { line: 1, column: 1 }
    }
}

/// Where each statement object of a document starts (its `{`) and ends (just after its `}`),
/// in statement order. A scan of the raw text: strings and escapes are skipped, and only the
/// root object's `Statement` member is looked at.
pub(crate) fn statement_positions(text: &str) -> Vec<(Position, Position)> {
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
