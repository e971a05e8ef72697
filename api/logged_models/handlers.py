"""MLflow 3 logged models: create, get, finalize, delete, tags, params, search.

What ``mlflow.<flavor>.log_model`` and ``mlflow.register_model`` call (mlflow-api.md §2.9).
A model's metrics are the points logged with its ``model_id`` (ingest -> Kafka -> writer), so
the reads that show or search them pass the read fence first.
A model's artifacts live at ``<experiment artifact_location>/models/<model_id>/artifacts``.
"""

from __future__ import annotations

import uuid
from typing import Any, Final

from aiohttp import web

from api.deps import deps_key, request_doc
from api.experiments import store as experiments
from api.logged_models import store
from api.logged_models.rules import STATUSES, check_name, compile_search, datasets, pairs
from api.page_tokens import decode_offset, encode_offset
from api.run_names import random_run_name
from schemas.fields import get_bool, get_enum, get_list, get_string
from schemas.int_fields import get_int32
from schemas.mlflow_errors import does_not_exist, invalid_parameter
from schemas.mlflow_names import validate_experiment_id
from sluice.auth import viewer_of
from sluice.clock import now_ms
from sluice.http import json_response


async def create_logged_model(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    raw_exp = get_string(doc, "experiment_id", required=True)
    name = check_name(get_string(doc, "name") or random_run_name())
    params, tags = pairs(doc, "params"), pairs(doc, "tags")
    exp_id = validate_experiment_id(raw_exp)
    fields = {
        "name": name,
        "now": now_ms(),
        "model_type": get_string(doc, "model_type") or None,
        "source_run_id": get_string(doc, "source_run_id") or None,
    }
    model_id = f"m-{uuid.uuid4().hex}"
    async with request.app[deps_key].pool.acquire() as conn, conn.transaction():
        experiment = await experiments.lock_active(conn, exp_id, raw_exp)
        await store.insert(conn, model_id, exp_id, experiment["artifact_location"], fields)
        await store.set_tags(conn, model_id, tags)
        await store.log_params(conn, model_id, params)
        body = await store.fetch(conn, model_id)
    return json_response({"model": body})


async def get_logged_model(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    allow_deleted = get_bool(doc, "allow_deleted", default=False)
    # A model's metrics come from any run, hence any partition of the metrics topic.
    await request.app[deps_key].fence.wait_for_all()
    async with request.app[deps_key].pool.acquire() as conn:
        body = await store.fetch(conn, request.match_info["model_id"], allow_deleted)
    return json_response({"model": body})


async def finalize_logged_model(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    model_id = request.match_info["model_id"]
    status = get_enum(doc, "status", STATUSES, required=True)
    await request.app[deps_key].fence.wait_for_all()  # the answer lists the model's metrics
    async with request.app[deps_key].pool.acquire() as conn, conn.transaction():
        await store.fetch(conn, model_id)
        await store.set_status(conn, model_id, status, now_ms())
        body = await store.fetch(conn, model_id)
    return json_response({"model": body})


async def delete_logged_model(request: web.Request) -> web.Response:
    model_id = request.match_info["model_id"]
    async with request.app[deps_key].pool.acquire() as conn, conn.transaction():
        await store.fetch(conn, model_id)
        await store.soft_delete(conn, model_id, now_ms())
    return json_response({})


async def set_logged_model_tags(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    model_id = request.match_info["model_id"]
    tags = pairs(doc, "tags")
    async with request.app[deps_key].pool.acquire() as conn, conn.transaction():
        await store.fetch(conn, model_id)
        await store.set_tags(conn, model_id, tags)
    return json_response({})


async def delete_logged_model_tag(request: web.Request) -> web.Response:
    model_id, key = request.match_info["model_id"], request.match_info["tag_key"]
    async with request.app[deps_key].pool.acquire() as conn, conn.transaction():
        await store.fetch(conn, model_id)
        deleted = await store.delete_tag(conn, model_id, key)
    if not deleted:
        raise does_not_exist(f"No tag with key {key!r} found for model with ID {model_id!r}.")
    return json_response({})


async def log_logged_model_params(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    model_id = request.match_info["model_id"]
    params = pairs(doc, "params")
    async with request.app[deps_key].pool.acquire() as conn, conn.transaction():
        await store.fetch(conn, model_id)
        await store.log_params(conn, model_id, params)
    return json_response({})


DEFAULT_MAX_RESULTS: Final = 50


async def search_logged_models(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    exp_ids = [validate_experiment_id(str(e)) for e in get_list(doc, "experiment_ids")]
    # MLflow's store: `max_results or 50`, then LIMIT max_results + 1, so -1 is an empty page
    # with a next-page token (as here). Below -1 SQLite reads no limit and PostgreSQL fails.
    limit = get_int32(doc, "max_results") or DEFAULT_MAX_RESULTS
    if limit < -1:
        raise invalid_parameter(f"Invalid value {limit} for parameter 'max_results' supplied.")
    offset = decode_offset(get_string(doc, "page_token"))
    filter_string = get_string(doc, "filter", default="")
    order_by = get_list(doc, "order_by")
    query = compile_search(
        exp_ids, filter_string, datasets(doc), order_by, (limit, offset), viewer_of(request)
    )
    await request.app[deps_key].fence.wait_for_all()  # filters and order read model metrics
    async with request.app[deps_key].pool.acquire() as conn:
        ids = await store.search_page(conn, query)
        models = [await store.fetch(conn, i) for i in ids[:limit]]
    body: dict[str, Any] = {"models": models} if models else {}
    if len(ids) > limit:
        body["next_page_token"] = encode_offset(offset + limit)
    return json_response(body)
