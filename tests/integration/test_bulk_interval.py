"""get-history-bulk-interval over many runs in one request (api/metrics/bulk.py): the chunk
indexes of all runs are read in one statement per connection, then each run is sampled on the
fast path (chunks in step order, picked points read by subscript) or the slow path (decoded and
sorted). Every answer must equal MLflow's sample of the points as logged, in request order.

Every write waits until the writer stored it (read-your-writes fence), so each log-batch lands
in its own flush: its own chunks."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest

from api.metrics.series import ntile_picks
from tests.integration.test_metric_chunks import Client
from tests.stack import Stack

pytestmark = pytest.mark.services

Point = tuple[int, int, Any]  # timestamp, step, value ("NaN" for NaN)
_BULK = "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval"


def _expected(
    points: list[Point], buckets: int, window: tuple[int, int] | None = None
) -> list[Point]:
    """MLflow's sample: points in (step, timestamp, value) order, first of each NTILE bucket,
    the last point instead of the last bucket's first."""
    inside = [p for p in points if window is None or window[0] <= p[1] <= window[1]]
    by_steps = sorted(set(inside), key=_step_key)
    return [by_steps[i] for i in ntile_picks(len(by_steps), buckets)]


def _step_key(p: Point) -> tuple[int, int, float, bool]:
    nan = p[2] == "NaN"
    return p[1], p[0], 0.0 if nan else float(p[2]), nan


async def _bulk(
    session: aiohttp.ClientSession, stack: Stack, run_ids: list[str], buckets: int, **window: int
) -> list[tuple[str, Point]]:
    query = [("run_ids", r) for r in run_ids] + [("metric_key", "loss")]
    query += [("max_results", str(buckets))] + [(k, str(v)) for k, v in window.items()]
    async with session.get(f"{stack.url()}{_BULK}", params=query) as r:
        assert r.status == 200, await r.text()
        doc = await r.json()
    metrics = doc.get("metrics", [])
    assert all(m["key"] == "loss" for m in metrics)
    return [(m["run_id"], (m["timestamp"], m["step"], m["value"])) for m in metrics]


async def _log(client: Client, run_id: str, key: str, points: list[Point]) -> None:
    """``Client.log`` for values that may be MLflow's "NaN" string."""
    metrics = [{"key": key, "value": v, "timestamp": t, "step": s} for t, s, v in points]
    await client.call("POST", "runs/log-batch", json={"run_id": run_id, "metrics": metrics})
    await client.history(run_id, key, max_results=1)  # waits until stored: one flush each


async def test_many_runs_mixed_paths_in_one_request(stack: Stack) -> None:
    t0 = int(time.time() * 1000)
    logged: dict[str, list[Point]] = {}
    async with aiohttp.ClientSession() as session:
        client = Client(session, stack)
        # Logged forward in four requests: a chain of 320-point chunks (the fast path).
        forward = await client.new_run()
        logged[forward] = []
        for r in range(4):
            batch = [(t0 + r, r * 700 + i, float(r * 700 + i)) for i in range(700)]
            await client.log(forward, "loss", batch)
            logged[forward] += batch
        # Later steps first: a chain again once sorted by step (chunk ids go the other way).
        backward = await client.new_run()
        late = [(t0 + 10 + i, 500 + i, i * 0.5) for i in range(500)]
        early = [(t0 + i, i, "NaN" if i == 7 else -i * 0.25) for i in range(500)]
        await _log(client, backward, "loss", late)
        await _log(client, backward, "loss", early)
        logged[backward] = late + early
        # Overlapping step ranges and a re-sent request: no chain (decoded and sorted).
        tangled = await client.new_run()
        middle = [(t0 + 5 + i, 250 + i, i / 7) for i in range(500)]
        await _log(client, tangled, "loss", middle)
        await _log(client, tangled, "loss", early)
        await _log(client, tangled, "loss", middle[:100])
        logged[tangled] = middle + early
        # Eight small forward runs: several runs per connection share one index statement.
        for k in range(8):
            run_id = await client.new_run()
            points = [(t0 + i, i, k + i / 100) for i in range(40 + 90 * k)]
            await client.log(run_id, "loss", points)
            logged[run_id] = points
        # A run with another key only, and one with no metrics: no points, no error.
        other_key = await client.new_run()
        await client.log(other_key, "acc", [(t0, 0, 1.0)])
        empty = await client.new_run()

        runs = list(logged)
        asked = [tangled, other_key, *runs, empty, forward, "0" * 32]  # repeats are answered
        for buckets in (1, 7, 100, 2500):
            got = await _bulk(session, stack, asked, buckets)
            want = [(r, p) for r in asked for p in _expected(logged.get(r, []), buckets)]
            assert got == want, buckets
        window = [forward, backward, tangled]
        windowed = await _bulk(session, stack, window, 50, start_step=450, end_step=800)
    want = [(r, p) for r in window for p in _expected(logged[r], 50, (450, 800))]
    assert windowed == want
