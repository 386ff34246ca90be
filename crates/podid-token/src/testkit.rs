//! Test helpers: raw token assembly, EC keys, standard claims and a loopback JWKS server.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair,
    EcdsaSigningAlgorithm, KeyPair as _,
};
use base64::Engine as _;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::jwt::B64URL;

pub(crate) const ISSUER: &str = "https://oidc.example.test/id/CLUSTER1";
pub(crate) const NOW: i64 = 1_800_000_000;

pub(crate) fn b64(bytes: impl AsRef<[u8]>) -> String {
    B64URL.encode(bytes)
}

/// `b64(header).b64(claims).b64(sign(signing_input))`.
pub(crate) fn assemble(
    header: &Value,
    claims: &Value,
    sign: impl FnOnce(&[u8]) -> Vec<u8>,
) -> String {
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let sig = sign(input.as_bytes());
    format!("{input}.{}", b64(sig))
}

/// Claims shaped like a kube-apiserver projected token for `default/app` in pod `app-1`.
pub(crate) fn claims() -> Value {
    json!({
        "aud": ["pods.eks.amazonaws.com"],
        "exp": NOW + 3600,
        "iat": NOW - 10,
        "iss": ISSUER,
        "jti": "4a5e1f0c-7a39-4a43-9f3e-2b9a8a0f2c11",
        "kubernetes.io": {
            "namespace": "default",
            "node": {"name": "node-a", "uid": "6a2e1f0c-0000-4000-8000-000000000001"},
            "pod": {"name": "app-1", "uid": "7b3f2a1d-0000-4000-8000-000000000002"},
            "serviceaccount": {"name": "app", "uid": "8c4a3b2e-0000-4000-8000-000000000003"}
        },
        "nbf": NOW - 10,
        "sub": "system:serviceaccount:default:app"
    })
}

/// An EC signing key with its public JWK.
pub(crate) struct EcKey {
    pub(crate) pair: EcdsaKeyPair,
    pub(crate) pkcs8: Vec<u8>,
    pub(crate) kid: String,
    crv: &'static str,
    coord: usize,
}

impl EcKey {
    pub(crate) fn p256(kid: &str) -> Self {
        Self::generate(&ECDSA_P256_SHA256_FIXED_SIGNING, "P-256", 32, kid)
    }

    pub(crate) fn p384(kid: &str) -> Self {
        Self::generate(&ECDSA_P384_SHA384_FIXED_SIGNING, "P-384", 48, kid)
    }

    fn generate(
        alg: &'static EcdsaSigningAlgorithm,
        crv: &'static str,
        coord: usize,
        kid: &str,
    ) -> Self {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &SystemRandom::new()).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref()).unwrap();
        Self {
            pair,
            pkcs8: pkcs8.as_ref().to_vec(),
            kid: kid.to_owned(),
            crv,
            coord,
        }
    }

    pub(crate) fn jwk(&self) -> Value {
        let point = self.pair.public_key().as_ref();
        let x = &point[1..=self.coord];
        let y = &point[1 + self.coord..];
        json!({"kty": "EC", "crv": self.crv, "kid": self.kid, "use": "sig", "x": b64(x), "y": b64(y)})
    }

    pub(crate) fn sign(&self, msg: &[u8]) -> Vec<u8> {
        self.pair
            .sign(&SystemRandom::new(), msg)
            .unwrap()
            .as_ref()
            .to_vec()
    }
}

/// `{"keys": [...]}`.
pub(crate) fn jwks(keys: &[Value]) -> String {
    json!({ "keys": keys }).to_string()
}

/// The JWKS body a [`JwksServer`] serves, and its status code.
pub(crate) struct JwksServer {
    pub(crate) url: String,
    pub(crate) hits: Arc<AtomicUsize>,
    body: Arc<parking_lot::Mutex<(u16, String)>>,
    /// The head (request line and headers) of the last request received.
    last_head: Arc<parking_lot::Mutex<String>>,
    /// A `Location` sent with the answer (set with a 3xx status to redirect).
    location: Arc<parking_lot::Mutex<Option<String>>>,
}

/// Lets fetches from the test servers on 127.0.0.1 (plain http) through the egress fence.
pub(crate) fn loopback_egress() -> crate::EgressPolicy {
    crate::EgressPolicy {
        allow_http: true,
        allowed_networks: vec!["127.0.0.1/32".parse().unwrap()],
    }
}

impl JwksServer {
    /// Serve `body` (status 200) on 127.0.0.1, counting requests.
    pub(crate) async fn start(body: String) -> Self {
        Self::start_on("127.0.0.1", body).await
    }

    /// Serve `body` on a free port of `ip` (any 127.0.0.0/8 address is loopback on Linux).
    pub(crate) async fn start_on(ip: &str, body: String) -> Self {
        let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
        let url = format!("http://{}/openid/v1/jwks", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let body = Arc::new(parking_lot::Mutex::new((200, body)));
        let last_head = Arc::new(parking_lot::Mutex::new(String::new()));
        let location: Arc<parking_lot::Mutex<Option<String>>> = Arc::default();
        let (h, b, l) = (Arc::clone(&hits), Arc::clone(&body), Arc::clone(&last_head));
        let loc = Arc::clone(&location);
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                h.fetch_add(1, Ordering::SeqCst);
                let (status, text) = b.lock().clone();
                let location = loc
                    .lock()
                    .as_ref()
                    .map(|l| format!("location: {l}\r\n"))
                    .unwrap_or_default();
                let l = Arc::clone(&l);
                tokio::spawn(async move {
                    let mut req = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => req.extend_from_slice(&buf[..n]),
                        }
                    }
                    *l.lock() = String::from_utf8_lossy(&req).into_owned();
                    let head = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n{location}content-length: {}\r\nconnection: close\r\n\r\n",
                        text.len()
                    );
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.write_all(text.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Self {
            url,
            hits,
            body,
            last_head,
            location,
        }
    }

    /// Answer 302 with this `Location` from now on.
    pub(crate) fn redirect(&self, location: &str) {
        self.set(302, String::new());
        *self.location.lock() = Some(location.to_owned());
    }

    /// The value of `name` in the last request's headers (case-insensitive name).
    pub(crate) fn last_header(&self, name: &str) -> Option<String> {
        self.last_head.lock().lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }

    pub(crate) fn set(&self, status: u16, body: String) {
        *self.body.lock() = (status, body);
    }

    pub(crate) fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}
