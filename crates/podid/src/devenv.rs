//! The dev data directory's fixed names and its `dev.env` file (shell `export` lines).
//!
//! `dev.env` holds the administrator secret, so it is written 0600, atomically (temp + rename),
//! and read back with a size cap by `podid exec`.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;

/// The cluster `podid dev` registers.
pub(crate) const DEV_CLUSTER: &str = "dev";
/// Its token issuer (`iss`).
pub(crate) const DEV_ISSUER: &str = "https://podid.dev/clusters/dev";
/// The dev cluster's token signing key, inside the data dir.
pub(crate) const SIGNING_KEY_FILE: &str = "dev-cluster-signing-key.pem";
/// The environment file, inside the data dir.
pub(crate) const DEV_ENV_FILE: &str = "dev.env";
/// Largest dev.env read; the real one is well under 1 KiB.
const MAX_DEV_ENV_BYTES: u64 = 64 * 1024;

/// Ordered `KEY=value` pairs.
#[derive(Default)]
pub(crate) struct DevEnv {
    vars: Vec<(String, String)>,
}

impl std::fmt::Debug for DevEnv {
    // Values include the administrator secret: show keys only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.vars.iter().map(|(k, _)| k))
            .finish()
    }
}

impl DevEnv {
    pub(crate) fn set(&mut self, key: &str, value: impl Into<String>) {
        let value = value.into();
        match self.vars.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.vars.push((key.to_owned(), value)),
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn render(&self) -> String {
        let mut out = String::from("# Written by `podid dev`. Use: source dev.env\n");
        for (k, v) in &self.vars {
            out.push_str(&format!("export {k}={}\n", shell_quote(v)));
        }
        out
    }

    /// Writes the file with mode 0600, replacing any previous one atomically.
    pub(crate) fn write(&self, path: &Path) -> anyhow::Result<()> {
        write_private_atomic(path, self.render().as_bytes())
    }

    pub(crate) fn read(path: &Path) -> anyhow::Result<Self> {
        let len = std::fs::metadata(path)
            .with_context(|| format!("reading {}", path.display()))?
            .len();
        if len > MAX_DEV_ENV_BYTES {
            anyhow::bail!(
                "{} is larger than {MAX_DEV_ENV_BYTES} bytes",
                path.display()
            );
        }
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Ok(Self::parse(&text))
    }

    fn parse(text: &str) -> Self {
        let mut env = Self::default();
        for line in text.lines().map(str::trim) {
            let line = line.strip_prefix("export ").unwrap_or(line);
            if line.starts_with('#') {
                continue;
            }
            if let Some((k, v)) = line.split_once('=') {
                env.set(k.trim(), unquote(v.trim()));
            }
        }
        env
    }
}

/// Writes `bytes` to a 0600 temp file beside `path`, then renames it over `path`.
pub(crate) fn write_private_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let result = (|| -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}

/// Shell-quotes a value unless it is made only of characters the shell leaves alone.
pub(crate) fn shell_quote(v: &str) -> String {
    let plain = !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:@%+,".contains(&b));
    if plain {
        v.to_owned()
    } else {
        format!("'{}'", v.replace('\'', "'\\''"))
    }
}

fn unquote(v: &str) -> String {
    match v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        Some(inner) => inner.replace("'\\''", "'"),
        None => v.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_shell_quoting() {
        let mut env = DevEnv::default();
        for (k, v) in [
            ("A", "http://127.0.0.1:7400"),
            ("B", "it's a /path with spaces"),
            ("C", ""),
            ("D", "x+y/z="),
        ] {
            env.set(k, v);
        }
        let parsed = DevEnv::parse(&env.render());
        assert_eq!(parsed.get("B"), Some("it's a /path with spaces"));
        assert_eq!(parsed.get("C"), Some(""));
        assert_eq!(parsed.get("D"), Some("x+y/z="));
        assert!(env.render().contains("export A=http://127.0.0.1:7400\n"));
    }

    #[test]
    fn written_files_are_private_and_debug_hides_values() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev.env");
        let mut env = DevEnv::default();
        env.set("AWS_SECRET_ACCESS_KEY", "s3cr3t");
        env.write(&path).unwrap();
        env.write(&path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            DevEnv::read(&path).unwrap().get("AWS_SECRET_ACCESS_KEY"),
            Some("s3cr3t")
        );
        assert!(!format!("{env:?}").contains("s3cr3t"));
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "temp files left behind"
        );
    }
}
