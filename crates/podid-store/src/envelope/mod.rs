//! Envelope encryption of secret values at rest, under a key-encryption key (KEK).
//!
//! The store never decides what is secret: callers seal a value before they put it and open it
//! after they read it, naming the record (its store key) each time. Each sealed value has its own
//! random 256-bit data key (DEK); the value is sealed under the DEK and the DEK is wrapped under
//! the KEK, both with AES-256-GCM (aws-lc-rs, 96-bit random nonces). Rotating the KEK re-wraps
//! DEKs only ([`KekSet::rewrap`]); the sealed values themselves are untouched.
//!
//! Encoding, version 1 (ASCII, so a stored row stays printable):
//!
//! ```text
//! podid-enc:v1:<kek id>:<wrapped DEK>:<sealed value>
//! kek id        16 lowercase hex digits: SHA-256("podid-kek-id:v1" || KEK), first 8 bytes
//! wrapped DEK   base64 (standard, no padding) of nonce(12) || AES-256-GCM(KEK, DEK) || tag(16)
//!               associated data: "podid-enc:v1:dek:<kek id>:<record>"
//! sealed value  base64 (standard, no padding) of nonce(12) || AES-256-GCM(DEK, value) || tag(16)
//!               associated data: "podid-enc:v1:value:<record>"
//! ```
//!
//! Both layers name the record, so a sealed value (or its wrapped DEK) copied into another row
//! fails authentication instead of opening there. Anything not starting with `podid-enc:` is not
//! sealed ([`is_sealed`]); records podid stored before version 1 are JSON, which never does.

mod kek;

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use zeroize::Zeroizing;

pub use kek::{KEK_LEN, Kek, KekId};

/// What every sealed value starts with, whatever its version.
const MAGIC: &str = "podid-enc:";
/// The version this code writes and reads.
const V1: &str = "podid-enc:v1:";
/// AES-GCM tag length.
const TAG_LEN: usize = 16;
/// Bytes in a data key.
const DEK_LEN: usize = 32;
/// Length of the decoded wrapped-DEK field.
const WRAPPED_DEK_LEN: usize = NONCE_LEN + DEK_LEN + TAG_LEN;

/// Why a value could not be sealed or opened, or a KEK could not be loaded. Never carries key
/// bytes or plaintext.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// Starts like a sealed value but is not a well-formed version 1 one.
    #[error("sealed value is malformed: {0}")]
    Malformed(&'static str),
    /// Sealed by a newer podid with an encoding this one does not know.
    #[error("sealed value uses an unknown encoding version")]
    UnknownVersion,
    /// Sealed under a KEK that is not among the configured ones.
    #[error("sealed under KEK {0}, which is not configured")]
    UnknownKek(KekId),
    /// Authentication failed: the value was altered, or belongs to another record.
    #[error("sealed value failed authentication (altered, or moved from another record)")]
    Tampered,
    /// The value was expected to be sealed and is not.
    #[error("value is stored in plain text where a sealed value was expected")]
    NotSealed,
    /// Two configured KEKs are the same key.
    #[error("KEK {0} is configured twice")]
    DuplicateKek(KekId),
    /// A KEK's text is not base64 of exactly 32 bytes.
    #[error("{0}")]
    KekFormat(&'static str),
    /// A KEK file could not be read or created.
    #[error("{path}: {source}")]
    KekFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The operating system's random source failed.
    #[error("random number generator failed")]
    Rng,
    /// AES-GCM refused an operation (not expected with 32-byte keys; surfaced, not hidden).
    #[error("aead operation failed")]
    Crypto,
}

/// Whether `value` is in the sealed encoding (of any version).
pub fn is_sealed(value: &[u8]) -> bool {
    value.starts_with(MAGIC.as_bytes())
}

/// The KEKs podid holds: the current one seals and opens; previous ones (during a rotation)
/// only open. `Debug` shows key ids only.
#[derive(Debug)]
pub struct KekSet {
    current: Kek,
    previous: Vec<Kek>,
}

impl KekSet {
    /// A set sealing with `current`. Refuses the same key twice, so a rotation that names the
    /// old file as the new one is caught at start.
    pub fn new(current: Kek, previous: Vec<Kek>) -> Result<Self, EnvelopeError> {
        for (i, kek) in previous.iter().enumerate() {
            let earlier = previous.get(..i).unwrap_or_default();
            if kek.id() == current.id() || earlier.iter().any(|k| k.id() == kek.id()) {
                return Err(EnvelopeError::DuplicateKek(kek.id()));
            }
        }
        Ok(Self { current, previous })
    }

    /// The id of the KEK that seals.
    pub fn current_id(&self) -> KekId {
        self.current.id()
    }

    /// Ids of the KEKs that only open.
    pub fn previous_ids(&self) -> Vec<KekId> {
        self.previous.iter().map(Kek::id).collect()
    }

    /// Seals `plaintext` for `record` under a fresh DEK wrapped by the current KEK.
    pub fn seal(&self, record: &str, plaintext: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
        let mut dek = Zeroizing::new([0u8; DEK_LEN]);
        aws_lc_rs::rand::fill(dek.as_mut()).map_err(|_| EnvelopeError::Rng)?;
        let value_key = aead_key(dek.as_ref())?;
        let mut body = Zeroizing::new(plaintext.to_vec());
        let sealed_value = seal_field(&value_key, &value_aad(record), &mut body)?;
        let wrapped = self.wrap(record, &dek)?;
        Ok(render(self.current.id(), &wrapped, &sealed_value))
    }

    /// Opens a value sealed for `record` under any configured KEK.
    pub fn open(&self, record: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
        let parts = Parts::parse(sealed)?;
        let dek = self.unwrap_dek(record, &parts)?;
        let mut body = Zeroizing::new(decode(parts.sealed_value, "sealed value is not base64")?);
        let plaintext = open_field(&aead_key(dek.as_ref())?, &value_aad(record), &mut body)?;
        Ok(Zeroizing::new(plaintext.to_vec()))
    }

    /// The same sealed value with its DEK wrapped under the current KEK, or `None` when it
    /// already is. Either way the value is first checked to open, so a wrong KEK fails here.
    pub fn rewrap(&self, record: &str, sealed: &[u8]) -> Result<Option<Vec<u8>>, EnvelopeError> {
        self.open(record, sealed)?;
        let parts = Parts::parse(sealed)?;
        if parts.kek == self.current.id() {
            return Ok(None);
        }
        let dek = self.unwrap_dek(record, &parts)?;
        let wrapped = self.wrap(record, &dek)?;
        let sealed_value = decode(parts.sealed_value, "sealed value is not base64")?;
        Ok(Some(render(self.current.id(), &wrapped, &sealed_value)))
    }

    fn wrap(&self, record: &str, dek: &[u8; DEK_LEN]) -> Result<Vec<u8>, EnvelopeError> {
        let mut body = Zeroizing::new(dek.to_vec());
        seal_field(
            self.current.aead(),
            &dek_aad(self.current.id(), record),
            &mut body,
        )
    }

    fn unwrap_dek(
        &self,
        record: &str,
        parts: &Parts<'_>,
    ) -> Result<Zeroizing<[u8; DEK_LEN]>, EnvelopeError> {
        let kek = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id() == parts.kek)
            .ok_or(EnvelopeError::UnknownKek(parts.kek))?;
        let mut wrapped =
            Zeroizing::new(decode(parts.wrapped_dek, "wrapped data key is not base64")?);
        if wrapped.len() != WRAPPED_DEK_LEN {
            return Err(EnvelopeError::Malformed(
                "wrapped data key has the wrong length",
            ));
        }
        let dek = open_field(kek.aead(), &dek_aad(parts.kek, record), &mut wrapped)?;
        let mut out = Zeroizing::new([0u8; DEK_LEN]);
        out.copy_from_slice(dek.get(..DEK_LEN).ok_or(EnvelopeError::Tampered)?);
        Ok(out)
    }
}

/// The fields of a version 1 sealed value, still encoded.
struct Parts<'a> {
    kek: KekId,
    wrapped_dek: &'a str,
    sealed_value: &'a str,
}

impl<'a> Parts<'a> {
    fn parse(sealed: &'a [u8]) -> Result<Self, EnvelopeError> {
        // The store caps values at MAX_VALUE_BYTES; check again so a caller passing other
        // bytes cannot make us decode more.
        if sealed.len() > crate::MAX_VALUE_BYTES {
            return Err(EnvelopeError::Malformed(
                "longer than the store's value limit",
            ));
        }
        if !is_sealed(sealed) {
            return Err(EnvelopeError::NotSealed);
        }
        let text =
            std::str::from_utf8(sealed).map_err(|_| EnvelopeError::Malformed("not ASCII"))?;
        let rest = text.strip_prefix(V1).ok_or(EnvelopeError::UnknownVersion)?;
        let mut fields = rest.split(':');
        let (Some(kek), Some(wrapped_dek), Some(sealed_value), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(EnvelopeError::Malformed(
                "expected three fields after the version",
            ));
        };
        let kek = KekId::parse(kek).ok_or(EnvelopeError::Malformed("bad KEK id"))?;
        Ok(Self {
            kek,
            wrapped_dek,
            sealed_value,
        })
    }
}

fn render(kek: KekId, wrapped_dek: &[u8], sealed_value: &[u8]) -> Vec<u8> {
    format!(
        "{V1}{kek}:{}:{}",
        STANDARD_NO_PAD.encode(wrapped_dek),
        STANDARD_NO_PAD.encode(sealed_value)
    )
    .into_bytes()
}

fn value_aad(record: &str) -> String {
    format!("{V1}value:{record}")
}

fn dek_aad(kek: KekId, record: &str) -> String {
    format!("{V1}dek:{kek}:{record}")
}

fn aead_key(bytes: &[u8]) -> Result<RandomizedNonceKey, EnvelopeError> {
    RandomizedNonceKey::new(&AES_256_GCM, bytes).map_err(|_| EnvelopeError::Crypto)
}

/// `nonce || ciphertext || tag` of `body` (encrypted in place; `body` holds ciphertext after).
fn seal_field(
    key: &RandomizedNonceKey,
    aad: &str,
    body: &mut Zeroizing<Vec<u8>>,
) -> Result<Vec<u8>, EnvelopeError> {
    let (nonce, tag) = key
        .seal_in_place_separate_tag(Aad::from(aad.as_bytes()), body.as_mut_slice())
        .map_err(|_| EnvelopeError::Crypto)?;
    let mut out = Vec::with_capacity(NONCE_LEN + body.len() + TAG_LEN);
    out.extend_from_slice(nonce.as_ref());
    out.extend_from_slice(body);
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// Opens `nonce || ciphertext || tag` in place; the plaintext borrows from `field`.
fn open_field<'f>(
    key: &RandomizedNonceKey,
    aad: &str,
    field: &'f mut [u8],
) -> Result<&'f mut [u8], EnvelopeError> {
    if field.len() < NONCE_LEN + TAG_LEN {
        return Err(EnvelopeError::Malformed("field shorter than nonce and tag"));
    }
    let (nonce, body) = field.split_at_mut(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce)
        .map_err(|_| EnvelopeError::Malformed("bad nonce"))?;
    key.open_in_place(nonce, Aad::from(aad.as_bytes()), body)
        .map_err(|_| EnvelopeError::Tampered)
}

fn decode(field: &str, refusal: &'static str) -> Result<Vec<u8>, EnvelopeError> {
    STANDARD_NO_PAD
        .decode(field)
        .map_err(|_| EnvelopeError::Malformed(refusal))
}

#[cfg(test)]
mod tests;
