//! The session token format: `base64(version ‖ key_id ‖ nonce ‖ ciphertext ‖ tag)`.
//!
//! | bytes | field |
//! |---|---|
//! | 1 | version, [`TOKEN_VERSION`] |
//! | 4 | [`KeyId`] of the sealing key |
//! | 12 | random AES-GCM nonce |
//! | n + 16 | AES-256-GCM of the JSON [`SessionClaims`], with tag |
//!
//! The AAD is `version ‖ key_id`, so neither can be swapped without failing
//! authentication (the nonce is authenticated by GCM itself). Encoding is
//! standard base64 with padding, as AWS's own session tokens use: SDKs put it
//! in `X-Amz-Security-Token` as is and percent-encode `+ / =` in presigned
//! URLs. Decoding is canonical-only, so each token has exactly one spelling
//! (callers may key caches on the string). Nothing is compressed: compressing
//! attacker-influenced text (tags, policy) next to a secret invites
//! CRIME-style length leaks, and it would add a decompression-bomb surface.

use aws_lc_rs::aead::{Aad, NONCE_LEN, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::keyring::KeyId;
use crate::{Error, KeyRing, MalformedReason, OpenError, SessionClaims};

/// Format version written first in every token. Bump it for any change an
/// older replica would misread, including a new restricting claim.
pub const TOKEN_VERSION: u8 = 1;

/// Longest token, in base64 characters, that [`open`] decodes and [`seal`]
/// produces. 6 KiB keeps the whole `X-Amz-Security-Token: …` header line
/// under the smallest common per-header limit on the path (Apache
/// `LimitRequestFieldSize` 8190, nginx `large_client_header_buffers` 8 KiB)
/// with room for percent-encoding in presigned URLs, while still holding a
/// 2048-character session policy plus typical tags. Checked before decoding,
/// so an oversized header costs no allocation or AES work.
pub const MAX_TOKEN_LEN: usize = 6 * 1024;

const KEY_ID_LEN: usize = 4;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;
/// Bytes behind the longest accepted token (base64 packs 3 bytes in 4 chars).
const MAX_SEALED_LEN: usize = MAX_TOKEN_LEN / 4 * 3;

/// A sealed session token. `Debug` shows only its length; wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(Zeroizing<String>);

impl SessionToken {
    /// The token text, for the response that hands it out.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionToken(<{} chars>)", self.0.len())
    }
}

/// Seals `claims` with the ring's active key.
///
/// Refuses a lifetime (`expires_at - issued_at`) outside
/// `1..=max_credential_lifetime`: the ring drops retired keys on that
/// promise. Refuses claims whose token would exceed [`MAX_TOKEN_LEN`].
pub fn seal(ring: &KeyRing, claims: &SessionClaims) -> Result<SessionToken, Error> {
    let max_secs = ring.max_lifetime_secs();
    let lifetime = claims.expires_at.saturating_sub(claims.issued_at);
    if !(1..=max_secs).contains(&lifetime) {
        return Err(Error::Lifetime {
            requested_secs: lifetime,
            max_secs,
        });
    }
    let (key_id, key) = ring.sealing_key()?;
    // Sized for the largest acceptable token so the plaintext never
    // reallocates (which would leave unwiped copies on the heap).
    let mut sealed = Zeroizing::new(Vec::with_capacity(MAX_SEALED_LEN + TAG_LEN));
    sealed.push(TOKEN_VERSION);
    sealed.extend_from_slice(&key_id.0);
    sealed.extend_from_slice(&[0u8; NONCE_LEN]);
    serde_json::to_writer(&mut *sealed, claims).map_err(Error::Encode)?;
    let too_large = |len: usize| Error::TokenTooLarge {
        len,
        max: MAX_TOKEN_LEN,
    };
    let encoded_len = base64::encoded_len(sealed.len().saturating_add(TAG_LEN), true)
        .ok_or(too_large(usize::MAX))?;
    if encoded_len > MAX_TOKEN_LEN {
        return Err(too_large(encoded_len));
    }
    let (header, plaintext) = sealed.split_at_mut(HEADER_LEN);
    let (nonce, tag) = key
        .seal_in_place_separate_tag(Aad::from(aad(key_id)), plaintext)
        .map_err(|_| Error::Crypto)?;
    if let Some(slot) = header.get_mut(1 + KEY_ID_LEN..) {
        slot.copy_from_slice(nonce.as_ref());
    }
    sealed.extend_from_slice(tag.as_ref());
    Ok(SessionToken(Zeroizing::new(STANDARD.encode(&*sealed))))
}

/// Opens and checks a token presented at `now`.
///
/// Order of checks: length cap, base64, size, version, key id (in the ring
/// and inside its window), AEAD, claims decoding, then expiry.
pub fn open(ring: &KeyRing, token: &str, now: OffsetDateTime) -> Result<SessionClaims, OpenError> {
    let malformed = OpenError::Malformed;
    if token.len() > MAX_TOKEN_LEN {
        return Err(malformed(MalformedReason::TooLong));
    }
    let mut bytes = Zeroizing::new(
        STANDARD
            .decode(token)
            .map_err(|_| malformed(MalformedReason::Base64))?,
    );
    if bytes.len() < HEADER_LEN + TAG_LEN {
        return Err(malformed(MalformedReason::TooShort));
    }
    let (header, body) = bytes
        .split_at_mut_checked(HEADER_LEN)
        .ok_or(malformed(MalformedReason::TooShort))?;
    let (version, rest) = header
        .split_first()
        .ok_or(malformed(MalformedReason::TooShort))?;
    if *version != TOKEN_VERSION {
        return Err(malformed(MalformedReason::UnknownVersion));
    }
    let (key_id, nonce) = rest
        .split_first_chunk::<KEY_ID_LEN>()
        .ok_or(malformed(MalformedReason::TooShort))?;
    let key_id = KeyId(*key_id);
    let nonce = Nonce::try_assume_unique_for_key(nonce)
        .map_err(|_| malformed(MalformedReason::TooShort))?;
    let now = now.unix_timestamp();
    let key = ring
        .opening_key(key_id, now)
        .ok_or(OpenError::UnknownKey(key_id))?;
    let plaintext = key
        .open_in_place(nonce, Aad::from(aad(key_id)), body)
        .map_err(|_| OpenError::Tampered)?;
    let claims: SessionClaims =
        serde_json::from_slice(plaintext).map_err(|_| malformed(MalformedReason::Claims))?;
    if claims.expires_at <= now {
        return Err(OpenError::Expired {
            expired_at: claims.expires_at,
        });
    }
    Ok(claims)
}

fn aad(key_id: KeyId) -> [u8; 1 + KEY_ID_LEN] {
    let [a, b, c, d] = key_id.0;
    [TOKEN_VERSION, a, b, c, d]
}

#[cfg(test)]
#[path = "token_tests.rs"]
mod tests;
