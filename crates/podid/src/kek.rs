//! The key-encryption keys (KEKs) of `podid server` and `podid dev`: where they come from, and
//! the one-time creation of the default KEK file.
//!
//! The current KEK comes from `PODID_KEK` (base64), else `--kek-file`, else `<data-dir>/kek`;
//! either file is created, mode 0600, on first start when absent (as the administrator key's
//! is). Previous KEKs (`--previous-kek-file`,
//! `PODID_PREVIOUS_KEKS`) only open; the server re-wraps everything under the current KEK at
//! start, which is the whole rotation procedure (docs/secrets-at-rest.md).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use podid_agent_cli::os::create_private_dir;
use podid_store::envelope::{Kek, KekSet};
use zeroize::Zeroizing;

use crate::usage;

/// File name of the default KEK in the data directory.
pub(crate) const DEFAULT_KEK_FILE: &str = "kek";

/// A KEK given as text (an environment variable). `Debug` never shows it; wiped on drop.
#[derive(Clone)]
pub(crate) struct KekText(Zeroizing<String>);

impl std::fmt::Debug for KekText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KekText(<redacted>)")
    }
}

impl FromStr for KekText {
    type Err = std::convert::Infallible;
    /// Any text: it is checked by [`KekConfig::load`], whose refusal does not echo it (clap's
    /// would).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Self(Zeroizing::new(text.to_owned())))
    }
}

/// Where the KEKs come from, as the flags said.
#[derive(Debug, Clone, Default)]
pub(crate) struct KekConfig {
    /// `PODID_KEK`.
    pub(crate) text: Option<KekText>,
    /// `--kek-file`; neither this nor `text`: `<data-dir>/kek`. Created if absent.
    pub(crate) file: Option<PathBuf>,
    /// `--previous-kek-file`.
    pub(crate) previous_files: Vec<PathBuf>,
    /// `PODID_PREVIOUS_KEKS`.
    pub(crate) previous_texts: Vec<KekText>,
}

impl KekConfig {
    /// Loads every KEK, creating the current KEK's file when absent. A malformed KEK, a missing
    /// previous one, or one named twice, is a usage error.
    pub(crate) fn load(&self, data_dir: &Path) -> anyhow::Result<Arc<KekSet>> {
        let current = match (&self.text, &self.file) {
            (Some(text), _) => from_text(text, "PODID_KEK")?,
            (None, Some(path)) => load_or_create(path, Some("--kek-file"))?,
            (None, None) => {
                create_private_dir(data_dir)?;
                load_or_create(&data_dir.join(DEFAULT_KEK_FILE), None)?
            }
        };
        let mut previous = Vec::new();
        for path in &self.previous_files {
            previous.push(from_file(path, "--previous-kek-file")?);
        }
        for text in &self.previous_texts {
            previous.push(from_text(text, "PODID_PREVIOUS_KEKS")?);
        }
        let set = match KekSet::new(current, previous) {
            Ok(set) => set,
            Err(e) => {
                usage!("{e}: a previous KEK must differ from the current one and from each other")
            }
        };
        Ok(Arc::new(set))
    }
}

fn from_text(text: &KekText, source: &str) -> anyhow::Result<Kek> {
    match Kek::from_base64(&text.0) {
        Ok(kek) => Ok(kek),
        Err(e) => usage!("{source}: {e}"),
    }
}

fn from_file(path: &Path, flag: &str) -> anyhow::Result<Kek> {
    match Kek::load(path) {
        Ok(kek) => Ok(kek),
        Err(e) => usage!("{flag}: {e}"),
    }
}

/// The KEK file at `path`, created on first start. A problem with a file the operator named
/// (`flag`) is a usage error.
fn load_or_create(path: &Path, flag: Option<&str>) -> anyhow::Result<Kek> {
    let (kek, created) = match (Kek::load_or_create(path), flag) {
        (Ok(loaded), _) => loaded,
        (Err(e), Some(flag)) => usage!("{flag}: {e}"),
        (Err(e), None) => {
            return Err(anyhow::Error::new(e).context("loading the key-encryption key"));
        }
    };
    if created {
        tracing::info!(
            kek = %kek.id(),
            file = %path.display(),
            "created a key-encryption key (KEK) that seals secrets in the database; back it up apart from the database"
        );
    }
    Ok(kek)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(byte: u8) -> KekText {
        use base64::Engine as _;
        let encoded = base64::engine::general_purpose::STANDARD.encode([byte; 32]);
        encoded.parse().unwrap()
    }

    fn is_usage(r: anyhow::Result<Arc<KekSet>>) -> bool {
        r.err()
            .is_some_and(|e| e.downcast_ref::<crate::UsageError>().is_some())
    }

    #[test]
    fn the_environment_wins_and_the_same_key_twice_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let from_env = KekConfig {
            text: Some(text(1)),
            ..KekConfig::default()
        };
        let set = from_env.load(dir.path()).unwrap();
        assert_eq!(set.current_id(), Kek::from_bytes(&[1; 32]).unwrap().id());
        assert!(
            !dir.path().join(DEFAULT_KEK_FILE).exists(),
            "no file when PODID_KEK is set"
        );
        let twice = KekConfig {
            text: Some(text(1)),
            previous_texts: vec![text(1)],
            ..KekConfig::default()
        };
        assert!(is_usage(twice.load(dir.path())));
        let missing_previous = KekConfig {
            previous_files: vec![dir.path().join("old-kek")],
            ..KekConfig::default()
        };
        assert!(is_usage(missing_previous.load(dir.path())));
        let malformed = KekConfig {
            text: Some("almost-a-kek".parse().unwrap()),
            ..KekConfig::default()
        };
        let err = malformed.load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("PODID_KEK") && !err.contains("almost-a-kek"),
            "{err}"
        );
        assert_eq!(format!("{:?}", text(1)), "KekText(<redacted>)");
    }
}
