"""Run endpoints: create, get, update, delete, restore, search, log-inputs, outputs.

log-inputs and outputs are synchronous PostgreSQL writes from the api, not ingest and Kafka:
they are rare (a few per run), MLflow deduplicates datasets and links on the call, and the
client reads the run right after (docs/design.md).
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from api import page_tokens
from api.deps import Deps, deps_key, request_doc
from api.experiments import store as experiments
from api.runs import render, store
from api.runs.rules import (
    run_id_of,
    run_status,
    validate_create_run,
    validate_log_inputs,
    validate_log_outputs,
)
from api.runs.search import compile_run_search
from api.search.order import parse_run_order_by
from api.search.request import page_of, parse_view_type, run_max_results
from api.search.rules import parse_run_filter
from api.traces import store as trace_store
from schemas.fields import get_list, get_string
from schemas.int_fields import get_int64, read_int
from schemas.mlflow_errors import no_such_run
from sluice.clock import now_ms
from sluice.http import json_response

_REPEATED = frozenset({"experiment_ids", "order_by"})


async def create_run(request: web.Request) -> web.Response:
    new = validate_create_run(await request_doc(request))
    run_id = uuid.uuid4().hex
    async with request.app[deps_key].pool.acquire() as conn, conn.transaction():
        experiment = await experiments.lock_active(conn, new.experiment_id, new.raw_experiment_id)
        row, tag_rows = await store.insert(conn, run_id, experiment["artifact_location"], new)
    body = render.run(row, [], [], tag_rows)
    del body["outputs"]  # MLflow's CreateRun response carries inputs but no outputs
    return json_response({"run": body})


async def get_run(request: web.Request) -> web.Response:
    return json_response(await read_run(request.app[deps_key], await request_doc(request)))


async def read_run(deps: Deps, doc: dict[str, Any]) -> dict[str, Any]:
    """GetRun's answer (also the UI's GraphQL ``mlflowGetRun``)."""
    run_id = run_id_of(doc)
    await deps.fence.wait_for_run(run_id)
    async with deps.pool.acquire() as conn:
        found = await store.load_runs(conn, [run_id])
    if not found:
        raise no_such_run(run_id)
    return {"run": found[0]}


async def update_run(request: web.Request) -> web.Response:
    deps = request.app[deps_key]
    doc = await request_doc(request)
    run_id = run_id_of(doc)
    status, end_time = run_status(doc), get_int64(doc, "end_time")
    name = get_string(doc, "run_name") or None
    async with deps.pool.acquire() as conn, conn.transaction():
        await store.lock_active(conn, run_id, for_update=True)
        row = await store.update(conn, run_id, status, end_time, name)
    return json_response({"run_info": render.run_info(row)})


async def delete_run(request: web.Request) -> web.Response:
    # Points acknowledged before the delete must be stored, as in MLflow; the writer sets aside
    # points of runs that are deleted by the time it stores them, so wait for them first.
    return await _set_lifecycle(request, "deleted", now_ms(), fence=True)


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
    async with deps.pool.acquire() as conn, conn.transaction():
        await store.set_lifecycle(conn, run_id, stage, deleted_time)
        if stage == "deleted":
            await trace_store.delete_assessments_of_run(conn, run_id)
    return json_response({})


async def search_runs(request: web.Request) -> web.Response:
    """Parse (pure), compile (pure), one page query, then the page's runs in one statement."""
    doc = await request_doc(request, _REPEATED)
    return json_response(await run_search_page(request.app[deps_key], doc))


async def run_search_page(deps: Deps, doc: dict[str, Any]) -> dict[str, Any]:
    """SearchRuns' answer (also the UI's GraphQL ``mlflowSearchRuns``)."""
    experiment_ids = [str(e) for e in get_list(doc, "experiment_ids")]
    clauses = parse_run_filter(get_string(doc, "filter"))
    order_by = parse_run_order_by([str(o) for o in get_list(doc, "order_by")])
    view_type = parse_view_type(doc.get("run_view_type"))
    max_results = run_max_results(read_int(doc, "max_results", 32))
    offset = page_tokens.decode_offset(get_string(doc, "page_token"))
    if not experiment_ids:
        return {}
    query = compile_run_search(
        experiment_ids,
        clauses,
        view_type,
        order_by,
        max_results,
        offset,
        datasets_available=True,  # schemas/sql/0002_run_inputs.sql
    )
    await deps.fence.wait_for_all()
    async with deps.pool.acquire() as conn:
        rows = await conn.fetch(query.sql, *query.args)
        page, token = page_of([r["run_uuid"] for r in rows], max_results, offset)
        runs = await store.load_runs(conn, page)
    body: dict[str, object] = {}
    if runs:
        body["runs"] = runs
    if token:
        body["next_page_token"] = token
    return body


async def log_inputs(request: web.Request) -> web.Response:
    call = validate_log_inputs(await request_doc(request))
    async with request.app[deps_key].pool.acquire() as conn, conn.transaction():
        run = await store.lock_active(conn, call.run_id)
        if call.datasets:
            await store.link_datasets(conn, call.run_id, int(run["experiment_id"]), call.datasets)
        if call.models:
            await store.add_model_inputs(conn, call.run_id, call.models)
    return json_response({})


async def log_outputs(request: web.Request) -> web.Response:
    call = validate_log_outputs(await request_doc(request))
    async with request.app[deps_key].pool.acquire() as conn, conn.transaction():
        await store.lock_active(conn, call.run_id)
        await store.add_model_outputs(conn, call.run_id, call.models)
    return json_response({})
