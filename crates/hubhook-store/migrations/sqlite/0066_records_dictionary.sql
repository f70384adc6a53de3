-- From this version on, `known_objects.record` and `events.record` may hold zstd frames packed
-- with the record dictionary built into the binary (src/sqlite/packed.rs). Nothing in the
-- schema changes; this version exists so that an older hubhook, which cannot unpack such rows,
-- refuses to start on this database ("migration 66 was previously applied but is missing")
-- instead of failing on each row it reads.
SELECT 1;
