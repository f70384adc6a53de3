-- The delivery queue API pages through an organization's notifications newest first by
-- (created_at, id); without this index every page sorted the organization's whole history.
CREATE INDEX notifications_by_organization ON notifications (organization_id, created_at, id);
