"""Reading one metric series (run, key) out of ``metric_chunks``
(schemas/sql/0007_metric_chunks.sql).

Every read plans from the chunks' index entries (the INCLUDE columns: count, ranges, flags)
and decodes only the chunks it needs:

- *history order* (timestamp, step, value, is_nan). When the chunks, taken by (min_ts,
  min_step), follow each other strictly -- every point of one before every point of the next --
  their concatenation is sorted and free of duplicates (a duplicate has the same timestamp and
  step), and a page offset maps onto chunks by counting. This is the normal case: clients log
  forward in time.
- *step order* (step, timestamp, value, is_nan) for chart sampling: the same, by (min_step,
  min_ts), for chunks whose steps are sorted too.
- otherwise (points logged out of order, a re-sent request stored twice) the chunks are decoded,
  sorted and de-duplicated in Python: exact, slower.

A point here is ``(timestamp, step, value)`` with ``value`` None for NaN; histories come back
as ``Columns`` (three parallel lists), the form the chunks store and the cheapest to render.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import asyncpg

Point = tuple[int, int, float | None]


@dataclass(frozen=True, slots=True)
class Columns:
    timestamps: list[int]
    steps: list[int]
    vals: list[float | None]

    @classmethod
    def of(cls, points: Sequence[Point]) -> Columns:
        return cls([p[0] for p in points], [p[1] for p in points], [p[2] for p in points])

    def window(self, start: int, end: int | None) -> Columns:
        return Columns(self.timestamps[start:end], self.steps[start:end], self.vals[start:end])


# One row of arrays: asyncpg decodes arrays in C; a row per chunk costs far more per series.
# The arrays of a row are parallel (every aggregate sees the rows in the same sequence), in no
# particular order: ChunkIndex sorts them only when they are not already a chain.
_INDEX_COLUMNS: Final = (
    "array_agg(chunk_id), array_agg(n), array_agg(min_ts), array_agg(max_ts),"
    " array_agg(min_step), array_agg(max_step), array_agg(step_sorted)"
)
_META: Final = f"SELECT {_INDEX_COLUMNS} FROM metric_chunks WHERE run_uuid = $1 AND key = $2"
# The same for many runs in one statement (a chart asks for up to 100): one round trip and one
# plan instead of one per run (every execution is planned: plan_cache_mode=force_custom_plan).
_META_MANY: Final = (
    f"SELECT run_uuid, {_INDEX_COLUMNS} FROM metric_chunks"
    " WHERE run_uuid = ANY($1::text[]) AND key = $2 GROUP BY run_uuid"
)
_DATA: Final = (
    "SELECT chunk_id, timestamps, steps, vals FROM metric_chunks"
    " WHERE run_uuid = $1 AND key = $2 AND chunk_id = ANY($3::bigint[])"
)
# MLflow's sample of a step-ordered chain of chunks as three arrays in step order. $3: the
# chain's chunk ids, $4: the position of each one's first point in the series, $5: the positions
# picked (0-based). width_bucket finds the chunk of a position by binary search over $4; OFFSET 0
# keeps that subquery apart, so it runs once a point instead of in both the join and the select
# list. Full chunks are stored inline and uncompressed, so a subscript reads the heap tuple in
# place. Why arrays out, one statement per run and lists in as text: docs/design.md,
# "Sampling: measured choices".
_PICK: Final = """
SELECT array_agg(c.timestamps[p.j] ORDER BY p.ord), array_agg(c.steps[p.j] ORDER BY p.ord),
       array_agg(c.vals[p.j] ORDER BY p.ord)
FROM (
    SELECT u.ord, a.ids[width_bucket(u.pos, a.starts)] AS chunk_id,
           (u.pos - a.starts[width_bucket(u.pos, a.starts)] + 1)::int AS j
    FROM (SELECT string_to_array($3, ',')::bigint[] AS ids,
                 string_to_array($4, ',')::bigint[] AS starts) AS a,
         unnest(string_to_array($5, ',')::bigint[]) WITH ORDINALITY AS u(pos, ord)
    OFFSET 0
) AS p
JOIN metric_chunks c ON c.run_uuid = $1 AND c.key = $2 AND c.chunk_id = p.chunk_id
"""
# Sampling a run with more points than this, when its chunks are not in step order, looks at
# one point per chunk for at most max_results chunks instead of sorting the whole history.
EXACT_SAMPLE_LIMIT: Final = 100_000


@dataclass(frozen=True, slots=True)
class Meta:
    chunk_id: int
    n: int
    min_ts: int
    max_ts: int
    min_step: int
    max_step: int
    step_sorted: bool


def _time_order(m: Meta) -> tuple[int, int, int]:
    return m.min_ts, m.min_step, m.chunk_id


def _step_order(m: Meta) -> tuple[int, int, int]:
    return m.min_step, m.min_ts, m.chunk_id


def follows_in_time(prev: Meta, nxt: Meta) -> bool:
    """Every point of ``prev`` sorts before every point of ``nxt`` in history order."""
    return prev.max_ts < nxt.min_ts or (prev.max_ts == nxt.min_ts and prev.max_step < nxt.min_step)


def follows_in_steps(prev: Meta, nxt: Meta) -> bool:
    """The same in step order; only meaningful for step-sorted chunks."""
    return _after_in_steps(prev.max_step, prev.max_ts, nxt.min_step, nxt.min_ts)


def _after_in_steps(prev_max_step: int, prev_max_ts: int, min_step: int, min_ts: int) -> bool:
    return prev_max_step < min_step or (prev_max_step == min_step and prev_max_ts < min_ts)


def is_chain(metas: Sequence[Meta], follows: Callable[[Meta, Meta], bool]) -> bool:
    return all(follows(a, b) for a, b in itertools.pairwise(metas))


def locate(metas: Sequence[Meta], positions: Sequence[int]) -> list[tuple[int, int]]:
    """(chunk index, index inside it) of each global position in a chain of chunks."""
    starts, total = [], 0
    for m in metas:
        starts.append(total)
        total += m.n
    out = []
    for pos in positions:
        i = bisect.bisect_right(starts, pos) - 1
        out.append((i, pos - starts[i]))
    return out


def ntile_picks(n: int, buckets: int) -> list[int]:
    """Positions MLflow's sampler keeps out of ``n`` ordered points: the first point of each of
    ``buckets`` NTILE buckets, the last bucket's replaced by the last point when ``n`` exceeds
    ``buckets``."""
    if n <= buckets:
        return list(range(n))
    size, extra = divmod(n, buckets)
    starts = [b * size + min(b, extra) for b in range(buckets)]
    return [*starts[:-1], n - 1]


# The runs of one chart often have the same length: their picks are written out once (bounded:
# 128 entries of at most 2500 positions).
@functools.lru_cache(maxsize=128)
def _picks_csv(n: int, buckets: int) -> str:
    return _csv(ntile_picks(n, buckets))


@dataclass(frozen=True, slots=True)
class ChunkIndex:
    """The index entries of one series' chunks as parallel columns (as ``_META`` reads them);
    cheaper than a ``Meta`` per chunk when a chart reads 100 runs of hundreds of chunks."""

    chunk_ids: list[int]
    ns: list[int]
    min_ts: list[int]
    max_ts: list[int]
    min_step: list[int]
    max_step: list[int]
    step_sorted: list[bool]

    @classmethod
    def empty(cls) -> ChunkIndex:
        return cls([], [], [], [], [], [], [])

    @classmethod
    def of(cls, metas: Sequence[Meta]) -> ChunkIndex:
        return cls(
            [m.chunk_id for m in metas],
            [m.n for m in metas],
            [m.min_ts for m in metas],
            [m.max_ts for m in metas],
            [m.min_step for m in metas],
            [m.max_step for m in metas],
            [m.step_sorted for m in metas],
        )

    def metas(self) -> list[Meta]:
        columns = zip(
            self.chunk_ids, self.ns, self.min_ts, self.max_ts, self.min_step, self.max_step,
            self.step_sorted, strict=True,
        )  # fmt: skip
        return [Meta(*fields) for fields in columns]

    def is_step_chain(self) -> bool:
        """Step-sorted chunks that follow each other in step order, in the order held."""
        if not all(self.step_sorted):
            return False
        # Strictly increasing steps decide the usual series at C speed; equal steps at a chunk
        # boundary need the timestamps as well.
        return all(map(operator.lt, self.max_step, self.min_step[1:])) or all(
            map(_after_in_steps, self.max_step, self.max_ts, self.min_step[1:], self.min_ts[1:])
        )

    def in_step_order(self) -> ChunkIndex:
        return ChunkIndex.of(sorted(self.metas(), key=_step_order))


@dataclass(frozen=True, slots=True)
class Chain:
    """A series whose chunks follow each other in step order: its points in step order are the
    concatenation of the chunks'."""

    chunk_ids: list[int]
    starts: list[int]  # position of each chunk's first point in the series
    total: int


def step_chain(index: ChunkIndex) -> Chain | None:
    """The chunks of ``index`` as a chain in step order, or None when they do not form one (the
    series must then be decoded and sorted).

    A chain can only be held in step order (each chunk starts after the previous one ends), so
    the order read is tried first and sorted only when it is not a chain: the usual series,
    logged forward and read in chunk id order, is never sorted."""
    if not index.is_step_chain():
        index = index.in_step_order()
        if not index.is_step_chain():
            return None
    starts = list(itertools.accumulate(index.ns[:-1], initial=0)) if index.ns else []
    return Chain(index.chunk_ids, starts, sum(index.ns))


def _points(row: asyncpg.Record) -> list[Point]:
    return list(zip(row["timestamps"], row["steps"], row["vals"], strict=True))


def _sort_key(p: Point) -> tuple[int, int, float, bool]:
    return p[0], p[1], 0.0 if p[2] is None else p[2], p[2] is None


def _step_key(p: Point) -> tuple[int, int, float, bool]:
    return p[1], p[0], 0.0 if p[2] is None else p[2], p[2] is None


def distinct_sorted(
    points: list[Point], key: Callable[[Point], tuple[int, int, float, bool]]
) -> list[Point]:
    """Sort by ``key`` and drop exact duplicates (equal keys are equal points)."""
    unique = {key(p): p for p in points}
    return [unique[k] for k in sorted(unique)]


class SeriesReader:
    """Reads of one (run, key) on one connection."""

    def __init__(self, conn: asyncpg.Connection, run_id: str, key: str) -> None:
        self._conn, self._run, self._key = conn, run_id, key

    async def index(self) -> ChunkIndex:
        columns = await self._conn.fetchrow(_META, self._run, self._key)
        if columns is None or columns[0] is None:
            return ChunkIndex.empty()
        return ChunkIndex(*columns)

    async def metas(self) -> list[Meta]:
        return (await self.index()).metas()

    async def _data(self, ids: Sequence[int]) -> dict[int, asyncpg.Record]:
        rows = await self._conn.fetch(_DATA, self._run, self._key, list(ids))
        return {row["chunk_id"]: row for row in rows}

    async def history(self, offset: int = 0, limit: int | None = None) -> tuple[Columns, int]:
        """Points ``offset .. offset+limit`` of the history (all without ``limit``) and the
        history's length."""
        metas = sorted(await self.metas(), key=_time_order)
        if not is_chain(metas, follows_in_time):
            points = distinct_sorted(await self._all(metas), _sort_key)
            end = None if limit is None else offset + limit
            return Columns.of(points[offset:end]), len(points)
        total = sum(m.n for m in metas)
        end = total if limit is None else min(total, offset + limit)
        if offset >= end:
            return Columns([], [], []), total
        first, last = locate(metas, [offset, end - 1])
        wanted = metas[first[0] : last[0] + 1]
        data = await self._data([m.chunk_id for m in wanted])
        out = Columns([], [], [])
        for m in wanted:
            row = data[m.chunk_id]
            out.timestamps.extend(row["timestamps"])
            out.steps.extend(row["steps"])
            out.vals.extend(row["vals"])
        return out.window(first[1], first[1] + end - offset), total

    async def sample(
        self, buckets: int, steps: tuple[int, int] | None, index: ChunkIndex
    ) -> Columns:
        """MLflow's chart sample of the points (in the ``steps`` window), in step order, given
        the series' chunk ``index``."""
        chain = step_chain(index) if steps is None else None
        if chain is not None:
            return await self._sample_chain(chain, buckets)
        metas = index.metas()
        if steps is not None:
            metas = [m for m in metas if m.max_step >= steps[0] and m.min_step <= steps[1]]
        metas.sort(key=_step_order)
        ordered = all(m.step_sorted for m in metas) and is_chain(metas, follows_in_steps)
        if not ordered and sum(m.n for m in metas) > EXACT_SAMPLE_LIMIT:
            return Columns.of(await self._sample_chunks(metas, buckets, steps))
        points = await self._all(metas)
        if steps is not None:
            points = [p for p in points if steps[0] <= p[1] <= steps[1]]
        points = distinct_sorted(points, _step_key)
        return Columns.of([points[i] for i in ntile_picks(len(points), buckets)])

    async def _sample_chain(self, chain: Chain, buckets: int) -> Columns:
        """Exact sample of a step-ordered chain: PostgreSQL reads just the picked points."""
        if chain.total == 0:
            return Columns([], [], [])
        ids, starts = _csv(chain.chunk_ids), _csv(chain.starts)
        picks = _picks_csv(chain.total, buckets)
        row = await self._conn.fetchrow(_PICK, self._run, self._key, ids, starts, picks)
        # No row matched (NULL arrays) only if the chunks were replaced since the index was
        # read, which sample_runs' snapshot rules out.
        return Columns(row[0] or [], row[1] or [], row[2] or [])

    async def _sample_chunks(
        self, metas: list[Meta], buckets: int, steps: tuple[int, int] | None
    ) -> list[Point]:
        """Bounded approximation for huge unordered runs: the lowest-step point of at most
        ``buckets`` evenly spaced chunks (real points, in step order, never a full sort)."""
        chosen = [metas[i] for i in ntile_picks(len(metas), buckets)]
        data = await self._data([m.chunk_id for m in chosen])
        out = []
        for m in chosen:
            points = _points(data[m.chunk_id])
            if steps is not None:
                points = [p for p in points if steps[0] <= p[1] <= steps[1]]
            if points:
                out.append(min(points, key=_step_key))
        return distinct_sorted(out, _step_key)

    async def _all(self, metas: Sequence[Meta]) -> list[Point]:
        data = await self._data([m.chunk_id for m in metas])
        return [p for row in data.values() for p in _points(row)]


async def sample_runs(
    conn: asyncpg.Connection,
    run_ids: Sequence[str],
    key: str,
    buckets: int,
    steps: tuple[int, int] | None,
) -> dict[str, Columns]:
    """``SeriesReader.sample`` of ``key`` in each of ``run_ids`` (distinct), the chunk indexes of
    all of them read in one statement; a run without the key samples to no points.

    One read-only snapshot for the index and the points: compaction may replace the chunks of
    a series between two statements, and the picked chunk ids would then be gone."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        rows = await conn.fetch(_META_MANY, list(run_ids), key)
        indexes = {row[0]: ChunkIndex(*row[1:]) for row in rows}
        return {
            run_id: await SeriesReader(conn, run_id, key).sample(
                buckets, steps, indexes.get(run_id, ChunkIndex.empty())
            )
            for run_id in run_ids
        }


def _csv(numbers: list[int]) -> str:
    return ",".join(map(str, numbers))
