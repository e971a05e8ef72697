"""The pure CPU part of a metric point's path, per point: ingest's wire encode, the writer's
decode, batching, and the ``metric_chunks`` / ``latest_metrics`` rows its COPY sends. Run it
before and after a change to that path (the records it builds must not cost more).

    python -m benchmarks.micro.data_path [records]

Prints one line: nanoseconds per point for each stage and their sum (best of 7 passes, CPU time over
``records`` 1000-point records, 10 keys x 100 steps, the log-batch shape of the benchmark).
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable

from schemas import chunks, wire
from writer.batch import Batch, BatchPolicy

POINTS = 1000


Record = tuple[str, str, int, list[wire.PointFields]]  # what ingest hands to wire.encode


def _records(n: int) -> list[Record]:
    now = 1_764_000_000_000
    out = []
    for r in range(n):
        run = uuid.uuid4().hex
        points = [
            (f"loss_{k}", s * 0.001, now + s, s + r, False) for k in range(10) for s in range(100)
        ]
        out.append((run, uuid.uuid4().hex, now, points))
    return out


def _best(fn: Callable[[], object], points: int) -> float:
    """CPU time (not wall: the figure must not count time spent waiting for a core)."""
    best = float("inf")
    for _ in range(7):
        started = time.process_time()
        fn()
        best = min(best, time.process_time() - started)
    return best / points * 1e9


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    records = _records(n)
    raw = [wire.encode(*r) for r in records]
    decoded = [wire.decode(b) for b in raw]
    policy = BatchPolicy(max_rows=10**9, max_age_s=1e9)

    def batch() -> Batch:
        b = Batch(policy)
        for offset, record in enumerate(decoded):
            b.add(0, offset, record, 0.0)
        return b

    series = batch().all_series()

    def build() -> None:
        for (run, key), pts in series.items():
            rows = chunks.chunk_rows(run, key, pts)
            chunks.latest_row(rows)

    total = n * POINTS
    figures = {
        "encode": _best(lambda: [wire.encode(*r) for r in records], total),
        "decode": _best(lambda: [wire.decode(b) for b in raw], total),
        "batch": _best(batch, total),
        "rows": _best(build, total),
    }
    line = " ".join(f"{name}={ns:.0f}" for name, ns in figures.items())
    print(f"ns/point over {total} points: {line} sum={sum(figures.values()):.0f}")


if __name__ == "__main__":
    main()
