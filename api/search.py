"""runs/search and experiments/search: parse (pure), compile (pure), one page query, load."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from api import pages, render
from api.deps import Deps, deps_key, request_doc
from api.experiment_search import compile_experiment_search
from api.loading import load_runs
from api.run_search import compile_run_search
from api.search_order import parse_experiment_order_by, parse_run_order_by
from api.search_request import (
    experiment_max_results,
    page_of,
    parse_view_type,
    run_max_results,
)
from api.search_rules import parse_experiment_filter, parse_run_filter
from schemas.protojson import get_int32, get_int64, get_list, get_string
from sluice.http import json_response

_REPEATED = frozenset({"experiment_ids", "order_by"})
_EXP_TAGS = (
    "SELECT experiment_id, key, value FROM experiment_tags"
    " WHERE experiment_id = ANY($1::bigint[]) ORDER BY key"
)


async def search_runs(request: web.Request) -> web.Response:
    doc = await request_doc(request, _REPEATED)
    return json_response(await run_search_page(request.app[deps_key], doc))


async def run_search_page(deps: Deps, doc: dict[str, Any]) -> dict[str, object]:
    """SearchRuns' answer (also the UI's GraphQL ``mlflowSearchRuns``)."""
    experiment_ids = [str(e) for e in get_list(doc, "experiment_ids")]
    clauses = parse_run_filter(get_string(doc, "filter"))
    order_by = parse_run_order_by([str(o) for o in get_list(doc, "order_by")])
    view_type = parse_view_type(doc.get("run_view_type"))
    max_results = run_max_results(get_int32(doc, "max_results"))
    offset = pages.decode_offset(get_string(doc, "page_token"))
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
        runs = await load_runs(conn, page)
    body: dict[str, object] = {}
    if runs:
        body["runs"] = runs
    if token:
        body["next_page_token"] = token
    return body


async def search_experiments(request: web.Request) -> web.Response:
    deps = request.app[deps_key]
    doc = await request_doc(request, _REPEATED)
    clauses = parse_experiment_filter(get_string(doc, "filter"))
    order_by = parse_experiment_order_by([str(o) for o in get_list(doc, "order_by")])
    view_type = parse_view_type(doc.get("view_type"))
    max_results = experiment_max_results(get_int64(doc, "max_results"))
    offset = pages.decode_offset(get_string(doc, "page_token"))
    query = compile_experiment_search(clauses, view_type, order_by, max_results, offset)
    async with deps.pool.acquire() as conn:
        rows = await conn.fetch(query.sql, *query.args)
        page, token = page_of([r["experiment_id"] for r in rows], max_results, offset)
        found = {
            r["experiment_id"]: r
            for r in await conn.fetch(
                "SELECT * FROM experiments WHERE experiment_id = ANY($1::bigint[])", page
            )
        }
        tags = await conn.fetch(_EXP_TAGS, page)
    body: dict[str, object] = {}
    if page:
        body["experiments"] = [
            render.experiment(found[e], [t for t in tags if t["experiment_id"] == e]) for e in page
        ]
    if token:
        body["next_page_token"] = token
    return json_response(body)
