"""Experiment endpoints (create, get, get-by-name)."""

from __future__ import annotations

import time
from typing import Any

import asyncpg
from aiohttp import web

from api import render
from api.deps import deps_key, request_doc
from api.experiment_rules import NewExperiment, validate_create_experiment
from schemas.mlflow_errors import MlflowError, does_not_exist
from schemas.mlflow_names import validate_experiment_id
from schemas.protojson import get_string
from sluice.http import json_response

_BY_ID = "SELECT * FROM experiments WHERE experiment_id = $1"
_BY_NAME = "SELECT * FROM experiments WHERE name = $1"
_TAGS = "SELECT key, value FROM experiment_tags WHERE experiment_id = $1 ORDER BY key"


async def create_experiment(request: web.Request) -> web.Response:
    deps = request.app[deps_key]
    new = validate_create_experiment(await request_doc(request))
    async with deps.pool.acquire() as conn, conn.transaction():
        exp_id = await conn.fetchval("SELECT nextval('experiment_id_seq')")
        try:
            await _insert(conn, exp_id, new)
        except asyncpg.UniqueViolationError as exc:
            # A taken name, or a tag key given twice: MLflow reports both as this error.
            raise MlflowError(
                "RESOURCE_ALREADY_EXISTS",
                f"Experiment(name={new.name}) already exists. Error: {exc}",
            ) from None
    return json_response({"experiment_id": str(exp_id)})


async def _insert(conn: asyncpg.Connection, exp_id: int, new: NewExperiment) -> None:
    now = int(time.time() * 1000)
    await conn.execute(
        "INSERT INTO experiments (experiment_id, name, artifact_location,"
        " lifecycle_stage, creation_time, last_update_time)"
        " VALUES ($1, $2, $3, 'active', $4, $4)",
        exp_id,
        new.name,
        new.artifact_location or f"mlflow-artifacts:/{exp_id}",
        now,
    )
    if new.tags:
        await conn.executemany(
            "INSERT INTO experiment_tags (experiment_id, key, value) VALUES ($1, $2, $3)",
            [(exp_id, key, value) for key, value in new.tags],
        )


async def get_experiment(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    return json_response(await read_experiment(request.app[deps_key].pool, doc))


async def read_experiment(pool: asyncpg.Pool, doc: dict[str, Any]) -> dict[str, Any]:
    """GetExperiment's answer (also the UI's GraphQL ``mlflowGetExperiment``)."""
    raw_id = get_string(doc, "experiment_id", required=True)
    exp_id = validate_experiment_id(raw_id)
    row = await pool.fetchrow(_BY_ID, exp_id)
    if row is None:
        raise does_not_exist(f"No Experiment with id={raw_id} exists")
    tags = await pool.fetch(_TAGS, row["experiment_id"])
    return {"experiment": render.experiment(row, tags)}


async def get_experiment_by_name(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    name = get_string(doc, "experiment_name", required=True)
    row = await request.app[deps_key].pool.fetchrow(_BY_NAME, name)
    if row is None:
        raise does_not_exist(f"Could not find experiment with name '{name}'")
    return await _experiment_response(request, row)


async def _experiment_response(request: web.Request, row: asyncpg.Record) -> web.Response:
    tags = await request.app[deps_key].pool.fetch(_TAGS, row["experiment_id"])
    return json_response({"experiment": render.experiment(row, tags)})
