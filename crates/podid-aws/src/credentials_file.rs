//! The AWS shared-credentials file (`~/.aws/credentials`): INI sections named by profile, each
//! with `aws_access_key_id`, `aws_secret_access_key` and optionally `aws_session_token`.
//!
//! One reader and one writer for every podid file in this format: the server's administrator
//! key, the node agent's credentials, and `podid dev`'s node key. Written by hand because the
//! format is a handful of `key = value` lines and the AWS SDKs' own parsers are not libraries;
//! the rules followed are the AWS CLI's (case-insensitive keys, `#` and `;` comments, values
//! trimmed).

use std::path::Path;

use crate::sigv4::SigningCredentials;

/// Largest credentials file read: a real one is a few hundred bytes per profile; the cap keeps a
/// wrong path (a log file, a device) from being read into memory.
pub const MAX_CREDENTIALS_FILE_BYTES: u64 = 64 * 1024;

/// Why a credentials file could not be used. Never carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsFileError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is larger than {MAX_CREDENTIALS_FILE_BYTES} bytes")]
    TooLarge { path: String },
    #[error("{path} has no aws_access_key_id / aws_secret_access_key pair in profile {profile}")]
    NoProfile { path: String, profile: String },
}

/// The credentials of `profile`, if the text has both a key id and a secret for it.
pub fn parse_profile(text: &str, profile: &str) -> Option<SigningCredentials> {
    let (mut in_profile, mut key, mut secret, mut token) = (false, None, None, None);
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_profile = section.trim() == profile;
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        if !in_profile {
            continue;
        }
        let v = v.trim().to_owned();
        match k.trim().to_ascii_lowercase().as_str() {
            "aws_access_key_id" => key = Some(v),
            "aws_secret_access_key" => secret = Some(v),
            "aws_session_token" => token = Some(v),
            _ => {}
        }
    }
    Some(SigningCredentials {
        access_key_id: key.filter(|k| !k.is_empty())?,
        secret_access_key: secret.filter(|s| !s.is_empty())?,
        session_token: token.filter(|t| !t.is_empty()),
    })
}

/// The credentials of `preferred`, or else of the first profile in the file that has both a key
/// id and a secret (for files an operator supplies with whatever profile name they use).
pub fn parse_preferred_or_first(text: &str, preferred: &str) -> Option<SigningCredentials> {
    parse_profile(text, preferred).or_else(|| {
        text.lines()
            .filter_map(|l| l.trim().strip_prefix('[')?.strip_suffix(']'))
            .find_map(|profile| parse_profile(text, profile.trim()))
    })
}

/// Reads `path` (under [`MAX_CREDENTIALS_FILE_BYTES`]) and returns `profile`'s credentials.
pub fn read_profile(
    path: &Path,
    profile: &str,
) -> Result<SigningCredentials, CredentialsFileError> {
    let text = read_capped(path)?;
    parse_profile(&text, profile).ok_or_else(|| CredentialsFileError::NoProfile {
        path: path.display().to_string(),
        profile: profile.to_owned(),
    })
}

/// Reads the whole file, refusing one larger than [`MAX_CREDENTIALS_FILE_BYTES`].
pub fn read_capped(path: &Path) -> Result<String, CredentialsFileError> {
    let shown = || path.display().to_string();
    let read = |source| CredentialsFileError::Read {
        path: shown(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read)?;
    if meta.len() > MAX_CREDENTIALS_FILE_BYTES {
        return Err(CredentialsFileError::TooLarge { path: shown() });
    }
    std::fs::read_to_string(path).map_err(read)
}

/// One profile in the file format, preceded by `comment` lines (each prefixed with `# `).
pub fn render(profile: &str, credentials: &SigningCredentials, comment: &[&str]) -> String {
    let mut out = String::new();
    for line in comment {
        out.push_str("# ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('[');
    out.push_str(profile);
    out.push_str("]\naws_access_key_id = ");
    out.push_str(&credentials.access_key_id);
    out.push_str("\naws_secret_access_key = ");
    out.push_str(&credentials.secret_access_key);
    out.push('\n');
    if let Some(token) = &credentials.session_token {
        out.push_str("aws_session_token = ");
        out.push_str(token);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(token: Option<&str>) -> SigningCredentials {
        SigningCredentials {
            access_key_id: "AKIAEXAMPLE".into(),
            secret_access_key: "s3cr3t".into(),
            session_token: token.map(str::to_owned),
        }
    }

    #[test]
    fn reads_the_named_profile_only() {
        let text = "# c\n[other]\naws_access_key_id=O\naws_secret_access_key=OS\n\n[node]\n; c\nAWS_ACCESS_KEY_ID = N \naws_secret_access_key= NS\naws_session_token = T\n";
        let node = parse_profile(text, "node").unwrap();
        assert_eq!(node.access_key_id, "N");
        assert_eq!(node.secret_access_key, "NS");
        assert_eq!(node.session_token.as_deref(), Some("T"));
        assert_eq!(parse_profile(text, "other").unwrap().access_key_id, "O");
        assert!(parse_profile(text, "default").is_none());
    }

    #[test]
    fn a_missing_or_empty_half_is_no_credentials() {
        assert!(parse_profile("[default]\naws_access_key_id=A\n", "default").is_none());
        assert!(
            parse_profile(
                "[default]\naws_access_key_id=A\naws_secret_access_key=\n",
                "default"
            )
            .is_none()
        );
        assert!(
            parse_profile("aws_access_key_id=A\naws_secret_access_key=S\n", "default").is_none()
        );
    }

    #[test]
    fn the_preferred_profile_wins_else_the_first_complete_one() {
        let text = "[half]\naws_access_key_id=H\n[ops]\naws_access_key_id=O\naws_secret_access_key=OS\n[default]\naws_access_key_id=D\naws_secret_access_key=DS\n";
        assert_eq!(
            parse_preferred_or_first(text, "default")
                .unwrap()
                .access_key_id,
            "D"
        );
        let no_default =
            "[half]\naws_access_key_id=H\n[ops]\naws_access_key_id=O\naws_secret_access_key=OS\n";
        assert_eq!(
            parse_preferred_or_first(no_default, "default")
                .unwrap()
                .access_key_id,
            "O"
        );
        assert!(parse_preferred_or_first("[half]\naws_access_key_id=H\n", "default").is_none());
    }

    #[test]
    fn render_round_trips() {
        for token in [None, Some("TOKEN")] {
            let text = render("default", &creds(token), &["podid key", "keep it secret"]);
            assert!(text.starts_with("# podid key\n# keep it secret\n[default]\n"));
            let back = parse_profile(&text, "default").unwrap();
            assert_eq!(back.access_key_id, "AKIAEXAMPLE");
            assert_eq!(back.secret_access_key, "s3cr3t");
            assert_eq!(back.session_token.as_deref(), token);
        }
    }

    #[test]
    fn files_are_read_under_a_cap() {
        let dir = std::env::temp_dir().join(format!("podid-credfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good");
        std::fs::write(&good, render("default", &creds(None), &[])).unwrap();
        assert_eq!(
            read_profile(&good, "default").unwrap().access_key_id,
            "AKIAEXAMPLE"
        );
        assert!(matches!(
            read_profile(&good, "nope"),
            Err(CredentialsFileError::NoProfile { .. })
        ));
        let big = dir.join("big");
        std::fs::write(&big, vec![b'#'; 70 * 1024]).unwrap();
        assert!(matches!(
            read_profile(&big, "default"),
            Err(CredentialsFileError::TooLarge { .. })
        ));
        assert!(matches!(
            read_profile(&dir.join("missing"), "default"),
            Err(CredentialsFileError::Read { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
