"""Model-version and alias endpoints. Writes follow the lock order of api/registry/store.py
(registered model row first; version creation then locks the logged model's row to append
its ``mlflow.modelVersions`` tag)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final, cast

import asyncpg
from aiohttp import web

from api.artifacts.store import artifact_store_key
from api.deps import deps_key, request_doc
from api.logged_models import store as logged_models
from api.page_tokens import decode_offset, encode_offset
from api.registry import render, search, sources, store
from api.registry.requests import (
    name_of,
    tag_of,
    tags_of,
    unchecked_name_of,
    unchecked_version_of,
    version_of,
)
from api.registry.rules import PROMPT_TAG, canonical_stage, check_archivable, validate_alias
from api.runs import store as runs
from api.webhooks import events
from schemas.access import Viewer
from schemas.fields import get_bool, get_list, get_string
from schemas.int_fields import read_int
from schemas.mlflow_errors import invalid_parameter
from sluice.auth import viewer_of
from sluice.clock import now_ms
from sluice.http import json_response


async def _version_json(conn: Any, name: str, version: int) -> dict[str, Any]:
    return render.model_version(await store.fetch_version(conn, name, version))


# -- create ------------------------------------------------------------------------------------


async def _run_artifact_root(conn: Any, run_id: str, source: str) -> tuple[str, ...] | None:
    uri = await runs.artifact_uri(conn, run_id)
    if uri is None:
        raise sources.resource_error(source, "run_id")
    return sources.artifact_parts(uri)


async def _logged_model(conn: Any, model_id: str, source: str) -> asyncpg.Record:
    row = await logged_models.lineage(conn, model_id)
    if row is None:
        raise sources.resource_error(source, "model_id")
    return row


async def _resolve(request: web.Request, conn: Any, doc: dict[str, Any]) -> dict[str, Any]:
    """Validated lineage of a new version: source, storage_location, run_id, logged model id."""
    source_text = get_string(doc, "source", required=True)
    run_id = get_string(doc, "run_id", default="")
    model_id = get_string(doc, "model_id", default="")
    is_prompt = dict(tags_of(doc)).get(PROMPT_TAG, "false").lower() == "true"
    src = sources.classify(source_text, is_prompt)
    out: dict[str, Any] = {"source": source_text, "storage_location": source_text}
    out.update(run_id=run_id, logged_model_id=model_id or None)
    if src.kind == "model_version":
        return await _from_model_version(conn, src, out)
    if model_id:
        logged = await _logged_model(conn, model_id, source_text)
        out["run_id"] = run_id or logged["source_run_id"] or ""
        if src.kind == "logged_model" and src.ref == model_id:
            out["storage_location"] = logged["artifact_location"]
            return out
        root = sources.artifact_parts(logged["artifact_location"])
        if src.kind == "artifacts" and sources.within(src.parts, root):
            return out
        if src.kind == "s3":
            return _check_s3(request, src, out)
        raise sources.resource_error(source_text, "model_id")
    return await _from_run(request, conn, src, out)


async def _from_run(
    request: web.Request, conn: Any, src: sources.Source, out: dict[str, Any]
) -> dict[str, Any]:
    if src.kind == "prompt":
        return out
    if src.kind == "run" and src.ref == out["run_id"]:
        return out
    if src.kind == "artifacts" and out["run_id"]:
        root = await _run_artifact_root(conn, out["run_id"], src.text)
        if sources.within(src.parts, root):
            return out
    if src.kind == "s3":
        return _check_s3(request, src, out)
    raise sources.resource_error(src.text, "model_id" if src.kind == "logged_model" else "run_id")


def _check_s3(request: web.Request, src: sources.Source, out: dict[str, Any]) -> dict[str, Any]:
    root = request.app[artifact_store_key].s3_root
    if root is None or not sources.s3_within(src, *root):
        raise sources.scheme_error(src.text)
    return out


async def _from_model_version(
    conn: Any, src: sources.Source, out: dict[str, Any]
) -> dict[str, Any]:
    model_id = await store.model_id_of(conn, src.ref)
    version = await _version_number(conn, model_id, src.ref, src.version_or_alias)
    row = await store.fetch_version(conn, src.ref, version)
    out["source"] = f"models:/{src.ref}/{version}"
    out["storage_location"] = row["storage_location"] or row["source"]
    out["run_id"] = out["run_id"] or row["run_id"] or ""
    out["logged_model_id"] = out["logged_model_id"] or row["logged_model_id"]
    return out


async def _version_number(conn: Any, model_id: int, name: str, ref: str) -> int:
    if ref.startswith("@"):
        version = await store.alias_version(conn, model_id, ref[1:])
        if version is None:
            raise invalid_parameter(f"Registered model alias {ref[1:]} not found.")
        return version
    if ref.isdigit():
        return int(ref)
    if ref.lower() == "latest":
        latest = await store.highest_live_version(conn, model_id)
        if latest is None:
            raise store.version_not_found(name, ref)
        return latest
    raise sources.resource_error(f"models:/{name}/{ref}", "model_id")


async def create_model_version(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    name = name_of(doc)
    tags = tags_of(doc)
    fields: dict[str, Any] = {
        "description": get_string(doc, "description", default=""),
        "run_link": get_string(doc, "run_link", default=""),
        "now": now_ms(),
    }
    async with request.app[deps_key].pool.acquire() as conn:
        fields.update(await _resolve(request, conn, doc))
        async with conn.transaction():
            model_id, version = await store.next_version(conn, name, fields["now"])
            await store.insert_version(conn, model_id, version, fields)
            await store.upsert_version_tags(conn, model_id, version, tags)
            if fields["logged_model_id"]:
                await logged_models.append_model_version(
                    conn, fields["logged_model_id"], name, version
                )
            change = events.version_created(name, version, fields, tags)
            staged = await events.stage(request, conn, change, name)
        body = render.in_request_order(await _version_json(conn, name, version), tags)
    await events.publish(request, staged)
    return json_response({"model_version": body})


# -- read and update ---------------------------------------------------------------------------


async def get_model_version(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    pool = request.app[deps_key].pool
    return json_response(
        {"model_version": await _version_json(pool, name_of(doc), version_of(doc))}
    )


async def update_model_version(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    name, version = name_of(doc), version_of(doc)
    description = get_string(doc, "description")  # absent sets it to null (MLflow)
    async with request.app[deps_key].pool.acquire() as conn:
        async with conn.transaction():
            model_id = await store.lock_model(conn, name)
            await store.require_version(conn, model_id, name, version)
            await store.set_version_description(conn, model_id, version, description, now_ms())
        body = await _version_json(conn, name, version)
    return json_response({"model_version": body})


async def transition_model_version_stage(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    name, version = name_of(doc), version_of(doc)
    stage = canonical_stage(get_string(doc, "stage", required=True))
    archive = get_bool(doc, "archive_existing_versions", default=False)
    if archive:
        check_archivable(stage)
    async with request.app[deps_key].pool.acquire() as conn:
        async with conn.transaction():
            model_id = await store.lock_model(conn, name)
            await store.require_version(conn, model_id, name, version)
            await store.transition(conn, model_id, version, stage, archive, now_ms())
        body = await _version_json(conn, name, version)
    return json_response({"model_version": body})


async def delete_model_version(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    name, version = name_of(doc), version_of(doc)
    async with request.app[deps_key].pool.acquire() as conn, conn.transaction():
        model_id = await store.lock_model(conn, name)
        await store.require_version(conn, model_id, name, version)
        await store.soft_delete_version(conn, model_id, version, now_ms())
    return json_response({})


async def get_model_version_download_uri(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    name, version = unchecked_name_of(doc), unchecked_version_of(doc)
    row = await store.fetch_version(request.app[deps_key].pool, name, version)
    return json_response({"artifact_uri": row["storage_location"] or row["source"]})


async def set_model_version_tag(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    name, version = name_of(doc), version_of(doc)
    key, value = tag_of(doc)
    async with request.app[deps_key].pool.acquire() as conn, conn.transaction():
        model_id = await store.lock_model(conn, name)
        await store.require_version(conn, model_id, name, version)
        await store.upsert_version_tags(conn, model_id, version, [(key, value)])
        prompt = await store.is_prompt(conn, model_id)
        # The request's own spelling of the version, as MLflow's payload carries it.
        change = events.version_tag_set(prompt, name, _raw_version(doc), key, value)
        staged = await events.stage(request, conn, change, name)
    await events.publish(request, staged)
    return json_response({})


async def delete_model_version_tag(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    name, version = name_of(doc), version_of(doc)
    key = get_string(doc, "key", required=True)
    async with request.app[deps_key].pool.acquire() as conn, conn.transaction():
        model_id = await store.lock_model(conn, name)
        await store.require_version(conn, model_id, name, version)
        await store.delete_version_tag(conn, model_id, version, key)
        prompt = await store.is_prompt(conn, model_id)
        change = events.version_tag_deleted(prompt, name, _raw_version(doc), key)
        staged = await events.stage(request, conn, change, name)
    await events.publish(request, staged)
    return json_response({})


async def search_model_versions(request: web.Request) -> web.Response:
    doc = await request_doc(request, frozenset({"order_by"}))
    return json_response(
        await model_version_page(request.app[deps_key].pool, doc, viewer_of(request))
    )


async def model_version_page(
    pool: asyncpg.Pool, doc: dict[str, Any], viewer: Viewer | None
) -> dict[str, object]:
    """SearchModelVersions' answer (also the run page's GraphQL ``modelVersions``): versions of
    the registered models ``viewer`` may read."""
    limit = search.version_search_limit(read_int(doc, "max_results"))
    offset = decode_offset(get_string(doc, "page_token"))
    order_by = [str(o) for o in get_list(doc, "order_by")]
    query = search.version_search(
        get_string(doc, "filter"), order_by, limit, offset, store.MV_COLUMNS, viewer
    )
    rows = await pool.fetch(query.sql, *query.args)
    body: dict[str, object] = {}
    if rows:
        # Without aliases, as MLflow's search renders versions (get-latest-versions has them).
        body["model_versions"] = [render.model_version(r, with_aliases=False) for r in rows[:limit]]
    if len(rows) > limit:
        body["next_page_token"] = encode_offset(offset + limit)
    return body


_PLAIN_RUN_ID: Final = re.compile(r"[0-9A-Za-z_-]+")


async def model_versions_of_runs(
    pool: asyncpg.Pool, run_ids: Sequence[str], viewer: Viewer | None
) -> dict[str, list[dict[str, object]]]:
    """Each run's versions that ``viewer`` may read, as ``model_version_page`` answers the
    filter ``run_id='<id>'`` (the run page's GraphQL ``modelVersions``), for many runs in one
    query: a search page's runs would otherwise cost a query each. When the runs together fill
    more than one page, each run is asked for alone (its own page, as MLflow answers it)."""
    found: dict[str, list[dict[str, object]]] = {run_id: [] for run_id in run_ids}
    together = [run_id for run_id in found if _PLAIN_RUN_ID.fullmatch(run_id)]
    if together:
        listed = ", ".join(f"'{run_id}'" for run_id in together)
        page = await model_version_page(pool, {"filter": f"run_id IN ({listed})"}, viewer)
        if "next_page_token" in page:
            together = []
        else:
            for version in _listed(page):
                found[str(version["run_id"])].append(version)
    for run_id in found.keys() - set(together):
        alone = await model_version_page(pool, {"filter": f"run_id='{run_id}'"}, viewer)
        found[run_id] = _listed(alone)
    return found


def _listed(page: dict[str, object]) -> list[dict[str, object]]:
    return cast(list[dict[str, object]], page.get("model_versions", []))


def _raw_version(doc: dict[str, Any]) -> str:
    return get_string(doc, "version", default="")


# -- aliases -----------------------------------------------------------------------------------


async def set_registered_model_alias(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    name = name_of(doc)
    alias = get_string(doc, "alias", required=True)
    validate_alias(alias)
    version = version_of(doc)
    async with request.app[deps_key].pool.acquire() as conn, conn.transaction():
        model_id = await store.lock_model(conn, name)
        await store.require_version(conn, model_id, name, version)
        await store.set_alias(conn, model_id, alias, version)
        prompt = await store.is_prompt(conn, model_id)
        change = events.alias_created(prompt, name, alias, _raw_version(doc))
        staged = await events.stage(request, conn, change, name)
    await events.publish(request, staged)
    return json_response({})


async def delete_registered_model_alias(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    name = name_of(doc)
    alias = get_string(doc, "alias", required=True)
    async with request.app[deps_key].pool.acquire() as conn, conn.transaction():
        model_id = await store.lock_model(conn, name)
        await store.delete_alias(conn, model_id, alias)  # missing alias: 200, as in MLflow
        prompt = await store.is_prompt(conn, model_id)
        change = events.alias_deleted(prompt, name, alias)
        staged = await events.stage(request, conn, change, name)
    await events.publish(request, staged)
    return json_response({})


async def get_model_version_by_alias(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    name = name_of(doc)
    alias = get_string(doc, "alias", required=True)
    pool = request.app[deps_key].pool
    model_id = await store.model_id_of(pool, name)
    if alias.lower() == "latest":
        version = await store.highest_live_version(pool, model_id)
        if version is None:
            raise store.version_not_found(name, "latest")
    else:
        found = await store.alias_version(pool, model_id, alias)
        if found is None:
            raise invalid_parameter(f"Registered model alias {alias} not found.")
        version = found
    return json_response({"model_version": await _version_json(pool, name, version)})
