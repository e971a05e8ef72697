"""Metric history reads."""

from __future__ import annotations

from aiohttp import web

from api import pages, render
from api.deps import deps_key, request_doc
from api.runs import run_id_of
from api.series import Columns, SeriesReader
from schemas.mlflow_errors import MlflowError, invalid_parameter
from schemas.protojson import get_int32, get_string
from sluice.http import json_response


async def get_metric_history(request: web.Request) -> web.Response:
    deps = request.app[deps_key]
    doc = await request_doc(request)
    run_id = run_id_of(doc)
    key = get_string(doc, "metric_key", required=True) or ""
    max_results = _max_results(doc)
    offset = pages.decode_offset(get_string(doc, "page_token"))
    await deps.fence.wait_for_run(run_id)
    async with deps.pool.acquire() as conn:
        points, total = await SeriesReader(conn, run_id, key).history(offset, max_results)
    more = max_results is not None and total > offset + max_results
    token = pages.encode_offset(offset + (max_results or 0)) if more else None
    return json_response(_body(key, points, token))


def _max_results(doc: dict[str, object]) -> int | None:
    """MLflow parses the query with protobuf and swallows a parse error, so an unparsable
    ``max_results`` ("abc", "1.5") reads as absent: the whole history, unpaged."""
    try:
        max_results = get_int32(doc, "max_results")
    except MlflowError:
        return None
    if max_results is not None and max_results <= 0:
        raise invalid_parameter(
            f"Invalid value {max_results} for parameter 'max_results' supplied. "
            "It must be a positive integer."
        )
    return max_results


def _body(key: str, points: Columns, token: str | None) -> dict[str, object]:
    body: dict[str, object] = {}
    if points.timestamps:
        body["metrics"] = render.points(key, points.timestamps, points.steps, points.vals)
    if token:
        body["next_page_token"] = token
    return body
