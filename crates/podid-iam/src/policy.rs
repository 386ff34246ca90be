//! Parsing policy documents into compiled, immutable [`Policy`] values.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::PolicyError;
use crate::condition::Conditions;
use crate::principal::PrincipalSpec;
use crate::variables::arn_pattern;
use crate::wildcard::{ArnPattern, Glob, tokenize_plain};

/// Largest policy document accepted, in bytes. AWS's own quotas are far smaller
/// (managed policy 6,144 characters, S3 bucket policy 20 KiB); this hard cap stops a
/// caller from making us parse and hold arbitrarily large documents (memory DoS)
/// while leaving room for every policy type AWS stores.
pub const MAX_POLICY_BYTES: usize = 131_072;

/// Deepest JSON nesting the grammar needs: document, Statement array, statement,
/// Condition, operator, key's value array, value. Anything deeper is refused before
/// it is interpreted, so hostile nesting costs nothing further.
pub const MAX_POLICY_DEPTH: usize = 7;

/// Most JSON values (objects, arrays, scalars) in one document. Bounds the compiled
/// size and the work of evaluating every statement on every request.
pub const MAX_POLICY_ELEMENTS: usize = 16_384;

/// Most statements in one document; evaluation visits each one per request.
pub const MAX_STATEMENTS: usize = 1_024;

/// A policy-language version; absent means 2008-10-17 semantics (no variables).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyVersion {
    /// `2008-10-17`: `${...}` is literal text.
    V2008_10_17,
    /// `2012-10-17`: policy variables are substituted.
    V2012_10_17,
}

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Grants when the statement applies.
    Allow,
    /// Explicitly denies when the statement applies; beats any Allow.
    Deny,
}

/// A parsed, compiled policy document. Cloning is cheap (shared).
#[derive(Debug, Clone)]
pub struct Policy {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    text: Box<str>,
    version: Option<PolicyVersion>,
    id: Option<Box<str>>,
    statements: Box<[Statement]>,
}

/// One compiled statement.
#[derive(Debug, Clone)]
pub struct Statement {
    pub(crate) sid: Option<Arc<str>>,
    pub(crate) effect: Effect,
    /// `(is_not, spec)`: `Principal` or `NotPrincipal`.
    pub(crate) principal: Option<(bool, PrincipalSpec)>,
    /// `(is_not, patterns)`: `Action` or `NotAction`; case-insensitive globs.
    pub(crate) action: (bool, Box<[Glob]>),
    /// `(is_not, patterns)`: `Resource` or `NotResource`; absent in trust policies.
    pub(crate) resource: Option<(bool, Box<[ArnPattern]>)>,
    pub(crate) conditions: Conditions,
}

impl Statement {
    /// The statement id, if any.
    pub fn sid(&self) -> Option<&str> {
        self.sid.as_deref()
    }

    /// The statement's effect.
    pub fn effect(&self) -> Effect {
        self.effect
    }
}

impl Policy {
    /// Parses and compiles a policy document, keeping `json` verbatim for [`Policy::text`].
    pub fn parse(json: &str) -> Result<Self, PolicyError> {
        if json.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::TooLarge {
                max: MAX_POLICY_BYTES,
            });
        }
        let doc: Value = serde_json::from_str(json).map_err(PolicyError::InvalidJson)?;
        let mut budget = MAX_POLICY_ELEMENTS;
        check_shape(&doc, 1, &mut budget)?;
        let root = doc
            .as_object()
            .ok_or(PolicyError::Syntax("policy must be a JSON object"))?;
        let (mut version, mut id, mut stmts) = (None, None, None);
        for (k, v) in root {
            match k.as_str() {
                "Version" => version = Some(parse_version(v)?),
                "Id" => {
                    id = Some(
                        v.as_str()
                            .ok_or(PolicyError::Syntax("Id must be a string"))?
                            .into(),
                    )
                }
                "Statement" => stmts = Some(v),
                _ => return Err(PolicyError::UnknownElement(k.clone())),
            }
        }
        let vars = version == Some(PolicyVersion::V2012_10_17);
        let list: Vec<&Value> = match stmts.ok_or(PolicyError::MissingStatement)? {
            Value::Array(a) => a.iter().collect(),
            one @ Value::Object(_) => vec![one],
            _ => {
                return Err(PolicyError::Syntax(
                    "Statement must be an object or an array",
                ));
            }
        };
        if list.is_empty() {
            return Err(PolicyError::MissingStatement);
        }
        if list.len() > MAX_STATEMENTS {
            return Err(PolicyError::TooComplex("statement count"));
        }
        let statements = list
            .into_iter()
            .map(|s| parse_statement(s, vars))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            inner: Arc::new(Inner {
                text: json.into(),
                version,
                id,
                statements,
            }),
        })
    }

    /// The document exactly as given to [`Policy::parse`] (IAM APIs return it verbatim).
    pub fn text(&self) -> &str {
        &self.inner.text
    }

    /// The declared version; `None` when absent (2008-10-17 semantics).
    pub fn version(&self) -> Option<PolicyVersion> {
        self.inner.version
    }

    /// The `Id` element, if any.
    pub fn id(&self) -> Option<&str> {
        self.inner.id.as_deref()
    }

    /// The statements, in document order.
    pub fn statements(&self) -> &[Statement] {
        &self.inner.statements
    }

    /// Checks the extra rules for identity-based and session policies: no
    /// Principal/NotPrincipal, and a Resource/NotResource in every statement.
    pub fn check_identity_policy(&self) -> Result<(), PolicyError> {
        for s in self.statements() {
            if s.principal.is_some() {
                return Err(PolicyError::PrincipalNotAllowed);
            }
            if s.resource.is_none() {
                return Err(PolicyError::MissingResource);
            }
        }
        Ok(())
    }

    /// Checks the extra rule for resource-based (trust) policies: every statement
    /// names a Principal or NotPrincipal.
    pub fn check_resource_policy(&self) -> Result<(), PolicyError> {
        match self.statements().iter().all(|s| s.principal.is_some()) {
            true => Ok(()),
            false => Err(PolicyError::MissingPrincipal),
        }
    }
}

/// Enforces [`MAX_POLICY_DEPTH`] and [`MAX_POLICY_ELEMENTS`]. Recursion is bounded
/// by the depth cap.
fn check_shape(v: &Value, depth: usize, budget: &mut usize) -> Result<(), PolicyError> {
    if depth > MAX_POLICY_DEPTH {
        return Err(PolicyError::TooComplex("nesting depth"));
    }
    *budget = budget
        .checked_sub(1)
        .ok_or(PolicyError::TooComplex("element count"))?;
    match v {
        Value::Array(a) => a.iter().try_for_each(|x| check_shape(x, depth + 1, budget)),
        Value::Object(m) => m
            .values()
            .try_for_each(|x| check_shape(x, depth + 1, budget)),
        _ => Ok(()),
    }
}

fn parse_version(v: &Value) -> Result<PolicyVersion, PolicyError> {
    match v.as_str() {
        Some("2012-10-17") => Ok(PolicyVersion::V2012_10_17),
        Some("2008-10-17") => Ok(PolicyVersion::V2008_10_17),
        _ => Err(PolicyError::UnsupportedVersion(v.to_string())),
    }
}

fn parse_statement(v: &Value, vars: bool) -> Result<Statement, PolicyError> {
    let m = v
        .as_object()
        .ok_or(PolicyError::Syntax("each statement must be an object"))?;
    if let Some(k) = m.keys().find(|k| !STATEMENT_ELEMENTS.contains(&k.as_str())) {
        return Err(PolicyError::UnknownElement(k.clone()));
    }
    let sid = match m.get("Sid") {
        None => None,
        Some(Value::String(s)) => Some(Arc::from(s.as_str())),
        Some(_) => return Err(PolicyError::Syntax("Sid must be a string")),
    };
    let effect = match m.get("Effect").ok_or(PolicyError::MissingEffect)?.as_str() {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        other => {
            return Err(PolicyError::InvalidEffect(
                other.unwrap_or("(not a string)").to_owned(),
            ));
        }
    };
    let principal = match pick(m, "Principal", "NotPrincipal")? {
        None => None,
        Some((not, v)) => Some((not, PrincipalSpec::parse(v)?)),
    };
    let (not_action, actions) =
        pick(m, "Action", "NotAction")?.ok_or(PolicyError::MissingAction)?;
    let actions = strings(actions, "Action")?;
    if actions.is_empty() {
        return Err(PolicyError::MissingAction);
    }
    let action = (
        not_action,
        actions
            .into_iter()
            .map(compile_action)
            .collect::<Result<_, _>>()?,
    );
    let resource = match pick(m, "Resource", "NotResource")? {
        None => None,
        Some((not, v)) => {
            let list = strings(v, "Resource")?;
            if list.is_empty() {
                return Err(PolicyError::MissingResource);
            }
            Some((
                not,
                list.into_iter()
                    .map(|r| compile_resource(r, vars))
                    .collect::<Result<_, _>>()?,
            ))
        }
    };
    let conditions = m
        .get("Condition")
        .map(|c| Conditions::parse(c, vars))
        .transpose()?
        .unwrap_or_default();
    Ok(Statement {
        sid,
        effect,
        principal,
        action,
        resource,
        conditions,
    })
}

const STATEMENT_ELEMENTS: [&str; 9] = [
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];

/// Exactly one of an element and its `Not` form, or neither.
fn pick<'a>(
    m: &'a Map<String, Value>,
    pos: &'static str,
    neg: &'static str,
) -> Result<Option<(bool, &'a Value)>, PolicyError> {
    match (m.get(pos), m.get(neg)) {
        (Some(_), Some(_)) => Err(PolicyError::Conflicting(match pos {
            "Action" => "Action and NotAction",
            "Resource" => "Resource and NotResource",
            _ => "Principal and NotPrincipal",
        })),
        (Some(v), None) => Ok(Some((false, v))),
        (None, Some(v)) => Ok(Some((true, v))),
        (None, None) => Ok(None),
    }
}

fn strings<'a>(v: &'a Value, what: &'static str) -> Result<Vec<&'a str>, PolicyError> {
    let bad = || {
        PolicyError::Syntax(if what == "Action" {
            "Action must be strings"
        } else {
            "Resource must be strings"
        })
    };
    match v {
        Value::String(s) => Ok(vec![s.as_str()]),
        Value::Array(a) => a.iter().map(|x| x.as_str().ok_or_else(bad)).collect(),
        _ => Err(bad()),
    }
}

/// `*` or `service:action-glob`; variables are not substituted in actions.
fn compile_action(a: &str) -> Result<Glob, PolicyError> {
    let ok = a == "*"
        || a.split_once(':')
            .is_some_and(|(svc, act)| !svc.is_empty() && !act.is_empty());
    if !ok {
        return Err(PolicyError::InvalidAction(a.to_owned()));
    }
    let mut toks = Vec::new();
    tokenize_plain(a, true, &mut toks);
    Ok(Glob::from_toks(toks))
}

fn compile_resource(r: &str, vars: bool) -> Result<ArnPattern, PolicyError> {
    if r != "*" && !r.starts_with("arn:") {
        return Err(PolicyError::InvalidResource(r.to_owned()));
    }
    arn_pattern(r, vars).ok_or_else(|| PolicyError::InvalidResource(r.to_owned()))
}
