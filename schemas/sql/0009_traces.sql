-- MLflow 3 traces (issue 13): trace info and spans, written by the writer from the traces topic
-- (schemas/trace_wire.py); tags, assessments and run links also by the api.
--
-- Both big tables are hash-partitioned by trace id, as the Kafka records are keyed: one trace's
-- rows live in one partition and are written by one writer. There is no foreign key between
-- them: spans may arrive before or after the trace's info, and each flush upserts both.

CREATE TABLE trace_info (
    trace_id          text    NOT NULL,
    experiment_id     bigint  NOT NULL,
    request_time_ms   bigint  NOT NULL,
    execution_ms      bigint,
    state             text    NOT NULL,    -- OK | ERROR | IN_PROGRESS | STATE_UNSPECIFIED
    request_preview   text,
    response_preview  text,
    client_request_id text,
    -- StartTraceV3 was stored: its top-level fields are the client's final word and spans
    -- arriving later no longer move timestamps or state (MLflow's infoFinalized).
    finalized         boolean NOT NULL DEFAULT false,
    span_start_ms     bigint,              -- earliest span start stored (ms)
    span_end_ms       bigint,              -- latest span end stored (ms)
    tags              jsonb   NOT NULL DEFAULT '{}',
    metadata          jsonb   NOT NULL DEFAULT '{}',
    PRIMARY KEY (trace_id)
) PARTITION BY HASH (trace_id);

-- search_traces' default order (request time descending, id ascending) within experiments.
CREATE INDEX trace_info_by_experiment ON trace_info (experiment_id, request_time_ms DESC, trace_id);

CREATE TABLE trace_spans (
    trace_id       text   NOT NULL,
    span_id        text   NOT NULL,        -- 16 hex digits
    parent_span_id text,
    name           text   NOT NULL,
    span_type      text,
    status         text   NOT NULL,        -- OK | ERROR | UNSET
    start_ns       bigint NOT NULL,
    end_ns         bigint,
    proto          bytea  NOT NULL,        -- the OTLP Span message; reads render it
    PRIMARY KEY (trace_id, span_id)
) PARTITION BY HASH (trace_id);

DO $$
BEGIN
    FOR i IN 0..15 LOOP
        EXECUTE format(
            'CREATE TABLE trace_info_p%s PARTITION OF trace_info'
            ' FOR VALUES WITH (MODULUS 16, REMAINDER %s)', lpad(i::text, 2, '0'), i);
        EXECUTE format(
            'CREATE TABLE trace_spans_p%s PARTITION OF trace_spans'
            ' FOR VALUES WITH (MODULUS 16, REMAINDER %s)', lpad(i::text, 2, '0'), i);
    END LOOP;
END $$;

-- Feedback and expectations: rare, written synchronously by the api. ``doc`` is the Assessment
-- message in MLflow's JSON form (ids, source, timestamps, value, rationale, metadata...).
CREATE TABLE trace_assessments (
    trace_id      text   NOT NULL,
    assessment_id text   NOT NULL,
    created_ms    bigint NOT NULL,
    doc           jsonb  NOT NULL,
    PRIMARY KEY (trace_id, assessment_id)
);

-- traces/link-to-run: search_traces(run_id=...) finds these as well as mlflow.sourceRun.
CREATE TABLE trace_run_links (
    trace_id text NOT NULL,
    run_id   text NOT NULL,
    PRIMARY KEY (trace_id, run_id)
);
CREATE INDEX trace_run_links_by_run ON trace_run_links (run_id);
