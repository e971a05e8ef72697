"""Compaction: merge a series' small chunks into full ones.

Why: every flush writes one chunk per series it saw, so a training loop calling ``log_metric``
once per step gets one-point chunks -- row-per-point cost again, and a long history of them
reads slowly. The pipeline counts, per series, the small chunks its flushes wrote
(``Tracker``, a bounded map); once a series has ``COMPACT_AFTER`` of them it is due.

``Compactor`` merges due series in the background, never on the flush path: a burst of
1000-key batches leaves ~100k series due, and compacting them inline after every flush held the
pipeline lock and delayed every following flush (and with it acks' visibility). A round takes
at most ``MAX_SERIES_PER_ROUND`` series in its own transaction on its own connection, and the
pause after it keeps compaction to ``DUTY`` of the wall clock, so it can lag behind ingest but
never starve it; small chunks are still read correctly, only more slowly.

Safe against everything running concurrently: the chunks read are locked (FOR UPDATE), deleted
by id and replaced by their merged, de-duplicated points in one transaction, and chunk ids come
from a sequence, so a concurrent flush -- even a zombie writer's -- never collides with it.
Readers see the series before or after, never half. Compaction is an optimisation: a series
the tracker forgot (restart, overflow) keeps its small chunks until it gets new ones.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from itertools import islice
from typing import Final

import asyncpg

from schemas import chunks
from schemas.chunks import Point
from sluice import lifecycle, metrics
from sluice.pg import RETRIABLE_TRANSACTION_ERRORS
from writer.batch import Series

SMALL_CHUNK: Final = 64  # chunks with fewer points are merged
COMPACT_AFTER: Final = 16  # ... once a series has this many of them
MAX_TRACKED: Final = 100_000  # series remembered; beyond, new series are not tracked
MAX_SERIES_PER_ROUND: Final = 200
DUTY: Final = 0.25  # share of wall-clock time a busy compactor may spend in rounds
MIN_PAUSE_S: Final = 0.2  # also how often an idle compactor looks for due series

log = logging.getLogger(__name__)

_SMALL_CHUNKS: Final = """
SELECT c.run_uuid, c.key, c.chunk_id, c.timestamps, c.steps, c.vals
FROM metric_chunks c
JOIN unnest($1::text[], $2::text[]) AS s(run_uuid, key)
  ON c.run_uuid = s.run_uuid AND c.key = s.key
WHERE c.n < $3
ORDER BY c.run_uuid, c.key, c.chunk_id
FOR UPDATE OF c
"""
_DELETE: Final = """
DELETE FROM metric_chunks c
USING unnest($1::text[], $2::text[], $3::bigint[]) AS d(run_uuid, key, chunk_id)
WHERE c.run_uuid = d.run_uuid AND c.key = d.key AND c.chunk_id = d.chunk_id
"""


class Tracker:
    """Small chunks written per series since its last compaction (pure, bounded)."""

    def __init__(self, limit: int = MAX_TRACKED) -> None:
        self._counts: dict[Series, int] = {}
        # counts >= COMPACT_AFTER, oldest first (a dict keeps insertion order): due() never
        # scans or sorts _counts; lock order is the SQL's ORDER BY, not this one.
        self._ready: dict[Series, None] = {}
        self._limit = limit

    def add(self, series: Iterable[Series]) -> None:
        for s in series:
            if s in self._counts:
                self._counts[s] += 1
            elif len(self._counts) < self._limit:
                self._counts[s] = 1
            else:
                continue
            if self._counts[s] >= COMPACT_AFTER:
                self._ready[s] = None

    def due(self, limit: int = MAX_SERIES_PER_ROUND) -> list[Series]:
        """Series to compact now, longest due first (forgotten here; ``add`` them again if
        compaction failed)."""
        ready = list(islice(self._ready, limit))
        for s in ready:
            del self._counts[s]
            del self._ready[s]
        return ready

    def pending(self) -> int:
        """Series due and not yet handed out."""
        return len(self._ready)

    def __len__(self) -> int:
        return len(self._counts)


def merge(rows: Iterable[asyncpg.Record]) -> tuple[list[chunks.ChunkRow], list[Series], list[int]]:
    """New chunk rows for the small chunks ``rows`` of some series, and the ids they replace.

    A series with a single small chunk is left alone (nothing to merge)."""
    points: defaultdict[Series, list[Point]] = defaultdict(list)
    ids: defaultdict[Series, list[int]] = defaultdict(list)
    for row in rows:
        series = (row["run_uuid"], row["key"])
        ids[series].append(row["chunk_id"])
        points[series].extend(
            Point(ts, step, 0.0 if v is None else v, v is None)
            for ts, step, v in zip(row["timestamps"], row["steps"], row["vals"], strict=True)
        )
    new_rows: list[chunks.ChunkRow] = []
    old_series: list[Series] = []
    old_ids: list[int] = []
    for series, chunk_ids in ids.items():
        if len(chunk_ids) < 2:
            continue
        new_rows += chunks.chunk_rows(series[0], series[1], points[series])
        old_series += [series] * len(chunk_ids)
        old_ids += chunk_ids
    return new_rows, old_series, old_ids


async def compact(conn: asyncpg.Connection, series: list[Series]) -> int:
    """Merge the small chunks of ``series``; returns how many chunks were replaced."""
    async with conn.transaction():
        rows = await conn.fetch(
            _SMALL_CHUNKS, [s[0] for s in series], [s[1] for s in series], SMALL_CHUNK
        )
        new_rows, old_series, old_ids = merge(rows)
        if not old_ids:
            return 0
        await conn.execute(_DELETE, [s[0] for s in old_series], [s[1] for s in old_series], old_ids)
        await conn.copy_records_to_table(
            "metric_chunks", records=new_rows, columns=chunks.CHUNK_COLUMNS
        )
    return len(old_ids)


def pause_after(round_s: float) -> float:
    """Seconds to wait after a round that took ``round_s`` so rounds use at most ``DUTY``."""
    return max(MIN_PAUSE_S, round_s * (1 - DUTY) / DUTY)


class Compactor:
    """Background loop: compact due series in bounded rounds until ``stop`` is set."""

    def __init__(self, pool: asyncpg.Pool, tracker: Tracker) -> None:
        self._pool = pool
        self._tracker = tracker

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                await self.round()
            except Exception:  # a bug here must neither kill the writer nor stop silently
                log.exception("compaction round failed")
            await lifecycle.sleep_unless_stopped(stop, pause_after(time.monotonic() - started))

    async def round(self) -> None:
        """One round. Failing loses nothing (the chunks stay as they are), so errors are
        logged and the series handed back, not raised."""
        due = self._tracker.due()
        metrics.writer_compaction_due.set(self._tracker.pending())
        if not due:
            return
        try:
            async with self._pool.acquire() as conn:
                with metrics.writer_flush_seconds.labels("compact").time():
                    replaced = await compact(conn, due)
        except RETRIABLE_TRANSACTION_ERRORS as exc:
            log.warning("compaction failed; will retry", extra={"err": repr(exc)})
            self._tracker.add(due)
            return
        metrics.writer_chunks_compacted_total.inc(replaced)
