-- Two changes to known_objects, made in one rebuild of the table.
--
-- 1. `revision`: how many times the stored state of an object (its content hash, its deleted
--    flag) has changed. An event id includes the revision the change departs from
--    (crates/hubhook-core/src/event.rs, `event_id`), so that an object coming back to content
--    it had before (edited and edited back within one second of ConnectWise's clock) is a new
--    change with a new id instead of a duplicate of the old one. Existing rows start at 0,
--    whose ids are those of before.
--
-- 2. A rowid table instead of WITHOUT ROWID. A WITHOUT ROWID table keeps its rows in the
--    primary key's B-tree, where SQLite stores at most about 1,000 bytes of a row on the page
--    (on 4 KB pages) and the rest on an overflow page of its own. A row here carries its
--    record compressed, and a ConnectWise contact compresses to about 1,010 bytes: every row
--    spilled, so each took two pages, and each upsert rewrote both. As a rowid table, rows of
--    up to about 4,000 bytes stay on their page and the key is a small index beside it.
--    Measured (docs/benchmarks.md, "Thirteenth round"): 100,000 rows of 1,100 bytes upserted
--    a thousand at a time took 47-54 ms per thousand against 18, and the file was 447 MB
--    against 135 MB.
CREATE TABLE known_objects_rebuilt (
    instance_id     INTEGER NOT NULL REFERENCES instances (id),
    resource        TEXT    NOT NULL,
    object_id       TEXT    NOT NULL,
    content_hash    TEXT    NOT NULL,
    updated_at      INTEGER NOT NULL,
    record          TEXT,
    deleted         INTEGER NOT NULL DEFAULT 0,
    seen_at         INTEGER,
    numeric_id      INTEGER,
    organization_id INTEGER NOT NULL DEFAULT 0,
    revision        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (instance_id, resource, object_id)
);
INSERT INTO known_objects_rebuilt (instance_id, resource, object_id, content_hash, updated_at,
    record, deleted, seen_at, numeric_id, organization_id)
SELECT instance_id, resource, object_id, content_hash, updated_at, record, deleted, seen_at,
    numeric_id, organization_id
FROM known_objects;
DROP TABLE known_objects;
ALTER TABLE known_objects_rebuilt RENAME TO known_objects;
CREATE INDEX known_objects_by_number
    ON known_objects (instance_id, resource, numeric_id, deleted, seen_at);
