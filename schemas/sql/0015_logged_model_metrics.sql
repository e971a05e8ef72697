-- Metrics logged with a model_id (MLflow 3, issue 14): every such point, also stored on its run
-- (metric_chunks). The writer inserts them from version-2 metric records (schemas/wire.py);
-- the api lists them as a logged model's data.metrics and filters and orders
-- logged-models/search on them. Separate from metric_chunks so the run-metric COPY stays as it
-- was: only the few points that name a model pay for this table.
--
-- The key is MLflow's (model, key, timestamp, step, run): a point re-sent by a client is
-- stored once (the writer's ON CONFLICT DO NOTHING). value is MLflow's storage form (NaN is
-- 0.0, as MLflow shows it on the model). No foreign key to logged_models: the writer joins
-- the model instead (a point naming a missing model is stored on the run only), so a model's
-- removal can never fail a flush; gc removes a collected model's rows.
CREATE TABLE logged_model_metrics (
    model_id       text             NOT NULL,
    key            text             NOT NULL,
    timestamp      bigint           NOT NULL,
    step           bigint           NOT NULL,
    run_uuid       text             NOT NULL REFERENCES runs ON DELETE CASCADE,
    value          double precision NOT NULL,
    dataset_name   text,
    dataset_digest text,
    PRIMARY KEY (model_id, key, timestamp, step, run_uuid)
);
