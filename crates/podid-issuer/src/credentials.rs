//! Generates temporary access key ids and secrets in AWS's shapes, from the
//! operating system's CSPRNG (aws-lc-rs `rand::fill`).
//!
//! Shapes: real STS temporary access key ids are `ASIA` followed by 16
//! characters of the RFC 4648 base32 alphabet (`[A-Z2-7]`); secrets are 40
//! characters of the standard base64 alphabet. SDKs and tools (credential
//! scanners, the CLI's `--profile` checks) accept anything of these shapes.

use zeroize::Zeroizing;

use crate::{Error, SecretKey};

/// Length of an access key id: `ASIA` + 16.
pub const ACCESS_KEY_ID_LEN: usize = 20;
/// Length of a secret access key.
pub const SECRET_ACCESS_KEY_LEN: usize = 40;

/// Prefix AWS uses for temporary (STS-issued) access key ids.
const TEMPORARY_PREFIX: &str = "ASIA";
/// Prefix AWS uses for long-term (IAM user) access key ids.
const LONG_TERM_PREFIX: &str = "AKIA";
/// Random characters after the four-letter prefix of an IAM unique id (`AROA…`, `AIDA…`).
const UNIQUE_ID_RANDOM: usize = 17;
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// A fresh `ASIA…` access key id (80 random bits), as STS issues for temporary credentials.
pub fn generate_access_key_id() -> Result<String, Error> {
    prefixed_base32(TEMPORARY_PREFIX, ACCESS_KEY_ID_LEN - TEMPORARY_PREFIX.len())
}

/// A fresh `AKIA…` access key id (80 random bits), as IAM issues for a user's long-term key.
pub fn generate_long_term_access_key_id() -> Result<String, Error> {
    prefixed_base32(LONG_TERM_PREFIX, ACCESS_KEY_ID_LEN - LONG_TERM_PREFIX.len())
}

/// A fresh IAM unique id: `prefix` (`AROA` roles, `AIDA` users, `ANPA` policies) followed by
/// 17 characters of `[A-Z2-7]` (85 random bits).
pub fn generate_unique_id(prefix: &str) -> Result<String, Error> {
    prefixed_base32(prefix, UNIQUE_ID_RANDOM)
}

fn prefixed_base32(prefix: &str, random_chars: usize) -> Result<String, Error> {
    let mut random = vec![0u8; random_chars];
    aws_lc_rs::rand::fill(&mut random).map_err(|_| Error::Rng)?;
    let mut id = String::with_capacity(prefix.len() + random_chars);
    id.push_str(prefix);
    // 256 is a multiple of 32, so masking the low five bits is unbiased.
    id.extend(
        random
            .iter()
            .map(|b| char::from(BASE32[usize::from(b & 31)])),
    );
    Ok(id)
}

/// A fresh 40-character secret (240 random bits).
pub fn generate_secret_access_key() -> Result<SecretKey, Error> {
    let mut random = Zeroizing::new([0u8; SECRET_ACCESS_KEY_LEN]);
    aws_lc_rs::rand::fill(random.as_mut()).map_err(|_| Error::Rng)?;
    let mut secret = String::with_capacity(SECRET_ACCESS_KEY_LEN);
    // 256 is a multiple of 64, so masking the low six bits is unbiased.
    secret.extend(
        random
            .iter()
            .map(|b| char::from(BASE64[usize::from(b & 63)])),
    );
    Ok(SecretKey::new(secret))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn long_term_ids_and_unique_ids_have_iam_shapes() {
        let base32 = |s: &str| s.bytes().all(|b| BASE32.contains(&b));
        let key = generate_long_term_access_key_id().unwrap();
        assert!(key.starts_with("AKIA") && key.len() == ACCESS_KEY_ID_LEN && base32(&key));
        let role = generate_unique_id("AROA").unwrap();
        assert!(role.starts_with("AROA") && role.len() == 21 && base32(&role));
        assert_ne!(
            generate_unique_id("AIDA").unwrap(),
            generate_unique_id("AIDA").unwrap()
        );
    }

    #[test]
    fn access_key_id_has_the_sts_shape() {
        for _ in 0..200 {
            let id = generate_access_key_id().unwrap();
            assert_eq!(id.len(), ACCESS_KEY_ID_LEN);
            assert!(id.starts_with("ASIA"), "{id}");
            assert!(
                id[4..]
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)),
                "{id}"
            );
        }
    }

    #[test]
    fn secret_has_the_base64_alphabet_shape() {
        for _ in 0..200 {
            let secret = generate_secret_access_key().unwrap();
            let s = secret.expose();
            assert_eq!(s.len(), SECRET_ACCESS_KEY_LEN);
            assert!(
                s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/'),
                "{s}"
            );
        }
    }

    #[test]
    fn generated_values_do_not_repeat_and_use_the_whole_alphabet() {
        let ids: HashSet<String> = (0..500)
            .map(|_| generate_access_key_id().unwrap())
            .collect();
        assert_eq!(ids.len(), 500);
        let seen: HashSet<u8> = ids.iter().flat_map(|id| id.bytes().skip(4)).collect();
        assert_eq!(
            seen.len(),
            32,
            "every base32 character appears in 8000 draws"
        );
        let seen: HashSet<u8> = (0..200)
            .flat_map(|_| {
                generate_secret_access_key()
                    .unwrap()
                    .expose()
                    .bytes()
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(
            seen.len(),
            64,
            "every base64 character appears in 8000 draws"
        );
    }
}
