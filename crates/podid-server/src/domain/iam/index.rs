//! The in-memory IAM index: every `iam/` record, with its policy documents parsed once when the
//! record arrives, so lookups on the credential and authorization paths never parse or touch
//! the store. Fed only by [`crate::follow`] through [`IamIndex`]. Access-key records are stored
//! sealed ([`crate::domain::secrets`]) and opened here, once, as they arrive.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use parking_lot::RwLock;
use podid_iam::Policy;
use podid_store::{Event, KeyValue};

use super::catalog::{Catalog, ManagedPolicy};
use super::records::{self, KeyRecord, PolicyRecord, RoleRecord, UserRecord};
use crate::domain::secrets::Secrets;
use crate::state::Index;

/// An access key as the resolver needs it. `Debug` never prints the secret.
#[derive(Clone)]
pub(crate) struct AccessKeyRecord {
    pub(crate) user_name: String,
    pub(crate) secret_access_key: podid_issuer::SecretKey,
    pub(crate) active: bool,
}

impl fmt::Debug for AccessKeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessKeyRecord")
            .field("user_name", &self.user_name)
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

/// What the credential path needs of a role.
#[derive(Debug, Clone)]
pub(crate) struct RoleView {
    pub(crate) name: String,
    pub(crate) arn: String,
    pub(crate) role_id: String,
    pub(crate) max_session_duration_secs: u32,
    pub(crate) trust_policy: Policy,
    pub(crate) tags: Vec<(String, String)>,
}

/// A record plus its parsed documents.
#[derive(Debug)]
pub(crate) struct Entry<R> {
    pub(crate) record: R,
    /// Inline policies that parsed (all do, unless the store was edited by hand).
    pub(crate) inline: Vec<(String, Policy)>,
    /// The trust policy (roles) or the managed document (customer policies).
    pub(crate) document: Option<Policy>,
}

#[derive(Debug, Default)]
struct Tables {
    roles: BTreeMap<String, Arc<Entry<RoleRecord>>>,
    users: BTreeMap<String, Arc<Entry<UserRecord>>>,
    policies: BTreeMap<String, Arc<Entry<PolicyRecord>>>,
    keys: BTreeMap<String, Arc<KeyRecord>>,
}

/// The in-memory IAM index plus the AWS managed-policy catalog.
#[derive(Debug, Default)]
pub(crate) struct Iam {
    catalog: Catalog,
    tables: RwLock<Tables>,
}

/// A policy a principal holds, named as SimulatePrincipalPolicy reports it.
#[derive(Debug, Clone)]
pub(crate) struct NamedPolicy {
    pub(crate) source_id: String,
    pub(crate) policy: Policy,
}

impl Iam {
    pub(crate) fn access_key(&self, access_key_id: &str) -> Option<AccessKeyRecord> {
        let t = self.tables.read();
        let k = t.keys.get(access_key_id)?;
        Some(AccessKeyRecord {
            user_name: k.user_name.clone(),
            secret_access_key: k.secret_access_key.clone(),
            active: k.status == "Active",
        })
    }

    pub(crate) fn role(&self, name: &str) -> Option<RoleView> {
        let r = self.role_entry(name)?;
        Some(RoleView {
            name: r.record.name.clone(),
            arn: r.record.arn.clone(),
            role_id: r.record.role_id.clone(),
            max_session_duration_secs: r.record.max_session_duration,
            trust_policy: r.document.clone()?,
            tags: r
                .record
                .tags
                .iter()
                .map(|t| (t.key.clone(), t.value.clone()))
                .collect(),
        })
    }

    /// Inline and attached managed policies of a user.
    pub(crate) fn user_policies(&self, user_name: &str) -> Vec<Policy> {
        self.named_user_policies(user_name)
            .into_iter()
            .map(|p| p.policy)
            .collect()
    }

    /// The user's ARN and unique id (AIDA...), if the user exists.
    pub(crate) fn user_identity(&self, user_name: &str) -> Option<(String, String)> {
        let u = self.user_entry(user_name)?;
        Some((u.record.arn.clone(), u.record.user_id.clone()))
    }

    pub(crate) fn named_user_policies(&self, name: &str) -> Vec<NamedPolicy> {
        match self.user_entry(name) {
            Some(u) => self.named(&u.inline, &u.record.attached),
            None => Vec::new(),
        }
    }

    /// The policies of the role a session was issued for: none when the role named `role_name`
    /// no longer exists or is a different role of that name (its unique id is not `role_id`).
    /// AWS binds a session to the role's unique id, so a recreated role's permissions never
    /// reach sessions of the deleted one.
    pub(crate) fn session_role_policies(&self, role_name: &str, role_id: &str) -> Vec<Policy> {
        match self.role_entry(role_name) {
            Some(r) if r.record.role_id == role_id => self
                .named(&r.inline, &r.record.attached)
                .into_iter()
                .map(|p| p.policy)
                .collect(),
            _ => Vec::new(),
        }
    }

    pub(crate) fn named_role_policies(&self, name: &str) -> Vec<NamedPolicy> {
        match self.role_entry(name) {
            Some(r) => self.named(&r.inline, &r.record.attached),
            None => Vec::new(),
        }
    }

    fn named(&self, inline: &[(String, Policy)], attached: &[String]) -> Vec<NamedPolicy> {
        let mut out: Vec<NamedPolicy> = inline
            .iter()
            .map(|(n, p)| NamedPolicy {
                source_id: n.clone(),
                policy: p.clone(),
            })
            .collect();
        // An attachment whose policy was deleted concurrently is skipped, not an error.
        out.extend(attached.iter().filter_map(|arn| self.managed_policy(arn)));
        out
    }

    /// An attachable managed policy (catalog or customer) by ARN, named by its policy name.
    pub(crate) fn managed_policy(&self, arn: &str) -> Option<NamedPolicy> {
        if let Some(m) = self.catalog.get(arn) {
            return Some(NamedPolicy {
                source_id: m.name.to_owned(),
                policy: m.policy.clone(),
            });
        }
        let p = self.customer_policy(arn)?;
        Some(NamedPolicy {
            source_id: p.record.name.clone(),
            policy: p.document.clone()?,
        })
    }

    pub(crate) fn catalog_policy(&self, arn: &str) -> Option<&ManagedPolicy> {
        self.catalog.get(arn)
    }

    pub(crate) fn role_entry(&self, name: &str) -> Option<Arc<Entry<RoleRecord>>> {
        self.tables.read().roles.get(name).cloned()
    }

    pub(crate) fn user_entry(&self, name: &str) -> Option<Arc<Entry<UserRecord>>> {
        self.tables.read().users.get(name).cloned()
    }

    pub(crate) fn key_entry(&self, id: &str) -> Option<Arc<KeyRecord>> {
        self.tables.read().keys.get(id).cloned()
    }

    /// A customer managed policy by ARN (`arn:aws:iam::<acct>:policy<path><name>`).
    pub(crate) fn customer_policy(&self, arn: &str) -> Option<Arc<Entry<PolicyRecord>>> {
        let name = arn.rsplit('/').next()?;
        self.tables
            .read()
            .policies
            .get(name)
            .filter(|p| p.record.arn == arn)
            .cloned()
    }

    /// Whether a name is taken ignoring case (IAM names are case-insensitively unique).
    pub(crate) fn name_taken(&self, kind: Table, name: &str) -> bool {
        let t = self.tables.read();
        let same = |k: &String| k.eq_ignore_ascii_case(name);
        match kind {
            Table::Role => t.roles.keys().any(same),
            Table::User => t.users.keys().any(same),
            Table::Policy => t.policies.keys().any(same),
        }
    }

    /// Roles and users attached to a managed policy.
    pub(crate) fn attachment_count(&self, arn: &str) -> usize {
        let t = self.tables.read();
        let roles = t
            .roles
            .values()
            .filter(|r| r.record.attached.iter().any(|a| a == arn))
            .count();
        let users = t
            .users
            .values()
            .filter(|u| u.record.attached.iter().any(|a| a == arn))
            .count();
        roles + users
    }

    /// One page of roles whose path starts with `prefix`, from name `marker` on; plus the next
    /// page's first name, if any.
    pub(crate) fn roles_page(
        &self,
        prefix: &str,
        marker: Option<&str>,
        max: usize,
    ) -> (Vec<RoleRecord>, Option<String>) {
        let t = self.tables.read();
        page(&t.roles, marker, max, |r| {
            r.record.path.starts_with(prefix).then(|| r.record.clone())
        })
    }

    pub(crate) fn users_page(
        &self,
        prefix: &str,
        marker: Option<&str>,
        max: usize,
    ) -> (Vec<UserRecord>, Option<String>) {
        let t = self.tables.read();
        page(&t.users, marker, max, |u| {
            u.record.path.starts_with(prefix).then(|| u.record.clone())
        })
    }

    fn load(&self, kvs: &[KeyValue], secrets: &Secrets) {
        let mut t = Tables::default();
        for built in kvs.iter().filter_map(|kv| Built::from_kv(kv, secrets)) {
            t.insert(built);
        }
        *self.tables.write() = t;
    }
}

/// Which table a name belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    Role,
    User,
    Policy,
}

fn page<E, T>(
    map: &BTreeMap<String, E>,
    marker: Option<&str>,
    max: usize,
    keep: impl Fn(&E) -> Option<T>,
) -> (Vec<T>, Option<String>) {
    let range = match marker {
        Some(m) => map.range::<str, _>((std::ops::Bound::Included(m), std::ops::Bound::Unbounded)),
        None => map.range::<str, _>(..),
    };
    let mut out = Vec::new();
    for (name, e) in range {
        let Some(item) = keep(e) else { continue };
        if out.len() == max {
            return (out, Some(name.clone()));
        }
        out.push(item);
    }
    (out, None)
}

/// A decoded record with its documents parsed, built before the index lock is taken.
enum Built {
    Role(String, Entry<RoleRecord>),
    User(String, Entry<UserRecord>),
    Policy(String, Entry<PolicyRecord>),
    Key(String, KeyRecord),
}

impl Built {
    fn from_kv(kv: &KeyValue, secrets: &Secrets) -> Option<Self> {
        let key = kv.key.as_str();
        if let Some(name) = key.strip_prefix(records::ROLE_PREFIX) {
            let r = decode::<RoleRecord>(kv)?;
            let document = parse(&r.name, &r.assume_role_policy);
            let inline = parse_inline(&r.name, &r.inline_policies);
            Some(Self::Role(
                name.to_owned(),
                Entry {
                    record: r,
                    inline,
                    document,
                },
            ))
        } else if let Some(name) = key.strip_prefix(records::USER_PREFIX) {
            let u = decode::<UserRecord>(kv)?;
            let inline = parse_inline(&u.name, &u.inline_policies);
            Some(Self::User(
                name.to_owned(),
                Entry {
                    record: u,
                    inline,
                    document: None,
                },
            ))
        } else if let Some(name) = key.strip_prefix(records::POLICY_PREFIX) {
            let p = decode::<PolicyRecord>(kv)?;
            let document = parse(&p.name, &p.document);
            Some(Self::Policy(
                name.to_owned(),
                Entry {
                    record: p,
                    inline: Vec::new(),
                    document,
                },
            ))
        } else {
            let id = key.strip_prefix(records::KEY_PREFIX)?;
            Some(Self::Key(id.to_owned(), open_key(kv, secrets)?))
        }
    }
}

impl Tables {
    fn insert(&mut self, built: Built) {
        match built {
            Built::Role(n, e) => drop(self.roles.insert(n, Arc::new(e))),
            Built::User(n, e) => drop(self.users.insert(n, Arc::new(e))),
            Built::Policy(n, e) => drop(self.policies.insert(n, Arc::new(e))),
            Built::Key(id, k) => drop(self.keys.insert(id, Arc::new(k))),
        }
    }

    fn delete(&mut self, key: &str) {
        if let Some(name) = key.strip_prefix(records::ROLE_PREFIX) {
            self.roles.remove(name);
        } else if let Some(name) = key.strip_prefix(records::USER_PREFIX) {
            self.users.remove(name);
        } else if let Some(name) = key.strip_prefix(records::POLICY_PREFIX) {
            self.policies.remove(name);
        } else if let Some(id) = key.strip_prefix(records::KEY_PREFIX) {
            self.keys.remove(id);
        }
    }
}

fn decode<T: serde::de::DeserializeOwned>(kv: &KeyValue) -> Option<T> {
    match serde_json::from_slice(&kv.value) {
        Ok(v) => Some(v),
        Err(error) => {
            tracing::error!(key = %kv.key, %error, "skipping an unreadable stored IAM record");
            None
        }
    }
}

/// An access-key record: opened with the KEKs, then decoded. The plaintext buffer is wiped on
/// return; the secret lives on only inside the record's zeroizing `SecretKey`.
fn open_key(kv: &KeyValue, secrets: &Secrets) -> Option<KeyRecord> {
    let plaintext = match secrets.open(kv) {
        Ok(plaintext) => plaintext,
        Err(error) => {
            tracing::error!(key = %kv.key, %error, "skipping a stored access key that does not open");
            return None;
        }
    };
    match serde_json::from_slice(&plaintext) {
        Ok(record) => Some(record),
        Err(error) => {
            tracing::error!(key = %kv.key, %error, "skipping an unreadable stored access key");
            None
        }
    }
}

fn parse(owner: &str, text: &str) -> Option<Policy> {
    match Policy::parse(text) {
        Ok(p) => Some(p),
        Err(error) => {
            tracing::error!(owner, %error, "stored policy document does not parse; ignoring it");
            None
        }
    }
}

fn parse_inline(owner: &str, docs: &BTreeMap<String, String>) -> Vec<(String, Policy)> {
    docs.iter()
        .filter_map(|(n, d)| Some((n.clone(), parse(owner, d)?)))
        .collect()
}

/// The IAM index as a followed index of the `iam/` prefix; the KEKs open its access keys.
pub(crate) struct IamIndex(pub(crate) Arc<Iam>, pub(crate) Secrets);

impl Index for IamIndex {
    fn prefix(&self) -> &'static str {
        records::PREFIX
    }
    fn load(&self, kvs: &[KeyValue]) {
        self.0.load(kvs, &self.1);
    }
    fn apply(&self, event: &Event) {
        match event {
            Event::Put(kv) => {
                if let Some(built) = Built::from_kv(kv, &self.1) {
                    self.0.tables.write().insert(built);
                }
            }
            Event::Delete { key, .. } => self.0.tables.write().delete(key),
        }
    }
}
