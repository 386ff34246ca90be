//! The local issuer's sealing key ring: loaded from the store at start, rotated on a timer,
//! and followed like any index so every replica opens tokens sealed by any other. The stored
//! ring is sealed under the KEK ([`super::secrets`]); it is opened here, at load and on change.

use std::sync::Arc;
use std::time::Duration;

use podid_issuer::{KeyRing, LocalIssuer, RingConfig};
use podid_store::{Compare, Event, KeyValue, Store, Txn, TxnOutcome};
use time::OffsetDateTime;

use super::secrets::Secrets;
use crate::state::Index;

/// Store key of the persisted ring.
pub(crate) const KEYRING_KEY: &str = "issuer/keyring";
/// How often the ring is checked for rotation (rotation itself follows `RingConfig`).
const ROTATION_CHECK: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub(crate) enum IssuingError {
    #[error("store: {0}")]
    Store(#[from] podid_store::Error),
    #[error("key ring: {0}")]
    Ring(#[from] podid_issuer::Error),
    #[error("stored key ring: {0}")]
    Sealed(#[from] podid_store::envelope::EnvelopeError),
}

/// Loads the ring from the store, or creates and stores the first one.
pub(crate) async fn load_issuer(
    store: &dyn Store,
    secrets: &Secrets,
) -> Result<Arc<LocalIssuer>, IssuingError> {
    for _ in 0..3 {
        if let Some(kv) = store.get(KEYRING_KEY).await? {
            let ring = KeyRing::from_persisted(&secrets.open(&kv)?, RingConfig::default())?;
            return Ok(Arc::new(LocalIssuer::new(ring)));
        }
        let ring = KeyRing::generate(RingConfig::default(), OffsetDateTime::now_utc())?;
        let bytes = seal_ring(&ring, secrets)?;
        let txn = Txn::new()
            .when(Compare::Absent(KEYRING_KEY.into()))
            .put(KEYRING_KEY, bytes);
        if let TxnOutcome::Committed { .. } = store.txn(txn).await? {
            return Ok(Arc::new(LocalIssuer::new(ring)));
        }
    }
    Err(IssuingError::Store(podid_store::Error::WriterGone))
}

/// Rotates the ring when due and persists it (compare-and-swap: one replica wins, the others
/// follow the stored ring).
pub(crate) fn spawn_rotation(store: Arc<dyn Store>, issuer: Arc<LocalIssuer>, secrets: Secrets) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(ROTATION_CHECK);
        loop {
            tick.tick().await;
            if let Err(error) = rotate_once(store.as_ref(), &issuer, &secrets).await {
                tracing::warn!(%error, "sealing key rotation failed; will retry");
            }
        }
    });
}

async fn rotate_once(
    store: &dyn Store,
    issuer: &LocalIssuer,
    secrets: &Secrets,
) -> Result<(), IssuingError> {
    let Some(current) = store.get(KEYRING_KEY).await? else {
        return Ok(());
    };
    let rotation = issuer.rotate(OffsetDateTime::now_utc())?;
    if rotation.changed() {
        let bytes = seal_ring(&issuer.ring(), secrets)?;
        let txn = Txn::new()
            .when(Compare::ModRevision(
                KEYRING_KEY.into(),
                current.mod_revision,
            ))
            .put(KEYRING_KEY, bytes);
        if let TxnOutcome::Committed { .. } = store.txn(txn).await? {
            tracing::info!(added = ?rotation.added, dropped = rotation.dropped.len(), "sealing keys rotated");
        }
    }
    Ok(())
}

/// The ring as stored: persisted, then sealed under the current KEK.
fn seal_ring(ring: &KeyRing, secrets: &Secrets) -> Result<Vec<u8>, IssuingError> {
    Ok(secrets.seal(KEYRING_KEY, ring.to_persisted()?.as_bytes())?)
}

/// Follows the stored ring into the issuer.
pub(crate) struct KeyRingIndex(pub(crate) Arc<LocalIssuer>, pub(crate) Secrets);

impl KeyRingIndex {
    fn install(&self, kv: &KeyValue) {
        if kv.key != KEYRING_KEY {
            return;
        }
        let ring = self
            .1
            .open(kv)
            .map_err(IssuingError::from)
            .and_then(|bytes| Ok(KeyRing::from_persisted(&bytes, RingConfig::default())?));
        match ring {
            Ok(ring) => self.0.replace_ring(ring),
            Err(error) => tracing::error!(%error, "ignoring an unreadable stored key ring"),
        }
    }
}

impl Index for KeyRingIndex {
    fn prefix(&self) -> &'static str {
        "issuer/"
    }
    fn load(&self, kvs: &[KeyValue]) {
        kvs.iter().for_each(|kv| self.install(kv));
    }
    fn apply(&self, event: &Event) {
        if let Event::Put(kv) = event {
            self.install(kv);
        }
    }
}
