"""Read-your-writes fence: a read waits until every write acknowledged before it is stored.

Mechanism: ingest answers 200 only after Kafka acked the record, so at the moment a read arrives
every acknowledged record of the run sits below the partition's current end offset. The read
asks Kafka for that end offset, then waits (bounded) until the writer's stored offset for the
partition -- committed in the same transaction as the rows -- has reached it. Records of other
runs in the same partition may add a little wait; correctness needs nothing else, and the write
path pays nothing.

Cost per read (the fence was most of a trace search's time): concurrent reads share one
ListOffsets request -- a read joins a request that *starts after it arrived*, never one already
in flight, which may predate its writes, and starts one at once when none is waiting to start
(``Rounds``); and stored offsets already seen to cover the end offsets need no query (they only
grow; a smaller end offset than before, a recreated topic, drops what was seen).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, Generic, TypeVar, cast

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


T = TypeVar("T")


class Rounds(Generic[T]):
    """Shared calls of ``fetch``: a caller gets the result of a call that started after it
    arrived, shared with every caller that arrived before that call started.

    A caller that finds no call waiting to start starts one at once, even while earlier calls
    are in flight (they may predate its writes): it waits for one call, not for the rest of a
    running one and then its own. Callers arriving before that call's task runs (the same
    event-loop turn) join it. At most ``max_running`` calls are in flight; past that a caller
    joins the call that starts when the first of them ends. Each call is bounded by
    ``deadline_s``."""

    def __init__(
        self, fetch: Callable[[], Awaitable[T]], deadline_s: float, max_running: int = 4
    ) -> None:
        self._fetch = fetch
        self._deadline_s = deadline_s
        self._max_running = max_running
        self._next: asyncio.Future[T] | None = None  # the call callers join; not started yet
        self._scheduled = False  # a task for ``_next`` exists but has not run yet
        self._running: set[asyncio.Task[None]] = set()
        self._closed = False

    async def get(self) -> T:
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            # Nobody may be left to read a failed call's error once their deadlines passed.
            self._next.add_done_callback(_retrieve)
        joined = self._next
        self._schedule()
        return await asyncio.shield(joined)

    def _schedule(self) -> None:
        if self._closed or self._next is None or self._scheduled:
            return
        if len(self._running) >= self._max_running:
            return
        self._scheduled = True
        task = asyncio.create_task(self._call(self._next))
        self._running.add(task)
        task.add_done_callback(self._ended)

    async def _call(self, joined: asyncio.Future[T]) -> None:
        # Starts now: later callers wait for a later call (``joined`` is still ``_next`` here).
        self._next, self._scheduled = None, False
        try:
            async with asyncio.timeout(self._deadline_s):
                joined.set_result(await self._fetch())
        except asyncio.CancelledError:
            joined.cancel()  # closed: its callers must not wait for their deadline
            raise
        except Exception as exc:  # every caller of the call sees the failure
            joined.set_exception(exc)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._schedule()  # callers that found every slot taken

    async def close(self) -> None:
        self._closed = True
        running, self._running = list(self._running), set()
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        if self._next is not None:
            self._next.cancel()


_NO_RESULT: Final = object()


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


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
        self._rounds = Rounds(self._all_end_offsets, deadline_s)
        self._stored: dict[int, int] = {}  # highest stored offset seen per partition
        self._ends: dict[int, int] = {}  # latest end offsets, to notice a recreated topic

    async def wait_for_run(self, run_id: str) -> None:
        await self._wait([wire.partition_for(run_id, self._partitions)])

    async def wait_for_all(self) -> None:
        await self._wait(list(range(self._partitions)))

    async def read_after_all(self, read: Callable[[], Awaitable[T]]) -> T:
        """``read()``'s result, reflecting every write acknowledged before this call.

        Optimistic: ``read`` runs while the end offsets are fetched, and its result stands when
        the stored offsets seen before it started already reached them (what the writers had
        stored then, the read's snapshot holds too). Else the fence is waited for and ``read``
        runs again: an idle topic saves the read a Kafka round trip, a busy one may cost it a
        second read. ``read`` must not write."""
        seen = dict(self._stored)
        started = time.monotonic()
        ends = asyncio.ensure_future(self._guarded(self._rounds.get(), started))
        try:
            first: Any = await read()
        except asyncio.CancelledError:
            ends.cancel()
            raise
        except Exception:  # perhaps a writer's missing rows: decided after the fence
            first = _NO_RESULT
        found = await ends
        if first is not _NO_RESULT and all(seen.get(p, 0) >= end for p, end in found.items()):
            metrics.api_read_fence_seconds.observe(time.monotonic() - started)
            return cast(T, first)
        await self._guarded(self._until_stored(found), started)
        metrics.api_read_fence_seconds.observe(time.monotonic() - started)
        return await read()

    async def close(self) -> None:
        await self._rounds.close()

    async def _wait(self, partitions: list[int]) -> None:
        started = time.monotonic()
        ends = await self._guarded(self._rounds.get(), started)
        await self._guarded(
            self._until_stored({p: ends[p] for p in partitions if p in ends}), started
        )
        metrics.api_read_fence_seconds.observe(time.monotonic() - started)

    async def _guarded(self, step: Awaitable[T], started: float) -> T:
        """``step`` within the fence's deadline (counted from ``started``); Unavailable (429)
        past it or when Kafka fails."""
        try:
            async with asyncio.timeout(max(0.0, started + self._deadline_s - time.monotonic())):
                return await step
        except TimeoutError:
            metrics.api_read_fence_timeouts_total.inc()
            raise Unavailable(
                "Recently acknowledged writes are not stored yet; retry shortly.", 1
            ) from None
        except KafkaError as exc:
            raise Unavailable(f"Kafka is unavailable ({type(exc).__name__}).") from None

    async def _all_end_offsets(self) -> dict[int, int]:
        """End offsets of the partitions holding records (one ListOffsets request)."""
        tps = [TopicPartition(self._topic, p) for p in range(self._partitions)]
        ends = {
            tp.partition: offset for tp, offset in (await self._consumer.end_offsets(tps)).items()
        }
        if any(offset < self._ends.get(p, 0) for p, offset in ends.items()):
            self._stored.clear()  # the topic was recreated: what was stored says nothing now
        self._ends = ends
        return {p: offset for p, offset in ends.items() if offset > 0}

    async def _until_stored(self, ends: dict[int, int]) -> None:
        ends = {p: end for p, end in ends.items() if self._stored.get(p, 0) < end}
        delay = 0.002
        while ends:
            rows = await self._pool.fetch(_STORED, self._topic, list(ends))
            for row in rows:
                partition, stored = row["partition"], row["next_offset"]
                self._stored[partition] = max(stored, self._stored.get(partition, 0))
                if stored >= ends.get(partition, 0):
                    ends.pop(partition, None)
            if not ends:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
