//! Organizations and their users: who may call the API.

use jiff::Timestamp;

use crate::{OrganizationId, Principal, Result, Store, UserId, on_backend};

impl Store {
    /// Creates an organization and its first user. Secrets are hashed by the caller (SHA-256);
    /// only the hashes are stored.
    pub async fn create_organization(
        &self,
        name: &str,
        org_secret_hash: [u8; 32],
        user_secret_hash: [u8; 32],
        now: Timestamp,
    ) -> Result<(OrganizationId, UserId)> {
        on_backend!(self, s => s.create_organization(name, org_secret_hash, user_secret_hash, now).await)
    }

    /// Finds the user by its secret hash and checks that it belongs to the organization with that
    /// secret hash (compared in constant time).
    pub async fn authenticate(
        &self,
        org_secret_hash: [u8; 32],
        user_secret_hash: [u8; 32],
    ) -> Result<Option<Principal>> {
        on_backend!(self, s => s.authenticate(org_secret_hash, user_secret_hash).await)
    }
}
