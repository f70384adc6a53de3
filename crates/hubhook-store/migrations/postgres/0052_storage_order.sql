-- The storage order of events (the pull feed pages by it) and notifications (ordered delivery
-- sends the oldest first), which SQLite keeps in its rowid. Positions are drawn inside the
-- writing transaction while it holds its instance's advisory lock (see `postgres::polls`), so
-- within one instance they follow commit order: a reader paging by position never skips a
-- row that commits later with a smaller one.
ALTER TABLE events ADD COLUMN position BIGINT GENERATED ALWAYS AS IDENTITY;
CREATE INDEX events_by_position ON events (instance_id, position);
ALTER TABLE notifications ADD COLUMN position BIGINT GENERATED ALWAYS AS IDENTITY;
CREATE INDEX notifications_by_position ON notifications (instance_id, position);
