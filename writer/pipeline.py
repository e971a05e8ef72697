"""The writer's consume -> batch -> flush pipeline for the partitions this process owns.

Concurrency contract: aiokafka calls the rebalance callbacks from its coordinator task while the
main loop may be inside a flush, so every flush and every ownership change holds ``_lock``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from opentelemetry.trace import SpanContext

from schemas import wire
from sluice import logs, metrics, telemetry
from sluice.pg import RETRIABLE_TRANSACTION_ERRORS
from writer import compact, offsets
from writer import flush as flush_step
from writer.batch import Batch, BatchPolicy
from writer.dlq import InvalidTracker
from writer.progress import Progress
from writer.retention import RetentionGuard

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
        # Request ids (Kafka header set by ingest) of the batch, for its log lines; bounded.
        self._request_ids: deque[str] = deque(maxlen=100)
        # Span contexts of the producers of the batch's records (tracing on), linked from the
        # flush span; bounded.
        self._producers: deque[SpanContext] = deque(maxlen=32)
        self._lock = asyncio.Lock()
        self.small_chunks = compact.Tracker()  # compacted by compact.Compactor, not here
        self.progress = Progress(consumer, topic)
        self.guard = RetentionGuard(consumer, topic)

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
            self.progress.forget(partitions)
            self.guard.forget(partitions)

    async def release_held(self) -> None:
        """Resume partitions held by the retention guard whose gap was acknowledged since."""
        async with self._lock:
            held = list(self.guard.held)
            async with self._pool.acquire() as conn:
                stored = await offsets.load(conn, self._topic, held)
            admitted = await self.guard.admit(stored)
            self._seek(admitted)
            self.guard.resume(list(admitted))

    # --- the loop body ----------------------------------------------------------------------
    async def consume(self, records: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        now = time.monotonic()
        for tp, batch in records.items():
            if tp.partition not in self._committed:
                continue  # fetched before a revoke; the new owner re-reads it
            for record in batch:
                self._batch.add(tp.partition, record.offset, await self._decode(record), now)
        self.progress.observe(self._committed)

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
        rid = _request_id(record)
        if rid:
            self._request_ids.append(rid)
        producer = telemetry.span_context(record.headers)
        if producer is not None:
            self._producers.append(producer)
        token = logs.request_id.set(rid)  # the dead-letter log line names the request
        try:
            decoded = wire.decode(record.value)
        except wire.InvalidRecord as exc:
            self._invalid.record(True)
            await self._dead_letter(record, exc.reason)
            return None
        finally:
            logs.request_id.reset(token)
        self._invalid.record(False)
        return decoded

    async def _flush_once(self) -> None:
        if self._batch.empty():
            return
        links = telemetry.links(list(self._producers))
        with telemetry.tracer.start_as_current_span("writer.flush", links=links):
            await self._flush_batch()
        self._producers.clear()

    async def _flush_batch(self) -> None:
        started = time.monotonic()
        async with self._pool.acquire() as conn:
            await flush_step.prepare(conn)
            result = await flush_step.flush(
                conn, self._topic, self._batch, self._committed, compact.SMALL_CHUNK
            )
        self.small_chunks.add(result.small)
        metrics.writer_rows_total.labels("copied").inc(result.copied)
        metrics.writer_rows_total.labels("stored").inc(result.stored)
        ids = list(self._request_ids)
        if result.quarantined:
            log.warning(
                "rows of inactive runs quarantined",
                extra={"rows": result.quarantined, "batch_request_ids": ids},
            )
        flush_step.observe_end_to_end(self._batch)
        log.debug(
            "flushed",
            extra={"rows": result.copied, "s": time.monotonic() - started, "request_ids": ids},
        )
        self._batch.clear()
        self._request_ids.clear()
        self.progress.observe(self._committed)
        self.progress.mirror(self._committed)

    async def _load_and_seek(self, partitions: list[int]) -> None:
        if not partitions:
            return
        async with self._pool.acquire() as conn:
            stored = await offsets.load(conn, self._topic, partitions)
        self._seek(await self.guard.admit(stored))
        log.info("partitions assigned", extra={"offsets": stored})

    def _seek(self, stored: dict[int, int]) -> None:
        for partition, next_offset in stored.items():
            self._committed[partition] = next_offset
            self._consumer.seek(TopicPartition(self._topic, partition), next_offset)


def _request_id(record: ConsumerRecord) -> str:
    for name, value in record.headers or ():
        if name == wire.REQUEST_ID_HEADER:
            return bytes(value).decode(errors="replace")
    return ""
