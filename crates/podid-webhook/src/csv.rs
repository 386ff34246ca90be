//! The first record of a comma-separated value, read the way Go's `encoding/csv` reads it with
//! its defaults (the reference parses `eks.amazonaws.com/skip-containers` so): fields may be
//! quoted with `"` (`""` inside is a quote), a bare `"` inside an unquoted field is an error,
//! spaces are kept, blank leading lines are skipped, and the record ends at a newline.

/// The first record's fields, or `None` when there is no record or it is malformed (the caller
/// then skips no container, as the reference does).
pub(crate) fn first_record(text: &str) -> Option<Vec<String>> {
    let text = text.trim_start_matches(['\r', '\n']);
    if text.is_empty() {
        return None;
    }
    let mut fields = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    '"' => break,
                    c => field.push(c),
                }
            }
            // After a closing quote only a separator or the end of the record may follow.
            match chars.next() {
                None | Some('\n') => {
                    fields.push(field);
                    return Some(fields);
                }
                Some('\r') if matches!(chars.peek(), None | Some('\n')) => {
                    fields.push(field);
                    return Some(fields);
                }
                Some(',') => fields.push(field),
                Some(_) => return None,
            }
        } else {
            loop {
                match chars.next() {
                    None | Some('\n') => {
                        fields.push(strip_cr(field));
                        return Some(fields);
                    }
                    Some(',') => {
                        fields.push(field);
                        break;
                    }
                    Some('"') => return None,
                    Some(c) => field.push(c),
                }
            }
        }
    }
}

fn strip_cr(mut field: String) -> String {
    if field.ends_with('\r') {
        field.pop();
    }
    field
}

#[cfg(test)]
mod tests {
    use super::first_record;

    fn rec(s: &str) -> Option<Vec<String>> {
        first_record(s)
    }

    #[test]
    fn plain_and_quoted_fields() {
        assert_eq!(rec("a"), Some(vec!["a".into()]));
        assert_eq!(rec("a,b"), Some(vec!["a".into(), "b".into()]));
        assert_eq!(rec("a, b"), Some(vec!["a".into(), " b".into()]));
        assert_eq!(rec("\"a,b\",c"), Some(vec!["a,b".into(), "c".into()]));
        assert_eq!(rec("\"a\"\"b\""), Some(vec!["a\"b".into()]));
        assert_eq!(rec("a,"), Some(vec!["a".into(), String::new()]));
        assert_eq!(rec("a,b\nc"), Some(vec!["a".into(), "b".into()]));
        assert_eq!(rec("\n\na\r\n"), Some(vec!["a".into()]));
    }

    #[test]
    fn malformed_values_give_nothing() {
        assert_eq!(rec(""), None);
        assert_eq!(rec("\n"), None);
        assert_eq!(rec("a\"b"), None);
        assert_eq!(rec("\"unterminated"), None);
        assert_eq!(rec("\"a\"b"), None);
    }
}
