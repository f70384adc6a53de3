-- Completions are fenced on a token generated per claimed row, not on the node id: a node that
-- restarts under the same id releases its old leases, and a straggler of an old claim (same
-- node, earlier claim) must still be refused.
ALTER TABLE poll_jobs ADD COLUMN lease_token TEXT;
ALTER TABLE notifications ADD COLUMN lease_token TEXT;

-- Records a poll could not use (no id, a date its pattern cannot read): counted per poll and
-- shown in the job's health, instead of one log line per record.
ALTER TABLE poll_jobs ADD COLUMN record_problems BIGINT NOT NULL DEFAULT 0;
ALTER TABLE poll_jobs ADD COLUMN record_problem TEXT;
