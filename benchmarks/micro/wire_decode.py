"""The writer's per-record decode: ``schemas.wire.decode`` (orjson + per-point checks in
Python) against a typed msgspec decoder producing the same tuples. Evidence for
benchmarks/README.md (the writer profile shows wire decoding as its largest self time).

    python -m benchmarks.micro.wire_decode
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated

import msgspec

from schemas import wire

Int64 = Annotated[int, msgspec.Meta(ge=wire.INT64_MIN, le=wire.INT64_MAX)]
Point = tuple[str, float, Annotated[int, msgspec.Meta(ge=0, le=wire.INT64_MAX)], Int64, bool]


class Record(msgspec.Struct):
    v: int
    type: str
    run_id: str
    event_id: str
    received_at_ms: Int64
    metrics: list[Point]


def sample() -> bytes:
    now = int(time.time() * 1000)
    points = [(f"loss_{k}", s * 0.001, now, s, False) for k in range(10) for s in range(100)]
    return wire.encode(uuid.uuid4().hex, uuid.uuid4().hex, now, points)


def best_of(fn: object, raw: bytes, n: int = 300) -> float:
    assert callable(fn)
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(n):
            fn(raw)
        best = min(best, (time.perf_counter() - started) / n)
    return best * 1e6


def main() -> None:
    raw = sample()
    decoder = msgspec.json.Decoder(Record)
    typed = decoder.decode(raw)
    decoded = [msgspec.structs.astuple(p) for p in wire.decode(raw).metrics]
    assert [tuple(p) for p in typed.metrics] == decoded
    current = best_of(wire.decode, raw)
    fast = best_of(decoder.decode, raw)
    print(
        f"1000-point record: wire.decode {current:.0f} us, msgspec typed {fast:.0f} us "
        f"({current / fast:.1f}x)"
    )


if __name__ == "__main__":
    main()
