"""Load several runs at once (a search page, or one run): eight queries per page, not per run."""

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
_DATASETS = (
    "SELECT i.run_uuid, i.dataset_uuid, d.name, d.digest, d.source_type, d.source, d.schema,"
    " d.profile FROM run_inputs i JOIN datasets d ON d.dataset_uuid = i.dataset_uuid"
    " WHERE i.run_uuid = ANY($1::text[]) ORDER BY i.run_uuid, i.position"
)
_INPUT_TAGS = (
    "SELECT run_uuid, dataset_uuid, key, value FROM input_tags"
    " WHERE run_uuid = ANY($1::text[]) ORDER BY run_uuid, dataset_uuid, position"
)
_MODEL_INPUTS = (
    "SELECT run_uuid, model_id FROM run_model_inputs"
    " WHERE run_uuid = ANY($1::text[]) ORDER BY position"
)
_MODEL_OUTPUTS = (
    "SELECT run_uuid, model_id, step FROM run_model_outputs"
    " WHERE run_uuid = ANY($1::text[]) ORDER BY position"
)


async def load_runs(conn: asyncpg.Connection, run_ids: list[str]) -> list[dict[str, Any]]:
    """MLflow Run documents for ``run_ids``, in that order (ids that vanished are skipped)."""
    if not run_ids:
        return []
    infos = {r["run_uuid"]: r for r in await conn.fetch(_RUNS, run_ids)}
    latest = _by_run(await conn.fetch(_LATEST, run_ids))
    params = _by_run(await conn.fetch(_PARAMS, run_ids))
    tags = _by_run(await conn.fetch(_TAGS, run_ids))
    inputs, outputs = await _inputs_and_outputs(conn, run_ids)
    return [
        render.run(infos[rid], latest[rid], params[rid], tags[rid], inputs[rid], outputs[rid])
        for rid in run_ids
        if rid in infos
    ]


async def _inputs_and_outputs(
    conn: asyncpg.Connection, run_ids: list[str]
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    datasets = _by_run(await conn.fetch(_DATASETS, run_ids))
    input_tags = _by_run(await conn.fetch(_INPUT_TAGS, run_ids))
    models_in = _by_run(await conn.fetch(_MODEL_INPUTS, run_ids))
    models_out = _by_run(await conn.fetch(_MODEL_OUTPUTS, run_ids))
    inputs = {
        rid: render.run_inputs(datasets[rid], _by_dataset(input_tags[rid]), models_in[rid])
        for rid in run_ids
    }
    outputs = {rid: render.run_outputs(models_out[rid]) for rid in run_ids}
    return inputs, outputs


def _by_dataset(rows: list[asyncpg.Record]) -> dict[str, list[asyncpg.Record]]:
    grouped: dict[str, list[asyncpg.Record]] = defaultdict(list)
    for row in rows:
        grouped[row["dataset_uuid"]].append(row)
    return grouped


def _by_run(rows: list[asyncpg.Record]) -> defaultdict[str, list[asyncpg.Record]]:
    grouped: defaultdict[str, list[asyncpg.Record]] = defaultdict(list)
    for row in rows:
        grouped[row["run_uuid"]].append(row)
    return grouped
