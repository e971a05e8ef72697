-- Metric points move from one row per point to per-(run, key) chunks (issue 5; the measurements
-- behind it are in benchmarks/README.md). A row per point cost ~270 B and ~7 us of PostgreSQL
-- CPU per point, almost all of it the 6-column unique index; a chunk row carries up to
-- writer.chunks.CHUNK_CAP (320) points of one series as parallel arrays, so the index holds one
-- entry per chunk. A full chunk (~7.9 kB) fits one heap page and toast_tuple_target keeps it
-- there uncompressed: no TOAST table lookups or decompression on reads (measured 2x faster
-- chart sampling than lz4-compressed 1000-point chunks, at ~26 instead of ~17 B/point).
-- Rows that still outgrow a page (very long keys) are compressed with lz4.
--
-- Invariants the writer keeps and the readers (api/series.py) rely on:
--   * arrays are parallel and sorted by (timestamp, step, value, is_nan), no duplicate inside
--     one chunk; vals holds NULL for NaN (MLflow's value 0 + is_nan);
--   * n, min_/max_ts, min_/max_step and step_sorted describe the arrays exactly, so most
--     reads plan from the index alone (INCLUDE columns) and decode only the chunks they need.
-- Across chunks the same point may appear twice (a client re-sent a request whose answer it
-- lost): readers drop exact duplicates, compaction removes them physically.

CREATE SEQUENCE metric_chunk_id_seq CACHE 100;

CREATE TABLE metric_chunks (
    run_uuid    text               NOT NULL,
    key         text               NOT NULL,
    chunk_id    bigint             NOT NULL DEFAULT nextval('metric_chunk_id_seq'),
    n           int                NOT NULL,
    min_ts      bigint             NOT NULL,
    max_ts      bigint             NOT NULL,
    min_step    bigint             NOT NULL,
    max_step    bigint             NOT NULL,
    step_sorted boolean            NOT NULL,   -- steps non-decreasing along the arrays
    first_val   double precision,              -- vals[1]: chart sampling reads no array
    timestamps  bigint[]           COMPRESSION lz4 NOT NULL,
    steps       bigint[]           COMPRESSION lz4 NOT NULL,
    vals        double precision[] COMPRESSION lz4 NOT NULL,
    PRIMARY KEY (run_uuid, key, chunk_id)
        INCLUDE (n, min_ts, max_ts, min_step, max_step, step_sorted, first_val)
) PARTITION BY HASH (run_uuid);

DO $$
BEGIN
    FOR i IN 0..15 LOOP
        EXECUTE format(
            'CREATE TABLE metric_chunks_p%s PARTITION OF metric_chunks'
            ' FOR VALUES WITH (MODULUS 16, REMAINDER %s) WITH (toast_tuple_target = 8160)',
            lpad(i::text, 2, '0'), i);
    END LOOP;
END $$;

-- Points stored so far become chunks of up to 320 points per series (the old table's unique
-- index guarantees no duplicates).
INSERT INTO metric_chunks (run_uuid, key, n, min_ts, max_ts, min_step, max_step, step_sorted,
                           first_val, timestamps, steps, vals)
SELECT run_uuid, key, count(*), min(timestamp), max(timestamp), min(step), max(step),
       bool_and(prev_step IS NULL OR step >= prev_step),
       (array_agg(CASE WHEN is_nan THEN NULL ELSE value END ORDER BY rn))[1],
       array_agg(timestamp ORDER BY rn), array_agg(step ORDER BY rn),
       array_agg(CASE WHEN is_nan THEN NULL ELSE value END ORDER BY rn)
FROM (
    SELECT *, lag(step) OVER (PARTITION BY run_uuid, key, piece ORDER BY rn) AS prev_step
    FROM (
        SELECT *, (row_number() OVER w - 1) / 320 AS piece, row_number() OVER w AS rn
        FROM metrics
        WINDOW w AS (PARTITION BY run_uuid, key ORDER BY timestamp, step, value, is_nan)
    ) numbered
) pieces
GROUP BY run_uuid, key, piece;

DROP TABLE metrics;

-- The logical table: every stored point once, in no particular order. For operators, tests and
-- the benchmark's acknowledged-vs-stored counts; the api reads metric_chunks directly.
CREATE VIEW metrics AS
SELECT DISTINCT c.run_uuid, c.key, p.step, p.timestamp, coalesce(p.value, 0) AS value,
       p.value IS NULL AS is_nan
FROM metric_chunks c,
     unnest(c.steps, c.timestamps, c.vals) AS p(step, timestamp, value);
