//! Parser refusals first, then accepted forms. Refusal texts follow IAM's
//! MalformedPolicyDocument messages where IAM has a specific one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use podid_iam::{MAX_POLICY_BYTES, MAX_STATEMENTS, Policy, PolicyError, PolicyVersion};

fn err(json: &str) -> PolicyError {
    match Policy::parse(json) {
        Ok(_) => panic!("should be refused: {json}"),
        Err(e) => e,
    }
}

fn stmt(body: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{{{body}}}]}}"#)
}

#[test]
fn refuses_oversized_document_before_parsing() {
    let big = format!(
        r#"{{"Version":"2012-10-17","Statement":[],"Id":"{}"}}"#,
        "x".repeat(MAX_POLICY_BYTES)
    );
    assert!(matches!(
        err(&big),
        PolicyError::TooLarge {
            max: MAX_POLICY_BYTES
        }
    ));
    // Exactly at the cap is fine size-wise (then refused for its content only).
    let pad = MAX_POLICY_BYTES
        - r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"},"Id":""}"#.len();
    let at_cap = format!(
        r#"{{"Statement":{{"Effect":"Allow","Action":"*","Resource":"*"}},"Id":"{}"}}"#,
        "x".repeat(pad)
    );
    assert_eq!(at_cap.len(), MAX_POLICY_BYTES);
    assert!(Policy::parse(&at_cap).is_ok());
}

#[test]
fn refuses_bad_json() {
    for bad in ["", "{", "not json", r#"{"Version":"2012-10-17",}"#, "[1,2"] {
        let e = err(bad);
        assert!(matches!(e, PolicyError::InvalidJson(_)), "{bad}: {e}");
        assert_eq!(e.aws_message(), "This policy contains invalid Json");
    }
}

#[test]
fn refuses_hostile_shapes() {
    let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
    assert!(matches!(err(&deep), PolicyError::TooComplex(_)));
    let deep_cond =
        stmt(r#""Effect":"Allow","Action":"*","Condition":{"StringEquals":{"k":[["x"]]}}"#);
    assert!(matches!(err(&deep_cond), PolicyError::TooComplex(_)));
    let many_values = stmt(&format!(
        r#""Effect":"Allow","Action":[{}]"#,
        vec![r#""a""#; 20_000].join(",")
    ));
    assert!(many_values.len() <= MAX_POLICY_BYTES);
    assert!(matches!(err(&many_values), PolicyError::TooComplex(_)));
    let one = r#"{"Effect":"Allow","Action":"*"}"#;
    let many_stmts = format!(
        r#"{{"Statement":[{}]}}"#,
        vec![one; MAX_STATEMENTS + 1].join(",")
    );
    assert!(matches!(err(&many_stmts), PolicyError::TooComplex(_)));
    let ok_stmts = format!(
        r#"{{"Statement":[{}]}}"#,
        vec![one; MAX_STATEMENTS].join(",")
    );
    assert_eq!(
        Policy::parse(&ok_stmts).unwrap().statements().len(),
        MAX_STATEMENTS
    );
}

/// Document, expected variant, expected IAM message.
type RefusalCase = (String, fn(&PolicyError) -> bool, &'static str);

#[test]
fn refuses_structural_errors() {
    let cases: Vec<RefusalCase> = vec![
        (
            r#"[]"#.into(),
            |e| matches!(e, PolicyError::Syntax(_)),
            "Syntax errors in policy.",
        ),
        (
            r#"{"Version":"2012-10-17"}"#.into(),
            |e| matches!(e, PolicyError::MissingStatement),
            "Syntax errors in policy.",
        ),
        (
            r#"{"Statement":[]}"#.into(),
            |e| matches!(e, PolicyError::MissingStatement),
            "Syntax errors in policy.",
        ),
        (
            r#"{"Statement":"Allow"}"#.into(),
            |e| matches!(e, PolicyError::Syntax(_)),
            "Syntax errors in policy.",
        ),
        (
            r#"{"Statement":["x"]}"#.into(),
            |e| matches!(e, PolicyError::Syntax(_)),
            "Syntax errors in policy.",
        ),
        (
            r#"{"Version":"2012-10-18","Statement":{}}"#.into(),
            |e| matches!(e, PolicyError::UnsupportedVersion(_)),
            "The policy must contain a valid version string",
        ),
        (
            r#"{"Version":2012,"Statement":{}}"#.into(),
            |e| matches!(e, PolicyError::UnsupportedVersion(_)),
            "The policy must contain a valid version string",
        ),
        (
            r#"{"Statement":{"Effect":"Allow","Action":"*"},"Extra":1}"#.into(),
            |e| matches!(e, PolicyError::UnknownElement(_)),
            "Syntax errors in policy.",
        ),
        (
            r#"{"Id":5,"Statement":{"Effect":"Allow","Action":"*"}}"#.into(),
            |e| matches!(e, PolicyError::Syntax(_)),
            "Syntax errors in policy.",
        ),
        (
            stmt(r#""Action":"*","Resource":"*""#),
            |e| matches!(e, PolicyError::MissingEffect),
            "Missing required field Effect",
        ),
        (
            stmt(r#""Effect":"allow","Action":"*""#),
            |e| matches!(e, PolicyError::InvalidEffect(_)),
            "Syntax errors in policy.",
        ),
        (
            stmt(r#""Effect":true,"Action":"*""#),
            |e| matches!(e, PolicyError::InvalidEffect(_)),
            "Syntax errors in policy.",
        ),
        (
            stmt(r#""Effect":"Allow","Resource":"*""#),
            |e| matches!(e, PolicyError::MissingAction),
            "Policy statement must contain actions.",
        ),
        (
            stmt(r#""Effect":"Allow","Action":[],"Resource":"*""#),
            |e| matches!(e, PolicyError::MissingAction),
            "Policy statement must contain actions.",
        ),
        (
            stmt(r#""Effect":"Allow","Action":"*","NotAction":"s3:*""#),
            |e| matches!(e, PolicyError::Conflicting(_)),
            "Syntax errors in policy.",
        ),
        (
            stmt(r#""Effect":"Allow","Action":"*","Resource":"*","NotResource":"*""#),
            |e| matches!(e, PolicyError::Conflicting(_)),
            "Syntax errors in policy.",
        ),
        (
            stmt(r#""Effect":"Allow","Action":"*","Principal":"*","NotPrincipal":"*""#),
            |e| matches!(e, PolicyError::Conflicting(_)),
            "Syntax errors in policy.",
        ),
        (
            stmt(r#""Effect":"Allow","Action":"s3GetObject""#),
            |e| matches!(e, PolicyError::InvalidAction(_)),
            "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
        ),
        (
            stmt(r#""Effect":"Allow","Action":":GetObject""#),
            |e| matches!(e, PolicyError::InvalidAction(_)),
            "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
        ),
        (
            stmt(r#""Effect":"Allow","Action":[5]"#),
            |e| matches!(e, PolicyError::Syntax(_)),
            "Syntax errors in policy.",
        ),
        (
            stmt(r#""Effect":"Allow","Action":"*","Resource":"my-bucket""#),
            |e| matches!(e, PolicyError::InvalidResource(_)),
            "Syntax errors in policy.",
        ),
        (
            stmt(r#""Effect":"Allow","Action":"*","Resource":"arn:aws:s3""#),
            |e| matches!(e, PolicyError::InvalidResource(_)),
            "Syntax errors in policy.",
        ),
        (
            stmt(r#""Effect":"Allow","Action":"*","Resource":[]"#),
            |e| matches!(e, PolicyError::MissingResource),
            "Policy statement must contain resources.",
        ),
        (
            stmt(r#""Effect":"Allow","Action":"*","Principal":"arn:aws:iam::111122223333:root""#),
            |e| matches!(e, PolicyError::InvalidPrincipal(_)),
            "Invalid principal in policy: \"arn:aws:iam::111122223333:root\"",
        ),
        (
            stmt(
                r#""Effect":"Allow","Action":"*","Principal":{"AWS":"arn:aws:iam::111122223333:role/*"}"#,
            ),
            |e| matches!(e, PolicyError::InvalidPrincipal(_)),
            "Invalid principal in policy: \"AWS\":\"arn:aws:iam::111122223333:role/*\"",
        ),
        (
            stmt(r#""Effect":"Allow","Action":"*","Principal":{"Unknown":"x"}"#),
            |e| matches!(e, PolicyError::InvalidPrincipal(_)),
            "Invalid principal in policy: \"Unknown\":\"x\"",
        ),
        (
            stmt(r#""Effect":"Allow","Action":"*","Condition":{"StringEqualz":{"k":"v"}}"#),
            |e| matches!(e, PolicyError::UnknownConditionOperator(_)),
            "Invalid Condition type : StringEqualz.",
        ),
        (
            stmt(
                r#""Effect":"Allow","Action":"*","Condition":{"ForSomeValues:StringEquals":{"k":"v"}}"#,
            ),
            |e| matches!(e, PolicyError::UnknownConditionOperator(_)),
            "Invalid Condition type : ForSomeValues:StringEquals.",
        ),
        (
            stmt(r#""Effect":"Allow","Action":"*","Condition":{"NullIfExists":{"k":"true"}}"#),
            |e| matches!(e, PolicyError::UnknownConditionOperator(_)),
            "Invalid Condition type : NullIfExists.",
        ),
        (
            stmt(r#""Effect":"Allow","Action":"*","Condition":{"StringEquals":{"k":null}}"#),
            |e| matches!(e, PolicyError::InvalidConditionValue(_)),
            "Syntax errors in policy.",
        ),
        (
            stmt(r#""Effect":"Allow","Action":"*","Condition":{"StringEquals":{"k":{"a":"b"}}}"#),
            |e| matches!(e, PolicyError::InvalidConditionValue(_)),
            "Syntax errors in policy.",
        ),
        (
            stmt(r#""Effect":"Allow","Action":"*","Condition":{"StringEquals":"v"}"#),
            |e| matches!(e, PolicyError::Syntax(_)),
            "Syntax errors in policy.",
        ),
        (
            stmt(r#""Effect":"Allow","Action":"*","Condition":[]"#),
            |e| matches!(e, PolicyError::Syntax(_)),
            "Syntax errors in policy.",
        ),
        (
            stmt(r#""Effect":"Allow","Action":"*","Sid":7"#),
            |e| matches!(e, PolicyError::Syntax(_)),
            "Syntax errors in policy.",
        ),
        (
            stmt(r#""Effect":"Allow","Action":"*","Actions":"*""#),
            |e| matches!(e, PolicyError::UnknownElement(_)),
            "Syntax errors in policy.",
        ),
    ];
    for (json, is, aws) in cases {
        let e = err(&json);
        assert!(is(&e), "{json}: got {e:?}");
        assert_eq!(e.aws_message(), aws, "{json}");
        assert!(!e.to_string().ends_with('.'), "display text: {e}");
    }
}

#[test]
fn policy_type_checks() {
    let trust = Policy::parse(&stmt(r#""Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":"sts:AssumeRole""#)).unwrap();
    assert!(trust.check_resource_policy().is_ok());
    let e = trust.check_identity_policy().unwrap_err();
    assert_eq!(
        e.aws_message(),
        "Policy document should not specify a principal."
    );
    let identity =
        Policy::parse(&stmt(r#""Effect":"Allow","Action":"s3:*","Resource":"*""#)).unwrap();
    assert!(identity.check_identity_policy().is_ok());
    assert!(matches!(
        identity.check_resource_policy(),
        Err(PolicyError::MissingPrincipal)
    ));
    let no_resource = Policy::parse(&stmt(r#""Effect":"Allow","Action":"s3:*""#)).unwrap();
    assert_eq!(
        no_resource
            .check_identity_policy()
            .unwrap_err()
            .aws_message(),
        "Policy statement must contain resources."
    );
}

#[test]
fn accepts_grammar_forms_and_keeps_text() {
    let text = "{ \"Version\" : \"2012-10-17\", \"Id\": \"p1\",\n  \"Statement\": {\"Sid\":\"One\",\"Effect\":\"Deny\",\"NotAction\":\"iam:*\",\"NotResource\":[\"arn:aws:iam::*:role/x\"]} }";
    let p = Policy::parse(text).unwrap();
    assert_eq!(p.text(), text);
    assert_eq!(p.version(), Some(PolicyVersion::V2012_10_17));
    assert_eq!(p.id(), Some("p1"));
    assert_eq!(p.statements().len(), 1);
    assert_eq!(p.statements()[0].sid(), Some("One"));
    assert_eq!(p.statements()[0].effect(), podid_iam::Effect::Deny);
    let old = Policy::parse(
        r#"{"Version":"2008-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"*"}}"#,
    )
    .unwrap();
    assert_eq!(old.version(), Some(PolicyVersion::V2008_10_17));
    let none = Policy::parse(r#"{"Statement":{"Effect":"Allow","Action":"*"}}"#).unwrap();
    assert_eq!(none.version(), None);
    // Every operator family, scalar kinds, and the deepest legitimate nesting.
    let all_ops = stmt(
        r#""Effect":"Allow","Action":"*","Resource":"*","Condition":{
        "StringEquals":{"a":["x",1,true]},"StringNotEqualsIgnoreCase":{"a":"x"},"StringLike":{"a":"x*"},
        "NumericGreaterThanEqualsIfExists":{"n":1.5},"DateLessThan":{"d":"2020-01-01T00:00:00Z"},
        "Bool":{"b":true},"BinaryEquals":{"bin":"AA=="},"IpAddress":{"ip":["10.0.0.0/8","::1/128"]},
        "NotIpAddress":{"ip":"192.0.2.1"},"ArnLike":{"arn":"arn:aws:s3:::*"},"ArnNotEquals":{"arn":"*"},
        "Null":{"x":"true"},"ForAllValues:StringLike":{"t":["a*"]},"foranyvalue:stringequals":{"t":"a"}}"#,
    );
    assert!(Policy::parse(&all_ops).is_ok());
}

#[test]
fn policy_is_shareable() {
    fn assert_traits<T: Clone + Send + Sync + std::fmt::Debug + 'static>() {}
    assert_traits::<Policy>();
    assert_traits::<podid_iam::RequestContext>();
    assert_traits::<podid_iam::Evaluation>();
}
