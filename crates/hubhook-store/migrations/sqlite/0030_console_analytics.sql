-- The console's charts count delivery attempts by time across an organization's instances
-- (GET /instances/events/analytics); without this index every chart would scan all attempts.
CREATE INDEX delivery_attempts_by_time ON delivery_attempts (attempted_at);
