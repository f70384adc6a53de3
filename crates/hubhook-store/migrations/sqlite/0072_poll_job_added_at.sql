-- When each resource was added to its instance. A resource's first poll (its baseline)
-- announces, by default, the changes made since then; it took the instance's creation, so a
-- resource added to an older instance, or removed and added back, announced every change of
-- the instance's lifetime, as CREATED. Jobs made before this version take their instance's
-- creation, as before (for most of them it is when they were added).
ALTER TABLE poll_jobs ADD COLUMN added_at INTEGER NOT NULL DEFAULT 0;
UPDATE poll_jobs SET added_at = COALESCE(
    (SELECT created_at FROM instances WHERE instances.id = poll_jobs.instance_id), 0);
