"""``POST /api/3.0/mlflow/traces/metrics``: aggregates over an experiment's traces, spans or
assessments (the experiment Overview charts and the traces tab's counter). The rules live in
``api/traces/metric_rules.py``; this is the request parsing, permissions, fence and query."""

from __future__ import annotations

import dataclasses
from typing import Any

from aiohttp import web

from api.deps import deps_key, request_doc
from api.traces import metric_rules as rules
from api.traces import store
from api.traces.fence import trace_fence_key
from schemas.access import Level
from schemas.fields import get_enum, get_list, get_string
from schemas.int_fields import get_int32, get_int64
from schemas.mlflow_errors import missing_parameter
from schemas.protojson import invalid_value
from sluice.auth import require_experiment
from sluice.http import json_response


async def query_trace_metrics(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    query = parse(doc)
    for experiment_id in dict.fromkeys(query.experiment_ids):
        await require_experiment(request, experiment_id, Level.READ)
    compiled = rules.compile_query(query)
    await request.app[trace_fence_key].wait_for_all()
    rows = await store.metric_rows(request.app[deps_key].pool, compiled.text, compiled.params)
    points = rules.data_points(query.metric, compiled, rows)
    return json_response({"data_points": points} if points else {})


def parse(doc: dict[str, Any]) -> rules.MetricQuery:
    """The request in MLflow's order: required fields and types, the aggregations, the metric's
    rules, then the experiment ids (filters are checked as the query is compiled)."""
    raw_ids = _strings(doc, "experiment_ids", required=True)
    if doc.get("view_type", doc.get("viewType")) is None:
        raise missing_parameter("view_type")
    # An unknown view type is the proto default, TRACES, as MLflow's parser leaves it.
    view = get_enum(doc, "view_type", rules.VIEW_TYPES) or "TRACES"
    metric = get_string(doc, "metric_name", required=True)
    raw_aggregations = get_list(doc, "aggregations", required=True)
    dimensions = _strings(doc, "dimensions")
    filters = _strings(doc, "filters")
    interval = get_int64(doc, "time_interval_seconds")
    start_ms = get_int64(doc, "start_time_ms")
    end_ms = get_int64(doc, "end_time_ms")
    max_results = get_int32(doc, "max_results", default=rules.DEFAULT_MAX_RESULTS)
    get_string(doc, "page_token")  # MLflow answers one page and never a token
    sizes = {"experiment_ids": len(raw_ids), "aggregations": len(raw_aggregations)}
    rules.check_sizes({**sizes, "dimensions": len(dimensions), "filters": len(filters)})
    aggregations = tuple(rules.parse_aggregation(a, i) for i, a in enumerate(raw_aggregations))
    query = rules.MetricQuery(
        experiment_ids=(),
        view=view,
        metric=metric,
        aggregations=aggregations,
        dimensions=tuple(dimensions),
        filters=tuple(filters),
        interval_s=interval,
        start_ms=start_ms,
        end_ms=end_ms,
        max_results=max_results,
    )
    rules.check(query)
    ids = tuple(rules.experiment_number(raw) for raw in raw_ids)
    return dataclasses.replace(query, experiment_ids=ids)


def _strings(doc: dict[str, Any], name: str, *, required: bool = False) -> list[str]:
    values = get_list(doc, name, required=required)
    if not all(isinstance(v, str) for v in values):
        raise invalid_value(name, values)
    return values
