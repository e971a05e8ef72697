"""Metric points stored as per-(run, key) chunks (schemas/sql/0007_metric_chunks.sql): reads
stay exact whatever order points were logged in, re-sent points are served once, charts are
sampled exactly like MLflow, and compaction merges the one-point chunks of a log_metric loop.

Every write below is followed by a read of the same run, which waits until the writer stored
it (read-your-writes fence), so each write lands in its own flush -- its own chunk."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aiohttp
import asyncpg
import pytest

from api.metrics.series import ntile_picks
from schemas.chunks import CHUNK_CAP
from tests.fault.faults import scrape
from tests.stack import Stack

pytestmark = pytest.mark.services

Point = tuple[int, int, float]  # timestamp, step, value


class Client:
    def __init__(self, session: aiohttp.ClientSession, stack: Stack) -> None:
        self.session, self.base = session, stack.url()

    async def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        url = f"{self.base}/api/2.0/mlflow/{path}"
        async with self.session.request(method, url, **kwargs) as r:
            assert r.status == 200, await r.text()
            doc: dict[str, Any] = await r.json()
            return doc

    async def new_run(self) -> str:
        exp = await self.call("POST", "experiments/create", json={"name": uuid.uuid4().hex})
        run = await self.call("POST", "runs/create", json={"experiment_id": exp["experiment_id"]})
        return str(run["run"]["info"]["run_id"])

    async def log(self, run_id: str, key: str, points: list[Point]) -> None:
        metrics = [{"key": key, "value": v, "timestamp": t, "step": s} for t, s, v in points]
        await self.call("POST", "runs/log-batch", json={"run_id": run_id, "metrics": metrics})
        await self.history(run_id, key, max_results=1)  # waits until stored: one flush each

    async def history(self, run_id: str, key: str, max_results: int | None = None) -> list[Point]:
        points: list[Point] = []
        token = None
        while True:
            query = {"run_id": run_id, "metric_key": key}
            if max_results is not None:
                query["max_results"] = str(max_results)
            if token:
                query["page_token"] = token
            page = await self.call("GET", "metrics/get-history", params=query)
            points += [(m["timestamp"], m["step"], m["value"]) for m in page.get("metrics", [])]
            token = page.get("next_page_token")
            if not token or max_results == 1:
                return points

    async def sample(self, run_id: str, key: str, buckets: int, **window: int) -> list[Point]:
        query = {"run_ids": run_id, "metric_key": key, "max_results": str(buckets)}
        query.update({k: str(v) for k, v in window.items()})
        doc = await self.call("GET", "metrics/get-history-bulk-interval", params=query)
        return [(m["timestamp"], m["step"], m["value"]) for m in doc.get("metrics", [])]


def _by_steps(points: list[Point]) -> list[Point]:
    return sorted(points, key=lambda p: (p[1], p[0], p[2]))


async def _chunks(stack: Stack, run_id: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(stack.dsn)
    try:
        return list(
            await conn.fetch(
                "SELECT n, step_sorted FROM metric_chunks WHERE run_uuid = $1 ORDER BY chunk_id",
                run_id,
            )
        )
    finally:
        await conn.close()


async def test_out_of_order_and_resent_points_read_back_sorted_and_once(stack: Stack) -> None:
    t0 = int(time.time() * 1000)
    late = [(t0 + 5000 + i, 1000 + i, i * 0.5) for i in range(1000)]
    early = [(t0 + i, i, -i * 0.25) for i in range(1000)]
    async with aiohttp.ClientSession() as session:
        client = Client(session, stack)
        run_id = await client.new_run()
        await client.log(run_id, "loss", late)
        await client.log(run_id, "loss", early)
        await client.log(run_id, "loss", late[:300])  # a re-sent request (lost answer)
        whole = await client.history(run_id, "loss")
        paged = await client.history(run_id, "loss", max_results=170)
        sample = await client.sample(run_id, "loss", 100)
        window = await client.sample(run_id, "loss", 50, start_step=900, end_step=1099)
    expected = sorted(early + late)
    assert whole == expected
    assert paged == expected
    by_steps = _by_steps(expected)
    assert sample == [by_steps[i] for i in ntile_picks(len(by_steps), 100)]
    inside = [p for p in by_steps if 900 <= p[1] <= 1099]
    assert window == [inside[i] for i in ntile_picks(len(inside), 50)]
    stored = await _chunks(stack, run_id)
    assert sum(c["n"] for c in stored) == 2300  # the re-sent copy is stored, served once


async def test_forward_logging_forms_a_chain_read_by_offsets(stack: Stack) -> None:
    t0 = int(time.time() * 1000)
    sent: list[Point] = []
    async with aiohttp.ClientSession() as session:
        client = Client(session, stack)
        run_id = await client.new_run()
        for r in range(4):  # one timestamp per request, like MlflowClient.log_batch
            batch = [(t0 + r, r * 700 + i, float(r * 700 + i)) for i in range(700)]
            await client.log(run_id, "acc", batch)
            sent += batch
        paged = await client.history(run_id, "acc", max_results=333)
        sample = await client.sample(run_id, "acc", 2500)
        small = await client.sample(run_id, "acc", 7)
    assert paged == sent
    assert sample == [sent[i] for i in ntile_picks(len(sent), 2500)]
    assert small == [sent[i] for i in ntile_picks(len(sent), 7)]
    pieces = [min(CHUNK_CAP, 700 - i) for i in range(0, 700, CHUNK_CAP)]  # one flush each
    assert [c["n"] for c in await _chunks(stack, run_id)] == pieces * 4


async def test_compaction_merges_the_chunks_of_a_log_metric_loop(stack: Stack) -> None:
    t0 = int(time.time() * 1000)
    before = scrape(stack.ports.writer, "sluice_writer_chunks_compacted_total")
    sent: list[Point] = []
    async with aiohttp.ClientSession() as session:
        client = Client(session, stack)
        run_id = await client.new_run()
        for step in range(40):
            point = (t0 + step, step, step / 10)
            body = {"run_id": run_id, "key": "lr", "value": point[2], "timestamp": point[0]}
            await client.call("POST", "runs/log-metric", json={**body, "step": step})
            assert (await client.history(run_id, "lr"))[-1] == point  # stored: its own flush
            sent.append(point)
        # The compactor runs in the background, a round at least every 0.2 s.
        deadline = time.monotonic() + 15
        while len(await _chunks(stack, run_id)) > 40 - 16 + 1:
            assert time.monotonic() < deadline, "no merge of 16 one-point chunks within 15 s"
            await asyncio.sleep(0.1)
        whole = await client.history(run_id, "lr")
    chunks = await _chunks(stack, run_id)
    assert whole == sent
    assert sum(c["n"] for c in chunks) == 40
    assert scrape(stack.ports.writer, "sluice_writer_chunks_compacted_total") >= before + 16
