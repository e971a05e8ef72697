"""The writer's consume -> batch -> flush pipeline for the partitions this process owns.

Concurrency contract: aiokafka calls the rebalance callbacks from its coordinator task while the
main loop may be inside a flush, so every flush and every ownership change holds ``_lock``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from schemas import wire
from sluice import metrics
from sluice.pg import RETRIABLE_TRANSACTION_ERRORS
from writer import compact, offsets
from writer import flush as flush_step
from writer.batch import Batch, BatchPolicy
from writer.dlq import InvalidTracker

log = logging.getLogger(__name__)

DeadLetter = Callable[[ConsumerRecord, str], Awaitable[None]]


class Pipeline:
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
        self._batch = Batch(policy)
        self._dead_letter = dead_letter
        self._invalid = invalid
        self._committed: dict[int, int] = {}  # partition -> next offset stored in PostgreSQL
        self._lock = asyncio.Lock()
        self.small_chunks = compact.Tracker()  # compacted by compact.Compactor, not here

    # --- ownership (called by the rebalance listener) -------------------------------------
    async def assign(self, partitions: list[int]) -> None:
        """Load stored offsets of newly assigned partitions and seek the consumer there."""
        async with self._lock:
            await self._load_and_seek(partitions)

    async def revoke(self, partitions: list[int]) -> None:
        """Flush what was consumed (best effort), then forget the partitions."""
        async with self._lock:
            try:
                await self._flush_once()
            except (offsets.LostOwnership, *RETRIABLE_TRANSACTION_ERRORS) as exc:
                log.warning("flush on revoke failed; next owner re-reads", extra={"err": str(exc)})
            self._batch.drop_partitions(set(partitions))
            for p in partitions:
                self._committed.pop(p, None)

    # --- the loop body ----------------------------------------------------------------------
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
        """Flush the batch, retrying transient PostgreSQL failures with backoff until it is
        stored, ownership is lost (re-seek), or ``stop`` is set (batch abandoned: offsets were
        not advanced, so the next owner re-reads it)."""
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
                    log.warning("flush failed, retrying", extra={"err": repr(exc), "delay": delay})
            if stop.is_set():
                return
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 5.0)

    # --- internals --------------------------------------------------------------------------
    async def _decode(self, record: ConsumerRecord) -> wire.MetricRecord | None:
        try:
            decoded = wire.decode(record.value)
        except wire.InvalidRecord as exc:
            self._invalid.record(True)
            await self._dead_letter(record, exc.reason)
            return None
        self._invalid.record(False)
        return decoded

    async def _flush_once(self) -> None:
        if self._batch.empty():
            return
        started = time.monotonic()
        async with self._pool.acquire() as conn:
            await flush_step.prepare(conn)
            result = await flush_step.flush(
                conn, self._topic, self._batch, self._committed, compact.SMALL_CHUNK
            )
        self.small_chunks.add(result.small)
        metrics.writer_rows_total.labels("copied").inc(result.copied)
        metrics.writer_rows_total.labels("stored").inc(result.stored)
        if result.quarantined:
            log.warning("rows of inactive runs quarantined", extra={"rows": result.quarantined})
        flush_step.observe_end_to_end(self._batch)
        log.debug("flushed", extra={"rows": result.copied, "s": time.monotonic() - started})
        self._batch.clear()

    async def _load_and_seek(self, partitions: list[int]) -> None:
        if not partitions:
            return
        async with self._pool.acquire() as conn:
            stored = await offsets.load(conn, self._topic, partitions)
        for partition, next_offset in stored.items():
            self._committed[partition] = next_offset
            self._consumer.seek(TopicPartition(self._topic, partition), next_offset)
        log.info("partitions assigned", extra={"offsets": stored})
