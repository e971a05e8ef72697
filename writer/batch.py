"""Pure batching: accumulate decoded records until size or age says flush.

No clock is read here: callers pass ``now`` (monotonic seconds), so tests drive time directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.wire import MetricRecord

# Column order of the COPY into staging_metrics (and of the metrics table).
COLUMNS = ("run_uuid", "key", "step", "timestamp", "value", "is_nan")
Row = tuple[str, str, int, int, float, bool]


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    max_rows: int  # flush when this many rows are buffered
    max_age_s: float  # ... or when the first record added is this old


@dataclass(slots=True)
class Batch:
    """Rows and offset progress of records consumed since the last flush.

    ``next_offsets[p]`` is one past the last consumed offset of partition ``p`` -- including
    records that were dead-lettered, because their offsets must advance too.
    """

    policy: BatchPolicy
    rows: dict[int, list[Row]] = field(default_factory=dict)
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
        rows = self.rows.setdefault(partition, [])
        run = record.run_id
        rows.extend((run, k, step, ts, value, nan) for k, value, ts, step, nan in record.metrics)
        self.row_count += len(record.metrics)
        self.received_at_ms.append(record.received_at_ms)

    def ready(self, now: float) -> bool:
        if self.started_at is None:
            return False
        return (
            self.row_count >= self.policy.max_rows or now - self.started_at >= self.policy.max_age_s
        )

    def empty(self) -> bool:
        return not self.next_offsets

    def all_rows(self) -> list[Row]:
        return [row for rows in self.rows.values() for row in rows]

    def drop_partitions(self, partitions: set[int]) -> None:
        """Forget what was consumed from partitions this writer no longer owns."""
        for p in partitions:
            self.row_count -= len(self.rows.pop(p, []))
            self.next_offsets.pop(p, None)
        if not self.next_offsets:
            self.clear()

    def clear(self) -> None:
        self.rows.clear()
        self.next_offsets.clear()
        self.received_at_ms.clear()
        self.row_count = 0
        self.started_at = None
