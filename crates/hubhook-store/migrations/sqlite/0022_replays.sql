-- A replay is a new notification (new id, new attempts) carrying the events of an earlier
-- one; it names the notification it replays. Events keep pointing at their original
-- notification, so a replay is never itself replayed.
ALTER TABLE notifications ADD COLUMN replay_of TEXT;
