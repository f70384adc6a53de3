-- Deleting an instance is a short write that marks it `deleting` (and `disabled`, so that no
-- claim takes its notifications) and drops its poll jobs, then writes of their own that
-- cancel its notifications and forget its known objects a part at a time, then one that
-- deletes the row. SQLite has one writer for every tenant: in one write, a large instance's
-- delete held up every other organization's claims, polls and attempt results for over a
-- second (docs/benchmarks.md, "Twenty-second round"). Every read of an instance skips the
-- ones being deleted (crates/hubhook-store/src/sqlite/instances.rs, "Deleting in parts").
ALTER TABLE instances ADD COLUMN deleting INTEGER NOT NULL DEFAULT 0;
-- Opening the store finishes the deletes a stopped node left halfway, found from here.
CREATE INDEX instances_deleting ON instances (id) WHERE deleting = 1;
