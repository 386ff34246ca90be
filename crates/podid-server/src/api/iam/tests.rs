//! Handler-level tests: a real SQLite store in a temp dir, the follower, and `dispatch`.

use std::sync::Arc;

use podid_aws::AwsError;
use podid_store::{SqliteStore, Store};

use super::*;
use crate::api::ServiceConfig;
use crate::domain::assume::LocalAuthority;
use crate::domain::caller::{Caller, CallerKind};
use crate::domain::iam::{Iam, IamIndex};
use crate::state::{Follower, StoreHandle};

mod golden;

const ACCOUNT: &str = "111122223333";
const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#;

struct Harness {
    state: ApiState,
    _dir: tempfile::TempDir,
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Arc::new(
        SqliteStore::open(&dir.path().join("podid.db"))
            .await
            .unwrap(),
    );
    let store: Arc<dyn Store> = sqlite.clone();
    let config = ServiceConfig::new("us-east-1", ACCOUNT);
    let iam = Arc::new(Iam::default());
    let secrets = crate::domain::secrets::Secrets::ephemeral();
    let follower = Follower::start(
        store.clone(),
        vec![Arc::new(IamIndex(iam.clone(), secrets.clone()))],
    )
    .await
    .unwrap();
    let ring = podid_issuer::KeyRing::generate(Default::default(), time::OffsetDateTime::now_utc())
        .unwrap();
    let issuer = Arc::new(podid_issuer::LocalIssuer::new(ring));
    let state = ApiState {
        audit: crate::domain::audit::Audit::start(sqlite.clone(), config.audit_retention, None),
        audit_log: sqlite,
        verifiers: Default::default(),
        issuer: Arc::new(LocalAuthority {
            iam: iam.clone(),
            issuer,
            account_id: ACCOUNT.into(),
            max_credential_duration: None,
        }),
        config,
        store: StoreHandle::new(store, follower),
        registry: Default::default(),
        iam,
        secrets,
    };
    ensure_admin_user(
        &state,
        "AKIAADMINADMINADMIN2",
        &podid_issuer::SecretKey::new("s3cr3t".into()),
    )
    .await
    .unwrap();
    Harness { state, _dir: dir }
}

fn caller(user: &str) -> RequestInfo {
    RequestInfo {
        request_id: "req-1".into(),
        service: "iam".into(),
        region: "us-east-1".into(),
        source_ip: None,
        secure_transport: false,
        user_agent: None,
        caller: Caller {
            access_key_id: "AKIATEST".into(),
            arn: format!("arn:aws:iam::{ACCOUNT}:user/{user}"),
            account_id: ACCOUNT.into(),
            kind: CallerKind::User {
                name: user.into(),
                user_id: "AIDATEST".into(),
            },
        },
    }
}

impl Harness {
    async fn call_as(&self, user: &str, params: &[(&str, &str)]) -> Result<String, QueryError> {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        let q = QueryRequest::parse(None, body.as_bytes()).unwrap();
        let response = dispatch(&self.state, &caller(user), &q).await?;
        assert_eq!(response.status(), 200);
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        Ok(String::from_utf8(bytes.to_vec()).unwrap())
    }
    async fn call(&self, params: &[(&str, &str)]) -> Result<String, QueryError> {
        self.call_as("podid-admin", params).await
    }
    async fn fail(&self, params: &[(&str, &str)]) -> AwsError {
        self.call(params).await.unwrap_err().into_aws()
    }
}

/// The text of the first `<name>` element.
fn text<'a>(xml: &'a str, name: &str) -> &'a str {
    let open = format!("<{name}>");
    let start = xml
        .find(&open)
        .unwrap_or_else(|| panic!("no <{name}> in {xml}"))
        + open.len();
    let end = xml[start..].find(&format!("</{name}>")).unwrap() + start;
    &xml[start..end]
}

fn decode(s: &str) -> String {
    form_urlencoded::parse(format!("x={s}").as_bytes())
        .map(|(_, v)| v.into_owned())
        .collect()
}

#[tokio::test]
async fn create_role_refuses_bad_input_first() {
    let h = harness().await;
    let e = h
        .fail(&[
            ("Action", "CreateRole"),
            ("RoleName", "bad name"),
            ("AssumeRolePolicyDocument", TRUST),
        ])
        .await;
    assert_eq!(
        (e.code.as_ref(), e.status.as_u16()),
        ("ValidationError", 400)
    );
    let e = h
        .fail(&[
            ("Action", "CreateRole"),
            ("RoleName", "r"),
            ("AssumeRolePolicyDocument", "{nope"),
        ])
        .await;
    assert_eq!(
        (e.code.as_ref(), e.message.as_str()),
        (
            "MalformedPolicyDocument",
            "This policy contains invalid Json"
        )
    );
    let no_principal =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}"#;
    let e = h
        .fail(&[
            ("Action", "CreateRole"),
            ("RoleName", "r"),
            ("AssumeRolePolicyDocument", no_principal),
        ])
        .await;
    assert_eq!(
        (e.code.as_ref(), e.message.as_str()),
        (
            "MalformedPolicyDocument",
            "Missing required field Principal"
        )
    );
    let e = h
        .fail(&[
            ("Action", "CreateRole"),
            ("RoleName", "r"),
            ("AssumeRolePolicyDocument", TRUST),
            ("MaxSessionDuration", "100"),
        ])
        .await;
    assert_eq!(e.code, "ValidationError");
    let e = h.fail(&[("Action", "GetRole"), ("RoleName", "r")]).await;
    assert_eq!((e.code.as_ref(), e.status.as_u16()), ("NoSuchEntity", 404));
    assert_eq!(e.message, "The role with name r cannot be found.");
    assert_eq!(
        h.fail(&[("Action", "NoSuchAction")]).await.code,
        "InvalidAction"
    );
}

#[tokio::test]
async fn role_lifecycle_with_policies() {
    let h = harness().await;
    let xml = h
        .call(&[
            ("Action", "CreateRole"),
            ("RoleName", "app"),
            ("Path", "/team/"),
            ("AssumeRolePolicyDocument", TRUST),
            ("Description", "an app"),
            ("Tags.member.1.Key", "env"),
            ("Tags.member.1.Value", "dev"),
        ])
        .await
        .unwrap();
    assert!(xml.starts_with("<CreateRoleResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><CreateRoleResult><Role><Path>/team/</Path><RoleName>app</RoleName>"));
    assert!(text(&xml, "RoleId").starts_with("AROA") && text(&xml, "RoleId").len() == 21);
    assert_eq!(
        text(&xml, "Arn"),
        format!("arn:aws:iam::{ACCOUNT}:role/team/app")
    );
    assert_eq!(decode(text(&xml, "AssumeRolePolicyDocument")), TRUST);
    assert_eq!(text(&xml, "MaxSessionDuration"), "3600");
    assert!(xml.contains("<Tags><member><Key>env</Key><Value>dev</Value></member></Tags>"));
    let dup = h
        .fail(&[
            ("Action", "CreateRole"),
            ("RoleName", "APP"),
            ("AssumeRolePolicyDocument", TRUST),
        ])
        .await;
    assert_eq!(
        (dup.code.as_ref(), dup.status.as_u16()),
        ("EntityAlreadyExists", 409)
    );

    let view = h.state.iam.role("app").unwrap();
    assert_eq!(view.tags, vec![("env".to_owned(), "dev".to_owned())]);
    let inline = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sqs:SendMessage","Resource":"*"}]}"#;
    h.call(&[
        ("Action", "PutRolePolicy"),
        ("RoleName", "app"),
        ("PolicyName", "sqs"),
        ("PolicyDocument", inline),
    ])
    .await
    .unwrap();
    let got = h
        .call(&[
            ("Action", "GetRolePolicy"),
            ("RoleName", "app"),
            ("PolicyName", "sqs"),
        ])
        .await
        .unwrap();
    assert_eq!(decode(text(&got, "PolicyDocument")), inline);
    let s3 = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess";
    h.call(&[
        ("Action", "AttachRolePolicy"),
        ("RoleName", "app"),
        ("PolicyArn", s3),
    ])
    .await
    .unwrap();
    let e = h
        .fail(&[
            ("Action", "AttachRolePolicy"),
            ("RoleName", "app"),
            ("PolicyArn", "arn:aws:iam::aws:policy/Nope"),
        ])
        .await;
    assert_eq!(e.code, "NoSuchEntity");
    assert_eq!(h.state.iam.named_role_policies("app").len(), 2);
    let listed = h
        .call(&[("Action", "ListAttachedRolePolicies"), ("RoleName", "app")])
        .await
        .unwrap();
    assert!(listed.contains("<AttachedPolicies><member><PolicyName>AmazonS3ReadOnlyAccess</PolicyName><PolicyArn>arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess</PolicyArn></member></AttachedPolicies><IsTruncated>false</IsTruncated>"));
    let names = h
        .call(&[("Action", "ListRolePolicies"), ("RoleName", "app")])
        .await
        .unwrap();
    assert!(names.contains("<PolicyNames><member>sqs</member></PolicyNames>"));

    let e = h
        .fail(&[("Action", "DeleteRole"), ("RoleName", "app")])
        .await;
    assert_eq!(
        (e.code.as_ref(), e.status.as_u16()),
        ("DeleteConflict", 409)
    );
    h.call(&[
        ("Action", "DeleteRolePolicy"),
        ("RoleName", "app"),
        ("PolicyName", "sqs"),
    ])
    .await
    .unwrap();
    assert_eq!(
        h.fail(&[("Action", "DeleteRole"), ("RoleName", "app")])
            .await
            .code,
        "DeleteConflict"
    );
    h.call(&[
        ("Action", "DetachRolePolicy"),
        ("RoleName", "app"),
        ("PolicyArn", s3),
    ])
    .await
    .unwrap();
    assert_eq!(
        h.fail(&[
            ("Action", "DetachRolePolicy"),
            ("RoleName", "app"),
            ("PolicyArn", s3)
        ])
        .await
        .code,
        "NoSuchEntity"
    );
    h.call(&[("Action", "DeleteRole"), ("RoleName", "app")])
        .await
        .unwrap();
    assert!(h.state.iam.role("app").is_none());
}

#[tokio::test]
async fn list_roles_pages_with_markers() {
    let h = harness().await;
    for name in ["a", "b", "c"] {
        h.call(&[
            ("Action", "CreateRole"),
            ("RoleName", name),
            ("AssumeRolePolicyDocument", TRUST),
        ])
        .await
        .unwrap();
    }
    let first = h
        .call(&[("Action", "ListRoles"), ("MaxItems", "2")])
        .await
        .unwrap();
    assert_eq!(text(&first, "IsTruncated"), "true");
    assert_eq!(first.matches("<member>").count(), 2);
    let marker = text(&first, "Marker").to_owned();
    let second = h
        .call(&[
            ("Action", "ListRoles"),
            ("MaxItems", "2"),
            ("Marker", &marker),
        ])
        .await
        .unwrap();
    assert_eq!(text(&second, "IsTruncated"), "false");
    assert_eq!(text(&second, "RoleName"), "c");
    assert_eq!(
        h.fail(&[("Action", "ListRoles"), ("MaxItems", "0")])
            .await
            .code,
        "ValidationError"
    );
}

#[tokio::test]
async fn users_and_access_keys() {
    let h = harness().await;
    let xml = h
        .call(&[("Action", "CreateUser"), ("UserName", "dev")])
        .await
        .unwrap();
    assert!(text(&xml, "UserId").starts_with("AIDA"));
    let key = h
        .call(&[("Action", "CreateAccessKey"), ("UserName", "dev")])
        .await
        .unwrap();
    let id = text(&key, "AccessKeyId").to_owned();
    assert!(id.starts_with("AKIA") && id.len() == 20);
    assert_eq!(text(&key, "SecretAccessKey").len(), 40);
    let found = h.state.iam.access_key(&id).unwrap();
    assert!(
        found.active
            && found.user_name == "dev"
            && found.secret_access_key.expose() == text(&key, "SecretAccessKey")
    );
    h.call(&[("Action", "CreateAccessKey"), ("UserName", "dev")])
        .await
        .unwrap();
    let e = h
        .fail(&[("Action", "CreateAccessKey"), ("UserName", "dev")])
        .await;
    assert_eq!((e.code.as_ref(), e.status.as_u16()), ("LimitExceeded", 409));
    let list = h
        .call(&[("Action", "ListAccessKeys"), ("UserName", "dev")])
        .await
        .unwrap();
    assert_eq!(list.matches("<Status>Active</Status>").count(), 2);
    assert!(!list.contains("SecretAccessKey"));
    let e = h
        .fail(&[("Action", "DeleteUser"), ("UserName", "dev")])
        .await;
    assert_eq!(
        e.message,
        "Cannot delete entity, must delete access keys first."
    );
    let e = h
        .fail(&[
            ("Action", "DeleteAccessKey"),
            ("UserName", "dev"),
            ("AccessKeyId", "AKIANOTAKEYNOTAKEY22"),
        ])
        .await;
    assert_eq!(e.code, "NoSuchEntity");
    for k in list
        .split("<AccessKeyId>")
        .skip(1)
        .map(|s| s.split('<').next().unwrap().to_owned())
    {
        h.call(&[
            ("Action", "DeleteAccessKey"),
            ("UserName", "dev"),
            ("AccessKeyId", &k),
        ])
        .await
        .unwrap();
    }
    assert!(h.state.iam.access_key(&id).is_none());
    h.call(&[("Action", "DeleteUser"), ("UserName", "dev")])
        .await
        .unwrap();
    let me = h.call(&[("Action", "GetUser")]).await.unwrap();
    assert_eq!(text(&me, "UserName"), "podid-admin");
}

#[tokio::test]
async fn callers_need_an_identity_policy() {
    let h = harness().await;
    h.call(&[("Action", "CreateUser"), ("UserName", "reader")])
        .await
        .unwrap();
    let e = h
        .call_as("reader", &[("Action", "ListRoles")])
        .await
        .unwrap_err()
        .into_aws();
    assert_eq!((e.code.as_ref(), e.status.as_u16()), ("AccessDenied", 403));
    assert_eq!(
        e.message,
        format!(
            "User: arn:aws:iam::{ACCOUNT}:user/reader is not authorized to perform: iam:ListRoles on resource: arn:aws:iam::{ACCOUNT}:role/ because no identity-based policy allows the iam:ListRoles action"
        )
    );
    h.call(&[
        ("Action", "AttachUserPolicy"),
        ("UserName", "reader"),
        ("PolicyArn", "arn:aws:iam::aws:policy/ReadOnlyAccess"),
    ])
    .await
    .unwrap();
    h.call_as("reader", &[("Action", "ListRoles")])
        .await
        .unwrap();
    let e = h
        .call_as("reader", &[("Action", "CreateUser"), ("UserName", "x")])
        .await
        .unwrap_err()
        .into_aws();
    assert_eq!(e.code, "AccessDenied");
}

#[tokio::test]
async fn customer_managed_policies() {
    let h = harness().await;
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#;
    let e = h
        .fail(&[
            ("Action", "CreatePolicy"),
            ("PolicyName", "p"),
            (
                "PolicyDocument",
                r#"{"Statement":[{"Effect":"Allow","Action":"s3:*"}]}"#,
            ),
        ])
        .await;
    assert_eq!(e.message, "Policy statement must contain resources.");
    let xml = h
        .call(&[
            ("Action", "CreatePolicy"),
            ("PolicyName", "p"),
            ("Path", "/x/"),
            ("PolicyDocument", doc),
        ])
        .await
        .unwrap();
    let arn = text(&xml, "Arn").to_owned();
    assert_eq!(arn, format!("arn:aws:iam::{ACCOUNT}:policy/x/p"));
    assert!(text(&xml, "PolicyId").starts_with("ANPA"));
    assert_eq!(text(&xml, "DefaultVersionId"), "v1");
    assert_eq!(
        h.fail(&[
            ("Action", "CreatePolicy"),
            ("PolicyName", "P"),
            ("PolicyDocument", doc)
        ])
        .await
        .code,
        "EntityAlreadyExists"
    );
    let v = h
        .call(&[
            ("Action", "GetPolicyVersion"),
            ("PolicyArn", &arn),
            ("VersionId", "v1"),
        ])
        .await
        .unwrap();
    assert_eq!(decode(text(&v, "Document")), doc);
    assert_eq!(
        h.fail(&[
            ("Action", "GetPolicyVersion"),
            ("PolicyArn", &arn),
            ("VersionId", "v2")
        ])
        .await
        .code,
        "NoSuchEntity"
    );
    let aws = h
        .call(&[
            ("Action", "GetPolicy"),
            ("PolicyArn", "arn:aws:iam::aws:policy/AdministratorAccess"),
        ])
        .await
        .unwrap();
    assert_eq!(text(&aws, "AttachmentCount"), "1"); // podid-admin
    h.call(&[
        ("Action", "CreateRole"),
        ("RoleName", "r"),
        ("AssumeRolePolicyDocument", TRUST),
    ])
    .await
    .unwrap();
    h.call(&[
        ("Action", "AttachRolePolicy"),
        ("RoleName", "r"),
        ("PolicyArn", &arn),
    ])
    .await
    .unwrap();
    assert_eq!(
        h.fail(&[("Action", "DeletePolicy"), ("PolicyArn", &arn)])
            .await
            .code,
        "DeleteConflict"
    );
    h.call(&[
        ("Action", "DetachRolePolicy"),
        ("RoleName", "r"),
        ("PolicyArn", &arn),
    ])
    .await
    .unwrap();
    h.call(&[("Action", "DeletePolicy"), ("PolicyArn", &arn)])
        .await
        .unwrap();
    assert_eq!(
        h.fail(&[("Action", "GetPolicy"), ("PolicyArn", &arn)])
            .await
            .code,
        "NoSuchEntity"
    );
    assert_eq!(
        h.fail(&[("Action", "GetPolicy"), ("PolicyArn", "not an arn")])
            .await
            .code,
        "InvalidInput"
    );
}

#[tokio::test]
async fn simulate_reports_decisions_and_statements() {
    let h = harness().await;
    h.call(&[("Action", "CreateUser"), ("UserName", "sim")])
        .await
        .unwrap();
    h.call(&[
        ("Action", "AttachUserPolicy"),
        ("UserName", "sim"),
        (
            "PolicyArn",
            "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",
        ),
    ])
    .await
    .unwrap();
    let deny = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\"Effect\": \"Deny\", \"Action\": \"s3:GetObject\", \"Resource\": \"arn:aws:s3:::secret/*\", \"Condition\": {\"StringEquals\": {\"aws:RequestTag/team\": \"red\"}}}\n  ]\n}";
    h.call(&[
        ("Action", "PutUserPolicy"),
        ("UserName", "sim"),
        ("PolicyName", "no-secret"),
        ("PolicyDocument", deny),
    ])
    .await
    .unwrap();
    let arn = format!("arn:aws:iam::{ACCOUNT}:user/sim");
    let xml = h
        .call(&[
            ("Action", "SimulatePrincipalPolicy"),
            ("PolicySourceArn", &arn),
            ("ActionNames.member.1", "s3:GetObject"),
            ("ActionNames.member.2", "s3:PutObject"),
            ("ResourceArns.member.1", "arn:aws:s3:::secret/k"),
            (
                "ContextEntries.member.1.ContextKeyName",
                "aws:RequestTag/team",
            ),
            ("ContextEntries.member.1.ContextKeyValues.member.1", "red"),
            ("ContextEntries.member.1.ContextKeyType", "string"),
        ])
        .await
        .unwrap();
    let results: Vec<&str> = xml.split("<EvalActionName>").skip(1).collect();
    assert_eq!(results.len(), 2);
    assert_eq!(text(results[0], "EvalDecision"), "explicitDeny");
    assert_eq!(text(results[0], "SourcePolicyId"), "no-secret");
    assert_eq!(text(results[0], "SourcePolicyType"), "IAM Policy");
    assert!(results[0].contains("<StartPosition><Line>4</Line><Column>5</Column></StartPosition>"));
    assert_eq!(text(results[1], "EvalDecision"), "implicitDeny");
    assert!(xml.contains("<IsTruncated>false</IsTruncated>"));
    let e = h
        .fail(&[
            ("Action", "SimulatePrincipalPolicy"),
            (
                "PolicySourceArn",
                &format!("arn:aws:iam::{ACCOUNT}:user/ghost"),
            ),
            ("ActionNames.member.1", "s3:GetObject"),
        ])
        .await;
    assert_eq!(e.code, "NoSuchEntity");
}

#[tokio::test]
async fn admin_bootstrap_is_idempotent_and_follows_the_secret() {
    let h = harness().await;
    ensure_admin_user(
        &h.state,
        "AKIAADMINADMINADMIN2",
        &podid_issuer::SecretKey::new("s3cr3t".into()),
    )
    .await
    .unwrap();
    assert_eq!(h.state.iam.user_policies("podid-admin").len(), 1);
    ensure_admin_user(
        &h.state,
        "AKIAADMINADMINADMIN2",
        &podid_issuer::SecretKey::new("rotated".into()),
    )
    .await
    .unwrap();
    let k = h.state.iam.access_key("AKIAADMINADMINADMIN2").unwrap();
    assert_eq!(k.secret_access_key.expose(), "rotated");
    let (arn, id) = h.state.iam.user_identity("podid-admin").unwrap();
    assert_eq!(arn, format!("arn:aws:iam::{ACCOUNT}:user/podid-admin"));
    assert!(id.starts_with("AIDA"));
}
