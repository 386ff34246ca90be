//! [`DevSigner`]: an RSA-2048 key that mints tokens shaped like the kube-apiserver's projected
//! service-account tokens, for `podid dev`, tests and demos without a cluster.
//!
//! Shape follows kube-apiserver (`pkg/serviceaccount/claims.go`, go-jose serialisation): header
//! `{"alg":"RS256","kid":…}`, claims in key order `aud, exp, iat, iss, jti, kubernetes.io, nbf,
//! sub`, `kid` = base64url(SHA-256(DER SubjectPublicKeyInfo)) as in `keyIDFromPublicKey`.

use std::fmt;
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::TokenError;
use crate::jwt::B64URL;
use crate::verify::DEFAULT_AUDIENCE;

/// Largest key file read. A PKCS#8 PEM RSA-4096 key is about 3.3 KiB.
const MAX_KEY_FILE_BYTES: u64 = 16 * 1024;

const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PEM_END: &str = "-----END PRIVATE KEY-----";

/// Default token lifetime: the Pod Identity webhook's default `expirationSeconds` (86400).
const DEFAULT_TTL: Duration = Duration::from_secs(86_400);

/// An RSA signing key for development tokens. `Debug` shows only the `kid`.
pub struct DevSigner {
    key: KeyPair,
    kid: String,
    jwks: String,
}

/// What to put in a minted token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MintRequest {
    /// `iss`.
    pub issuer: String,
    /// `kubernetes.io.namespace`.
    pub namespace: String,
    /// `kubernetes.io.serviceaccount.name`.
    pub service_account: String,
    /// `kubernetes.io.serviceaccount.uid`; a random UUID when `None`.
    pub service_account_uid: Option<String>,
    /// `kubernetes.io.pod.name`; no pod claim when `None`.
    pub pod_name: Option<String>,
    /// `kubernetes.io.pod.uid`; a random UUID when `None`.
    pub pod_uid: Option<String>,
    /// `kubernetes.io.node.name`; no node claim when `None`.
    pub node_name: Option<String>,
    /// `kubernetes.io.node.uid`; a random UUID when `None`.
    pub node_uid: Option<String>,
    /// `aud`, always serialised as an array.
    pub audiences: Vec<String>,
    /// `exp - iat`.
    pub ttl: Duration,
    /// `iat` and `nbf`, unix seconds.
    pub now_unix: i64,
}

impl MintRequest {
    /// A request with audience [`DEFAULT_AUDIENCE`], a one-day lifetime and no pod or node.
    pub fn new(
        issuer: impl Into<String>,
        namespace: impl Into<String>,
        service_account: impl Into<String>,
        now_unix: i64,
    ) -> Self {
        Self {
            issuer: issuer.into(),
            namespace: namespace.into(),
            service_account: service_account.into(),
            service_account_uid: None,
            pod_name: None,
            pod_uid: None,
            node_name: None,
            node_uid: None,
            audiences: vec![DEFAULT_AUDIENCE.to_owned()],
            ttl: DEFAULT_TTL,
            now_unix,
        }
    }

    /// Bind the token to a pod.
    pub fn with_pod(mut self, name: impl Into<String>, uid: Option<String>) -> Self {
        self.pod_name = Some(name.into());
        self.pod_uid = uid;
        self
    }

    /// Bind the token to a node.
    pub fn with_node(mut self, name: impl Into<String>, uid: Option<String>) -> Self {
        self.node_name = Some(name.into());
        self.node_uid = uid;
        self
    }
}

impl DevSigner {
    /// A fresh RSA-2048 key.
    pub fn generate() -> Result<Self, TokenError> {
        let key = KeyPair::generate(KeySize::Rsa2048)
            .map_err(|_| TokenError::SignerKey("RSA key generation failed"))?;
        Self::from_key(key)
    }

    /// Load a PKCS#8 PEM (`BEGIN PRIVATE KEY`) RSA key.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, TokenError> {
        let body = pem
            .trim()
            .strip_prefix(PEM_BEGIN)
            .and_then(|rest| rest.strip_suffix(PEM_END))
            .ok_or(TokenError::SignerKey("not a PKCS#8 PEM private key"))?;
        let b64: Zeroizing<String> = Zeroizing::new(body.split_whitespace().collect());
        let der = Zeroizing::new(
            STANDARD
                .decode(b64.as_bytes())
                .map_err(|_| TokenError::SignerKey("PEM body is not base64"))?,
        );
        let key = KeyPair::from_pkcs8(&der)
            .map_err(|_| TokenError::SignerKey("not an RSA PKCS#8 key of 2048–8192 bits"))?;
        Self::from_key(key)
    }

    /// The key as PKCS#8 PEM. Secret: zeroised on drop.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, TokenError> {
        let der = self
            .key
            .as_der()
            .map_err(|_| TokenError::SignerKey("PKCS#8 encoding failed"))?;
        let b64 = Zeroizing::new(STANDARD.encode(der.as_ref()));
        let mut pem = Zeroizing::new(String::with_capacity(b64.len() + b64.len() / 64 + 64));
        pem.push_str(PEM_BEGIN);
        pem.push('\n');
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str(PEM_END);
        pem.push('\n');
        Ok(pem)
    }

    /// Read a key written by [`DevSigner::save`] (at most 16 KiB).
    pub fn load(path: &Path) -> Result<Self, TokenError> {
        let io_err = |source| TokenError::SignerKeyFile {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io_err)?;
        let mut pem = Zeroizing::new(String::new());
        std::io::Read::read_to_string(
            &mut std::io::Read::take(file, MAX_KEY_FILE_BYTES + 1),
            &mut pem,
        )
        .map_err(io_err)?;
        if pem.len() as u64 > MAX_KEY_FILE_BYTES {
            return Err(TokenError::SignerKey("key file is larger than 16 KiB"));
        }
        Self::from_pkcs8_pem(&pem)
    }

    /// Write the key as PKCS#8 PEM, readable by the owner only (mode 0600, also when replacing).
    pub fn save(&self, path: &Path) -> Result<(), TokenError> {
        let io_err = |source| TokenError::SignerKeyFile {
            path: path.to_owned(),
            source,
        };
        let pem = self.to_pkcs8_pem()?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
            options.mode(0o600);
            // An existing file keeps its mode on open; tighten it before writing the secret.
            if path.exists() {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                    .map_err(io_err)?;
            }
        }
        let mut file = options.open(path).map_err(io_err)?;
        file.write_all(pem.as_bytes()).map_err(io_err)?;
        file.sync_all().map_err(io_err)
    }

    /// [`DevSigner::load`] `path`, or generate and [`DevSigner::save`] a key there if it is absent.
    pub fn load_or_generate(path: &Path) -> Result<Self, TokenError> {
        if path.exists() {
            return Self::load(path);
        }
        let signer = Self::generate()?;
        signer.save(path)?;
        Ok(signer)
    }

    /// The key id: base64url(SHA-256(DER SubjectPublicKeyInfo)), as Kubernetes computes it.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public JWK set (`{"keys":[{"use":"sig","kty":"RSA","kid":…,"alg":"RS256","n":…,"e":…}]}`),
    /// in the shape of the kube-apiserver's `/openid/v1/jwks`.
    pub fn jwks(&self) -> &str {
        &self.jwks
    }

    /// Sign a token for `req`.
    pub fn mint(&self, req: &MintRequest) -> Result<String, TokenError> {
        let ttl = i64::try_from(req.ttl.as_secs()).unwrap_or(i64::MAX);
        let uid = |given: &Option<String>| given.clone().map_or_else(random_uuid, Ok);
        let object = |name: &Option<String>, uid_given: &Option<String>| -> Result<_, TokenError> {
            name.as_ref()
                .map(|name| {
                    Ok(WireRef {
                        name: name.clone(),
                        uid: uid(uid_given)?,
                    })
                })
                .transpose()
        };
        let claims = WireClaims {
            aud: &req.audiences,
            exp: req.now_unix.saturating_add(ttl),
            iat: req.now_unix,
            iss: &req.issuer,
            jti: random_uuid()?,
            kubernetes: WireK8s {
                namespace: &req.namespace,
                node: object(&req.node_name, &req.node_uid)?,
                pod: object(&req.pod_name, &req.pod_uid)?,
                serviceaccount: WireRef {
                    name: req.service_account.clone(),
                    uid: uid(&req.service_account_uid)?,
                },
            },
            nbf: req.now_unix,
            sub: format!(
                "system:serviceaccount:{}:{}",
                req.namespace, req.service_account
            ),
        };
        let header = format!(r#"{{"alg":"RS256","kid":"{}"}}"#, self.kid);
        let claims = serde_json::to_vec(&claims)
            .map_err(|_| TokenError::SignerKey("claims encoding failed"))?;
        let mut token = B64URL.encode(header);
        token.push('.');
        B64URL.encode_string(claims, &mut token);
        let mut signature = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                token.as_bytes(),
                &mut signature,
            )
            .map_err(|_| TokenError::SignerKey("signing failed"))?;
        token.push('.');
        B64URL.encode_string(signature, &mut token);
        Ok(token)
    }

    fn from_key(key: KeyPair) -> Result<Self, TokenError> {
        let public = key.public_key();
        let spki = public
            .as_der()
            .map_err(|_| TokenError::SignerKey("public key encoding failed"))?;
        let kid = B64URL.encode(digest(&SHA256, spki.as_ref()));
        let jwks = serde_json::json!({"keys": [{
            "use": "sig",
            "kty": "RSA",
            "kid": kid,
            "alg": "RS256",
            "n": B64URL.encode(public.modulus().big_endian_without_leading_zero()),
            "e": B64URL.encode(public.exponent().big_endian_without_leading_zero()),
        }]})
        .to_string();
        Ok(Self { key, kid, jwks })
    }
}

#[cfg(test)]
impl DevSigner {
    /// RS256 signature over arbitrary bytes, for hand-built hostile tokens.
    pub(crate) fn sign_raw(&self, message: &[u8]) -> Vec<u8> {
        let mut signature = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message,
                &mut signature,
            )
            .unwrap();
        signature
    }

    /// DER SubjectPublicKeyInfo of the public key.
    pub(crate) fn spki_der(&self) -> Vec<u8> {
        self.key.public_key().as_der().unwrap().as_ref().to_vec()
    }
}

impl fmt::Debug for DevSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevSigner")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

// Field order is the serialisation order: alphabetical, as go-jose emits it.
#[derive(Serialize)]
struct WireClaims<'r> {
    aud: &'r [String],
    exp: i64,
    iat: i64,
    iss: &'r str,
    jti: String,
    #[serde(rename = "kubernetes.io")]
    kubernetes: WireK8s<'r>,
    nbf: i64,
    sub: String,
}

#[derive(Serialize)]
struct WireK8s<'r> {
    namespace: &'r str,
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<WireRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pod: Option<WireRef>,
    serviceaccount: WireRef,
}

#[derive(Serialize)]
struct WireRef {
    name: String,
    uid: String,
}

/// A random (version 4) UUID in its canonical text form.
fn random_uuid() -> Result<String, TokenError> {
    let mut b = [0u8; 16];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| TokenError::SignerKey("random source failed"))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let part = |r: std::ops::Range<usize>| hex.get(r).unwrap_or_default();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        part(0..8),
        part(8..12),
        part(12..16),
        part(16..20),
        part(20..32)
    ))
}

#[cfg(test)]
mod tests;
