-- The delivery claim reads due notifications in (next_attempt_at, created_at) order. With the
-- index on (status, next_attempt_at) alone, SQLite sorted every group of rows sharing a
-- next_attempt_at ("USE TEMP B-TREE FOR RIGHT PART OF ORDER BY"), and a poll page commits up to
-- a thousand notifications with the same one. This index hands them over in claim order; it
-- replaces the old one, of which it is an extension.
CREATE INDEX notifications_by_due_in_order ON notifications (status, next_attempt_at, created_at);
DROP INDEX notifications_by_due;
