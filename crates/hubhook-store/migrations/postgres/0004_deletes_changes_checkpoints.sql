-- The last version of every object (for changedFields, previous and DELETED events), whether it
-- was announced as deleted, when a poll last saw it, and its id as a number: reconciliation
-- walks known ids in ConnectWise's order (forward-only paging is a keyset on the numeric id).
ALTER TABLE known_objects ADD COLUMN record TEXT;
ALTER TABLE known_objects ADD COLUMN deleted BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE known_objects ADD COLUMN seen_at BIGINT;
ALTER TABLE known_objects ADD COLUMN numeric_id BIGINT;
CREATE INDEX known_objects_by_number
    ON known_objects (instance_id, resource, numeric_id, deleted, seen_at);

-- A poll in progress commits page by page and can resume where it stopped; the rest is the
-- job's health and its reconciliation schedule.
ALTER TABLE poll_jobs ADD COLUMN checkpoint TEXT;
ALTER TABLE poll_jobs ADD COLUMN last_error_at BIGINT;
ALTER TABLE poll_jobs ADD COLUMN records_seen BIGINT NOT NULL DEFAULT 0;
ALTER TABLE poll_jobs ADD COLUMN events_emitted BIGINT NOT NULL DEFAULT 0;
ALTER TABLE poll_jobs ADD COLUMN next_reconcile_at BIGINT;
ALTER TABLE poll_jobs ADD COLUMN last_reconciled_at BIGINT;
ALTER TABLE poll_jobs ADD COLUMN mass_delete_held BIGINT;
ALTER TABLE poll_jobs ADD COLUMN mass_delete_action TEXT;
