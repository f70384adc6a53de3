-- How many times the stored state of an object (its content hash, its deleted flag) has
-- changed. An event id includes the revision the change departs from
-- (crates/hubhook-core/src/event.rs, `event_id`), so that an object coming back to content it
-- had before (edited and edited back within one second of ConnectWise's clock, or a
-- deletion that shows the same last version twice) is a new change with a new id instead of
-- a duplicate of the old one. Existing rows start at 0, whose ids are those of before.
ALTER TABLE known_objects ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
