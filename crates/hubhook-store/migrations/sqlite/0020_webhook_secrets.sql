-- The Standard Webhooks secret of each instance (`whsec_…`), sealed under the master key like
-- the instance's other secrets: {"current": .., "previous": ..}. `previous` is still used to
-- sign until `previous_until`, so receivers can switch to a rotated secret at their own pace.
-- Deleted with its instance (nothing signs for a deleted instance).
CREATE TABLE webhook_secrets (
    instance_id     INTEGER PRIMARY KEY REFERENCES instances (id) ON DELETE CASCADE,
    organization_id INTEGER NOT NULL,
    sealed          TEXT    NOT NULL,
    previous_until  INTEGER,
    updated_at      INTEGER NOT NULL
);
