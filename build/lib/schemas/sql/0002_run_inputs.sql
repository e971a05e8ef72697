-- Sluice schema v2: run inputs (datasets, input tags, logged-model inputs) and model outputs.
-- Written synchronously by the api (runs/log-inputs, runs/outputs): low volume, and MLflow's
-- deduplication must be decided on the call (docs/design.md).

-- Datasets are experiment-scoped and deduplicated on (experiment, name, digest), as in MLflow.
CREATE TABLE datasets (
    dataset_uuid  text   PRIMARY KEY,
    experiment_id bigint NOT NULL REFERENCES experiments,
    name          text   NOT NULL,
    digest        text   NOT NULL,
    source_type   text   NOT NULL,
    source        text   NOT NULL,
    schema        text,
    profile       text,
    UNIQUE (experiment_id, name, digest)
);

-- The run -> dataset link, stored once; its tags are kept from the first link only (MLflow).
-- `context` copies the input tag mlflow.data.context, which `datasets.context` filters read.
CREATE TABLE run_inputs (
    run_uuid     text   NOT NULL REFERENCES runs ON DELETE CASCADE,
    dataset_uuid text   NOT NULL REFERENCES datasets,
    context      text,
    position     bigint GENERATED ALWAYS AS IDENTITY,   -- logging order, for rendering
    PRIMARY KEY (run_uuid, dataset_uuid)
);
CREATE INDEX run_inputs_by_dataset ON run_inputs (dataset_uuid);

CREATE TABLE input_tags (
    run_uuid     text NOT NULL,
    dataset_uuid text NOT NULL,
    key          text NOT NULL,
    value        text NOT NULL,
    position     int  NOT NULL,   -- order within the request
    PRIMARY KEY (run_uuid, dataset_uuid, key),
    FOREIGN KEY (run_uuid, dataset_uuid) REFERENCES run_inputs ON DELETE CASCADE
);

-- Logged models a run read (log-inputs `models`) or produced (runs/outputs), at most once per
-- (run, model) as in MLflow: a repeated input is ignored, a repeated output refused. The models
-- themselves are a later schema: model_id is not a foreign key.
CREATE TABLE run_model_inputs (
    run_uuid text   NOT NULL REFERENCES runs ON DELETE CASCADE,
    model_id text   NOT NULL,
    position bigint GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (run_uuid, model_id)
);

CREATE TABLE run_model_outputs (
    run_uuid text   NOT NULL REFERENCES runs ON DELETE CASCADE,
    model_id text   NOT NULL,
    step     bigint NOT NULL,
    position bigint GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (run_uuid, model_id)
);
