//! The key ring as bytes, for the server to store and reload.
//!
//! Format (JSON, version 1):
//! `{"v":1,"keys":[{"id":"0a1b2c3d","created_at":…,"retired_at":…,"not_after":…,"key":"<base64>"}]}`.
//! The ring's [`RingConfig`] is not stored: it comes from the binary's flags
//! on every start. Key bytes are wiped from our buffers on drop; serde_json's
//! internal scratch space is out of our reach, so wiping is best effort.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::keyring::{Entry, KEY_LEN, KeyMaterial, MAX_KEYS};
use crate::{Error, KeyId, KeyRing, RingConfig};

const PERSIST_VERSION: u8 = 1;
/// Longest persisted ring accepted. A key entry is about 150 bytes and a
/// ring holds at most `MAX_KEYS` (16), so 16 KiB is generous while stopping a
/// corrupt or hostile store row from costing unbounded parsing.
const MAX_PERSISTED_LEN: usize = 16 * 1024;

/// A serialized key ring. Holds key material: `Debug` shows only its length;
/// wiped on drop.
#[derive(Clone)]
pub struct PersistedRing(Zeroizing<Vec<u8>>);

impl PersistedRing {
    /// The bytes to store.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for PersistedRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PersistedRing(<{} bytes>)", self.0.len())
    }
}

impl KeyRing {
    /// Serializes every key, with its id and lifecycle times.
    pub fn to_persisted(&self) -> Result<PersistedRing, Error> {
        let keys = self
            .entries()
            .iter()
            .map(|entry| PersistedKey {
                id: entry.id.to_string(),
                created_at: entry.created_at,
                retired_at: entry.retired_at,
                not_after: entry.not_after,
                key: STANDARD.encode(entry.material.bytes.as_ref()),
            })
            .collect();
        let doc = PersistedDoc {
            v: PERSIST_VERSION,
            keys,
        };
        let mut out = Zeroizing::new(Vec::with_capacity(MAX_PERSISTED_LEN));
        serde_json::to_writer(&mut *out, &doc).map_err(Error::PersistedJson)?;
        Ok(PersistedRing(out))
    }

    /// Rebuilds a ring from [`KeyRing::to_persisted`] bytes, under the
    /// current `config`. Refuses oversized input, unknown versions, bad key
    /// lengths, duplicate ids and inconsistent times.
    pub fn from_persisted(bytes: &[u8], config: RingConfig) -> Result<Self, Error> {
        if bytes.len() > MAX_PERSISTED_LEN {
            return Err(Error::Persisted("longer than the size limit"));
        }
        let doc: PersistedDoc = serde_json::from_slice(bytes).map_err(Error::PersistedJson)?;
        if doc.v != PERSIST_VERSION {
            return Err(Error::Persisted("unknown version"));
        }
        if doc.keys.is_empty() || doc.keys.len() > MAX_KEYS {
            return Err(Error::Persisted("key count out of range"));
        }
        let mut entries: Vec<Entry> = Vec::with_capacity(doc.keys.len());
        for key in &doc.keys {
            let entry = key.to_entry()?;
            if entries.iter().any(|seen| seen.id == entry.id) {
                return Err(Error::Persisted("duplicate key id"));
            }
            entries.push(entry);
        }
        KeyRing::from_entries(config, entries)
    }
}

#[derive(Serialize, Deserialize)]
struct PersistedDoc {
    v: u8,
    keys: Vec<PersistedKey>,
}

#[derive(Serialize, Deserialize)]
struct PersistedKey {
    id: String,
    created_at: i64,
    retired_at: Option<i64>,
    not_after: Option<i64>,
    key: String,
}

impl PersistedKey {
    fn to_entry(&self) -> Result<Entry, Error> {
        let id = parse_key_id(&self.id).ok_or(Error::Persisted("bad key id"))?;
        let times_ok = match (self.retired_at, self.not_after) {
            (None, None) => true,
            (Some(retired), Some(not_after)) => self.created_at <= retired && retired <= not_after,
            _ => false,
        };
        if !times_ok {
            return Err(Error::Persisted("inconsistent key times"));
        }
        let decoded = Zeroizing::new(
            STANDARD
                .decode(&self.key)
                .map_err(|_| Error::Persisted("key is not base64"))?,
        );
        let bytes: [u8; KEY_LEN] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| Error::Persisted("key is not 32 bytes"))?;
        Ok(Entry {
            id,
            created_at: self.created_at,
            retired_at: self.retired_at,
            not_after: self.not_after,
            material: Arc::new(KeyMaterial::new(Zeroizing::new(bytes))?),
        })
    }
}

impl Drop for PersistedKey {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

/// Eight lowercase or uppercase hex digits.
fn parse_key_id(text: &str) -> Option<KeyId> {
    if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(text, 16)
        .ok()
        .map(|n| KeyId(n.to_be_bytes()))
}

#[cfg(test)]
#[path = "persist_tests.rs"]
mod tests;
