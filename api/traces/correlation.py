"""``POST /api/3.0/mlflow/traces/calculate-filter-correlation``: how two trace filters co-occur
(normalised pointwise mutual information, NPMI) over an experiment's traces, or over those a
base filter selects.

The three filters are search_traces filters (``api/traces/search_rules.py``). One cursor walks
the universe (the base filter's traces) with each filter's SQL part as a flag column; a filter
with span content conditions is finished in Python on the traces its SQL part kept.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from api.deps import deps_key, request_doc
from api.traces import store
from api.traces.fence import trace_fence_key
from api.traces.handlers import trace_has_span
from api.traces.metric_rules import experiment_number
from api.traces.search_rules import Sql, compile_filter
from schemas.access import Level
from schemas.fields import get_list, get_string
from schemas.protojson import invalid_value
from sluice.auth import require_experiment
from sluice.http import json_response

JEFFREYS_PRIOR: Final = 0.5  # MLflow's smoothing of the 2x2 table


@dataclass(frozen=True, slots=True)
class Counts:
    total: int
    first: int
    second: int
    joint: int


async def calculate_filter_correlation(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    raw_ids = get_list(doc, "experiment_ids", required=True)
    if not all(isinstance(v, str) for v in raw_ids):
        raise invalid_value("experiment_ids", raw_ids)
    first = get_string(doc, "filter_string1", required=True)
    second = get_string(doc, "filter_string2", required=True)
    base = get_string(doc, "base_filter")
    experiment_ids = [experiment_number(raw) for raw in raw_ids]
    for experiment_id in dict.fromkeys(experiment_ids):
        await require_experiment(request, experiment_id, Level.READ)
    params: list[Any] = []
    filters = [_compiled(f"{base} and {f}" if base else f, params) for f in (first, second)]
    universe = _compiled(base, params)
    await request.app[trace_fence_key].wait_for_all()
    counts = await _count(request.app[deps_key].pool, experiment_ids, universe, filters)
    body: dict[str, Any] = {}
    npmi, smoothed = npmi_from_counts(counts)
    if not math.isnan(npmi):
        body["npmi"] = npmi
    if not math.isnan(smoothed):
        body["npmi_smoothed"] = smoothed
    body.update(
        filter1_count=counts.first,
        filter2_count=counts.second,
        joint_count=counts.joint,
        total_count=counts.total,
    )
    return json_response(body)


def _compiled(filter_string: str | None, params: list[Any]) -> Sql:
    """One filter's SQL (numbered in the shared ``params``) and span conditions."""
    sql = Sql(params=params)
    compile_filter(filter_string, sql)
    return sql


def _flag(sql: Sql) -> str:
    return f"({' AND '.join(sql.where) or 'true'})"


async def _count(pool: Any, experiment_ids: list[int], universe: Sql, filters: list[Sql]) -> Counts:
    flags = [_flag(f) for f in filters]
    total = first = second = joint = 0
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        rows = store.flag_cursor(conn, experiment_ids, universe.where, universe.params, flags)
        async with contextlib.aclosing(rows):
            async for row in rows:
                if universe.scans_spans and not await trace_has_span(
                    conn, row["trace_id"], universe
                ):
                    continue
                hits = [
                    bool(row[f"f{i}"])
                    and (not sql.scans_spans or await trace_has_span(conn, row["trace_id"], sql))
                    for i, sql in enumerate(filters)
                ]
                total += 1
                first += hits[0]
                second += hits[1]
                joint += hits[0] and hits[1]
    return Counts(total, first, second, joint)


def npmi_from_counts(counts: Counts) -> tuple[float, float]:
    """(NPMI, NPMI with Jeffreys smoothing) as MLflow computes them; NaN where undefined
    (no traces, or a filter that matches none)."""
    nan = float("nan")
    if counts.total <= 0 or counts.first == 0 or counts.second == 0:
        return nan, nan
    n11 = counts.joint
    n10 = counts.first - counts.joint
    n01 = counts.second - counts.joint
    n00 = counts.total - counts.first - counts.second + counts.joint
    if min(n11, n10, n01, n00) < 0:
        return nan, nan
    plain = -1.0 if n11 == 0 else _npmi(n11, n10, n01, n00, 0.0)
    return plain, _npmi(n11, n10, n01, n00, JEFFREYS_PRIOR)


def _npmi(n11: int, n10: int, n01: int, n00: int, smoothing: float) -> float:
    s11, s10, s01, s00 = (n + smoothing for n in (n11, n10, n01, n00))
    total = s11 + s10 + s01 + s00
    n1, n2 = s11 + s10, s11 + s01
    if n1 <= 0 or n2 <= 0 or s11 <= 0:
        return float("nan")
    if n10 == 0 and n01 == 0 and n00 == 0:
        return 1.0
    pmi = (math.log(s11) + math.log(total)) - (math.log(n1) + math.log(n2))
    return max(-1.0, min(1.0, pmi / -(math.log(s11) - math.log(total))))
