-- Every table carries the organization id, so that the schema can be distributed by
-- organization later (Citus) without a redesign: see ARCHITECTURE.md, "Organizations".
-- Rows whose instance (or notification, or user) is gone keep 0: history of a deleted
-- instance, read only through its organization's instances, which no longer list it.
ALTER TABLE poll_jobs ADD COLUMN organization_id BIGINT NOT NULL DEFAULT 0;
UPDATE poll_jobs SET organization_id = COALESCE(
    (SELECT i.organization_id FROM instances i WHERE i.id = poll_jobs.instance_id), 0);

ALTER TABLE known_objects ADD COLUMN organization_id BIGINT NOT NULL DEFAULT 0;
UPDATE known_objects SET organization_id = COALESCE(
    (SELECT i.organization_id FROM instances i WHERE i.id = known_objects.instance_id), 0);

ALTER TABLE events ADD COLUMN organization_id BIGINT NOT NULL DEFAULT 0;
UPDATE events SET organization_id = COALESCE(
    (SELECT i.organization_id FROM instances i WHERE i.id = events.instance_id), 0);

ALTER TABLE notifications ADD COLUMN organization_id BIGINT NOT NULL DEFAULT 0;
UPDATE notifications SET organization_id = COALESCE(
    (SELECT i.organization_id FROM instances i WHERE i.id = notifications.instance_id), 0);

ALTER TABLE delivery_attempts ADD COLUMN organization_id BIGINT NOT NULL DEFAULT 0;
UPDATE delivery_attempts SET organization_id = COALESCE(
    (SELECT n.organization_id FROM notifications n WHERE n.id = delivery_attempts.notification_id), 0);

ALTER TABLE sessions ADD COLUMN organization_id BIGINT NOT NULL DEFAULT 0;
UPDATE sessions SET organization_id = COALESCE(
    (SELECT u.organization_id FROM users u WHERE u.id = sessions.user_id), 0);

CREATE INDEX events_by_organization ON events (organization_id, created_at);
