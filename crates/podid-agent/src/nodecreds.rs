//! The node's own AWS credentials, which sign EKS Auth calls: static (from the standard
//! environment variables) or a shared credentials file that is re-read when it changes (hybrid
//! nodes rotate it; the reference re-reads it every minute).

use podid_aws::credentials_file::parse_profile;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use podid_aws::sigv4::SigningCredentials;
use tokio::time::Instant;

use crate::Error;

/// The file's mtime is looked at no more often than this: a `stat` per upstream call is cheap,
/// but a rotation only needs to be noticed within seconds.
const RECHECK_INTERVAL: Duration = Duration::from_secs(5);

/// Largest credentials file read. Real files hold a few profiles (~200 bytes each); the cap
/// keeps a misconfigured path (a log, a device) from being read into memory.
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// Where node credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeCredentialSource {
    /// Fixed credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`).
    Static(SigningCredentials),
    /// An INI shared credentials file and the profile to read from it.
    SharedFile {
        /// The file (`AWS_SHARED_CREDENTIALS_FILE` or `~/.aws/credentials`).
        path: PathBuf,
        /// The profile (`AWS_PROFILE` or `default`).
        profile: String,
    },
}

impl NodeCredentialSource {
    /// The AWS SDK's lookup order, reading variables through `lookup` (the binary passes
    /// `|k| std::env::var(k).ok()`; tests pass a map): the access-key variables when both are
    /// set, else the shared credentials file.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let var = |k: &str| lookup(k).filter(|v| !v.is_empty());
        if let (Some(access_key_id), Some(secret_access_key)) =
            (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"))
        {
            return Ok(Self::Static(SigningCredentials {
                access_key_id,
                secret_access_key,
                session_token: var("AWS_SESSION_TOKEN"),
            }));
        }
        let path = match var("AWS_SHARED_CREDENTIALS_FILE") {
            Some(path) => PathBuf::from(path),
            None => {
                let home = var("HOME").ok_or_else(|| {
                    Error::NodeCredentials(
                        "no AWS_ACCESS_KEY_ID, AWS_SHARED_CREDENTIALS_FILE or HOME is set"
                            .to_owned(),
                    )
                })?;
                Path::new(&home).join(".aws").join("credentials")
            }
        };
        let profile = var("AWS_PROFILE").unwrap_or_else(|| "default".to_owned());
        Ok(Self::SharedFile { path, profile })
    }
}

/// Hands out the current node credentials, re-reading a shared file when its mtime changes.
#[derive(Debug)]
pub(crate) struct NodeCredentials {
    source: NodeCredentialSource,
    file: Mutex<FileState>,
}

#[derive(Debug, Default)]
struct FileState {
    checked_at: Option<Instant>,
    mtime: Option<SystemTime>,
    creds: Option<Arc<SigningCredentials>>,
}

impl NodeCredentials {
    pub(crate) fn new(source: NodeCredentialSource) -> Self {
        Self {
            source,
            file: Mutex::new(FileState::default()),
        }
    }

    /// Credentials to sign with now. The file is read synchronously: it is tiny, local, and read
    /// at most once per [`RECHECK_INTERVAL`] (or when it changed).
    pub(crate) fn current(&self) -> Result<Arc<SigningCredentials>, Error> {
        let (path, profile) = match &self.source {
            NodeCredentialSource::Static(creds) => return Ok(Arc::new(creds.clone())),
            NodeCredentialSource::SharedFile { path, profile } => (path, profile),
        };
        let now = Instant::now();
        let mut state = self.file.lock();
        if let (Some(checked), Some(creds)) = (state.checked_at, &state.creds)
            && now.duration_since(checked) < RECHECK_INTERVAL
        {
            return Ok(Arc::clone(creds));
        }
        state.checked_at = Some(now);
        let meta = std::fs::metadata(path)
            .map_err(|e| Error::NodeCredentials(format!("{}: {e}", path.display())))?;
        let mtime = meta.modified().ok();
        if let Some(creds) = &state.creds
            && mtime.is_some()
            && mtime == state.mtime
        {
            return Ok(Arc::clone(creds));
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(Error::NodeCredentials(format!(
                "{} is larger than {MAX_FILE_BYTES} bytes",
                path.display()
            )));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::NodeCredentials(format!("{}: {e}", path.display())))?;
        let creds = Arc::new(parse_profile(&text, profile).ok_or_else(|| {
            Error::NodeCredentials(format!(
                "{} has no aws_access_key_id/aws_secret_access_key in profile {profile}",
                path.display()
            ))
        })?);
        tracing::info!(path = %path.display(), profile, "loaded node credentials from shared credentials file");
        state.mtime = mtime;
        state.creds = Some(Arc::clone(&creds));
        Ok(creds)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn profile_parsing_refuses_incomplete_profiles() {
        assert!(parse_profile("[default]\naws_access_key_id=A\n", "default").is_none());
        assert!(
            parse_profile(
                "[other]\naws_access_key_id=A\naws_secret_access_key=S\n",
                "default"
            )
            .is_none()
        );
        let text = "# c\n[default]\naws_access_key_id = A\naws_secret_access_key= S \n[p2]\naws_access_key_id=B\naws_secret_access_key=T\naws_session_token=X\n";
        let d = parse_profile(text, "default").unwrap();
        assert_eq!(
            (d.access_key_id.as_str(), d.secret_access_key.as_str()),
            ("A", "S")
        );
        assert_eq!(d.session_token, None);
        assert_eq!(
            parse_profile(text, "p2").unwrap().session_token.as_deref(),
            Some("X")
        );
    }

    #[test]
    fn env_lookup_order() {
        let env: HashMap<&str, &str> = [
            ("AWS_ACCESS_KEY_ID", "A"),
            ("AWS_SECRET_ACCESS_KEY", "S"),
            ("HOME", "/h"),
        ]
        .into();
        let lookup = |k: &str| env.get(k).map(|v| (*v).to_owned());
        assert!(matches!(
            NodeCredentialSource::from_env(lookup).unwrap(),
            NodeCredentialSource::Static(_)
        ));
        let env: HashMap<&str, &str> = [("HOME", "/h"), ("AWS_PROFILE", "p")].into();
        let src =
            NodeCredentialSource::from_env(|k: &str| env.get(k).map(|v| (*v).to_owned())).unwrap();
        assert_eq!(
            src,
            NodeCredentialSource::SharedFile {
                path: "/h/.aws/credentials".into(),
                profile: "p".into()
            }
        );
        assert!(NodeCredentialSource::from_env(|_: &str| None).is_err());
    }

    #[tokio::test]
    async fn shared_file_is_reread_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        std::fs::write(
            &path,
            "[default]\naws_access_key_id=A1\naws_secret_access_key=S\n",
        )
        .unwrap();
        let creds = NodeCredentials::new(NodeCredentialSource::SharedFile {
            path: path.clone(),
            profile: "default".into(),
        });
        assert_eq!(creds.current().unwrap().access_key_id, "A1");
        std::fs::write(
            &path,
            "[default]\naws_access_key_id=A2\naws_secret_access_key=S\n",
        )
        .unwrap();
        let later = SystemTime::now() + Duration::from_secs(10);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        // Within the recheck interval the cached value is served.
        assert_eq!(creds.current().unwrap().access_key_id, "A1");
        creds.file.lock().checked_at = None;
        assert_eq!(creds.current().unwrap().access_key_id, "A2");
    }
}
