-- A `POST /instances/{id}/poll` that arrives while a poll of the job is running must not be
-- overwritten by that poll's reschedule: poll_now sets this flag, claiming clears it, and the
-- running poll's commit (or failure) then schedules the job at once instead of an interval later.
ALTER TABLE poll_jobs ADD COLUMN poll_requested BOOLEAN NOT NULL DEFAULT false;
