"""runs/log-inputs and runs/outputs: synchronous PostgreSQL writes from the api.

Why not ingest and Kafka: these calls are rare (a few per run), MLflow deduplicates datasets
and links on the call, and the client reads the run right after. One transaction per call,
with the run row locked FOR SHARE first (the lock order of run creation and deletion), so a
concurrent delete either precedes the write (400) or waits for it.
"""

from __future__ import annotations

import uuid

import asyncpg
from aiohttp import web

from api.deps import deps_key, request_doc
from api.input_rules import DatasetInput, validate_log_inputs, validate_log_outputs
from schemas.mlflow_errors import MlflowError, does_not_exist, invalid_parameter
from sluice.http import json_response

_RUN = "SELECT experiment_id, lifecycle_stage FROM runs WHERE run_uuid = $1 FOR SHARE"
_ADD_DATASETS = (
    "INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, source_type, source,"
    " schema, profile)"
    " SELECT u, $1, n, d, st, s, sc, p FROM unnest($2::text[], $3::text[], $4::text[],"
    " $5::text[], $6::text[], $7::text[], $8::text[]) AS t(u, n, d, st, s, sc, p)"
    " ON CONFLICT (experiment_id, name, digest) DO NOTHING"
)
_DATASET_UUIDS = (
    "SELECT name, digest, dataset_uuid FROM datasets WHERE experiment_id = $1"
    " AND (name, digest) IN (SELECT * FROM unnest($2::text[], $3::text[]))"
)
# Only a new link takes the request's tags: MLflow keeps those of the first link.
_LINK = (
    "INSERT INTO run_inputs (run_uuid, dataset_uuid, context) VALUES ($1, $2, $3)"
    " ON CONFLICT (run_uuid, dataset_uuid) DO NOTHING RETURNING dataset_uuid"
)
_INPUT_TAGS = (
    "INSERT INTO input_tags (run_uuid, dataset_uuid, key, value, position)"
    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING"
)


async def log_inputs(request: web.Request) -> web.Response:
    call = validate_log_inputs(await request_doc(request))
    async with request.app[deps_key].pool.acquire() as conn, conn.transaction():
        experiment_id = await _active_run(conn, call.run_id)
        if call.datasets:
            await _link_datasets(conn, call.run_id, experiment_id, call.datasets)
        if call.models:
            await conn.executemany(
                "INSERT INTO run_model_inputs (run_uuid, model_id) VALUES ($1, $2)"
                " ON CONFLICT DO NOTHING",
                [(call.run_id, model_id) for model_id in call.models],
            )
    return json_response({})


async def log_outputs(request: web.Request) -> web.Response:
    call = validate_log_outputs(await request_doc(request))
    async with request.app[deps_key].pool.acquire() as conn, conn.transaction():
        await _active_run(conn, call.run_id)
        try:
            await conn.executemany(
                "INSERT INTO run_model_outputs (run_uuid, model_id, step) VALUES ($1, $2, $3)",
                [(call.run_id, model_id, step) for model_id, step in call.models],
            )
        except asyncpg.UniqueViolationError:
            # MLflow's unique (run, model) edge fails the whole call with the database's text.
            raise MlflowError(
                "BAD_REQUEST",
                "UNIQUE constraint failed: inputs.source_type, inputs.source_id,"
                " inputs.destination_type, inputs.destination_id",
            ) from None
    return json_response({})


async def _active_run(conn: asyncpg.Connection, run_id: str) -> int:
    """The run's experiment id; MLflow's 404 for an unknown run, its 400 for a deleted one."""
    row = await conn.fetchrow(_RUN, run_id)
    if row is None:
        raise does_not_exist(f"Run with id={run_id} not found")
    if row["lifecycle_stage"] != "active":
        raise invalid_parameter(
            f"The run {run_id} must be in the 'active' state. "
            f"Current state is {row['lifecycle_stage']}."
        )
    return int(row["experiment_id"])


async def _link_datasets(
    conn: asyncpg.Connection, run_id: str, experiment_id: int, inputs: list[DatasetInput]
) -> None:
    datasets = [item.dataset for item in inputs]
    await conn.execute(
        _ADD_DATASETS,
        experiment_id,
        [uuid.uuid4().hex for _ in datasets],
        [d.name for d in datasets],
        [d.digest for d in datasets],
        [d.source_type for d in datasets],
        [d.source for d in datasets],
        [d.schema for d in datasets],
        [d.profile for d in datasets],
    )
    rows = await conn.fetch(
        _DATASET_UUIDS, experiment_id, [d.name for d in datasets], [d.digest for d in datasets]
    )
    uuids = {(r["name"], r["digest"]): r["dataset_uuid"] for r in rows}
    for item in inputs:
        dataset_uuid = uuids[(item.dataset.name, item.dataset.digest)]
        if await conn.fetchval(_LINK, run_id, dataset_uuid, item.context) is not None:
            await conn.executemany(
                _INPUT_TAGS,
                [(run_id, dataset_uuid, k, v, i) for i, (k, v) in enumerate(item.tags)],
            )
