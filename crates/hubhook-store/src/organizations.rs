//! Organizations and their users: who may call the API, and how they sign in.
//!
//! Requests authenticate with secrets, found by their SHA-256 (a secret is random and long, so
//! its hash needs no stretching). Beside each hash the store keeps an encrypted copy of the
//! secret (sealed under the master key, bound to the organization), which only the legacy
//! `getSecrets` reads back after a password sign-in. Passwords are stored as argon2 hashes made
//! by the caller; sessions as the SHA-256 of their cookie.

use jiff::Timestamp;

use crate::{
    NewSecret, NewUser, OrganizationId, Principal, Result, Secrets, SignIn, Store, UserId, UserRow,
    on_backend,
};

impl Store {
    /// Creates an organization and its first user. Secrets are hashed by the caller (SHA-256);
    /// only the hashes are stored (no copy: `getSecrets` cannot return them until rotated).
    pub async fn create_organization(
        &self,
        name: &str,
        org_secret_hash: [u8; 32],
        user_secret_hash: [u8; 32],
        now: Timestamp,
    ) -> Result<(OrganizationId, UserId)> {
        on_backend!(self, s => s.create_organization(name, org_secret_hash, user_secret_hash, now).await)
    }

    /// Creates an organization and its first user, keeping sealed copies of both secrets.
    /// [`crate::StoreError::Conflict`] when the user's email is taken (nothing is stored).
    pub async fn create_organization_with_user(
        &self,
        name: &str,
        secret: NewSecret,
        user: NewUser,
        now: Timestamp,
    ) -> Result<(OrganizationId, UserId)> {
        on_backend!(self, s => s.create_organization_with_user(name, secret, user, now).await)
    }

    /// Adds a user to an existing organization; [`crate::StoreError::NotFound`] when there is
    /// no such organization, [`crate::StoreError::Conflict`] when the email is taken.
    pub async fn create_user(
        &self,
        org: OrganizationId,
        user: NewUser,
        now: Timestamp,
    ) -> Result<UserId> {
        on_backend!(self, s => s.create_user(org, user, now).await)
    }

    /// Replaces the organization's secret (the old one stops working at once). `false` if there
    /// is no such organization.
    pub async fn rotate_organization_secret(
        &self,
        org: OrganizationId,
        secret: NewSecret,
    ) -> Result<bool> {
        on_backend!(self, s => s.rotate_organization_secret(org, secret).await)
    }

    /// Replaces the user's secret, if the user belongs to `org`. `false` otherwise.
    pub async fn rotate_user_secret(
        &self,
        org: OrganizationId,
        user: UserId,
        secret: NewSecret,
    ) -> Result<bool> {
        on_backend!(self, s => s.rotate_user_secret(org, user, secret).await)
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

    /// The user who signs in with this email (compared lower-cased), and its password hash.
    pub async fn sign_in_user(&self, email: &str) -> Result<Option<SignIn>> {
        on_backend!(self, s => s.sign_in_user(email).await)
    }

    /// Starts a session: the cookie's SHA-256, valid until `expires_at`.
    pub async fn create_session(
        &self,
        token_hash: [u8; 32],
        user: UserId,
        expires_at: Timestamp,
    ) -> Result<()> {
        on_backend!(self, s => s.create_session(token_hash, user, expires_at).await)
    }

    /// Who holds the session with this cookie hash, if it has not expired at `now`.
    pub async fn session(&self, token_hash: [u8; 32], now: Timestamp) -> Result<Option<Principal>> {
        on_backend!(self, s => s.session(token_hash, now).await)
    }

    /// Ends a session (sign-out); nothing happens when there is no such session.
    pub async fn end_session(&self, token_hash: [u8; 32]) -> Result<()> {
        on_backend!(self, s => s.end_session(token_hash).await)
    }

    /// The user's and its organization's secrets, decrypted; `None` when either has no stored
    /// copy (made before copies were kept, and not rotated since).
    pub async fn secrets(&self, principal: Principal) -> Result<Option<Secrets>> {
        on_backend!(self, s => s.secrets(principal).await)
    }

    /// The organization's users, by id.
    pub async fn users(&self, org: OrganizationId) -> Result<Vec<UserRow>> {
        on_backend!(self, s => s.users(org).await)
    }
}
