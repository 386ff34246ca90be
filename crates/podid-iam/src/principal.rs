//! The `Principal` / `NotPrincipal` element: parsing and matching against a caller.
//!
//! Rules (AWS "AWS JSON policy elements: Principal" and "NotPrincipal"):
//! `"*"` and `{"AWS": "*"}` match everyone, anonymous included; an account id or
//! `arn:...:iam::<acct>:root` matches every IAM identity of that account; a role ARN
//! matches the role and its sessions; other ARNs match exactly; Service and Federated
//! entries match by name. Wildcards are allowed only as the whole value `"*"`.

use serde_json::Value;

use crate::PolicyError;
use crate::context::{PrincipalInfo, PrincipalKind};

/// A parsed Principal or NotPrincipal value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PrincipalSpec {
    /// `"*"`, or any of the maps holding `"*"` for AWS.
    Any,
    Map {
        aws: Box<[AwsPrincipal]>,
        service: Box<[Box<str>]>,
        federated: Box<[Box<str>]>,
        canonical: Box<[Box<str>]>,
    },
}

/// One entry under `"AWS"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AwsPrincipal {
    /// A 12-digit account id or its `:root` ARN.
    Account(Box<str>),
    /// Any other ARN, or an IAM unique id left behind by a deleted identity.
    Arn(Box<str>),
}

impl PrincipalSpec {
    pub(crate) fn parse(v: &Value) -> Result<Self, PolicyError> {
        let map = match v {
            Value::String(s) if s == "*" => return Ok(Self::Any),
            Value::Object(m) => m,
            other => return Err(PolicyError::InvalidPrincipal(other.to_string())),
        };
        let mut aws = Vec::new();
        let mut service: Vec<Box<str>> = Vec::new();
        let mut federated: Vec<Box<str>> = Vec::new();
        let mut canonical: Vec<Box<str>> = Vec::new();
        let mut any = false;
        for (k, val) in map {
            let invalid = |x: &str| PolicyError::InvalidPrincipal(format!("\"{k}\":\"{x}\""));
            for s in strings(val).ok_or_else(|| invalid(&val.to_string()))? {
                if s.is_empty() || (s != "*" && s.contains('*')) {
                    return Err(invalid(s));
                }
                match k.as_str() {
                    "AWS" if s == "*" => any = true,
                    "AWS" => aws.push(parse_aws(s).ok_or_else(|| invalid(s))?),
                    "Service" => service.push(s.into()),
                    "Federated" => federated.push(s.into()),
                    "CanonicalUser" => canonical.push(s.into()),
                    _ => return Err(invalid(s)),
                }
            }
        }
        if any {
            return Ok(Self::Any);
        }
        Ok(Self::Map {
            aws: aws.into_boxed_slice(),
            service: service.into_boxed_slice(),
            federated: federated.into_boxed_slice(),
            canonical: canonical.into_boxed_slice(),
        })
    }

    /// Whether a `Principal` element with this value names `p`.
    pub(crate) fn matches(&self, p: &PrincipalInfo) -> bool {
        let Self::Map {
            aws,
            service,
            federated,
            canonical: _,
        } = self
        else {
            return true;
        };
        match &p.kind {
            // CanonicalUser ids are an S3 concept; callers here never carry one.
            PrincipalKind::Service(name) => service.iter().any(|s| s.eq_ignore_ascii_case(name)),
            PrincipalKind::Federated(provider) => federated.iter().any(|f| **f == **provider),
            PrincipalKind::Anonymous => false,
            kind => aws.iter().any(|a| match a {
                AwsPrincipal::Account(acct) => **acct == *p.account_id,
                AwsPrincipal::Arn(arn) => {
                    **arn == *p.arn || matches!(kind, PrincipalKind::AssumedRole { role_arn } if **arn == **role_arn)
                }
            }),
        }
    }

    /// Whether a `NotPrincipal` element with this value exempts `p`. AWS evaluates the
    /// caller together with its account, so an IAM caller is exempt only when both its
    /// own ARN (a session ARN for a session: the role ARN is not enough) and its account
    /// are listed; the root user needs only its account.
    pub(crate) fn exempts(&self, p: &PrincipalInfo) -> bool {
        let Self::Map {
            aws,
            service,
            federated,
            ..
        } = self
        else {
            return true;
        };
        let account_listed = || {
            aws.iter()
                .any(|a| matches!(a, AwsPrincipal::Account(x) if **x == *p.account_id))
        };
        let arn_listed = || {
            aws.iter()
                .any(|a| matches!(a, AwsPrincipal::Arn(x) if **x == *p.arn))
        };
        match &p.kind {
            PrincipalKind::AccountRoot => account_listed(),
            PrincipalKind::User | PrincipalKind::Role | PrincipalKind::AssumedRole { .. } => {
                arn_listed() && account_listed()
            }
            PrincipalKind::Service(name) => service.iter().any(|s| s.eq_ignore_ascii_case(name)),
            PrincipalKind::Federated(provider) => federated.iter().any(|f| **f == **provider),
            PrincipalKind::Anonymous => false,
        }
    }
}

/// A string or an array of strings; `None` for anything else.
fn strings(v: &Value) -> Option<Vec<&str>> {
    match v {
        Value::String(s) => Some(vec![s.as_str()]),
        Value::Array(a) => a.iter().map(Value::as_str).collect(),
        _ => None,
    }
}

/// Account ids and `:root` ARNs become [`AwsPrincipal::Account`]; other ARNs and IAM
/// unique ids (`AROA...`, `AIDA...`) stay exact. Anything else is invalid.
fn parse_aws(s: &str) -> Option<AwsPrincipal> {
    if is_account_id(s) {
        return Some(AwsPrincipal::Account(s.into()));
    }
    if let Some(rest) = s.strip_prefix("arn:") {
        let fields: Vec<&str> = rest.splitn(5, ':').collect();
        return match fields.as_slice() {
            [_, "iam", "", acct, "root"] if is_account_id(acct) => {
                Some(AwsPrincipal::Account((*acct).into()))
            }
            [_, "iam" | "sts", "", acct, res] if is_account_id(acct) && !res.is_empty() => {
                Some(AwsPrincipal::Arn(s.into()))
            }
            _ => None,
        };
    }
    s.chars()
        .all(|c| c.is_ascii_alphanumeric())
        .then(|| AwsPrincipal::Arn(s.into()))
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refuses_malformed_principals() {
        for bad in [
            json!("arn:aws:iam::123456789012:root"),
            json!(42),
            json!({"AWS": "arn:aws:iam::123456789012:role/*"}),
            json!({"AWS": "not an arn"}),
            json!({"AWS": ""}),
            json!({"AWS": 5}),
            json!({"Bogus": "x"}),
            json!({"AWS": "arn:aws:iam::12345:root"}),
        ] {
            assert!(PrincipalSpec::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn aws_star_is_any() {
        assert_eq!(
            PrincipalSpec::parse(&json!({"AWS": ["*"]})).unwrap(),
            PrincipalSpec::Any
        );
        assert_eq!(
            PrincipalSpec::parse(&json!("*")).unwrap(),
            PrincipalSpec::Any
        );
    }
}
