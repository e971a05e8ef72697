"""Metric history: every point of every run, streamed series by series into chunk rows
(``schemas/sql/0007_metric_chunks.sql``), with the latest values, straight into PostgreSQL.

The source is read a batch of runs at a time, ordered by (run, key, timestamp, step, value,
is_nan) -- MLflow's primary key makes every point unique, and that order is the chunks' own,
so a series is cut into consecutive 320-point chunks as it streams past: memory holds one
chunk per series being read plus the rows waiting for COPY, never a whole series or run.

**Resumable, idempotent.** A run's points are committed in one transaction (several runs
share one when they are small), so a run has either all its chunks in Sluice or none. A run
that already has chunks is skipped; its point count is compared with the source's, and
differences are reported by the verification summary. An interrupted import (Ctrl-C, a
crash) loses at most the open transaction, which the next run redoes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import asyncpg

from schemas import chunks
from schemas.wire import DOUBLE_MAX
from sluice.commands.transfer.mlflow_db import MlflowDb

RUN_BATCH: Final = 50  # runs per source query
COMMIT_POINTS: Final = 250_000  # commit at the next run boundary past this many points
COPY_CHUNKS: Final = 1_000  # chunk rows buffered before a COPY (~320k points at most)

_LATEST_UPSERT: Final = """
INSERT INTO latest_metrics AS l (run_uuid, key, step, timestamp, value, is_nan)
SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::float8[],
                     $6::bool[])
ON CONFLICT (run_uuid, key) DO UPDATE
SET step = excluded.step, timestamp = excluded.timestamp, value = excluded.value,
    is_nan = excluded.is_nan
WHERE (excluded.step, excluded.timestamp, excluded.value) > (l.step, l.timestamp, l.value)
"""


@dataclass
class Piece:
    """What a batch of source rows became, up to a run boundary (``done``) or the batch end."""

    chunks: list[tuple[Any, ...]] = field(default_factory=list)
    latest: list[tuple[Any, ...]] = field(default_factory=list)
    points: int = 0
    done: str | None = None  # the run that ended here


class Chunker:
    """Pure: consecutive sorted points -> chunk rows and latest rows, series by series."""

    def __init__(self) -> None:
        self._run: str | None = None
        self._key: str | None = None
        self._points: list[Any] = []
        self._best: tuple[Any, ...] | None = None

    def feed(self, rows: Iterable[Sequence[Any]]) -> list[Piece]:
        """Rows (run_uuid, key, timestamp, step, value, is_nan), in source order."""
        pieces = [Piece()]
        points = self._points
        cap = chunks.CHUNK_CAP
        point = chunks.Point
        for run, key, ts, step, value, is_nan in rows:
            if key != self._key or run != self._run:
                self._end_series(pieces[-1])
                if run != self._run:
                    if self._run is not None:
                        pieces[-1].done = self._run
                        pieces.append(Piece())
                    self._run = run
                self._key = key
                points = self._points
            # MLflow stores +-inf as +-DOUBLE_MAX; clamp what older writers left unsanitised.
            stored = value if -DOUBLE_MAX <= value <= DOUBLE_MAX else _clamp(value)
            points.append(point(ts, step, stored, bool(is_nan)))
            pieces[-1].points += 1
            if len(points) == cap:
                self._emit(pieces[-1])
                points = self._points
        return pieces

    def finish(self) -> Piece:
        """The last series and run of the stream."""
        piece = Piece()
        self._end_series(piece)
        piece.done = self._run
        self._run = self._key = None
        return piece

    def _emit(self, piece: Piece) -> None:
        assert self._run is not None and self._key is not None
        rows = chunks.chunk_rows(self._run, self._key, self._points)
        piece.chunks.extend(rows)
        latest = chunks.latest_row(rows)
        if self._best is None or latest[2:5] > self._best[2:5]:
            self._best = latest
        self._points = []

    def _end_series(self, piece: Piece) -> None:
        if self._points:
            self._emit(piece)
        if self._best is not None:
            piece.latest.append(self._best)
            self._best = None


def _clamp(value: float) -> float:
    return DOUBLE_MAX if value > 0 else -DOUBLE_MAX


@dataclass
class PointsResult:
    source: int = 0  # points in the source
    written: int = 0  # points written now
    present: int = 0  # points of runs imported before (skipped)
    runs_written: int = 0
    runs_skipped: int = 0
    mismatched: list[tuple[str, int, int]] = field(default_factory=list)  # run, source, sluice


@dataclass
class _Writer:
    """The open transaction of the points import: COPY chunks, upsert latest values."""

    conn: asyncpg.Connection
    columns: tuple[str, ...]
    chunks: list[tuple[Any, ...]] = field(default_factory=list)
    latest: list[tuple[Any, ...]] = field(default_factory=list)
    uncommitted: int = 0
    tx: Any = None

    async def add(self, piece: Piece) -> None:
        if self.tx is None:
            self.tx = self.conn.transaction()
            await self.tx.start()
        self.chunks.extend(piece.chunks)
        self.latest.extend(piece.latest)
        self.uncommitted += piece.points
        if len(self.chunks) >= COPY_CHUNKS:
            await self._copy()

    async def _copy(self) -> None:
        if self.chunks:
            await self.conn.copy_records_to_table(
                "metric_chunks", records=self.chunks, columns=self.columns
            )
            self.chunks = []
        if self.latest:
            await self.conn.execute(_LATEST_UPSERT, *map(list, zip(*self.latest, strict=True)))
            self.latest = []

    async def commit(self) -> None:
        if self.tx is not None:
            await self._copy()
            await self.tx.commit()
            self.tx = None
        self.uncommitted = 0

    async def abort(self) -> None:
        if self.tx is not None:
            await self.tx.rollback()
            self.tx = None


async def import_points(
    src: MlflowDb,
    conn: asyncpg.Connection,
    advance: Callable[[int], None],
    run_batch: int = RUN_BATCH,
) -> PointsResult:
    """Copy every metric point of every source run not yet in Sluice."""
    result = PointsResult(source=int(await src.scalar("SELECT count(*) FROM metrics")))
    writer = _Writer(conn, tuple(chunks.CHUNK_COLUMNS))
    try:
        async for runs in src.stream(
            "SELECT run_uuid FROM runs ORDER BY run_uuid", batch=run_batch
        ):
            todo = await _skip_imported(src, conn, [r[0] for r in runs], result, advance)
            if todo:
                await _copy_runs(src, writer, todo, result, advance)
        await writer.commit()
    finally:
        await writer.abort()
    return result


async def _skip_imported(
    src: MlflowDb,
    conn: asyncpg.Connection,
    runs: list[str],
    result: PointsResult,
    advance: Callable[[int], None],
) -> list[str]:
    """Runs of this batch without chunks in Sluice; the others are counted and compared."""
    stored = dict(
        await conn.fetch(
            "SELECT run_uuid, sum(n)::bigint FROM metric_chunks WHERE run_uuid = ANY($1::text[])"
            " GROUP BY run_uuid",
            runs,
        )
    )
    if stored:
        marks = ", ".join("?" for _ in stored)
        counted: dict[str, int] = dict(
            await src.fetch(
                f"SELECT run_uuid, count(*) FROM metrics WHERE run_uuid IN ({marks})"
                " GROUP BY run_uuid",
                *stored,
            )
        )
        for run, n in stored.items():
            result.present += n
            result.runs_skipped += 1
            advance(counted.get(run, 0))
            if counted.get(run, 0) != n:
                result.mismatched.append((run, counted.get(run, 0), n))
    return [r for r in runs if r not in stored]


async def _copy_runs(
    src: MlflowDb,
    writer: _Writer,
    runs: list[str],
    result: PointsResult,
    advance: Callable[[int], None],
) -> None:
    chunker = Chunker()
    marks = ", ".join("?" for _ in runs)
    sql = (
        'SELECT run_uuid, "key", timestamp, step, value, is_nan FROM metrics'
        f' WHERE run_uuid IN ({marks}) ORDER BY run_uuid, "key", timestamp, step, value, is_nan'
    )
    async for rows in src.stream(sql, *runs):
        for piece in chunker.feed(rows):
            await _take(writer, piece, result, advance)
    await _take(writer, chunker.finish(), result, advance)


async def _take(
    writer: _Writer, piece: Piece, result: PointsResult, advance: Callable[[int], None]
) -> None:
    await writer.add(piece)
    result.written += piece.points
    advance(piece.points)
    if piece.done is not None:
        result.runs_written += 1
        if writer.uncommitted >= COMMIT_POINTS:
            await writer.commit()
