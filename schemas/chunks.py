"""Pure: turn one flush's points of a series (run, key) into ``metric_chunks`` rows.

A ``Point`` orders like MLflow's history, (timestamp, step, value, is_nan), so sorting points
sorts the history. NaN arrives normalised (value 0.0, is_nan true, as MLflow
stores it) and is written as a NULL array element (schemas/sql/0007_metric_chunks.sql).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Final, NamedTuple

import msgspec


class Point(msgspec.Struct, frozen=True, order=True, gc=False):
    """One point of a series, compared field by field in this order (MLflow's history order);
    hashable, so a set drops exact duplicates. A slotted record built in C, nearly a tuple's
    cost (benchmarks/micro/data_path.py)."""

    timestamp: int
    step: int
    value: float  # 0.0 when is_nan
    is_nan: bool


class ChunkRow(NamedTuple):
    """One ``metric_chunks`` row, its fields in the COPY's column order (chunk_id comes from
    the table's sequence). The arrays are parallel, in history order; a NaN value is None."""

    run_uuid: str
    key: str
    n: int  # points in the chunk, at most CHUNK_CAP
    min_ts: int  # the ranges, flag and first value: the index's INCLUDE columns, which
    max_ts: int  # readers plan from (api/metrics/series.py)
    min_step: int
    max_step: int
    step_sorted: bool  # steps never decrease along the history order
    first_val: float | None
    timestamps: list[int]
    steps: list[int]
    vals: list[float | None]


class LatestRow(NamedTuple):
    """One ``staging_latest`` row (upserted into ``latest_metrics``), in the COPY's order."""

    run_uuid: str
    key: str
    step: int
    timestamp: int
    value: float
    is_nan: bool


class ModelMetricRow(NamedTuple):
    """One ``logged_model_metrics`` row: a point logged with a model (version-2 records)."""

    model_id: str
    key: str
    timestamp: int
    step: int
    run_uuid: str
    value: float  # 0.0 for NaN: what MLflow stores and shows on the model
    dataset_name: str | None
    dataset_digest: str | None


CHUNK_COLUMNS: Final = ChunkRow._fields
LATEST_COLUMNS: Final = LatestRow._fields
MODEL_METRIC_COLUMNS: Final = ModelMetricRow._fields

# Up to this many points per chunk: a full chunk (3 x 8-byte arrays, ~7.9 kB with its other
# columns) fills one heap page uncompressed (schemas/sql/0007_metric_chunks.sql), and a 100k
# point history is ~313 index entries instead of 100k.
CHUNK_CAP: Final = 320


def chunk_rows(run: str, key: str, points: Iterable[Point], cap: int = CHUNK_CAP) -> list[ChunkRow]:
    """Sorted, de-duplicated chunks of at most ``cap`` points."""
    ordered = sorted(set(points))
    return [_row(run, key, ordered[i : i + cap]) for i in range(0, len(ordered), cap)]


def _row(run: str, key: str, points: Sequence[Point]) -> ChunkRow:
    timestamps = [p.timestamp for p in points]
    steps = [p.step for p in points]
    vals: list[float | None] = [None if p.is_nan else p.value for p in points]
    step_sorted = all(a <= b for a, b in itertools.pairwise(steps))
    return ChunkRow(
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
    step, ts, value, is_nan = max((_chunk_latest(row) for row in rows), key=lambda c: c[:3])
    return LatestRow(rows[0].run_uuid, rows[0].key, step, ts, value, is_nan)


def _chunk_latest(row: ChunkRow) -> tuple[int, int, float, bool]:
    timestamps, steps, vals = row.timestamps, row.steps, row.vals
    if row.step_sorted:
        v = vals[-1]
        return steps[-1], timestamps[-1], 0.0 if v is None else v, v is None
    return max(
        (s, t, 0.0 if v is None else v, v is None)
        for t, s, v in zip(timestamps, steps, vals, strict=True)
    )
