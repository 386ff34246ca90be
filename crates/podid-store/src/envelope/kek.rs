//! Key-encryption keys: 32 random bytes, written as one line of standard base64 (the same text in
//! a KEK file and in the `PODID_KEK` environment variable), identified by a fingerprint.

use std::io::{Read as _, Write as _};
use std::path::Path;

use aws_lc_rs::aead::{AES_256_GCM, RandomizedNonceKey};
use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use super::EnvelopeError;

/// Bytes in a KEK (AES-256).
pub const KEK_LEN: usize = 32;
/// Longest KEK file read: the key is 44 characters of base64 plus a newline; more is not ours,
/// and stopping early keeps a mistaken path (a log, a device) from being read whole.
const MAX_KEK_FILE: u64 = 1024;
/// Domain separation for the fingerprint, so a KEK id is never some other hash of the key.
const ID_CONTEXT: &[u8] = b"podid-kek-id:v1";

/// A KEK's identifier, recorded in every value it wraps: the first 8 bytes of
/// SHA-256(`podid-kek-id:v1` || KEK), shown as 16 hex digits. It names the key without
/// revealing it, so the same key always has the same id on every replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KekId([u8; 8]);

impl KekId {
    /// Sixteen hex digits, as written in a sealed value.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        if text.len() != 16 {
            return None;
        }
        let mut id = [0u8; 8];
        for (slot, pair) in id.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
            let pair = std::str::from_utf8(pair).ok()?;
            *slot = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(Self(id))
    }
}

impl std::fmt::Display for KekId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// One KEK, expanded for AES-256-GCM. The raw bytes are wiped once the key is built; `Debug`
/// shows the id only.
pub struct Kek {
    id: KekId,
    aead: RandomizedNonceKey,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kek")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Kek {
    /// A KEK from its 32 bytes.
    pub fn from_bytes(bytes: &[u8; KEK_LEN]) -> Result<Self, EnvelopeError> {
        let mut input = Zeroizing::new(Vec::with_capacity(ID_CONTEXT.len() + KEK_LEN));
        input.extend_from_slice(ID_CONTEXT);
        input.extend_from_slice(bytes);
        let hash = digest(&SHA256, &input);
        let mut id = [0u8; 8];
        id.copy_from_slice(hash.as_ref().get(..8).ok_or(EnvelopeError::Crypto)?);
        let aead =
            RandomizedNonceKey::new(&AES_256_GCM, bytes).map_err(|_| EnvelopeError::Crypto)?;
        Ok(Self {
            id: KekId(id),
            aead,
        })
    }

    /// A new random KEK that lives only in memory (tests, throwaway stores).
    pub fn generate() -> Result<Self, EnvelopeError> {
        let mut bytes = Zeroizing::new([0u8; KEK_LEN]);
        aws_lc_rs::rand::fill(bytes.as_mut()).map_err(|_| EnvelopeError::Rng)?;
        Self::from_bytes(&bytes)
    }

    /// A KEK from its text: standard base64 of exactly 32 bytes, surrounding whitespace ignored.
    pub fn from_base64(text: &str) -> Result<Self, EnvelopeError> {
        let decoded = Zeroizing::new(
            STANDARD
                .decode(text.trim())
                .map_err(|_| EnvelopeError::KekFormat("KEK is not base64"))?,
        );
        let bytes: Zeroizing<[u8; KEK_LEN]> = Zeroizing::new(
            decoded
                .as_slice()
                .try_into()
                .map_err(|_| EnvelopeError::KekFormat("KEK is not 32 bytes (256 bits)"))?,
        );
        Self::from_bytes(&bytes)
    }

    /// The KEK in the file at `path`.
    pub fn load(path: &Path) -> Result<Self, EnvelopeError> {
        let file_err = |source| EnvelopeError::KekFile {
            path: path.display().to_string(),
            source,
        };
        let mut text = Zeroizing::new(String::new());
        std::fs::File::open(path)
            .map_err(file_err)?
            .take(MAX_KEK_FILE)
            .read_to_string(&mut text)
            .map_err(file_err)?;
        Self::from_base64(&text).map_err(|e| match e {
            EnvelopeError::KekFormat(what) => EnvelopeError::KekFile {
                path: path.display().to_string(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, what),
            },
            other => other,
        })
    }

    /// The KEK at `path`, or a new random one written there (mode 0600, never replacing a file).
    /// The bool says whether it is new.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), EnvelopeError> {
        if path.exists() {
            return Ok((Self::load(path)?, false));
        }
        let mut bytes = Zeroizing::new([0u8; KEK_LEN]);
        aws_lc_rs::rand::fill(bytes.as_mut()).map_err(|_| EnvelopeError::Rng)?;
        let text = Zeroizing::new(format!("{}\n", STANDARD.encode(bytes.as_ref())));
        write_new(path, text.as_bytes()).map_err(|source| EnvelopeError::KekFile {
            path: path.display().to_string(),
            source,
        })?;
        Ok((Self::from_bytes(&bytes)?, true))
    }

    /// This KEK's id.
    pub fn id(&self) -> KekId {
        self.id
    }

    pub(super) fn aead(&self) -> &RandomizedNonceKey {
        &self.aead
    }
}

/// Creates `path` (and its directory) with mode 0600 and `contents`, synced.
fn write_new(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}
