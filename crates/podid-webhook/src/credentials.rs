//! The webhook's own AWS credentials, which sign its `ListPodIdentityAssociations` calls:
//! fixed, or a shared credentials file read again on every sync so a rotated key is picked up
//! (the file is a few hundred bytes, read once per sync interval).

use std::path::PathBuf;

use podid_aws::credentials_file::{CredentialsFileError, read_profile};
use podid_aws::sigv4::SigningCredentials;

/// Where the signing credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// Fixed credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`).
    Static(SigningCredentials),
    /// A shared credentials file and the profile to read from it.
    SharedFile { path: PathBuf, profile: String },
}

impl CredentialSource {
    /// The credentials to sign with now.
    pub(crate) fn current(&self) -> Result<SigningCredentials, CredentialsFileError> {
        match self {
            Self::Static(creds) => Ok(creds.clone()),
            Self::SharedFile { path, profile } => read_profile(path, profile),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotated_file_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        let write = |id: &str| {
            std::fs::write(
                &path,
                format!("[node]\naws_access_key_id={id}\naws_secret_access_key=S\n"),
            )
            .unwrap();
        };
        write("A1");
        let source = CredentialSource::SharedFile {
            path: path.clone(),
            profile: "node".into(),
        };
        assert_eq!(source.current().unwrap().access_key_id, "A1");
        write("A2");
        assert_eq!(source.current().unwrap().access_key_id, "A2");
        std::fs::remove_file(&path).unwrap();
        assert!(source.current().is_err());
    }
}
