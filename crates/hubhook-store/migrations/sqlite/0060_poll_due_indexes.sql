-- Finding when the next poll is due must not read every job: with thousands of instances the
-- engine asks after every round. Unleased jobs are walked in due order (the first enabled one
-- answers) and leased ones, few at any time, are found through their own index.
CREATE INDEX poll_jobs_unleased_by_due ON poll_jobs (next_run_at) WHERE lease_until IS NULL;
CREATE INDEX poll_jobs_leased ON poll_jobs (lease_until) WHERE lease_until IS NOT NULL;
