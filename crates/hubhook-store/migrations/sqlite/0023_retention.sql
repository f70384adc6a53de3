-- Retention prunes by age: these keep each batch an index range instead of a table scan.
CREATE INDEX notifications_by_delivered ON notifications (delivered_at) WHERE delivered_at IS NOT NULL;
CREATE INDEX events_by_created ON events (created_at);
