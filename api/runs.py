"""Run lifecycle endpoints: create, get, update, delete, restore."""

from __future__ import annotations

import time
import uuid

import asyncpg
from aiohttp import web

from api import render
from api.deps import Deps, deps_key, request_doc
from api.loading import load_runs
from api.naming import random_run_name
from schemas.mlflow_errors import MlflowError, does_not_exist, invalid_parameter
from schemas.mlflow_names import (
    truncate_tag_value,
    validate_experiment_id,
    validate_key,
)
from schemas.protojson import get_int64, get_list, get_string
from sluice.http import json_response

RUN_NAME_TAG = "mlflow.runName"
_RUN_STATUSES = frozenset({"RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"})
_RUN_STATUS_NUMBERS = {
    "1": "RUNNING",
    "2": "SCHEDULED",
    "3": "FINISHED",
    "4": "FAILED",
    "5": "KILLED",
}

_RUN = "SELECT * FROM runs WHERE run_uuid = $1"
_TAGS = "SELECT key, value FROM tags WHERE run_uuid = $1 ORDER BY key"


def run_id_of(doc: dict[str, object]) -> str:
    """``run_id``, or the legacy ``run_uuid`` the client also sends."""
    run_id = get_string(doc, "run_id") or get_string(doc, "run_uuid")
    if not run_id:
        raise invalid_parameter(
            "Missing value for required parameter 'run_id'. "
            "See the API docs for more information about request parameters."
        )
    return run_id


async def _fetch_run(conn: asyncpg.Connection | asyncpg.Pool, run_id: str) -> asyncpg.Record:
    row = await conn.fetchrow(_RUN, run_id)
    if row is None:
        raise does_not_exist(f"Run with id={run_id} not found")
    return row


def _require_active(row: asyncpg.Record) -> None:
    if row["lifecycle_stage"] != "active":
        raise invalid_parameter(
            f"The run {row['run_uuid']} must be in the 'active' state. "
            f"Current state is {row['lifecycle_stage']}."
        )


def _creation_tags(doc: dict[str, object]) -> list[tuple[str, str]]:
    tags: dict[str, str] = {}
    for i, item in enumerate(get_list(doc, "tags")):
        key = get_string(item, "key", path=f"tags[{i}].key", required=True) or ""
        validate_key(key, f"tags[{i}].key")
        tags[key] = truncate_tag_value(get_string(item, "value", path=f"tags[{i}].value") or "")
    return list(tags.items())


def _run_name(doc: dict[str, object], tags: list[tuple[str, str]]) -> str:
    given = get_string(doc, "run_name") or None
    tagged = dict(tags).get(RUN_NAME_TAG)
    if given and tagged and given != tagged:
        raise invalid_parameter(
            f"Both 'run_name' argument and 'mlflow.runName' tag are specified, but with "
            f"different values (run_name='{given}', mlflow.runName='{tagged}')."
        )
    return given or tagged or random_run_name()


async def create_run(request: web.Request) -> web.Response:
    deps = request.app[deps_key]
    doc = await request_doc(request)
    raw_exp = get_string(doc, "experiment_id")
    if not raw_exp:
        # MLflow does not default the experiment: its insert fails on the foreign key.
        raise MlflowError(
            "BAD_REQUEST", "FOREIGN KEY constraint failed: a run needs an experiment_id."
        )
    exp_id = validate_experiment_id(raw_exp)
    tags = _creation_tags(doc)
    name = _run_name(doc, tags)
    tags = [(k, v) for k, v in tags if k != RUN_NAME_TAG] + [(RUN_NAME_TAG, name)]
    run_id = uuid.uuid4().hex
    start_time = get_int64(doc, "start_time") or 0
    async with deps.pool.acquire() as conn, conn.transaction():
        exp = await conn.fetchrow(
            "SELECT lifecycle_stage, artifact_location FROM experiments"
            " WHERE experiment_id = $1 FOR SHARE",
            exp_id,
        )
        if exp is None:
            raise does_not_exist(f"No Experiment with id={raw_exp} exists")
        if exp["lifecycle_stage"] != "active":
            raise invalid_parameter(
                f"The experiment {raw_exp} must be in the 'active' state. "
                f"Current state is {exp['lifecycle_stage']}."
            )
        await conn.execute(
            "INSERT INTO runs (run_uuid, experiment_id, name, user_id, status, start_time,"
            " lifecycle_stage, artifact_uri) VALUES ($1, $2, $3, $4, 'RUNNING', $5, 'active', $6)",
            run_id,
            exp_id,
            name,
            get_string(doc, "user_id") or "",
            start_time,
            f"{exp['artifact_location']}/{run_id}/artifacts",
        )
        await conn.executemany(
            "INSERT INTO tags (run_uuid, key, value) VALUES ($1, $2, $3)",
            [(run_id, k, v) for k, v in tags],
        )
        row = await _fetch_run(conn, run_id)
        tag_rows = await conn.fetch(_TAGS, run_id)
    body = render.run(row, [], [], tag_rows)
    del body["outputs"]  # MLflow's CreateRun response carries inputs but no outputs
    return json_response({"run": body})


async def get_run(request: web.Request) -> web.Response:
    return json_response(await read_run(request.app[deps_key], await request_doc(request)))


async def read_run(deps: Deps, doc: dict[str, object]) -> dict[str, object]:
    """GetRun's answer (also the UI's GraphQL ``mlflowGetRun``)."""
    run_id = run_id_of(doc)
    await deps.fence.wait_for_run(run_id)
    async with deps.pool.acquire() as conn:
        found = await load_runs(conn, [run_id])
    if not found:
        raise does_not_exist(f"Run with id={run_id} not found")
    return {"run": found[0]}


def _status(doc: dict[str, object]) -> str | None:
    """MLflow ignores an unparsable status instead of rejecting it (verified behaviour)."""
    raw = doc.get("status")
    if raw is None:
        return None
    text = str(raw)
    return text if text in _RUN_STATUSES else _RUN_STATUS_NUMBERS.get(text)


async def update_run(request: web.Request) -> web.Response:
    deps = request.app[deps_key]
    doc = await request_doc(request)
    run_id = run_id_of(doc)
    status, end_time = _status(doc), get_int64(doc, "end_time")
    name = get_string(doc, "run_name") or None
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(_RUN + " FOR UPDATE", run_id)
        if row is None:
            raise does_not_exist(f"Run with id={run_id} not found")
        _require_active(row)
        await conn.execute(
            "UPDATE runs SET status = coalesce($2, status), end_time = coalesce($3, end_time),"
            " name = coalesce($4, name) WHERE run_uuid = $1",
            run_id,
            status,
            end_time,
            name,
        )
        if name is not None:
            await conn.execute(
                "INSERT INTO tags VALUES ($1, $2, $3)"
                " ON CONFLICT (run_uuid, key) DO UPDATE SET value = excluded.value",
                run_id,
                RUN_NAME_TAG,
                name,
            )
        row = await _fetch_run(conn, run_id)
    return json_response({"run_info": render.run_info(row)})


async def delete_run(request: web.Request) -> web.Response:
    # Points acknowledged before the delete must be stored, as in MLflow; the writer sets aside
    # points of runs that are deleted by the time it stores them, so wait for them first.
    return await _set_lifecycle(request, "deleted", int(time.time() * 1000), fence=True)


async def restore_run(request: web.Request) -> web.Response:
    return await _set_lifecycle(request, "active", None)


async def _set_lifecycle(
    request: web.Request, stage: str, deleted_time: int | None, *, fence: bool = False
) -> web.Response:
    deps = request.app[deps_key]
    doc = await request_doc(request)
    run_id = get_string(doc, "run_id", required=True)
    if fence:
        await deps.fence.wait_for_run(run_id)
    status = await deps.pool.execute(
        "UPDATE runs SET lifecycle_stage = $2, deleted_time = $3 WHERE run_uuid = $1",
        run_id,
        stage,
        deleted_time,
    )
    if status == "UPDATE 0":
        raise does_not_exist(f"Run with id={run_id} not found")
    return json_response({})
