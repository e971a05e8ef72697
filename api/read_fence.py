"""Read-your-writes fence: a read waits until every write acknowledged before it is stored.

Mechanism: ingest answers 200 only after Kafka acked the record, so at the moment a read arrives
every acknowledged record of the run sits below the partition's current end offset. The read
asks Kafka for that end offset, then waits (bounded) until the writer's stored offset for the
partition -- committed in the same transaction as the rows -- has reached it. Records of other
runs in the same partition may add a little wait; correctness needs nothing else, and the write
path pays nothing.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from schemas import wire
from schemas.mlflow_errors import Unavailable
from sluice import metrics

_STORED = (
    "SELECT partition, next_offset FROM writer_offsets"
    " WHERE topic = $1 AND partition = ANY($2::int[])"
)


class ReadFence:
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        pool: asyncpg.Pool,
        topic: str,
        partitions: int,
        deadline_s: float,
    ) -> None:
        self._consumer = consumer
        self._pool = pool
        self._topic = topic
        self._partitions = partitions
        self._deadline_s = deadline_s

    async def wait_for_run(self, run_id: str) -> None:
        await self._wait([wire.partition_for(run_id, self._partitions)])

    async def wait_for_all(self) -> None:
        await self._wait(list(range(self._partitions)))

    async def _wait(self, partitions: list[int]) -> None:
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._deadline_s):
                ends = await self._end_offsets(partitions)
                await self._until_stored(ends)
        except TimeoutError:
            metrics.api_read_fence_timeouts_total.inc()
            raise Unavailable(
                "Recently acknowledged writes are not stored yet; retry shortly.", 1
            ) from None
        except KafkaError as exc:
            raise Unavailable(f"Kafka is unavailable ({type(exc).__name__}).") from None
        metrics.api_read_fence_seconds.observe(time.monotonic() - started)

    async def _end_offsets(self, partitions: list[int]) -> dict[int, int]:
        tps = [TopicPartition(self._topic, p) for p in partitions]
        ends = await self._consumer.end_offsets(tps)
        return {tp.partition: offset for tp, offset in ends.items() if offset > 0}

    async def _until_stored(self, ends: dict[int, int]) -> None:
        delay = 0.002
        while ends:
            rows = await self._pool.fetch(_STORED, self._topic, list(ends))
            for row in rows:
                if row["next_offset"] >= ends.get(row["partition"], 0):
                    ends.pop(row["partition"], None)
            if not ends:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
