//! Wildcard (`*`, `?`) matching over pre-tokenised patterns, and ARN matching.
//!
//! Patterns are split into tokens once, at parse time; a policy variable is a token
//! too, resolved during matching from a [`VarSource`] so that evaluation never
//! builds a substituted string. `*` matches any run of characters, `?` exactly one.

use crate::variables::{VarRef, VarSource};

/// One element of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    /// Literal text (compared case-sensitively or ASCII-case-insensitively).
    Lit(Box<str>),
    /// `*`: any run of characters, possibly empty.
    Star,
    /// `?`: exactly one character.
    One,
    /// `${key}` or `${key, 'default'}`: literal text taken from the request.
    Var(VarRef),
}

/// A compiled pattern: a token sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glob {
    toks: Box<[Tok]>,
}

impl Glob {
    pub(crate) fn from_toks(toks: Vec<Tok>) -> Self {
        Self {
            toks: toks.into_boxed_slice(),
        }
    }

    /// Every variable in this pattern resolves against `src`.
    pub(crate) fn resolvable(&self, src: &dyn VarSource) -> bool {
        self.toks.iter().all(|t| match t {
            Tok::Var(v) => v.resolve(src).is_some(),
            _ => true,
        })
    }

    /// Whether `text` matches. An unresolvable variable never matches.
    pub(crate) fn matches(&self, text: &str, ci: bool, src: &dyn VarSource) -> bool {
        match_toks(&self.toks, text, ci, src)
    }
}

/// Greedy glob match with a single backtrack point (the last `*` seen). This is
/// correct for `*`/`?` patterns because a later `*` can absorb anything an earlier
/// one could have, and it runs in O(len(pattern) * len(text)) worst case with no
/// allocation.
fn match_toks(toks: &[Tok], text: &str, ci: bool, src: &dyn VarSource) -> bool {
    let bytes = text.as_bytes();
    let mut t = 0usize;
    let mut p = 0usize;
    let mut backtrack: Option<(usize, usize)> = None;
    loop {
        let step = match toks.get(t) {
            None => {
                if p == bytes.len() {
                    return true;
                }
                None
            }
            Some(Tok::Star) => {
                backtrack = Some((t + 1, p));
                t += 1;
                continue;
            }
            Some(Tok::One) => text
                .get(p..)
                .and_then(|s| s.chars().next())
                .map(char::len_utf8),
            Some(Tok::Lit(lit)) => lit_at(bytes, p, lit, ci),
            Some(Tok::Var(v)) => v.resolve(src).and_then(|val| lit_at(bytes, p, val, ci)),
        };
        if let Some(n) = step {
            t += 1;
            p += n;
            continue;
        }
        // Mismatch: let the last `*` absorb one more character and retry.
        let Some((bt, bp)) = backtrack else {
            return false;
        };
        let Some(c) = text.get(bp..).and_then(|s| s.chars().next()) else {
            return false;
        };
        let np = bp + c.len_utf8();
        backtrack = Some((bt, np));
        t = bt;
        p = np;
    }
}

/// If `lit` occurs in `bytes` at `p`, its byte length. ASCII case folding keeps byte
/// lengths and char boundaries, so the returned end is always a char boundary.
fn lit_at(bytes: &[u8], p: usize, lit: &str, ci: bool) -> Option<usize> {
    let end = p.checked_add(lit.len())?;
    let here = bytes.get(p..end)?;
    let same = if ci {
        here.eq_ignore_ascii_case(lit.as_bytes())
    } else {
        here == lit.as_bytes()
    };
    same.then_some(lit.len())
}

/// Number of colon-separated ARN fields: `arn:partition:service:region:account:resource`.
const ARN_FIELDS: usize = 6;

/// An ARN pattern, matched field by field as IAM does: wildcards in the first five
/// fields stay inside their field; in the resource field `*` also spans `/` and `:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ArnPattern {
    /// `*`: matches any resource, ARN or not.
    Any,
    /// Six compiled fields.
    Fields(Box<[Glob; ARN_FIELDS]>),
}

impl ArnPattern {
    /// Builds from per-field token lists; `None` unless there are exactly six fields.
    pub(crate) fn from_fields(fields: Vec<Vec<Tok>>) -> Option<Self> {
        let globs: Vec<Glob> = fields.into_iter().map(Glob::from_toks).collect();
        let arr: Box<[Glob; ARN_FIELDS]> = globs.into_boxed_slice().try_into().ok()?;
        Some(Self::Fields(arr))
    }

    pub(crate) fn resolvable(&self, src: &dyn VarSource) -> bool {
        match self {
            Self::Any => true,
            Self::Fields(f) => f.iter().all(|g| g.resolvable(src)),
        }
    }

    /// Case-sensitive, field-wise match of `arn`. A text that is not a six-field ARN
    /// matches only [`ArnPattern::Any`].
    pub(crate) fn matches(&self, arn: &str, src: &dyn VarSource) -> bool {
        let fields = match self {
            Self::Any => return true,
            Self::Fields(f) => f,
        };
        let mut parts = arn.splitn(ARN_FIELDS, ':');
        fields.iter().all(|glob| {
            parts
                .next()
                .is_some_and(|part| glob.matches(part, false, src))
        })
    }
}

/// Splits `s` on `*` and `?` into tokens (no variables). With `wild == false` the
/// whole string is one literal.
pub(crate) fn tokenize_plain(s: &str, wild: bool, out: &mut Vec<Tok>) {
    if !wild {
        if !s.is_empty() {
            out.push(Tok::Lit(s.into()));
        }
        return;
    }
    let mut lit_start = 0usize;
    for (i, c) in s.char_indices() {
        if c == '*' || c == '?' {
            if let Some(lit) = s.get(lit_start..i).filter(|l| !l.is_empty()) {
                out.push(Tok::Lit(lit.into()));
            }
            // Consecutive stars are one star; keeping one makes matching cheaper.
            if c == '?' {
                out.push(Tok::One);
            } else if out.last() != Some(&Tok::Star) {
                out.push(Tok::Star);
            }
            lit_start = i + 1;
        }
    }
    if let Some(lit) = s.get(lit_start..).filter(|l| !l.is_empty()) {
        out.push(Tok::Lit(lit.into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::variables::NoVars;

    fn glob(s: &str) -> Glob {
        let mut v = Vec::new();
        tokenize_plain(s, true, &mut v);
        Glob::from_toks(v)
    }

    #[test]
    fn hostile_patterns_terminate_and_refuse() {
        let text = "a".repeat(5000);
        let pat = format!("{}b", "*a".repeat(200));
        assert!(!glob(&pat).matches(&text, false, &NoVars));
        assert!(!glob("?").matches("", false, &NoVars));
        assert!(!glob("??").matches("é", false, &NoVars));
        assert!(glob("?").matches("é", false, &NoVars));
    }

    #[test]
    fn glob_basics() {
        let cases = [
            ("*", "", true),
            ("*", "anything", true),
            ("s3:Get*", "s3:GetObject", true),
            ("s3:Get*", "s3:PutObject", false),
            ("s3:*Object", "s3:GetObject", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXbY", false),
            ("a?c", "abc", true),
            ("a?c", "abbc", false),
            ("**", "x", true),
            ("a*", "a", true),
            ("*a", "ba", true),
            ("exact", "exact", true),
            ("exact", "exactly", false),
        ];
        for (p, t, want) in cases {
            assert_eq!(glob(p).matches(t, false, &NoVars), want, "{p} vs {t}");
        }
        assert!(glob("S3:get*").matches("s3:GetObject", true, &NoVars));
        assert!(!glob("S3:get*").matches("s3:GetObject", false, &NoVars));
    }

    #[test]
    fn double_star_collapses() {
        let mut v = Vec::new();
        tokenize_plain("a**b", true, &mut v);
        assert_eq!(
            v,
            vec![Tok::Lit("a".into()), Tok::Star, Tok::Lit("b".into())]
        );
    }
}
