"""The read fence (api/read_fence.py) against the session's real Kafka, writer and PostgreSQL:
a read arriving while an earlier read's ListOffsets call is in flight starts its own call at
once -- it does not wait for the running one, which may predate its write -- and still sees
every write acknowledged before it (read-your-writes), alone and under concurrent readers."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from api.read_fence import ReadFence
from sluice import kafka
from sluice.config import KafkaConfig
from tests.stack import Stack

pytestmark = pytest.mark.services

_API = "/api/2.0/mlflow"


class _HeldConsumer(AIOKafkaConsumer):  # type: ignore[misc]
    """The real consumer; each end_offsets answer, already fetched from Kafka, is held until
    the test releases that call (a slow ListOffsets whose answer predates what follows)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.gates: list[asyncio.Event] = []
        self.answered: asyncio.Queue[int] = asyncio.Queue()  # call numbers Kafka answered

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        gate = asyncio.Event()
        self.gates.append(gate)
        number = len(self.gates)
        answer: dict[TopicPartition, int] = await super().end_offsets(partitions)
        self.answered.put_nowait(number)
        await gate.wait()
        return answer


async def _call(session: aiohttp.ClientSession, base: str, path: str, **kw: Any) -> Any:
    async with session.request(
        "POST" if "json" in kw else "GET", f"{base}{_API}/{path}", **kw
    ) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def _new_run(session: aiohttp.ClientSession, base: str) -> str:
    exp = await _call(session, base, "experiments/create", json={"name": uuid.uuid4().hex})
    run = await _call(session, base, "runs/create", json={"experiment_id": exp["experiment_id"]})
    return str(run["run"]["info"]["run_id"])


async def _log(session: aiohttp.ClientSession, base: str, run_id: str, step: int) -> None:
    point = {"key": "m", "value": float(step), "timestamp": 1_000 + step, "step": step}
    await _call(session, base, "runs/log-batch", json={"run_id": run_id, "metrics": [point]})


async def _stored_steps(pool: asyncpg.Pool, run_id: str) -> set[int]:
    rows = await pool.fetch("SELECT step FROM metrics WHERE run_uuid = $1 AND key = 'm'", run_id)
    return {row["step"] for row in rows}


async def test_a_read_mid_call_does_not_wait_for_it_and_sees_its_write(stack: Stack) -> None:
    cfg = KafkaConfig(bootstrap=stack.bootstrap)
    partitions = await kafka.partition_count(cfg, stack.topic)
    consumer = _HeldConsumer(**kafka.connection_options(cfg))
    await consumer.start()
    pool = await asyncpg.create_pool(stack.dsn, min_size=1, max_size=2)
    fence = ReadFence(consumer, pool, stack.topic, partitions, deadline_s=60)
    try:
        async with aiohttp.ClientSession() as session:
            run_id = await _new_run(session, stack.url())
            early = asyncio.create_task(fence.wait_for_run(run_id))
            # Call 1 answered by Kafka (held here), then a write acknowledged after it.
            assert await asyncio.wait_for(consumer.answered.get(), 30) == 1
            await _log(session, stack.url(), run_id, 7)
            late = asyncio.create_task(fence.wait_for_run(run_id))
            # Call 2 starts at once and is answered while call 1 is still held.
            assert await asyncio.wait_for(consumer.answered.get(), 30) == 2
            consumer.gates[1].set()
            await asyncio.wait_for(late, 30)  # while call 1 is still held
            assert not early.done()
            assert 7 in await _stored_steps(pool, run_id)  # read-your-writes
            consumer.gates[0].set()
            await asyncio.wait_for(early, 30)
    finally:
        for gate in consumer.gates:
            gate.set()
        await fence.close()
        await consumer.stop()
        await pool.close()


async def test_concurrent_readers_each_see_their_own_acknowledged_writes(stack: Stack) -> None:
    """16 clients each log a point and read the history at once, 8 times over: the api's
    fence calls overlap, and every read lists every point its client logged before it."""
    base = stack.url()
    async with aiohttp.ClientSession() as session:
        runs = await asyncio.gather(*(_new_run(session, base) for _ in range(16)))

        async def client(run_id: str) -> None:
            for step in range(8):
                await _log(session, base, run_id, step)
                page = await _call(
                    session,
                    base,
                    "metrics/get-history",
                    params={"run_id": run_id, "metric_key": "m"},
                )
                assert sorted(m["step"] for m in page.get("metrics", [])) == list(range(step + 1))

        await asyncio.gather(*(client(r) for r in runs))
