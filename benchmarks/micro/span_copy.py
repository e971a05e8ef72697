"""PostgreSQL's CPU a stored span: the writer's span statements (COPY into a staging table, then
INSERT ... ON CONFLICT DO UPDATE into ``trace_spans``) against COPY straight into ``trace_spans``
under a savepoint (the writer would fall back to the upsert on a conflict), measured as the
backend's own CPU time (psutil) over batches of the bench's span rows, alternating the two.

    python -m benchmarks.micro.span_copy DSN [batches]   # DSN: a migrated Sluice database
"""

from __future__ import annotations

import asyncio
import os
import sys

import asyncpg
import psutil

from writer import trace_flush
from writer.trace_batch import SPAN_COLUMNS, SpanRow

ROWS = 4000  # a writer batch at ~20k spans/s over 0.2 s
_RUN = os.urandom(4).hex()


def _rows(batch: int) -> list[SpanRow]:
    proto = os.urandom(330)  # the bench's spans serialise to ~330 bytes
    rows: list[SpanRow] = []
    for t in range(ROWS // 5):
        trace_id = f"tr-{_RUN}{batch:08x}{t:016x}"  # new traces every run
        for s in range(1, 6):
            parent = None if s == 1 else f"{1:016x}"
            rows.append((trace_id, f"{s:016x}", parent, "step", "LLM", "OK", 1, 2, proto))
    return rows


async def _staged(conn: asyncpg.Connection, rows: list[SpanRow]) -> None:
    await conn.copy_records_to_table("staging_trace_spans", records=rows, columns=SPAN_COLUMNS)
    await conn.execute(trace_flush._UPSERT_SPANS)


async def _direct(conn: asyncpg.Connection, rows: list[SpanRow]) -> None:
    async with conn.transaction():  # a savepoint
        await conn.copy_records_to_table("trace_spans", records=rows, columns=SPAN_COLUMNS)


async def main(dsn: str, batches: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await trace_flush.prepare(conn)
        backend = psutil.Process(await conn.fetchval("SELECT pg_backend_pid()"))
        spent = {"staged": 0.0, "direct": 0.0}
        for batch in range(batches):
            name = "staged" if batch % 2 else "direct"
            rows = _rows(batch)
            before = sum(backend.cpu_times()[:2])
            async with conn.transaction():
                if name == "staged":
                    await _staged(conn, rows)
                else:
                    await _direct(conn, rows)
            spent[name] += sum(backend.cpu_times()[:2]) - before
        for name, seconds in spent.items():
            print(f"{name}: {seconds / (batches / 2 * ROWS) * 1e6:.1f} µs of backend CPU a span")
    finally:
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 20))
