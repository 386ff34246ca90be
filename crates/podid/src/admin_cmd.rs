//! `podid admin rotate-key`: replaces the administrator key with no downtime. A new key is
//! created through IAM, written over the key file atomically, proven to work, and only then is
//! the old key deleted. Interrupted at any point, the file holds a working key, and the server
//! retires podid-admin's other keys at its next start.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use podid_aws::sigv4::SigningCredentials;
use podid_server::AdminKey;

use crate::cli::{AdminCommand, ClientArgs};
use crate::client::{Client, xml_text};
use crate::iam;

/// The user the server keeps the administrator key for.
const ADMIN_USER: &str = "podid-admin";
/// How long the new key may take to be accepted (the server applies its own writes at once;
/// this covers a replica that is a moment behind).
const NEW_KEY_DEADLINE: Duration = Duration::from_secs(10);

pub(crate) async fn run(client: &ClientArgs, command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::RotateKey { key_file } => rotate(client, key_file).await,
    }
}

async fn rotate(args: &ClientArgs, key_file: Option<PathBuf>) -> anyhow::Result<()> {
    let path = key_file_path(key_file, args.data_dir.as_deref())?;
    let old = AdminKey::load(&path).with_context(|| format!("reading {}", path.display()))?;
    let old_client = client_for(args, &old)?;
    let caller = iam::call(&old_client, "GetUser", &[]).await?;
    if xml_text(&caller, "UserName").as_deref() != Some(ADMIN_USER) {
        anyhow::bail!(
            "the key in {} is not {ADMIN_USER}'s; rotate other users' keys with IAM",
            path.display()
        );
    }
    // A key left by an interrupted rotation would hit IAM's two-key limit: retire it first.
    for (id, _) in iam::list_access_keys(&old_client, ADMIN_USER).await? {
        if id != old.access_key_id {
            iam::delete_access_key(&old_client, ADMIN_USER, &id).await?;
            eprintln!("podid: retired a stale administrator key {id}");
        }
    }
    let (id, secret) = iam::create_access_key(&old_client, ADMIN_USER).await?;
    let new = AdminKey::new(id, secret);
    if let Err(e) = new.replace(&path) {
        // The file still holds the old key: take the new one back rather than leave it unsaved.
        let undo = iam::delete_access_key(&old_client, ADMIN_USER, &new.access_key_id).await;
        return Err(anyhow::Error::new(e).context(match undo {
            Ok(()) => "writing the new key; it was deleted again and the old key still works",
            Err(_) => "writing the new key; the old key still works (the new one is retired at the server's next start)",
        }));
    }
    let new_client = client_for(args, &new)?;
    wait_until_accepted(&new_client).await?;
    iam::delete_access_key(&new_client, ADMIN_USER, &old.access_key_id).await?;
    println!(
        "administrator key rotated: {} retired, {} written to {}",
        old.access_key_id,
        new.access_key_id,
        path.display()
    );
    Ok(())
}

/// `--key-file`, else `admin-credentials` in the data directory (`--data-dir`, else
/// `./.podid-dev` or `./podid-data`, whichever has one).
fn key_file_path(key_file: Option<PathBuf>, data_dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = key_file {
        return Ok(path);
    }
    let dirs: Vec<PathBuf> = match data_dir {
        Some(dir) => vec![dir.to_owned()],
        None => vec![PathBuf::from("./.podid-dev"), PathBuf::from("./podid-data")],
    };
    if let Some(path) = dirs
        .iter()
        .map(|d| d.join("admin-credentials"))
        .find(|p| p.exists())
    {
        return Ok(path);
    }
    let looked: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    crate::usage!(
        "no administrator key file: pass --key-file or --data-dir (looked in {})",
        looked.join(", ")
    )
}

fn client_for(args: &ClientArgs, key: &AdminKey) -> anyhow::Result<Client> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let (endpoint, region) = Client::endpoint_and_region(args, env);
    Client::new(
        &endpoint,
        region,
        SigningCredentials {
            access_key_id: key.access_key_id.clone(),
            secret_access_key: key.secret_access_key().to_owned(),
            session_token: None,
        },
    )
}

async fn wait_until_accepted(client: &Client) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + NEW_KEY_DEADLINE;
    loop {
        match iam::call(client, "GetUser", &[]).await {
            Ok(_) => return Ok(()),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(e.context(
                    "the new key is not accepted; both keys stay active, the file holds the new one",
                ));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}
