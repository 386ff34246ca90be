//! Condition operators, table-driven. Each row: a Condition block, the request's
//! context keys, and whether an Allow statement carrying that block applies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use podid_iam::{RequestContext, evaluate};
use support::*;
use time::macros::datetime;

type Ctx = &'static [(&'static str, &'static [&'static str])];
type CondRow = (&'static str, &'static str, Ctx, bool);

fn applies(cond: &str, ctx: &RequestContext) -> bool {
    let p = pol(&format!(
        r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{cond}}}}}"#
    ));
    evaluate(&[&p], ctx).is_allowed()
}

fn run_rows(group: &str, rows: &[CondRow]) {
    let mut failures = Vec::new();
    for (name, cond, ctx, want) in rows {
        let mut r = req(alice(), "s3:GetObject", "arn:aws:s3:::b/k");
        for (k, v) in *ctx {
            r = r.with_values(k, v.iter().copied());
        }
        if applies(cond, &r) != *want {
            failures.push(format!("{group}/{name}: want {want}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html#Conditions_String
// and #Conditions_IfExists; negated operators match a missing key
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-logic-multiple-context-keys-or-values.html).
const STRING: &[CondRow] = &[
    (
        "Equals hit",
        r#"{"StringEquals":{"aws:PrincipalTag/job-category":"iamuser-admin"}}"#,
        &[("aws:PrincipalTag/job-category", &["iamuser-admin"])],
        true,
    ),
    (
        "Equals case-sensitive",
        r#"{"StringEquals":{"aws:PrincipalTag/job-category":"iamuser-admin"}}"#,
        &[("aws:PrincipalTag/job-category", &["IAMUser-Admin"])],
        false,
    ),
    (
        "Equals missing key",
        r#"{"StringEquals":{"aws:PrincipalTag/job-category":"iamuser-admin"}}"#,
        &[],
        false,
    ),
    (
        "Equals values ORed",
        r#"{"StringEquals":{"aws:PrincipalTag/team":["red","blue"]}}"#,
        &[("aws:PrincipalTag/team", &["blue"])],
        true,
    ),
    (
        "Equals no value hits",
        r#"{"StringEquals":{"aws:PrincipalTag/team":["red","blue"]}}"#,
        &[("aws:PrincipalTag/team", &["green"])],
        false,
    ),
    (
        "Equals star is literal",
        r#"{"StringEquals":{"s3:prefix":"home/*"}}"#,
        &[("s3:prefix", &["home/x"])],
        false,
    ),
    (
        "NotEquals other",
        r#"{"StringNotEquals":{"aws:PrincipalTag/team":"red"}}"#,
        &[("aws:PrincipalTag/team", &["blue"])],
        true,
    ),
    (
        "NotEquals same",
        r#"{"StringNotEquals":{"aws:PrincipalTag/team":"red"}}"#,
        &[("aws:PrincipalTag/team", &["red"])],
        false,
    ),
    (
        "NotEquals missing key",
        r#"{"StringNotEquals":{"aws:PrincipalTag/team":"red"}}"#,
        &[],
        true,
    ),
    (
        "NotEquals matches none of several",
        r#"{"StringNotEquals":{"aws:PrincipalTag/team":["red","blue"]}}"#,
        &[("aws:PrincipalTag/team", &["green"])],
        true,
    ),
    (
        "NotEquals matches one of several",
        r#"{"StringNotEquals":{"aws:PrincipalTag/team":["red","blue"]}}"#,
        &[("aws:PrincipalTag/team", &["blue"])],
        false,
    ),
    (
        "EqualsIgnoreCase",
        r#"{"StringEqualsIgnoreCase":{"aws:PrincipalTag/team":"RED"}}"#,
        &[("aws:PrincipalTag/team", &["red"])],
        true,
    ),
    (
        "EqualsIgnoreCase miss",
        r#"{"StringEqualsIgnoreCase":{"aws:PrincipalTag/team":"RED"}}"#,
        &[("aws:PrincipalTag/team", &["reds"])],
        false,
    ),
    (
        "NotEqualsIgnoreCase same",
        r#"{"StringNotEqualsIgnoreCase":{"aws:PrincipalTag/team":"RED"}}"#,
        &[("aws:PrincipalTag/team", &["red"])],
        false,
    ),
    (
        "NotEqualsIgnoreCase other",
        r#"{"StringNotEqualsIgnoreCase":{"aws:PrincipalTag/team":"RED"}}"#,
        &[("aws:PrincipalTag/team", &["blue"])],
        true,
    ),
    (
        "Like star",
        r#"{"StringLike":{"s3:prefix":"home/*"}}"#,
        &[("s3:prefix", &["home/alice/docs"])],
        true,
    ),
    (
        "Like star miss",
        r#"{"StringLike":{"s3:prefix":"home/*"}}"#,
        &[("s3:prefix", &["homework"])],
        false,
    ),
    (
        "Like question mark",
        r#"{"StringLike":{"aws:PrincipalTag/env":"dev?"}}"#,
        &[("aws:PrincipalTag/env", &["dev1"])],
        true,
    ),
    (
        "Like case-sensitive",
        r#"{"StringLike":{"aws:PrincipalTag/env":"dev*"}}"#,
        &[("aws:PrincipalTag/env", &["DEV1"])],
        false,
    ),
    (
        "Like missing key",
        r#"{"StringLike":{"s3:prefix":"*"}}"#,
        &[],
        false,
    ),
    (
        "NotLike other",
        r#"{"StringNotLike":{"s3:prefix":"home/*"}}"#,
        &[("s3:prefix", &["tmp/x"])],
        true,
    ),
    (
        "NotLike hit",
        r#"{"StringNotLike":{"s3:prefix":"home/*"}}"#,
        &[("s3:prefix", &["home/x"])],
        false,
    ),
    (
        "NotLike missing key",
        r#"{"StringNotLike":{"s3:prefix":"home/*"}}"#,
        &[],
        true,
    ),
    (
        "EqualsIfExists missing",
        r#"{"StringEqualsIfExists":{"ec2:InstanceType":["t2.micro","t2.small"]}}"#,
        &[],
        true,
    ),
    (
        "EqualsIfExists present hit",
        r#"{"StringEqualsIfExists":{"ec2:InstanceType":["t2.micro","t2.small"]}}"#,
        &[("ec2:InstanceType", &["t2.small"])],
        true,
    ),
    (
        "EqualsIfExists present miss",
        r#"{"StringEqualsIfExists":{"ec2:InstanceType":["t2.micro","t2.small"]}}"#,
        &[("ec2:InstanceType", &["m5.large"])],
        false,
    ),
    (
        "key name case-insensitive",
        r#"{"StringEquals":{"AWS:PRINCIPALTAG/TEAM":"red"}}"#,
        &[("aws:principaltag/team", &["red"])],
        true,
    ),
    (
        "number value as string",
        r#"{"StringEquals":{"s3:max-keys":10}}"#,
        &[("s3:max-keys", &["10"])],
        true,
    ),
    (
        "variable in value",
        r#"{"StringEquals":{"aws:PrincipalTag/owner":"${aws:username}"}}"#,
        &[("aws:PrincipalTag/owner", &["alice"])],
        true,
    ),
    (
        "variable in value miss",
        r#"{"StringEquals":{"aws:PrincipalTag/owner":"${aws:username}"}}"#,
        &[("aws:PrincipalTag/owner", &["bob"])],
        false,
    ),
    (
        "unresolved variable, other value hits",
        r#"{"StringEquals":{"aws:PrincipalTag/owner":["${aws:PrincipalTag/none}","bob"]}}"#,
        &[("aws:PrincipalTag/owner", &["bob"])],
        true,
    ),
    (
        "unresolved variable, negated",
        r#"{"StringNotEquals":{"aws:PrincipalTag/owner":"${aws:PrincipalTag/none}"}}"#,
        &[("aws:PrincipalTag/owner", &["bob"])],
        false,
    ),
];

// #Conditions_Numeric: a value that is not a number never matches.
const NUMERIC: &[CondRow] = &[
    (
        "LessThan below",
        r#"{"NumericLessThan":{"s3:max-keys":"10"}}"#,
        &[("s3:max-keys", &["5"])],
        true,
    ),
    (
        "LessThan equal",
        r#"{"NumericLessThan":{"s3:max-keys":"10"}}"#,
        &[("s3:max-keys", &["10"])],
        false,
    ),
    (
        "LessThan above",
        r#"{"NumericLessThan":{"s3:max-keys":"10"}}"#,
        &[("s3:max-keys", &["15"])],
        false,
    ),
    (
        "LessThanEquals equal",
        r#"{"NumericLessThanEquals":{"s3:max-keys":"10"}}"#,
        &[("s3:max-keys", &["10"])],
        true,
    ),
    (
        "GreaterThan above",
        r#"{"NumericGreaterThan":{"s3:max-keys":10}}"#,
        &[("s3:max-keys", &["11"])],
        true,
    ),
    (
        "GreaterThan equal",
        r#"{"NumericGreaterThan":{"s3:max-keys":10}}"#,
        &[("s3:max-keys", &["10"])],
        false,
    ),
    (
        "GreaterThanEquals equal",
        r#"{"NumericGreaterThanEquals":{"s3:max-keys":"10"}}"#,
        &[("s3:max-keys", &["10"])],
        true,
    ),
    (
        "Equals decimal",
        r#"{"NumericEquals":{"s3:max-keys":"10"}}"#,
        &[("s3:max-keys", &["10.0"])],
        true,
    ),
    (
        "Equals miss",
        r#"{"NumericEquals":{"s3:max-keys":"10"}}"#,
        &[("s3:max-keys", &["11"])],
        false,
    ),
    (
        "NotEquals other",
        r#"{"NumericNotEquals":{"s3:max-keys":"10"}}"#,
        &[("s3:max-keys", &["11"])],
        true,
    ),
    (
        "NotEquals same",
        r#"{"NumericNotEquals":{"s3:max-keys":"10"}}"#,
        &[("s3:max-keys", &["10"])],
        false,
    ),
    (
        "NotEquals missing",
        r#"{"NumericNotEquals":{"s3:max-keys":"10"}}"#,
        &[],
        true,
    ),
    (
        "missing key",
        r#"{"NumericLessThan":{"s3:max-keys":"10"}}"#,
        &[],
        false,
    ),
    (
        "LessThanIfExists missing",
        r#"{"NumericLessThanIfExists":{"s3:max-keys":"10"}}"#,
        &[],
        true,
    ),
    (
        "bad policy value",
        r#"{"NumericLessThan":{"s3:max-keys":"ten"}}"#,
        &[("s3:max-keys", &["5"])],
        false,
    ),
    (
        "bad policy value, negated",
        r#"{"NumericNotEquals":{"s3:max-keys":"ten"}}"#,
        &[("s3:max-keys", &["5"])],
        false,
    ),
    (
        "bad request value",
        r#"{"NumericLessThan":{"s3:max-keys":"10"}}"#,
        &[("s3:max-keys", &["abc"])],
        false,
    ),
];

// #Conditions_Date: ISO 8601 or epoch seconds on either side.
const DATE: &[CondRow] = &[
    (
        "GreaterThan after",
        r#"{"DateGreaterThan":{"aws:CurrentTime":"2020-04-01T00:00:00Z"}}"#,
        &[("aws:CurrentTime", &["2021-01-01T00:00:00Z"])],
        true,
    ),
    (
        "GreaterThan before",
        r#"{"DateGreaterThan":{"aws:CurrentTime":"2020-04-01T00:00:00Z"}}"#,
        &[("aws:CurrentTime", &["2019-01-01T00:00:00Z"])],
        false,
    ),
    (
        "LessThan epoch policy",
        r#"{"DateLessThan":{"aws:CurrentTime":"1577836800"}}"#,
        &[("aws:CurrentTime", &["2019-12-31T23:59:59Z"])],
        true,
    ),
    (
        "LessThan epoch number",
        r#"{"DateLessThan":{"aws:EpochTime":1577836800}}"#,
        &[("aws:EpochTime", &["1577836801"])],
        false,
    ),
    (
        "Equals across formats",
        r#"{"DateEquals":{"aws:TokenIssueTime":"2020-01-01T00:00:00Z"}}"#,
        &[("aws:TokenIssueTime", &["1577836800"])],
        true,
    ),
    (
        "Equals offset",
        r#"{"DateEquals":{"aws:TokenIssueTime":"2020-01-01T00:00:00Z"}}"#,
        &[("aws:TokenIssueTime", &["2020-01-01T01:00:00+01:00"])],
        true,
    ),
    (
        "NotEquals",
        r#"{"DateNotEquals":{"aws:TokenIssueTime":"2020-01-01T00:00:00Z"}}"#,
        &[("aws:TokenIssueTime", &["2020-01-02T00:00:00Z"])],
        true,
    ),
    (
        "LessThanEquals equal",
        r#"{"DateLessThanEquals":{"aws:CurrentTime":"2020-01-01"}}"#,
        &[("aws:CurrentTime", &["2020-01-01T00:00:00Z"])],
        true,
    ),
    (
        "GreaterThanEquals",
        r#"{"DateGreaterThanEquals":{"aws:CurrentTime":"2020-01-01T00:00:00Z"}}"#,
        &[("aws:CurrentTime", &["2020-01-01T00:00:00Z"])],
        true,
    ),
    (
        "missing key",
        r#"{"DateGreaterThan":{"aws:CurrentTime":"2020-01-01T00:00:00Z"}}"#,
        &[],
        false,
    ),
    (
        "bad policy date",
        r#"{"DateGreaterThan":{"aws:CurrentTime":"someday"}}"#,
        &[("aws:CurrentTime", &["2021-01-01T00:00:00Z"])],
        false,
    ),
];

// #Conditions_Boolean, #Conditions_BinaryEquals, #Conditions_IPAddress, #Conditions_ARN, #Conditions_Null
const OTHER_OPS: &[CondRow] = &[
    (
        "Bool true",
        r#"{"Bool":{"aws:SecureTransport":"true"}}"#,
        &[("aws:SecureTransport", &["true"])],
        true,
    ),
    (
        "Bool false",
        r#"{"Bool":{"aws:SecureTransport":"true"}}"#,
        &[("aws:SecureTransport", &["false"])],
        false,
    ),
    (
        "Bool JSON literal",
        r#"{"Bool":{"aws:SecureTransport":true}}"#,
        &[("aws:SecureTransport", &["TRUE"])],
        true,
    ),
    (
        "Bool missing",
        r#"{"Bool":{"aws:SecureTransport":"true"}}"#,
        &[],
        false,
    ),
    (
        "BoolIfExists missing",
        r#"{"BoolIfExists":{"aws:MultiFactorAuthPresent":"false"}}"#,
        &[],
        true,
    ),
    (
        "Bool bad value",
        r#"{"Bool":{"aws:SecureTransport":"yes"}}"#,
        &[("aws:SecureTransport", &["true"])],
        false,
    ),
    (
        "BinaryEquals",
        r#"{"BinaryEquals":{"key":"QmluYXJ5VmFsdWVJbkJhc2U2NA=="}}"#,
        &[("key", &["QmluYXJ5VmFsdWVJbkJhc2U2NA=="])],
        true,
    ),
    (
        "BinaryEquals miss",
        r#"{"BinaryEquals":{"key":"QmluYXJ5VmFsdWVJbkJhc2U2NA=="}}"#,
        &[("key", &["QmluYXJ5"])],
        false,
    ),
    (
        "IpAddress in range",
        r#"{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}"#,
        &[("aws:SourceIp", &["203.0.113.5"])],
        true,
    ),
    (
        "IpAddress out of range",
        r#"{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}"#,
        &[("aws:SourceIp", &["198.51.100.1"])],
        false,
    ),
    (
        "IpAddress list ORed",
        r#"{"IpAddress":{"aws:SourceIp":["192.0.2.0/24","203.0.113.0/24"]}}"#,
        &[("aws:SourceIp", &["203.0.113.9"])],
        true,
    ),
    (
        "IpAddress single host",
        r#"{"IpAddress":{"aws:SourceIp":"203.0.113.7"}}"#,
        &[("aws:SourceIp", &["203.0.113.7"])],
        true,
    ),
    (
        "IpAddress v6",
        r#"{"IpAddress":{"aws:SourceIp":"2001:DB8:1234:5678::/64"}}"#,
        &[("aws:SourceIp", &["2001:db8:1234:5678::1"])],
        true,
    ),
    (
        "IpAddress v6 out",
        r#"{"IpAddress":{"aws:SourceIp":"2001:DB8:1234:5678::/64"}}"#,
        &[("aws:SourceIp", &["2001:db8:1234:9999::1"])],
        false,
    ),
    (
        "IpAddress v4 vs v6",
        r#"{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}"#,
        &[("aws:SourceIp", &["2001:db8::1"])],
        false,
    ),
    (
        "IpAddress missing",
        r#"{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}"#,
        &[],
        false,
    ),
    (
        "IpAddress bad cidr",
        r#"{"IpAddress":{"aws:SourceIp":"203.0.113.0/99"}}"#,
        &[("aws:SourceIp", &["203.0.113.5"])],
        false,
    ),
    (
        "IpAddress bad request ip",
        r#"{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}"#,
        &[("aws:SourceIp", &["not-an-ip"])],
        false,
    ),
    (
        "NotIpAddress in range",
        r#"{"NotIpAddress":{"aws:SourceIp":"203.0.113.0/24"}}"#,
        &[("aws:SourceIp", &["203.0.113.5"])],
        false,
    ),
    (
        "NotIpAddress outside",
        r#"{"NotIpAddress":{"aws:SourceIp":"203.0.113.0/24"}}"#,
        &[("aws:SourceIp", &["192.0.2.1"])],
        true,
    ),
    (
        "NotIpAddress missing",
        r#"{"NotIpAddress":{"aws:SourceIp":"203.0.113.0/24"}}"#,
        &[],
        true,
    ),
    (
        "ArnEquals exact",
        r#"{"ArnEquals":{"aws:SourceArn":"arn:aws:sns:us-east-1:123456789012:topic"}}"#,
        &[(
            "aws:SourceArn",
            &["arn:aws:sns:us-east-1:123456789012:topic"],
        )],
        true,
    ),
    (
        "ArnEquals other",
        r#"{"ArnEquals":{"aws:SourceArn":"arn:aws:sns:us-east-1:123456789012:topic"}}"#,
        &[(
            "aws:SourceArn",
            &["arn:aws:sns:us-east-1:123456789012:other"],
        )],
        false,
    ),
    (
        "ArnLike field wildcard",
        r#"{"ArnLike":{"aws:SourceArn":"arn:aws:sns:*:123456789012:*"}}"#,
        &[("aws:SourceArn", &["arn:aws:sns:eu-west-1:123456789012:t"])],
        true,
    ),
    (
        "ArnLike field does not span",
        r#"{"ArnLike":{"aws:SourceArn":"arn:aws:sns:*:123456789012:*"}}"#,
        &[("aws:SourceArn", &["arn:aws:sns:eu:west:123456789012:t"])],
        false,
    ),
    (
        "ArnLike case-sensitive",
        r#"{"ArnLike":{"aws:SourceArn":"arn:aws:iam::*:role/Admin*"}}"#,
        &[("aws:SourceArn", &["arn:aws:iam::123456789012:role/admin"])],
        false,
    ),
    (
        "ArnNotEquals other",
        r#"{"ArnNotEquals":{"aws:SourceArn":"arn:aws:sns:us-east-1:123456789012:topic"}}"#,
        &[("aws:SourceArn", &["arn:aws:sns:us-east-1:123456789012:x"])],
        true,
    ),
    (
        "ArnNotLike hit",
        r#"{"ArnNotLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/admin-*"}}"#,
        &[("aws:PrincipalArn", &["arn:aws:iam::1:role/admin-a"])],
        false,
    ),
    (
        "ArnNotLike missing",
        r#"{"ArnNotLike":{"aws:SourceArn":"arn:aws:sns:*:*:*"}}"#,
        &[],
        true,
    ),
    (
        "ArnLike non-ARN request",
        r#"{"ArnLike":{"aws:SourceArn":"arn:aws:sns:*:*:*"}}"#,
        &[("aws:SourceArn", &["topic"])],
        false,
    ),
    (
        "ArnLike bad policy arn",
        r#"{"ArnLike":{"aws:SourceArn":"arn:aws:sns"}}"#,
        &[("aws:SourceArn", &["arn:aws:sns:us-east-1:1:t"])],
        false,
    ),
    (
        "Null true, absent",
        r#"{"Null":{"aws:TokenIssueTime":"true"}}"#,
        &[],
        true,
    ),
    (
        "Null true, present",
        r#"{"Null":{"aws:TokenIssueTime":"true"}}"#,
        &[("aws:TokenIssueTime", &["2020-01-01T00:00:00Z"])],
        false,
    ),
    (
        "Null false, present",
        r#"{"Null":{"aws:TokenIssueTime":"false"}}"#,
        &[("aws:TokenIssueTime", &["2020-01-01T00:00:00Z"])],
        true,
    ),
    (
        "Null false, absent",
        r#"{"Null":{"aws:TokenIssueTime":"false"}}"#,
        &[],
        false,
    ),
    (
        "Null bad value",
        r#"{"Null":{"aws:TokenIssueTime":"maybe"}}"#,
        &[],
        false,
    ),
];

// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-logic-multiple-context-keys-or-values.html
// (keys in one operator and several operators are ANDed).
const LOGIC: &[CondRow] = &[
    (
        "two keys both hold",
        r#"{"StringEquals":{"aws:PrincipalTag/a":"1","aws:PrincipalTag/b":"2"}}"#,
        &[
            ("aws:PrincipalTag/a", &["1"]),
            ("aws:PrincipalTag/b", &["2"]),
        ],
        true,
    ),
    (
        "two keys one fails",
        r#"{"StringEquals":{"aws:PrincipalTag/a":"1","aws:PrincipalTag/b":"2"}}"#,
        &[
            ("aws:PrincipalTag/a", &["1"]),
            ("aws:PrincipalTag/b", &["3"]),
        ],
        false,
    ),
    (
        "two operators both hold",
        r#"{"StringEquals":{"aws:PrincipalTag/a":"1"},"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#,
        &[
            ("aws:PrincipalTag/a", &["1"]),
            ("aws:SourceIp", &["10.1.2.3"]),
        ],
        true,
    ),
    (
        "two operators one fails",
        r#"{"StringEquals":{"aws:PrincipalTag/a":"1"},"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#,
        &[
            ("aws:PrincipalTag/a", &["1"]),
            ("aws:SourceIp", &["192.168.0.1"]),
        ],
        false,
    ),
    ("empty condition block", r#"{}"#, &[], true),
];

// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html
// (ForAllValues: every request value must match, true when the key is missing;
// ForAnyValue: at least one must match, false when missing).
const SETS: &[CondRow] = &[
    (
        "AllValues subset",
        r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["environment","cost-center"]}}"#,
        &[("aws:TagKeys", &["environment"])],
        true,
    ),
    (
        "AllValues all listed",
        r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["environment","cost-center"]}}"#,
        &[("aws:TagKeys", &["cost-center", "environment"])],
        true,
    ),
    (
        "AllValues extra key",
        r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["environment","cost-center"]}}"#,
        &[("aws:TagKeys", &["environment", "dept"])],
        false,
    ),
    (
        "AllValues missing key",
        r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["environment","cost-center"]}}"#,
        &[],
        true,
    ),
    (
        "AllValues empty list",
        r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["environment"]}}"#,
        &[("aws:TagKeys", &[])],
        true,
    ),
    (
        "AllValues Like",
        r#"{"ForAllValues:StringLike":{"aws:TagKeys":["key*"]}}"#,
        &[("aws:TagKeys", &["key1", "key2"])],
        true,
    ),
    (
        "AllValues Like one miss",
        r#"{"ForAllValues:StringLike":{"aws:TagKeys":["key*"]}}"#,
        &[("aws:TagKeys", &["key1", "other"])],
        false,
    ),
    (
        "AnyValue one listed",
        r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["environment","cost-center"]}}"#,
        &[("aws:TagKeys", &["dept", "environment"])],
        true,
    ),
    (
        "AnyValue none listed",
        r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["environment","cost-center"]}}"#,
        &[("aws:TagKeys", &["dept"])],
        false,
    ),
    (
        "AnyValue missing key",
        r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["environment"]}}"#,
        &[],
        false,
    ),
    (
        "AnyValue IfExists missing still false",
        r#"{"ForAnyValue:StringEqualsIfExists":{"aws:TagKeys":["environment"]}}"#,
        &[],
        false,
    ),
    (
        "AnyValue NotEquals one differs",
        r#"{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["a"]}}"#,
        &[("aws:TagKeys", &["a", "b"])],
        true,
    ),
    (
        "AnyValue NotEquals all same",
        r#"{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["a"]}}"#,
        &[("aws:TagKeys", &["a"])],
        false,
    ),
    (
        "AnyValue NotEquals missing",
        r#"{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["a"]}}"#,
        &[],
        false,
    ),
    (
        "AllValues NotEquals none listed",
        r#"{"ForAllValues:StringNotEquals":{"aws:TagKeys":["a","b"]}}"#,
        &[("aws:TagKeys", &["c", "d"])],
        true,
    ),
    (
        "AllValues NotEquals one listed",
        r#"{"ForAllValues:StringNotEquals":{"aws:TagKeys":["a","b"]}}"#,
        &[("aws:TagKeys", &["c", "a"])],
        false,
    ),
    (
        "AnyValue IgnoreCase",
        r#"{"ForAnyValue:StringEqualsIgnoreCase":{"aws:TagKeys":["Environment"]}}"#,
        &[("aws:TagKeys", &["ENVIRONMENT"])],
        true,
    ),
    (
        "single-valued op, multi values, any hits",
        r#"{"StringEquals":{"aws:TagKeys":"a"}}"#,
        &[("aws:TagKeys", &["b", "a"])],
        true,
    ),
    (
        "negated op, multi values, one hits",
        r#"{"StringNotEquals":{"aws:TagKeys":"a"}}"#,
        &[("aws:TagKeys", &["b", "a"])],
        false,
    ),
];

#[test]
fn string_operators() {
    run_rows("string", STRING);
}

#[test]
fn numeric_operators() {
    run_rows("numeric", NUMERIC);
}

#[test]
fn date_operators() {
    run_rows("date", DATE);
}

#[test]
fn bool_binary_ip_arn_null_operators() {
    run_rows("other", OTHER_OPS);
}

#[test]
fn condition_logic() {
    run_rows("logic", LOGIC);
}

#[test]
fn set_operators() {
    run_rows("sets", SETS);
}

// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_examples_aws-dates.html
// (a time window using aws:CurrentTime, here filled from an injected clock).
#[test]
fn time_window_with_injected_clock() {
    let cond = r#"{"DateGreaterThan":{"aws:CurrentTime":"2020-04-01T00:00:00Z"},
                   "DateLessThan":{"aws:CurrentTime":"2020-06-30T23:59:59Z"}}"#;
    let at = |t| req(alice(), "s3:GetObject", "*").with_time(t);
    assert!(applies(cond, &at(datetime!(2020-05-01 12:00 UTC))));
    assert!(!applies(cond, &at(datetime!(2020-07-01 00:00 UTC))));
    assert!(!applies(cond, &at(datetime!(2020-03-31 23:59 UTC))));
    let epoch = r#"{"NumericLessThan":{"aws:EpochTime":1588334400}}"#;
    assert!(applies(epoch, &at(datetime!(2020-05-01 11:59 UTC))));
    assert!(!applies(epoch, &at(datetime!(2020-05-01 12:00 UTC))));
}

#[test]
fn row_count() {
    let n = STRING.len() + NUMERIC.len() + DATE.len() + OTHER_OPS.len() + LOGIC.len() + SETS.len();
    assert!(n >= 100, "condition table shrank to {n}");
}
