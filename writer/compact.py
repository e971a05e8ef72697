"""Compaction: merge a series' small chunks into full ones.

Why: every flush writes one chunk per series it saw, so a training loop calling ``log_metric``
once per step gets one-point chunks -- row-per-point cost again, and a long history of them
reads slowly. The pipeline counts, per series, the small chunks its flushes wrote
(``Tracker``, a bounded map); once a series has ``COMPACT_AFTER`` of them it is compacted right
after a flush, in its own transaction, at most ``MAX_SERIES_PER_ROUND`` series at a time.

Safe against everything running concurrently: the chunks read are locked (FOR UPDATE), deleted
by id and replaced by their merged, de-duplicated points in one transaction, and chunk ids come
from a sequence, so a concurrent flush -- even a zombie writer's -- never collides with it.
Readers see the series before or after, never half. Compaction is an optimisation: a series
the tracker forgot (restart, overflow) keeps its small chunks until it gets new ones.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Final

import asyncpg

from writer import chunks
from writer.batch import Series
from writer.chunks import Point

SMALL_CHUNK: Final = 64  # chunks with fewer points are merged
COMPACT_AFTER: Final = 16  # ... once a series has this many of them
MAX_TRACKED: Final = 100_000  # series remembered; beyond, new series are not tracked
MAX_SERIES_PER_ROUND: Final = 500

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
        self._ready: set[Series] = set()  # counts >= COMPACT_AFTER: due() never scans _counts
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
                self._ready.add(s)

    def due(self, limit: int = MAX_SERIES_PER_ROUND) -> list[Series]:
        """Series to compact now (forgotten here; ``add`` them again if compaction failed)."""
        ready = sorted(self._ready)[:limit]
        for s in ready:
            del self._counts[s]
            self._ready.discard(s)
        return ready

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
            (ts, step, 0.0 if v is None else v, v is None)
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
