-- A redelivery of more than one part (1,000 notifications, each part a write of its own) is
-- listed here from its first write to its last, with the ids it makes due, oldest first, and
-- how many of them it has done (crates/hubhook-store/src/sqlite/redelivery.rs). Its first part
-- reactivates the subscription, so what a node stopped halfway had not reached would stay
-- queued behind new notifications that are delivered; opening the store finishes it.
CREATE TABLE redeliveries (
    id              INTEGER PRIMARY KEY,
    instance_id     INTEGER NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    -- As on every table (ARCHITECTURE.md, "Organizations").
    organization_id INTEGER NOT NULL,
    -- A JSON array of notification ids.
    ids             TEXT    NOT NULL,
    done            INTEGER NOT NULL DEFAULT 0,
    -- Whether delivered ones are sent again too (`Redeliver::Any`, a resend).
    delivered_too   INTEGER NOT NULL DEFAULT 0
);
