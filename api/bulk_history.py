"""Metric history across runs: ``get-history-bulk-interval`` (the UI's charts) and the legacy
ajax-only ``get-history-bulk``.

Sampling (MLflow 3.17's ``_sample_metric_history_single_run``): per run, the points in
(step, timestamp, value, is_nan) order are cut into ``max_results`` NTILE buckets and the first
point of each is kept; the run's last point replaces the last bucket's when the run has more
points than ``max_results``. Sluice computes exactly that, in SQL, for runs with up to
``EXACT_SAMPLE_LIMIT`` points of the key. Beyond that an exact sample means sorting the whole
history (seconds for millions of points), so large runs are sampled by skip-scan instead:
``max_results`` probes at evenly spaced timestamps on the ``metrics_identity`` index, first and
last timestamp included -- a few hundred index lookups whatever the run's size
(docs/design.md).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import asyncpg
from aiohttp import web

from api import render
from api.deps import deps_key, request_doc
from schemas.mlflow_errors import API_DOCS_HINT, invalid_parameter
from schemas.protojson import get_int32, get_int64, get_list, get_string, wrong_type
from sluice.http import json_response

MAX_RUNS_PER_REQUEST: Final = 100
MAX_RESULTS_PER_RUN: Final = 2500
MAX_BULK_HISTORY_RESULTS: Final = 25000

_SAMPLE: Final = """
SELECT run_uuid, key, step, timestamp, value, is_nan FROM (
    SELECT *, row_number() OVER (
        PARTITION BY run_uuid, bucket ORDER BY step, timestamp, value, is_nan) AS in_bucket
    FROM (
        SELECT run_uuid, key, step, timestamp, value, is_nan,
               ntile($3::int) OVER w AS bucket,
               row_number() OVER w AS rn,
               count(*) OVER (PARTITION BY run_uuid) AS n
        FROM metrics
        WHERE run_uuid = ANY($1::text[]) AND key = $2::text
          AND ($4::bigint IS NULL OR step BETWEEN $4::bigint AND $5::bigint)
        WINDOW w AS (PARTITION BY run_uuid ORDER BY step, timestamp, value, is_nan)
    ) bucketed
) ranked
WHERE (in_bucket = 1 AND (n <= $3::int OR bucket < $3::int)) OR rn = n
ORDER BY run_uuid, step, timestamp, value, is_nan
"""
# Runs up to this many points (of the key, in the step window) get MLflow's exact sample.
EXACT_SAMPLE_LIMIT: Final = 100_000
_WINDOW: Final = "($4::bigint IS NULL OR step BETWEEN $4::bigint AND $5::bigint)"
_IS_LARGE: Final = (
    "SELECT EXISTS (SELECT 1 FROM metrics WHERE run_uuid = $1 AND key = $2"
    " AND ($3::bigint IS NULL OR step BETWEEN $3::bigint AND $4::bigint) OFFSET $5::bigint)"
)
_SKIP_SAMPLE: Final = f"""
WITH bounds AS (
    SELECT min(timestamp) AS lo, max(timestamp) AS hi FROM metrics
    WHERE run_uuid = $1::text AND key = $2::text AND {_WINDOW}
)
SELECT DISTINCT p.step, p.timestamp, p.value, p.is_nan, $1::text AS run_uuid, $2::text AS key
FROM bounds, generate_series(0, $3::int - 1) AS i,
LATERAL (
    SELECT step, timestamp, value, is_nan FROM metrics
    WHERE run_uuid = $1::text AND key = $2::text AND {_WINDOW}
      AND timestamp >= CASE WHEN $3::int = 1 THEN bounds.hi
          ELSE bounds.lo + ((bounds.hi - bounds.lo)::numeric * i / ($3::int - 1))::bigint END
    ORDER BY timestamp, step, value, is_nan LIMIT 1
) p
ORDER BY p.step, p.timestamp, p.value, p.is_nan
"""
_BULK: Final = (
    "SELECT run_uuid, key, step, timestamp, value, is_nan FROM metrics"
    " WHERE run_uuid = ANY($1::text[]) AND key = $2"
    " ORDER BY run_uuid, timestamp, step, value LIMIT $3"
)


@dataclass(frozen=True, slots=True)
class IntervalRequest:
    run_ids: list[str]  # request order, repeats kept (MLflow answers each)
    metric_key: str
    max_results: int
    steps: tuple[int, int] | None


def parse_interval_request(doc: Mapping[str, Any]) -> IntervalRequest:
    """The request schema of ``get-history-bulk-interval`` (pure), MLflow's order and texts."""
    run_ids = get_list(doc, "run_ids", required=True)
    if not all(isinstance(item, str) for item in run_ids):
        raise wrong_type("run_ids", run_ids)
    if len(run_ids) > MAX_RUNS_PER_REQUEST:
        raise invalid_parameter(
            f"GetMetricHistoryBulkInterval request must specify at most {MAX_RUNS_PER_REQUEST}"
            f" run_ids. Received {len(run_ids)} run_ids. {API_DOCS_HINT}"
        )
    metric_key = get_string(doc, "metric_key", required=True)
    start, end = get_int64(doc, "start_step"), get_int64(doc, "end_step")
    max_results = get_int32(doc, "max_results", default=MAX_RESULTS_PER_RUN)
    if not 1 <= max_results <= MAX_RESULTS_PER_RUN:
        raise invalid_parameter(
            f"max_results must be between 1 and {MAX_RESULTS_PER_RUN}. {API_DOCS_HINT}"
        )
    return IntervalRequest(run_ids, metric_key, max_results, _step_window(start, end))


def _step_window(start: int | None, end: int | None) -> tuple[int, int] | None:
    if start is None and end is None:
        return None
    if start is None or end is None:
        raise invalid_parameter(
            "If either start step or end step are specified, both must be specified."
        )
    if start > end:
        raise invalid_parameter(
            "end_step must be greater than start_step. "
            f"Found start_step={start} and end_step={end}."
        )
    return start, end


async def get_metric_history_bulk_interval(request: web.Request) -> web.Response:
    deps = request.app[deps_key]
    call = parse_interval_request(await request_doc(request, frozenset({"run_ids"})))
    await _fence(request, call.run_ids)
    rows = await _sample(deps.pool, call)
    by_run: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_run[row["run_uuid"]].append({**render.metric(row), "run_id": row["run_uuid"]})
    points = [point for run_id in call.run_ids for point in by_run[run_id]]
    return json_response({"metrics": points} if points else {})


async def _sample(pool: asyncpg.Pool, call: IntervalRequest) -> list[asyncpg.Record]:
    """Exact samples of the small runs in one statement, a skip-scan sample per large run."""
    start, end = call.steps or (None, None)
    key = call.metric_key
    small: list[str] = []
    rows: list[asyncpg.Record] = []
    async with pool.acquire() as conn:
        for run_id in sorted(set(call.run_ids)):
            if await conn.fetchval(_IS_LARGE, run_id, key, start, end, EXACT_SAMPLE_LIMIT):
                rows += await conn.fetch(_SKIP_SAMPLE, run_id, key, call.max_results, start, end)
            else:
                small.append(run_id)
        if small:
            rows += await conn.fetch(_SAMPLE, small, key, call.max_results, start, end)
    return rows


async def get_metric_history_bulk(request: web.Request) -> web.Response:
    """Ajax only, registered by hand in MLflow: plain query parameters, repeated ``run_id``."""
    deps = request.app[deps_key]
    run_ids = request.query.getall("run_id", [])
    if not run_ids:
        raise invalid_parameter("GetMetricHistoryBulk request must specify at least one run_id.")
    if len(run_ids) > MAX_RUNS_PER_REQUEST:
        raise invalid_parameter(
            f"GetMetricHistoryBulk request cannot specify more than {MAX_RUNS_PER_REQUEST}"
            f" run_ids. Received {len(run_ids)} run_ids."
        )
    metric_key = request.query.get("metric_key")
    if metric_key is None:
        raise invalid_parameter("GetMetricHistoryBulk request must specify a metric_key.")
    max_results = get_int32(dict(request.query), "max_results", default=MAX_BULK_HISTORY_RESULTS)
    await _fence(request, run_ids)
    rows = await deps.pool.fetch(
        _BULK, sorted(set(run_ids)), metric_key, max(0, min(max_results, MAX_BULK_HISTORY_RESULTS))
    )
    points = [{**render.metric(r), "run_id": r["run_uuid"]} for r in rows]
    for point in points:  # MLflow's Flask JSON writes a NaN value as the bare literal NaN
        point["value"] = math.nan if point["value"] == "NaN" else point["value"]
    return web.Response(text=json.dumps({"metrics": points}), content_type="application/json")


async def _fence(request: web.Request, run_ids: list[str]) -> None:
    fence = request.app[deps_key].fence
    if len(set(run_ids)) == 1:
        await fence.wait_for_run(run_ids[0])
    else:
        await fence.wait_for_all()
