"""Ingest request handlers: read, validate (ingest/validate.py), check the run, write, answer.

Metric points go to Kafka and are answered after the durable ack; params and tags are written
synchronously (see ingest/store.py for why). Every check that can fail runs before any write,
so a rejected request leaves nothing behind.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ingest import fastpath, store, validate
from ingest.deps import Deps, deps_key
from schemas.protojson import parse_json_body
from sluice.http import json_response, read_body


async def _request_doc(request: web.Request, deps: Deps) -> dict[str, Any]:
    raw = await read_body(request, deps.max_body_bytes)
    return parse_json_body(raw, request.headers.get("Content-Type"), request.method)


async def log_batch(request: web.Request) -> web.Response:
    deps = request.app[deps_key]
    raw = await read_body(request, deps.max_body_bytes)
    content_type = request.headers.get("Content-Type")
    fast = fastpath.log_batch(raw, content_type)
    if fast is not None:
        await deps.runs.require_active(fast[0])
        if fast[1]:
            await deps.producer.send_points(*fast)
        return json_response({})
    doc = parse_json_body(raw, content_type, request.method)
    batch = validate.validate_log_batch(doc)
    await deps.runs.require_active(batch.run_id)
    models = batch.model_ids
    await store.require_models(deps.pool, models)
    if batch.params or batch.tags:
        await store.write_params_and_tags(deps.pool, batch.run_id, batch.params, batch.tags)
    if batch.metrics:
        await deps.producer.send_points(batch.run_id, batch.metrics, models=bool(models))
    return json_response({})


async def log_metric(request: web.Request) -> web.Response:
    deps = request.app[deps_key]
    raw = await read_body(request, deps.max_body_bytes)
    content_type = request.headers.get("Content-Type")
    fast = fastpath.log_metric(raw, content_type)
    if fast is not None:
        await deps.runs.require_active(fast[0])
        await deps.producer.send_points(fast[0], [fast[1]])
        return json_response({})
    call = validate.validate_log_metric(parse_json_body(raw, content_type, request.method))
    await deps.runs.require_active(call.run_id)
    await store.require_models(deps.pool, call.model_ids)
    await deps.producer.send_points(call.run_id, [call.point], models=bool(call.model_ids))
    return json_response({})


async def log_param(request: web.Request) -> web.Response:
    deps = request.app[deps_key]
    call = validate.validate_log_param(await _request_doc(request, deps))
    await deps.runs.require_active(call.run_id)
    await store.write_params_and_tags(
        deps.pool, call.run_id, [(call.key, call.value)], [], single_param=True
    )
    return json_response({})


async def set_tag(request: web.Request) -> web.Response:
    deps = request.app[deps_key]
    call = validate.validate_set_tag(await _request_doc(request, deps))
    await deps.runs.require_active(call.run_id)
    await store.write_params_and_tags(deps.pool, call.run_id, [], [(call.key, call.value)])
    return json_response({})


async def delete_tag(request: web.Request) -> web.Response:
    deps = request.app[deps_key]
    call = validate.validate_delete_tag(await _request_doc(request, deps))
    await deps.runs.require_active(call.run_id)
    await store.delete_tag(deps.pool, call.run_id, call.key)
    return json_response({})
