-- An update that stops polling a resource forgets the resource's known objects in parts, each
-- a write of its own (crates/hubhook-store/src/sqlite/instances.rs, "Forgetting a removed
-- resource"). The resource is listed here from the update's write until the part that finds
-- nothing left, so that opening the store finishes a forget that a stopped node left halfway
-- (before, its rows stayed, unread, until the resource was configured again or the instance
-- deleted).
CREATE TABLE forgetting (
    instance_id INTEGER NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    resource    TEXT    NOT NULL,
    -- As on every table (ARCHITECTURE.md, "Organizations").
    organization_id INTEGER NOT NULL,
    PRIMARY KEY (instance_id, resource)
) WITHOUT ROWID;
