"""Trace endpoints of the api: reads (behind the traces read fence), tags, deletes, run links.

Reads of one trace wait for its partition of the traces topic; searches and batch reads wait for
all partitions (``api/traces/fence.py``): a trace whose spans or info were acknowledged by ingest
is visible to the next read, as metrics are. Assessments: ``api/traces/assessments.py``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from api.deps import deps_key, request_doc
from api.page_tokens import decode_offset, encode_offset
from api.traces import render, store
from api.traces.fence import trace_fence_key
from api.traces.search_rules import Sql, compile_filter, compile_order, span_matches
from schemas.access import Level
from schemas.fields import get_list, get_string
from schemas.int_fields import get_int64
from schemas.mlflow_errors import MlflowError, does_not_exist, invalid_parameter
from schemas.protojson import invalid_value
from sluice.auth import require_experiment
from sluice.http import json_response

SEARCH_MAX_RESULTS = 500  # MLflow's bound for SearchTracesV3
SEARCH_DEFAULT_RESULTS = 100


def _path_trace_id(request: web.Request) -> str:
    return request.match_info.get("trace_id") or request.match_info["request_id"]


async def _infos_json(conn: Any, rows: list[Any]) -> list[dict[str, Any]]:
    found = await store.assessments(conn, [r["trace_id"] for r in rows])
    return [render.trace_info(r, found.get(r["trace_id"], [])) for r in rows]


async def get_trace_info_v3(request: web.Request) -> web.Response:
    """``GET /api/3.0/mlflow/traces/{trace_id}``: the trace info (no spans)."""
    trace_id = _path_trace_id(request)
    await request.app[trace_fence_key].wait_for_trace(trace_id)
    pool = request.app[deps_key].pool
    rows = await store.infos(pool, [trace_id])
    if not rows:
        raise does_not_exist(f"Trace with ID '{trace_id}' not found.")
    (info,) = await _infos_json(pool, rows)
    return json_response({"trace": {"trace_info": info}})


async def get_trace_info_v2(request: web.Request) -> web.Response:
    """``GET /api/2.0/mlflow/traces/{request_id}/info``: the legacy TraceInfo shape."""
    trace_id = _path_trace_id(request)
    await request.app[trace_fence_key].wait_for_trace(trace_id)
    rows = await store.infos(request.app[deps_key].pool, [trace_id])
    if not rows:
        raise does_not_exist(f"Trace with ID '{trace_id}' not found.")
    return json_response({"trace_info": _v2_info(rows[0])})


def _v2_info(row: Any) -> dict[str, Any]:
    def pairs(raw: Any) -> list[dict[str, str]]:
        values = orjson.loads(raw) if isinstance(raw, str | bytes) else dict(raw)
        return [{"key": k, "value": values[k]} for k in sorted(values)]

    doc: dict[str, Any] = {
        "request_id": row["trace_id"],
        "experiment_id": str(row["experiment_id"]),
        "timestamp_ms": row["request_time_ms"],
        # MLflow's legacy shape renders an unset duration (a trace in progress) as 0.
        "execution_time_ms": row["execution_ms"] or 0,
    }
    doc["status"] = {"STATE_UNSPECIFIED": "TRACE_STATUS_UNSPECIFIED"}.get(
        row["state"], row["state"]
    )
    for name, column in (("request_metadata", "metadata"), ("tags", "tags")):
        if listed := pairs(row[column]):  # MLflow leaves an empty list out
            doc[name] = listed
    return doc


async def get_trace(request: web.Request) -> web.StreamResponse:
    """``GET /api/3.0/mlflow/traces/get?trace_id=``: info and spans, streamed."""
    doc = await request_doc(request)
    trace_id = get_string(doc, "trace_id", required=True)
    return await _stream_trace(request, trace_id, artifact_form=False)


async def get_trace_artifact(request: web.Request) -> web.StreamResponse:
    """``GET /ajax-api/{2,3}.0/mlflow/get-trace-artifact?request_id=``: the traces.json form."""
    trace_id = request.query.get("request_id")
    if not trace_id:
        raise MlflowError("BAD_REQUEST", 'Request must include the "request_id" query parameter.')
    return await _stream_trace(request, trace_id, artifact_form=True)


async def _stream_trace(
    request: web.Request, trace_id: str, *, artifact_form: bool
) -> web.StreamResponse:
    """Write the trace as JSON while reading its spans from a cursor: the api's memory stays
    bounded (a few hundred spans) whatever the trace's size."""
    await request.app[trace_fence_key].wait_for_trace(trace_id)
    pool = request.app[deps_key].pool
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        rows = await store.infos(conn, [trace_id])
        if not rows:
            raise store.not_found(trace_id)
        # MLflow serves the artifact form as a file download: text/plain, traces.json.
        headers = (
            {
                "Content-Type": "text/plain",
                "Content-Disposition": "attachment; filename=traces.json",
            }
            if artifact_form
            else {"Content-Type": "application/json"}
        )
        response = web.StreamResponse(headers=headers)
        if artifact_form:
            head = b'{"spans":['
        else:
            (info,) = await _infos_json(conn, rows)
            head = b'{"trace":{"trace_info":' + orjson.dumps(info) + b',"spans":['
        await response.prepare(request)
        await response.write(head)
        render_span = render.span_dict if artifact_form else render.span_proto_json
        await _write_spans(response, conn, trace_id, render_span)
        await response.write(b"]}" if artifact_form else b"]}}")
        await response.write_eof()
        return response


# Spans are written in pieces of about this size: bounded memory, and not a chunk (a send)
# per span, which cost a 50,000-span trace as many syscalls.
_WRITE_BYTES = 64 * 1024


async def _write_spans(
    response: web.StreamResponse,
    conn: Any,
    trace_id: str,
    render_span: Callable[[bytes], dict[str, Any]],
) -> None:
    """The trace's spans, rendered and comma-separated, read from a cursor as they are written."""
    pending: list[bytes] = []
    size = 0
    first = True
    async for proto in store.span_protos(conn, trace_id):
        part = orjson.dumps(render_span(proto))
        pending.append(part if first else b"," + part)
        first = False
        size += len(part)
        if size >= _WRITE_BYTES:
            await response.write(b"".join(pending))
            pending.clear()
            size = 0
    if pending:
        await response.write(b"".join(pending))


async def batch_get_traces(request: web.Request) -> web.StreamResponse:
    """``GET /api/3.0/mlflow/traces/batchGet?trace_ids=...``: traces with spans (existing ones
    only, in the order asked, each once), streamed as ``_stream_trace`` streams one trace."""
    doc = await request_doc(request, repeated=frozenset({"trace_ids", "experiment_ids"}))
    trace_ids = _ids(doc, "trace_ids")
    await request.app[trace_fence_key].wait_for_all()
    pool = request.app[deps_key].pool
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        rows = await store.infos(conn, trace_ids)
        await _require_readable(request, rows)
        by_id = {r["trace_id"]: r for r in rows}
        infos = dict(zip(by_id, await _infos_json(conn, list(by_id.values())), strict=True))
        wanted = [trace_id for trace_id in dict.fromkeys(trace_ids) if trace_id in infos]
        if not wanted:
            return json_response({})
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b'{"traces":[')
        for n, trace_id in enumerate(wanted):
            head = b'{"trace_info":' + orjson.dumps(infos.pop(trace_id)) + b',"spans":['
            await response.write(b"," + head if n else head)
            await _write_spans(response, conn, trace_id, render.span_proto_json)
            await response.write(b"]}")
        await response.write(b"]}")
        await response.write_eof()
        return response


async def batch_get_trace_infos(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    trace_ids = _ids(doc, "trace_ids")
    await request.app[trace_fence_key].wait_for_all()
    pool = request.app[deps_key].pool
    rows = await store.infos(pool, trace_ids)
    await _require_readable(request, rows)
    order = {trace_id: i for i, trace_id in enumerate(trace_ids)}
    rows.sort(key=lambda r: order[r["trace_id"]])
    infos = await _infos_json(pool, rows)
    return json_response({"trace_infos": infos} if infos else {})


async def _require_readable(request: web.Request, rows: list[Any]) -> None:
    """PERMISSION_DENIED unless the caller may read every experiment the traces belong to (the
    route table cannot say: the experiments are known only once the traces are read)."""
    for experiment_id in dict.fromkeys(r["experiment_id"] for r in rows):
        await require_experiment(request, experiment_id, Level.READ)


def _ids(doc: dict[str, Any], name: str) -> list[str]:
    values = get_list(doc, name, required=True)
    if not all(isinstance(v, str) for v in values):
        raise invalid_value(name, values)
    return list(dict.fromkeys(values))


# -- search -------------------------------------------------------------------------------------


async def search_traces_v3(request: web.Request) -> web.Response:
    """``POST /api/3.0/mlflow/traces/search``."""
    doc = await request_doc(request)
    locations = get_list(doc, "locations", required=True)
    experiment_ids = [_location_experiment(loc) for loc in locations]
    infos, token = await _search(request, doc, experiment_ids, "filter")
    body: dict[str, Any] = {"traces": infos} if infos else {}
    if token:
        body["next_page_token"] = token
    return json_response(body)


async def search_traces_v2(request: web.Request) -> web.Response:
    """``GET /api/2.0/mlflow/traces``: the legacy search, legacy info shape."""
    doc = await request_doc(request, repeated=frozenset({"experiment_ids", "order_by"}))
    raw_ids = get_list(doc, "experiment_ids", required=True)
    experiment_ids = [_experiment_number(str(v), "experiment_ids") for v in raw_ids]
    rows, token, _ = await _search_rows(request, doc, experiment_ids, "filter")
    body: dict[str, Any] = {"traces": [_v2_info(r) for r in rows]} if rows else {}
    if token:
        body["next_page_token"] = token
    return json_response(body)


def _location_experiment(location: Any) -> int:
    experiment = location.get("mlflow_experiment") if isinstance(location, dict) else None
    raw = experiment.get("experiment_id") if isinstance(experiment, dict) else None
    if raw is None:
        raise invalid_parameter("Only MLFLOW_EXPERIMENT trace locations are supported.")
    return _experiment_number(str(raw), "locations")


def _experiment_number(raw: str, name: str) -> int:
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise invalid_value(name, raw)
    return int(raw)


async def _search(
    request: web.Request, doc: dict[str, Any], experiment_ids: list[int], filter_name: str
) -> tuple[list[Any], str | None]:
    """The page's TraceInfo documents (JSON text PostgreSQL rendered, spliced unparsed into the
    answer) and the next page's token."""
    rows, token, scanned = await _search_rows(
        request, doc, experiment_ids, filter_name, rendered=True
    )
    if scanned:  # rows of a span-content scan come as plain rows, without their assessments
        return await _infos_json(request.app[deps_key].pool, rows), token
    return [orjson.Fragment(r["doc"]) for r in rows], token


async def _search_rows(
    request: web.Request,
    doc: dict[str, Any],
    experiment_ids: list[int],
    filter_name: str,
    *,
    rendered: bool = False,
) -> tuple[list[Any], str | None, bool]:
    """A page of trace rows (``rendered``: rows of TraceInfo JSON text, ``store.search``), the
    next page's token, and whether span contents were scanned (then plain rows without the
    ``assessments`` column)."""
    max_results = get_int64(doc, "max_results")
    max_results = SEARCH_DEFAULT_RESULTS if max_results is None else max_results
    if max_results <= 0:
        raise invalid_parameter(
            f"Invalid value {max_results} for parameter 'max_results' supplied. "
            "It must be a positive integer"
        )
    if max_results > SEARCH_MAX_RESULTS:
        raise invalid_value("max_results", max_results, f"It must be at most {SEARCH_MAX_RESULTS}")
    sql = Sql()
    compile_filter(get_string(doc, filter_name), sql)
    order = compile_order([str(o) for o in get_list(doc, "order_by")])
    offset = decode_offset(get_string(doc, "page_token"))
    for experiment_id in dict.fromkeys(experiment_ids):
        await require_experiment(request, experiment_id, Level.READ)
    pool = request.app[deps_key].pool

    async def read() -> list[Any]:
        if sql.scans_spans:
            return await _scan(pool, experiment_ids, sql, order, max_results + 1, offset)
        return await store.search(
            pool,
            experiment_ids,
            sql.where,
            sql.params,
            order,
            max_results + 1,
            offset,
            rendered=rendered,
        )

    rows = await request.app[trace_fence_key].read_after_all(read)
    token = encode_offset(offset + max_results) if len(rows) > max_results else None
    return rows[:max_results], token, sql.scans_spans


async def _scan(
    pool: Any, experiment_ids: list[int], sql: Sql, order: str, limit: int, offset: int
) -> list[Any]:
    """A page of a search with span content conditions: the SQL candidates in order, each kept
    when one of its spans meets every span condition (tested on the span's JSON text, as MLflow
    stores it). Reads candidates and spans through cursors: memory stays bounded; time grows
    with the candidates' spans (narrow the search with SQL-side conditions first)."""
    found: list[Any] = []
    skipped = 0
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        rows = store.search_cursor(conn, experiment_ids, sql.where, sql.params, order)
        async with contextlib.aclosing(rows):
            async for row in rows:
                if not await trace_has_span(conn, row["trace_id"], sql):
                    continue
                if skipped < offset:
                    skipped += 1
                    continue
                found.append(row)
                if len(found) == limit:
                    break
    return found


async def trace_has_span(conn: Any, trace_id: str, sql: Sql) -> bool:
    spans = store.span_rows(conn, trace_id)
    async with contextlib.aclosing(spans):
        async for span in spans:
            content = json.dumps(render.span_dict(span["proto"]), ensure_ascii=False)
            if span_matches(sql.spans, span, content):
                return True
    return False


# -- writes -------------------------------------------------------------------------------------


async def delete_traces(request: web.Request) -> web.Response:
    """``POST .../traces/delete-traces``: by ids, or up to ``max_traces`` older than a time."""
    doc = await request_doc(request)
    experiment_id = _experiment_number(
        get_string(doc, "experiment_id", required=True), "experiment_id"
    )
    max_timestamp = get_int64(doc, "max_timestamp_millis")
    max_traces = get_int64(doc, "max_traces")
    raw_ids = get_list(doc, "request_ids") or get_list(doc, "trace_ids")
    trace_ids = [str(t) for t in raw_ids] if raw_ids else None
    if max_timestamp is None and trace_ids is None:
        raise invalid_parameter("Either `max_timestamp_millis` or `trace_ids` must be specified.")
    if max_timestamp is not None and trace_ids is not None:
        raise invalid_parameter(
            "Only one of `max_timestamp_millis` and `trace_ids` can be specified."
        )
    if trace_ids is not None and max_traces is not None:
        raise invalid_parameter("`max_traces` can't be specified if `trace_ids` is specified.")
    await request.app[trace_fence_key].wait_for_all()
    async with request.app[deps_key].pool.acquire() as conn, conn.transaction():
        deleted = await store.delete(conn, experiment_id, trace_ids, max_timestamp, max_traces)
    return json_response({"traces_deleted": deleted})


async def set_trace_tag(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    key = get_string(doc, "key", required=True)
    value = get_string(doc, "value", default="")
    trace_id = _path_trace_id(request)
    await request.app[trace_fence_key].wait_for_trace(trace_id)
    await store.set_tag(request.app[deps_key].pool, trace_id, key, value)
    return json_response({})


async def delete_trace_tag(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    key = get_string(doc, "key", required=True)
    trace_id = _path_trace_id(request)
    await request.app[trace_fence_key].wait_for_trace(trace_id)
    pool = request.app[deps_key].pool
    if not await store.delete_tag(pool, trace_id, key):
        await store.info(pool, trace_id)  # a missing trace is the trace's 404
        raise does_not_exist(f"No trace tag with key '{key}' for trace with ID '{trace_id}'")
    return json_response({})


async def link_traces_to_run(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    trace_ids = _ids(doc, "trace_ids")
    run_id = get_string(doc, "run_id", required=True)
    if len(trace_ids) > 100:
        raise invalid_parameter(
            f"Cannot link more than 100 traces to a run in a single request. "
            f"Provided {len(trace_ids)} traces."
        )
    await store.link_to_run(request.app[deps_key].pool, trace_ids, run_id)
    return json_response({})


async def link_prompts_to_trace(request: web.Request) -> web.Response:
    """``POST /api/2.0/mlflow/traces/link-prompts``: record prompt versions ("name/version") the
    trace used; ``search_traces`` finds them with ``prompt = 'name/version'``. The trace's tags
    are left alone, as in MLflow."""
    doc = await request_doc(request)
    trace_id = get_string(doc, "trace_id", required=True)
    refs = get_list(doc, "prompt_versions", required=True)
    prompts = [_prompt_ref(ref, i) for i, ref in enumerate(refs)]
    if not prompts:
        return json_response({})
    await request.app[trace_fence_key].wait_for_trace(trace_id)
    pool = request.app[deps_key].pool
    if not await store.infos(pool, [trace_id]):
        raise does_not_exist(f"Trace with ID '{trace_id}' not found.")
    await store.link_prompts(pool, trace_id, prompts)
    return json_response({})


def _prompt_ref(ref: Any, index: int) -> str:
    """One PromptVersionRef as MLflow keys it, ``name/version``; the version must read as an
    integer (MLflow answers 500 for one that does not; Sluice 400)."""
    path = f"prompt_versions[{index}]"
    if not isinstance(ref, dict):
        raise invalid_value(path, ref)
    name = get_string(ref, "name", path=f"{path}.name") or ""
    version = get_string(ref, "version", path=f"{path}.version") or ""
    try:
        number = int(version)
    except ValueError:
        raise invalid_value(f"{path}.version", version, "It must be an integer") from None
    return f"{name}/{number}"
