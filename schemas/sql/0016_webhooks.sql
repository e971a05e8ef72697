-- Model registry webhooks (issue 14): MLflow 3.3+'s WebhookService. Written by the api
-- (api/webhooks/store.py); the deliverer reads the subscriptions of each event it consumes.
-- A delete is soft, as in MLflow: the row stays with deleted_timestamp set and every read skips it.
CREATE TABLE webhooks (
    webhook_id             text PRIMARY KEY,   -- a uuid4, as MLflow's
    name                   text NOT NULL,      -- not unique (MLflow's is not either)
    description            text,
    url                    text NOT NULL,
    secret                 text,               -- HMAC key; never rendered by any route
    status                 text NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'DISABLED')),
    creation_timestamp     bigint NOT NULL,
    last_updated_timestamp bigint NOT NULL,
    deleted_timestamp      bigint
);
-- list-webhooks pages newest first over the live rows.
CREATE INDEX webhooks_live_by_creation ON webhooks (creation_timestamp DESC, webhook_id)
    WHERE deleted_timestamp IS NULL;

-- The events a webhook subscribes to; rendered in primary-key order, as MLflow lists them.
CREATE TABLE webhook_events (
    webhook_id text NOT NULL REFERENCES webhooks (webhook_id) ON DELETE CASCADE,
    entity     text NOT NULL,   -- "registered_model", "model_version_tag", ... (MLflow's values)
    action     text NOT NULL,   -- "created", "set", "deleted", ...
    PRIMARY KEY (webhook_id, entity, action)
);
-- The deliverer's lookup: which webhooks subscribe to (entity, action).
CREATE INDEX webhook_events_by_event ON webhook_events (entity, action);
