//! The repeat-token index: the fast path for the common request, a pod presenting again the
//! byte-identical token it presented before.
//!
//! Maps a seeded hash of the raw token to that token (the same `Arc<str>` its cache entry
//! holds), the cache key and the token's `exp`/`nbf`, so a repeated token skips base64 + JSON
//! claim parsing and the token copy. A hash hit is trusted only after a full byte comparison
//! with the stored token, so a token whose hash collides (another pod's) never borrows that
//! record's key or claims: it takes the slow path. Bounded by the cache size; a record goes
//! when its entry is evicted or its token replaced, and a stale one when it is next found.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;

use foldhash::fast::RandomState;
use parking_lot::RwLock;
use podid_token::UnverifiedClaims;

/// The reference validator's `exp`/`nbf` rules (`jwt.NewValidator()` defaults: no leeway, `iat`
/// unchecked): the reason a token is refused at `now` (unix seconds), or `None`.
pub(crate) fn claims_failure(
    now: i64,
    expires_at: i64,
    not_before: Option<i64>,
) -> Option<&'static str> {
    if now >= expires_at {
        Some("token is expired")
    } else if not_before.is_some_and(|nbf| now < nbf) {
        Some("token is not valid yet")
    } else {
        None
    }
}

/// Token hash → the record of the token served under that hash.
pub(crate) struct RepeatIndex {
    records: RwLock<HashMap<u64, Record, RandomState>>,
    /// Seeded per process: which tokens collide cannot be known ahead.
    hasher: RandomState,
    capacity: usize,
}

struct Record {
    token: Arc<str>,
    key: Arc<str>,
    expires_at: i64,
    not_before: Option<i64>,
}

impl std::fmt::Debug for RepeatIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Records hold tokens: only their number is printed.
        f.debug_struct("RepeatIndex")
            .field("records", &self.records.read().len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl RepeatIndex {
    /// At most `capacity` records (the cache's size: one current token per cached pod).
    pub(crate) fn new(capacity: u64) -> Self {
        Self {
            records: RwLock::new(HashMap::with_hasher(RandomState::default())),
            hasher: RandomState::default(),
            capacity: usize::try_from(capacity).unwrap_or(usize::MAX).max(1),
        }
    }

    pub(crate) fn hash(&self, token: &[u8]) -> u64 {
        self.hasher.hash_one(token)
    }

    /// The cache key for `token` (hashing to `hash`) when it was recorded byte for byte and its
    /// `exp`/`nbf` pass at `now`; `None` sends the request down the slow path, which then
    /// answers exactly as it would have anyway.
    pub(crate) fn lookup(&self, hash: u64, token: &[u8], now: i64) -> Option<Arc<str>> {
        let records = self.records.read();
        let record = records.get(&hash)?;
        // The full comparison is what makes a hash collision harmless.
        if record.token.as_bytes() != token {
            return None;
        }
        if claims_failure(now, record.expires_at, record.not_before).is_some() {
            return None;
        }
        Some(Arc::clone(&record.key))
    }

    /// Remember that `token` (with its peeked `claims`) is served from the entry under `key`.
    pub(crate) fn record(
        &self,
        hash: u64,
        token: &Arc<str>,
        key: &Arc<str>,
        claims: &UnverifiedClaims,
    ) {
        let mut records = self.records.write();
        if records.len() >= self.capacity && !records.contains_key(&hash) {
            // Full of records whose removal was missed (replaced by a fetch for another token):
            // drop any one; the worst outcome is one slow-path request.
            if let Some(victim) = records.keys().next().copied() {
                records.remove(&victim);
            }
        }
        records.insert(
            hash,
            Record {
                token: Arc::clone(token),
                key: Arc::clone(key),
                expires_at: claims.expires_at,
                not_before: claims.not_before,
            },
        );
    }

    /// Drop the record of `token`, if it is the one stored under its hash.
    pub(crate) fn forget(&self, token: &str) {
        let hash = self.hash(token.as_bytes());
        let mut records = self.records.write();
        if records.get(&hash).is_some_and(|r| *r.token == *token) {
            records.remove(&hash);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.records.read().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64, nbf: Option<i64>) -> UnverifiedClaims {
        UnverifiedClaims {
            namespace: Arc::from("ns"),
            service_account: Arc::from("sa"),
            pod: None,
            issued_at: None,
            expires_at: exp,
            not_before: nbf,
        }
    }

    #[test]
    fn a_colliding_token_never_gets_another_pods_key() {
        let index = RepeatIndex::new(8);
        let pod_a: Arc<str> = Arc::from("token-of-pod-a");
        index.record(42, &pod_a, &Arc::from("uid-a"), &claims(1_000, None));
        // Force the collision: pod B's token looked up under pod A's hash.
        assert_eq!(index.lookup(42, b"token-of-pod-b", 500), None);
        // A prefix or extension of A's token is not A's token either.
        assert_eq!(index.lookup(42, b"token-of-pod-", 500), None);
        assert_eq!(index.lookup(42, b"token-of-pod-aa", 500), None);
        assert_eq!(
            index.lookup(42, b"token-of-pod-a", 500).as_deref(),
            Some("uid-a")
        );
    }

    #[test]
    fn an_expired_or_not_yet_valid_token_is_not_served() {
        let index = RepeatIndex::new(8);
        let token: Arc<str> = Arc::from("t");
        let hash = index.hash(b"t");
        index.record(hash, &token, &Arc::from("k"), &claims(1_000, Some(100)));
        assert_eq!(index.lookup(hash, b"t", 99), None, "before nbf");
        assert!(index.lookup(hash, b"t", 100).is_some(), "at nbf");
        assert!(index.lookup(hash, b"t", 999).is_some(), "last valid second");
        assert_eq!(
            index.lookup(hash, b"t", 1_000),
            None,
            "at exp, like the slow path"
        );
        assert_eq!(index.lookup(hash, b"t", 5_000), None);
    }

    #[test]
    fn rules_match_the_reference_texts() {
        assert_eq!(claims_failure(10, 10, None), Some("token is expired"));
        assert_eq!(
            claims_failure(5, 10, Some(6)),
            Some("token is not valid yet")
        );
        assert_eq!(claims_failure(5, 10, Some(5)), None);
    }

    #[test]
    fn stays_within_capacity_and_forgets_only_its_own_token() {
        let index = RepeatIndex::new(2);
        for i in 0..10 {
            let token: Arc<str> = Arc::from(format!("t{i}"));
            index.record(
                index.hash(token.as_bytes()),
                &token,
                &token,
                &claims(1_000, None),
            );
            assert!(index.len() <= 2);
        }
        let token: Arc<str> = Arc::from("t9");
        let hash = index.hash(b"t9");
        assert!(index.lookup(hash, b"t9", 0).is_some());
        index.forget("t8-other");
        assert!(index.lookup(hash, b"t9", 0).is_some());
        index.forget(&token);
        assert_eq!(index.lookup(hash, b"t9", 0), None);
    }
}
