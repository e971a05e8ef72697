"""Pure: turn one flush's points of a series (run, key) into ``metric_chunks`` rows.

A point is ``(timestamp, step, value, is_nan)`` -- tuple order is MLflow's history order, so
sorting points sorts the history. NaN arrives normalised (value 0.0, is_nan true, as MLflow
stores it) and is written as a NULL array element (schemas/sql/0007_metric_chunks.sql).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Final

Point = tuple[int, int, float, bool]
# Column order of the COPY into metric_chunks (chunk_id comes from its sequence).
CHUNK_COLUMNS: Final = (
    "run_uuid",
    "key",
    "n",
    "min_ts",
    "max_ts",
    "min_step",
    "max_step",
    "step_sorted",
    "first_val",
    "timestamps",
    "steps",
    "vals",
)
ChunkRow = tuple[
    str, str, int, int, int, int, int, bool, float | None, list[int], list[int], list[float | None]
]
LATEST_COLUMNS: Final = ("run_uuid", "key", "step", "timestamp", "value", "is_nan")
LatestRow = tuple[str, str, int, int, float, bool]

# Up to this many points per chunk: a full chunk (3 x 8-byte arrays, ~7.9 kB with its other
# columns) fills one heap page uncompressed (schemas/sql/0007_metric_chunks.sql), and a 100k
# point history is ~313 index entries instead of 100k.
CHUNK_CAP: Final = 320


def chunk_rows(run: str, key: str, points: Iterable[Point], cap: int = CHUNK_CAP) -> list[ChunkRow]:
    """Sorted, de-duplicated chunks of at most ``cap`` points."""
    ordered = sorted(set(points))
    return [_row(run, key, ordered[i : i + cap]) for i in range(0, len(ordered), cap)]


def _row(run: str, key: str, points: Sequence[Point]) -> ChunkRow:
    timestamps = [p[0] for p in points]
    steps = [p[1] for p in points]
    vals: list[float | None] = [None if p[3] else p[2] for p in points]
    step_sorted = all(a <= b for a, b in itertools.pairwise(steps))
    return (
        run,
        key,
        len(points),
        timestamps[0],
        timestamps[-1],
        min(steps),
        max(steps),
        step_sorted,
        vals[0],
        timestamps,
        steps,
        vals,
    )


def latest_row(rows: Sequence[ChunkRow]) -> LatestRow:
    """MLflow's latest value of a series' chunks: argmax of (step, timestamp, value).

    In a step-sorted chunk that is its last point (arrays are in (timestamp, step, value)
    order, so equal steps end with the largest timestamp, then value): no scan for the usual
    forward-logged series."""
    best = max((_chunk_latest(row) for row in rows), key=lambda c: c[:3])
    step, ts, value, is_nan = best
    return rows[0][0], rows[0][1], step, ts, value, is_nan


def _chunk_latest(row: ChunkRow) -> tuple[int, int, float, bool]:
    timestamps, steps, vals = row[9], row[10], row[11]
    if row[7]:
        v = vals[-1]
        return steps[-1], timestamps[-1], 0.0 if v is None else v, v is None
    return max(
        (s, t, 0.0 if v is None else v, v is None)
        for t, s, v in zip(timestamps, steps, vals, strict=True)
    )
