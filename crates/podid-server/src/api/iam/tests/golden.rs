//! Golden bodies: every IAM and STS action's XML answer, byte for byte, against `golden.txt`.
//!
//! The file was captured from the hand-written `XmlWriter` code before the responses became
//! typed structs, so it pins the wire format the compat suites were written against. Values that
//! change from run to run (generated ids, dates, secrets, session tokens) are replaced by
//! numbered placeholders, one number per distinct value, so that "the same id in two answers"
//! is still checked. STS lives here too because its `AssumeRole` needs IAM's roles.
//!
//! After an intended wire change, `PODID_BLESS=1 cargo test -p podid-server golden` rewrites the
//! file; review its diff like code.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::*;
use crate::domain::iam::catalog;

/// Elements whose text is generated afresh on every run.
const DYNAMIC: &[&str] = &[
    "RoleId",
    "UserId",
    "PolicyId",
    "AccessKeyId",
    "SecretAccessKey",
    "SessionToken",
    "AssumedRoleId",
    "CreateDate",
    "UpdateDate",
    "Expiration",
];

/// The [`DYNAMIC`] elements holding a timestamp: masked without a number, since two made in
/// one call may straddle a second boundary.
const TIMESTAMPS: &[&str] = &["CreateDate", "UpdateDate", "Expiration"];

/// Replaces the text of [`DYNAMIC`] elements with `{Name#n}` (or `{Name}` for a timestamp),
/// keeping values that are fixed by the server or the harness (catalog dates and ids, the
/// bootstrap key, the harness caller's id) as they are.
#[derive(Default)]
struct Masker {
    seen: BTreeMap<String, usize>,
    keep: Vec<String>,
}

impl Masker {
    fn mask(&mut self, xml: &str) -> String {
        let mut out = xml.to_owned();
        for name in DYNAMIC {
            let (open, close) = (format!("<{name}>"), format!("</{name}>"));
            let mut from = 0;
            while let Some(start) = out[from..].find(&open).map(|i| i + from + open.len()) {
                let end = out[start..].find(&close).unwrap() + start;
                let value = out[start..end].to_owned();
                let replacement = if self.keep.contains(&value) {
                    value
                } else if TIMESTAMPS.contains(name) {
                    assert!(
                        time::OffsetDateTime::parse(
                            &value,
                            &time::format_description::well_known::Rfc3339
                        )
                        .is_ok(),
                        "<{name}> is not a timestamp: {value}"
                    );
                    format!("{{{name}}}")
                } else {
                    let next = self.seen.len() + 1;
                    let n = *self.seen.entry(value).or_insert(next);
                    format!("{{{name}#{n}}}")
                };
                out.replace_range(start..end, &replacement);
                from = start + replacement.len() + close.len();
            }
        }
        out
    }
}

/// Runs actions and records their masked bodies.
struct Recorder {
    h: Harness,
    masker: Masker,
    out: String,
}

impl Recorder {
    async fn iam(&mut self, label: &str, params: &[(&str, &str)]) -> String {
        let body = self
            .h
            .call(params)
            .await
            .unwrap_or_else(|e| panic!("{label}: {:?}", e.into_aws()));
        self.record(label, &body);
        body
    }

    async fn sts(&mut self, label: &str, params: &[(&str, &str)]) -> String {
        let form: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        let q = QueryRequest::parse(None, form.as_bytes()).unwrap();
        let mut info = caller("podid-admin");
        info.service = "sts".into();
        let response = crate::api::sts::dispatch(&self.h.state, &info, &q)
            .await
            .unwrap_or_else(|e| panic!("{label}: {:?}", e.into_aws()));
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/xml");
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = String::from_utf8(bytes.to_vec()).unwrap();
        self.record(label, &body);
        body
    }

    fn record(&mut self, label: &str, body: &str) {
        let masked = self.masker.mask(body);
        writeln!(self.out, "# {label}\n{masked}\n").unwrap();
    }
}

const INLINE: &str = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\"Effect\": \"Allow\", \"Action\": \"sqs:SendMessage\", \"Resource\": \"arn:aws:sqs:*:*:q<&>\"}\n  ]\n}";
const DENY: &str = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\"Sid\": \"NoSecret\", \"Effect\": \"Deny\", \"Action\": \"s3:GetObject\", \"Resource\": \"arn:aws:s3:::secret/*\"}\n  ]\n}";
const MANAGED: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#;
const S3_READ: &str = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess";
const ADMIN: &str = "arn:aws:iam::aws:policy/AdministratorAccess";

#[tokio::test]
async fn every_iam_and_sts_answer_matches_the_golden_bodies() {
    let h = harness().await;
    let mut keep = vec![
        catalog::CREATE_DATE.to_owned(),
        "AKIAADMINADMINADMIN2".into(),
        "AIDATEST".into(),
    ];
    for arn in [S3_READ, ADMIN] {
        keep.push(h.state.iam.catalog_policy(arn).unwrap().policy_id.clone());
    }
    let mut r = Recorder {
        h,
        masker: Masker {
            keep,
            ..Masker::default()
        },
        out: String::new(),
    };
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:user/podid-admin"}},"Action":["sts:AssumeRole","sts:TagSession","sts:SetSourceIdentity"]}}]}}"#
    );
    let managed_arn = format!("arn:aws:iam::{ACCOUNT}:policy/x/p");
    let plain_arn = format!("arn:aws:iam::{ACCOUNT}:policy/q");

    // Roles: one bare, one with every optional member (and text that must be escaped).
    let create_role = [
        ("Action", "CreateRole"),
        ("AssumeRolePolicyDocument", TRUST),
    ];
    r.iam(
        "CreateRole, no description or tags",
        &[create_role.as_slice(), &[("RoleName", "plain")]].concat(),
    )
    .await;
    r.iam(
        "CreateRole, every member",
        &[
            ("Action", "CreateRole"),
            ("RoleName", "app"),
            ("Path", "/team/"),
            ("AssumeRolePolicyDocument", &trust),
            ("Description", "Fish & \"chips\" <'s>"),
            ("MaxSessionDuration", "7200"),
            ("Tags.member.1.Key", "env"),
            ("Tags.member.1.Value", "dev"),
            ("Tags.member.2.Key", "note"),
            ("Tags.member.2.Value", "a<b>&\"c\"'d"),
        ],
    )
    .await;
    r.iam(
        "GetRole, tagged",
        &[("Action", "GetRole"), ("RoleName", "app")],
    )
    .await;
    r.iam(
        "GetRole, untagged",
        &[("Action", "GetRole"), ("RoleName", "plain")],
    )
    .await;
    r.iam("ListRoles", &[("Action", "ListRoles")]).await;
    r.iam(
        "ListRoles, truncated",
        &[("Action", "ListRoles"), ("MaxItems", "1")],
    )
    .await;
    r.iam(
        "ListRoles, empty",
        &[("Action", "ListRoles"), ("PathPrefix", "/nothing/")],
    )
    .await;
    r.iam(
        "ListRoleTags",
        &[("Action", "ListRoleTags"), ("RoleName", "app")],
    )
    .await;
    r.iam(
        "ListRoleTags, truncated",
        &[
            ("Action", "ListRoleTags"),
            ("RoleName", "app"),
            ("MaxItems", "1"),
        ],
    )
    .await;
    r.iam(
        "ListRoleTags, empty",
        &[("Action", "ListRoleTags"), ("RoleName", "plain")],
    )
    .await;
    r.iam(
        "TagRole",
        &[
            ("Action", "TagRole"),
            ("RoleName", "plain"),
            ("Tags.member.1.Key", "k"),
            ("Tags.member.1.Value", "v"),
        ],
    )
    .await;
    r.iam(
        "UntagRole",
        &[
            ("Action", "UntagRole"),
            ("RoleName", "plain"),
            ("TagKeys.member.1", "k"),
        ],
    )
    .await;
    r.iam(
        "UpdateAssumeRolePolicy",
        &[
            ("Action", "UpdateAssumeRolePolicy"),
            ("RoleName", "plain"),
            ("PolicyDocument", TRUST),
        ],
    )
    .await;

    // Inline and attached policies of a role.
    r.iam(
        "PutRolePolicy",
        &[
            ("Action", "PutRolePolicy"),
            ("RoleName", "app"),
            ("PolicyName", "sqs"),
            ("PolicyDocument", INLINE),
        ],
    )
    .await;
    r.iam(
        "GetRolePolicy",
        &[
            ("Action", "GetRolePolicy"),
            ("RoleName", "app"),
            ("PolicyName", "sqs"),
        ],
    )
    .await;
    r.iam(
        "ListRolePolicies",
        &[("Action", "ListRolePolicies"), ("RoleName", "app")],
    )
    .await;
    r.iam(
        "ListRolePolicies, empty",
        &[("Action", "ListRolePolicies"), ("RoleName", "plain")],
    )
    .await;
    r.iam(
        "AttachRolePolicy",
        &[
            ("Action", "AttachRolePolicy"),
            ("RoleName", "app"),
            ("PolicyArn", S3_READ),
        ],
    )
    .await;
    r.iam(
        "ListAttachedRolePolicies, empty",
        &[
            ("Action", "ListAttachedRolePolicies"),
            ("RoleName", "plain"),
        ],
    )
    .await;

    // Managed policies: customer (with and without optional members) and AWS.
    r.iam(
        "CreatePolicy, every member",
        &[
            ("Action", "CreatePolicy"),
            ("PolicyName", "p"),
            ("Path", "/x/"),
            ("PolicyDocument", MANAGED),
            ("Description", "reads <b> & more"),
            ("Tags.member.1.Key", "team"),
            ("Tags.member.1.Value", "red"),
        ],
    )
    .await;
    r.iam(
        "CreatePolicy, bare",
        &[
            ("Action", "CreatePolicy"),
            ("PolicyName", "q"),
            ("PolicyDocument", MANAGED),
        ],
    )
    .await;
    r.iam(
        "AttachRolePolicy, customer managed",
        &[
            ("Action", "AttachRolePolicy"),
            ("RoleName", "app"),
            ("PolicyArn", &managed_arn),
        ],
    )
    .await;
    r.iam(
        "ListAttachedRolePolicies",
        &[("Action", "ListAttachedRolePolicies"), ("RoleName", "app")],
    )
    .await;
    r.iam(
        "ListAttachedRolePolicies, truncated",
        &[
            ("Action", "ListAttachedRolePolicies"),
            ("RoleName", "app"),
            ("MaxItems", "1"),
        ],
    )
    .await;
    r.iam(
        "GetPolicy, customer managed",
        &[("Action", "GetPolicy"), ("PolicyArn", &managed_arn)],
    )
    .await;
    r.iam(
        "GetPolicy, customer managed, bare",
        &[("Action", "GetPolicy"), ("PolicyArn", &plain_arn)],
    )
    .await;
    r.iam(
        "GetPolicy, AWS managed",
        &[("Action", "GetPolicy"), ("PolicyArn", ADMIN)],
    )
    .await;
    r.iam(
        "GetPolicyVersion, customer managed",
        &[
            ("Action", "GetPolicyVersion"),
            ("PolicyArn", &managed_arn),
            ("VersionId", "v1"),
        ],
    )
    .await;
    r.iam(
        "GetPolicyVersion, AWS managed",
        &[
            ("Action", "GetPolicyVersion"),
            ("PolicyArn", S3_READ),
            ("VersionId", "v1"),
        ],
    )
    .await;

    // Users, their policies and access keys.
    r.iam(
        "CreateUser, tagged",
        &[
            ("Action", "CreateUser"),
            ("UserName", "dev"),
            ("Path", "/people/"),
            ("Tags.member.1.Key", "desk"),
            ("Tags.member.1.Value", "<3>"),
        ],
    )
    .await;
    r.iam(
        "CreateUser, bare",
        &[("Action", "CreateUser"), ("UserName", "bare")],
    )
    .await;
    r.iam(
        "GetUser, named",
        &[("Action", "GetUser"), ("UserName", "dev")],
    )
    .await;
    r.iam("GetUser, the caller", &[("Action", "GetUser")]).await;
    r.iam("ListUsers", &[("Action", "ListUsers")]).await;
    r.iam(
        "ListUsers, truncated",
        &[("Action", "ListUsers"), ("MaxItems", "1")],
    )
    .await;
    r.iam(
        "PutUserPolicy",
        &[
            ("Action", "PutUserPolicy"),
            ("UserName", "dev"),
            ("PolicyName", "no-secret"),
            ("PolicyDocument", DENY),
        ],
    )
    .await;
    r.iam(
        "GetUserPolicy",
        &[
            ("Action", "GetUserPolicy"),
            ("UserName", "dev"),
            ("PolicyName", "no-secret"),
        ],
    )
    .await;
    r.iam(
        "ListUserPolicies",
        &[("Action", "ListUserPolicies"), ("UserName", "dev")],
    )
    .await;
    r.iam(
        "AttachUserPolicy",
        &[
            ("Action", "AttachUserPolicy"),
            ("UserName", "dev"),
            ("PolicyArn", S3_READ),
        ],
    )
    .await;
    r.iam(
        "ListAttachedUserPolicies",
        &[("Action", "ListAttachedUserPolicies"), ("UserName", "dev")],
    )
    .await;
    r.iam(
        "CreateAccessKey",
        &[("Action", "CreateAccessKey"), ("UserName", "dev")],
    )
    .await;
    let keys = r
        .iam(
            "ListAccessKeys",
            &[("Action", "ListAccessKeys"), ("UserName", "dev")],
        )
        .await;
    r.iam(
        "ListAccessKeys, the caller",
        &[("Action", "ListAccessKeys")],
    )
    .await;
    r.iam(
        "ListAccessKeys, empty",
        &[("Action", "ListAccessKeys"), ("UserName", "bare")],
    )
    .await;

    // Simulation: a deny with its position, an allow from a managed policy, an input policy.
    let dev_arn = format!("arn:aws:iam::{ACCOUNT}:user/people/dev");
    r.iam(
        "SimulatePrincipalPolicy, user",
        &[
            ("Action", "SimulatePrincipalPolicy"),
            ("PolicySourceArn", &dev_arn),
            ("ActionNames.member.1", "s3:GetObject"),
            ("ActionNames.member.2", "s3:PutObject"),
            ("ActionNames.member.3", "sqs:SendMessage"),
            ("ResourceArns.member.1", "arn:aws:s3:::secret/k"),
            ("ResourceArns.member.2", "arn:aws:s3:::open/<k>"),
            ("PolicyInputList.member.1", INLINE),
        ],
    )
    .await;
    r.iam(
        "SimulatePrincipalPolicy, role, no matches",
        &[
            ("Action", "SimulatePrincipalPolicy"),
            (
                "PolicySourceArn",
                &format!("arn:aws:iam::{ACCOUNT}:role/plain"),
            ),
            ("ActionNames.member.1", "s3:GetObject"),
        ],
    )
    .await;

    // STS.
    r.sts(
        "GetCallerIdentity",
        &[("Action", "GetCallerIdentity"), ("Version", "2011-06-15")],
    )
    .await;
    let app_arn = format!("arn:aws:iam::{ACCOUNT}:role/team/app");
    r.sts(
        "AssumeRole, bare",
        &[
            ("Action", "AssumeRole"),
            ("RoleArn", &app_arn),
            ("RoleSessionName", "s1"),
        ],
    )
    .await;
    r.sts(
        "AssumeRole, policy, tags and source identity",
        &[
            ("Action", "AssumeRole"),
            ("RoleArn", &app_arn),
            ("RoleSessionName", "s2"),
            ("DurationSeconds", "900"),
            ("Policy", MANAGED),
            ("Tags.member.1.Key", "team"),
            ("Tags.member.1.Value", "a&b"),
            ("SourceIdentity", "alice"),
        ],
    )
    .await;

    // Every answer without a result shape.
    let key_id = keys
        .split("<AccessKeyId>")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap()
        .to_owned();
    r.iam(
        "DeleteAccessKey",
        &[
            ("Action", "DeleteAccessKey"),
            ("UserName", "dev"),
            ("AccessKeyId", &key_id),
        ],
    )
    .await;
    r.iam(
        "DetachUserPolicy",
        &[
            ("Action", "DetachUserPolicy"),
            ("UserName", "dev"),
            ("PolicyArn", S3_READ),
        ],
    )
    .await;
    r.iam(
        "DeleteUserPolicy",
        &[
            ("Action", "DeleteUserPolicy"),
            ("UserName", "dev"),
            ("PolicyName", "no-secret"),
        ],
    )
    .await;
    r.iam(
        "DeleteUser",
        &[("Action", "DeleteUser"), ("UserName", "dev")],
    )
    .await;
    r.iam(
        "DetachRolePolicy",
        &[
            ("Action", "DetachRolePolicy"),
            ("RoleName", "app"),
            ("PolicyArn", &managed_arn),
        ],
    )
    .await;
    r.iam(
        "DeleteRolePolicy",
        &[
            ("Action", "DeleteRolePolicy"),
            ("RoleName", "app"),
            ("PolicyName", "sqs"),
        ],
    )
    .await;
    r.iam(
        "DeletePolicy",
        &[("Action", "DeletePolicy"), ("PolicyArn", &plain_arn)],
    )
    .await;
    r.iam(
        "DeleteRole",
        &[("Action", "DeleteRole"), ("RoleName", "plain")],
    )
    .await;

    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/api/iam/tests/golden.txt");
    if std::env::var_os("PODID_BLESS").is_some() {
        std::fs::write(path, &r.out).unwrap();
        return;
    }
    let want = std::fs::read_to_string(path).unwrap();
    for (got, want) in r.out.split("\n\n").zip(want.split("\n\n")) {
        assert_eq!(got, want, "an answer differs from golden.txt");
    }
    assert_eq!(r.out, want, "golden.txt has a different set of answers");
}
