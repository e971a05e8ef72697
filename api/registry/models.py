"""Registered-model endpoints. Writes follow the lock order of api/registry/store.py."""

from __future__ import annotations

from aiohttp import web

from api.deps import deps_key, request_doc
from api.page_tokens import decode_offset, encode_offset
from api.registry import render, search, store
from api.registry.requests import name_of, tag_of, tags_of
from api.registry.rules import STAGES, canonical_stage, validate_model_name
from api.webhooks import events
from schemas.fields import get_list, get_string
from schemas.int_fields import read_int
from sluice.auth import viewer_of
from sluice.clock import now_ms
from sluice.http import json_response

_SEARCH_LISTS = frozenset({"order_by"})


async def _model_json(request: web.Request, model_id: int) -> dict[str, object]:
    pool = request.app[deps_key].pool
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        found = await store.models_by_ids(conn, [model_id])
    item = found[0]
    return render.registered_model(item["row"], item["latest"], item["tags"], item["aliases"])


async def create_registered_model(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    name = name_of(doc)
    validate_model_name(name)
    tags = tags_of(doc)
    description = get_string(doc, "description")
    change = events.model_created(name, tags, description or "")
    async with request.app[deps_key].pool.acquire() as conn, conn.transaction():
        await store.insert_model(conn, name, description, tags, now_ms())
        model_id = await store.model_id_of(conn, name)
        staged = await events.stage(request, conn, change, name)
    created = render.in_request_order(await _model_json(request, model_id), tags)
    await events.publish(request, staged)
    return json_response({"registered_model": created})


async def get_registered_model(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    model_id = await store.model_id_of(request.app[deps_key].pool, name_of(doc))
    return json_response({"registered_model": await _model_json(request, model_id)})


async def rename_registered_model(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    name, new_name = name_of(doc), name_of(doc, "new_name")
    validate_model_name(new_name)
    async with request.app[deps_key].pool.acquire() as conn, conn.transaction():
        model_id = await store.lock_model(conn, name)
        await store.rename_model(conn, model_id, new_name, now_ms())
        await store.move_grants(conn, name, new_name)
    return json_response({"registered_model": await _model_json(request, model_id)})


async def update_registered_model(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    name = name_of(doc)
    description = get_string(doc, "description")  # absent clears it (MLflow)
    async with request.app[deps_key].pool.acquire() as conn, conn.transaction():
        model_id = await store.lock_model(conn, name)
        await store.set_model_description(conn, model_id, description, now_ms())
    return json_response({"registered_model": await _model_json(request, model_id)})


async def delete_registered_model(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    name = name_of(doc)
    async with request.app[deps_key].pool.acquire() as conn, conn.transaction():
        model_id = await store.lock_model(conn, name)
        await store.delete_model(conn, model_id)
        await store.drop_grants(conn, name)
    return json_response({})


async def set_registered_model_tag(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    name = name_of(doc)
    key, value = tag_of(doc)
    async with request.app[deps_key].pool.acquire() as conn, conn.transaction():
        model_id = await store.lock_model(conn, name)
        await store.upsert_model_tags(conn, model_id, [(key, value)])
        prompt = await store.is_prompt(conn, model_id)
        change = events.model_tag_set(prompt, name, key, value)
        staged = await events.stage(request, conn, change, name)
    await events.publish(request, staged)
    return json_response({})


async def delete_registered_model_tag(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    name = name_of(doc)
    key = get_string(doc, "key", required=True)
    async with request.app[deps_key].pool.acquire() as conn, conn.transaction():
        model_id = await store.lock_model(conn, name)
        await store.delete_model_tag(conn, model_id, key)  # missing tag: 200, as in MLflow
        prompt = await store.is_prompt(conn, model_id)
        change = events.model_tag_deleted(prompt, name, key)
        staged = await events.stage(request, conn, change, name)
    await events.publish(request, staged)
    return json_response({})


async def get_latest_versions(request: web.Request) -> web.Response:
    doc = await request_doc(request, frozenset({"stages"}))
    name = name_of(doc)
    stages = {canonical_stage(s) for s in get_list(doc, "stages") if isinstance(s, str)}
    pool = request.app[deps_key].pool
    model_id = await store.model_id_of(pool, name)
    rows = await store.latest_per_stage(pool, model_id)
    wanted = stages or set(STAGES)
    versions = [
        # get-latest-versions renders aliases; model-versions/search does not (MLflow 3.17.2)
        render.model_version(r)
        for r in rows
        if r["current_stage"] in wanted
    ]
    return json_response({"model_versions": versions} if versions else {})


async def search_registered_models(request: web.Request) -> web.Response:
    doc = await request_doc(request, _SEARCH_LISTS)
    limit = search.model_search_limit(read_int(doc, "max_results"))
    offset = decode_offset(get_string(doc, "page_token"))
    order_by = [str(o) for o in get_list(doc, "order_by")]
    query = search.model_search(
        get_string(doc, "filter"), order_by, limit, offset, viewer_of(request)
    )
    pool = request.app[deps_key].pool
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        ids = [r["id"] for r in await conn.fetch(query.sql, *query.args)]
        found = await store.models_by_ids(conn, ids[:limit])
    body: dict[str, object] = {}
    if found:
        # MLflow's search computes the latest versions with a window partitioned by stage, so
        # they come ordered by stage there (registered-models/get: by the stage's first version).
        body["registered_models"] = [
            render.registered_model(
                i["row"],
                sorted(i["latest"], key=lambda v: v["current_stage"]),
                i["tags"],
                i["aliases"],
            )
            for i in found
        ]
    if len(ids) > limit:
        body["next_page_token"] = encode_offset(offset + limit)
    return json_response(body)
