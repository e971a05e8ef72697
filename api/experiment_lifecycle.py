"""Experiment lifecycle: delete, restore, rename, tags.

Deleting an experiment soft-deletes all its runs; restoring re-activates every run of it, also
those deleted one by one before (MLflow's behaviour). Both run in one transaction with the
experiment row locked first, then its runs: the same lock order as run creation (which takes
the experiment row FOR SHARE), so the two cannot deadlock.
"""

from __future__ import annotations

import time

import asyncpg
from aiohttp import web

from api.deps import deps_key, request_doc
from api.experiment_rules import (
    CUSTOM_VIEW_TAG_PREFIX,
    MAX_CUSTOM_VIEWS_PER_EXPERIMENT,
    validate_experiment_tag,
)
from schemas.mlflow_errors import MlflowError, does_not_exist, invalid_parameter
from schemas.mlflow_names import validate_experiment_id, validate_experiment_name
from schemas.protojson import get_string
from sluice.http import json_response

_LOCK = "SELECT lifecycle_stage FROM experiments WHERE experiment_id = $1 FOR UPDATE"


def _now() -> int:
    return int(time.time() * 1000)


async def _locked_stage(conn: asyncpg.Connection, exp_id: int, raw_id: str) -> str:
    stage = await conn.fetchval(_LOCK, exp_id)
    if stage is None:
        raise does_not_exist(f"No Experiment with id={raw_id} exists")
    return str(stage)


def _experiment_id(doc: dict[str, object]) -> tuple[int, str]:
    raw = get_string(doc, "experiment_id", required=True)
    return validate_experiment_id(raw), raw


async def delete_experiment(request: web.Request) -> web.Response:
    return await _set_stage(request, "active", "deleted")


async def restore_experiment(request: web.Request) -> web.Response:
    return await _set_stage(request, "deleted", "active")


async def _set_stage(request: web.Request, expected: str, new: str) -> web.Response:
    exp_id, raw = _experiment_id(await request_doc(request))
    if new == "deleted":
        # Points acknowledged before the delete must be stored (see runs.delete_run); which
        # partitions hold this experiment's runs is unknown here, so wait for all of them.
        await request.app[deps_key].fence.wait_for_all()
    now = _now()
    async with request.app[deps_key].pool.acquire() as conn, conn.transaction():
        if await _locked_stage(conn, exp_id, raw) != expected:
            raise does_not_exist(f"No Experiment with id={raw} exists")
        await conn.execute(
            "UPDATE experiments SET lifecycle_stage = $2, last_update_time = $3"
            " WHERE experiment_id = $1",
            exp_id,
            new,
            now,
        )
        await conn.execute(
            "UPDATE runs SET lifecycle_stage = $2, deleted_time = $3 WHERE experiment_id = $1",
            exp_id,
            new,
            now if new == "deleted" else None,
        )
    return json_response({})


async def update_experiment(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    exp_id, raw = _experiment_id(doc)
    new_name = get_string(doc, "new_name", required=True)
    validate_experiment_name(new_name)
    async with request.app[deps_key].pool.acquire() as conn, conn.transaction():
        if await _locked_stage(conn, exp_id, raw) != "active":
            raise MlflowError("INVALID_STATE", "Cannot rename a non-active experiment.")
        try:
            await conn.execute(
                "UPDATE experiments SET name = $2, last_update_time = $3 WHERE experiment_id = $1",
                exp_id,
                new_name,
                _now(),
            )
        except asyncpg.UniqueViolationError as exc:
            raise MlflowError(
                "BAD_REQUEST", f"(raised as a result of Query-invoked autoflush) {exc}"
            ) from None
    return json_response({})


async def _active_experiment(conn: asyncpg.Connection, exp_id: int, raw: str) -> None:
    stage = await conn.fetchval(
        "SELECT lifecycle_stage FROM experiments WHERE experiment_id = $1 FOR SHARE", exp_id
    )
    if stage is None:
        raise does_not_exist(f"No Experiment with id={raw} exists")
    if stage != "active":
        raise invalid_parameter(
            f"The experiment {raw} must be in the 'active' state. Current state is {stage}."
        )


async def set_experiment_tag(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    exp_id, raw = _experiment_id(doc)
    key = get_string(doc, "key", required=True, storable=False)
    value = get_string(doc, "value") or ""
    validate_experiment_tag(key, value)
    async with request.app[deps_key].pool.acquire() as conn, conn.transaction():
        await _active_experiment(conn, exp_id, raw)
        if key.startswith(CUSTOM_VIEW_TAG_PREFIX):
            await _check_custom_view_room(conn, exp_id, key)
        await conn.execute(
            "INSERT INTO experiment_tags VALUES ($1, $2, $3)"
            " ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value",
            exp_id,
            key,
            value,
        )
    return json_response({})


async def _check_custom_view_room(conn: asyncpg.Connection, exp_id: int, key: str) -> None:
    """MLflow caps custom views at 50 per experiment; overwriting one never counts. The
    experiment row is locked (FOR SHARE), so two concurrent adds can both pass at 49, as in
    MLflow, whose check is a snapshot read too."""
    row = await conn.fetchrow(
        "SELECT count(*) AS views, coalesce(bool_or(key = $2), false) AS present"
        " FROM experiment_tags WHERE experiment_id = $1 AND starts_with(key, $3)",
        exp_id,
        key,
        CUSTOM_VIEW_TAG_PREFIX,
    )
    if not row["present"] and row["views"] >= MAX_CUSTOM_VIEWS_PER_EXPERIMENT:
        raise invalid_parameter(
            f"Unable to create another custom view for experiment {exp_id}; the maximum number"
            f" of custom views per experiment is {MAX_CUSTOM_VIEWS_PER_EXPERIMENT}. Delete an"
            " existing custom view before creating a new one."
        )


async def delete_experiment_tag(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    exp_id, raw = _experiment_id(doc)
    key = get_string(doc, "key", required=True)
    async with request.app[deps_key].pool.acquire() as conn, conn.transaction():
        await _active_experiment(conn, exp_id, raw)
        status = await conn.execute(
            "DELETE FROM experiment_tags WHERE experiment_id = $1 AND key = $2", exp_id, key
        )
    if status == "DELETE 0":
        raise does_not_exist(f"No tag with name: {key} in experiment with id {raw}")
    return json_response({})
