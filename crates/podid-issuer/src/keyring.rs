//! The AES-256-GCM sealing keys: which one seals, which ones still open, and
//! when a key is added or dropped.
//!
//! Each key has a random 4-byte id (carried in every token), its creation
//! time and, once a newer key takes over, its retirement time and
//! `not_after = retired_at + max credential lifetime + clock skew`. The newest
//! unretired key seals; every key before its `not_after` opens. A key is
//! dropped only when every credential it can have sealed has expired, which
//! holds because [`crate::seal`] refuses lifetimes above the maximum.
//!
//! Nonces are 96 random bits per seal (aws-lc-rs `RandomizedNonceKey`). NIST
//! SP 800-38D §8.3 allows 2^32 random-nonce seals per key; daily rotation
//! keeps a replica orders of magnitude below that.

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::aead::{AES_256_GCM, RandomizedNonceKey};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::Error;

/// Bytes in an AES-256 key.
pub(crate) const KEY_LEN: usize = 32;
/// Most keys a ring may hold, so a persisted ring stays small and a lookup
/// stays a short scan. Config validation guarantees rotation never needs more.
pub(crate) const MAX_KEYS: usize = 16;
/// Attempts at drawing a key id not already in the ring (2^32 ids, at most
/// [`MAX_KEYS`] taken: a second attempt is already a one-in-2^28 event).
const KEY_ID_ATTEMPTS: usize = 8;

/// A sealing key's identifier, written in clear into every token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub [u8; 4]);

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Rotation and lifetime policy for a [`KeyRing`]; built by the binary from
/// its flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingConfig {
    /// Age at which the sealing key is replaced. Default 24 h.
    pub rotation_period: Duration,
    /// Longest credential lifetime the ring will seal. Default 12 h, the
    /// largest `MaxSessionDuration` IAM allows.
    pub max_credential_lifetime: Duration,
    /// Slack added to a retired key's window for clocks that disagree
    /// between replicas. Default 5 min (SigV4's own skew allowance).
    pub clock_skew: Duration,
}

impl Default for RingConfig {
    fn default() -> Self {
        Self {
            rotation_period: Duration::from_secs(24 * 3600),
            max_credential_lifetime: Duration::from_secs(12 * 3600),
            clock_skew: Duration::from_secs(300),
        }
    }
}

/// What [`KeyRing::rotate`] changed; persist the ring when [`Rotation::changed`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rotation {
    /// The new sealing key, if one was added.
    pub added: Option<KeyId>,
    /// Keys removed because everything they sealed has expired.
    pub dropped: Vec<KeyId>,
}

impl Rotation {
    /// Whether the ring differs from before and should be persisted.
    pub fn changed(&self) -> bool {
        self.added.is_some() || !self.dropped.is_empty()
    }
}

/// The set of sealing keys. Cheap to clone (key material is shared), so a
/// rotation can build a new ring while readers keep using the old one.
#[derive(Debug, Clone)]
pub struct KeyRing {
    config: RingConfig,
    limits: Limits,
    /// Oldest first; the last unretired entry seals.
    entries: Vec<Entry>,
}

impl KeyRing {
    /// A ring holding one fresh key, active from `now`.
    pub fn generate(config: RingConfig, now: OffsetDateTime) -> Result<Self, Error> {
        let mut ring = Self::from_entries(config, Vec::new())?;
        ring.add_key(now.unix_timestamp())?;
        Ok(ring)
    }

    /// Drops keys whose window has closed, then adds a key when the sealing
    /// key is at least `rotation_period` old (or there is none), retiring the
    /// previous one. Never drops the sealing key.
    pub fn rotate(&mut self, now: OffsetDateTime) -> Result<Rotation, Error> {
        let now = now.unix_timestamp();
        let mut rotation = Rotation::default();
        self.entries.retain(|entry| match entry.not_after {
            Some(not_after) if not_after <= now => {
                rotation.dropped.push(entry.id);
                false
            }
            _ => true,
        });
        let due = self
            .active()
            .is_none_or(|active| now.saturating_sub(active.created_at) >= self.limits.rotation);
        if due {
            rotation.added = Some(self.add_key(now)?);
        }
        Ok(rotation)
    }

    /// The policy this ring was built with.
    pub fn config(&self) -> &RingConfig {
        &self.config
    }

    /// The id of the key that seals new tokens.
    pub fn active_key_id(&self) -> Option<KeyId> {
        self.active().map(|entry| entry.id)
    }

    /// Every key id in the ring, oldest first.
    pub fn key_ids(&self) -> Vec<KeyId> {
        self.entries.iter().map(|entry| entry.id).collect()
    }

    /// The sealing key, for [`crate::seal`].
    pub(crate) fn sealing_key(&self) -> Result<(KeyId, &RandomizedNonceKey), Error> {
        self.active()
            .map(|entry| (entry.id, &entry.material.aead))
            .ok_or(Error::NoActiveKey)
    }

    /// The key with this id, if it is still inside its verification window.
    pub(crate) fn opening_key(&self, id: KeyId, now: i64) -> Option<&RandomizedNonceKey> {
        self.entries
            .iter()
            .find(|entry| entry.id == id)
            .filter(|entry| entry.not_after.is_none_or(|not_after| now < not_after))
            .map(|entry| &entry.material.aead)
    }

    /// Longest lifetime [`crate::seal`] accepts, in seconds.
    pub(crate) fn max_lifetime_secs(&self) -> i64 {
        self.limits.max_lifetime
    }

    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// A ring from already-checked entries (persistence), sorted oldest first.
    pub(crate) fn from_entries(config: RingConfig, mut entries: Vec<Entry>) -> Result<Self, Error> {
        let limits = Limits::new(&config)?;
        entries.sort_by_key(|entry| entry.created_at);
        Ok(Self {
            config,
            limits,
            entries,
        })
    }

    fn active(&self) -> Option<&Entry> {
        self.entries
            .iter()
            .rev()
            .find(|entry| entry.retired_at.is_none())
    }

    fn add_key(&mut self, now: i64) -> Result<KeyId, Error> {
        // Only reachable with a ring persisted under a shorter rotation
        // period; the current sealing key keeps working until keys expire.
        if self.entries.len() >= MAX_KEYS {
            return Err(Error::Config(
                "key ring is full; retired keys have not expired yet",
            ));
        }
        let id = self.fresh_id()?;
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        aws_lc_rs::rand::fill(bytes.as_mut()).map_err(|_| Error::Rng)?;
        let material = KeyMaterial::new(bytes)?;
        let not_after = now.saturating_add(self.limits.tail);
        for entry in self
            .entries
            .iter_mut()
            .filter(|entry| entry.retired_at.is_none())
        {
            entry.retired_at = Some(now);
            entry.not_after = Some(not_after);
        }
        self.entries.push(Entry {
            id,
            created_at: now,
            retired_at: None,
            not_after: None,
            material: Arc::new(material),
        });
        Ok(id)
    }

    fn fresh_id(&self) -> Result<KeyId, Error> {
        for _ in 0..KEY_ID_ATTEMPTS {
            let mut id = [0u8; 4];
            aws_lc_rs::rand::fill(&mut id).map_err(|_| Error::Rng)?;
            if self.entries.iter().all(|entry| entry.id.0 != id) {
                return Ok(KeyId(id));
            }
        }
        Err(Error::Rng)
    }
}

/// One key and its lifecycle times (unix seconds).
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) id: KeyId,
    pub(crate) created_at: i64,
    pub(crate) retired_at: Option<i64>,
    pub(crate) not_after: Option<i64>,
    pub(crate) material: Arc<KeyMaterial>,
}

/// Raw key bytes (kept for persistence, wiped on drop) and the expanded
/// AES-GCM key. `Debug` shows neither.
pub(crate) struct KeyMaterial {
    pub(crate) bytes: Zeroizing<[u8; KEY_LEN]>,
    aead: RandomizedNonceKey,
}

impl KeyMaterial {
    pub(crate) fn new(bytes: Zeroizing<[u8; KEY_LEN]>) -> Result<Self, Error> {
        let aead =
            RandomizedNonceKey::new(&AES_256_GCM, bytes.as_ref()).map_err(|_| Error::Crypto)?;
        Ok(Self { bytes, aead })
    }
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyMaterial(<redacted>)")
    }
}

/// [`RingConfig`] checked and converted to whole seconds.
#[derive(Debug, Clone, Copy)]
struct Limits {
    rotation: i64,
    max_lifetime: i64,
    /// How long a retired key keeps opening: max lifetime + skew.
    tail: i64,
}

impl Limits {
    fn new(config: &RingConfig) -> Result<Self, Error> {
        let secs = |d: Duration| {
            i64::try_from(d.as_secs()).map_err(|_| Error::Config("duration too large"))
        };
        let rotation = secs(config.rotation_period)?;
        let max_lifetime = secs(config.max_credential_lifetime)?;
        let tail = max_lifetime
            .checked_add(secs(config.clock_skew)?)
            .ok_or(Error::Config("duration too large"))?;
        if rotation < 1 || max_lifetime < 1 {
            return Err(Error::Config(
                "rotation period and max lifetime must be at least 1s",
            ));
        }
        // Keys alive at once: the active one plus those retired within the
        // last `tail` seconds, at most one per period.
        let live = (tail / rotation).saturating_add(2);
        if usize::try_from(live).map_or(true, |live| live > MAX_KEYS) {
            return Err(Error::Config(
                "rotation period too short for the credential lifetime",
            ));
        }
        Ok(Self {
            rotation,
            max_lifetime,
            tail,
        })
    }
}

#[cfg(test)]
#[path = "keyring_tests.rs"]
mod tests;
