//! SQL of organizations, users and sign-in sessions.

use jiff::Timestamp;
use sqlx::Row as _;
use sqlx::sqlite::SqliteConnection;
use subtle::ConstantTimeEq as _;

use super::SqliteStore;
use crate::{
    MasterKey, NewSecret, NewUser, OrganizationId, Principal, Result, Secrets, SignIn, StoreError,
    UserId, UserRow,
};

impl SqliteStore {
    pub async fn create_organization(
        &self,
        name: &str,
        org_secret_hash: [u8; 32],
        user_secret_hash: [u8; 32],
        now: Timestamp,
    ) -> Result<(OrganizationId, UserId)> {
        let name = name.to_owned();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let organization: i64 = sqlx::query_scalar(
                        "INSERT INTO organizations (name, secret_hash, created_at)
                         VALUES ($1, $2, $3) RETURNING id",
                    )
                    .bind(&name)
                    .bind(&org_secret_hash[..])
                    .bind(now.as_millisecond())
                    .fetch_one(&mut *conn)
                    .await?;
                    let user: i64 = sqlx::query_scalar(
                        "INSERT INTO users (organization_id, secret_hash, created_at)
                         VALUES ($1, $2, $3) RETURNING id",
                    )
                    .bind(organization)
                    .bind(&user_secret_hash[..])
                    .bind(now.as_millisecond())
                    .fetch_one(&mut *conn)
                    .await?;
                    Ok((OrganizationId(organization), UserId(user)))
                })
            })
            .await
    }

    pub async fn create_organization_with_user(
        &self,
        name: &str,
        secret: NewSecret,
        user: NewUser,
        now: Timestamp,
    ) -> Result<(OrganizationId, UserId)> {
        let name = name.to_owned();
        let key = self.key.clone();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let organization = OrganizationId(
                        sqlx::query_scalar(
                            "INSERT INTO organizations (name, secret_hash, created_at)
                             VALUES ($1, $2, $3) RETURNING id",
                        )
                        .bind(&name)
                        .bind(&secret.hash[..])
                        .bind(now.as_millisecond())
                        .fetch_one(&mut *conn)
                        .await?,
                    );
                    // The id is part of the sealed copy's associated data, so it is sealed
                    // once the id exists.
                    sqlx::query("UPDATE organizations SET secret_sealed = $1 WHERE id = $2")
                        .bind(key.seal_text(organization, &secret.plain)?)
                        .bind(organization.0)
                        .execute(&mut *conn)
                        .await?;
                    let user = insert_user(conn, &key, organization, &user, now).await?;
                    Ok((organization, user))
                })
            })
            .await
    }

    pub async fn create_user(
        &self,
        org: OrganizationId,
        user: NewUser,
        now: Timestamp,
    ) -> Result<UserId> {
        let key = self.key.clone();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let exists: Option<i64> =
                        sqlx::query_scalar("SELECT id FROM organizations WHERE id = $1")
                            .bind(org.0)
                            .fetch_optional(&mut *conn)
                            .await?;
                    if exists.is_none() {
                        return Err(StoreError::NotFound);
                    }
                    insert_user(conn, &key, org, &user, now).await
                })
            })
            .await
    }

    pub async fn rotate_organization_secret(
        &self,
        org: OrganizationId,
        secret: NewSecret,
    ) -> Result<bool> {
        self.rotate(
            "UPDATE organizations SET secret_hash = $1, secret_sealed = $2
             WHERE id = $3 AND id = $4",
            org,
            org.0,
            secret,
        )
        .await
    }

    pub async fn rotate_user_secret(
        &self,
        org: OrganizationId,
        user: UserId,
        secret: NewSecret,
    ) -> Result<bool> {
        self.rotate(
            "UPDATE users SET secret_hash = $1, secret_sealed = $2
             WHERE id = $3 AND organization_id = $4",
            org,
            user.0,
            secret,
        )
        .await
    }

    /// One secret replaced by `sql` (hash, sealed copy, row id, organization id): whether the
    /// row exists in that organization.
    async fn rotate(
        &self,
        sql: &'static str,
        org: OrganizationId,
        id: i64,
        secret: NewSecret,
    ) -> Result<bool> {
        let sealed = self.key.seal_text(org, &secret.plain)?;
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let done = sqlx::query(sql)
                        .bind(&secret.hash[..])
                        .bind(&sealed)
                        .bind(id)
                        .bind(org.0)
                        .execute(&mut *conn)
                        .await?;
                    Ok(done.rows_affected() == 1)
                })
            })
            .await
    }

    pub async fn authenticate(
        &self,
        org_secret_hash: [u8; 32],
        user_secret_hash: [u8; 32],
    ) -> Result<Option<Principal>> {
        // Looking the user up by its hash is safe to do with an index: the hash of a
        // high-entropy secret leaks nothing through timing. The organization's hash is then
        // compared in constant time.
        let row = sqlx::query(
            "SELECT u.id AS user_id, u.organization_id, o.secret_hash AS org_hash
             FROM users u JOIN organizations o ON o.id = u.organization_id
             WHERE u.secret_hash = $1",
        )
        .bind(&user_secret_hash[..])
        .fetch_optional(&self.readers)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let stored: Vec<u8> = row.try_get("org_hash")?;
        if !bool::from(stored.as_slice().ct_eq(&org_secret_hash[..])) {
            return Ok(None);
        }
        Ok(Some(Principal {
            organization_id: OrganizationId(row.try_get("organization_id")?),
            user_id: UserId(row.try_get("user_id")?),
        }))
    }

    pub async fn sign_in_user(&self, email: &str) -> Result<Option<SignIn>> {
        let row = sqlx::query(
            "SELECT id, organization_id, password_hash FROM users
             WHERE email = $1 AND password_hash IS NOT NULL",
        )
        .bind(email.to_lowercase())
        .fetch_optional(&self.readers)
        .await?;
        row.map(|row| {
            Ok(SignIn {
                principal: Principal {
                    organization_id: OrganizationId(row.try_get("organization_id")?),
                    user_id: UserId(row.try_get("id")?),
                },
                password_hash: row.try_get("password_hash")?,
            })
        })
        .transpose()
    }

    pub async fn create_session(
        &self,
        token_hash: [u8; 32],
        user: UserId,
        expires_at: Timestamp,
    ) -> Result<()> {
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    // Expired sessions are swept as new ones start: the table stays small
                    // without a background task.
                    sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
                        .bind(Timestamp::now().as_millisecond())
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query(
                        "INSERT INTO sessions (token_hash, user_id, expires_at, organization_id)
                         SELECT $1, id, $3, organization_id FROM users WHERE id = $2",
                    )
                    .bind(&token_hash[..])
                    .bind(user.0)
                    .bind(expires_at.as_millisecond())
                    .execute(&mut *conn)
                    .await?;
                    Ok(())
                })
            })
            .await
    }

    pub async fn session(&self, token_hash: [u8; 32], now: Timestamp) -> Result<Option<Principal>> {
        let row = sqlx::query(
            "SELECT u.id, u.organization_id FROM sessions s JOIN users u
                 ON u.id = s.user_id AND u.organization_id = s.organization_id
             WHERE s.token_hash = $1 AND s.expires_at > $2",
        )
        .bind(&token_hash[..])
        .bind(now.as_millisecond())
        .fetch_optional(&self.readers)
        .await?;
        row.map(|row| {
            Ok(Principal {
                organization_id: OrganizationId(row.try_get("organization_id")?),
                user_id: UserId(row.try_get("id")?),
            })
        })
        .transpose()
    }

    pub async fn end_session(&self, token_hash: [u8; 32]) -> Result<()> {
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                        .bind(&token_hash[..])
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            })
            .await
    }

    pub async fn secrets(&self, principal: Principal) -> Result<Option<Secrets>> {
        let row = sqlx::query(
            "SELECT u.secret_sealed AS user_sealed, o.secret_sealed AS org_sealed
             FROM users u JOIN organizations o ON o.id = u.organization_id
             WHERE u.id = $1 AND o.id = $2",
        )
        .bind(principal.user_id.0)
        .bind(principal.organization_id.0)
        .fetch_optional(&self.readers)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let user: Option<String> = row.try_get("user_sealed")?;
        let organization: Option<String> = row.try_get("org_sealed")?;
        let (Some(user), Some(organization)) = (user, organization) else {
            return Ok(None);
        };
        let org = principal.organization_id;
        Ok(Some(Secrets {
            user: self.key.open_text(org, &user)?,
            organization: self.key.open_text(org, &organization)?,
        }))
    }

    pub async fn users(&self, org: OrganizationId) -> Result<Vec<UserRow>> {
        let rows = sqlx::query(
            "SELECT id, organization_id, email, first_name, last_name FROM users
             WHERE organization_id = $1 ORDER BY id",
        )
        .bind(org.0)
        .fetch_all(&self.readers)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(UserRow {
                    id: UserId(row.try_get("id")?),
                    organization_id: OrganizationId(row.try_get("organization_id")?),
                    email: row.try_get("email")?,
                    first_name: row.try_get("first_name")?,
                    last_name: row.try_get("last_name")?,
                })
            })
            .collect()
    }
}

/// Inserts a user with a sealed copy of its secret; a taken email is a conflict.
async fn insert_user(
    conn: &mut SqliteConnection,
    key: &MasterKey,
    organization: OrganizationId,
    user: &NewUser,
    now: Timestamp,
) -> Result<UserId> {
    let email = user.email.as_deref().map(str::to_lowercase);
    if let Some(email) = &email {
        let taken: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
            .bind(email)
            .fetch_optional(&mut *conn)
            .await?;
        if taken.is_some() {
            return Err(StoreError::Conflict(format!(
                "a user with email `{email}` already exists"
            )));
        }
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO users (organization_id, secret_hash, secret_sealed, email, password_hash,
             first_name, last_name, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(organization.0)
    .bind(&user.secret.hash[..])
    .bind(key.seal_text(organization, &user.secret.plain)?)
    .bind(&email)
    .bind(&user.password_hash)
    .bind(&user.first_name)
    .bind(&user.last_name)
    .bind(now.as_millisecond())
    .fetch_one(&mut *conn)
    .await?;
    Ok(UserId(id))
}
