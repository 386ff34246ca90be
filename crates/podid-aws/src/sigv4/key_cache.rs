//! A bounded cache of derived SigV4 signing keys.
//!
//! Owns: the `kSigning` derivation (four HMACs from the secret) and a small map that keeps its
//! result per (access key id, secret, scope date, region, service), so a busy caller's requests
//! cost one HMAC for the signature instead of five. Entries hold key material: they are
//! zeroized when evicted or dropped, and the map is keyed by a SHA-256 of the secret, never the
//! secret itself, so a rotated secret simply misses.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};

use aws_lc_rs::{digest, hmac};
use zeroize::{Zeroize, Zeroizing};

/// Entries kept by [`SigningKeyCache::default`]. One entry per active access key, region and
/// service per UTC day; a fleet of a few thousand nodes fits. When full, the cache is emptied
/// (zeroizing every key) rather than tracking recency: a miss costs only four HMACs.
pub const DEFAULT_SIGNING_KEY_CACHE_ENTRIES: usize = 4096;

/// Derived signing keys, shared by the threads verifying requests.
pub struct SigningKeyCache {
    capacity: usize,
    entries: Mutex<HashMap<CacheKey, SigningKey>>,
}

#[derive(Hash, PartialEq, Eq)]
struct CacheKey {
    access_key_id: String,
    secret_sha256: [u8; 32],
    date: String,
    region: String,
    service: String,
}

impl Drop for CacheKey {
    fn drop(&mut self) {
        // A digest of the secret is not the secret, but there is no reason to leave it behind.
        self.secret_sha256.zeroize();
    }
}

/// `kSigning`, zeroized on drop.
#[derive(Clone)]
pub(crate) struct SigningKey(Zeroizing<[u8; 32]>);

impl SigningKey {
    /// The SigV4 key derivation: HMAC chain over date, region, service and `aws4_request`.
    pub(crate) fn derive(secret: &str, date: &str, region: &str, service: &str) -> Self {
        let mut seed = Zeroizing::new(Vec::with_capacity(4 + secret.len()));
        seed.extend_from_slice(b"AWS4");
        seed.extend_from_slice(secret.as_bytes());
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(tag(&seed, date.as_bytes()).as_ref());
        for part in [region.as_bytes(), service.as_bytes(), b"aws4_request"] {
            let next = tag(key.as_ref(), part);
            key.copy_from_slice(next.as_ref());
        }
        Self(key)
    }

    /// Lowercase hex of HMAC-SHA256(kSigning, `string_to_sign`): the request signature.
    pub(crate) fn sign(&self, string_to_sign: &str) -> String {
        hex::encode(tag(self.0.as_ref(), string_to_sign.as_bytes()).as_ref())
    }
}

fn tag(key: &[u8], message: &[u8]) -> hmac::Tag {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), message)
}

impl SigningKeyCache {
    /// A cache holding at most `capacity` keys (0 disables caching).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The signing key for this scope, derived on a miss.
    pub(crate) fn get(
        &self,
        access_key_id: &str,
        secret: &str,
        date: &str,
        region: &str,
        service: &str,
    ) -> SigningKey {
        if self.capacity == 0 {
            return SigningKey::derive(secret, date, region, service);
        }
        let mut secret_sha256 = [0u8; 32];
        secret_sha256.copy_from_slice(digest::digest(&digest::SHA256, secret.as_bytes()).as_ref());
        let key = CacheKey {
            access_key_id: access_key_id.to_owned(),
            secret_sha256,
            date: date.to_owned(),
            region: region.to_owned(),
            service: service.to_owned(),
        };
        if let Some(found) = self.lock().get(&key) {
            return found.clone();
        }
        // Derived outside the lock: other threads' hits need not wait for four HMACs.
        let derived = SigningKey::derive(secret, date, region, service);
        let mut entries = self.lock();
        if entries.len() >= self.capacity {
            entries.clear();
        }
        entries.insert(key, derived.clone());
        derived
    }

    /// Keys currently cached.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no key is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CacheKey, SigningKey>> {
        // The map stays consistent even if a holder panicked (get/insert/clear only).
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for SigningKeyCache {
    fn default() -> Self {
        Self::new(DEFAULT_SIGNING_KEY_CACHE_ENTRIES)
    }
}

impl fmt::Debug for SigningKeyCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeyCache")
            .field("capacity", &self.capacity)
            .field("entries", &self.len())
            .finish()
    }
}
