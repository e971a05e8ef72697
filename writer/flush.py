"""One flush = one PostgreSQL transaction: rows, latest values and offsets commit together.

Steps: lock the batch's runs FOR SHARE and set aside rows of runs that are no longer active
(quarantine); binary COPY into a temporary staging table; INSERT ... ON CONFLICT DO NOTHING into
the partitioned ``metrics`` table (MLflow's metric identity is the unique key, so re-delivered
points are stored once); monotone upsert of ``latest_metrics``; conditional offset update
(fencing).

Lock order: runs rows (sorted by run_uuid, FOR SHARE) before metric rows. A concurrent run or
experiment delete waits for the flush to commit, so a point is either stored before the delete
or quarantined after it -- never stored into a run already deleted.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from sluice import metrics
from writer import offsets
from writer.batch import COLUMNS, Batch, Row

_STAGING_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS staging_metrics (LIKE metrics) ON COMMIT DELETE ROWS"
)
_INSERT_METRICS = "INSERT INTO metrics SELECT * FROM staging_metrics ON CONFLICT DO NOTHING"
# DISTINCT ON keeps, per (run, key), the argmax of (step, timestamp, value) within the batch;
# the WHERE makes the upsert monotone across batches, so arrival order never matters.
# Rows come out sorted by (run_uuid, key), which fixes the row-lock order between writers
# (MLflow's latest_metrics deadlocks came from unordered concurrent upserts).
_UPSERT_LATEST = """
INSERT INTO latest_metrics AS l (run_uuid, key, step, timestamp, value, is_nan)
SELECT DISTINCT ON (run_uuid, key) run_uuid, key, step, timestamp, value, is_nan
FROM staging_metrics
ORDER BY run_uuid, key, step DESC, timestamp DESC, value DESC
ON CONFLICT (run_uuid, key) DO UPDATE
SET step = excluded.step, timestamp = excluded.timestamp, value = excluded.value,
    is_nan = excluded.is_nan
WHERE (excluded.step, excluded.timestamp, excluded.value) > (l.step, l.timestamp, l.value)
"""


_ACTIVE_RUNS = (
    "SELECT run_uuid FROM runs WHERE run_uuid = ANY($1::text[]) AND lifecycle_stage = 'active'"
    " ORDER BY run_uuid FOR SHARE"
)
_QUARANTINE_COLUMNS = (*COLUMNS, "reason")


@dataclass(frozen=True, slots=True)
class FlushResult:
    copied: int
    stored: int  # new rows; copied - stored were exact duplicates
    quarantined: int = 0


async def prepare(conn: asyncpg.Connection) -> None:
    """Per-connection setup; idempotent."""
    await conn.execute(_STAGING_DDL)


async def flush(
    conn: asyncpg.Connection, topic: str, batch: Batch, committed: dict[int, int]
) -> FlushResult:
    """Store ``batch`` and advance offsets from ``committed`` (mutated only after COMMIT).

    Raises LostOwnership (rolled back) when another writer committed one of the partitions.
    """
    rows = batch.all_rows()
    stored = quarantined = 0
    async with conn.transaction():
        if rows:
            rows, quarantined = await _quarantine_inactive(conn, rows)
        if rows:
            stored = await _store_rows(conn, rows)
        with metrics.writer_flush_seconds.labels("offsets").time():
            for partition, next_offset in sorted(batch.next_offsets.items()):
                await offsets.advance(conn, topic, partition, committed[partition], next_offset)
    committed.update(batch.next_offsets)
    return FlushResult(copied=len(rows) + quarantined, stored=stored, quarantined=quarantined)


async def _quarantine_inactive(conn: asyncpg.Connection, rows: list[Row]) -> tuple[list[Row], int]:
    """Rows of active runs (returned) and the count of the others, moved to quarantine."""
    runs = sorted({row[0] for row in rows})
    with metrics.writer_flush_seconds.labels("runs").time():
        active = {r["run_uuid"] for r in await conn.fetch(_ACTIVE_RUNS, runs)}
    if len(active) == len(runs):
        return rows, 0
    kept = [row for row in rows if row[0] in active]
    inactive = [(*row, "run not active when stored") for row in rows if row[0] not in active]
    await conn.copy_records_to_table(
        "quarantined_metrics", records=inactive, columns=_QUARANTINE_COLUMNS
    )
    metrics.writer_quarantined_total.labels("run_not_active").inc(len(inactive))
    return kept, len(inactive)


async def _store_rows(conn: asyncpg.Connection, rows: Sequence[Row]) -> int:
    with metrics.writer_flush_seconds.labels("copy").time():
        await conn.copy_records_to_table("staging_metrics", records=rows, columns=COLUMNS)
    with metrics.writer_flush_seconds.labels("insert").time():
        status = await conn.execute(_INSERT_METRICS)
    with metrics.writer_flush_seconds.labels("latest").time():
        await conn.execute(_UPSERT_LATEST)
    return int(status.rsplit(" ", 1)[1])


def observe_end_to_end(batch: Batch) -> None:
    now_ms = time.time() * 1000
    for received in batch.received_at_ms:
        metrics.writer_end_to_end_seconds.observe(max(0.0, (now_ms - received) / 1000))
