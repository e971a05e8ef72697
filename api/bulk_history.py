"""Metric history across runs: ``get-history-bulk-interval`` (the UI's charts) and the legacy
ajax-only ``get-history-bulk``.

Sampling (MLflow 3.17's ``_sample_metric_history_single_run``): per run, the points in
(step, timestamp, value, is_nan) order are cut into ``max_results`` NTILE buckets and the first
point of each is kept; the run's last point replaces the last bucket's when the run has more
points than ``max_results``. ``api.series`` computes exactly that from the chunk index,
decoding only the chunks that hold picked points, whatever the run's size; only a run of more
than ``EXACT_SAMPLE_LIMIT`` points logged out of step order is approximated (one real point per
chunk, docs/design.md).
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import asyncpg
from aiohttp import web

from api import render
from api.deps import Deps, deps_key, request_doc
from api.fence import ReadFence
from api.series import Columns, SeriesReader, sample_runs
from schemas.mlflow_errors import API_DOCS_HINT, invalid_parameter
from schemas.protojson import get_int32, get_int64, get_list, get_string, wrong_type
from sluice.http import json_response

MAX_RUNS_PER_REQUEST: Final = 100
MAX_RESULTS_PER_RUN: Final = 2500
MAX_BULK_HISTORY_RESULTS: Final = 25000
PARALLEL_RUNS: Final = 4  # pool connections one chart request uses at most


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
    doc = await request_doc(request, frozenset({"run_ids"}))
    return json_response(await sampled_histories(request.app[deps_key], doc))


async def sampled_histories(deps: Deps, doc: Mapping[str, Any]) -> dict[str, Any]:
    """GetMetricHistoryBulkInterval's answer (also the UI's GraphQL query of that name)."""
    call = parse_interval_request(doc)
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


async def _fence(fence: ReadFence, run_ids: list[str]) -> None:
    if len(set(run_ids)) == 1:
        await fence.wait_for_run(run_ids[0])
    else:
        await fence.wait_for_all()
