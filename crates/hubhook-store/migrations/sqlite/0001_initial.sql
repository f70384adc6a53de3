-- Timestamps are INTEGER unix milliseconds (UTC): portable between engines and index-friendly.
-- Secrets are only ever stored as hashes (organization/user secrets, instance tokens) or
-- encrypted (`instances.secrets`).

CREATE TABLE organizations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL,
    secret_hash BLOB    NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE users (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    organization_id INTEGER NOT NULL REFERENCES organizations (id),
    secret_hash     BLOB    NOT NULL UNIQUE,
    created_at      INTEGER NOT NULL
);

-- AUTOINCREMENT so that the id of a deleted instance is never reused: events and
-- notifications keep pointing at it after the instance is gone.
CREATE TABLE instances (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    organization_id     INTEGER NOT NULL REFERENCES organizations (id),
    user_id             INTEGER NOT NULL REFERENCES users (id),
    name                TEXT    NOT NULL,
    element_key         TEXT    NOT NULL,
    token_hash          BLOB    NOT NULL UNIQUE,
    configuration       TEXT    NOT NULL, -- JSON object, secrets masked
    secrets             TEXT    NOT NULL, -- v1:<base64(nonce || XChaCha20-Poly1305 ciphertext)>
    tags                TEXT    NOT NULL, -- JSON array of strings
    events_enabled      INTEGER NOT NULL,
    disabled            INTEGER NOT NULL DEFAULT 0,
    refresh_interval_ms INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);

CREATE INDEX instances_by_organization ON instances (organization_id);

-- One row per (instance, resource): the unit of polling work, leased by one worker at a time.
CREATE TABLE poll_jobs (
    instance_id    INTEGER NOT NULL REFERENCES instances (id),
    resource       TEXT    NOT NULL,
    cursor         INTEGER,          -- NULL: never polled, the first poll is the baseline
    next_run_at    INTEGER NOT NULL,
    lease_owner    TEXT,
    lease_until    INTEGER,
    last_error     TEXT,
    last_polled_at INTEGER,
    PRIMARY KEY (instance_id, resource)
) WITHOUT ROWID;

CREATE INDEX poll_jobs_by_due ON poll_jobs (next_run_at);

-- What the poller has seen of each object, to classify the next sighting (created/updated).
CREATE TABLE known_objects (
    instance_id  INTEGER NOT NULL REFERENCES instances (id),
    resource     TEXT    NOT NULL,
    object_id    TEXT    NOT NULL,
    content_hash TEXT    NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (instance_id, resource, object_id)
) WITHOUT ROWID;

-- History tables below have no foreign key to instances: they outlive a deleted instance.
CREATE TABLE events (
    id              TEXT    PRIMARY KEY, -- deterministic: the same change seen twice has the same id
    instance_id     INTEGER NOT NULL,
    object_type     TEXT    NOT NULL,
    object_id       TEXT    NOT NULL,
    event_type      TEXT    NOT NULL,
    event_date      INTEGER NOT NULL,
    record          TEXT    NOT NULL,
    notification_id TEXT,
    created_at      INTEGER NOT NULL
);

CREATE INDEX events_by_instance ON events (instance_id, created_at);

CREATE TABLE notifications (
    id              TEXT    PRIMARY KEY,
    instance_id     INTEGER NOT NULL,
    body            TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'queued', 'cancelled')),
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    lease_owner     TEXT,
    lease_until     INTEGER,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER
);

CREATE INDEX notifications_by_due ON notifications (status, next_attempt_at);
CREATE INDEX notifications_by_instance ON notifications (instance_id, created_at);

CREATE TABLE delivery_attempts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    notification_id TEXT    NOT NULL REFERENCES notifications (id),
    owner           TEXT    NOT NULL,
    attempted_at    INTEGER NOT NULL,
    status_code     INTEGER,
    latency_ms      INTEGER NOT NULL,
    error           TEXT,
    outcome         TEXT    NOT NULL -- delivered | retry | queued
);

CREATE INDEX delivery_attempts_by_notification ON delivery_attempts (notification_id);
