"""Storage layouts for metric points, measured on one PostgreSQL: bytes per point, COPY rate,
and the time to read one 100k-point history. Evidence for benchmarks/README.md, not a test.

    python -m benchmarks.micro.layout postgresql://postgres@127.0.0.1:PORT/DB [points]

Layouts:
- ``rows``: Sluice's current table (one row per point, text run id and key, unique index on
  MLflow's metric identity);
- ``rows_narrow``: one row per point, but int4 series id (run, key) and a (series, step, ts)
  primary key;
- ``chunks``: one row per (run, key, 1000 consecutive points): int8[]/float8[] arrays;
- ``chunks_packed``: the same chunk as one bytea (delta-encoded steps and timestamps, raw
  doubles, zlib); PostgreSQL stores it as is (it no longer tries pglz on compressed bytes).
"""

from __future__ import annotations

import asyncio
import itertools
import struct
import sys
import time
import uuid
import zlib
from collections.abc import Iterator

import asyncpg

CHUNK = 1000
KEYS = 10

DDL = {
    "rows": """
        CREATE TABLE rows (run_uuid text, key text, step bigint, timestamp bigint,
                           value double precision, is_nan boolean);
        CREATE UNIQUE INDEX ON rows (run_uuid, key, timestamp, step, value, is_nan)""",
    "rows_narrow": """
        CREATE TABLE rows_narrow (series int, step bigint, timestamp bigint,
                                  value double precision, PRIMARY KEY (series, step, timestamp))""",
    "chunks": """
        CREATE TABLE chunks (run_uuid text, key text, chunk int, steps bigint[],
                             timestamps bigint[], vals double precision[],
                             PRIMARY KEY (run_uuid, key, chunk))""",
    "chunks_packed": """
        CREATE TABLE chunks_packed (run_uuid text, key text, chunk int, n int, data bytea,
                                    PRIMARY KEY (run_uuid, key, chunk))""",
}


def series(points: int) -> Iterator[tuple[str, str, list[tuple[int, int, float]]]]:
    """Runs of KEYS keys; each (run, key) gets 100k points, like a long training run."""
    per_series = 100_000
    t0 = 1_700_000_000_000
    made = 0
    while made < points:
        run = uuid.uuid4().hex
        for k in range(KEYS):
            n = min(per_series, points - made)
            if n <= 0:
                return
            pts = [(s, t0 + s * 37 + (s % 3), 1.0 / (1 + s) + k) for s in range(n)]
            yield run, f"train/loss_{k}", pts
            made += n


def pack(pts: list[tuple[int, int, float]]) -> bytes:
    steps = [p[0] for p in pts]
    stamps = [p[1] for p in pts]
    dsteps = [steps[0]] + [b - a for a, b in itertools.pairwise(steps)]
    dstamps = [stamps[0]] + [b - a for a, b in itertools.pairwise(stamps)]
    n = len(pts)
    raw = struct.pack(f"<{n}q{n}q{n}d", *dsteps, *dstamps, *(p[2] for p in pts))
    return zlib.compress(raw, 1)


def records(layout: str, points: int) -> Iterator[tuple[object, ...]]:
    for sid, (run, key, pts) in enumerate(series(points), start=1):
        if layout == "rows":
            yield from ((run, key, s, t, v, False) for s, t, v in pts)
        elif layout == "rows_narrow":
            yield from ((sid, s, t, v) for s, t, v in pts)
        else:
            for c in range(0, len(pts), CHUNK):
                part = pts[c : c + CHUNK]
                if layout == "chunks":
                    yield (run, key, c // CHUNK, [p[0] for p in part], [p[1] for p in part],
                           [p[2] for p in part])  # fmt: skip
                else:
                    yield run, key, c // CHUNK, len(part), pack(part)


async def measure(dsn: str, layout: str, points: int) -> dict[str, float]:
    conn = await asyncpg.connect(dsn, command_timeout=3600)
    try:
        await conn.execute(f"DROP TABLE IF EXISTS {layout}")
        await conn.execute(DDL[layout])
        batch: list[tuple[object, ...]] = []
        copy_s = 0.0
        for record in records(layout, points):
            batch.append(record)
            if len(batch) >= 20_000:
                copy_s += await _copy(conn, layout, batch)
                batch = []
        if batch:
            copy_s += await _copy(conn, layout, batch)
        await conn.execute(f"VACUUM ANALYZE {layout}")
        size = await conn.fetchval(f"SELECT pg_total_relation_size('{layout}')")
        read_ms = await _read_one(conn, layout)
    finally:
        await conn.close()
    return {
        "bytes_per_point": round(size / points, 1),
        "copy_points_per_s": round(points / copy_s),
        "read_100k_ms": round(read_ms, 1),
    }


async def _copy(conn: asyncpg.Connection, layout: str, batch: list[tuple[object, ...]]) -> float:
    started = time.perf_counter()
    await conn.copy_records_to_table(layout, records=batch)
    return time.perf_counter() - started


async def _read_one(conn: asyncpg.Connection, layout: str) -> float:
    """Server time to fetch one 100k-point series in history order (rows to the client)."""
    queries = {
        "rows": "SELECT value, timestamp, step FROM rows WHERE run_uuid = $1 AND key = $2"
        " ORDER BY timestamp, step, value",
        "rows_narrow": "SELECT value, timestamp, step FROM rows_narrow WHERE series = 1"
        " AND $1::text IS NOT NULL AND $2::text IS NOT NULL ORDER BY step, timestamp",
        "chunks": "SELECT steps, timestamps, vals FROM chunks WHERE run_uuid = $1 AND key = $2"
        " ORDER BY chunk",
        "chunks_packed": "SELECT data FROM chunks_packed WHERE run_uuid = $1 AND key = $2"
        " ORDER BY chunk",
    }
    if layout == "rows_narrow":
        run = "x"
    else:
        run = await conn.fetchval(f"SELECT run_uuid FROM {layout} LIMIT 1")
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        await conn.fetch(queries[layout], run, "train/loss_0")
        best = min(best, time.perf_counter() - started)
    return best * 1000


async def main() -> None:
    dsn = sys.argv[1]
    points = int(sys.argv[2]) if len(sys.argv) > 2 else 2_000_000
    for layout in DDL:
        print(layout, await measure(dsn, layout, points), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
