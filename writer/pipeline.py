"""The writer's consume -> batch -> flush pipeline for the partitions of one topic this process
owns. The metric and the trace topic each run one (``writer/stages.py`` says what differs: the
batch, the decoder and the flush transaction); ownership, offsets, dead letters, the retention
guard and progress are the same code.

Concurrency contract: aiokafka calls the rebalance callbacks from its coordinator task while the
main loop may be inside a flush, so every flush and every ownership change holds ``_lock``.

Exactly once: the stage's ``store`` writes a batch's rows and advances its offsets in one
PostgreSQL transaction; ``committed`` changes only after COMMIT.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from asyncpg.exceptions import _base as asyncpg_base
from opentelemetry.trace import SpanContext

from schemas import wire
from sluice import logs, metrics, telemetry
from sluice.pg import RETRIABLE_TRANSACTION_ERRORS
from writer import offsets
from writer.dlq import InvalidTracker
from writer.progress import Progress
from writer.retention import RetentionGuard

log = logging.getLogger(__name__)

DeadLetter = Callable[[ConsumerRecord, str], Awaitable[None]]
R = TypeVar("R")  # a decoded record
R_contra = TypeVar("R_contra", contravariant=True)

# A record that decodes but that PostgreSQL refuses to store (a NUL in a text column from a
# direct producer, a value out of a column's range): retrying cannot help, so the batch is
# stored record by record and the refused record dead-lettered (``_store_one_by_one``).
NOT_STORABLE = (asyncpg.DataError, asyncpg_base.DataError)


class StageBatch(Protocol[R_contra]):
    """What the pipeline needs of a batch (``writer/batch.py``, ``writer/trace_batch.py``)."""

    next_offsets: dict[int, int]
    received_at_ms: list[int]

    def add(self, partition: int, offset: int, record: R_contra | None, now: float) -> None: ...
    def ready(self, now: float) -> bool: ...
    def due_in(self, now: float) -> float | None: ...
    def empty(self) -> bool: ...
    def drop_partitions(self, partitions: set[int]) -> None: ...
    def clear(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Stored:
    rows: int  # rows of the batch (points; spans and trace infos)
    quarantined: int = 0  # rows set aside (runs no longer active)


B = TypeVar("B", bound="StageBatch[Any]")
Store = Callable[[asyncpg.Connection, str, B, dict[int, int]], Awaitable[Stored]]


@dataclass(frozen=True, slots=True)
class Stage(Generic[R, B]):
    """What differs between the topics."""

    name: str  # "metrics", "traces": log lines
    new_batch: Callable[[], B]
    decode: Callable[[bytes | None], R]  # raises wire.InvalidRecord with the dead-letter reason
    # One transaction: the batch's rows and its offsets from ``committed`` (updated after
    # COMMIT); raises offsets.LostOwnership (rolled back) when another writer stored first.
    store: Store[B]


class Pipeline(Generic[R, B]):
    def __init__(
        self,
        stage: Stage[R, B],
        topic: str,
        pool: asyncpg.Pool,
        consumer: AIOKafkaConsumer,
        dead_letter: DeadLetter,
        invalid: InvalidTracker,
    ) -> None:
        self._stage = stage
        self._topic = topic
        self._pool = pool
        self._consumer = consumer
        self._batch = stage.new_batch()
        # The batch's records as consumed, for storing them one by one (NOT_STORABLE); bounded
        # by the batch policy like the batch itself.
        self._consumed: list[tuple[ConsumerRecord, R | None]] = []
        self._dead_letter = dead_letter
        self._invalid = invalid
        self._committed: dict[int, int] = {}  # partition -> next offset stored in PostgreSQL
        # Request ids (Kafka header set by ingest) of the batch, for its log lines; bounded.
        self._request_ids: deque[str] = deque(maxlen=100)
        # Span contexts of the producers of the batch's records (tracing on), linked from the
        # flush span; bounded.
        self._producers: deque[SpanContext] = deque(maxlen=32)
        self._lock = asyncio.Lock()
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
            self._consumed = [c for c in self._consumed if c[0].partition not in partitions]
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
                decoded = await self._decode(record)
                self._batch.add(tp.partition, record.offset, decoded, now)
                self._consumed.append((record, decoded))
        self.progress.observe(self._committed)

    def ready(self) -> bool:
        return self._batch.ready(time.monotonic())

    def due_in(self) -> float | None:
        """Seconds until the batch is old enough to flush; None while it is empty."""
        return self._batch.due_in(time.monotonic())

    def empty(self) -> bool:
        """Nothing consumed since the last flush (dead-lettered records count: their offsets
        must be stored)."""
        return self._batch.empty()

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
                    self._clear()
                    await self._load_and_seek(list(self._committed))
                    return
                except RETRIABLE_TRANSACTION_ERRORS as exc:
                    metrics.writer_flush_retries_total.inc()
                    log.warning(
                        "flush failed, retrying",
                        extra={"topic": self._topic, "err": repr(exc), "delay": delay},
                    )
            if stop.is_set():
                return
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 5.0)

    # --- internals --------------------------------------------------------------------------
    async def _decode(self, record: ConsumerRecord) -> R | None:
        rid = _request_id(record)
        if rid:
            self._request_ids.append(rid)
        producer = telemetry.span_context(record.headers)
        if producer is not None:
            self._producers.append(producer)
        token = logs.request_id.set(rid)  # the dead-letter log line names the request
        try:
            decoded = self._stage.decode(record.value)
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
            try:
                await self._flush_batch()
            except NOT_STORABLE as exc:
                log.warning(
                    "batch not storable; storing it record by record",
                    extra={"topic": self._topic, "err": repr(exc)},
                )
                await self._store_one_by_one()
        self._producers.clear()

    async def _flush_batch(self) -> None:
        started = time.monotonic()
        async with self._pool.acquire() as conn:
            result = await self._stage.store(conn, self._topic, self._batch, self._committed)
        ids = list(self._request_ids)
        if result.quarantined:
            log.warning(
                "rows of inactive runs quarantined",
                extra={"rows": result.quarantined, "batch_request_ids": ids},
            )
        _observe_end_to_end(self._batch.received_at_ms)
        log.debug(
            "flushed",
            extra={
                "stage": self._stage.name,
                "rows": result.rows,
                "s": time.monotonic() - started,
                "request_ids": ids,
            },
        )
        self._clear()
        self.progress.observe(self._committed)
        self.progress.mirror(self._committed)

    async def _store_one_by_one(self) -> None:
        """Store each record of the batch in a transaction of its own, in consumed order (so
        offsets advance in order); a record PostgreSQL refuses goes to the dead-letter topic and
        its offset advances like a record that did not decode. Interrupted (ownership lost, a
        transient failure), the batch holds the records not stored yet."""
        pending = deque(self._consumed)
        try:
            while pending:
                record, decoded = pending[0]
                try:
                    await self._store_single(record, decoded)
                except NOT_STORABLE as exc:
                    self._invalid.record(True)
                    await self._dead_letter(record, f"not storable: {exc}")
                    pending[0] = (record, None)
                    await self._store_single(record, None)
                pending.popleft()
        finally:
            self._rebuild(list(pending))
        self.progress.observe(self._committed)
        self.progress.mirror(self._committed)

    async def _store_single(self, record: ConsumerRecord, decoded: R | None) -> None:
        batch = self._stage.new_batch()
        batch.add(record.partition, record.offset, decoded, time.monotonic())
        async with self._pool.acquire() as conn:
            await self._stage.store(conn, self._topic, batch, self._committed)
        _observe_end_to_end(batch.received_at_ms)

    def _rebuild(self, records: list[tuple[ConsumerRecord, R | None]]) -> None:
        self._clear()
        now = time.monotonic()
        for record, decoded in records:
            self._batch.add(record.partition, record.offset, decoded, now)
        self._consumed = records

    def _clear(self) -> None:
        self._batch.clear()
        self._consumed = []
        self._request_ids.clear()

    async def _load_and_seek(self, partitions: list[int]) -> None:
        if not partitions:
            return
        async with self._pool.acquire() as conn:
            stored = await offsets.load(conn, self._topic, partitions)
        self._seek(await self.guard.admit(stored))
        log.info("partitions assigned", extra={"topic": self._topic, "offsets": stored})

    def _seek(self, stored: dict[int, int]) -> None:
        for partition, next_offset in stored.items():
            self._committed[partition] = next_offset
            self._consumer.seek(TopicPartition(self._topic, partition), next_offset)


def _observe_end_to_end(received_at_ms: list[int]) -> None:
    now_ms = time.time() * 1000
    for received in received_at_ms:
        metrics.writer_end_to_end_seconds.observe(max(0.0, (now_ms - received) / 1000))


def _request_id(record: ConsumerRecord) -> str:
    for name, value in record.headers or ():
        if name == wire.REQUEST_ID_HEADER:
            return bytes(value).decode(errors="replace")
    return ""
