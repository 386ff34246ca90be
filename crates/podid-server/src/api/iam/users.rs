//! Users and access keys: CreateUser, GetUser, DeleteUser, ListUsers, CreateAccessKey,
//! DeleteAccessKey, ListAccessKeys; and the bootstrap administrator user.

use crate::protocol::query::QueryError;
use axum::response::Response;
use podid_store::{Compare, Txn, TxnOutcome};

use super::errors::{
    access_key_not_found, already_exists, delete_conflict, generation_failed, quota_exceeded,
    user_not_found,
};
use super::handlers::Ctx;
use super::input;
use super::wire::{
    AccessKey, AccessKeyMetadata, CreateAccessKeyResult, ListAccessKeysResult, ListUsersResult,
    User, UserResult,
};
use crate::api::ApiState;
use crate::domain::caller::CallerKind;
use crate::domain::iam::index::Table;
use crate::domain::iam::records::{self, KeyRecord, UserRecord};
use crate::domain::iam::store::{self, Extra, Outcome, StoreFailure};
use podid_issuer::SecretKey;

/// `userNameType` max length.
const MAX_USER_NAME: usize = 64;
/// `existingUserNameType` max length.
const MAX_EXISTING_USER_NAME: usize = 128;
/// IAM's quota of access keys per user.
const MAX_KEYS_PER_USER: usize = 2;
/// The bootstrap administrator (the same name `auth::admin_key` gives the key's caller).
const ADMIN_USER_NAME: &str = "podid-admin";
const ADMINISTRATOR_ACCESS: &str = "arn:aws:iam::aws:policy/AdministratorAccess";

pub(super) async fn create(cx: &Ctx<'_>) -> Result<Response, QueryError> {
    let name = input::name(cx.q, "UserName", MAX_USER_NAME)?;
    let path = input::path(cx.q)?;
    let arn = records::arn(cx.account(), "user", &path, name);
    cx.authorize(&arn)?;
    let tags = input::tags(cx.q)?;
    let exists = || already_exists(format!("User with name {name} already exists."));
    if cx.iam.name_taken(Table::User, name) {
        return Err(exists());
    }
    let record = new_user(name, path, arn, tags)?;
    store::create(&cx.state.store, records::user_key(name), &record, exists()).await?;
    tracing::info!(user = name, "iam user created");
    cx.reply(&UserResult {
        user: User::new(&record),
    })
}

pub(super) fn get(cx: &Ctx<'_>) -> Result<Response, QueryError> {
    let name = subject(cx)?;
    cx.authorize(&user_arn(cx, &name))?;
    let u = cx
        .iam
        .user_entry(&name)
        .ok_or_else(|| user_not_found(&name))?;
    cx.reply(&UserResult {
        user: User::new(&u.record),
    })
}

pub(super) async fn delete(cx: &Ctx<'_>) -> Result<Response, QueryError> {
    let name = input::name(cx.q, "UserName", MAX_EXISTING_USER_NAME)?;
    cx.authorize(&user_arn(cx, name))?;
    store::edit(
        &cx.state.store,
        &records::user_key(name),
        || user_not_found(name),
        |u: &mut UserRecord, _| {
            if !u.access_keys.is_empty() {
                return Err(delete_conflict(
                    "Cannot delete entity, must delete access keys first.",
                ));
            }
            if !u.inline_policies.is_empty() {
                return Err(delete_conflict(
                    "Cannot delete entity, must delete policies first.",
                ));
            }
            if !u.attached.is_empty() {
                return Err(delete_conflict(
                    "Cannot delete entity, must detach all policies first.",
                ));
            }
            Ok((Outcome::Delete, ()))
        },
    )
    .await?;
    tracing::info!(user = name, "iam user deleted");
    cx.empty()
}

pub(super) fn list(cx: &Ctx<'_>) -> Result<Response, QueryError> {
    let prefix = cx.q.get("PathPrefix").unwrap_or("/");
    let (marker, max) = input::paging(cx.q)?;
    cx.authorize(&format!("arn:aws:iam::{}:user/", cx.account()))?;
    let (users, next) = cx.iam.users_page(prefix, marker.as_deref(), max);
    cx.reply(&ListUsersResult {
        users: users.iter().map(User::listed).collect(),
        is_truncated: next.is_some(),
        marker: next,
    })
}

pub(super) async fn create_key(cx: &Ctx<'_>) -> Result<Response, QueryError> {
    let name = subject(cx)?;
    cx.authorize(&user_arn(cx, &name))?;
    let (id, secret) = records::new_access_key().map_err(|e| generation_failed(&e))?;
    let key = KeyRecord {
        access_key_id: id.clone(),
        user_name: name.clone(),
        secret_access_key: secret,
        status: "Active".into(),
        create_date: records::now_iso(),
    };
    let encoded = store::encode_secret(&cx.state.secrets, &records::access_key_key(&id), &key)?;
    store::edit(
        &cx.state.store,
        &records::user_key(&name),
        || user_not_found(&name),
        |u: &mut UserRecord, extra: &mut Extra<QueryError>| {
            if u.access_keys.len() >= MAX_KEYS_PER_USER {
                return Err(quota_exceeded("AccessKeysPerUser", MAX_KEYS_PER_USER));
            }
            u.access_keys.push(id.clone());
            extra.require(
                Compare::Absent(records::access_key_key(&id)),
                super::errors::contention(),
            );
            extra.put(records::access_key_key(&id), encoded.clone());
            Ok((Outcome::Put, ()))
        },
    )
    .await?;
    tracing::info!(user = %name, access_key_id = %id, "iam access key created");
    let access_key = AccessKey::new(&key);
    let elements = crate::api::audit_value(&access_key.audit_copy());
    let mut response = cx.reply(&CreateAccessKeyResult { access_key })?;
    response
        .extensions_mut()
        .insert(super::audit::AuditElements(elements));
    Ok(response)
}

pub(super) async fn delete_key(cx: &Ctx<'_>) -> Result<Response, QueryError> {
    let name = subject(cx)?;
    let id = cx.q.require("AccessKeyId")?;
    cx.authorize(&user_arn(cx, &name))?;
    store::edit(
        &cx.state.store,
        &records::user_key(&name),
        || user_not_found(&name),
        |u: &mut UserRecord, extra: &mut Extra<QueryError>| {
            let before = u.access_keys.len();
            u.access_keys.retain(|k| k != id);
            if u.access_keys.len() == before {
                return Err(access_key_not_found(id));
            }
            extra.delete(records::access_key_key(id));
            Ok((Outcome::Put, ()))
        },
    )
    .await?;
    tracing::info!(user = %name, access_key_id = id, "iam access key deleted");
    cx.empty()
}

pub(super) fn list_keys(cx: &Ctx<'_>) -> Result<Response, QueryError> {
    let name = subject(cx)?;
    let (marker, max) = input::paging(cx.q)?;
    cx.authorize(&user_arn(cx, &name))?;
    let u = cx
        .iam
        .user_entry(&name)
        .ok_or_else(|| user_not_found(&name))?;
    let (page, next) = input::page(
        &u.record.access_keys,
        |k: &String| k.as_str(),
        marker.as_deref(),
        max,
    );
    let keys: Vec<_> = page.iter().filter_map(|id| cx.iam.key_entry(id)).collect();
    cx.reply(&ListAccessKeysResult {
        access_key_metadata: keys.iter().map(|k| AccessKeyMetadata::new(k)).collect(),
        is_truncated: next.is_some(),
        marker: next,
    })
}

/// Idempotently makes user `podid-admin` exist with AdministratorAccess attached and this
/// access key (active, with this secret) as its only key: any other key of the user is
/// deleted. Called at server start.
pub(crate) async fn ensure_admin_user(
    state: &ApiState,
    access_key_id: &str,
    secret: &SecretKey,
) -> Result<(), QueryError> {
    let name = ADMIN_USER_NAME;
    let user_key = records::user_key(name);
    let key_key = records::access_key_key(access_key_id);
    let key = KeyRecord {
        access_key_id: access_key_id.to_owned(),
        user_name: name.to_owned(),
        secret_access_key: secret.clone(),
        status: "Active".into(),
        create_date: records::now_iso(),
    };
    let read = |source: podid_store::Error| {
        QueryError::from(StoreFailure::Store {
            what: "bootstrap",
            source,
        })
    };
    if state.store.get(&user_key).await.map_err(read)?.is_none() {
        let arn = records::arn(&state.config.account_id, "user", "/", name);
        let mut user = new_user(name, "/".into(), arn, Vec::new())?;
        user.attached.push(ADMINISTRATOR_ACCESS.into());
        user.access_keys.push(access_key_id.to_owned());
        let txn = Txn::new()
            .when(Compare::Absent(user_key.clone()))
            .put(user_key.clone(), store::encode(&user)?)
            .put(
                key_key.clone(),
                store::encode_secret(&state.secrets, &key_key, &key)?,
            );
        if let TxnOutcome::Committed { .. } = state.store.commit(txn).await.map_err(read)? {
            tracing::info!(user = name, "bootstrap administrator user created");
            return Ok(());
        }
    }
    // A stored key that does not open or decode is rewritten below, like a changed one.
    let stored: Option<KeyRecord> = state
        .store
        .get(&key_key)
        .await
        .map_err(read)?
        .and_then(|kv| state.secrets.open(&kv).ok())
        .and_then(|plaintext| serde_json::from_slice(&plaintext).ok());
    let key_ok = stored.is_some_and(|k| {
        k.user_name == name && k.secret_access_key == *secret && k.status == "Active"
    });
    let encoded = store::encode_secret(&state.secrets, &key_key, &key)?;
    store::edit(
        &state.store,
        &user_key,
        || user_not_found(name),
        |u: &mut UserRecord, extra: &mut Extra<QueryError>| {
            let mut changed = !key_ok;
            if !u.attached.iter().any(|a| a == ADMINISTRATOR_ACCESS) {
                u.attached.push(ADMINISTRATOR_ACCESS.into());
                changed = true;
            }
            if !u.access_keys.iter().any(|k| k == access_key_id) {
                u.access_keys.push(access_key_id.to_owned());
                changed = true;
            }
            // The administrator file holds podid-admin's only key: a key it no longer holds
            // (the file was replaced, or `podid admin rotate-key` was interrupted) is retired,
            // so a rotated or leaked key stops working at the next start.
            for retired in u.access_keys.extract_if(.., |k| k != access_key_id) {
                tracing::warn!(
                    user = name,
                    access_key_id = %retired,
                    "retired an administrator key that the administrator key file no longer holds"
                );
                extra.delete(records::access_key_key(&retired));
                changed = true;
            }
            if !key_ok {
                extra.put(key_key.clone(), encoded.clone());
            }
            Ok((
                if changed {
                    Outcome::Put
                } else {
                    Outcome::Unchanged
                },
                (),
            ))
        },
    )
    .await?;
    Ok(())
}

/// The ARN of user `name`: stored, or the root-path ARN of a user that does not exist.
pub(super) fn user_arn(cx: &Ctx<'_>, name: &str) -> String {
    cx.iam.user_entry(name).map_or_else(
        || records::arn(cx.account(), "user", "/", name),
        |u| u.record.arn.clone(),
    )
}

/// `UserName`, or the calling user when absent (GetUser, CreateAccessKey, …).
fn subject(cx: &Ctx<'_>) -> Result<String, QueryError> {
    if cx.q.get("UserName").is_some() {
        return input::name(cx.q, "UserName", MAX_EXISTING_USER_NAME).map(str::to_owned);
    }
    match &cx.info.caller.kind {
        CallerKind::User { name, .. } => Ok(name.clone()),
        CallerKind::AssumedRole(_) => Err(QueryError::Validation(
            "Must specify userName when calling with non-User credentials".into(),
        )),
    }
}

fn new_user(
    name: &str,
    path: String,
    arn: String,
    tags: Vec<records::Tag>,
) -> Result<UserRecord, QueryError> {
    Ok(UserRecord {
        name: name.to_owned(),
        path,
        user_id: records::unique_id("AIDA").map_err(|e| generation_failed(&e))?,
        arn,
        create_date: records::now_iso(),
        tags,
        inline_policies: Default::default(),
        attached: Vec::new(),
        access_keys: Vec::new(),
    })
}
