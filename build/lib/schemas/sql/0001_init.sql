-- Sluice schema v1: MLflow tracking entities, the partitioned metrics table and writer offsets.
-- Applied once by `sluice migrate` under an advisory lock; never edit a released migration.

CREATE TABLE experiments (
    experiment_id    bigint PRIMARY KEY,
    name             text   NOT NULL UNIQUE,   -- names stay reserved after deletion (MLflow)
    artifact_location text  NOT NULL,
    lifecycle_stage  text   NOT NULL DEFAULT 'active',
    creation_time    bigint NOT NULL,
    last_update_time bigint NOT NULL
);
-- Experiment 0 ("Default") must exist from the start; created ids continue from 1.
CREATE SEQUENCE experiment_id_seq START 1 OWNED BY experiments.experiment_id;
INSERT INTO experiments VALUES
    (0, 'Default', 'mlflow-artifacts:/0', 'active',
     (extract(epoch FROM now()) * 1000)::bigint, (extract(epoch FROM now()) * 1000)::bigint);

CREATE TABLE experiment_tags (
    experiment_id bigint NOT NULL REFERENCES experiments ON DELETE CASCADE,
    key           text   NOT NULL,
    value         text   NOT NULL,
    PRIMARY KEY (experiment_id, key)
);

CREATE TABLE runs (
    run_uuid        text   PRIMARY KEY,
    experiment_id   bigint NOT NULL REFERENCES experiments,
    name            text   NOT NULL,
    user_id         text   NOT NULL DEFAULT '',
    status          text   NOT NULL DEFAULT 'RUNNING',
    start_time      bigint,
    end_time        bigint,
    lifecycle_stage text   NOT NULL DEFAULT 'active',
    deleted_time    bigint,
    artifact_uri    text   NOT NULL
);
CREATE INDEX runs_by_experiment ON runs (experiment_id, start_time DESC, run_uuid);

-- Ingest caches "run is active"; this tells every ingest process when that stops being true.
CREATE FUNCTION notify_run_lifecycle() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('sluice_run_lifecycle', NEW.run_uuid);
    RETURN NEW;
END $$;
CREATE TRIGGER runs_lifecycle_changed AFTER UPDATE OF lifecycle_stage ON runs
    FOR EACH ROW WHEN (OLD.lifecycle_stage IS DISTINCT FROM NEW.lifecycle_stage)
    EXECUTE FUNCTION notify_run_lifecycle();

CREATE TABLE params (
    run_uuid text NOT NULL REFERENCES runs ON DELETE CASCADE,
    key      text NOT NULL,
    value    text NOT NULL,
    PRIMARY KEY (run_uuid, key)   -- the conflict target that makes param races single-winner
);

CREATE TABLE tags (
    run_uuid text NOT NULL REFERENCES runs ON DELETE CASCADE,
    key      text NOT NULL,
    value    text NOT NULL,
    PRIMARY KEY (run_uuid, key)
);

-- One row per point. Hash partitions by run spread COPY load and keep each run's history in
-- one partition; the unique index is MLflow's metric identity, so re-sent points are stored once.
CREATE TABLE metrics (
    run_uuid  text             NOT NULL,
    key       text             NOT NULL,
    step      bigint           NOT NULL,
    timestamp bigint           NOT NULL,
    value     double precision NOT NULL,   -- NaN stored as 0 with is_nan (MLflow)
    is_nan    boolean          NOT NULL
) PARTITION BY HASH (run_uuid);

DO $$
BEGIN
    FOR i IN 0..15 LOOP
        EXECUTE format(
            'CREATE TABLE metrics_p%s PARTITION OF metrics FOR VALUES WITH (MODULUS 16, REMAINDER %s)',
            lpad(i::text, 2, '0'), i);
    END LOOP;
END $$;

-- Doubles as the history index: get-history reads in (timestamp, step, value) order.
CREATE UNIQUE INDEX metrics_identity ON metrics (run_uuid, key, timestamp, step, value, is_nan);

-- latest value per (run, key) = argmax (step, timestamp, value); maintained by the writer
-- with a monotone conditional upsert, never "last arrived".
CREATE TABLE latest_metrics (
    run_uuid  text             NOT NULL,
    key       text             NOT NULL,
    step      bigint           NOT NULL,
    timestamp bigint           NOT NULL,
    value     double precision NOT NULL,
    is_nan    boolean          NOT NULL,
    PRIMARY KEY (run_uuid, key)
);

-- Consumer offsets live beside the rows they describe, committed in the same transaction.
CREATE TABLE writer_offsets (
    topic       text   NOT NULL,
    partition   int    NOT NULL,
    next_offset bigint NOT NULL,   -- first offset NOT yet stored
    PRIMARY KEY (topic, partition)
);
