//! The few IAM query-API calls `podid dev` makes (SigV4 service `iam`, `Version=2010-05-08`):
//! enough to give the dev node agent its own user, inline policy and access key.

use crate::client::{ApiError, Client, xml_text};

/// The IAM API version every query request names (botocore `iam/2010-05-08`).
const IAM_VERSION: &str = "2010-05-08";

/// One IAM action with its parameters; returns the XML answer.
pub(crate) async fn call(
    client: &Client,
    action: &str,
    params: &[(&str, &str)],
) -> anyhow::Result<String> {
    let mut all = vec![("Action", action), ("Version", IAM_VERSION)];
    all.extend_from_slice(params);
    client.query("iam", &all).await
}

/// Creates the user unless it exists.
pub(crate) async fn ensure_user(client: &Client, user: &str) -> anyhow::Result<()> {
    match call(client, "GetUser", &[("UserName", user)]).await {
        Ok(_) => Ok(()),
        Err(e) if is_code(&e, "NoSuchEntity") => {
            call(client, "CreateUser", &[("UserName", user)]).await?;
            tracing::info!(user, "IAM user created");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Sets (or replaces) an inline user policy.
pub(crate) async fn put_user_policy(
    client: &Client,
    user: &str,
    name: &str,
    document: &str,
) -> anyhow::Result<()> {
    call(
        client,
        "PutUserPolicy",
        &[
            ("UserName", user),
            ("PolicyName", name),
            ("PolicyDocument", document),
        ],
    )
    .await
    .map(|_| ())
}

/// The ids of the user's access keys, with whether each is active.
pub(crate) async fn list_access_keys(
    client: &Client,
    user: &str,
) -> anyhow::Result<Vec<(String, bool)>> {
    let xml = call(client, "ListAccessKeys", &[("UserName", user)]).await?;
    Ok(xml
        .split("<member>")
        .skip(1)
        .filter_map(|member| {
            let id = xml_text(member, "AccessKeyId")?;
            let active = xml_text(member, "Status").as_deref() == Some("Active");
            Some((id, active))
        })
        .collect())
}

/// Creates an access key; returns its id and secret.
pub(crate) async fn create_access_key(
    client: &Client,
    user: &str,
) -> anyhow::Result<(String, String)> {
    let xml = call(client, "CreateAccessKey", &[("UserName", user)]).await?;
    let id = xml_text(&xml, "AccessKeyId");
    let secret = xml_text(&xml, "SecretAccessKey");
    match (id, secret) {
        (Some(id), Some(secret)) => Ok((id, secret)),
        _ => anyhow::bail!("CreateAccessKey answered without AccessKeyId and SecretAccessKey"),
    }
}

/// Deletes one access key.
pub(crate) async fn delete_access_key(client: &Client, user: &str, id: &str) -> anyhow::Result<()> {
    call(
        client,
        "DeleteAccessKey",
        &[("UserName", user), ("AccessKeyId", id)],
    )
    .await
    .map(|_| ())
}

fn is_code(e: &anyhow::Error, code: &str) -> bool {
    e.downcast_ref::<ApiError>().is_some_and(|a| a.code == code)
}
