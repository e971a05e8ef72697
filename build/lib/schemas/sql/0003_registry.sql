-- Model registry (MLflow's ModelRegistryService) and MLflow 3 logged models.
--
-- LOCK ORDER (api/registry/store.py): every registry write transaction first takes the row
-- lock of its one registered_models row (SELECT ... FOR UPDATE, or the UPDATE that bumps
-- max_version), and only then touches model_versions, model_version_tags,
-- registered_model_tags or registered_model_aliases of that model. A transaction never locks
-- two models, so there is no lock cycle and every write to one model is serialised.
-- Readers take no locks: each read is one statement, so it sees one committed state.

CREATE TABLE registered_models (
    id                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                   text   NOT NULL UNIQUE,   -- case-sensitive, as in MLflow
    creation_timestamp     bigint NOT NULL,
    last_updated_timestamp bigint NOT NULL,
    description            text,
    -- Highest version number ever issued. Only ever incremented (under the row lock), so numbers
    -- are never reused after a delete and concurrent creations get distinct, gap-free numbers.
    max_version            bigint NOT NULL DEFAULT 0
);

CREATE TABLE registered_model_tags (
    model_id bigint NOT NULL REFERENCES registered_models ON DELETE CASCADE,
    key      text   NOT NULL,
    value    text   NOT NULL,
    PRIMARY KEY (model_id, key)
);

CREATE TABLE model_versions (
    model_id               bigint NOT NULL REFERENCES registered_models ON DELETE CASCADE,
    version                bigint NOT NULL,
    creation_timestamp     bigint NOT NULL,
    last_updated_timestamp bigint NOT NULL,
    description            text,
    user_id                text,
    current_stage          text   NOT NULL DEFAULT 'None',  -- 'Deleted_Internal' = soft-deleted
    source                 text,
    run_id                 text,
    run_link               text,
    status                 text   NOT NULL DEFAULT 'READY',
    status_message         text,
    storage_location       text,  -- what get-download-uri answers (resolved models:/ sources)
    logged_model_id        text,
    PRIMARY KEY (model_id, version)
);
CREATE INDEX model_versions_by_stage ON model_versions (model_id, current_stage, version DESC);
CREATE INDEX model_versions_by_run ON model_versions (run_id);

CREATE TABLE model_version_tags (
    model_id bigint NOT NULL,
    version  bigint NOT NULL,
    key      text   NOT NULL,
    value    text   NOT NULL,
    PRIMARY KEY (model_id, version, key),
    FOREIGN KEY (model_id, version) REFERENCES model_versions ON DELETE CASCADE
);

-- One row per (model, alias): moving an alias is an upsert, so it always has one target.
CREATE TABLE registered_model_aliases (
    model_id bigint NOT NULL REFERENCES registered_models ON DELETE CASCADE,
    alias    text   NOT NULL,
    version  bigint NOT NULL,
    PRIMARY KEY (model_id, alias),
    FOREIGN KEY (model_id, version) REFERENCES model_versions ON DELETE CASCADE
);

-- MLflow 3 logged models (m-<32 hex>).
CREATE TABLE logged_models (
    model_id               text   PRIMARY KEY,
    experiment_id          bigint NOT NULL REFERENCES experiments,
    name                   text   NOT NULL,
    artifact_location      text   NOT NULL,
    creation_timestamp     bigint NOT NULL,
    last_updated_timestamp bigint NOT NULL,
    status                 text   NOT NULL DEFAULT 'LOGGED_MODEL_PENDING',
    status_message         text,
    model_type             text,
    source_run_id          text,
    lifecycle_stage        text   NOT NULL DEFAULT 'active'
);
CREATE INDEX logged_models_by_experiment ON logged_models (experiment_id, creation_timestamp DESC);

CREATE TABLE logged_model_tags (
    model_id text NOT NULL REFERENCES logged_models ON DELETE CASCADE,
    key      text NOT NULL,
    value    text NOT NULL,
    PRIMARY KEY (model_id, key)
);

CREATE TABLE logged_model_params (
    model_id text NOT NULL REFERENCES logged_models ON DELETE CASCADE,
    key      text NOT NULL,
    value    text NOT NULL,
    PRIMARY KEY (model_id, key)
);
