//! XML for IAM's output shapes, with the botocore member names (`Role`, `User`, `Policy`, tag
//! lists, `IsTruncated`/`Marker`). Lists are `<Name><member>…</member></Name>`.

use podid_aws::xml::XmlWriter;

use crate::domain::iam::catalog::{self, ManagedPolicy};
use crate::domain::iam::records::{PolicyRecord, RoleRecord, Tag, UserRecord, url_encode};

/// `Role` (GetRole, CreateRole, ListRoles members). ListRoles omits tags, as AWS does.
pub(super) fn role(w: &mut XmlWriter, element: &str, r: &RoleRecord, with_tags: bool) {
    w.open(element);
    w.leaf("Path", &r.path);
    w.leaf("RoleName", &r.name);
    w.leaf("RoleId", &r.role_id);
    w.leaf("Arn", &r.arn);
    w.leaf("CreateDate", &r.create_date);
    w.leaf(
        "AssumeRolePolicyDocument",
        &url_encode(&r.assume_role_policy),
    );
    w.leaf_opt("Description", r.description.as_deref());
    w.leaf("MaxSessionDuration", &r.max_session_duration.to_string());
    if with_tags {
        tags(w, &r.tags);
    }
    w.close(element);
}

/// `User`.
pub(super) fn user(w: &mut XmlWriter, element: &str, u: &UserRecord, with_tags: bool) {
    w.open(element);
    w.leaf("Path", &u.path);
    w.leaf("UserName", &u.name);
    w.leaf("UserId", &u.user_id);
    w.leaf("Arn", &u.arn);
    w.leaf("CreateDate", &u.create_date);
    if with_tags {
        tags(w, &u.tags);
    }
    w.close(element);
}

/// `Policy` for a customer managed policy.
pub(super) fn customer_policy(w: &mut XmlWriter, p: &PolicyRecord, attachments: usize) {
    w.open("Policy");
    w.leaf("PolicyName", &p.name);
    w.leaf("PolicyId", &p.policy_id);
    w.leaf("Arn", &p.arn);
    w.leaf("Path", &p.path);
    w.leaf("DefaultVersionId", catalog::VERSION_ID);
    w.leaf("AttachmentCount", &attachments.to_string());
    w.leaf("PermissionsBoundaryUsageCount", "0");
    w.leaf("IsAttachable", "true");
    w.leaf_opt("Description", p.description.as_deref());
    w.leaf("CreateDate", &p.create_date);
    w.leaf("UpdateDate", &p.create_date);
    tags(w, &p.tags);
    w.close("Policy");
}

/// `Policy` for an AWS managed (catalog) policy.
pub(super) fn aws_policy(w: &mut XmlWriter, p: &ManagedPolicy, attachments: usize) {
    w.open("Policy");
    w.leaf("PolicyName", p.name);
    w.leaf("PolicyId", &p.policy_id);
    w.leaf("Arn", &p.arn);
    w.leaf("Path", "/");
    w.leaf("DefaultVersionId", catalog::VERSION_ID);
    w.leaf("AttachmentCount", &attachments.to_string());
    w.leaf("PermissionsBoundaryUsageCount", "0");
    w.leaf("IsAttachable", "true");
    w.leaf("Description", p.description);
    w.leaf("CreateDate", catalog::CREATE_DATE);
    w.leaf("UpdateDate", catalog::CREATE_DATE);
    w.close("Policy");
}

/// `PolicyVersion` (GetPolicyVersion); `document` is the raw JSON text.
pub(super) fn policy_version(w: &mut XmlWriter, document: &str, create_date: &str) {
    w.open("PolicyVersion");
    w.leaf("Document", &url_encode(document));
    w.leaf("VersionId", catalog::VERSION_ID);
    w.leaf("IsDefaultVersion", "true");
    w.leaf("CreateDate", create_date);
    w.close("PolicyVersion");
}

/// `Tags` (a `tagListType`), omitted when empty.
pub(super) fn tags(w: &mut XmlWriter, tags: &[Tag]) {
    if tags.is_empty() {
        return;
    }
    tag_list(w, tags);
}

/// `Tags`, always present (ListRoleTags).
pub(super) fn tag_list(w: &mut XmlWriter, tags: &[Tag]) {
    w.open("Tags");
    for t in tags {
        w.open("member");
        w.leaf("Key", &t.key);
        w.leaf("Value", &t.value);
        w.close("member");
    }
    w.close("Tags");
}

/// `<element><member>s</member>…</element>`.
pub(super) fn strings<'a>(
    w: &mut XmlWriter,
    element: &str,
    items: impl IntoIterator<Item = &'a str>,
) {
    w.open(element);
    for s in items {
        w.leaf("member", s);
    }
    w.close(element);
}

/// `IsTruncated` and, when truncated, `Marker`.
pub(super) fn truncation(w: &mut XmlWriter, next: Option<&str>) {
    w.leaf("IsTruncated", if next.is_some() { "true" } else { "false" });
    w.leaf_opt("Marker", next);
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
