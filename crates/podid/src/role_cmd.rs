//! `podid role revoke-sessions`: what the IAM console's "Revoke active sessions" does. An inline
//! role policy `AWSRevokeOlderSessions` denies everything to sessions whose credentials were
//! issued before now (`DateLessThan aws:TokenIssueTime`); sessions issued afterwards are not
//! affected. Plain IAM (`PutRolePolicy`), so it works against podid and against AWS alike.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::cli::{ClientArgs, RoleCommand};
use crate::client::Client;
use crate::iam;

/// The policy name the IAM console uses, so either tool replaces the other's statement.
const REVOKE_POLICY_NAME: &str = "AWSRevokeOlderSessions";

pub(crate) async fn run(args: &ClientArgs, command: RoleCommand) -> anyhow::Result<()> {
    match command {
        RoleCommand::RevokeSessions { role_name } => {
            let client = Client::from_args(args)?;
            let now = OffsetDateTime::now_utc().replace_nanosecond(0)?;
            let document = revoke_document(now)?;
            iam::call(
                &client,
                "PutRolePolicy",
                &[
                    ("RoleName", role_name.as_str()),
                    ("PolicyName", REVOKE_POLICY_NAME),
                    ("PolicyDocument", document.as_str()),
                ],
            )
            .await?;
            println!(
                "sessions of role {role_name} issued before {} are revoked (inline policy {REVOKE_POLICY_NAME})",
                now.format(&Rfc3339)?
            );
            Ok(())
        }
    }
}

/// The console's statement: deny everything to credentials issued before `now`.
fn revoke_document(now: OffsetDateTime) -> anyhow::Result<String> {
    Ok(serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Deny",
            "Action": ["*"],
            "Resource": ["*"],
            "Condition": {"DateLessThan": {"aws:TokenIssueTime": now.format(&Rfc3339)?}}
        }]
    })
    .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_the_consoles() {
        let now = OffsetDateTime::from_unix_timestamp(1_764_666_000).unwrap();
        assert_eq!(
            revoke_document(now).unwrap(),
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":["*"],"Resource":["*"],"Condition":{"DateLessThan":{"aws:TokenIssueTime":"2025-12-02T09:00:00Z"}}}]}"#
        );
    }
}
