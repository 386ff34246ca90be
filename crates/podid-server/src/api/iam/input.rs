//! Reading and checking IAM request parameters against the botocore shapes' constraints.

use crate::protocol::query::QueryError;

use super::errors::{invalid_input, validation};
use crate::domain::iam::records::Tag;
use crate::protocol::query::QueryRequest;

/// `maxItemsType`: 1..=1000; IAM's default page is 100.
const DEFAULT_MAX_ITEMS: usize = 100;
const MAX_MAX_ITEMS: usize = 1000;
/// `tagListType` max 50 (AWS: 50 tags per role or user).
const MAX_TAGS: usize = 50;
/// `roleDescriptionType` / `policyDescriptionType` max 1000.
const MAX_DESCRIPTION: usize = 1000;
/// `pathType` max 512.
const MAX_PATH: usize = 512;

/// `[\w+=,.@-]+` (roleNameType, userNameType, policyNameType) with `max` characters.
pub(in crate::api) fn name<'a>(
    q: &'a QueryRequest,
    param: &str,
    max: usize,
) -> Result<&'a str, QueryError> {
    let v = q.require(param)?;
    check_name(v, &member(param), max)?;
    Ok(v)
}

pub(super) fn check_name(v: &str, member: &str, max: usize) -> Result<(), QueryError> {
    if v.is_empty() || v.chars().count() > max {
        return Err(validation(
            v,
            member,
            &format!("Member must have length less than or equal to {max}"),
        ));
    }
    let ok = |c: char| c.is_alphanumeric() || matches!(c, '_' | '+' | '=' | ',' | '.' | '@' | '-');
    if !v.chars().all(ok) {
        return Err(validation(
            v,
            member,
            "Member must satisfy regular expression pattern: [\\w+=,.@-]+",
        ));
    }
    Ok(())
}

/// `Path` (default `/`): `/` or `/…/` of printable ASCII, at most 512 characters.
pub(in crate::api) fn path(q: &QueryRequest) -> Result<String, QueryError> {
    let Some(p) = q.get("Path") else {
        return Ok("/".into());
    };
    let printable = p.bytes().all(|b| (0x21..=0x7e).contains(&b));
    if p.len() > MAX_PATH
        || !printable
        || !p.starts_with('/')
        || !p.ends_with('/')
        || p.contains("//")
    {
        return Err(validation(
            p,
            "path",
            "Member must satisfy regular expression pattern: (\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F)",
        ));
    }
    Ok(p.to_owned())
}

pub(in crate::api) fn description(q: &QueryRequest) -> Result<Option<String>, QueryError> {
    match q.get("Description") {
        Some(d) if d.chars().count() > MAX_DESCRIPTION => Err(validation(
            d,
            "description",
            &format!("Member must have length less than or equal to {MAX_DESCRIPTION}"),
        )),
        d => Ok(d.map(str::to_owned)),
    }
}

/// `Tags.member.N.{Key,Value}`.
pub(in crate::api) fn tags(q: &QueryRequest) -> Result<Vec<Tag>, QueryError> {
    let raw = q.struct_list("Tags");
    if raw.len() > MAX_TAGS {
        return Err(validation(
            "tags",
            "tags",
            &format!("Member must have length less than or equal to {MAX_TAGS}"),
        ));
    }
    let mut tags: Vec<Tag> = Vec::with_capacity(raw.len());
    for fields in raw {
        let get = |n: &str| {
            fields
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| (*v).to_owned())
        };
        let key = get("Key").ok_or_else(|| invalid_input("Tag keys must not be null."))?;
        if key.is_empty() || key.chars().count() > 128 {
            return Err(validation(
                &key,
                "tags.member.key",
                "Member must have length less than or equal to 128",
            ));
        }
        let value = get("Value").unwrap_or_default();
        if value.chars().count() > 256 {
            return Err(validation(
                &value,
                "tags.member.value",
                "Member must have length less than or equal to 256",
            ));
        }
        if tags.iter().any(|t| t.key.eq_ignore_ascii_case(&key)) {
            return Err(invalid_input(
                "Duplicate tag keys found. Please note that Tag keys are case insensitive.",
            ));
        }
        tags.push(Tag { key, value });
    }
    Ok(tags)
}

/// A page of `items` starting at `marker` (an item of the list, as issued by this server).
pub(super) fn page<T: Clone>(
    items: &[T],
    key: impl Fn(&T) -> &str,
    marker: Option<&str>,
    max: usize,
) -> (Vec<T>, Option<String>) {
    let start = marker.map_or(0, |m| {
        items
            .iter()
            .position(|i| key(i) == m)
            .unwrap_or(items.len())
    });
    let rest = items.get(start..).unwrap_or_default();
    let page: Vec<T> = rest.iter().take(max).cloned().collect();
    let next = rest.get(max).map(|i| key(i).to_owned());
    (page, next)
}

/// `Marker` (the first name of the page, as this server issues it) and `MaxItems`.
pub(in crate::api) fn paging(q: &QueryRequest) -> Result<(Option<String>, usize), QueryError> {
    let max = match q.get("MaxItems") {
        None => DEFAULT_MAX_ITEMS,
        Some(m) => match m.parse::<usize>() {
            Ok(n) if (1..=MAX_MAX_ITEMS).contains(&n) => n,
            _ => {
                return Err(validation(
                    m,
                    "maxItems",
                    "Member must have value between 1 and 1000",
                ));
            }
        },
    };
    Ok((q.get("Marker").map(str::to_owned), max))
}

/// `roleName` for validation messages.
fn member(param: &str) -> String {
    let mut c = param.chars();
    c.next()
        .map(|f| f.to_lowercase().chain(c).collect())
        .unwrap_or_default()
}
