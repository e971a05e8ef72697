"""One flush = one PostgreSQL transaction: chunks, latest values and offsets commit together.

Steps: lock the batch's runs FOR SHARE and set aside points of runs that are no longer active
(quarantine); binary COPY of one chunk row per (run, key) into the partitioned
``metric_chunks`` table (schemas.chunks: sorted, de-duplicated, at most CHUNK_CAP points);
monotone upsert of ``latest_metrics``; conditional offset update (fencing).

Re-delivery cannot store a point twice: offsets commit with the chunks, so a record is either
stored and past the offset, or neither. A point a client *re-sent* (lost answer) may land in two
chunks; readers drop exact duplicates and compaction (writer.compact) removes them.

Lock order: runs rows (sorted by run_uuid, FOR SHARE) before latest_metrics rows (sorted by
(run_uuid, key)). A concurrent run or experiment delete waits for the flush to commit, so a
point is either stored before the delete or quarantined after it -- never stored into a run
already deleted.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from schemas import chunks
from schemas.chunks import Point
from sluice import metrics, telemetry
from writer import offsets
from writer.batch import Batch, Series

_STAGING_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS staging_latest (LIKE latest_metrics) ON COMMIT DELETE ROWS;"
    " CREATE TEMP TABLE IF NOT EXISTS staging_model_metrics (LIKE logged_model_metrics)"
    " ON COMMIT DELETE ROWS"
)
# The WHERE makes the upsert monotone across batches, so arrival order never matters; rows
# are sorted by (run_uuid, key), which fixes the row-lock order between writers (MLflow's
# latest_metrics deadlocks came from unordered concurrent upserts).
_UPSERT_LATEST = """
INSERT INTO latest_metrics AS l (run_uuid, key, step, timestamp, value, is_nan)
SELECT run_uuid, key, step, timestamp, value, is_nan FROM staging_latest ORDER BY run_uuid, key
ON CONFLICT (run_uuid, key) DO UPDATE
SET step = excluded.step, timestamp = excluded.timestamp, value = excluded.value,
    is_nan = excluded.is_nan
WHERE (excluded.step, excluded.timestamp, excluded.value) > (l.step, l.timestamp, l.value)
"""


# Points logged with a model (version-2 records only, so never on the common flush). The join
# keeps points of models that exist (MLflow's foreign key refuses the others; ingest already
# did); DO NOTHING stores a re-sent point once, as MLflow's primary key does.
_INSERT_MODEL_METRICS = """
INSERT INTO logged_model_metrics
SELECT s.* FROM staging_model_metrics s JOIN logged_models m USING (model_id)
ON CONFLICT DO NOTHING
"""

_ACTIVE_RUNS = (
    "SELECT run_uuid FROM runs WHERE run_uuid = ANY($1::text[]) AND lifecycle_stage = 'active'"
    " ORDER BY run_uuid FOR SHARE"
)
_QUARANTINE_COLUMNS = ("run_uuid", "key", "step", "timestamp", "value", "is_nan", "reason")


@dataclass(frozen=True, slots=True)
class FlushResult:
    copied: int  # points consumed
    stored: int  # points written into chunks (duplicates inside the batch dropped)
    quarantined: int = 0
    small: tuple[Series, ...] = ()  # series that got a chunk below compact.SMALL_CHUNK


async def prepare(conn: asyncpg.Connection) -> None:
    """Per-connection setup; idempotent."""
    await conn.execute(_STAGING_DDL)


@telemetry.traced("postgresql.flush")
async def flush(
    conn: asyncpg.Connection,
    topic: str,
    batch: Batch,
    committed: dict[int, int],
    small_chunk: int = 0,
) -> FlushResult:
    """Store ``batch`` and advance offsets from ``committed`` (mutated only after COMMIT).

    Raises LostOwnership (rolled back) when another writer committed one of the partitions.
    """
    series = batch.all_series()
    copied = sum(len(points) for points in series.values())
    stored = quarantined = 0
    rows: list[chunks.ChunkRow] = []
    async with conn.transaction():
        if series:
            series, quarantined = await _quarantine_inactive(conn, series)
        if series:
            rows = await _store(conn, series)
            stored = sum(row.n for row in rows)
            if batch.model_rows:
                await _store_model_metrics(conn, batch, {run for run, _ in series})
        with metrics.writer_flush_seconds.labels("offsets").time():
            for partition, next_offset in sorted(batch.next_offsets.items()):
                await offsets.advance(conn, topic, partition, committed[partition], next_offset)
    committed.update(batch.next_offsets)
    small = tuple(sorted({(row.run_uuid, row.key) for row in rows if row.n < small_chunk}))
    return FlushResult(copied=copied, stored=stored, quarantined=quarantined, small=small)


async def _quarantine_inactive(
    conn: asyncpg.Connection, series: dict[Series, list[Point]]
) -> tuple[dict[Series, list[Point]], int]:
    """Series of active runs (returned) and the count of the others' points, moved to
    quarantine."""
    runs = sorted({run for run, _ in series})
    with metrics.writer_flush_seconds.labels("runs").time():
        active = {r["run_uuid"] for r in await conn.fetch(_ACTIVE_RUNS, runs)}
    if len(active) == len(runs):
        return series, 0
    kept = {s: points for s, points in series.items() if s[0] in active}
    inactive = [
        (run, key, p.step, p.timestamp, p.value, p.is_nan, "run not active when stored")
        for (run, key), points in series.items()
        if run not in active
        for p in points
    ]
    await conn.copy_records_to_table(
        "quarantined_metrics", records=inactive, columns=_QUARANTINE_COLUMNS
    )
    metrics.writer_quarantined_total.labels("run_not_active").inc(len(inactive))
    return kept, len(inactive)


async def _store(
    conn: asyncpg.Connection, series: dict[Series, list[Point]]
) -> list[chunks.ChunkRow]:
    with metrics.writer_flush_seconds.labels("build").time():
        per_series = [chunks.chunk_rows(r, k, pts) for (r, k), pts in series.items()]
        rows = [row for series_rows in per_series for row in series_rows]
        latest = [chunks.latest_row(series_rows) for series_rows in per_series]
    with metrics.writer_flush_seconds.labels("copy").time():
        await conn.copy_records_to_table(
            "metric_chunks", records=rows, columns=chunks.CHUNK_COLUMNS
        )
    with metrics.writer_flush_seconds.labels("latest").time():
        await conn.copy_records_to_table(
            "staging_latest", records=latest, columns=chunks.LATEST_COLUMNS
        )
        await conn.execute(_UPSERT_LATEST)
    return rows


async def _store_model_metrics(conn: asyncpg.Connection, batch: Batch, active: set[str]) -> None:
    """The batch's points that name a model, of runs still active (the others' points went to
    quarantine with their run's)."""
    rows = [row for row in batch.all_model_rows() if row.run_uuid in active]
    if not rows:
        return
    with metrics.writer_flush_seconds.labels("models").time():
        await conn.copy_records_to_table(
            "staging_model_metrics", records=rows, columns=chunks.MODEL_METRIC_COLUMNS
        )
        await conn.execute(_INSERT_MODEL_METRICS)
