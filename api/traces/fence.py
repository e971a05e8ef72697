"""The read fence of the traces topic (read-your-writes for traces), owned by the api app.

Same mechanism as metrics (``api/read_fence.py``) on the traces topic, whose records are keyed by
trace id: a read of one trace waits for that trace's partition, a search for all partitions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from aiohttp import web

from api.deps import deps_key
from api.read_fence import ReadFence
from sluice import kafka
from sluice.config import Settings

T = TypeVar("T")


class TraceFence:
    def __init__(self, fence: ReadFence) -> None:
        self._fence = fence

    async def wait_for_trace(self, trace_id: str) -> None:
        await self._fence.wait_for_run(trace_id)  # same partition function, keyed by trace id

    async def wait_for_all(self) -> None:
        await self._fence.wait_for_all()

    async def read_after_all(self, read: Callable[[], Awaitable[T]]) -> T:
        """``read()`` reflecting every acknowledged trace write (``ReadFence.read_after_all``:
        the read runs alongside the fence)."""
        return await self._fence.read_after_all(read)


trace_fence_key = web.AppKey("trace_fence", TraceFence)


async def trace_fence_context(app: web.Application, settings: Settings) -> AsyncIterator[None]:
    """cleanup_ctx: a consumer (no group) that asks the traces topic for end offsets. Runs
    after the app's main resources, whose pool it shares."""
    topic = settings.kafka.traces_topic
    partitions = await kafka.partition_count(settings.kafka, topic)
    consumer = kafka.create_consumer(settings.kafka, group_id=None)
    await consumer.start()
    fence = ReadFence(
        consumer, app[deps_key].pool, topic, partitions, settings.api.read_fence_deadline_s
    )
    app[trace_fence_key] = TraceFence(fence)
    yield
    await fence.close()
    await consumer.stop()
