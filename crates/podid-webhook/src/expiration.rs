//! The projected token's `expirationSeconds`: the reference webhook's precedence (pod annotation,
//! then service-account annotation, then the configured default), its 600-second floor, and the
//! jitter it applies to the 24-hour default for Pod Identity only (wire reference §2.2).

use std::collections::BTreeMap;

/// The annotation, on a pod or a service account, that sets the token lifetime in seconds.
pub const TOKEN_EXPIRATION_ANNOTATION: &str = "eks.amazonaws.com/token-expiration";

/// The reference's default lifetime (`pkg.DefaultTokenExpiration`): EKS's 24-hour maximum.
pub const DEFAULT_TOKEN_EXPIRATION: i64 = 86_400;

/// The kube-apiserver refuses projected tokens shorter than ten minutes, so shorter requests are
/// raised to this (`pkg.ValidateMinTokenExpiration`).
pub const MIN_TOKEN_EXPIRATION: i64 = 600;

/// Lower end of the jitter range (`pkg.DefaultMinTokenExpiration`, 22 hours): spreading the
/// default lifetime over [22 h, 24 h] keeps pods created together from refreshing together.
pub const JITTER_FLOOR: i64 = 79_200;

/// How the 24-hour default is spread. [`Jitter::Random`] in production; tests fix the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// Uniform over `[JITTER_FLOOR, DEFAULT_TOKEN_EXPIRATION]`, like the reference.
    Random,
    /// Always this value (clamped into the jitter range), for deterministic tests.
    Fixed(i64),
}

impl Jitter {
    fn pick(self) -> i64 {
        match self {
            Self::Random => {
                use rand::Rng as _;
                rand::rng().random_range(JITTER_FLOOR..=DEFAULT_TOKEN_EXPIRATION)
            }
            Self::Fixed(v) => v.clamp(JITTER_FLOOR, DEFAULT_TOKEN_EXPIRATION),
        }
    }
}

/// The lifetime for a Pod Identity token: the pod's annotation if it parses, else the service
/// account's if known and it parses, else `default`; at least [`MIN_TOKEN_EXPIRATION`]; and
/// jittered when the result is exactly [`DEFAULT_TOKEN_EXPIRATION`], whatever set it (the
/// reference compares the value, not its source).
pub fn token_expiration(
    pod_annotations: Option<&BTreeMap<String, String>>,
    service_account_annotations: Option<&BTreeMap<String, String>>,
    default: i64,
    jitter: Jitter,
) -> i64 {
    let from = |annotations: Option<&BTreeMap<String, String>>| {
        annotations
            .and_then(|a| a.get(TOKEN_EXPIRATION_ANNOTATION))
            // Unparsable values are ignored, as the reference does (it logs and falls back).
            .and_then(|v| v.parse::<i64>().ok())
            .map(at_least_minimum)
    };
    let seconds = from(pod_annotations)
        .or_else(|| from(service_account_annotations))
        .unwrap_or_else(|| at_least_minimum(default));
    if seconds == DEFAULT_TOKEN_EXPIRATION {
        jitter.pick()
    } else {
        seconds
    }
}

fn at_least_minimum(seconds: i64) -> i64 {
    seconds.max(MIN_TOKEN_EXPIRATION)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(v: &str) -> BTreeMap<String, String> {
        [(TOKEN_EXPIRATION_ANNOTATION.to_owned(), v.to_owned())].into()
    }

    const J: Jitter = Jitter::Fixed(80_000);

    #[test]
    fn pod_beats_service_account_beats_default() {
        assert_eq!(
            token_expiration(Some(&ann("3600")), Some(&ann("7200")), 86_400, J),
            3600
        );
        assert_eq!(token_expiration(None, Some(&ann("7200")), 86_400, J), 7200);
        assert_eq!(token_expiration(None, None, 43_200, J), 43_200);
    }

    #[test]
    fn unparsable_values_fall_through() {
        assert_eq!(
            token_expiration(Some(&ann("1h")), Some(&ann("7200")), 86_400, J),
            7200
        );
        assert_eq!(token_expiration(Some(&ann("")), None, 43_200, J), 43_200);
    }

    #[test]
    fn short_lifetimes_are_raised_to_ten_minutes() {
        assert_eq!(token_expiration(Some(&ann("10")), None, 86_400, J), 600);
        assert_eq!(token_expiration(Some(&ann("-5")), None, 86_400, J), 600);
        assert_eq!(token_expiration(None, Some(&ann("599")), 86_400, J), 600);
        assert_eq!(token_expiration(None, None, 1, J), 600);
    }

    #[test]
    fn only_the_24_hour_value_is_jittered() {
        assert_eq!(token_expiration(None, None, 86_400, J), 80_000);
        assert_eq!(token_expiration(Some(&ann("86400")), None, 3600, J), 80_000);
        assert_eq!(token_expiration(Some(&ann("86399")), None, 3600, J), 86_399);
        assert_eq!(
            token_expiration(None, None, 86_400, Jitter::Fixed(1)),
            JITTER_FLOOR
        );
        for _ in 0..200 {
            let v = token_expiration(None, None, 86_400, Jitter::Random);
            assert!((JITTER_FLOOR..=DEFAULT_TOKEN_EXPIRATION).contains(&v));
        }
    }
}
