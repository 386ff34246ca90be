//! The `Condition` element: every operator, `...IfExists`, `ForAnyValue:` and
//! `ForAllValues:`.
//!
//! Semantics (AWS "IAM JSON policy elements: Condition operators" and "Multivalued
//! context keys"): operators and keys are ANDed, the values listed for one key are
//! ORed. A missing key makes a positive operator false and a negated one (`StringNot*`,
//! `NumericNotEquals`, `DateNotEquals`, `NotIpAddress`, `ArnNot*`) true; `IfExists`
//! makes a missing key true; `ForAllValues` with a missing key is true, `ForAnyValue`
//! false. A negated operator holds only when the request value matches none of the
//! policy values. A policy value that does not parse (number, date, CIDR, boolean,
//! ARN) makes its key's test false, never a panic.
//! `...IgnoreCase` folds ASCII letters only.

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::{Map, Value};
use time::format_description::well_known::{Iso8601, Rfc3339};
use time::{Date, OffsetDateTime, PrimitiveDateTime};

use crate::PolicyError;
use crate::context::RequestContext;
use crate::variables::{arn_pattern, tokenize};
use crate::wildcard::{ArnPattern, Glob};

/// All condition tests of one statement; they hold together or not at all.
#[derive(Debug, Clone, Default)]
pub(crate) struct Conditions {
    tests: Box<[KeyTest]>,
}

/// One operator applied to one key.
#[derive(Debug, Clone)]
struct KeyTest {
    /// Lowercased condition key.
    key: Box<str>,
    negated: bool,
    set: SetOp,
    if_exists: bool,
    values: Values,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Single,
    ForAnyValue,
    ForAllValues,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

/// The operator family, decided from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str { ci: bool, like: bool },
    Num(Cmp),
    Date(Cmp),
    Bool,
    Binary,
    Ip,
    Arn,
    Null,
}

/// Pre-compiled policy values; `None` inside means a value failed to parse.
#[derive(Debug, Clone)]
enum Values {
    Str { ci: bool, globs: Box<[Glob]> },
    Arn(Option<Box<[ArnPattern]>>),
    Num(Cmp, Option<Box<[f64]>>),
    Date(Cmp, Option<Box<[i128]>>),
    Bool(Option<Box<[bool]>>),
    Binary(Box<[Box<str>]>),
    Ip(Option<Box<[IpNet]>>),
    Null(Option<Box<[bool]>>),
}

impl Conditions {
    /// Parses a Condition object. `vars` enables policy variables (Version 2012-10-17).
    pub(crate) fn parse(v: &Value, vars: bool) -> Result<Self, PolicyError> {
        let ops = v
            .as_object()
            .ok_or(PolicyError::Syntax("Condition must be an object"))?;
        let mut tests = Vec::new();
        for (op_name, block) in ops {
            let (kind, negated, set, if_exists) = parse_operator(op_name)?;
            let block = block.as_object().ok_or(PolicyError::Syntax(
                "condition operator value must be an object",
            ))?;
            parse_block(block, kind, negated, set, if_exists, vars, &mut tests)?;
        }
        Ok(Self {
            tests: tests.into_boxed_slice(),
        })
    }

    /// Whether every test holds for `ctx`.
    pub(crate) fn hold(&self, ctx: &RequestContext) -> bool {
        self.tests.iter().all(|t| t.holds(ctx))
    }
}

fn parse_block(
    block: &Map<String, Value>,
    kind: Kind,
    negated: bool,
    set: SetOp,
    if_exists: bool,
    vars: bool,
    out: &mut Vec<KeyTest>,
) -> Result<(), PolicyError> {
    for (key, raw) in block {
        if key.is_empty() {
            return Err(PolicyError::Syntax("condition key must not be empty"));
        }
        let strs = scalars(raw).ok_or_else(|| PolicyError::InvalidConditionValue(key.clone()))?;
        let values = compile(kind, &strs, vars);
        let key = key.to_ascii_lowercase().into_boxed_str();
        out.push(KeyTest {
            key,
            negated,
            set,
            if_exists,
            values,
        });
    }
    Ok(())
}

impl KeyTest {
    fn holds(&self, ctx: &RequestContext) -> bool {
        let req = ctx.lookup(&self.key);
        if let Values::Null(want) = &self.values {
            // {"Null": {"k": "true"}} holds when k is absent; "false" when present.
            let Some(want) = want else { return false };
            return want.iter().any(|&absent| absent == req.is_none());
        }
        match self.values.usable(ctx) {
            Usable::No => return false,
            // A negated test cannot say "matches none" about a value it cannot know.
            Usable::Partly if self.negated => return false,
            Usable::Partly | Usable::Yes => {}
        }
        let Some(req) = req else {
            return match self.set {
                SetOp::ForAllValues => true,
                SetOp::ForAnyValue => false,
                SetOp::Single => self.if_exists || self.negated,
            };
        };
        let one = |r: &str| self.values.any_match(r, ctx) != self.negated;
        match (self.set, self.negated) {
            (SetOp::ForAllValues, _) | (SetOp::Single, true) => req.iter().all(one),
            (SetOp::ForAnyValue, _) | (SetOp::Single, false) => req.iter().any(one),
        }
    }
}

enum Usable {
    Yes,
    /// Some values hold an unresolvable policy variable.
    Partly,
    /// A value failed to parse.
    No,
}

impl Values {
    fn usable(&self, ctx: &RequestContext) -> Usable {
        let partly = |all: bool| if all { Usable::Yes } else { Usable::Partly };
        match self {
            Self::Str { globs, .. } => partly(globs.iter().all(|g| g.resolvable(ctx))),
            Self::Arn(Some(p)) => partly(p.iter().all(|p| p.resolvable(ctx))),
            Self::Arn(None)
            | Self::Num(_, None)
            | Self::Date(_, None)
            | Self::Bool(None)
            | Self::Ip(None) => Usable::No,
            Self::Null(_)
            | Self::Num(..)
            | Self::Date(..)
            | Self::Bool(_)
            | Self::Binary(_)
            | Self::Ip(_) => Usable::Yes,
        }
    }

    /// Whether request value `r` matches at least one policy value.
    fn any_match(&self, r: &str, ctx: &RequestContext) -> bool {
        match self {
            Self::Str { ci, globs } => globs.iter().any(|g| g.matches(r, *ci, ctx)),
            Self::Arn(p) => p.iter().flatten().any(|p| p.matches(r, ctx)),
            Self::Num(cmp, n) => {
                parse_number(r).is_some_and(|x| n.iter().flatten().any(|p| cmp.holds(x, *p)))
            }
            Self::Date(cmp, d) => {
                parse_date(r).is_some_and(|x| d.iter().flatten().any(|p| cmp.holds(x, *p)))
            }
            Self::Bool(b) => parse_bool(r).is_some_and(|x| b.iter().flatten().any(|p| x == *p)),
            Self::Binary(b) => b.iter().any(|p| **p == *r),
            Self::Ip(nets) => r
                .trim()
                .parse::<IpAddr>()
                .is_ok_and(|ip| nets.iter().flatten().any(|n| n.contains(&ip))),
            Self::Null(_) => false,
        }
    }
}

impl Cmp {
    fn holds<T: PartialOrd>(self, req: T, pol: T) -> bool {
        match self {
            Self::Eq => req == pol,
            Self::Lt => req < pol,
            Self::Le => req <= pol,
            Self::Gt => req > pol,
            Self::Ge => req >= pol,
        }
    }
}

/// Compiles the policy values of one key. Values that fail to parse poison the
/// whole list (`None`) so the test is false rather than silently narrower.
fn compile(kind: Kind, strs: &[String], vars: bool) -> Values {
    fn all<T>(strs: &[String], f: impl Fn(&str) -> Option<T>) -> Option<Box<[T]>> {
        strs.iter().map(|s| f(s)).collect()
    }
    match kind {
        Kind::Str { ci, like } => Values::Str {
            ci,
            globs: strs
                .iter()
                .map(|s| Glob::from_toks(tokenize(s, vars, like)))
                .collect(),
        },
        Kind::Arn => Values::Arn(all(strs, |s| arn_pattern(s, vars))),
        Kind::Num(c) => Values::Num(c, all(strs, parse_number)),
        Kind::Date(c) => Values::Date(c, all(strs, parse_date)),
        Kind::Bool => Values::Bool(all(strs, parse_bool)),
        Kind::Binary => Values::Binary(strs.iter().map(|s| s.as_str().into()).collect()),
        Kind::Ip => Values::Ip(all(strs, parse_cidr)),
        Kind::Null => Values::Null(all(strs, parse_bool)),
    }
}

/// Splits `ForAnyValue:StringLikeIfExists` into its parts. Names are matched
/// ASCII-case-insensitively.
fn parse_operator(name: &str) -> Result<(Kind, bool, SetOp, bool), PolicyError> {
    let unknown = || PolicyError::UnknownConditionOperator(name.to_owned());
    let (set, rest) = match name.split_once(':') {
        Some((q, rest)) if q.eq_ignore_ascii_case("ForAnyValue") => (SetOp::ForAnyValue, rest),
        Some((q, rest)) if q.eq_ignore_ascii_case("ForAllValues") => (SetOp::ForAllValues, rest),
        Some(_) => return Err(unknown()),
        None => (SetOp::Single, name),
    };
    let (base, if_exists) = match rest
        .len()
        .checked_sub("IfExists".len())
        .and_then(|i| rest.split_at_checked(i))
    {
        Some((b, suffix)) if suffix.eq_ignore_ascii_case("IfExists") => (b, true),
        _ => (rest, false),
    };
    let lower = base.to_ascii_lowercase();
    let (kind, negated) = match lower.as_str() {
        "stringequals" => (
            Kind::Str {
                ci: false,
                like: false,
            },
            false,
        ),
        "stringnotequals" => (
            Kind::Str {
                ci: false,
                like: false,
            },
            true,
        ),
        "stringequalsignorecase" => (
            Kind::Str {
                ci: true,
                like: false,
            },
            false,
        ),
        "stringnotequalsignorecase" => (
            Kind::Str {
                ci: true,
                like: false,
            },
            true,
        ),
        "stringlike" => (
            Kind::Str {
                ci: false,
                like: true,
            },
            false,
        ),
        "stringnotlike" => (
            Kind::Str {
                ci: false,
                like: true,
            },
            true,
        ),
        "numericequals" => (Kind::Num(Cmp::Eq), false),
        "numericnotequals" => (Kind::Num(Cmp::Eq), true),
        "numericlessthan" => (Kind::Num(Cmp::Lt), false),
        "numericlessthanequals" => (Kind::Num(Cmp::Le), false),
        "numericgreaterthan" => (Kind::Num(Cmp::Gt), false),
        "numericgreaterthanequals" => (Kind::Num(Cmp::Ge), false),
        "dateequals" => (Kind::Date(Cmp::Eq), false),
        "datenotequals" => (Kind::Date(Cmp::Eq), true),
        "datelessthan" => (Kind::Date(Cmp::Lt), false),
        "datelessthanequals" => (Kind::Date(Cmp::Le), false),
        "dategreaterthan" => (Kind::Date(Cmp::Gt), false),
        "dategreaterthanequals" => (Kind::Date(Cmp::Ge), false),
        "bool" => (Kind::Bool, false),
        "binaryequals" => (Kind::Binary, false),
        "ipaddress" => (Kind::Ip, false),
        "notipaddress" => (Kind::Ip, true),
        "arnequals" | "arnlike" => (Kind::Arn, false),
        "arnnotequals" | "arnnotlike" => (Kind::Arn, true),
        // Null takes no IfExists (Access Analyzer: "Null with if exists").
        "null" if !if_exists => (Kind::Null, false),
        _ => return Err(unknown()),
    };
    Ok((kind, negated, set, if_exists))
}

/// A condition value: a scalar or an array of scalars, as strings.
fn scalars(v: &Value) -> Option<Vec<String>> {
    fn one(v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
    match v {
        Value::Array(a) => a.iter().map(one).collect(),
        other => one(other).map(|s| vec![s]),
    }
}

fn parse_number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|f| f.is_finite())
}

fn parse_bool(s: &str) -> Option<bool> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

fn parse_cidr(s: &str) -> Option<IpNet> {
    let s = s.trim();
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

/// Dates as AWS accepts them: epoch seconds, or ISO 8601 (with or without offset,
/// date only meaning midnight UTC). Returns nanoseconds since the epoch.
pub(crate) fn parse_date(s: &str) -> Option<i128> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<i64>()
            .ok()
            .map(|secs| i128::from(secs) * 1_000_000_000);
    }
    let t = OffsetDateTime::parse(s, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(s, &Iso8601::DEFAULT))
        .or_else(|_| {
            PrimitiveDateTime::parse(s, &Iso8601::DEFAULT).map(PrimitiveDateTime::assume_utc)
        })
        .or_else(|_| Date::parse(s, &Iso8601::DEFAULT).map(|d| d.midnight().assume_utc()))
        .ok()?;
    Some(t.unix_timestamp_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_unknown_operators() {
        for bad in [
            "StringEqualz",
            "ForSomeValues:StringEquals",
            "NullIfExists",
            "",
            "IfExists",
            "Bogus:Bool",
        ] {
            assert!(parse_operator(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn operator_names_split() {
        let (k, neg, set, ie) = parse_operator("ForAllValues:StringNotLikeIfExists").unwrap();
        assert_eq!(
            (k, neg, set, ie),
            (
                Kind::Str {
                    ci: false,
                    like: true
                },
                true,
                SetOp::ForAllValues,
                true
            )
        );
        assert_eq!(parse_operator("ArnLike").unwrap().0, Kind::Arn);
        assert!(parse_operator("DateGreaterThanEqualsIfExists").is_ok());
    }

    #[test]
    fn date_formats() {
        let midnight = 1_577_836_800_i128 * 1_000_000_000;
        assert_eq!(parse_date("1577836800"), Some(midnight));
        assert_eq!(parse_date("2020-01-01T00:00:00Z"), Some(midnight));
        assert_eq!(parse_date("2020-01-01T01:00:00+01:00"), Some(midnight));
        assert_eq!(parse_date("2020-01-01T00:00:00"), Some(midnight));
        assert_eq!(parse_date("2020-01-01"), Some(midnight));
        assert_eq!(parse_date("yesterday"), None);
        assert_eq!(parse_date("99999999999999999999999"), None);
    }

    #[test]
    fn numbers_reject_non_finite() {
        assert_eq!(parse_number("NaN"), None);
        assert_eq!(parse_number("inf"), None);
        assert_eq!(parse_number("1.5"), Some(1.5));
    }
}
