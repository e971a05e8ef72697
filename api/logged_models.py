"""MLflow 3 logged models: create, get, finalize, delete, tags, params, search.

What ``mlflow.<flavor>.log_model`` and ``mlflow.register_model`` call (mlflow-api.md §2.9).
A model's artifacts live at ``<experiment artifact_location>/models/<model_id>/artifacts``.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Final

from aiohttp import web

from api.deps import deps_key, request_doc
from api.naming import random_run_name
from api.pages import decode_offset, encode_offset
from api.search_sql import Binder
from schemas.mlflow_errors import does_not_exist, invalid_parameter
from schemas.mlflow_names import validate_experiment_id, validate_key
from schemas.protojson import (
    expect_object,
    get_bool,
    get_enum,
    get_int32,
    get_list,
    get_string,
)
from sluice.http import json_response

STATUSES: Final = {
    "LOGGED_MODEL_STATUS_UNSPECIFIED": 0,
    "LOGGED_MODEL_PENDING": 1,
    "LOGGED_MODEL_READY": 2,
    "LOGGED_MODEL_UPLOAD_FAILED": 3,
}
_BAD_NAME: Final = re.compile(r"[/:.%\"']")
_SEARCH_COLUMNS: Final = {
    "name": "name",
    "model_id": "model_id",
    "model_type": "model_type",
    "status": "status",
    "source_run_id": "source_run_id",
    "creation_timestamp": "creation_timestamp",
    "creation_time": "creation_timestamp",
    "last_updated_timestamp": "last_updated_timestamp",
    "last_updated_time": "last_updated_timestamp",
}
_CLAUSE: Final = re.compile(
    r"""^\s*(?:attributes?\.)?`?(\w+)`?\s*(=|!=|<=|>=|<|>|LIKE|ILIKE)\s*"""
    r"""('(?:[^']*)'|"(?:[^"]*)"|-?\d+)\s*$""",
    re.IGNORECASE,
)
# ``model_id IN ('m-1', 'm-2')``: the run page asks for its logged models this way.
_IN_CLAUSE: Final = re.compile(
    r"""^\s*(?:attributes?\.)?`?(\w+)`?\s+(NOT\s+IN|IN)\s*\(\s*"""
    r"""((?:'[^']*'|"[^"]*")(?:\s*,\s*(?:'[^']*'|"[^"]*"))*)\s*\)\s*$""",
    re.IGNORECASE,
)


def not_found(model_id: str) -> Exception:
    return does_not_exist(f"Logged model with ID '{model_id}' not found.")


def _now() -> int:
    return int(time.time() * 1000)


def _pairs(doc: Mapping[str, Any], field: str) -> list[tuple[str, str]]:
    items: dict[str, str] = {}
    for i, item in enumerate(get_list(doc, field)):
        obj = expect_object(item, f"{field}[{i}]")
        key = get_string(obj, "key", path=f"{field}[{i}].key", required=True)
        validate_key(key, f"{field}[{i}].key")
        items[key] = get_string(obj, "value", path=f"{field}[{i}].value", default="")
    return list(items.items())


# -- rendering (pure) --------------------------------------------------------------------------


def render(row: Mapping[str, Any], tags: Sequence[Any], params: Sequence[Any]) -> dict[str, Any]:
    info: dict[str, Any] = {
        "model_id": row["model_id"],
        "experiment_id": str(row["experiment_id"]),
        "name": row["name"],
        "creation_timestamp_ms": row["creation_timestamp"],
        "last_updated_timestamp_ms": row["last_updated_timestamp"],
        "artifact_uri": row["artifact_location"],
        "status": row["status"],
    }
    for field in ("model_type", "source_run_id", "status_message"):
        if row[field]:
            info[field] = row[field]
    if tags:
        info["tags"] = [{"key": t["key"], "value": t["value"]} for t in tags]
    data: dict[str, Any] = {}
    if params:
        data["params"] = [{"key": p["key"], "value": p["value"]} for p in params]
    return {"info": info, "data": data}


# -- persistence -------------------------------------------------------------------------------


async def _fetch(conn: Any, model_id: str, allow_deleted: bool = False) -> dict[str, Any]:
    row = await conn.fetchrow("SELECT * FROM logged_models WHERE model_id = $1", model_id)
    if row is None or (row["lifecycle_stage"] != "active" and not allow_deleted):
        raise not_found(model_id)
    tags = await conn.fetch(
        "SELECT key, value FROM logged_model_tags WHERE model_id = $1 ORDER BY key", model_id
    )
    params = await conn.fetch(
        "SELECT key, value FROM logged_model_params WHERE model_id = $1 ORDER BY key", model_id
    )
    return render(row, tags, params)


async def _upsert(conn: Any, table: str, model_id: str, pairs: list[tuple[str, str]]) -> None:
    if pairs:
        await conn.executemany(
            f"INSERT INTO {table} (model_id, key, value) VALUES ($1, $2, $3)"
            " ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value",
            [(model_id, k, v) for k, v in pairs],
        )


async def _experiment_location(conn: Any, raw_id: str) -> tuple[int, str]:
    exp_id = validate_experiment_id(raw_id)
    row = await conn.fetchrow(
        "SELECT artifact_location, lifecycle_stage FROM experiments WHERE experiment_id = $1",
        exp_id,
    )
    if row is None:
        raise does_not_exist(f"No Experiment with id={raw_id} exists")
    if row["lifecycle_stage"] != "active":
        raise invalid_parameter(
            f"The experiment {raw_id} must be in the 'active' state. "
            f"Current state is {row['lifecycle_stage']}."
        )
    return exp_id, str(row["artifact_location"])


# -- handlers ----------------------------------------------------------------------------------


async def create_logged_model(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    raw_exp = get_string(doc, "experiment_id", required=True)
    name = get_string(doc, "name") or random_run_name()
    if _BAD_NAME.search(name):
        raise invalid_parameter(
            f"Invalid model name '{name}'. Names cannot contain any of the following "
            "characters: ['/', ':', '.', '%', '\"', \"'\"]"
        )
    params, tags = _pairs(doc, "params"), _pairs(doc, "tags")
    model_id = f"m-{uuid.uuid4().hex}"
    now = _now()
    async with request.app[deps_key].pool.acquire() as conn, conn.transaction():
        exp_id, location = await _experiment_location(conn, raw_exp)
        await conn.execute(
            "INSERT INTO logged_models (model_id, experiment_id, name, artifact_location,"
            " creation_timestamp, last_updated_timestamp, model_type, source_run_id)"
            " VALUES ($1, $2, $3, $4, $5, $5, $6, $7)",
            model_id,
            exp_id,
            name,
            f"{location.rstrip('/')}/models/{model_id}/artifacts",
            now,
            get_string(doc, "model_type") or None,
            get_string(doc, "source_run_id") or None,
        )
        await _upsert(conn, "logged_model_tags", model_id, tags)
        await _upsert(conn, "logged_model_params", model_id, params)
        body = await _fetch(conn, model_id)
    return json_response({"model": body})


async def get_logged_model(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    allow_deleted = get_bool(doc, "allow_deleted", default=False)
    async with request.app[deps_key].pool.acquire() as conn:
        body = await _fetch(conn, request.match_info["model_id"], allow_deleted)
    return json_response({"model": body})


async def finalize_logged_model(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    model_id = request.match_info["model_id"]
    status = get_enum(doc, "status", STATUSES, required=True)
    async with request.app[deps_key].pool.acquire() as conn, conn.transaction():
        await _fetch(conn, model_id)
        await conn.execute(
            "UPDATE logged_models SET status = $2, last_updated_timestamp = $3 WHERE model_id = $1",
            model_id,
            status,
            _now(),
        )
        body = await _fetch(conn, model_id)
    return json_response({"model": body})


async def delete_logged_model(request: web.Request) -> web.Response:
    model_id = request.match_info["model_id"]
    async with request.app[deps_key].pool.acquire() as conn, conn.transaction():
        await _fetch(conn, model_id)
        await conn.execute(
            "UPDATE logged_models SET lifecycle_stage = 'deleted', last_updated_timestamp = $2"
            " WHERE model_id = $1",
            model_id,
            _now(),
        )
    return json_response({})


async def set_logged_model_tags(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    model_id = request.match_info["model_id"]
    tags = _pairs(doc, "tags")
    async with request.app[deps_key].pool.acquire() as conn, conn.transaction():
        await _fetch(conn, model_id)
        await _upsert(conn, "logged_model_tags", model_id, tags)
    return json_response({})


async def delete_logged_model_tag(request: web.Request) -> web.Response:
    model_id, key = request.match_info["model_id"], request.match_info["tag_key"]
    async with request.app[deps_key].pool.acquire() as conn, conn.transaction():
        await _fetch(conn, model_id)
        deleted = await conn.fetchval(
            "DELETE FROM logged_model_tags WHERE model_id = $1 AND key = $2 RETURNING 1",
            model_id,
            key,
        )
    if deleted is None:
        raise does_not_exist(f"No tag with key {key!r} found for model with ID {model_id!r}.")
    return json_response({})


async def log_logged_model_params(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    model_id = request.match_info["model_id"]
    params = _pairs(doc, "params")
    async with request.app[deps_key].pool.acquire() as conn, conn.transaction():
        await _fetch(conn, model_id)
        await _upsert(conn, "logged_model_params", model_id, params)
    return json_response({})


# -- search ------------------------------------------------------------------------------------


def _filter_sql(filter_string: str, binder: Binder) -> list[str]:
    """The attribute subset of MLflow's logged-model filter (``name = 'model'`` is what
    ``register_model`` and ``list_artifacts`` send); anything else is a 400."""
    where: list[str] = []
    for part in re.split(r"\s+AND\s+", filter_string.strip(), flags=re.IGNORECASE):
        if not part.strip():
            continue
        listed = _IN_CLAUSE.match(part)
        if listed is not None and listed.group(1) in _SEARCH_COLUMNS:
            values = [v[1:-1] for v in re.findall(r"'[^']*'|\"[^\"]*\"", listed.group(3))]
            op = "<> ALL" if listed.group(2).upper().startswith("NOT") else "= ANY"
            column = _SEARCH_COLUMNS[listed.group(1)]
            where.append(f"{column}::text {op}({binder.bind(values, 'text[]')})")
            continue
        match = _CLAUSE.match(part)
        if match is None or match.group(1) not in _SEARCH_COLUMNS:
            raise invalid_parameter(f"Invalid or unsupported filter clause: {part!r}")
        column, op, value = _SEARCH_COLUMNS[match.group(1)], match.group(2).upper(), match.group(3)
        if value[0] in "'\"":
            where.append(f"{column}::text {op} {binder.bind(value[1:-1], 'text')}")
        else:
            where.append(f"{column} {op} {binder.bind(int(value), 'bigint')}")
    return where


def _order_sql(order_by: list[Any]) -> str:
    items = []
    for i, item in enumerate(order_by):
        obj = expect_object(item, f"order_by[{i}]")
        field = get_string(obj, "field_name", required=True)
        if field not in _SEARCH_COLUMNS:
            raise invalid_parameter(f"Invalid order by field name: {field}")
        ascending = get_bool(obj, "ascending", default=True)
        items.append(f"{_SEARCH_COLUMNS[field]}{'' if ascending else ' DESC'}")
    return ", ".join([*items, "creation_timestamp DESC", "model_id"])


async def search_logged_models(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    exp_ids = [validate_experiment_id(str(e)) for e in get_list(doc, "experiment_ids")]
    limit = get_int32(doc, "max_results", default=50)
    if limit < 1:
        raise invalid_parameter(f"Invalid value {limit} for parameter 'max_results' supplied.")
    offset = decode_offset(get_string(doc, "page_token"))
    binder = Binder()
    where = [
        "lifecycle_stage = 'active'",
        f"experiment_id = ANY({binder.bind(exp_ids, 'bigint[]')})",
        *_filter_sql(get_string(doc, "filter", default=""), binder),
    ]
    sql = (
        f"SELECT model_id FROM logged_models WHERE {' AND '.join(where)}"
        f" ORDER BY {_order_sql(get_list(doc, 'order_by'))}"
        f" LIMIT {binder.bind(limit + 1, 'bigint')} OFFSET {binder.bind(offset, 'bigint')}"
    )
    async with request.app[deps_key].pool.acquire() as conn:
        ids = [r["model_id"] for r in await conn.fetch(sql, *binder.values)]
        models = [await _fetch(conn, i) for i in ids[:limit]]
    body: dict[str, Any] = {"models": models} if models else {}
    if len(ids) > limit:
        body["next_page_token"] = encode_offset(offset + limit)
    return json_response(body)
