//! Exit codes shared by podid's binaries: 0 success, 1 runtime failure, 64 (`EX_USAGE`) bad
//! flags or configuration, each error printed as one `error: …` line on stderr.

use std::process::ExitCode;

/// `EX_USAGE` from sysexits.h: the command was used incorrectly.
pub const EXIT_USAGE: u8 = 64;

/// A configuration or flag error: printed as one line, exit code 64.
#[derive(Debug)]
pub struct UsageError(pub String);

impl UsageError {
    /// The error, boxed for an `anyhow::Result`.
    pub fn error(message: String) -> anyhow::Error {
        anyhow::Error::new(Self(message))
    }
}

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Returns early from an `anyhow::Result` function with a [`UsageError`] (exit 64).
#[macro_export]
macro_rules! usage {
    ($($arg:tt)*) => {
        return Err($crate::exit::UsageError::error(format!($($arg)*)))
    };
}

/// A command that finished with a specific exit code (a child process's, for `podid exec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit(pub u8);

/// The process exit for a command's outcome; errors are printed as one line (with their causes
/// joined by `: `).
pub fn finish(result: anyhow::Result<Exit>) -> ExitCode {
    match result {
        Ok(Exit(code)) => ExitCode::from(code),
        Err(e) if e.downcast_ref::<UsageError>().is_some() => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Help and version go to stdout with exit 0; every other parse error is one line and exit 64.
pub fn clap_failure(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            }
        }
        _ => {
            eprintln!("error: {}", one_line(&e.render().to_string()));
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// clap's multi-line error as one line: its first line, plus the arguments that "required
/// arguments were not provided:" lists on indented lines.
fn one_line(rendered: &str) -> String {
    let mut lines = rendered.lines();
    let first = lines.next().unwrap_or("invalid arguments");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let listed: Vec<&str> = if first.ends_with(':') {
        lines
            .take_while(|l| l.starts_with("  "))
            .map(str::trim)
            .collect()
    } else {
        Vec::new()
    };
    if listed.is_empty() {
        format!("{first} (see --help)")
    } else {
        format!("{first} {} (see --help)", listed.join(", "))
    }
}

/// The error and its sources on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_errors_become_one_line() {
        let rendered = "error: the following required arguments were not provided:\n  \
                        --cluster-name <CLUSTER_NAME>\n\nUsage: podid-agent\n";
        assert_eq!(
            one_line(rendered),
            "the following required arguments were not provided: --cluster-name <CLUSTER_NAME> (see --help)"
        );
        assert_eq!(
            one_line("error: unexpected argument '--x' found\n\nUsage: a\n"),
            "unexpected argument '--x' found (see --help)"
        );
        assert_eq!(one_line(""), "invalid arguments (see --help)");
    }

    #[test]
    fn error_chains_join_their_causes() {
        let inner = std::io::Error::other("disk full");
        let outer = podid_agent::Error::Serve {
            addr: "127.0.0.1:1".parse().unwrap(),
            source: inner,
        };
        assert_eq!(error_chain(&outer), "serving 127.0.0.1:1 failed: disk full");
    }
}
