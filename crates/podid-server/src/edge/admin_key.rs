//! The bootstrap administrator access key: created once, stored in a 0600 file in the data dir.
//!
//! The file uses the AWS shared-credentials format, so `AWS_SHARED_CREDENTIALS_FILE=<file>` makes
//! any AWS client use it:
//! ```text
//! [default]
//! aws_access_key_id = AKIA...
//! aws_secret_access_key = ...
//! ```

use std::fmt;
use std::io::Write;
use std::path::Path;

use podid_aws::credentials_file::{self, CredentialsFileError};
use podid_aws::sigv4::SigningCredentials;
use podid_issuer::SecretKey;

/// The IAM user name the administrator key belongs to.
pub(crate) const ADMIN_USER_NAME: &str = "podid-admin";

/// An access key pair. `Debug` shows only the access key id.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminKey {
    pub access_key_id: String,
    /// Zeroized on drop; `Debug` never shows it.
    secret_access_key: SecretKey,
}

impl fmt::Debug for AdminKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminKey")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AdminKeyError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} has no aws_access_key_id / aws_secret_access_key pair")]
    Malformed { path: String },
    #[error("the random number generator failed")]
    Random,
}

impl AdminKey {
    /// A new random key in AWS's shapes (`AKIA` + 16 of `[A-Z2-7]`, a 40-character secret),
    /// from the issuer's CSPRNG-backed generator.
    pub fn generate() -> Result<Self, AdminKeyError> {
        Ok(Self {
            access_key_id: podid_issuer::generate_long_term_access_key_id()
                .map_err(|_| AdminKeyError::Random)?,
            secret_access_key: podid_issuer::generate_secret_access_key()
                .map_err(|_| AdminKeyError::Random)?,
        })
    }

    pub fn new(access_key_id: String, secret_access_key: String) -> Self {
        Self {
            access_key_id,
            secret_access_key: SecretKey::new(secret_access_key),
        }
    }

    /// The secret, for signing and for the one file that stores it.
    pub fn secret_access_key(&self) -> &str {
        self.secret_access_key.expose()
    }

    pub(crate) fn secret(&self) -> &SecretKey {
        &self.secret_access_key
    }

    /// Reads a shared-credentials file: the `[default]` profile, or else the first profile that
    /// has a complete key.
    pub fn load(path: &Path) -> Result<Self, AdminKeyError> {
        let shown = || path.display().to_string();
        let text = credentials_file::read_capped(path).map_err(|e| match e {
            CredentialsFileError::Read { source, .. } => AdminKeyError::Read {
                path: shown(),
                source,
            },
            CredentialsFileError::TooLarge { .. } | CredentialsFileError::NoProfile { .. } => {
                AdminKeyError::Malformed { path: shown() }
            }
        })?;
        credentials_file::parse_preferred_or_first(&text, "default")
            .map(|c| Self::new(c.access_key_id, c.secret_access_key))
            .ok_or_else(|| AdminKeyError::Malformed { path: shown() })
    }

    /// Writes the key to `path` with mode 0600, refusing to replace an existing file.
    pub fn save_new(&self, path: &Path) -> Result<(), AdminKeyError> {
        self.write_new(path)
    }

    /// Replaces the key file at `path` atomically: the key is written to a new 0600 file beside
    /// it, synced, then renamed over it, so a crash leaves the old file or the new one, whole.
    pub fn replace(&self, path: &Path) -> Result<(), AdminKeyError> {
        let mut temp = path.as_os_str().to_owned();
        temp.push(".new");
        let temp = std::path::PathBuf::from(temp);
        let write_err = |source| AdminKeyError::Write {
            path: path.display().to_string(),
            source,
        };
        // A leftover from an interrupted replace holds a key that was never used.
        match std::fs::remove_file(&temp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(write_err(e)),
            _ => {}
        }
        self.write_new(&temp)?;
        std::fs::rename(&temp, path).map_err(write_err)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(write_err)?;
        }
        Ok(())
    }

    fn write_new(&self, path: &Path) -> Result<(), AdminKeyError> {
        let write_err = |source| AdminKeyError::Write {
            path: path.display().to_string(),
            source,
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(write_err)?;
        let credentials = SigningCredentials {
            access_key_id: self.access_key_id.clone(),
            secret_access_key: self.secret_access_key.expose().to_owned(),
            session_token: None,
        };
        let comment = format!("podid administrator key ({ADMIN_USER_NAME}). Keep it secret.");
        file.write_all(credentials_file::render("default", &credentials, &[&comment]).as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(write_err)
    }

    /// Loads the key at `path`, or creates and saves a new one. The bool says whether it is new.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), AdminKeyError> {
        if path.exists() {
            return Ok((Self::load(path)?, false));
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| AdminKeyError::Write {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let key = Self::generate()?;
        key.save_new(path)?;
        Ok((key, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_swaps_the_file_whole_and_keeps_it_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin-credentials");
        let (old, _) = AdminKey::load_or_create(&path).unwrap();
        // A leftover of an interrupted replace is overwritten, not an obstacle.
        std::fs::write(dir.path().join("admin-credentials.new"), "junk").unwrap();
        let new = AdminKey::generate().unwrap();
        new.replace(&path).unwrap();
        let loaded = AdminKey::load(&path).unwrap();
        assert_eq!(loaded.access_key_id, new.access_key_id);
        assert_ne!(loaded.access_key_id, old.access_key_id);
        assert_eq!(loaded.secret_access_key(), new.secret_access_key());
        assert!(!dir.path().join("admin-credentials.new").exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }

    #[test]
    fn generated_keys_have_aws_shapes_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin-credentials");
        let (key, created) = AdminKey::load_or_create(&path).unwrap();
        assert!(created);
        assert_eq!(key.access_key_id.len(), 20);
        assert!(key.access_key_id.starts_with("AKIA"));
        assert_eq!(key.secret_access_key().len(), 40);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let (again, created) = AdminKey::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(again, key);
        assert!(!format!("{key:?}").contains(key.secret_access_key()));
    }

    #[test]
    fn malformed_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, "[default]\naws_access_key_id = AKIA\n").unwrap();
        assert!(matches!(
            AdminKey::load(&path),
            Err(AdminKeyError::Malformed { .. })
        ));
        std::fs::write(&path, vec![b'#'; 100 * 1024]).unwrap();
        assert!(matches!(
            AdminKey::load(&path),
            Err(AdminKeyError::Malformed { .. })
        ));
        assert!(matches!(
            AdminKey::load(&dir.path().join("missing")),
            Err(AdminKeyError::Read { .. })
        ));
    }
}
