"""Metric history reads: ``get-history`` (one run, paged), ``get-history-bulk-interval`` (the
UI's charts) and the legacy ajax-only ``get-history-bulk``.

Sampling (MLflow 3.17's ``_sample_metric_history_single_run``): per run, the points in
(step, timestamp, value, is_nan) order are cut into ``max_results`` NTILE buckets and the first
point of each is kept; the run's last point replaces the last bucket's when the run has more
points than ``max_results``. ``api.metrics.series`` computes exactly that from the chunk index,
decoding only the chunks that hold picked points, whatever the run's size; only a run of more
than ``EXACT_SAMPLE_LIMIT`` points logged out of step order is approximated (one real point per
chunk, docs/design.md).
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Mapping
from typing import Any, Final

import asyncpg
from aiohttp import web

from api import page_tokens
from api.deps import deps_key, request_doc
from api.metrics import render
from api.metrics.rules import (
    MAX_BULK_HISTORY_RESULTS,
    MAX_RUNS_PER_REQUEST,
    IntervalRequest,
    history_max_results,
    parse_interval_request,
)
from api.metrics.series import Columns, SeriesReader, sample_runs
from api.read_fence import ReadFence
from api.runs import store as runs
from api.runs.rules import run_id_of
from schemas.access import Level
from schemas.fields import get_string
from schemas.int_fields import get_int32
from schemas.mlflow_errors import invalid_parameter
from sluice.auth import require_experiment, viewer_of
from sluice.http import json_response

PARALLEL_RUNS: Final = 4  # pool connections one chart request uses at most


async def get_metric_history(request: web.Request) -> web.Response:
    deps = request.app[deps_key]
    doc = await request_doc(request)
    run_id = run_id_of(doc)
    key = get_string(doc, "metric_key", required=True) or ""
    max_results = history_max_results(doc)
    offset = page_tokens.decode_offset(get_string(doc, "page_token"))
    await deps.fence.wait_for_run(run_id)
    async with deps.pool.acquire() as conn:
        points, total = await SeriesReader(conn, run_id, key).history(offset, max_results)
    more = max_results is not None and total > offset + max_results
    token = page_tokens.encode_offset(offset + (max_results or 0)) if more else None
    return json_response(_body(key, points, token))


def _body(key: str, points: Columns, token: str | None) -> dict[str, object]:
    body: dict[str, object] = {}
    if points.timestamps:
        body["metrics"] = render.points(key, points.timestamps, points.steps, points.vals)
    if token:
        body["next_page_token"] = token
    return body


async def get_metric_history_bulk_interval(request: web.Request) -> web.Response:
    doc = await request_doc(request, frozenset({"run_ids"}))
    return json_response(await sampled_histories(request, doc))


async def sampled_histories(request: web.Request, doc: Mapping[str, Any]) -> dict[str, Any]:
    """GetMetricHistoryBulkInterval's answer (also the UI's GraphQL query of that name)."""
    deps = request.app[deps_key]
    call = parse_interval_request(doc)
    await _require_readable(request, deps.pool, call.run_ids)
    await _fence(deps.fence, call.run_ids)
    samples = await _samples(deps.pool, call)
    points: list[dict[str, Any]] = []
    for run_id in call.run_ids:
        sample = samples[run_id]
        points += render.run_points(
            call.metric_key, run_id, sample.timestamps, sample.steps, sample.vals
        )
    return {"metrics": points} if points else {}


async def _samples(pool: asyncpg.Pool, call: IntervalRequest) -> dict[str, Columns]:
    """Each distinct run's sample. The runs are dealt to ``PARALLEL_RUNS`` connections, each of
    which reads its share in one statement for the chunk indexes and one per run for the picked
    points (PostgreSQL does much of the work: more than one backend lets it use more than one
    core, and one connection's answer is decoded while another's query runs)."""
    runs = sorted(set(call.run_ids))
    shares = [runs[i::PARALLEL_RUNS] for i in range(min(PARALLEL_RUNS, len(runs)))]

    async def sample(share: list[str]) -> dict[str, Columns]:
        async with pool.acquire() as conn:
            return await sample_runs(conn, share, call.metric_key, call.max_results, call.steps)

    samples: dict[str, Columns] = {}
    for part in await asyncio.gather(*(sample(share) for share in shares)):
        samples.update(part)
    return samples


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
    await _require_readable(request, deps.pool, run_ids)
    await _fence(deps.fence, run_ids)
    limit = max(0, min(max_results, MAX_BULK_HISTORY_RESULTS))
    points: list[dict[str, Any]] = []
    async with deps.pool.acquire() as conn:
        for run_id in sorted(set(run_ids)):  # MLflow: ORDER BY run_uuid, then history order
            if len(points) >= limit:
                break
            history, _ = await SeriesReader(conn, run_id, metric_key).history(
                0, limit - len(points)
            )
            page = render.points(metric_key, history.timestamps, history.steps, history.vals)
            points += [{**point, "run_id": run_id} for point in page]
    for point in points:  # MLflow's Flask JSON writes a NaN value as the bare literal NaN
        point["value"] = math.nan if point["value"] == "NaN" else point["value"]
    return web.Response(text=json.dumps({"metrics": points}), content_type="application/json")


async def _require_readable(request: web.Request, pool: asyncpg.Pool, run_ids: list[str]) -> None:
    """READ on the experiment of every run, as MLflow's auth app checks these bulk reads."""
    if viewer_of(request) is None:
        return  # access control off, or an admin
    for experiment_id in await runs.experiments_of(pool, list(set(run_ids))):
        await require_experiment(request, experiment_id, Level.READ)


async def _fence(fence: ReadFence, run_ids: list[str]) -> None:
    if len(set(run_ids)) == 1:
        await fence.wait_for_run(run_ids[0])
    else:
        await fence.wait_for_all()
