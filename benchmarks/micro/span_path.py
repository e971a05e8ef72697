"""The pure steps of a 100-span OTLP export (20 traces x 5 spans, the bench's body) through
ingest and the writer, timed in-process: µs of CPU a request for each step.

    python -m benchmarks.micro.span_path [repeats]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from benchmarks.otlp_bodies import Template
from ingest import otlp
from schemas import trace_wire
from writer.trace_batch import assemble


def _timed(label: str, fn: Callable[[], Any], repeats: int) -> Any:
    result = fn()
    started = time.process_time()
    for _ in range(repeats):
        result = fn()
    us = (time.process_time() - started) / repeats * 1e6
    print(f"{label:<34} {us:9.1f} µs a request  {us / 100:7.2f} µs a span")
    return result


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    template = Template(b"\x01" * 8, 20, 5)
    body = template.body(7, time.time_ns())
    envelope = otlp.Envelope(1, "e" * 32, 1)
    request = _timed("parse", lambda: otlp.parse(body, "application/x-protobuf"), repeats)
    traces = _timed(
        "parse + to_traces",
        lambda: otlp.to_traces(otlp.parse(body, "application/x-protobuf")),
        repeats,
    )
    del request
    records = _timed("to_records", lambda: otlp.to_records(traces, envelope, "/tmp/a", 8), repeats)
    values = _timed("encode", lambda: [trace_wire.encode(r) for _, r in records], repeats)
    print(f"record bytes a request: {sum(len(v) for v in values)} in {len(values)} records")
    decoded = _timed("writer decode", lambda: [trace_wire.decode(v) for v in values], repeats)
    _timed("writer assemble", lambda: assemble(decoded), repeats)


if __name__ == "__main__":
    main()
