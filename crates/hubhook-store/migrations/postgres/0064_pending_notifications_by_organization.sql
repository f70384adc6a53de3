-- The delivery claim shares slots out among organizations (crates/hubhook-store/src/deliveries.rs,
-- `OrganizationShares`). Besides the window of the oldest due notifications, it looks up the
-- organizations that have pending notifications (one seek each: the next organization id
-- past the last) and each one's oldest due ones, so an organization whose notifications lie
-- behind another's large backlog is still found. Partial: a delivered notification leaves it,
-- so it stays the size of the queue, not of the history.
CREATE INDEX notifications_pending_by_organization
    ON notifications (organization_id, next_attempt_at, created_at) WHERE status = 'pending';
