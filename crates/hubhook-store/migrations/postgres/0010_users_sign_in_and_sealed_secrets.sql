-- Users can sign in (Cloud Elements' legacy login) with an email and a password, stored as an
-- argon2 hash (PHC string). The user and organization secrets stay looked up by their SHA-256,
-- and an encrypted copy (sealed under the master key, bound to the organization) sits beside
-- each hash so that `getSecrets` can hand them back.
ALTER TABLE users ADD COLUMN email TEXT;
ALTER TABLE users ADD COLUMN password_hash TEXT;
ALTER TABLE users ADD COLUMN first_name TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN last_name TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN secret_sealed TEXT;
ALTER TABLE organizations ADD COLUMN secret_sealed TEXT;
-- Emails are stored lower-cased; several users without an email are allowed (NULLs differ).
CREATE UNIQUE INDEX users_by_email ON users (email);

-- Sign-in sessions of the legacy login: the cookie's SHA-256, never the cookie itself.
CREATE TABLE sessions (
    token_hash BYTEA  PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id),
    expires_at BIGINT NOT NULL
);
