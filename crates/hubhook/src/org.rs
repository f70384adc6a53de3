//! `hubhook org create`: an organization and its first user.

use anyhow::Context as _;
use hubhook_api::{new_secret, secret_hash};
use hubhook_store::Store;
use serde::Serialize;

/// What `org create` prints: the only time the secrets are shown.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedOrganization {
    pub organization_id: i64,
    pub user_id: i64,
    pub organization_secret: String,
    pub user_secret: String,
}

pub async fn create(store: &Store, name: &str) -> anyhow::Result<CreatedOrganization> {
    let name = name.trim();
    anyhow::ensure!(
        !name.is_empty() && name.chars().count() <= 255,
        "--name must be 1 to 255 characters"
    );
    let organization_secret = new_secret().context("generating a secret")?;
    let user_secret = new_secret().context("generating a secret")?;
    let (org, user) = store
        .create_organization(
            name,
            secret_hash(&organization_secret),
            secret_hash(&user_secret),
            jiff::Timestamp::now(),
        )
        .await
        .context("storing the organization")?;
    Ok(CreatedOrganization {
        organization_id: org.0,
        user_id: user.0,
        organization_secret,
        user_secret,
    })
}
