-- Webhook events waiting for Kafka (api/webhooks/outbox.py): a registry change writes its event
-- here in the change's own transaction, so a change that committed always has its event; the
-- request publishes it after the commit and deletes the row, and each api's relay publishes
-- the rows a request could not (Kafka down, the process died between commit and produce).
CREATE TABLE webhook_outbox (
    event_id   text PRIMARY KEY,          -- EventRecord.event_id (a uuid4): stable across re-sends
    key        text NOT NULL,             -- the Kafka key: the registered model's name
    record     bytea NOT NULL,            -- schemas.webhook_events.encode(record)
    created_at timestamptz NOT NULL DEFAULT now()
);
-- The relay takes the oldest rows first.
CREATE INDEX webhook_outbox_by_age ON webhook_outbox (created_at);
