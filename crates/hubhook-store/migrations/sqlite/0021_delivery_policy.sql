-- The first 1 KB of every callback answer, kept with its attempt (what the receiver said).
ALTER TABLE delivery_attempts ADD COLUMN response_excerpt TEXT;

-- An instance's webhook subscription, deactivated by a `410 Gone`, by the end of the retry
-- schedule, or by the first failure under the `queue` policy (as Cloud Elements does). While a
-- row exists, the instance's notifications are queued without being tried; redelivery
-- (`PUT /notifications/subscriptions/deliveries`, resend, recover) deletes the row.
CREATE TABLE delivery_subscriptions (
    instance_id    INTEGER PRIMARY KEY,
    deactivated_at INTEGER NOT NULL,
    reason         TEXT    NOT NULL
);

-- Account settings (`POST|PATCH|GET /accounts/{id}/settings`): one row per key, values as
-- JSON text. Only known keys are accepted by the API.
CREATE TABLE organization_settings (
    organization_id INTEGER NOT NULL REFERENCES organizations (id),
    key             TEXT    NOT NULL,
    value           TEXT    NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (organization_id, key)
) WITHOUT ROWID;

-- Claims queue the due notifications of deactivated instances by walking those instances
-- (few) through this index, not the whole due backlog.
CREATE INDEX notifications_by_instance_status ON notifications (instance_id, status, next_attempt_at);
