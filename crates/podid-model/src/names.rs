//! Kubernetes object-name rules (DNS-1123), as EKS validates `namespace` and `serviceAccount`.

use crate::InvalidField;

/// A DNS-1123 label: 1-63 of `[a-z0-9-]`, starting and ending alphanumeric.
fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// A DNS-1123 subdomain: at most 253 characters of dot-separated DNS-1123 labels.
fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

/// Namespaces are DNS-1123 labels (at most 63 characters).
pub fn validate_namespace(s: &str) -> Result<(), InvalidField> {
    if is_dns1123_label(s) {
        Ok(())
    } else {
        Err(InvalidField::new(
            "namespace",
            format!(
                "namespace '{}' is not a valid Kubernetes namespace name: it must be a DNS-1123 label of at most 63 lowercase alphanumeric characters or '-', starting and ending with an alphanumeric character",
                truncate(s)
            ),
        ))
    }
}

/// Service account names are DNS-1123 subdomains (at most 253 characters).
pub fn validate_service_account(s: &str) -> Result<(), InvalidField> {
    if is_dns1123_subdomain(s) {
        Ok(())
    } else {
        Err(InvalidField::new(
            "serviceAccount",
            format!(
                "serviceAccount '{}' is not a valid Kubernetes service account name: it must be a DNS-1123 subdomain of at most 253 lowercase alphanumeric characters, '-' or '.'",
                truncate(s)
            ),
        ))
    }
}

/// Echo at most 100 characters of a bad value back, so errors stay small.
pub(crate) fn truncate(s: &str) -> &str {
    match s.char_indices().nth(100) {
        Some((i, _)) => s.get(..i).unwrap_or(s),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces() {
        for ok in ["default", "a", "kube-system", "a1", &"a".repeat(63)] {
            validate_namespace(ok).unwrap();
        }
        for bad in ["", "-a", "a-", "A", "a.b", "a_b", &"a".repeat(64), "ü"] {
            assert_eq!(
                validate_namespace(bad).unwrap_err().field,
                "namespace",
                "{bad}"
            );
        }
    }

    #[test]
    fn service_accounts() {
        for ok in [
            "my-app",
            "a.b.c",
            "x",
            &format!("{}.{}", "a".repeat(63), "b".repeat(63)),
        ] {
            validate_service_account(ok).unwrap();
        }
        for bad in ["", "a..b", ".a", "a.", "My-App", "a b", &"a.".repeat(127)] {
            assert_eq!(
                validate_service_account(bad).unwrap_err().field,
                "serviceAccount",
                "{bad}"
            );
        }
    }
}
