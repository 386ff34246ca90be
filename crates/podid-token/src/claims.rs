//! The claims of a Kubernetes projected service-account token: the wire shape (borrowed from the
//! decoded payload) and the domain types callers receive.

use std::fmt;
use std::sync::Arc;

use serde::Deserialize;

use crate::TokenError;
use crate::jwt::Str;

/// Most audiences accepted in one token. Kubernetes issues one per projected volume; the cap stops
/// a signed-but-silly token from costing a long scan.
const MAX_AUDIENCES: usize = 32;

/// Prefix of a service account's `sub` (`system:serviceaccount:<namespace>:<name>`).
const SUBJECT_PREFIX: &str = "system:serviceaccount:";

/// A named, uid-identified Kubernetes object (the pod) as named by the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    /// `metadata.name`.
    pub name: Arc<str>,
    /// `metadata.uid`.
    pub uid: Arc<str>,
}

/// The node a token names (`kubernetes.io.node`). The API server writes the uid only when it
/// found the Node object: a pod scheduled onto a node name that has no Node object (static
/// pods before registration, a kubelet that registers late, clusters without node objects)
/// gets a token with a name and no uid, and such tokens are valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRef {
    /// The node's name (the pod's `spec.nodeName`).
    pub name: Arc<str>,
    /// The Node object's `metadata.uid`, when the API server found one.
    pub uid: Option<Arc<str>>,
}

/// A token whose signature and claims all passed. Clones are reference-count bumps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// `kubernetes.io.namespace`.
    pub namespace: Arc<str>,
    /// `kubernetes.io.serviceaccount.name`.
    pub service_account: Arc<str>,
    /// `kubernetes.io.serviceaccount.uid`.
    pub service_account_uid: Arc<str>,
    /// `kubernetes.io.pod`, present for tokens bound to a pod.
    pub pod: Option<ObjectRef>,
    /// `kubernetes.io.node` (Kubernetes 1.30+ with node binding).
    pub node: Option<NodeRef>,
    /// `iss` (equal to the verifier's configured issuer).
    pub issuer: Arc<str>,
    /// `aud`, always as a list.
    pub audiences: Arc<[Arc<str>]>,
    /// `sub`.
    pub subject: Arc<str>,
    /// `iat`, unix seconds, when present.
    pub issued_at: Option<i64>,
    /// `exp`, unix seconds.
    pub expires_at: i64,
    /// `nbf`, unix seconds, when present.
    pub not_before: Option<i64>,
}

/// Claims read by [`crate::peek_unverified`]: NOT verified, for cache keys and cheap pre-checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnverifiedClaims {
    /// `kubernetes.io.namespace`.
    pub namespace: Arc<str>,
    /// `kubernetes.io.serviceaccount.name`.
    pub service_account: Arc<str>,
    /// `kubernetes.io.pod` (its uid is the agent's cache key).
    pub pod: Option<ObjectRef>,
    /// `iat`, when present.
    pub issued_at: Option<i64>,
    /// `exp`.
    pub expires_at: i64,
    /// `nbf`, when present.
    pub not_before: Option<i64>,
}

impl UnverifiedClaims {
    /// The `exp`/`nbf`/`iat` checks of verification, with `leeway_secs` of clock skew allowed.
    pub fn check_times(&self, now_unix: i64, leeway_secs: i64) -> Result<(), TokenError> {
        check_times(
            self.expires_at,
            self.not_before,
            self.issued_at,
            now_unix,
            leeway_secs,
        )
    }

    pub(crate) fn from_wire(wire: &WireClaims<'_>) -> Result<Self, TokenError> {
        let k8s = wire.kubernetes()?;
        Ok(Self {
            namespace: Arc::from(k8s.namespace),
            service_account: Arc::from(k8s.service_account),
            pod: k8s.pod,
            issued_at: wire.iat,
            expires_at: wire.exp.ok_or(TokenError::MissingClaim("exp"))?,
            not_before: wire.nbf,
        })
    }
}

/// Expiry first (the only "expired" outcome), then `nbf`, then `iat`. `exp` is exclusive (RFC 7519
/// §4.1.4: the token must not be accepted on or after it).
pub(crate) fn check_times(
    exp: i64,
    nbf: Option<i64>,
    iat: Option<i64>,
    now: i64,
    leeway: i64,
) -> Result<(), TokenError> {
    if now >= exp.saturating_add(leeway) {
        return Err(TokenError::Expired);
    }
    if nbf.is_some_and(|nbf| now.saturating_add(leeway) < nbf) {
        return Err(TokenError::NotYetValid);
    }
    if iat.is_some_and(|iat| now.saturating_add(leeway) < iat) {
        return Err(TokenError::IssuedInFuture);
    }
    Ok(())
}

/// The claims set as sent. Unknown claims (`jti`, `kubernetes.io.warnafter`...) are ignored;
/// a duplicated known claim is a parse error (serde refuses duplicate fields), so two JSON parsers
/// can never disagree about which `sub` or `aud` counted.
#[derive(Deserialize)]
pub(crate) struct WireClaims<'a> {
    #[serde(borrow)]
    pub(crate) iss: Option<Str<'a>>,
    #[serde(borrow)]
    pub(crate) sub: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub(crate) aud: Option<Audience<'a>>,
    pub(crate) exp: Option<i64>,
    pub(crate) iat: Option<i64>,
    pub(crate) nbf: Option<i64>,
    #[serde(borrow, rename = "kubernetes.io")]
    k8s: Option<WireK8s<'a>>,
}

#[derive(Deserialize)]
struct WireK8s<'a> {
    #[serde(borrow)]
    namespace: Option<Str<'a>>,
    #[serde(borrow)]
    serviceaccount: Option<WireRef<'a>>,
    #[serde(borrow)]
    pod: Option<WireRef<'a>>,
    #[serde(borrow)]
    node: Option<WireRef<'a>>,
}

#[derive(Deserialize)]
struct WireRef<'a> {
    #[serde(borrow)]
    name: Option<Str<'a>>,
    #[serde(borrow)]
    uid: Option<Str<'a>>,
}

/// The identity part of `kubernetes.io`, checked for presence and non-emptiness.
pub(crate) struct K8sIdentity<'c> {
    pub(crate) namespace: &'c str,
    pub(crate) service_account: &'c str,
    pub(crate) service_account_uid: &'c str,
    pub(crate) pod: Option<ObjectRef>,
    pub(crate) node: Option<NodeRef>,
}

impl<'a> WireClaims<'a> {
    pub(crate) fn parse(payload: &'a [u8]) -> Result<Self, TokenError> {
        serde_json::from_slice(payload)
            .map_err(|_| TokenError::Malformed("claims are not a valid JSON object"))
    }

    /// The `kubernetes.io` identity; every part the verifier relies on must be present.
    pub(crate) fn kubernetes(&self) -> Result<K8sIdentity<'_>, TokenError> {
        let k8s = self
            .k8s
            .as_ref()
            .ok_or(TokenError::MissingClaim("kubernetes.io"))?;
        let sa = k8s
            .serviceaccount
            .as_ref()
            .ok_or(TokenError::MissingClaim("kubernetes.io.serviceaccount"))?;
        Ok(K8sIdentity {
            namespace: required(&k8s.namespace, "kubernetes.io.namespace")?,
            service_account: required(&sa.name, "kubernetes.io.serviceaccount.name")?,
            service_account_uid: required(&sa.uid, "kubernetes.io.serviceaccount.uid")?,
            pod: object_ref(&k8s.pod, "kubernetes.io.pod.name", "kubernetes.io.pod.uid")?,
            node: node_ref(&k8s.node)?,
        })
    }
}

/// True when `sub` is exactly `system:serviceaccount:<namespace>:<service_account>`, compared
/// without building the expected string.
pub(crate) fn subject_matches(sub: &str, namespace: &str, service_account: &str) -> bool {
    sub.strip_prefix(SUBJECT_PREFIX)
        .and_then(|rest| rest.strip_prefix(namespace))
        .and_then(|rest| rest.strip_prefix(':'))
        .is_some_and(|rest| rest == service_account)
}

fn required<'c>(field: &'c Option<Str<'_>>, name: &'static str) -> Result<&'c str, TokenError> {
    match field.as_deref() {
        None => Err(TokenError::MissingClaim(name)),
        Some("") => Err(TokenError::InvalidClaim(name)),
        Some(value) => Ok(value),
    }
}

fn object_ref(
    wire: &Option<WireRef<'_>>,
    name: &'static str,
    uid: &'static str,
) -> Result<Option<ObjectRef>, TokenError> {
    let Some(wire) = wire else { return Ok(None) };
    Ok(Some(ObjectRef {
        name: Arc::from(required(&wire.name, name)?),
        uid: Arc::from(required(&wire.uid, uid)?),
    }))
}

/// The node claim: a name is required, the uid is optional (see [`NodeRef`]) but must not be
/// empty when present.
fn node_ref(wire: &Option<WireRef<'_>>) -> Result<Option<NodeRef>, TokenError> {
    let Some(wire) = wire else { return Ok(None) };
    let uid = match wire.uid.as_deref() {
        None => None,
        Some("") => return Err(TokenError::InvalidClaim("kubernetes.io.node.uid")),
        Some(uid) => Some(Arc::from(uid)),
    };
    Ok(Some(NodeRef {
        name: Arc::from(required(&wire.name, "kubernetes.io.node.name")?),
        uid,
    }))
}

/// `aud`: RFC 7519 allows one string or an array of strings.
pub(crate) struct Audience<'a>(pub(crate) Vec<Str<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for Audience<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Audience<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Audience(vec![Str(v.into())]))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Audience(vec![Str(v.to_owned().into())]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(1).min(MAX_AUDIENCES));
                while let Some(item) = seq.next_element::<Str<'de>>()? {
                    if out.len() == MAX_AUDIENCES {
                        return Err(serde::de::Error::custom("too many audiences"));
                    }
                    out.push(item);
                }
                Ok(Audience(out))
            }
        }
        d.deserialize_any(V)
    }
}
