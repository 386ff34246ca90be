//! Amazon Resource Names: parsing and the IAM role ARN rules podid validates.

use std::fmt;

/// Longest ARN accepted (IAM's `arnType` max is 2048).
pub const MAX_ARN_LEN: usize = 2048;

/// A parsed ARN: `arn:<partition>:<service>:<region>:<account>:<resource>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Arn {
    pub partition: String,
    pub service: String,
    pub region: String,
    pub account: String,
    pub resource: String,
}

/// Why a string is not an acceptable ARN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArnError {
    #[error("ARN is longer than {MAX_ARN_LEN} characters")]
    TooLong,
    #[error("not an ARN")]
    Malformed,
    #[error("not an IAM role ARN")]
    NotRole,
}

impl Arn {
    pub fn parse(s: &str) -> Result<Self, ArnError> {
        if s.len() > MAX_ARN_LEN {
            return Err(ArnError::TooLong);
        }
        let mut parts = s.splitn(6, ':');
        let (
            Some("arn"),
            Some(partition),
            Some(service),
            Some(region),
            Some(account),
            Some(resource),
        ) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        )
        else {
            return Err(ArnError::Malformed);
        };
        if partition.is_empty() || service.is_empty() || resource.is_empty() {
            return Err(ArnError::Malformed);
        }
        Ok(Self {
            partition: partition.to_owned(),
            service: service.to_owned(),
            region: region.to_owned(),
            account: account.to_owned(),
            resource: resource.to_owned(),
        })
    }
}

impl fmt::Display for Arn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:{}:{}:{}:{}",
            self.partition, self.service, self.region, self.account, self.resource
        )
    }
}

/// An IAM role ARN: `arn:<partition>:iam::<12 digits>:role/<optional path/><name>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoleArn {
    arn: String,
    account: String,
    name_start: usize,
}

/// IAM role names: 1-64 of `[\w+=,.@-]` (iam model `roleNameType`).
pub fn is_valid_role_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b))
}

/// A 12-digit AWS account id.
pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

impl RoleArn {
    pub fn parse(s: &str) -> Result<Self, ArnError> {
        let arn = Arn::parse(s)?;
        if arn.service != "iam" || !arn.region.is_empty() || !is_account_id(&arn.account) {
            return Err(ArnError::NotRole);
        }
        let Some(path_and_name) = arn.resource.strip_prefix("role/") else {
            return Err(ArnError::NotRole);
        };
        let name = path_and_name.rsplit('/').next().unwrap_or(path_and_name);
        if !is_valid_role_name(name) || path_and_name.len() > 512 + 64 {
            return Err(ArnError::NotRole);
        }
        let name_start = s.len() - name.len();
        Ok(Self {
            arn: s.to_owned(),
            account: arn.account,
            name_start,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.arn
    }
    pub fn account(&self) -> &str {
        &self.account
    }
    /// The role name (the last path segment).
    pub fn name(&self) -> &str {
        self.arn.get(self.name_start..).unwrap_or_default()
    }
}

impl fmt::Display for RoleArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.arn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_role_arns() {
        let r = RoleArn::parse("arn:aws:iam::123456789012:role/path/to/my-role").unwrap();
        assert_eq!(r.name(), "my-role");
        assert_eq!(r.account(), "123456789012");
        assert_eq!(
            RoleArn::parse("arn:aws:iam::123456789012:role/x")
                .unwrap()
                .name(),
            "x"
        );
    }

    #[test]
    fn refuses_non_role_arns() {
        for bad in [
            "",
            "arn:aws:iam::123456789012:user/bob",
            "arn:aws:iam::12345:role/x",
            "arn:aws:iam:us-east-1:123456789012:role/x",
            "arn:aws:s3:::bucket",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:iam::123456789012:role/bad name",
            "not-an-arn",
        ] {
            assert!(RoleArn::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Arn::parse(&"a".repeat(3000)), Err(ArnError::TooLong));
    }

    #[test]
    fn arn_round_trips() {
        let s = "arn:aws:eks:us-east-1:000000000000:cluster/dev";
        assert_eq!(Arn::parse(s).unwrap().to_string(), s);
    }
}
