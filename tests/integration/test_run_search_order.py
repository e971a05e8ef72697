"""runs/search ordered by a metric, on PostgreSQL: the segmented page query of
``api.runs.search`` (real values by index walk, then NaN, then missing) against MLflow's order
rule computed in Python, page by page through the page-token offsets.

The rule, as the compat cases ``runs-search/order-metric-*`` check against MLflow itself:
real values in the requested direction, then NaN, then runs without the metric, in both
directions; ties by ``start_time DESC`` (unless start_time is ordered explicitly), then run id.
A metric filter compares the latest value; a NaN satisfies only ``!=``.

Rows go straight into the tables (as the benchmark loads them): the test is about the query,
and needs values the client cannot produce in bulk (exact ties, NaN, ±1.8e308, -0.0).
"""

from __future__ import annotations

import math
import operator
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
import pytest

from api.page_tokens import decode_offset
from api.runs.search import compile_run_search
from api.search.order import parse_run_order_by
from api.search.request import ViewType, page_of
from api.search.rules import parse_run_filter

pytestmark = pytest.mark.services

BIG = 1.7976931348623157e308  # how ingest stores ±Inf
VALUES = [0.5, 0.25, 0.0, -0.0, 1.0, -3.0, BIG, -BIG, math.nan, None]  # None: no such metric
T0 = 1_700_000_000_000


@dataclass(frozen=True, slots=True)
class Run:
    run_id: str
    start_time: int
    loss: float | None
    acc: float | None
    param: str | None


def make_runs(rng: random.Random, count: int) -> list[Run]:
    """Few distinct values and start times, so ties decide much of the order."""
    return [
        Run(
            uuid.uuid4().hex,  # values are seeded; ids must differ per test
            T0 + rng.randrange(4),
            rng.choice(VALUES),
            rng.choice([0.1, 0.9, math.nan, None]),
            rng.choice(["x", "y", None]),
        )
        for _ in range(count)
    ]


async def store(conn: asyncpg.Connection, experiment_id: int, runs: list[Run], stage: str) -> None:
    await conn.executemany(
        "INSERT INTO runs (run_uuid, experiment_id, name, start_time, lifecycle_stage,"
        " artifact_uri) VALUES ($1, $2, $1, $3, $4, '')",
        [(r.run_id, experiment_id, r.start_time, stage) for r in runs],
    )
    latest = [
        (r.run_id, key, 0.0 if math.isnan(v) else v, math.isnan(v))
        for r in runs
        for key, v in (("loss", r.loss), ("acc", r.acc))
        if v is not None
    ]
    await conn.executemany("INSERT INTO latest_metrics VALUES ($1, $2, 0, 0, $3, $4)", latest)
    await conn.executemany(
        "INSERT INTO params VALUES ($1, 'p', $2)",
        [(r.run_id, r.param) for r in runs if r.param is not None],
    )


@pytest.fixture
async def experiment(conn: asyncpg.Connection) -> tuple[str, list[Run]]:
    """60 active runs in a new experiment, plus deleted runs there and active runs of another
    experiment with the same keys and values, which the index walk passes over."""
    rng = random.Random(5)
    ids = []
    for _ in range(2):
        ids.append(
            await conn.fetchval(
                "INSERT INTO experiments (experiment_id, name, artifact_location,"
                " creation_time, last_update_time)"
                " VALUES (nextval('experiment_id_seq'), $1, '', 0, 0) RETURNING experiment_id",
                uuid.uuid4().hex,
            )
        )
    active = make_runs(rng, 60)
    await store(conn, ids[0], active, "active")
    await store(conn, ids[0], make_runs(rng, 10), "deleted")
    await store(conn, ids[1], make_runs(rng, 30), "active")
    await conn.execute("ANALYZE runs, latest_metrics, params")
    return str(ids[0]), active


# ---------------------------------------------------------------- the oracle

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "=": operator.eq,
    "!=": operator.ne,
}


def metric_passes(value: float | None, comparator: str, bound: float) -> bool:
    if value is None:
        return False
    return comparator == "!=" if math.isnan(value) else _OPS[comparator](value, bound)


def mlflow_order(runs: list[Run], ascending: bool, start_time_asc: bool | None) -> list[str]:
    """MLflow's order by metrics.loss, then (optionally) start_time, then its tie-breakers."""

    def key(run: Run) -> tuple[int, float, int, str]:
        start = run.start_time if start_time_asc else -run.start_time
        if run.loss is None:
            return 2, 0.0, start, run.run_id
        if math.isnan(run.loss):
            return 1, 0.0, start, run.run_id
        return 0, run.loss if ascending else -run.loss, start, run.run_id

    return [r.run_id for r in sorted(runs, key=key)]


FILTERS: dict[str, Callable[[Run], bool]] = {
    "": lambda r: True,
    "metrics.loss < 0.5": lambda r: metric_passes(r.loss, "<", 0.5),
    "metrics.loss >= 0": lambda r: metric_passes(r.loss, ">=", 0.0),
    "metrics.loss = 0": lambda r: metric_passes(r.loss, "=", 0.0),
    "metrics.loss != 0.5": lambda r: metric_passes(r.loss, "!=", 0.5),
    "metrics.acc > 0.5": lambda r: metric_passes(r.acc, ">", 0.5),
    "metrics.acc != 0.1 AND params.p = 'x'": lambda r: (
        metric_passes(r.acc, "!=", 0.1) and r.param == "x"
    ),
    "params.p IS NULL": lambda r: r.param is None,
}
ORDERS: dict[tuple[str, ...], tuple[bool, bool | None]] = {
    ("metrics.loss DESC",): (False, None),
    ("metrics.loss",): (True, None),
    ("metrics.loss DESC", "start_time ASC"): (False, True),
}


async def all_pages(
    conn: asyncpg.Connection, experiment_id: str, filter_: str, order: tuple[str, ...], size: int
) -> list[str]:
    """Every page in turn, each from the offset the previous page's token carries."""
    found: list[str] = []
    token: str | None = ""
    while token is not None:
        offset = decode_offset(token)
        query = compile_run_search(
            [experiment_id],
            parse_run_filter(filter_),
            ViewType.ACTIVE_ONLY,
            parse_run_order_by(order),
            size,
            offset,
        )
        rows = await conn.fetch(query.sql, *query.args)
        page, token = page_of([r["run_uuid"] for r in rows], size, offset)
        found += page
    return found


@pytest.mark.parametrize("order", list(ORDERS))
@pytest.mark.parametrize("filter_", list(FILTERS))
async def test_metric_order_pages_follow_mlflow(
    conn: asyncpg.Connection,
    experiment: tuple[str, list[Run]],
    filter_: str,
    order: tuple[str, ...],
) -> None:
    """Page sizes that end pages inside the real values, on the NaN/missing boundary and past
    it; every page chain must concatenate to exactly MLflow's order of the matching runs."""
    experiment_id, runs = experiment
    ascending, start_time_asc = ORDERS[order]
    expected = mlflow_order([r for r in runs if FILTERS[filter_](r)], ascending, start_time_asc)
    assert expected, "every case must match some runs"
    for size in (1, 3, 7, 100):
        assert await all_pages(conn, experiment_id, filter_, order, size) == expected, size


async def test_value_segment_walks_the_index(conn: asyncpg.Connection) -> None:
    """With a filter on the ordering metric the page is one index range read backwards from the
    filter's bound (schemas/sql/0008), not a sort of every matching run."""
    query = compile_run_search(
        ["0"],
        parse_run_filter("metrics.loss < 0.5"),
        ViewType.ACTIVE_ONLY,
        parse_run_order_by(["metrics.loss DESC"]),
        100,
        0,
    )
    async with conn.transaction():
        # The test tables are tiny, so PostgreSQL would rightly read them whole: forbid that
        # (and sorting) to see whether the shape admits the walk at all -- the former
        # ORDER BY rank, value did not.
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
            await conn.execute(f"SET LOCAL {setting} = off")
        plan = [r[0] for r in await conn.fetch("EXPLAIN " + query.sql, *query.args)]
    text = "\n".join(plan)
    assert "Index Scan Backward using latest_metrics_by_value" in text, text
    # Runs tied on the value are still sorted by start time and id, one tie group at a time.
    assert [line.split("(")[0].strip(" ->") for line in plan if "Sort  (" in line] == [
        "Incremental Sort"
    ], text
