//! The real server on loopback, spoken to over HTTP with SigV4: associations, issuance through
//! EKS Auth, temporary credentials against STS, and the refusals in between.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use podid_aws::sigv4::{SigningCredentials, sign_request};
use podid_server::{AdminKey, BoundServer, IssuingMode, ServerOptions, ServiceConfig};
use podid_store::envelope::{Kek, KekSet};
use podid_token::{DevSigner, MintRequest};
use serde_json::{Value, json};

const ACCOUNT: &str = "000000000000";
const ISSUER: &str = "https://issuer.test/cluster";

struct Running {
    base: String,
    admin: SigningCredentials,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn start() -> Running {
    // The test JWKS endpoints are plain http on 127.0.0.1: let the fetch fence through for them.
    let mut service = ServiceConfig::new("us-east-1", ACCOUNT);
    service.jwks_egress = podid_token::EgressPolicy {
        allow_http: true,
        allowed_networks: vec!["127.0.0.1/32".parse().unwrap()],
    };
    start_with(service).await
}

async fn start_with(service: ServiceConfig) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let backend = podid_store::open(&format!("sqlite:{}", dir.path().join("podid.db").display()))
        .await
        .unwrap();
    let key = AdminKey::generate().unwrap();
    let admin = SigningCredentials {
        access_key_id: key.access_key_id.clone(),
        secret_access_key: key.secret_access_key().to_owned(),
        session_token: None,
    };
    let server = BoundServer::bind(ServerOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: None,
        service,
        backend,
        admin_key: key,
        keks: Arc::new(KekSet::new(Kek::generate().unwrap(), Vec::new()).unwrap()),
        issuing: IssuingMode::Local,
        connections: podid_server::DEFAULT_CONNECTION_LIMITS,
    })
    .await
    .unwrap();
    let base = format!("http://{}", server.local_addr());
    tokio::spawn(server.serve(std::future::pending()));
    Running {
        base,
        admin,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

impl Running {
    async fn call(
        &self,
        creds: &SigningCredentials,
        service: &str,
        method: &str,
        path: &str,
        body: &str,
        content_type: &str,
    ) -> (u16, reqwest::header::HeaderMap, String) {
        self.call_target(creds, service, method, path, body, content_type, None)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn call_target(
        &self,
        creds: &SigningCredentials,
        service: &str,
        method: &str,
        path: &str,
        body: &str,
        content_type: &str,
        target: Option<&str>,
    ) -> (u16, reqwest::header::HeaderMap, String) {
        let mut req = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(Bytes::from(body.to_owned()))
            .unwrap();
        if let Some(t) = target {
            req.headers_mut().insert("x-amz-target", t.parse().unwrap());
        }
        sign_request(&mut req, creds, "us-east-1", service, SystemTime::now()).unwrap();
        let mut builder = self
            .http
            .request(req.method().clone(), req.uri().to_string());
        for (k, v) in req.headers() {
            builder = builder.header(k, v);
        }
        let resp = builder.body(req.body().clone()).send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        (status, headers, resp.text().await.unwrap())
    }

    async fn json(
        &self,
        creds: &SigningCredentials,
        service: &str,
        method: &str,
        path: &str,
        body: Value,
    ) -> (u16, Value) {
        let text = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let (status, _, out) = self
            .call(creds, service, method, path, &text, "application/json")
            .await;
        (status, serde_json::from_str(&out).unwrap_or(Value::Null))
    }

    async fn query(&self, creds: &SigningCredentials, service: &str, form: &str) -> (u16, String) {
        let (status, _, out) = self
            .call(
                creds,
                service,
                "POST",
                "/",
                form,
                "application/x-www-form-urlencoded",
            )
            .await;
        (status, out)
    }
}

fn xml_field<'a>(xml: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let start = xml
        .find(&open)
        .map(|i| i + open.len())
        .unwrap_or_else(|| panic!("no <{tag}> in {xml}"));
    let end = xml[start..].find(&format!("</{tag}>")).unwrap() + start;
    &xml[start..end]
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn unsigned_and_unknown_key_requests_are_refused() {
    let s = start().await;
    let resp = s
        .http
        .get(format!("{}/clusters", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(
        resp.headers()["x-amzn-errortype"],
        "MissingAuthenticationTokenException"
    );
    let stranger = SigningCredentials {
        access_key_id: "AKIAUNKNOWN000000000".into(),
        secret_access_key: "x".repeat(40),
        session_token: None,
    };
    let (status, headers, _) = s
        .call(&stranger, "eks", "GET", "/clusters", "", "application/json")
        .await;
    assert_eq!(status, 403);
    assert_eq!(headers["x-amzn-errortype"], "UnrecognizedClientException");
}

#[tokio::test]
async fn a_token_becomes_credentials_and_only_the_right_token_does() {
    let s = start().await;
    let signer = DevSigner::generate().unwrap();
    let jwks: Value = serde_json::from_str(signer.jwks()).unwrap();
    let (status, body) = s
        .json(
            &s.admin,
            "podid",
            "POST",
            "/podid/v1/clusters",
            json!({"name": "t", "issuer": ISSUER, "jwks": jwks}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": ["sts:AssumeRole", "sts:TagSession"]}]});
    let (status, out) = s
        .query(
            &s.admin,
            "iam",
            &format!(
                "Action=CreateRole&Version=2010-05-08&RoleName=app&AssumeRolePolicyDocument={}",
                enc(&trust.to_string())
            ),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    let role_arn = format!("arn:aws:iam::{ACCOUNT}:role/app");
    let (status, body) = s
        .json(
            &s.admin,
            "eks",
            "POST",
            "/clusters/t/pod-identity-associations",
            json!({"namespace": "ns", "serviceAccount": "sa", "roleArn": role_arn}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // A node user allowed only eks-auth.
    let node_policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "eks-auth:AssumeRoleForPodIdentity", "Resource": "*"}]});
    s.query(
        &s.admin,
        "iam",
        "Action=CreateUser&Version=2010-05-08&UserName=node",
    )
    .await;
    s.query(
        &s.admin,
        "iam",
        &format!(
            "Action=PutUserPolicy&Version=2010-05-08&UserName=node&PolicyName=p&PolicyDocument={}",
            enc(&node_policy.to_string())
        ),
    )
    .await;
    let (_, key) = s
        .query(
            &s.admin,
            "iam",
            "Action=CreateAccessKey&Version=2010-05-08&UserName=node",
        )
        .await;
    let node = SigningCredentials {
        access_key_id: xml_field(&key, "AccessKeyId").to_owned(),
        secret_access_key: xml_field(&key, "SecretAccessKey").to_owned(),
        session_token: None,
    };

    let now = i64::try_from(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let token = signer
        .mint(&MintRequest::new(ISSUER, "ns", "sa", now).with_pod("web-1", None))
        .unwrap();
    let (status, out) = s
        .json(
            &node,
            "eks-auth",
            "POST",
            "/clusters/t/assume-role-for-pod-identity",
            json!({"token": token}),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(
        out["subject"],
        json!({"namespace": "ns", "serviceAccount": "sa"})
    );
    let creds = &out["credentials"];
    let temp = SigningCredentials {
        access_key_id: creds["accessKeyId"].as_str().unwrap().to_owned(),
        secret_access_key: creds["secretAccessKey"].as_str().unwrap().to_owned(),
        session_token: Some(creds["sessionToken"].as_str().unwrap().to_owned()),
    };
    assert!(temp.access_key_id.starts_with("ASIA"));
    let (status, me) = s
        .query(&temp, "sts", "Action=GetCallerIdentity&Version=2011-06-15")
        .await;
    assert_eq!(status, 200, "{me}");
    assert!(xml_field(&me, "Arn").starts_with(&format!(
        "arn:aws:sts::{ACCOUNT}:assumed-role/app/eks-t-web-1-"
    )));

    // The node may not administer; the pod session may not either.
    let (status, body) = s.json(&node, "eks", "GET", "/clusters", Value::Null).await;
    assert_eq!(
        (
            status,
            body["message"]
                .as_str()
                .map(|m| m.contains("not authorized"))
        ),
        (403, Some(true))
    );
    let (status, _) = s.json(&temp, "eks", "GET", "/clusters", Value::Null).await;
    assert_eq!(status, 403);

    // A token for another issuer, a forged one, one for an unassociated account: refused.
    let other = DevSigner::generate().unwrap();
    for (bad, code, want) in [
        (
            other
                .mint(&MintRequest::new(ISSUER, "ns", "sa", now))
                .unwrap(),
            400,
            "InvalidTokenException",
        ),
        (
            signer
                .mint(&MintRequest::new("https://elsewhere", "ns", "sa", now))
                .unwrap(),
            400,
            "InvalidTokenException",
        ),
        (
            signer
                .mint(&MintRequest::new(ISSUER, "ns", "nobody", now).with_pod("web-1", None))
                .unwrap(),
            404,
            "ResourceNotFoundException",
        ),
        // Associated, valid, but not bound to a pod (`kubectl create token` without
        // `--bound-object-kind Pod`): Pod Identity refuses it.
        (
            signer
                .mint(&MintRequest::new(ISSUER, "ns", "sa", now))
                .unwrap(),
            400,
            "InvalidTokenException",
        ),
        (
            signer
                .mint(&MintRequest {
                    ttl: Duration::from_secs(60),
                    ..MintRequest::new(ISSUER, "ns", "sa", now - 3600)
                })
                .unwrap(),
            400,
            "ExpiredTokenException",
        ),
    ] {
        let (status, headers, _) = s
            .call(
                &node,
                "eks-auth",
                "POST",
                "/clusters/t/assume-role-for-pod-identity",
                &json!({"token": bad}).to_string(),
                "application/json",
            )
            .await;
        assert_eq!(
            (status, headers["x-amzn-errortype"].to_str().unwrap()),
            (code, want)
        );
    }

    // A session token altered in one character is unknown; the audit trail saw the issuance.
    let mut tampered = temp.clone();
    let t = tampered.session_token.take().unwrap();
    let mid = t.len() / 2;
    let flipped = if &t[mid..=mid] == "A" { "B" } else { "A" };
    tampered.session_token = Some(format!("{}{flipped}{}", &t[..mid], &t[mid + 1..]));
    let (status, out) = s
        .query(
            &tampered,
            "sts",
            "Action=GetCallerIdentity&Version=2011-06-15",
        )
        .await;
    assert_eq!(status, 403);
    assert!(out.contains("<Code>InvalidClientTokenId</Code>"), "{out}");

    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _, events) = s
        .call_target(
            &s.admin,
            "cloudtrail",
            "POST",
            "/",
            r#"{"LookupAttributes":[{"AttributeKey":"EventName","AttributeValue":"AssumeRoleForPodIdentity"}]}"#,
            "application/x-amz-json-1.1",
            Some("com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents"),
        )
        .await;
    assert_eq!(status, 200, "{events}");
    let events: Value = serde_json::from_str(&events).unwrap_or(Value::Null);
    assert!(
        events["Events"].as_array().is_some_and(|e| e.len() >= 5),
        "{events}"
    );
    assert!(
        !events.to_string().contains(&token),
        "tokens never reach the audit trail"
    );
}

/// A `jwksUri` cluster whose endpoint wants a bearer token (as a kube-apiserver's
/// `/openid/v1/jwks` does): podid fetches with the token file and republishes the keys itself on
/// its public endpoint, never redirecting there.
#[tokio::test]
async fn jwks_uri_clusters_are_fetched_with_a_token_and_served_from_the_cache() {
    use axum::routing::get;
    let s = start().await;
    let signer = DevSigner::generate().unwrap();
    let document = signer.jwks().to_owned();
    let served = document.clone();
    let app = axum::Router::new().route(
        "/openid/v1/jwks",
        get(move |headers: http::HeaderMap| {
            let served = served.clone();
            async move {
                match headers.get("authorization").and_then(|v| v.to_str().ok()) {
                    Some("Bearer sa-token") => (http::StatusCode::OK, served),
                    _ => (http::StatusCode::UNAUTHORIZED, String::new()),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jwks_uri = format!("http://{}/openid/v1/jwks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "sa-token\n").unwrap();

    // Refused shapes first: options without a URI, a bundle that is not PEM, a relative path.
    for bad in [
        json!({"name": "k", "issuer": ISSUER, "jwks": {"keys": []}, "jwksTokenFile": "/t"}),
        json!({"name": "k", "issuer": ISSUER, "jwksUri": jwks_uri, "jwksCaBundle": "nope"}),
        json!({"name": "k", "issuer": ISSUER, "jwksUri": jwks_uri, "jwksTokenFile": "t"}),
    ] {
        let (status, headers, body) = s
            .call(
                &s.admin,
                "podid",
                "POST",
                "/podid/v1/clusters",
                &bad.to_string(),
                "application/json",
            )
            .await;
        assert_eq!(
            (status, headers["x-amzn-errortype"].to_str().unwrap()),
            (400, "InvalidParameterException"),
            "{body}"
        );
    }

    let (status, body) = s
        .json(
            &s.admin,
            "podid",
            "POST",
            "/podid/v1/clusters",
            json!({"name": "k", "issuer": ISSUER, "jwksUri": jwks_uri,
                   "jwksTokenFile": token_file.to_str().unwrap()}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["cluster"]["jwksTokenFile"].as_str(),
        token_file.to_str()
    );

    let public = format!("{}/podid/public/clusters/k/jwks", s.base);
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = no_redirects.get(&public).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["x-podid-issuer"], ISSUER);
    assert_eq!(resp.text().await.unwrap(), document);

    // Without a usable token the fetch fails: the public endpoint says so, it does not redirect.
    let (status, _) = s
        .json(
            &s.admin,
            "podid",
            "POST",
            "/podid/v1/clusters",
            json!({"name": "k2", "issuer": ISSUER, "jwksUri": jwks_uri}),
        )
        .await;
    assert_eq!(status, 200);
    let resp = no_redirects
        .get(format!("{}/podid/public/clusters/k2/jwks", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 503);
}

/// A `jwksUri` the server may not fetch is refused at registration (and update), with the
/// reason: plain http, loopback, instance metadata in any spelling, credentials in the URL.
#[tokio::test]
async fn jwks_uris_outside_the_egress_fence_are_refused_at_registration() {
    let s = start_with(ServiceConfig::new("us-east-1", ACCOUNT)).await;
    let register =
        |uri: &str| json!({"name": "fenced", "issuer": ISSUER, "jwksUri": uri}).to_string();
    let admin = |method: &'static str, path: &'static str, body: String| {
        let s = &s;
        async move {
            s.call(&s.admin, "podid", method, path, &body, "application/json")
                .await
        }
    };
    for (uri, reason) in [
        ("http://oidc.example.com/keys", "only https is allowed"),
        (
            "https://127.0.0.1:6443/openid/v1/jwks",
            "127.0.0.1 is a loopback address",
        ),
        (
            "https://169.254.169.254/latest/meta-data/",
            "169.254.169.254 is a link-local address",
        ),
        (
            "https://[fd00:ec2::254]/",
            "fd00:ec2::254 is a cloud metadata address",
        ),
        (
            "https://2852039166/",
            "169.254.169.254 is a link-local address",
        ),
        (
            "https://[::ffff:169.254.169.254]/",
            "is a link-local address",
        ),
        (
            "https://u:p@oidc.example.com/keys",
            "must not carry a user name or password",
        ),
        ("file:///etc/passwd", "is not an absolute http(s) URL"),
    ] {
        let (status, headers, body) = admin("POST", "/podid/v1/clusters", register(uri)).await;
        assert_eq!(
            (status, headers["x-amzn-errortype"].to_str().unwrap()),
            (400, "InvalidParameterException"),
            "{uri}: {body}"
        );
        assert!(
            body.contains("jwksUri is refused") && body.contains(reason),
            "{uri}: {body}"
        );
    }
    // A name is checked when it resolves (at fetch time), so it registers.
    let (status, _, body) = admin(
        "POST",
        "/podid/v1/clusters",
        register("https://oidc.example.com/keys"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // An update to a refused URI is refused too, and leaves the cluster as it was.
    let update = json!({"jwksUri": "https://169.254.169.254/"}).to_string();
    let (status, _, body) = admin("POST", "/podid/v1/clusters/fenced", update).await;
    assert_eq!(status, 400, "{body}");
    let (_, _, body) = admin("GET", "/podid/v1/clusters/fenced", String::new()).await;
    assert!(body.contains("https://oidc.example.com/keys"), "{body}");
}
