//! RFC 7517 JSON Web Key Sets: parsed once into ready-to-use aws-lc-rs verification keys.
//!
//! Only signature keys this crate can use are kept: RSA (RS256, modulus 2048–8192 bits) and EC
//! P-256 (ES256) / P-384 (ES384). Symmetric (`oct`), OKP, P-521, encryption (`use: enc`) and
//! keys whose `alg` names anything else are skipped, so an HMAC secret published in a JWKS can
//! never become a verification key.

use std::fmt;

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P384_SHA384_FIXED, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256,
    RsaPublicKeyComponents,
};
use base64::Engine as _;
use serde::Deserialize;

use crate::TokenError;
use crate::jwt::{Alg, B64URL};

/// Largest JWKS document accepted, checked before parsing (and while streaming a fetch). A
/// Kubernetes JWKS with a few RSA-4096 keys is under 4 KiB; 64 KiB bounds memory and parse time
/// when the `jwks_uri` is slow, hostile or misconfigured.
pub const MAX_JWKS_BYTES: usize = 64 * 1024;

/// Most entries in `keys`. A cluster publishes one key per `--service-account-key-file`, usually
/// one to three during rotation; a token without `kid` may be tried against every matching key,
/// so this also bounds the signature checks per token.
pub const MAX_JWKS_KEYS: usize = 32;

/// Smallest and largest RSA modulus kept, in bytes (2048 and 8192 bits, as aws-lc-rs verifies).
const RSA_MODULUS_BYTES: std::ops::RangeInclusive<usize> = 256..=1024;

/// The usable keys of one JWKS, ready to verify signatures.
pub struct KeySet {
    keys: Vec<VerifyingKey>,
}

struct VerifyingKey {
    kid: Option<Box<str>>,
    alg: Alg,
    key: ParsedPublicKey,
}

impl KeySet {
    /// Parse a JWKS document, keeping the usable keys and skipping the rest.
    pub fn parse(document: &[u8]) -> Result<Self, TokenError> {
        if document.len() > MAX_JWKS_BYTES {
            return Err(TokenError::JwksTooLarge {
                max: MAX_JWKS_BYTES,
            });
        }
        let wire: WireSet = serde_json::from_slice(document).map_err(TokenError::JwksInvalid)?;
        let listed = wire.keys.len();
        if listed > MAX_JWKS_KEYS {
            return Err(TokenError::JwksTooManyKeys { max: MAX_JWKS_KEYS });
        }
        let keys: Vec<VerifyingKey> = wire
            .keys
            .into_iter()
            .filter_map(|value| serde_json::from_value::<WireKey>(value).ok())
            .filter_map(|wire| VerifyingKey::from_wire(&wire))
            .collect();
        if keys.len() < listed {
            tracing::debug!(usable = keys.len(), listed, "skipped unsupported JWKS keys");
        }
        Ok(Self { keys })
    }

    /// An empty set (a `jwks_uri` source before its first fetch).
    pub fn empty() -> Self {
        Self { keys: Vec::new() }
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no key is usable.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The `kid`s of the usable keys, in document order.
    pub fn kids(&self) -> impl Iterator<Item = Option<&str>> {
        self.keys.iter().map(|k| k.kid.as_deref())
    }

    /// Verify `signature` over `message` with the key(s) named by `kid` (or, without `kid`, every
    /// key that fits `alg`). A key of another type or curve than `alg` is never tried.
    pub(crate) fn verify(
        &self,
        kid: Option<&str>,
        alg: Alg,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), TokenError> {
        let mut kid_seen = false;
        let mut tried = false;
        for key in &self.keys {
            if let Some(kid) = kid {
                if key.kid.as_deref() != Some(kid) {
                    continue;
                }
                kid_seen = true;
            }
            if key.alg != alg {
                continue;
            }
            tried = true;
            if key.key.verify_sig(message, signature).is_ok() {
                return Ok(());
            }
        }
        Err(match (tried, kid_seen) {
            (true, _) => TokenError::BadSignature,
            (false, true) => TokenError::KeyMismatch,
            (false, false) => TokenError::UnknownKey,
        })
    }
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|k| (k.kid.as_deref(), k.alg)))
            .finish()
    }
}

/// `keys` entries stay untyped until each is read alone: one odd entry (a numeric `kid`, a
/// vendor extension) is skipped instead of failing the whole set.
#[derive(Deserialize)]
struct WireSet {
    keys: Vec<serde_json::Value>,
}

/// One JWK; every member optional so an unsupported key is skipped rather than failing the set.
#[derive(Deserialize)]
struct WireKey {
    kty: Option<String>,
    kid: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    alg: Option<String>,
    n: Option<String>,
    e: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

impl VerifyingKey {
    fn from_wire(wire: &WireKey) -> Option<Self> {
        if wire.use_.as_deref().is_some_and(|u| u != "sig") {
            return None;
        }
        let (alg, key) = match wire.kty.as_deref()? {
            "RSA" => (Alg::Rs256, rsa_key(wire)?),
            "EC" => ec_key(wire)?,
            _ => return None,
        };
        let alg_name = match alg {
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
            Alg::Es384 => "ES384",
        };
        if wire.alg.as_deref().is_some_and(|a| a != alg_name) {
            return None;
        }
        Some(Self {
            kid: wire.kid.as_deref().map(Box::from),
            alg,
            key,
        })
    }
}

fn rsa_key(wire: &WireKey) -> Option<ParsedPublicKey> {
    let n = B64URL.decode(wire.n.as_deref()?).ok()?;
    let e = B64URL.decode(wire.e.as_deref()?).ok()?;
    // JWK says no leading zero octets, but some producers emit one; aws-lc refuses them.
    let n = strip_leading_zeros(&n);
    let e = strip_leading_zeros(&e);
    if !RSA_MODULUS_BYTES.contains(&n.len()) || e.is_empty() || e.len() > 4 {
        return None;
    }
    RsaPublicKeyComponents { n, e }
        .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
        .ok()
}

fn ec_key(wire: &WireKey) -> Option<(Alg, ParsedPublicKey)> {
    let (alg, verify_alg, coord_len) = match wire.crv.as_deref()? {
        "P-256" => (Alg::Es256, &ECDSA_P256_SHA256_FIXED, 32),
        "P-384" => (Alg::Es384, &ECDSA_P384_SHA384_FIXED, 48),
        _ => return None,
    };
    let x = B64URL.decode(wire.x.as_deref()?).ok()?;
    let y = B64URL.decode(wire.y.as_deref()?).ok()?;
    if x.len() != coord_len || y.len() != coord_len {
        return None;
    }
    // SEC 1 uncompressed point; aws-lc checks that it lies on the curve.
    let mut point = Vec::with_capacity(1 + 2 * coord_len);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    let key = ParsedPublicKey::new(verify_alg, point).ok()?;
    Some((alg, key))
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

#[cfg(test)]
mod tests;
