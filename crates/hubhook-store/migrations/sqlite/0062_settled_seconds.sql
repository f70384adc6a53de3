-- What a poll learns about ConnectWise's clock, so that a second which has ended is not read
-- again (the tie set of a mass update): `settled_before` (ms) is the instant before which
-- every record's date is known to have been read (see the poller's module docs),
-- `clock_lag_ms` the smallest observed bound on how far record dates run behind the `Date`
-- header's clock. Both NULL until a poll has learnt them.
ALTER TABLE poll_jobs ADD COLUMN settled_before INTEGER;
ALTER TABLE poll_jobs ADD COLUMN clock_lag_ms INTEGER;
