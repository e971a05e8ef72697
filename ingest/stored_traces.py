"""The stored info of one trace, read-your-writes: what EndTrace (MLflow 2.x) merges into.

StartTrace answered 200 once Kafka had the trace's record, but the writer may not have stored it
yet when the client ends the trace a moment later. A trace that is not in ``trace_info`` is
therefore looked up again after the fence the api uses for reads (``api/read_fence.py``), here
for one partition: the partition's end offset now, then wait (bounded) until the writer's stored
offset reached it. Still absent then means no StartTrace of it was acknowledged: MLflow's 404.
A fence past its deadline, or Kafka failing, is a 429: the client retries.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from schemas import wire
from schemas.mlflow_errors import Unavailable

_INFO = (
    "SELECT experiment_id, request_time_ms, client_request_id, tags, metadata"
    " FROM trace_info WHERE trace_id = $1"
)
_STORED = "SELECT next_offset FROM writer_offsets WHERE topic = $1 AND partition = $2"
_POLL_MAX_S = 0.05


@dataclass(frozen=True, slots=True)
class StoredTrace:
    experiment_id: int
    request_time_ms: int
    client_request_id: str | None
    tags: dict[str, str]
    metadata: dict[str, str]


class StoredTraces:
    def __init__(
        self,
        pool: asyncpg.Pool,
        consumer: AIOKafkaConsumer,
        topic: str,
        partitions: int,
        deadline_s: float,
    ) -> None:
        self._pool = pool
        self._consumer = consumer
        self._topic = topic
        self._partitions = partitions
        self._deadline_s = deadline_s

    async def get(self, trace_id: str) -> StoredTrace | None:
        """The trace as stored once every record acknowledged before this call is; None when
        it does not exist. Raises Unavailable past the deadline."""
        row = await self._pool.fetchrow(_INFO, trace_id)
        if row is None:
            await self._fence(wire.partition_for(trace_id, self._partitions))
            row = await self._pool.fetchrow(_INFO, trace_id)
        return None if row is None else _stored(row)

    async def _fence(self, partition: int) -> None:
        tp = TopicPartition(self._topic, partition)
        try:
            async with asyncio.timeout(self._deadline_s):
                end = (await self._consumer.end_offsets([tp]))[tp]
                delay = 0.002
                while (await self._pool.fetchval(_STORED, self._topic, partition) or 0) < end:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, _POLL_MAX_S)
        except TimeoutError:
            raise Unavailable("The trace's start is not stored yet; retry shortly.", 1) from None
        except KafkaError as exc:
            raise Unavailable(f"Kafka is unavailable ({type(exc).__name__}).") from None


def _stored(row: asyncpg.Record) -> StoredTrace:
    return StoredTrace(
        experiment_id=row["experiment_id"],
        request_time_ms=row["request_time_ms"],
        client_request_id=row["client_request_id"],
        tags=_mapping(row["tags"]),
        metadata=_mapping(row["metadata"]),
    )


def _mapping(raw: Any) -> dict[str, str]:
    """A jsonb column: text from asyncpg unless a codec decodes it."""
    values = orjson.loads(raw) if isinstance(raw, str | bytes) else raw
    return {str(k): str(v) for k, v in dict(values or {}).items()}
