-- Points whose run was deleted (or never existed) by the time the writer stored them.
-- They were acknowledged while the run was active, so they are kept here, not dropped, and
-- counted (sluice_writer_quarantined_total); an operator can move them back on restore.
CREATE TABLE quarantined_metrics (
    run_uuid       text             NOT NULL,
    key            text             NOT NULL,
    step           bigint           NOT NULL,
    timestamp      bigint           NOT NULL,
    value          double precision NOT NULL,
    is_nan         boolean          NOT NULL,
    reason         text             NOT NULL,
    quarantined_at timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX quarantined_metrics_by_run ON quarantined_metrics (run_uuid);
