//! Resource-based (trust) policy evaluation: Principal, NotPrincipal, and the EKS Pod
//! Identity trust policies. Expected answers from the pages cited per group.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use podid_iam::{PrincipalInfo, RequestContext, evaluate_resource_policy};
use support::*;

fn trust(principal: &str) -> podid_iam::Policy {
    pol(&format!(
        r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Principal":{principal},"Action":"sts:AssumeRole"}}}}"#
    ))
}

fn assume(p: PrincipalInfo) -> RequestContext {
    RequestContext::new(p, "sts:AssumeRole")
}

// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html
// (account principals cover every identity in the account; a role principal covers
// its sessions; "*" and {"AWS":"*"} cover everyone including anonymous callers).
#[test]
fn principal_element() {
    let root = || PrincipalInfo::account_root(ACCT);
    let cases: Vec<(&str, &str, PrincipalInfo, podid_iam::Decision)> = vec![
        ("star: anonymous", r#""*""#, PrincipalInfo::anonymous(), A),
        ("star: user", r#""*""#, alice(), A),
        (
            "AWS star: anonymous",
            r#"{"AWS":"*"}"#,
            PrincipalInfo::anonymous(),
            A,
        ),
        (
            "AWS star: service",
            r#"{"AWS":"*"}"#,
            PrincipalInfo::service("ec2.amazonaws.com"),
            A,
        ),
        ("account id: user", r#"{"AWS":"111122223333"}"#, alice(), A),
        (
            "account id: session",
            r#"{"AWS":"111122223333"}"#,
            session(ACCT, "r", "s"),
            A,
        ),
        ("account id: root", r#"{"AWS":"111122223333"}"#, root(), A),
        (
            "account id: other account",
            r#"{"AWS":"111122223333"}"#,
            user(OTHER, "bob"),
            I,
        ),
        (
            "account id: service",
            r#"{"AWS":"111122223333"}"#,
            PrincipalInfo::service("ec2.amazonaws.com"),
            I,
        ),
        (
            "account id: anonymous",
            r#"{"AWS":"111122223333"}"#,
            PrincipalInfo::anonymous(),
            I,
        ),
        (
            "root arn: user",
            r#"{"AWS":"arn:aws:iam::111122223333:root"}"#,
            alice(),
            A,
        ),
        (
            "root arn: other account",
            r#"{"AWS":["arn:aws:iam::111122223333:root"]}"#,
            session(OTHER, "r", "s"),
            I,
        ),
        (
            "role arn: its session",
            r#"{"AWS":"arn:aws:iam::111122223333:role/app"}"#,
            session(ACCT, "app", "s1"),
            A,
        ),
        (
            "role arn: the role",
            r#"{"AWS":"arn:aws:iam::111122223333:role/app"}"#,
            PrincipalInfo::role("arn:aws:iam::111122223333:role/app"),
            A,
        ),
        (
            "role arn: other role's session",
            r#"{"AWS":"arn:aws:iam::111122223333:role/app"}"#,
            session(ACCT, "other", "s1"),
            I,
        ),
        (
            "role arn: same name other account",
            r#"{"AWS":"arn:aws:iam::111122223333:role/app"}"#,
            session(OTHER, "app", "s1"),
            I,
        ),
        (
            "role with path: its session",
            r#"{"AWS":"arn:aws:iam::111122223333:role/team/app"}"#,
            PrincipalInfo::assumed_role(
                "arn:aws:sts::111122223333:assumed-role/app/s",
                "arn:aws:iam::111122223333:role/team/app",
            ),
            A,
        ),
        (
            "user arn: that user",
            r#"{"AWS":"arn:aws:iam::111122223333:user/alice"}"#,
            alice(),
            A,
        ),
        (
            "user arn: other user",
            r#"{"AWS":"arn:aws:iam::111122223333:user/alice"}"#,
            user(ACCT, "bob"),
            I,
        ),
        (
            "user arn: account root",
            r#"{"AWS":"arn:aws:iam::111122223333:user/alice"}"#,
            root(),
            I,
        ),
        (
            "session arn: that session",
            r#"{"AWS":"arn:aws:sts::111122223333:assumed-role/app/s1"}"#,
            session(ACCT, "app", "s1"),
            A,
        ),
        (
            "session arn: other session",
            r#"{"AWS":"arn:aws:sts::111122223333:assumed-role/app/s1"}"#,
            session(ACCT, "app", "s2"),
            I,
        ),
        (
            "service: match",
            r#"{"Service":"pods.eks.amazonaws.com"}"#,
            PrincipalInfo::service("pods.eks.amazonaws.com"),
            A,
        ),
        (
            "service: other",
            r#"{"Service":["ec2.amazonaws.com"]}"#,
            PrincipalInfo::service("pods.eks.amazonaws.com"),
            I,
        ),
        (
            "service: not an IAM user",
            r#"{"Service":"pods.eks.amazonaws.com"}"#,
            alice(),
            I,
        ),
        (
            "federated: provider",
            r#"{"Federated":"arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/EXAMPLE"}"#,
            PrincipalInfo::federated(
                "arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/EXAMPLE",
            ),
            A,
        ),
        (
            "federated: other provider",
            r#"{"Federated":"cognito-identity.amazonaws.com"}"#,
            PrincipalInfo::federated("accounts.google.com"),
            I,
        ),
        (
            "mixed map: any entry",
            r#"{"AWS":["222233334444"],"Service":"pods.eks.amazonaws.com"}"#,
            PrincipalInfo::service("pods.eks.amazonaws.com"),
            A,
        ),
    ];
    let rows = cases
        .into_iter()
        .map(|(name, spec, who, want)| (name, trust(spec), assume(who), want));
    let mut failures = Vec::new();
    for (name, p, r, want) in rows {
        let got = evaluate_resource_policy(&p, &r).decision;
        if got != want {
            failures.push(format!("{name}: want {want:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // A resource policy statement without Principal never applies.
    let none =
        pol(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sts:AssumeRole"}}"#);
    assert_eq!(
        evaluate_resource_policy(&none, &assume(alice())).decision,
        I
    );
}

// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html
// (with Deny, list the exempt principal's own ARN *and* its account ARN; for a role
// session list the session ARN, since the role ARN does not cover sessions here).
#[test]
fn not_principal() {
    let mk = |exempt: &str| {
        pol(&format!(
            r#"{{"Version":"2012-10-17","Statement":[
            {{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}},
            {{"Effect":"Deny","NotPrincipal":{{"AWS":{exempt}}},"Action":"s3:*","Resource":"*"}}]}}"#
        ))
    };
    let bob_and_acct =
        mk(r#"["arn:aws:iam::444455556666:user/Bob","arn:aws:iam::444455556666:root"]"#);
    let bob_only = mk(r#""arn:aws:iam::444455556666:user/Bob""#);
    let sess_and_acct = mk(
        r#"["arn:aws:sts::444455556666:assumed-role/cross-account-read-only-role/audit","arn:aws:iam::444455556666:root"]"#,
    );
    let role_and_acct = mk(
        r#"["arn:aws:iam::444455556666:role/cross-account-read-only-role","arn:aws:iam::444455556666:root"]"#,
    );
    let audit = || session(OTHER, "cross-account-read-only-role", "audit");
    let s3 = |p: PrincipalInfo| req(p, "s3:GetObject", "arn:aws:s3:::b/k");
    let cases = vec![
        ("bob exempt", &bob_and_acct, s3(user(OTHER, "Bob")), A),
        (
            "alice same account denied",
            &bob_and_acct,
            s3(user(OTHER, "Alice")),
            D,
        ),
        (
            "account root exempt via account",
            &bob_and_acct,
            s3(PrincipalInfo::account_root(OTHER)),
            A,
        ),
        (
            "other account denied",
            &bob_and_acct,
            s3(user(ACCT, "Bob")),
            D,
        ),
        (
            "anonymous denied",
            &bob_and_acct,
            s3(PrincipalInfo::anonymous()),
            D,
        ),
        (
            "bob without account listed is denied",
            &bob_only,
            s3(user(OTHER, "Bob")),
            D,
        ),
        (
            "session listed with account exempt",
            &sess_and_acct,
            s3(audit()),
            A,
        ),
        (
            "other session of the role denied",
            &sess_and_acct,
            s3(session(OTHER, "cross-account-read-only-role", "x")),
            D,
        ),
        (
            "role ARN does not exempt its sessions",
            &role_and_acct,
            s3(audit()),
            D,
        ),
    ];
    let mut failures = Vec::new();
    for (name, p, r, want) in cases {
        let got = evaluate_resource_policy(p, &r).decision;
        if got != want {
            failures.push(format!("{name}: want {want:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let svc = pol(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","NotPrincipal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}}"#,
    );
    assert_eq!(
        evaluate_resource_policy(&svc, &assume(PrincipalInfo::service("ec2.amazonaws.com")))
            .decision,
        I
    );
    assert_eq!(
        evaluate_resource_policy(
            &svc,
            &assume(PrincipalInfo::service("pods.eks.amazonaws.com"))
        )
        .decision,
        A
    );
}

// https://docs.aws.amazon.com/eks/latest/userguide/pod-id-role.html (trust policy
// for EKS Pod Identity: Service pods.eks.amazonaws.com, sts:AssumeRole + sts:TagSession,
// optionally narrowed by aws:SourceAccount / aws:SourceArn) and
// https://docs.aws.amazon.com/eks/latest/userguide/pod-id-abac.html (session tags
// kubernetes-namespace, eks-cluster-name... arrive as aws:RequestTag/... on the call).
#[test]
fn pod_identity_trust_policy() {
    let plain = pol(
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"AllowEksAuthToAssumeRoleForPodIdentity",
        "Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#,
    );
    let pods = || PrincipalInfo::service("pods.eks.amazonaws.com");
    let call = |a: &str| RequestContext::new(pods(), a);
    run(
        "pod-identity-plain",
        |q| evaluate_resource_policy(&plain, q),
        vec![
            ("AssumeRole", call("sts:AssumeRole"), A),
            ("TagSession", call("sts:TagSession"), A),
            ("action case-insensitive", call("STS:assumerole"), A),
            (
                "web identity not granted",
                call("sts:AssumeRoleWithWebIdentity"),
                I,
            ),
            (
                "SetSourceIdentity not granted",
                call("sts:SetSourceIdentity"),
                I,
            ),
            (
                "other service",
                RequestContext::new(
                    PrincipalInfo::service("ec2.amazonaws.com"),
                    "sts:AssumeRole",
                ),
                I,
            ),
            (
                "IAM user",
                RequestContext::new(alice(), "sts:AssumeRole"),
                I,
            ),
            (
                "anonymous",
                RequestContext::new(PrincipalInfo::anonymous(), "sts:AssumeRole"),
                I,
            ),
            (
                "role resource given",
                call("sts:AssumeRole").with_resource("arn:aws:iam::111122223333:role/r"),
                A,
            ),
        ],
    );
    let narrowed = pol(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
        "Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"],
        "Condition":{
          "StringEquals":{"aws:SourceAccount":"111122223333","aws:RequestTag/kubernetes-namespace":["default","apps"]},
          "ArnEquals":{"aws:SourceArn":"arn:aws:eks:us-west-2:111122223333:cluster/my-cluster"}}}]}"#);
    let good = |a: &str| {
        call(a)
            .with_value("aws:SourceAccount", ACCT)
            .with_value(
                "aws:SourceArn",
                "arn:aws:eks:us-west-2:111122223333:cluster/my-cluster",
            )
            .with_value("aws:RequestTag/kubernetes-namespace", "default")
    };
    run(
        "pod-identity-narrowed",
        |q| evaluate_resource_policy(&narrowed, q),
        vec![
            ("all conditions met", good("sts:AssumeRole"), A),
            ("TagSession too", good("sts:TagSession"), A),
            (
                "second namespace value",
                good("sts:AssumeRole").with_value("aws:RequestTag/kubernetes-namespace", "apps"),
                A,
            ),
            (
                "other namespace",
                good("sts:AssumeRole")
                    .with_value("aws:RequestTag/kubernetes-namespace", "kube-system"),
                I,
            ),
            (
                "namespace value case-sensitive",
                good("sts:AssumeRole").with_value("aws:RequestTag/kubernetes-namespace", "Default"),
                I,
            ),
            (
                "namespace tag missing",
                good("sts:AssumeRole")
                    .with_values("aws:RequestTag/kubernetes-namespace", Vec::<String>::new()),
                I,
            ),
            (
                "wrong source account",
                good("sts:AssumeRole").with_value("aws:SourceAccount", OTHER),
                I,
            ),
            (
                "other cluster",
                good("sts:AssumeRole").with_value(
                    "aws:SourceArn",
                    "arn:aws:eks:us-west-2:111122223333:cluster/other",
                ),
                I,
            ),
            (
                "no source arn",
                call("sts:AssumeRole")
                    .with_value("aws:SourceAccount", ACCT)
                    .with_value("aws:RequestTag/kubernetes-namespace", "default"),
                I,
            ),
            (
                "key names case-insensitive",
                call("sts:AssumeRole")
                    .with_value("AWS:SOURCEACCOUNT", ACCT)
                    .with_value(
                        "aws:sourcearn",
                        "arn:aws:eks:us-west-2:111122223333:cluster/my-cluster",
                    )
                    .with_value("aws:requesttag/kubernetes-namespace", "default"),
                A,
            ),
        ],
    );
    let any_cluster = pol(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
        "Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"],
        "Condition":{"ArnLike":{"aws:SourceArn":"arn:aws:eks:*:111122223333:cluster/*"},
                     "StringLike":{"aws:RequestTag/kubernetes-namespace":"team-*"}}}]}"#);
    let with = |arn: &str, ns: &str| {
        call("sts:AssumeRole")
            .with_value("aws:SourceArn", arn)
            .with_value("aws:RequestTag/kubernetes-namespace", ns)
    };
    run(
        "pod-identity-wildcards",
        |q| evaluate_resource_policy(&any_cluster, q),
        vec![
            (
                "any region and cluster",
                with("arn:aws:eks:eu-west-1:111122223333:cluster/c9", "team-a"),
                A,
            ),
            (
                "other account",
                with("arn:aws:eks:eu-west-1:444455556666:cluster/c9", "team-a"),
                I,
            ),
            (
                "namespace outside prefix",
                with("arn:aws:eks:eu-west-1:111122223333:cluster/c9", "prod"),
                I,
            ),
        ],
    );
}

// https://docs.aws.amazon.com/eks/latest/userguide/pod-id-assign-target-role.html
// (target role trust: the Pod Identity role's account as principal, narrowed by
// aws:PrincipalArn and sts:ExternalId) and
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-principalarn
// (for a role session aws:PrincipalArn is the role's ARN).
#[test]
fn target_role_trust_policy() {
    let p = pol(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
        "Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":["sts:AssumeRole","sts:TagSession"],
        "Condition":{"ArnEquals":{"aws:PrincipalARN":"arn:aws:iam::111122223333:role/eks-pod-identity-primary-role"},
                     "StringEquals":{"sts:ExternalId":"us-west-2/111122223333/my-cluster/default/my-sa"}}}]}"#);
    let primary = || {
        session(
            ACCT,
            "eks-pod-identity-primary-role",
            "eks-my-cluster-pod-123",
        )
    };
    let ext = "us-west-2/111122223333/my-cluster/default/my-sa";
    let call = |p: PrincipalInfo| RequestContext::new(p, "sts:AssumeRole");
    run(
        "target-role",
        |q| evaluate_resource_policy(&p, q),
        vec![
            (
                "primary role session with external id",
                call(primary()).with_value("sts:ExternalId", ext),
                A,
            ),
            (
                "TagSession too",
                RequestContext::new(primary(), "sts:TagSession").with_value("sts:ExternalId", ext),
                A,
            ),
            (
                "wrong external id",
                call(primary()).with_value(
                    "sts:ExternalId",
                    "us-west-2/111122223333/my-cluster/kube-system/my-sa",
                ),
                I,
            ),
            ("missing external id", call(primary()), I),
            (
                "other role in the account",
                call(session(ACCT, "other-role", "s")).with_value("sts:ExternalId", ext),
                I,
            ),
            (
                "same role name, other account",
                call(session(OTHER, "eks-pod-identity-primary-role", "s"))
                    .with_value("sts:ExternalId", ext),
                I,
            ),
            (
                "IAM user of the account",
                call(alice()).with_value("sts:ExternalId", ext),
                I,
            ),
            (
                "explicit PrincipalArn context wins",
                call(session(ACCT, "x", "s"))
                    .with_value(
                        "aws:PrincipalArn",
                        "arn:aws:iam::111122223333:role/eks-pod-identity-primary-role",
                    )
                    .with_value("sts:ExternalId", ext),
                A,
            ),
        ],
    );
}
