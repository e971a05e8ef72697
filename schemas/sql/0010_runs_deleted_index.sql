-- sluice: no-transaction
-- `sluice gc` looks for runs deleted before a cutoff; without this index that is a scan of
-- every run. Built CONCURRENTLY (hence no transaction): writes to runs go on while it builds.
-- IF NOT EXISTS: a `sluice migrate` cut short is simply run again.
CREATE INDEX CONCURRENTLY IF NOT EXISTS runs_deleted_by_time
    ON runs (deleted_time) WHERE lifecycle_stage = 'deleted';
