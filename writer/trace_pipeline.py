"""The writer's consume -> batch -> flush pipeline for the traces topic (its own consumer group).

Same contract as the metric pipeline (``writer/pipeline.py``): rebalance callbacks and flushes
hold ``_lock``; offsets are loaded and seeked on assignment and advanced in the flush
transaction; undecodable records go to ``<topic>.dlq``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from schemas import trace_wire
from sluice import metrics
from sluice.pg import RETRIABLE_TRANSACTION_ERRORS
from writer import offsets, trace_flush
from writer.batch import BatchPolicy
from writer.dlq import InvalidTracker
from writer.trace_batch import TraceBatch

log = logging.getLogger(__name__)

DeadLetter = Callable[[ConsumerRecord, str], Awaitable[None]]


class TracePipeline:
    def __init__(
        self,
        topic: str,
        pool: asyncpg.Pool,
        consumer: AIOKafkaConsumer,
        policy: BatchPolicy,
        dead_letter: DeadLetter,
        invalid: InvalidTracker,
    ) -> None:
        self._topic = topic
        self._pool = pool
        self._consumer = consumer
        self._batch = TraceBatch(policy)
        self._dead_letter = dead_letter
        self._invalid = invalid
        self._committed: dict[int, int] = {}
        self._lock = asyncio.Lock()

    async def assign(self, partitions: list[int]) -> None:
        async with self._lock:
            await self._load_and_seek(partitions)

    async def revoke(self, partitions: list[int]) -> None:
        async with self._lock:
            try:
                await self._flush_once()
            except (offsets.LostOwnership, *RETRIABLE_TRANSACTION_ERRORS) as exc:
                log.warning("flush on revoke failed; next owner re-reads", extra={"err": str(exc)})
            self._batch.drop_partitions(set(partitions))
            for p in partitions:
                self._committed.pop(p, None)

    async def consume(self, records: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        now = time.monotonic()
        for tp, batch in records.items():
            if tp.partition not in self._committed:
                continue  # fetched before a revoke; the new owner re-reads it
            for record in batch:
                self._batch.add(tp.partition, record.offset, await self._decode(record), now)

    def ready(self) -> bool:
        return self._batch.ready(time.monotonic())

    async def flush(self, stop: asyncio.Event) -> None:
        """Flush, retrying transient PostgreSQL failures with backoff until stored, ownership
        is lost (re-seek) or ``stop`` is set (batch abandoned; the next owner re-reads it)."""
        delay = 0.05
        while True:
            async with self._lock:
                try:
                    await self._flush_once()
                    return
                except offsets.LostOwnership as exc:
                    metrics.writer_lost_ownership_total.inc()
                    log.warning("lost ownership, re-seeking", extra={"partition": exc.partition})
                    self._batch.clear()
                    await self._load_and_seek(list(self._committed))
                    return
                except RETRIABLE_TRANSACTION_ERRORS as exc:
                    metrics.writer_flush_retries_total.inc()
                    log.warning("trace flush failed, retrying", extra={"err": repr(exc)})
            if stop.is_set():
                return
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 5.0)

    async def _decode(self, record: ConsumerRecord) -> trace_wire.TraceRecord | None:
        try:
            decoded = trace_wire.decode(record.value)
        except trace_wire.InvalidTraceRecord as exc:
            self._invalid.record(True)
            await self._dead_letter(record, exc.reason)
            return None
        self._invalid.record(False)
        return decoded

    async def _flush_once(self) -> None:
        if self._batch.empty():
            return
        async with self._pool.acquire() as conn:
            await trace_flush.prepare(conn)
            result = await trace_flush.flush(conn, self._topic, self._batch, self._committed)
        metrics.writer_spans_total.inc(result.spans)
        now_ms = time.time() * 1000
        for received in self._batch.received_at_ms:
            metrics.writer_end_to_end_seconds.observe(max(0.0, (now_ms - received) / 1000))
        self._batch.clear()

    async def _load_and_seek(self, partitions: list[int]) -> None:
        if not partitions:
            return
        async with self._pool.acquire() as conn:
            stored = await offsets.load(conn, self._topic, partitions)
        for partition, next_offset in stored.items():
            self._committed[partition] = next_offset
            self._consumer.seek(TopicPartition(self._topic, partition), next_offset)
        log.info("trace partitions assigned", extra={"offsets": stored})
