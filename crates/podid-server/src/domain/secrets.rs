//! Secrets at rest: which stored records are secret, sealing and opening them with the KEKs
//! ([`podid_store::envelope`]), and the start-up pass that seals plaintext rows of older
//! databases and re-wraps rows sealed under a previous KEK.
//!
//! Secret records: every access key (`iam/key/<id>`: users', nodes' and the administrator's
//! secret access keys) and the session-sealing key ring (`issuer/keyring`). Each is sealed whole,
//! with its store key as the associated data. Everything else (clusters, associations, roles,
//! users, policies, the audit trail) is configuration, not secret, and stays readable JSON.
//! Records are opened when they are loaded into the in-memory indexes, never per request.

use std::sync::Arc;

use podid_store::envelope::{EnvelopeError, KekSet, is_sealed};
use podid_store::{Compare, KeyValue, MAX_TXN_OPS, Store, Txn, TxnOutcome};
use zeroize::Zeroizing;

use super::iam::records::KEY_PREFIX;
use super::keyring::KEYRING_KEY;

/// Attempts at the start-up pass when another writer changes a row under it.
const PREPARE_ATTEMPTS: usize = 3;

/// Where the secret records live: every key starting with one of these is stored sealed.
pub(crate) const SECRET_PREFIXES: [&str; 2] = [KEY_PREFIX, KEYRING_KEY];

/// The configured KEKs, shared by every reader and writer of secret records.
#[derive(Debug, Clone)]
pub(crate) struct Secrets(Arc<KekSet>);

impl Secrets {
    pub(crate) fn new(keks: Arc<KekSet>) -> Self {
        Self(keks)
    }

    /// Sealing under a random KEK of its own, for tests.
    #[cfg(test)]
    pub(crate) fn ephemeral() -> Self {
        let kek =
            podid_store::envelope::Kek::generate().expect("test: the system random source works");
        Self(Arc::new(
            KekSet::new(kek, Vec::new()).expect("test: one key"),
        ))
    }

    /// The stored form of the secret record `key`.
    pub(crate) fn seal(&self, key: &str, plaintext: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
        self.0.seal(key, plaintext)
    }

    /// The plaintext of a stored secret record. A plaintext row is refused: the start-up pass
    /// sealed every one, so a row in the clear now was not written by this podid.
    pub(crate) fn open(&self, kv: &KeyValue) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
        self.0.open(&kv.key, &kv.value)
    }
}

/// Why the start-up pass refused to go on: the server must not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PrepareError {
    #[error("store: {0}")]
    Store(#[from] podid_store::Error),
    #[error("stored secret {key} cannot be opened: {source}; {hint}")]
    Open {
        key: String,
        #[source]
        source: EnvelopeError,
        hint: String,
    },
    #[error("sealing {key}: {source}")]
    Seal {
        key: String,
        #[source]
        source: EnvelopeError,
    },
    #[error("secret records kept changing during the start-up encryption pass")]
    Contention,
}

/// What the start-up pass rewrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Prepared {
    /// Plaintext rows (from before encryption at rest) now sealed.
    pub(crate) sealed: usize,
    /// Rows sealed under a previous KEK whose data keys are now wrapped by the current one.
    pub(crate) rewrapped: usize,
    /// Rows left as they were (already under the current KEK, and checked to open).
    pub(crate) unchanged: usize,
}

/// Checks every secret record opens with the configured KEKs, seals plaintext ones and re-wraps
/// those under a previous KEK. Runs before any index loads, so nothing is served from a record
/// this podid could not open. Rewrites are compare-and-swap on each row's revision, in as few
/// transactions as the store's op cap allows (one, below 128 secret rows); a batch that loses a
/// race is redone from a fresh read. After any rewrite the store purges the overwritten bytes
/// (old plaintext, DEKs wrapped by a retired KEK) from its files.
pub(crate) async fn prepare(
    store: &dyn Store,
    secrets: &Secrets,
) -> Result<Prepared, PrepareError> {
    for _ in 0..PREPARE_ATTEMPTS {
        let mut rows = Vec::new();
        for prefix in SECRET_PREFIXES {
            rows.extend(store.range(prefix).await?.0);
        }
        let (rewrites, prepared) = plan(&rows, secrets)?;
        let rewrote = !rewrites.is_empty();
        if commit(store, rewrites).await? {
            if rewrote {
                store.purge_overwritten().await?;
            }
            return Ok(prepared);
        }
    }
    Err(PrepareError::Contention)
}

type Rewrite = (String, u64, Vec<u8>);

fn plan(rows: &[KeyValue], secrets: &Secrets) -> Result<(Vec<Rewrite>, Prepared), PrepareError> {
    let keks = &secrets.0;
    let mut prepared = Prepared::default();
    let mut rewrites = Vec::new();
    for kv in rows {
        let new_value = if is_sealed(&kv.value) {
            let rewrapped =
                keks.rewrap(&kv.key, &kv.value)
                    .map_err(|source| PrepareError::Open {
                        key: kv.key.clone(),
                        hint: hint(keks, &source),
                        source,
                    })?;
            if rewrapped.is_some() {
                prepared.rewrapped += 1;
            }
            rewrapped
        } else {
            prepared.sealed += 1;
            let sealed = keks
                .seal(&kv.key, &kv.value)
                .map_err(|source| PrepareError::Seal {
                    key: kv.key.clone(),
                    source,
                })?;
            Some(sealed)
        };
        match new_value {
            Some(value) => rewrites.push((kv.key.clone(), kv.mod_revision, value)),
            None => prepared.unchanged += 1,
        }
    }
    Ok((rewrites, prepared))
}

/// What the operator can do about a record that does not open.
fn hint(keks: &KekSet, error: &EnvelopeError) -> String {
    let previous: Vec<String> = keks
        .previous_ids()
        .iter()
        .map(ToString::to_string)
        .collect();
    let configured = if previous.is_empty() {
        format!("the configured KEK is {}", keks.current_id())
    } else {
        format!(
            "the configured KEKs are {} (current) and {} (previous)",
            keks.current_id(),
            previous.join(", ")
        )
    };
    match error {
        EnvelopeError::UnknownKek(_) => format!(
            "{configured}: start with the KEK that sealed it (--kek-file or PODID_KEK), or name it \
             with --previous-kek-file to rotate"
        ),
        EnvelopeError::UnknownVersion => {
            format!("{configured}; it was written by a newer podid than this one")
        }
        _ => format!("{configured}; the database was altered, or the record was moved"),
    }
}

/// Writes the rewrites; `false` when a row changed since it was read.
async fn commit(store: &dyn Store, rewrites: Vec<Rewrite>) -> Result<bool, PrepareError> {
    let mut rewrites = rewrites.into_iter().peekable();
    while rewrites.peek().is_some() {
        let mut txn = Txn::new();
        for (key, revision, value) in rewrites.by_ref().take(MAX_TXN_OPS) {
            txn = txn
                .when(Compare::ModRevision(key.clone(), revision))
                .put(key, value);
        }
        if let TxnOutcome::Failed { .. } = store.txn(txn).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests;
