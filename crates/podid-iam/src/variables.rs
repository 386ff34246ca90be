//! Policy variables: `${key}`, `${key, 'default'}` and the escapes `${*}`, `${?}`, `${$}`.
//!
//! Variables exist only in Version 2012-10-17 documents and only in Resource and in
//! string/ARN condition values (AWS "IAM policy elements: Variables and tags"). They
//! are tokenised at parse time; the value comes from the request at match time. A
//! key missing from the request (with no default), or bound to several values, makes
//! the element it sits in not match.

use crate::wildcard::{ArnPattern, Tok, tokenize_plain};

/// Where variable values come from: the request context, by lowercase key.
pub(crate) trait VarSource {
    /// The single value of `key_lower`; `None` when absent or multi-valued.
    fn var(&self, key_lower: &str) -> Option<&str>;
}

/// A source with no values, for tests of patterns without variables.
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct NoVars;

#[cfg(test)]
impl VarSource for NoVars {
    fn var(&self, _key_lower: &str) -> Option<&str> {
        None
    }
}

/// A reference to a request value, as written in the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VarRef {
    /// Lowercased key; `None` for a malformed variable, which never resolves.
    key: Option<Box<str>>,
    default: Option<Box<str>>,
}

impl VarRef {
    /// The substituted text, or `None` when the variable cannot be resolved.
    pub(crate) fn resolve<'a>(&'a self, src: &'a dyn VarSource) -> Option<&'a str> {
        let key = self.key.as_deref()?;
        src.var(key).or(self.default.as_deref())
    }
}

/// Tokenises a policy string. With `vars`, `${...}` become variables or escapes;
/// with `wild`, `*` and `?` outside variables are wildcards.
pub(crate) fn tokenize(s: &str, vars: bool, wild: bool) -> Vec<Tok> {
    let mut out = Vec::new();
    if !vars {
        tokenize_plain(s, wild, &mut out);
        return out;
    }
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        let (before, after) = rest.split_at(start);
        tokenize_plain(before, wild, &mut out);
        let inner_and_more = after.get(2..).unwrap_or_default();
        let Some(close) = inner_and_more.find('}') else {
            // "${foo" never closes: AWS fails the substitution, so it never matches.
            out.push(Tok::Var(VarRef {
                key: None,
                default: None,
            }));
            return out;
        };
        let inner = inner_and_more.get(..close).unwrap_or_default();
        out.push(parse_inner(inner));
        rest = inner_and_more.get(close + 1..).unwrap_or_default();
    }
    tokenize_plain(rest, wild, &mut out);
    out
}

/// Compiles an ARN pattern (Resource element, Arn* condition values): `"*"`, or six
/// colon-separated fields. Colons inside `${...}` do not split fields. `None` when the
/// text is neither.
pub(crate) fn arn_pattern(s: &str, vars: bool) -> Option<ArnPattern> {
    if s == "*" {
        return Some(ArnPattern::Any);
    }
    let mut fields = Vec::with_capacity(6);
    let mut start = 0usize;
    let mut in_var = false;
    let mut prev = '\0';
    for (i, c) in s.char_indices() {
        match c {
            '{' if vars && prev == '$' => in_var = true,
            '}' => in_var = false,
            ':' if !in_var && fields.len() < 5 => {
                fields.push(tokenize(s.get(start..i)?, vars, true));
                start = i + 1;
            }
            _ => {}
        }
        prev = c;
    }
    fields.push(tokenize(s.get(start..)?, vars, true));
    ArnPattern::from_fields(fields)
}

/// Parses what sits between `${` and `}`.
fn parse_inner(inner: &str) -> Tok {
    match inner {
        "*" | "?" | "$" => return Tok::Lit(inner.into()),
        _ => {}
    }
    let broken = Tok::Var(VarRef {
        key: None,
        default: None,
    });
    let (key, default) = match inner.split_once(',') {
        None => (inner.trim(), None),
        Some((k, d)) => match parse_default(d.trim()) {
            Some(d) => (k.trim(), Some(d.into_boxed_str())),
            None => return broken,
        },
    };
    if key.is_empty() || key.chars().any(char::is_whitespace) {
        return broken;
    }
    Tok::Var(VarRef {
        key: Some(key.to_ascii_lowercase().into_boxed_str()),
        default,
    })
}

/// `'text'` with `''` standing for one quote; `None` when not properly quoted.
fn parse_default(d: &str) -> Option<String> {
    let body = d.strip_prefix('\'')?.strip_suffix('\'')?;
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c == '\'' {
            // A lone quote inside the body ends the literal early: malformed.
            if chars.next() != Some('\'') {
                return None;
            }
        }
        out.push(c);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct One(&'static str, &'static str);
    impl VarSource for One {
        fn var(&self, key_lower: &str) -> Option<&str> {
            (key_lower == self.0).then_some(self.1)
        }
    }

    fn resolved(toks: &[Tok], src: &dyn VarSource) -> Option<String> {
        let mut s = String::new();
        for t in toks {
            match t {
                Tok::Lit(l) => s.push_str(l),
                Tok::Star => s.push('*'),
                Tok::One => s.push('?'),
                Tok::Var(v) => s.push_str(v.resolve(src)?),
            }
        }
        Some(s)
    }

    #[test]
    fn malformed_variables_never_resolve() {
        let src = One("aws:username", "bob");
        for bad in [
            "${aws:username",
            "${}",
            "${ }",
            "${aws:user name}",
            "${k, nope}",
            "${k, 'x}",
            "${k, 'a'b'}",
        ] {
            assert_eq!(resolved(&tokenize(bad, true, true), &src), None, "{bad}");
        }
    }

    #[test]
    fn variables_escapes_and_defaults() {
        let src = One("aws:username", "bob");
        let r = |s: &str| resolved(&tokenize(s, true, false), &src);
        assert_eq!(r("home/${aws:username}/x").as_deref(), Some("home/bob/x"));
        assert_eq!(r("${AWS:UserName}").as_deref(), Some("bob"));
        assert_eq!(r("${ aws:username , 'dflt' }").as_deref(), Some("bob"));
        assert_eq!(
            r("${aws:PrincipalTag/team, 'none'}").as_deref(),
            Some("none")
        );
        assert_eq!(r("${k, 'it''s'}").as_deref(), Some("it's"));
        assert_eq!(r("${*}${?}${$}").as_deref(), Some("*?$"));
        assert_eq!(r("${aws:PrincipalTag/team}"), None);
        assert_eq!(r("$aws"), Some("$aws".into()));
    }

    #[test]
    fn escapes_are_literal_not_wildcards() {
        assert_eq!(
            tokenize("a${*}", true, true),
            vec![Tok::Lit("a".into()), Tok::Lit("*".into())]
        );
        assert_eq!(
            tokenize("a*", true, true),
            vec![Tok::Lit("a".into()), Tok::Star]
        );
    }

    #[test]
    fn version_2008_keeps_text_literal() {
        assert_eq!(
            tokenize("${aws:username}", false, false),
            vec![Tok::Lit("${aws:username}".into())]
        );
    }
}
