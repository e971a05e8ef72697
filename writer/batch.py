"""Pure batching: accumulate decoded records until size or age says flush.

No clock is read here: callers pass ``now`` (monotonic seconds), so tests drive time directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.chunks import ModelMetricRow, Point
from schemas.wire import MetricRecord

Series = tuple[str, str]  # (run_uuid, key)


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    max_rows: int  # flush when this many rows are buffered
    max_age_s: float  # ... or when the first record added is this old

    def due_in(self, started_at: float | None, now: float) -> float | None:
        """Seconds until a batch started at ``started_at`` is old enough to flush (0 when it
        is); None for a batch holding nothing yet."""
        if started_at is None:
            return None
        return max(0.0, started_at + self.max_age_s - now)


@dataclass(slots=True)
class Batch:
    """Points (grouped by partition, then series) and offset progress of records consumed
    since the last flush.

    ``next_offsets[p]`` is one past the last consumed offset of partition ``p`` -- including
    records that were dead-lettered, because their offsets must advance too.
    """

    policy: BatchPolicy
    rows: dict[int, dict[Series, list[Point]]] = field(default_factory=dict)
    # Points that name a logged model, by partition (also in ``rows``: they are the run's too).
    model_rows: dict[int, list[ModelMetricRow]] = field(default_factory=dict)
    next_offsets: dict[int, int] = field(default_factory=dict)
    received_at_ms: list[int] = field(default_factory=list)
    row_count: int = 0
    started_at: float | None = None

    def add(self, partition: int, offset: int, record: MetricRecord | None, now: float) -> None:
        """Add one consumed record; ``record`` is None when it went to the dead-letter topic."""
        if self.started_at is None:
            self.started_at = now
        self.next_offsets[partition] = offset + 1
        if record is None:
            return
        series = self.rows.setdefault(partition, {})
        run = record.run_id
        for p in record.metrics:
            points = series.get((run, p.key))
            if points is None:
                points = series[(run, p.key)] = []
            points.append(Point(p.timestamp, p.step, p.value, p.is_nan))
        self.row_count += len(record.metrics)
        self.received_at_ms.append(record.received_at_ms)
        if record.model_points:  # only version-2 records: the common record skips this
            self.model_rows.setdefault(partition, []).extend(
                ModelMetricRow(
                    p.model_id or "",
                    p.key,
                    p.timestamp,
                    p.step,
                    run,
                    p.value,
                    p.dataset_name,
                    p.dataset_digest,
                )
                for p in record.model_points
            )

    def ready(self, now: float) -> bool:
        if self.started_at is None:
            return False
        return (
            self.row_count >= self.policy.max_rows or now - self.started_at >= self.policy.max_age_s
        )

    def due_in(self, now: float) -> float | None:
        return self.policy.due_in(self.started_at, now)

    def empty(self) -> bool:
        return not self.next_offsets

    def all_series(self) -> dict[Series, list[Point]]:
        """Every series of the batch (a run lives in one partition, so keys never collide)."""
        merged: dict[Series, list[Point]] = {}
        for series in self.rows.values():
            merged.update(series)
        return merged

    def all_model_rows(self) -> list[ModelMetricRow]:
        return [row for rows in self.model_rows.values() for row in rows]

    def drop_partitions(self, partitions: set[int]) -> None:
        """Forget what was consumed from partitions this writer no longer owns."""
        for p in partitions:
            self.row_count -= sum(len(pts) for pts in self.rows.pop(p, {}).values())
            self.model_rows.pop(p, None)
            self.next_offsets.pop(p, None)
        if not self.next_offsets:
            self.clear()

    def clear(self) -> None:
        self.rows.clear()
        self.model_rows.clear()
        self.next_offsets.clear()
        self.received_at_ms.clear()
        self.row_count = 0
        self.started_at = None
