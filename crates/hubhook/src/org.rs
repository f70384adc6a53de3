//! `hubhook org create`, `hubhook user create` and secret rotation: organizations, their users
//! and the secrets they call the API with.
//!
//! Secrets are random (32 bytes); the store keeps their SHA-256 for lookups and an encrypted
//! copy for Cloud Elements' legacy `getSecrets`. A user given an email and a password can sign
//! in with them (the password is stored as an argon2 hash); without them the user has its
//! secrets only.

use anyhow::Context as _;
use hubhook_api::{fresh_secret, password_hash};
use hubhook_core::one_line;
use hubhook_store::{NewUser, OrganizationId, Store, StoreError, UserId};
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

/// What `user create` prints.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedUser {
    pub organization_id: i64,
    pub user_id: i64,
    pub user_secret: String,
}

/// What a rotation prints: the new secret, shown once.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RotatedSecret {
    pub id: i64,
    pub secret: String,
}

/// A user's sign-in: an email and a password, with optional names.
#[derive(Debug, Clone, Default)]
pub struct Login {
    pub email: String,
    pub password: String,
    pub first_name: String,
    pub last_name: String,
}

/// An organization and its first user, who has secrets only.
pub async fn create(store: &Store, name: &str) -> anyhow::Result<CreatedOrganization> {
    create_with_login(store, name, None).await
}

/// An organization and its first user, who can sign in when `login` is given.
pub async fn create_with_login(
    store: &Store,
    name: &str,
    login: Option<Login>,
) -> anyhow::Result<CreatedOrganization> {
    let name = name.trim();
    anyhow::ensure!(
        !name.is_empty() && name.chars().count() <= 255,
        "--name must be 1 to 255 characters"
    );
    check_one_line("--name", name)?;
    anyhow::ensure!(
        one_line::has_visible_char(name),
        "--name must show something: it holds only invisible characters"
    );
    let organization = fresh_secret().context("generating a secret")?;
    let organization_secret = organization.plain.clone();
    let (user, user_secret) = new_user(login)?;
    let (org, user) = store
        .create_organization_with_user(name, organization, user, jiff::Timestamp::now())
        .await
        .map_err(conflict)?;
    Ok(CreatedOrganization {
        organization_id: org.0,
        user_id: user.0,
        organization_secret,
        user_secret,
    })
}

/// A user of an existing organization.
pub async fn create_user(
    store: &Store,
    organization: i64,
    login: Login,
) -> anyhow::Result<CreatedUser> {
    let (user, user_secret) = new_user(Some(login))?;
    let id = match store
        .create_user(OrganizationId(organization), user, jiff::Timestamp::now())
        .await
    {
        Err(StoreError::NotFound) => anyhow::bail!("no organization with id {organization}"),
        other => other.map_err(conflict)?,
    };
    Ok(CreatedUser {
        organization_id: organization,
        user_id: id.0,
        user_secret,
    })
}

/// A new secret for the organization; the old one stops working at once.
pub async fn rotate_organization_secret(
    store: &Store,
    organization: i64,
) -> anyhow::Result<RotatedSecret> {
    let secret = fresh_secret().context("generating a secret")?;
    let plain = secret.plain.clone();
    anyhow::ensure!(
        store
            .rotate_organization_secret(OrganizationId(organization), secret)
            .await?,
        "no organization with id {organization}"
    );
    Ok(RotatedSecret {
        id: organization,
        secret: plain,
    })
}

/// A new secret for the user of that organization; the old one stops working at once.
pub async fn rotate_user_secret(
    store: &Store,
    organization: i64,
    user: i64,
) -> anyhow::Result<RotatedSecret> {
    let secret = fresh_secret().context("generating a secret")?;
    let plain = secret.plain.clone();
    anyhow::ensure!(
        store
            .rotate_user_secret(OrganizationId(organization), UserId(user), secret)
            .await?,
        "no user with id {user} in organization {organization}"
    );
    Ok(RotatedSecret {
        id: user,
        secret: plain,
    })
}

/// Longest email and password accepted, in characters (argon2 takes any length; a bound keeps a
/// sign-in from hashing megabytes).
const MAX_EMAIL: usize = 254;
const MAX_PASSWORD: usize = 1024;
const MIN_PASSWORD: usize = 8;

fn new_user(login: Option<Login>) -> anyhow::Result<(NewUser, String)> {
    let secret = fresh_secret().context("generating a secret")?;
    let plain = secret.plain.clone();
    let mut user = NewUser {
        secret,
        email: None,
        password_hash: None,
        first_name: String::new(),
        last_name: String::new(),
    };
    if let Some(login) = login {
        let email = login.email.trim().to_lowercase();
        anyhow::ensure!(
            email.len() <= MAX_EMAIL
                && email
                    .split_once('@')
                    .is_some_and(|(local, domain)| { !local.is_empty() && !domain.is_empty() })
                && !email.chars().any(|c| c.is_whitespace() || c.is_control()),
            "--email must be an email address such as name@example.com (at most {MAX_EMAIL} characters)"
        );
        let chars = login.password.chars().count();
        anyhow::ensure!(
            (MIN_PASSWORD..=MAX_PASSWORD).contains(&chars),
            "--password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters"
        );
        user.password_hash = Some(password_hash(&login.password)?);
        user.email = Some(email);
        user.first_name = login.first_name.trim().to_string();
        user.last_name = login.last_name.trim().to_string();
        check_one_line("--first-name", &user.first_name)?;
        check_one_line("--last-name", &user.last_name)?;
    }
    Ok((user, plain))
}

/// Organization and user names are labels, as an instance's name is (a user's names are in the
/// `user` of every instance the API returns), so they hold what one may
/// (`hubhook_core::one_line`): no line breaks, other control characters or bidirectional
/// controls.
fn check_one_line(flag: &str, text: &str) -> anyhow::Result<()> {
    match one_line::forbidden_char(text) {
        Some((at, c)) => anyhow::bail!(one_line::forbidden_char_message(flag, at, c)),
        None => Ok(()),
    }
}

fn conflict(err: StoreError) -> anyhow::Error {
    match err {
        StoreError::Conflict(message) => anyhow::anyhow!(message),
        other => anyhow::Error::new(other).context("storing the user"),
    }
}
