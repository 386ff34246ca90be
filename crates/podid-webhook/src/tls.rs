//! The serving certificate, reloaded when its files change: cert-manager and Kubernetes secret
//! volumes replace the files in place, and the kube-apiserver must see the new certificate
//! without a webhook restart. The files' modification times and sizes are polled; a pair that
//! does not load (half-written, or a key that does not match the certificate) is ignored until
//! the next change, and the previous certificate keeps serving.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::{Mutex, RwLock};
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

/// Largest certificate or key file read: real chains are a few KiB; the cap stops a wrong path
/// (a log, a device) from being read into memory.
const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// Why a certificate/key pair could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is larger than {MAX_PEM_BYTES} bytes")]
    TooLarge { path: String },
    #[error("{path} holds no PEM {what}")]
    Empty { path: String, what: &'static str },
    #[error("TLS configuration")]
    Config(#[from] rustls::Error),
}

/// The certificate in use, and where it comes from.
pub(crate) struct ReloadingCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    /// (mtime, length) of both files when `current` was loaded or last refused.
    stamp: Mutex<Option<Stamp>>,
}

type Stamp = [(Option<SystemTime>, u64); 2];

impl fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key material never reaches a log.
        f.debug_struct("ReloadingCert")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

impl ReloadingCert {
    /// Loads the pair now; fails if it does not load (startup should stop on a bad pair).
    pub(crate) fn load(cert_path: PathBuf, key_path: PathBuf) -> Result<Arc<Self>, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let stamp = stamp(&cert_path, &key_path);
        let key = load_pair(&cert_path, &key_path, &provider)?;
        Ok(Arc::new(Self {
            cert_path,
            key_path,
            provider,
            current: RwLock::new(Arc::new(key)),
            stamp: Mutex::new(stamp),
        }))
    }

    /// A TLS acceptor (HTTP/2 and HTTP/1.1) that always presents the current certificate.
    pub(crate) fn acceptor(self: &Arc<Self>) -> Result<TlsAcceptor, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }

    /// Reloads the pair if either file changed since the last look. Returns whether a new
    /// certificate is now in use.
    pub(crate) fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let now = stamp(&self.cert_path, &self.key_path);
        {
            let mut seen = self.stamp.lock();
            if *seen == now {
                return Ok(false);
            }
            *seen = now;
        }
        let key = load_pair(&self.cert_path, &self.key_path, &self.provider)?;
        *self.current.write() = Arc::new(key);
        Ok(true)
    }

    /// Polls the files every `interval`, for as long as the task runs.
    pub(crate) async fn watch(self: Arc<Self>, interval: Duration) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match self.reload_if_changed() {
                Ok(true) => {
                    tracing::info!(cert = %self.cert_path.display(), "serving certificate reloaded");
                }
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(%error, "serving certificate changed but does not load; keeping the previous one");
                }
            }
        }
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.current.read()))
    }
}

fn stamp(cert: &Path, key: &Path) -> Option<Stamp> {
    let one = |p: &Path| {
        std::fs::metadata(p)
            .ok()
            .map(|m| (m.modified().ok(), m.len()))
    };
    Some([one(cert)?, one(key)?])
}

fn read_capped(path: &Path) -> Result<Vec<u8>, TlsError> {
    let shown = || path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|source| TlsError::Read {
        path: shown(),
        source,
    })?;
    if meta.len() > MAX_PEM_BYTES {
        return Err(TlsError::TooLarge { path: shown() });
    }
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: shown(),
        source,
    })
}

fn load_pair(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let cert_pem = read_capped(cert)?;
    let key_pem = read_capped(key)?;
    let bad = |p: &Path, source| TlsError::Read {
        path: p.display().to_string(),
        source,
    };
    let certs: Vec<_> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| bad(cert, e))?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            path: cert.display().to_string(),
            what: "certificates",
        });
    }
    let key_der = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| bad(key, e))?
        .ok_or_else(|| TlsError::Empty {
            path: key.display().to_string(),
            what: "private key",
        })?;
    // `from_der` also refuses a key that does not match the certificate: the state between a
    // rotation's two file writes.
    Ok(CertifiedKey::from_der(certs, key_der, provider)?)
}
