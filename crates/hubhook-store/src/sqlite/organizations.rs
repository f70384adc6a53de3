//! SQL of organizations and users.

use jiff::Timestamp;
use sqlx::Row as _;
use subtle::ConstantTimeEq as _;

use super::SqliteStore;
use crate::{OrganizationId, Principal, Result, UserId};

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
}
