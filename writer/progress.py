"""What the writer tells the outside about its progress, after every flush and fetch:

* ``sluice_writer_lag_records{topic,partition}``: records between the offset stored in
  PostgreSQL and the partition's end as the last fetch saw it (the consumer's high-water mark);
* the same stored offsets committed to the writer's Kafka consumer group, so standard Kafka lag
  tooling (``kafka-consumer-groups --describe``, Burrow, exporters) sees the writer. PostgreSQL
  stays the source of truth: writers seek to the stored offsets on assignment and never read
  the group's. The commit is best effort, one at a time, off the flush path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from sluice import metrics

log = logging.getLogger(__name__)


class Progress:
    def __init__(self, consumer: AIOKafkaConsumer, topic: str) -> None:
        self._consumer = consumer
        self._topic = topic
        self._inflight: asyncio.Task[None] | None = None
        self._pending: dict[int, int] | None = None  # newer offsets waiting for the in-flight

    def observe(self, committed: dict[int, int]) -> None:
        """Set the lag gauge of every owned partition (no I/O: the high-water mark comes with
        each fetch)."""
        for partition, next_offset in committed.items():
            end = self._consumer.highwater(TopicPartition(self._topic, partition))
            if end is not None:
                metrics.writer_lag_records.labels(self._topic, str(partition)).set(
                    max(0, end - next_offset)
                )

    def forget(self, partitions: list[int]) -> None:
        """Partitions this writer no longer owns leave the gauge (their new owner reports)."""
        for partition in partitions:
            with contextlib.suppress(KeyError):
                metrics.writer_lag_records.remove(self._topic, str(partition))

    def mirror(self, committed: dict[int, int]) -> None:
        """Commit ``committed`` to the consumer group in the background; while a commit is in
        flight only the newest offsets are kept for the next one (a bound of one)."""
        if self._inflight is not None and not self._inflight.done():
            self._pending = dict(committed)
            return
        self._inflight = asyncio.create_task(self._commit(dict(committed)))

    async def close(self) -> None:
        """Wait for the in-flight commit and send the newest offsets (before consumer.stop)."""
        if self._inflight is not None:
            await self._inflight
        if self._pending is not None:
            await self._commit(self._pending)

    async def _commit(self, offsets: dict[int, int]) -> None:
        while True:
            tps = {TopicPartition(self._topic, p): o for p, o in offsets.items()}
            try:
                if tps:
                    await self._consumer.commit(tps)
            except KafkaError as exc:  # a rebalance in between: the new owner commits
                metrics.writer_group_commit_failures_total.inc()
                log.debug("group offset commit failed", extra={"err": repr(exc)})
            if self._pending is None:
                return
            offsets, self._pending = self._pending, None
