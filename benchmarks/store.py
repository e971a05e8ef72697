"""Direct database access of the benchmark: verification counts, bulk loads for the read
workloads, storage sizes, table growth.

MLflow stores one row per point in ``metrics``; Sluice stores per-(run, key) chunks in
``metric_chunks`` and offers the logical one-row-per-distinct-point ``metrics`` view
(schemas/sql/0007_metric_chunks.sql), so the final verification is the same SQL on both.
Bulk loads write each system's native layout (Sluice: chunks of 320 points, built by the
server from generate_series).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import asyncpg

# Rows per COPY call: bounded memory in the benchmark process.
_CHUNK = 200_000


_COUNT = (
    "SELECT count(*) FROM metrics WHERE run_uuid = ANY($1::text[])"
    " AND step / $2 = ANY($3::bigint[])"
)
# Sluice while draining: stored copies, without the view's de-duplication (cheaper to poll).
_COUNT_STORED_COPIES = (
    "SELECT count(*) FROM metric_chunks c, unnest(c.steps) AS s(step)"
    " WHERE c.run_uuid = ANY($1::text[]) AND s.step / $2 = ANY($3::bigint[])"
)


async def count_acked(
    dsn: str, runs: list[str], divisor: int, seqs: list[int], *, copies: bool = False
) -> int:
    """Stored points of the acknowledged requests (step // divisor identifies the request);
    ``copies``: count Sluice's stored copies instead of distinct points."""
    if not seqs:
        return 0
    conn = await asyncpg.connect(dsn)
    try:
        sql = _COUNT_STORED_COPIES if copies else _COUNT
        return int(await conn.fetchval(sql, runs, divisor, seqs))
    finally:
        await conn.close()


async def wait_for(
    dsn: str, runs: list[str], divisor: int, seqs: list[int], want: int, timeout_s: float
) -> tuple[int, float]:
    """Poll until ``want`` acknowledged points are stored (Sluice's writer may still be
    draining Kafka) or the deadline passes; return (found, seconds waited)."""
    started = time.perf_counter()
    copies = await _is_sluice(dsn)
    found = await count_acked(dsn, runs, divisor, seqs, copies=copies)
    while found < want and time.perf_counter() - started < timeout_s:
        await asyncio.sleep(0.25)
        found = await count_acked(dsn, runs, divisor, seqs, copies=copies)
    waited = time.perf_counter() - started
    if copies:  # the figure reported: distinct points, as reads see them
        found = await count_acked(dsn, runs, divisor, seqs)
    return found, waited


async def _is_sluice(dsn: str) -> bool:
    conn = await asyncpg.connect(dsn)
    try:
        return bool(await conn.fetchval("SELECT to_regclass('metric_chunks') IS NOT NULL"))
    finally:
        await conn.close()


# --- bulk loads ---------------------------------------------------------------------------------


def _points(run_id: str, key: str, n: int, t0: int) -> Iterator[tuple[str, str, int, int, float]]:
    for i in range(n):
        yield run_id, key, i, t0 + i, i * 0.001


async def load_history(system: str, dsn: str, run_id: str, key: str, n: int) -> None:
    """``n`` points of ``key`` into ``run_id`` (which exists) plus its latest_metrics row."""
    if system == "sluice":
        await generate_series(system, dsn, [run_id], key, n)
        return
    conn = await asyncpg.connect(dsn, command_timeout=3600)
    try:
        t0 = int(time.time() * 1000) - n
        batch: list[tuple[object, ...]] = []
        for point in _points(run_id, key, n, t0):
            batch.append(_row(system, *point))
            if len(batch) >= _CHUNK:
                await _copy_metrics(conn, system, batch)
                batch = []
        if batch:
            await _copy_metrics(conn, system, batch)
        last = _row(system, run_id, key, n - 1, t0 + n - 1, (n - 1) * 0.001)
        await _copy_latest(conn, system, [last])
    finally:
        await conn.close()


# Sluice: one chunk row per 320 consecutive points (the writer's CHUNK_CAP), in the layout
# and with the metadata the writer produces.
_SLUICE_CHUNKS = """
    INSERT INTO metric_chunks (run_uuid, key, n, min_ts, max_ts, min_step, max_step,
                               step_sorted, first_val, timestamps, steps, vals)
    SELECT r, $2, count(*), min($4::bigint + g), max($4::bigint + g), min(g), max(g), true,
           min(g) * 0.001, array_agg($4::bigint + g ORDER BY g), array_agg(g ORDER BY g),
           array_agg(g * 0.001 ORDER BY g)
    FROM unnest($1::text[]) AS r, generate_series(0, $3::bigint - 1) AS g
    GROUP BY r, g / 320"""
_GENERATE = {
    "mlflow": """
        INSERT INTO {table} (key, value, timestamp, run_uuid, step, is_nan)
        SELECT $2, g * 0.001, $4::bigint + g, r, g, false
        FROM unnest($1::text[]) AS r, generate_series({first}, $3::bigint - 1) AS g""",
    "sluice": """
        INSERT INTO {table} (run_uuid, key, step, timestamp, value, is_nan)
        SELECT r, $2, g, $4::bigint + g, g * 0.001, false
        FROM unnest($1::text[]) AS r, generate_series({first}, $3::bigint - 1) AS g""",
}
_POINTS_TABLE = {"mlflow": "metrics", "sluice": "metric_chunks"}


async def generate_series(
    system: str, dsn: str, runs: list[str], key: str, n: int, analyze: bool = True
) -> None:
    """``n`` points of ``key`` in each of ``runs`` (existing runs), written by the server itself
    (INSERT ... SELECT generate_series), plus their latest_metrics rows. ``analyze=False``
    leaves the statistics to the caller (one ANALYZE after many keys, not one per key)."""
    conn = await asyncpg.connect(dsn, command_timeout=3600)
    try:
        t0 = int(time.time() * 1000) - n
        sql = _GENERATE[system]
        points_sql = _SLUICE_CHUNKS if system == "sluice" else sql.format(table="metrics", first=0)
        for start in range(0, len(runs), 10):
            part = runs[start : start + 10]
            await conn.execute(points_sql, part, key, n, t0)
        await conn.execute(
            sql.format(table="latest_metrics", first="$3::bigint - 1"), runs, key, n, t0
        )
        if analyze:
            await conn.execute(f"ANALYZE {_POINTS_TABLE[system]}")
    finally:
        await conn.close()


def _row(system: str, run: str, key: str, step: int, ts: int, value: float) -> tuple[object, ...]:
    if system == "mlflow":  # metrics(key, value, timestamp, run_uuid, step, is_nan)
        return key, value, ts, run, step, False
    return run, key, step, ts, value, False  # Sluice's latest_metrics column order


_COLUMNS = {
    "mlflow": ["key", "value", "timestamp", "run_uuid", "step", "is_nan"],
    "sluice": ["run_uuid", "key", "step", "timestamp", "value", "is_nan"],
}
_CHUNK_COLUMNS = [
    *("run_uuid", "key", "n", "min_ts", "max_ts", "min_step", "max_step", "step_sorted"),
    *("first_val", "timestamps", "steps", "vals"),
]


async def _copy_metrics(
    conn: asyncpg.Connection, system: str, rows: list[tuple[object, ...]]
) -> None:
    if system == "mlflow":
        await conn.copy_records_to_table("metrics", records=rows, columns=_COLUMNS[system])
        return
    chunks = [  # one single-point chunk per row (run, key, step, ts, value, is_nan)
        (run, key, 1, ts, ts, step, step, True, value, [ts], [step], [value])
        for run, key, step, ts, value, _ in rows
    ]
    await conn.copy_records_to_table("metric_chunks", records=chunks, columns=_CHUNK_COLUMNS)


async def _copy_latest(
    conn: asyncpg.Connection, system: str, rows: list[tuple[object, ...]]
) -> None:
    await conn.copy_records_to_table("latest_metrics", records=rows, columns=_COLUMNS[system])


@dataclass(frozen=True, slots=True)
class BulkRun:
    """One finished run for ``load_runs``: its name, start time, one metric point at step 0
    (also its latest value) and one param."""

    name: str
    start_time: int
    metric: tuple[str, float]
    param: tuple[str, str]


async def load_search_runs(system: str, dsn: str, experiment_id: str, n: int) -> list[str]:
    """``n`` runs in the experiment, each with one ``loss`` point (metrics and latest_metrics)
    and one param; returns their ids."""
    now = int(time.time() * 1000)
    runs = [
        BulkRun(f"search-{i}", now + i, ("loss", (i * 7919 % n) / n), ("lr", "0.01"))
        for i in range(n)
    ]
    return await load_runs(system, dsn, experiment_id, runs)


async def load_runs(
    system: str, dsn: str, experiment_id: str, runs: Sequence[BulkRun]
) -> list[str]:
    """``runs`` in the experiment, written with COPY into the tables a run's creation and one
    log-batch fill (runs, metrics, latest_metrics, params, the run name tag); their ids."""
    now = int(time.time() * 1000)
    ids = [uuid.uuid4().hex for _ in runs]
    conn = await asyncpg.connect(dsn, command_timeout=600)
    try:
        async with conn.transaction():
            await _copy_runs(conn, system, experiment_id, list(zip(ids, runs, strict=True)))
            points = [
                _row(system, r, run.metric[0], 0, now, run.metric[1])
                for r, run in zip(ids, runs, strict=True)
            ]
            await _copy_metrics(conn, system, points)
            await _copy_latest(conn, system, points)
            await conn.copy_records_to_table(
                "params",
                records=[(r, *run.param) for r, run in zip(ids, runs, strict=True)],
                columns=["run_uuid", "key", "value"],
            )
            # Every real run has its name tag (the UI's runs table expects tags).
            await conn.copy_records_to_table(
                "tags",
                records=[(r, "mlflow.runName", run.name) for r, run in zip(ids, runs, strict=True)],
                columns=["run_uuid", "key", "value"],
            )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return ids


async def _copy_runs(
    conn: asyncpg.Connection, system: str, experiment_id: str, runs: list[tuple[str, BulkRun]]
) -> None:
    if system == "mlflow":
        columns = [
            "run_uuid",
            "name",
            "source_type",
            "source_name",
            "entry_point_name",
            "user_id",
            "status",
            "start_time",
            "end_time",
            "source_version",
            "lifecycle_stage",
            "artifact_uri",
            "experiment_id",
        ]
        rows: list[tuple[object, ...]] = [
            (
                r,
                run.name,
                "UNKNOWN",
                "",
                "",
                "bench",
                "FINISHED",
                run.start_time,
                run.start_time + 1,
                "",
                "active",
                f"mlflow-artifacts:/{experiment_id}/{r}/artifacts",
                int(experiment_id),
            )
            for r, run in runs
        ]
    else:
        columns = [
            "run_uuid",
            "experiment_id",
            "name",
            "user_id",
            "status",
            "start_time",
            "end_time",
            "lifecycle_stage",
            "artifact_uri",
        ]
        rows = [
            (
                r,
                int(experiment_id),
                run.name,
                "bench",
                "FINISHED",
                run.start_time,
                run.start_time + 1,
                "active",
                f"mlflow-artifacts:/{experiment_id}/{r}/artifacts",
            )
            for r, run in runs
        ]
    await conn.copy_records_to_table("runs", records=rows, columns=columns)


# --- storage and growth ------------------------------------------------------------------------

_SIZE = """
SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_partition_tree($1::regclass))
    THEN (SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree($1::regclass))
    ELSE pg_total_relation_size($1::regclass) END
"""


async def vacuum(system: str, dsn: str) -> float:
    """VACUUM ANALYZE the tables a run load fills; the seconds taken. After a bulk load, so
    that reads are timed in the steady state (hint bits set, visibility map current) rather
    than beside the autovacuum that the load would start."""
    return await _vacuum_analyze(
        dsn, ("runs", _POINTS_TABLE[system], "latest_metrics", "params", "tags")
    )


_TRACE_TABLES = {
    "sluice": ("trace_info", "trace_spans"),
    "mlflow": ("trace_info", "trace_tags", "trace_request_metadata", "spans"),
}


async def vacuum_traces(system: str, dsn: str) -> float:
    """VACUUM ANALYZE the trace tables, then CHECKPOINT; the seconds taken. Between trace
    phases, so that a phase is not timed beside the autovacuum of the one before (after a
    million-span phase it took a third of a core for the next phase's whole window) or beside
    the checkpoint writing its dirty buffers: both systems share the server, and with the span
    rounds alternating, each MLflow round follows a Sluice round of ~400k spans."""
    return await _vacuum_analyze(dsn, _TRACE_TABLES[system], checkpoint=True)


async def _vacuum_analyze(dsn: str, tables: tuple[str, ...], *, checkpoint: bool = False) -> float:
    started = time.perf_counter()
    conn = await asyncpg.connect(dsn, command_timeout=1800)
    try:
        for table in tables:
            await conn.execute(f"VACUUM ANALYZE {table}")
        if checkpoint:
            await conn.execute("CHECKPOINT")
    finally:
        await conn.close()
    return round(time.perf_counter() - started, 1)


async def storage(dsn: str) -> dict[str, float]:
    """Bytes of the metric tables (all partitions, indexes, TOAST) per stored point."""
    conn = await asyncpg.connect(dsn, command_timeout=600)
    try:
        table = "metric_chunks" if await _is_sluice(dsn) else "metrics"
        await conn.execute(f"VACUUM ANALYZE {table}")
        await conn.execute("VACUUM ANALYZE latest_metrics")
        points = int(await conn.fetchval("SELECT count(*) FROM metrics"))  # distinct points
        metrics_bytes = int(await conn.fetchval(_SIZE, table))
        latest_bytes = int(await conn.fetchval(_SIZE, "latest_metrics"))
    finally:
        await conn.close()
    per = (lambda b: round(b / points, 1)) if points else (lambda b: 0.0)
    return {
        "points": points,
        "metrics_bytes": metrics_bytes,
        "latest_metrics_bytes": latest_bytes,
        "bytes_per_point": per(metrics_bytes + latest_bytes),
        "metrics_bytes_per_point": per(metrics_bytes),
    }


async def truncate_metrics(dsn: str) -> None:
    """Empty Sluice's metric tables, so the growth curve starts from a known size (after the
    storage figures were taken)."""
    conn = await asyncpg.connect(dsn, command_timeout=600)
    try:
        await conn.execute("TRUNCATE metric_chunks, latest_metrics")
    finally:
        await conn.close()


async def row_count(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        # Stored copies (the growth curve's x axis); exact and cheap: one row per chunk.
        return int(await conn.fetchval("SELECT coalesce(sum(n), 0) FROM metric_chunks"))
    finally:
        await conn.close()


async def grow_sluice(dsn: str, rows: int, label: str) -> float:
    """Add ``rows`` synthetic points to Sluice's metric_chunks (server-side generate_series,
    runs of 100k points over 10 keys, 320-point chunks, spread over all hash partitions);
    returns seconds taken."""
    started = time.perf_counter()
    conn = await asyncpg.connect(dsn, command_timeout=7200)
    try:
        step = 5_000_000
        for offset in range(0, rows, step):
            n = min(step, rows - offset)
            await conn.execute(
                """
                INSERT INTO metric_chunks (run_uuid, key, n, min_ts, max_ts, min_step,
                                           max_step, step_sorted, first_val, timestamps, steps,
                                           vals)
                SELECT md5($1 || ((g / 100000)::text)), 'k' || (g % 10), count(*),
                       min(1700000000000 + g), max(1700000000000 + g), min(g / 10),
                       max(g / 10), true, min(g) * 0.001,
                       array_agg(1700000000000 + g ORDER BY g), array_agg(g / 10 ORDER BY g),
                       array_agg(g * 0.001 ORDER BY g)
                FROM generate_series($2::bigint, $3::bigint) AS g
                GROUP BY g / 100000, g % 10, (g % 100000) / 3200
                """,
                label,
                offset,
                offset + n - 1,
            )
        await conn.execute("ANALYZE metric_chunks")
    finally:
        await conn.close()
    return time.perf_counter() - started


# --- traces (benchmarks/traces.py) --------------------------------------------------------------

# Both systems keep one row per span keyed by MLflow's trace id ("tr-" + 32 hex).
_SPAN_TABLE = {"sluice": "trace_spans", "mlflow": "spans"}
_TRACE_INFOS = "SELECT count(*) FROM trace_info WHERE experiment_id = $1"


async def wait_for_spans(
    system: str, dsn: str, trace_ids: list[str], want: int, timeout_s: float
) -> tuple[int, float]:
    """Wait until ``want`` spans of ``trace_ids`` are stored or the deadline passes; return
    (found, seconds waited). Spans are unique by (trace, span) in both stores.

    The wait polls a cheap count: spans whose trace id has the phase's prefix (an index range;
    every trace id of a phase shares its first 8 bytes). The exact count of ``trace_ids`` runs
    once that is reached and is not part of the wait: counting a million spans by id every
    0.25 s took a core of the PostgreSQL under test away from the writers it waited for, and
    made the verifier's own cost part of Sluice's drain."""
    started = time.perf_counter()
    if not trace_ids:
        return 0, 0.0
    prefix = trace_ids[0][: len("tr-") + 16]
    if not all(t.startswith(prefix) for t in trace_ids):
        raise ValueError("wait_for_spans: the trace ids do not share one phase prefix")
    table = _SPAN_TABLE[system]
    in_range = f"SELECT count(*) FROM {table} WHERE trace_id >= $1 AND trace_id < $2"
    # A join, not ``= ANY``: PostgreSQL plans a hash join (one scan) for 10^5 ids.
    exact = f"SELECT count(*) FROM {table} JOIN unnest($1::text[]) AS a(id) ON trace_id = a.id"
    deadline = started + timeout_s
    conn = await asyncpg.connect(dsn)
    try:
        gap_s = 0.05
        while (
            int(await conn.fetchval(in_range, prefix, prefix + "g")) < want
            and time.perf_counter() < deadline
        ):
            await asyncio.sleep(gap_s)
            gap_s = min(gap_s * 2, 0.2)
        waited = time.perf_counter() - started
        found = int(await conn.fetchval(exact, trace_ids))
        while found < want and time.perf_counter() < deadline:  # a span outside the acked set
            await asyncio.sleep(1.0)
            found = int(await conn.fetchval(exact, trace_ids))
            waited = time.perf_counter() - started
    finally:
        await conn.close()
    return found, waited


async def wait_for_trace_infos(
    dsn: str, experiment_id: str, want: int, timeout_s: float
) -> tuple[int, float]:
    """Poll until the experiment holds ``want`` traces (Sluice's writers draining the fill)."""
    started = time.perf_counter()
    conn = await asyncpg.connect(dsn)
    try:
        found = int(await conn.fetchval(_TRACE_INFOS, int(experiment_id)))
        while found < want and time.perf_counter() - started < timeout_s:
            await asyncio.sleep(1.0)
            found = int(await conn.fetchval(_TRACE_INFOS, int(experiment_id)))
    finally:
        await conn.close()
    return found, time.perf_counter() - started


# MLflow's trace tables as its SQL store writes them for a trace logged by the client: the info
# row, the tags it sets (artifact location, trace name, the user's tag) and the request
# metadata (schema version, size). Built server-side: 1M client traces through its REST API
# would take hours at the span rate measured in the ingest phase.
_MLFLOW_TRACE_FILL = (
    """INSERT INTO trace_info (request_id, experiment_id, timestamp_ms, execution_time_ms,
        status, request_preview, response_preview, trace_name)
    SELECT 'tr-' || md5($1 || g), {experiment}, {t0} + g, 40, 'OK',
        '{{"query": "What is the capital of France?", "step": 0}}',
        '{{"answer": "Paris", "tokens": 7}}', 'agent'
    FROM generate_series(0, {count} - 1) AS g""",
    """INSERT INTO trace_tags (request_id, key, value)
    SELECT 'tr-' || md5($1 || g), k.key, CASE k.key
        WHEN 'group' THEN 'g' || lpad((g % 100)::text, 2, '0')
        WHEN 'mlflow.traceName' THEN 'agent'
        ELSE 'file:///bench/{experiment}/traces/tr-' || md5($1 || g) || '/artifacts' END
    FROM generate_series(0, {count} - 1) AS g,
        (VALUES ('group'), ('mlflow.traceName'), ('mlflow.artifactLocation')) AS k(key)""",
    """INSERT INTO trace_request_metadata (request_id, key, value)
    SELECT 'tr-' || md5($1 || g), k.key, k.value
    FROM generate_series(0, {count} - 1) AS g,
        (VALUES ('mlflow.trace_schema.version', '3'), ('mlflow.trace.sizeBytes', '2400'))
        AS k(key, value)""",
)


async def fill_mlflow_traces(dsn: str, experiment_id: str, count: int, t0_ms: int) -> float:
    """``count`` traces in MLflow's tables for ``experiment_id`` (request times t0_ms + i);
    returns the seconds taken (ANALYZE included)."""
    started = time.perf_counter()
    numbers = {"experiment": int(experiment_id), "t0": int(t0_ms), "count": int(count)}
    salt = uuid.uuid4().hex  # ids of a second fill differ
    conn = await asyncpg.connect(dsn)
    try:
        for sql in _MLFLOW_TRACE_FILL:
            await conn.execute(sql.format(**numbers), salt)
        await conn.execute("ANALYZE trace_info; ANALYZE trace_tags; ANALYZE trace_request_metadata")
    finally:
        await conn.close()
    return time.perf_counter() - started
