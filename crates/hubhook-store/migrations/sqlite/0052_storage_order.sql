-- SQLite keeps the storage order of events and notifications in their rowid, assigned as each
-- write commits (one writer). PostgreSQL needs a column for it (its version 0052); this
-- version only keeps the two engines' version numbers aligned.
SELECT 1;
