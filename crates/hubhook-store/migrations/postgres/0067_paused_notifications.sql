-- A disabled instance's pending notifications are parked: `next_attempt_at` moves to
-- `paused_due_at` and becomes NULL, so the claim's scans of due notifications (which read
-- `next_attempt_at <= now` in the due and per-organization indexes, where NULL never falls in
-- range) no longer read past them; enabling the instance moves it back. Without this, every
-- claim read past a disabled instance's whole backlog (crates/hubhook-store/src/deliveries.rs,
-- "Paused notifications"). Adding a column without a default rewrites nothing.
ALTER TABLE notifications ADD COLUMN paused_due_at BIGINT;
-- Each claim parks what reached a disabled instance since (a failed attempt's retry, a
-- redelivery), driven from the few disabled instances.
CREATE INDEX instances_disabled ON instances (id) WHERE disabled;
-- ... and brings back what is parked for an instance that is enabled (by a node of an
-- older version, during a rolling upgrade, which does not know parking), driven from the few
-- instances with parked notifications.
CREATE INDEX notifications_parked ON notifications (instance_id)
    WHERE status = 'pending' AND next_attempt_at IS NULL AND paused_due_at IS NOT NULL;
