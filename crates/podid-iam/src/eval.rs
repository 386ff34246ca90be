//! Policy evaluation (AWS "Policy evaluation logic"): an explicit Deny in any
//! applicable statement wins; otherwise any applicable Allow allows; otherwise the
//! request is implicitly denied.
//!
//! A statement applies when its Action/NotAction, Resource/NotResource, (for
//! resource-based policies) Principal/NotPrincipal and every Condition match. Per
//! request this allocates only for the list of matched statements.

use std::sync::Arc;

use crate::context::RequestContext;
use crate::policy::{Effect, Policy, Statement};
use crate::wildcard::ArnPattern;

/// The outcome of an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// At least one Allow applied and no Deny did.
    Allowed,
    /// A Deny statement applied.
    ExplicitDeny,
    /// Nothing allowed the request.
    ImplicitDeny,
}

/// Which kind of policy a matched statement came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicySource {
    /// An identity-based policy (user, group or role permissions).
    Identity,
    /// A session policy passed to AssumeRole/GetFederationToken.
    Session,
    /// A resource-based policy, such as a role trust policy.
    Resource,
}

/// A statement that decided the outcome (for SimulatePrincipalPolicy's `MatchedStatements`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchedStatement {
    /// The kind of policy it is in.
    pub source: PolicySource,
    /// Index of the policy in the slice passed for that kind.
    pub policy_index: usize,
    /// Index of the statement in its policy.
    pub statement_index: usize,
    /// The statement's `Sid`, if any.
    pub sid: Option<Arc<str>>,
    /// The statement's effect.
    pub effect: Effect,
}

/// The decision plus the statements that produced it: the applicable Deny
/// statements for [`Decision::ExplicitDeny`], the applicable Allow statements for
/// [`Decision::Allowed`], none for [`Decision::ImplicitDeny`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// The outcome.
    pub decision: Decision,
    /// The statements behind it, in evaluation order.
    pub matched_statements: Vec<MatchedStatement>,
}

impl Evaluation {
    /// `true` only for [`Decision::Allowed`].
    pub fn is_allowed(&self) -> bool {
        self.decision == Decision::Allowed
    }
}

/// Evaluates identity-based policies (any Principal element is ignored).
pub fn evaluate(policies: &[&Policy], req: &RequestContext) -> Evaluation {
    let mut t = Tally::default();
    for (i, p) in policies.iter().enumerate() {
        t.scan(p, i, PolicySource::Identity, req);
    }
    t.finish()
}

/// Evaluates a resource-based policy such as a role trust policy: a statement
/// applies only if its Principal names the caller (or its NotPrincipal does not
/// exempt it). A statement without Principal/NotPrincipal never applies here.
pub fn evaluate_resource_policy(policy: &Policy, req: &RequestContext) -> Evaluation {
    let mut t = Tally::default();
    t.scan(policy, 0, PolicySource::Resource, req);
    t.finish()
}

/// Evaluates identity-based policies intersected with session policies (AWS
/// "Session policies"): an explicit Deny in either set denies; otherwise the request
/// is allowed only if the identity policies allow it and, when session policies were
/// passed, the session policies (inline and managed, evaluated together as one set)
/// allow it too. With no session policies this equals [`evaluate`].
pub fn evaluate_with_session_policies(
    identity: &[&Policy],
    session: &[&Policy],
    req: &RequestContext,
) -> Evaluation {
    let mut id = Tally::default();
    for (i, p) in identity.iter().enumerate() {
        id.scan(p, i, PolicySource::Identity, req);
    }
    if session.is_empty() {
        return id.finish();
    }
    let mut sess = Tally::default();
    for (i, p) in session.iter().enumerate() {
        sess.scan(p, i, PolicySource::Session, req);
    }
    if !id.denies.is_empty() || !sess.denies.is_empty() {
        id.denies.append(&mut sess.denies);
        return Evaluation {
            decision: Decision::ExplicitDeny,
            matched_statements: id.denies,
        };
    }
    if id.allows.is_empty() || sess.allows.is_empty() {
        return Evaluation {
            decision: Decision::ImplicitDeny,
            matched_statements: Vec::new(),
        };
    }
    id.allows.append(&mut sess.allows);
    Evaluation {
        decision: Decision::Allowed,
        matched_statements: id.allows,
    }
}

/// Applicable statements found so far, split by effect.
#[derive(Default)]
struct Tally {
    allows: Vec<MatchedStatement>,
    denies: Vec<MatchedStatement>,
}

impl Tally {
    fn scan(
        &mut self,
        policy: &Policy,
        policy_index: usize,
        source: PolicySource,
        req: &RequestContext,
    ) {
        for (statement_index, s) in policy.statements().iter().enumerate() {
            if !applies(s, source, req) {
                continue;
            }
            let m = MatchedStatement {
                source,
                policy_index,
                statement_index,
                sid: s.sid.clone(),
                effect: s.effect,
            };
            match s.effect {
                Effect::Allow => self.allows.push(m),
                Effect::Deny => self.denies.push(m),
            }
        }
    }

    fn finish(self) -> Evaluation {
        if !self.denies.is_empty() {
            Evaluation {
                decision: Decision::ExplicitDeny,
                matched_statements: self.denies,
            }
        } else if !self.allows.is_empty() {
            Evaluation {
                decision: Decision::Allowed,
                matched_statements: self.allows,
            }
        } else {
            Evaluation {
                decision: Decision::ImplicitDeny,
                matched_statements: Vec::new(),
            }
        }
    }
}

/// Whether statement `s` applies to `req`; cheapest tests first.
fn applies(s: &Statement, source: PolicySource, req: &RequestContext) -> bool {
    let (not_action, actions) = (&s.action.0, &s.action.1);
    // Actions hold no variables; matching is ASCII-case-insensitive.
    if actions.iter().any(|g| g.matches(req.action(), true, req)) == *not_action {
        return false;
    }
    if let Some((not_resource, patterns)) = &s.resource {
        let hit = match req.resource() {
            Some(arn) => patterns.iter().any(|p| p.matches(arn, req)),
            // No resource (trust evaluation): only `*` covers it.
            None => patterns.iter().any(|p| matches!(p, ArnPattern::Any)),
        };
        if hit == *not_resource {
            return false;
        }
    }
    if source == PolicySource::Resource {
        let named = match &s.principal {
            None => false,
            Some((false, spec)) => spec.matches(req.principal()),
            Some((true, spec)) => !spec.exempts(req.principal()),
        };
        if !named {
            return false;
        }
    }
    s.conditions.hold(req)
}
