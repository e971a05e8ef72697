"""Experiment endpoints: create, get, get-by-name, search, delete, restore, rename, tags.

Deleting an experiment soft-deletes all its runs; restoring re-activates every run of it, also
those deleted one by one before (MLflow's behaviour); both in one transaction under the lock
order of ``api.experiments.store``.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web

from api import page_tokens
from api.deps import deps_key, request_doc
from api.experiments import render, store
from api.experiments.rules import (
    CUSTOM_VIEW_TAG_PREFIX,
    MAX_CUSTOM_VIEWS_PER_EXPERIMENT,
    validate_create_experiment,
    validate_experiment_tag,
)
from api.experiments.search import compile_experiment_search
from api.search.order import parse_experiment_order_by
from api.search.request import experiment_max_results, page_of, parse_view_type
from api.search.rules import parse_experiment_filter
from api.traces import store as trace_store
from schemas.fields import get_list, get_string, get_unchecked_string
from schemas.int_fields import get_int64
from schemas.mlflow_errors import MlflowError, does_not_exist, invalid_parameter, no_such_experiment
from schemas.mlflow_names import validate_experiment_id, validate_experiment_name
from sluice.auth import viewer_of
from sluice.http import json_response

_REPEATED = frozenset({"experiment_ids", "order_by"})


def _experiment_id(doc: dict[str, object]) -> tuple[int, str]:
    raw = get_string(doc, "experiment_id", required=True)
    return validate_experiment_id(raw), raw


async def create_experiment(request: web.Request) -> web.Response:
    new = validate_create_experiment(await request_doc(request))
    async with request.app[deps_key].pool.acquire() as conn, conn.transaction():
        try:
            exp_id = await store.insert(conn, new)
        except asyncpg.UniqueViolationError as exc:
            # A taken name, or a tag key given twice: MLflow reports both as this error.
            raise MlflowError(
                "RESOURCE_ALREADY_EXISTS",
                f"Experiment(name={new.name}) already exists. Error: {exc}",
            ) from None
    return json_response({"experiment_id": str(exp_id)})


async def get_experiment(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    return json_response(await read_experiment(request.app[deps_key].pool, doc))


async def read_experiment(pool: asyncpg.Pool, doc: dict[str, Any]) -> dict[str, Any]:
    """GetExperiment's answer (also the UI's GraphQL ``mlflowGetExperiment``)."""
    exp_id, raw = _experiment_id(doc)
    row = await store.by_id(pool, exp_id)
    if row is None:
        raise no_such_experiment(raw)
    return {"experiment": render.experiment(row, await store.tags_of(pool, exp_id))}


async def get_experiment_by_name(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    name = get_string(doc, "experiment_name", required=True)
    row = await store.by_name(request.app[deps_key].pool, name)
    if row is None:
        raise does_not_exist(f"Could not find experiment with name '{name}'")
    return await _experiment_response(request, row)


async def _experiment_response(request: web.Request, row: asyncpg.Record) -> web.Response:
    tags = await store.tags_of(request.app[deps_key].pool, row["experiment_id"])
    return json_response({"experiment": render.experiment(row, tags)})


async def search_experiments(request: web.Request) -> web.Response:
    """Parse (pure), compile (pure), one page query, then the page's rows and tags."""
    deps = request.app[deps_key]
    doc = await request_doc(request, _REPEATED)
    clauses = parse_experiment_filter(get_string(doc, "filter"))
    order_by = parse_experiment_order_by([str(o) for o in get_list(doc, "order_by")])
    view_type = parse_view_type(doc.get("view_type"))
    max_results = experiment_max_results(get_int64(doc, "max_results"))
    offset = page_tokens.decode_offset(get_string(doc, "page_token"))
    query = compile_experiment_search(
        clauses, view_type, order_by, max_results, offset, viewer_of(request)
    )
    async with deps.pool.acquire() as conn:
        rows = await conn.fetch(query.sql, *query.args)
        page, token = page_of([r["experiment_id"] for r in rows], max_results, offset)
        found, tags = await store.page(conn, page)
    body: dict[str, object] = {}
    if page:
        body["experiments"] = [
            render.experiment(found[e], [t for t in tags if t["experiment_id"] == e]) for e in page
        ]
    if token:
        body["next_page_token"] = token
    return json_response(body)


async def delete_experiment(request: web.Request) -> web.Response:
    return await _set_stage(request, "active", "deleted")


async def restore_experiment(request: web.Request) -> web.Response:
    return await _set_stage(request, "deleted", "active")


async def _set_stage(request: web.Request, expected: str, new: str) -> web.Response:
    exp_id, raw = _experiment_id(await request_doc(request))
    if new == "deleted":
        # Points acknowledged before the delete must be stored (see delete_run in
        # api/runs/handlers.py); which partitions hold this experiment's runs is unknown
        # here, so wait for all of them.
        await request.app[deps_key].fence.wait_for_all()
    async with request.app[deps_key].pool.acquire() as conn, conn.transaction():
        if await store.lock_stage(conn, exp_id, raw) != expected:
            raise no_such_experiment(raw)
        await store.set_stage(conn, exp_id, new)
        if new == "deleted":
            await trace_store.delete_assessments_of_experiment(conn, exp_id)
    return json_response({})


async def update_experiment(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    exp_id, raw = _experiment_id(doc)
    new_name = get_string(doc, "new_name", required=True)
    validate_experiment_name(new_name)
    async with request.app[deps_key].pool.acquire() as conn, conn.transaction():
        if await store.lock_stage(conn, exp_id, raw) != "active":
            raise MlflowError("INVALID_STATE", "Cannot rename a non-active experiment.")
        await store.rename(conn, exp_id, new_name)
    return json_response({})


async def set_experiment_tag(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    exp_id, raw = _experiment_id(doc)
    key = get_unchecked_string(doc, "key", required=True)
    value = get_string(doc, "value") or ""
    validate_experiment_tag(key, value)
    async with request.app[deps_key].pool.acquire() as conn, conn.transaction():
        await store.lock_active(conn, exp_id, raw)
        if key.startswith(CUSTOM_VIEW_TAG_PREFIX):
            await _check_custom_view_room(conn, exp_id, key)
        await store.set_tag(conn, exp_id, key, value)
    return json_response({})


async def _check_custom_view_room(conn: asyncpg.Connection, exp_id: int, key: str) -> None:
    """MLflow caps custom views at 50 per experiment; overwriting one never counts. The
    experiment row is locked (FOR SHARE), so two concurrent adds can both pass at 49, as in
    MLflow, whose check is a snapshot read too."""
    views, present = await store.custom_views(conn, exp_id, key)
    if not present and views >= MAX_CUSTOM_VIEWS_PER_EXPERIMENT:
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
        await store.lock_active(conn, exp_id, raw)
        deleted = await store.delete_tag(conn, exp_id, key)
    if not deleted:
        raise does_not_exist(f"No tag with name: {key} in experiment with id {raw}")
    return json_response({})
