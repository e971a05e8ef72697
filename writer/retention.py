"""Retention guard: a stored offset below the partition's log start means Kafka deleted
records this writer never stored (retention outran a stopped or lagging writer). Seeking
there would make the consumer jump to the earliest offset and the next flush would store the
jump: a silent gap. Instead the partition is held (paused, not consumed), the writer logs an
error, ``sluice_writer_retention_gap_records{topic,partition}`` shows the size and readiness
fails, until an operator acknowledges the gap (``sluice acknowledge-gap``, ``--traces`` for the
traces topic), which moves the stored offset to the log start and records what was lost. The
writer notices within ``RECHECK_S`` and resumes. Both of the writer's topics are guarded.

Worked example: stored 1200, log start 1500 -> records 1200..1499 are gone; the partition is
held with gap 300. After the acknowledgement the stored offset is 1500 and consuming resumes.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from sluice import metrics

log = logging.getLogger(__name__)

RECHECK_S = 5.0


@dataclass(frozen=True, slots=True)
class Gap:
    partition: int
    stored: int  # next offset stored in PostgreSQL
    log_start: int  # first offset Kafka still holds

    @property
    def records(self) -> int:
        return self.log_start - self.stored


def find_gaps(stored: dict[int, int], log_start: dict[int, int]) -> list[Gap]:
    """Pure: partitions whose stored offset lies below the log start."""
    return [
        Gap(p, offset, log_start[p])
        for p, offset in sorted(stored.items())
        if p in log_start and offset < log_start[p]
    ]


class RetentionGuard:
    def __init__(self, consumer: AIOKafkaConsumer, topic: str) -> None:
        self._consumer = consumer
        self._topic = topic
        self.held: dict[int, Gap] = {}
        self._checked_at = 0.0

    async def admit(self, stored: dict[int, int]) -> dict[int, int]:
        """The partitions of ``stored`` that may be consumed; the others are held."""
        if not stored:
            return stored
        try:
            log_starts = await self._log_starts(list(stored))
        except KafkaError as exc:
            # Unknown log start: consuming could jump a gap unseen, so hold and check again.
            log.warning("log start unknown; partitions held", extra={"err": repr(exc)})
            for partition, offset in stored.items():
                self.held[partition] = Gap(partition, offset, offset)
                self._consumer.pause(TopicPartition(self._topic, partition))
            return {}
        gaps = find_gaps(stored, log_starts)
        for gap in gaps:
            self._hold(gap)
        held = {g.partition for g in gaps}
        for partition in stored:
            if partition not in held:
                self._release_metric(partition)
        return {p: o for p, o in stored.items() if p not in held}

    def due(self, now: float | None = None) -> bool:
        """True every RECHECK_S while partitions are held."""
        now = time.monotonic() if now is None else now
        if not self.held or now - self._checked_at < RECHECK_S:
            return False
        self._checked_at = now
        return True

    def forget(self, partitions: list[int]) -> None:
        """Revoked partitions are no longer this writer's to hold."""
        for partition in partitions:
            if self.held.pop(partition, None) is not None:
                self._release_metric(partition)

    def resume(self, partitions: list[int]) -> None:
        for partition in partitions:
            self.held.pop(partition, None)
            self._consumer.resume(TopicPartition(self._topic, partition))
            log.info("retention gap acknowledged, resuming", extra={"partition": partition})

    def _hold(self, gap: Gap) -> None:
        self.held[gap.partition] = gap
        self._consumer.pause(TopicPartition(self._topic, gap.partition))
        metrics.writer_retention_gap_records.labels(self._topic, str(gap.partition)).set(
            gap.records
        )
        log.error(
            "stored offset is below the partition's log start: Kafka deleted records that were"
            " never stored; partition held until `sluice acknowledge-gap`",
            extra={
                "topic": self._topic,
                "partition": gap.partition,
                "stored_offset": gap.stored,
                "log_start": gap.log_start,
                "lost_records": gap.records,
            },
        )

    def _release_metric(self, partition: int) -> None:
        metrics.writer_retention_gap_records.labels(self._topic, str(partition)).set(0)

    async def _log_starts(self, partitions: list[int]) -> dict[int, int]:
        tps = [TopicPartition(self._topic, p) for p in partitions]
        starts = await self._consumer.beginning_offsets(tps)
        return {tp.partition: offset for tp, offset in starts.items()}
