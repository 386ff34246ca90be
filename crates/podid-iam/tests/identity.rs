//! Identity-based evaluation, table-driven; expected answers come from the AWS IAM
//! User Guide pages cited above each group.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use podid_iam::{Decision, PolicySource, RequestContext, evaluate, evaluate_with_session_policies};
use support::*;

// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
// ("Determining whether a request is allowed or denied within an account"): explicit
// deny wins, then an allow, else implicit deny.
#[test]
fn evaluation_logic() {
    let allow = pol(r#"{"Version":"2012-10-17","Statement":[
        {"Sid":"Read","Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*"}]}"#);
    let deny = pol(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"s3:*",
        "Resource":"arn:aws:s3:::amzn-s3-demo-bucket/secret/*"}}"#,
    );
    let both = pol(r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"*","Resource":"*"},
        {"Effect":"Deny","Action":"s3:DeleteObject","Resource":"*"}]}"#);
    let obj = "arn:aws:s3:::amzn-s3-demo-bucket/a.txt";
    let secret = "arn:aws:s3:::amzn-s3-demo-bucket/secret/k";
    let rows = vec![
        ("allow matches", req(alice(), "s3:GetObject", obj), A),
        (
            "other action implicit",
            req(alice(), "s3:PutObject", obj),
            I,
        ),
        (
            "other bucket implicit",
            req(alice(), "s3:GetObject", "arn:aws:s3:::other/a"),
            I,
        ),
        (
            "bucket itself not object",
            req(alice(), "s3:GetObject", "arn:aws:s3:::amzn-s3-demo-bucket"),
            I,
        ),
        (
            "deny beats allow across policies",
            req(alice(), "s3:GetObject", secret),
            D,
        ),
        (
            "deny not matching leaves allow",
            req(alice(), "s3:GetObject", obj),
            A,
        ),
        (
            "deny alone on other action is implicit",
            req(alice(), "s3:PutObject", obj),
            I,
        ),
    ];
    let r = |i: usize| rows.get(i).map(|r| r.1.clone()).unwrap();
    assert_eq!(
        evaluate(&[], &r(0)).decision,
        Decision::ImplicitDeny,
        "no policy at all"
    );
    run("logic", |q| evaluate(&[&allow, &deny], q), rows);
    run(
        "logic-same-policy",
        |q| evaluate(&[&both], q),
        vec![
            ("allow * allows", req(alice(), "ec2:RunInstances", "*"), A),
            (
                "deny in same policy wins",
                req(alice(), "s3:DeleteObject", obj),
                D,
            ),
            (
                "deny action case-insensitive",
                req(alice(), "S3:deleteobject", obj),
                D,
            ),
        ],
    );
}

// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
// MatchedStatements as SimulatePrincipalPolicy reports them.
#[test]
fn matched_statements_name_the_deciders() {
    let p = pol(r#"{"Version":"2012-10-17","Statement":[
        {"Sid":"A1","Effect":"Allow","Action":"s3:Get*","Resource":"*"},
        {"Effect":"Allow","Action":"s3:GetObject","Resource":"*"},
        {"Sid":"D1","Effect":"Deny","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/x"}]}"#);
    let e = evaluate(&[&p], &req(alice(), "s3:GetObject", "arn:aws:s3:::b/y"));
    assert_eq!(e.decision, Decision::Allowed);
    let got: Vec<_> = e
        .matched_statements
        .iter()
        .map(|m| (m.statement_index, m.sid.as_deref()))
        .collect();
    assert_eq!(got, vec![(0, Some("A1")), (1, None)]);
    assert!(
        e.matched_statements
            .iter()
            .all(|m| m.source == PolicySource::Identity && m.policy_index == 0)
    );
    let e = evaluate(&[&p, &p], &req(alice(), "s3:GetObject", "arn:aws:s3:::b/x"));
    assert_eq!(e.decision, Decision::ExplicitDeny);
    let got: Vec<_> = e
        .matched_statements
        .iter()
        .map(|m| (m.policy_index, m.sid.as_deref()))
        .collect();
    assert_eq!(got, vec![(0, Some("D1")), (1, Some("D1"))]);
    assert!(
        evaluate(&[&p], &req(alice(), "s3:PutObject", "*"))
            .matched_statements
            .is_empty()
    );
}

// AmazonS3ReadOnlyAccess (AWS managed policy reference) and
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html
// (action names are case-insensitive; wildcards match any run of characters).
#[test]
fn s3_read_only_access() {
    let p = pol(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
        "Action":["s3:Get*","s3:List*","s3:Describe*","s3-object-lambda:Get*","s3-object-lambda:List*"],
        "Resource":"*"}]}"#);
    let o = "arn:aws:s3:::amzn-s3-demo-bucket/photo.jpg";
    let rows = vec![
        ("GetObject", req(alice(), "s3:GetObject", o), A),
        (
            "ListBucket",
            req(alice(), "s3:ListBucket", "arn:aws:s3:::amzn-s3-demo-bucket"),
            A,
        ),
        (
            "ListAllMyBuckets",
            req(alice(), "s3:ListAllMyBuckets", "*"),
            A,
        ),
        (
            "GetBucketPolicy",
            req(
                alice(),
                "s3:GetBucketPolicy",
                "arn:aws:s3:::amzn-s3-demo-bucket",
            ),
            A,
        ),
        (
            "action case-insensitive",
            req(alice(), "S3:GETOBJECT", o),
            A,
        ),
        ("star may match nothing", req(alice(), "s3:Get", o), A),
        (
            "object lambda",
            req(alice(), "s3-object-lambda:GetObject", o),
            A,
        ),
        ("PutObject implicit", req(alice(), "s3:PutObject", o), I),
        (
            "DeleteObject implicit",
            req(alice(), "s3:DeleteObject", o),
            I,
        ),
        (
            "PutBucketPolicy implicit",
            req(alice(), "s3:PutBucketPolicy", o),
            I,
        ),
        (
            "other service implicit",
            req(alice(), "ec2:DescribeInstances", "*"),
            I,
        ),
        (
            "service prefix is not a wildcard",
            req(alice(), "s3x:GetObject", o),
            I,
        ),
    ];
    run("s3-read-only", |q| evaluate(&[&p], q), rows);
}

// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html
#[test]
fn action_wildcards() {
    let cases: Vec<(&str, &str, &str, Decision)> = vec![
        ("star alone", "*", "iam:CreateUser", A),
        ("service star", "iam:*", "iam:CreateUser", A),
        ("service star other service", "iam:*", "sts:AssumeRole", I),
        ("infix star", "iam:*AccessKey*", "iam:CreateAccessKey", A),
        ("infix star no hit", "iam:*AccessKey*", "iam:CreateUser", I),
        (
            "question mark",
            "ec2:Describe?nstances",
            "ec2:DescribeInstances",
            A,
        ),
        (
            "question mark needs one char",
            "ec2:Describe?nstances",
            "ec2:Describenstances",
            I,
        ),
        (
            "exact differs",
            "sts:AssumeRole",
            "sts:AssumeRoleWithWebIdentity",
            I,
        ),
        (
            "prefix",
            "sts:AssumeRole*",
            "sts:AssumeRoleWithWebIdentity",
            A,
        ),
        (
            "pattern case-insensitive",
            "STS:ASSUMEROLE",
            "sts:AssumeRole",
            A,
        ),
    ];
    let rows = cases.into_iter().map(|(name, pat, action, want)| {
        let p = pol(&format!(r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Action":"{pat}","Resource":"*"}}}}"#));
        (name, p, req(alice(), action, "*"), want)
    });
    run_each("action-wildcards", rows.collect());
}

// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html
// ("Including wildcard characters in the resource ARN": wildcards work within each
// ARN field; in the resource part `*` also spans `/` and `:`; matching is case-sensitive)
#[test]
fn resource_arn_matching() {
    let cases: Vec<(&str, &str, &str, Decision)> = vec![
        (
            "object prefix",
            "arn:aws:s3:::b/*",
            "arn:aws:s3:::b/a/b/c",
            A,
        ),
        ("bucket vs objects", "arn:aws:s3:::b/*", "arn:aws:s3:::b", I),
        ("other bucket", "arn:aws:s3:::b/*", "arn:aws:s3:::b2/x", I),
        (
            "case-sensitive",
            "arn:aws:s3:::Bucket/*",
            "arn:aws:s3:::bucket/x",
            I,
        ),
        (
            "account wildcard",
            "arn:aws:iam::*:role/*",
            "arn:aws:iam::444455556666:role/x",
            A,
        ),
        (
            "role pattern not user",
            "arn:aws:iam::*:role/*",
            "arn:aws:iam::444455556666:user/x",
            I,
        ),
        (
            "region wildcard",
            "arn:aws:ec2:*:111122223333:instance/*",
            "arn:aws:ec2:us-east-1:111122223333:instance/i-1",
            A,
        ),
        (
            "region prefix",
            "arn:aws:ec2:us-*:111122223333:instance/*",
            "arn:aws:ec2:eu-west-1:111122223333:instance/i-1",
            I,
        ),
        (
            "field star stays in field",
            "arn:aws:ec2:us-east-1*:111122223333:instance/*",
            "arn:aws:ec2:us-east-1:x:111122223333:instance/i",
            I,
        ),
        (
            "resource star spans colons",
            "arn:aws:logs:us-east-1:*:log-group:app*",
            "arn:aws:logs:us-east-1:111122223333:log-group:app-1:log-stream:s",
            A,
        ),
        (
            "resource star spans all",
            "arn:aws:s3:::*",
            "arn:aws:s3:::bucket/key:with:colons",
            A,
        ),
        (
            "question mark",
            "arn:aws:s3:::bucket-?",
            "arn:aws:s3:::bucket-a",
            A,
        ),
        (
            "question mark one char",
            "arn:aws:s3:::bucket-?",
            "arn:aws:s3:::bucket-ab",
            I,
        ),
        (
            "all fields star",
            "arn:*:*:*:*:*",
            "arn:aws:sqs:us-east-1:111122223333:q",
            A,
        ),
        (
            "star resource",
            "*",
            "arn:aws:sqs:us-east-1:111122223333:q",
            A,
        ),
        ("star resource, non-ARN request", "*", "*", A),
        (
            "specific pattern, non-ARN request",
            "arn:aws:s3:::b/*",
            "*",
            I,
        ),
        (
            "partition mismatch",
            "arn:aws:s3:::b/*",
            "arn:aws-cn:s3:::b/x",
            I,
        ),
        (
            "service field wildcard",
            "arn:aws:s3*:::b",
            "arn:aws:s3-object-lambda:::b",
            A,
        ),
    ];
    let rows = cases.into_iter().map(|(name, pat, res, want)| {
        let p = pol(&format!(r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Action":"*","Resource":"{pat}"}}}}"#));
        (name, p, req(alice(), "s3:GetObject", res), want)
    });
    run_each("resource", rows.collect());
}

// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notaction.html
#[test]
fn not_action() {
    let allow_all_but_iam = pol(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}}"#,
    );
    run(
        "notaction-allow",
        |q| evaluate(&[&allow_all_but_iam], q),
        vec![
            (
                "non-iam allowed",
                req(alice(), "s3:GetObject", "arn:aws:s3:::b/k"),
                A,
            ),
            ("iam not granted", req(alice(), "iam:CreateUser", "*"), I),
            (
                "iam case-insensitive",
                req(alice(), "IAM:createuser", "*"),
                I,
            ),
        ],
    );
    // "Deny all services except IAM" pattern, combined with an Allow *.
    let deny_except = pol(r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"*","Resource":"*"},
        {"Effect":"Deny","NotAction":["iam:*","sts:*"],"Resource":"*"}]}"#);
    run(
        "notaction-deny",
        |q| evaluate(&[&deny_except], q),
        vec![
            ("s3 denied", req(alice(), "s3:GetObject", "*"), D),
            ("ec2 denied", req(alice(), "ec2:RunInstances", "*"), D),
            ("iam allowed", req(alice(), "iam:ListRoles", "*"), A),
            ("sts allowed", req(alice(), "sts:GetCallerIdentity", "*"), A),
        ],
    );
    // NotAction with a Deny and a condition: deny everything but IAM without MFA.
    let mfa = pol(r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"*","Resource":"*"},
        {"Effect":"Deny","NotAction":"iam:*","Resource":"*",
         "Condition":{"BoolIfExists":{"aws:MultiFactorAuthPresent":"false"}}}]}"#);
    run(
        "notaction-mfa",
        |q| evaluate(&[&mfa], q),
        vec![
            ("no MFA key: denied", req(alice(), "s3:GetObject", "*"), D),
            (
                "MFA false: denied",
                req(alice(), "s3:GetObject", "*").with_value("aws:MultiFactorAuthPresent", "false"),
                D,
            ),
            (
                "MFA true: allowed",
                req(alice(), "s3:GetObject", "*").with_value("aws:MultiFactorAuthPresent", "true"),
                A,
            ),
            (
                "iam without MFA: allowed",
                req(alice(), "iam:ChangePassword", "*"),
                A,
            ),
        ],
    );
}

// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notresource.html
#[test]
fn not_resource() {
    let p = pol(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*",
        "NotResource":["arn:aws:s3:::HRBucket/Payroll","arn:aws:s3:::HRBucket/Payroll/*"]}}"#,
    );
    let d = pol(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"},
        {"Effect":"Deny","Action":"s3:*","NotResource":["arn:aws:s3:::allowed-bucket","arn:aws:s3:::allowed-bucket/*"]}]}"#,
    );
    run(
        "notresource-allow",
        |q| evaluate(&[&p], q),
        vec![
            (
                "other object allowed",
                req(alice(), "s3:GetObject", "arn:aws:s3:::HRBucket/Other/x"),
                A,
            ),
            (
                "payroll object implicit",
                req(alice(), "s3:GetObject", "arn:aws:s3:::HRBucket/Payroll/x"),
                I,
            ),
            (
                "payroll prefix implicit",
                req(alice(), "s3:ListBucket", "arn:aws:s3:::HRBucket/Payroll"),
                I,
            ),
            (
                "other service not granted",
                req(alice(), "ec2:RunInstances", "arn:aws:s3:::x"),
                I,
            ),
        ],
    );
    run(
        "notresource-deny",
        |q| evaluate(&[&d], q),
        vec![
            (
                "allowed bucket",
                req(alice(), "s3:GetObject", "arn:aws:s3:::allowed-bucket/k"),
                A,
            ),
            (
                "other bucket denied",
                req(alice(), "s3:GetObject", "arn:aws:s3:::other/k"),
                D,
            ),
        ],
    );
}

// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html
#[test]
fn policy_variables() {
    let home = pol(r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::amzn-s3-demo-bucket",
         "Condition":{"StringLike":{"s3:prefix":["${aws:username}/*"]}}},
        {"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::amzn-s3-demo-bucket/${aws:username}/*"}]}"#);
    let bucket = "arn:aws:s3:::amzn-s3-demo-bucket";
    let role = || session(ACCT, "app", "s1");
    run(
        "variables-username",
        |q| evaluate(&[&home], q),
        vec![
            (
                "own home",
                req(alice(), "s3:GetObject", &format!("{bucket}/alice/x")),
                A,
            ),
            (
                "someone else's home",
                req(alice(), "s3:GetObject", &format!("{bucket}/bob/x")),
                I,
            ),
            (
                "session has no username",
                req(role(), "s3:GetObject", &format!("{bucket}/alice/x")),
                I,
            ),
            (
                "prefix condition own",
                req(alice(), "s3:ListBucket", bucket).with_value("s3:prefix", "alice/docs"),
                A,
            ),
            (
                "prefix condition other",
                req(alice(), "s3:ListBucket", bucket).with_value("s3:prefix", "bob/docs"),
                I,
            ),
            (
                "explicit aws:username wins",
                req(role(), "s3:GetObject", &format!("{bucket}/carol/x"))
                    .with_value("aws:username", "carol"),
                A,
            ),
        ],
    );
    let v2008 = pol(
        r#"{"Version":"2008-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject",
        "Resource":"arn:aws:s3:::b/${aws:username}/*"}}"#,
    );
    let absent = pol(
        r#"{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/${aws:username}/*"}}"#,
    );
    for (name, p) in [("2008", &v2008), ("absent version", &absent)] {
        run(
            name,
            |q| evaluate(&[p], q),
            vec![
                (
                    "variable not substituted",
                    req(alice(), "s3:GetObject", "arn:aws:s3:::b/alice/x"),
                    I,
                ),
                (
                    "literal text matches",
                    req(alice(), "s3:GetObject", "arn:aws:s3:::b/${aws:username}/x"),
                    A,
                ),
            ],
        );
    }
    let special = pol(r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/${*}"},
        {"Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::b/q${?}/${$}x"},
        {"Effect":"Allow","Action":"s3:DeleteObject","Resource":"arn:aws:s3:::b/${aws:PrincipalTag/team, 'none'}/*"},
        {"Effect":"Allow","Action":"s3:GetObjectTagging","Resource":"arn:aws:s3:::b/${aws:TagKeys}"}]}"#);
    run(
        "variables-special",
        |q| evaluate(&[&special], q),
        vec![
            (
                "${*} is a literal star",
                req(alice(), "s3:GetObject", "arn:aws:s3:::b/*"),
                A,
            ),
            (
                "${*} is not a wildcard",
                req(alice(), "s3:GetObject", "arn:aws:s3:::b/x"),
                I,
            ),
            (
                "${?} and ${$} literal",
                req(alice(), "s3:PutObject", "arn:aws:s3:::b/q?/$x"),
                A,
            ),
            (
                "${?} is not a wildcard",
                req(alice(), "s3:PutObject", "arn:aws:s3:::b/qa/$x"),
                I,
            ),
            (
                "default used when absent",
                req(alice(), "s3:DeleteObject", "arn:aws:s3:::b/none/k"),
                A,
            ),
            (
                "value used when present",
                req(alice(), "s3:DeleteObject", "arn:aws:s3:::b/red/k")
                    .with_value("aws:PrincipalTag/team", "red"),
                A,
            ),
            (
                "default not used when present",
                req(alice(), "s3:DeleteObject", "arn:aws:s3:::b/none/k")
                    .with_value("aws:PrincipalTag/team", "red"),
                I,
            ),
            (
                "multi-valued key cannot substitute",
                req(alice(), "s3:GetObjectTagging", "arn:aws:s3:::b/a")
                    .with_values("aws:TagKeys", ["a", "b"]),
                I,
            ),
        ],
    );
}

// https://docs.aws.amazon.com/eks/latest/userguide/pod-id-abac.html (session tags
// such as kubernetes-namespace become aws:PrincipalTag/... keys) with
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html
#[test]
fn pod_identity_abac() {
    let p = pol(r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"s3:GetObject",
         "Resource":"arn:aws:s3:::amzn-s3-demo-bucket/${aws:PrincipalTag/kubernetes-namespace}/*"},
        {"Effect":"Allow","Action":"s3:PutObject","Resource":"*",
         "Condition":{"StringEquals":{"s3:ExistingObjectTag/eks-cluster-name":"${aws:PrincipalTag/eks-cluster-name}"}}},
        {"Effect":"Deny","Action":"s3:DeleteObject","Resource":"*",
         "Condition":{"StringNotEquals":{"aws:ResourceTag/kubernetes-namespace":"${aws:PrincipalTag/kubernetes-namespace}"}}}]}"#);
    let pod = || session(ACCT, "pod-role", "eks-c1-pod-abc");
    let tagged = |action: &str, res: &str| {
        req(pod(), action, res)
            .with_value("aws:PrincipalTag/kubernetes-namespace", "default")
            .with_value("aws:PrincipalTag/eks-cluster-name", "c1")
    };
    let b = "arn:aws:s3:::amzn-s3-demo-bucket";
    run(
        "abac",
        |q| evaluate(&[&p], q),
        vec![
            (
                "own namespace prefix",
                tagged("s3:GetObject", &format!("{b}/default/x")),
                A,
            ),
            (
                "other namespace prefix",
                tagged("s3:GetObject", &format!("{b}/kube-system/x")),
                I,
            ),
            (
                "no tag: no match",
                req(pod(), "s3:GetObject", &format!("{b}/default/x")),
                I,
            ),
            (
                "tag key case-insensitive",
                req(pod(), "s3:GetObject", &format!("{b}/default/x"))
                    .with_value("AWS:PrincipalTag/Kubernetes-Namespace", "default"),
                A,
            ),
            (
                "cluster tag condition match",
                tagged("s3:PutObject", &format!("{b}/k"))
                    .with_value("s3:ExistingObjectTag/eks-cluster-name", "c1"),
                A,
            ),
            (
                "cluster tag condition mismatch",
                tagged("s3:PutObject", &format!("{b}/k"))
                    .with_value("s3:ExistingObjectTag/eks-cluster-name", "c2"),
                I,
            ),
            (
                "deny other namespace's resource",
                tagged("s3:DeleteObject", "*")
                    .with_value("aws:ResourceTag/kubernetes-namespace", "prod"),
                D,
            ),
            (
                "same namespace not denied (and not allowed)",
                tagged("s3:DeleteObject", "*")
                    .with_value("aws:ResourceTag/kubernetes-namespace", "default"),
                I,
            ),
            (
                "unresolvable variable: deny does not apply",
                req(pod(), "s3:DeleteObject", "*")
                    .with_value("aws:ResourceTag/kubernetes-namespace", "prod"),
                I,
            ),
        ],
    );
}

// https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies.html#policies_session
// ("the resulting session's permissions are the intersection of the identity-based
// policies and the session policies"; an explicit deny in either denies).
#[test]
fn session_policy_intersection() {
    let identity = pol(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*","sqs:SendMessage"],"Resource":"*"},
        {"Effect":"Deny","Action":"s3:DeleteBucket","Resource":"*"}]}"#,
    );
    let sess = pol(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:DeleteBucket","ec2:*"],"Resource":"*"},
        {"Effect":"Deny","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/private/*"}]}"#,
    );
    let sess2 = pol(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sqs:SendMessage","Resource":"*"}}"#,
    );
    let s = || session(ACCT, "r", "s");
    let rows = vec![
        (
            "both allow",
            req(s(), "s3:GetObject", "arn:aws:s3:::b/k"),
            A,
        ),
        (
            "identity only",
            req(s(), "s3:PutObject", "arn:aws:s3:::b/k"),
            I,
        ),
        ("session only", req(s(), "ec2:RunInstances", "*"), I),
        (
            "identity deny",
            req(s(), "s3:DeleteBucket", "arn:aws:s3:::b"),
            D,
        ),
        (
            "session deny",
            req(s(), "s3:GetObject", "arn:aws:s3:::b/private/x"),
            D,
        ),
        ("neither", req(s(), "iam:CreateUser", "*"), I),
    ];
    run(
        "session",
        |q| evaluate_with_session_policies(&[&identity], &[&sess], q),
        rows,
    );
    run(
        "no-session-policies",
        |q| evaluate_with_session_policies(&[&identity], &[], q),
        vec![
            (
                "identity decides",
                req(s(), "s3:PutObject", "arn:aws:s3:::b/k"),
                A,
            ),
            (
                "identity deny",
                req(s(), "s3:DeleteBucket", "arn:aws:s3:::b"),
                D,
            ),
        ],
    );
    // Inline plus managed session policies act as one set.
    run(
        "two-session-policies",
        |q| evaluate_with_session_policies(&[&identity], &[&sess, &sess2], q),
        vec![
            ("allowed by second", req(s(), "sqs:SendMessage", "*"), A),
            (
                "allowed by first",
                req(s(), "s3:GetObject", "arn:aws:s3:::b/k"),
                A,
            ),
            (
                "deny in first still denies",
                req(s(), "s3:GetObject", "arn:aws:s3:::b/private/k"),
                D,
            ),
        ],
    );
    let e = evaluate_with_session_policies(
        &[&identity],
        &[&sess],
        &req(s(), "s3:GetObject", "arn:aws:s3:::b/k"),
    );
    let src: Vec<_> = e.matched_statements.iter().map(|m| m.source).collect();
    assert_eq!(src, vec![PolicySource::Identity, PolicySource::Session]);
}

#[test]
fn request_context_keys_are_case_insensitive() {
    let r = RequestContext::new(alice(), "s3:GetObject").with_value("AWS:SourceIp", "10.0.0.1");
    assert_eq!(r.values("aws:sourceip"), vec!["10.0.0.1"]);
    assert_eq!(
        r.values("aws:PrincipalArn"),
        vec!["arn:aws:iam::111122223333:user/alice"]
    );
    assert_eq!(r.values("aws:username"), vec!["alice"]);
    assert_eq!(r.values("aws:PrincipalAccount"), vec![ACCT]);
    let s = RequestContext::new(session(ACCT, "r", "s"), "x:y");
    assert_eq!(
        s.values("aws:PrincipalArn"),
        vec!["arn:aws:iam::111122223333:role/r"]
    );
    assert!(s.values("aws:username").is_empty());
}
