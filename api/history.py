"""Metric history reads."""

from __future__ import annotations

from aiohttp import web

from api import pages, render
from api.deps import deps_key, request_doc
from api.runs import run_id_of
from schemas.mlflow_errors import MlflowError, invalid_parameter
from schemas.protojson import get_int32, get_string
from sluice.http import json_response

# Order MLflow returns history in; served by the metrics_identity index.
_HISTORY = (
    "SELECT key, value, timestamp, step, is_nan FROM metrics"
    " WHERE run_uuid = $1 AND key = $2 ORDER BY timestamp, step, value"
)


async def get_metric_history(request: web.Request) -> web.Response:
    deps = request.app[deps_key]
    doc = await request_doc(request)
    run_id = run_id_of(doc)
    key = get_string(doc, "metric_key", required=True) or ""
    max_results = _max_results(doc)
    offset = pages.decode_offset(get_string(doc, "page_token"))
    await deps.fence.wait_for_run(run_id)
    if max_results is None:
        rows = await deps.pool.fetch(_HISTORY, run_id, key)
        return json_response(_body(rows, None))
    rows = await deps.pool.fetch(
        _HISTORY + " LIMIT $3 OFFSET $4", run_id, key, max_results + 1, offset
    )
    token = pages.encode_offset(offset + max_results) if len(rows) > max_results else None
    return json_response(_body(rows[:max_results], token))


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


def _body(rows: list[object], token: str | None) -> dict[str, object]:
    body: dict[str, object] = {}
    if rows:
        body["metrics"] = [render.metric(r) for r in rows]  # type: ignore[arg-type]
    if token:
        body["next_page_token"] = token
    return body
