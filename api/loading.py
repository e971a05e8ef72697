"""Load several runs at once (search results): four queries per page, not four per run."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import asyncpg

from api import render

_RUNS = "SELECT * FROM runs WHERE run_uuid = ANY($1::text[])"
_LATEST = (
    "SELECT run_uuid, key, value, timestamp, step, is_nan FROM latest_metrics"
    " WHERE run_uuid = ANY($1::text[]) ORDER BY run_uuid, key"
)
_PARAMS = (
    "SELECT run_uuid, key, value FROM params"
    " WHERE run_uuid = ANY($1::text[]) ORDER BY run_uuid, key"
)
_TAGS = (
    "SELECT run_uuid, key, value FROM tags WHERE run_uuid = ANY($1::text[]) ORDER BY run_uuid, key"
)


async def load_runs(conn: asyncpg.Connection, run_ids: list[str]) -> list[dict[str, Any]]:
    """MLflow Run documents for ``run_ids``, in that order (ids that vanished are skipped)."""
    if not run_ids:
        return []
    infos = {r["run_uuid"]: r for r in await conn.fetch(_RUNS, run_ids)}
    latest = _by_run(await conn.fetch(_LATEST, run_ids))
    params = _by_run(await conn.fetch(_PARAMS, run_ids))
    tags = _by_run(await conn.fetch(_TAGS, run_ids))
    return [
        render.run(infos[rid], latest[rid], params[rid], tags[rid])
        for rid in run_ids
        if rid in infos
    ]


def _by_run(rows: list[asyncpg.Record]) -> defaultdict[str, list[asyncpg.Record]]:
    grouped: defaultdict[str, list[asyncpg.Record]] = defaultdict(list)
    for row in rows:
        grouped[row["run_uuid"]].append(row)
    return grouped
