"""``sluice acknowledge-gap``: accept that Kafka's retention deleted records a writer never
stored (writer/retention.py holds such partitions). For each partition whose stored offset is
below its log start, one transaction records the lost range in ``writer_offset_gaps`` and moves
the stored offset to the log start -- conditionally, so a writer that stored meanwhile wins."""

from __future__ import annotations

import getpass
import logging
from dataclasses import dataclass

from aiokafka import TopicPartition

from sluice import kafka, pg
from sluice.config import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Acknowledged:
    partition: int
    from_offset: int
    to_offset: int


async def log_starts(settings: Settings, topic: str) -> dict[int, int]:
    """First offset Kafka still holds, per partition of ``topic``."""
    count = await kafka.partition_count(settings.kafka, topic)
    consumer = kafka.create_consumer(settings.kafka, group_id=None)
    await kafka.start(consumer, settings.kafka)
    try:
        tps = [TopicPartition(topic, p) for p in range(count)]
        return {tp.partition: o for tp, o in (await consumer.beginning_offsets(tps)).items()}
    finally:
        await consumer.stop()


async def acknowledge(
    settings: Settings, partitions: list[int] | None, *, traces: bool = False
) -> list[Acknowledged]:
    """Acknowledge the gaps of ``partitions`` (None = every partition with a gap) of the
    metrics topic, or of the traces topic with ``traces``."""
    topic = settings.kafka.traces_topic if traces else settings.kafka.topic
    starts = await log_starts(settings, topic)
    conn = await pg.connect(settings.pg)
    done = []
    try:
        for partition, start in starts.items():
            if partitions is not None and partition not in partitions:
                continue
            async with conn.transaction():
                stored = await conn.fetchval(
                    "SELECT next_offset FROM writer_offsets WHERE topic = $1 AND partition = $2"
                    " FOR UPDATE",
                    topic,
                    partition,
                )
                if stored is None or stored >= start:
                    continue
                await conn.execute(
                    "INSERT INTO writer_offset_gaps"
                    " (topic, partition, from_offset, to_offset, acknowledged_by)"
                    " VALUES ($1, $2, $3, $4, $5)",
                    topic,
                    partition,
                    stored,
                    start,
                    getpass.getuser(),
                )
                await conn.execute(
                    "UPDATE writer_offsets SET next_offset = $3"
                    " WHERE topic = $1 AND partition = $2",
                    topic,
                    partition,
                    start,
                )
            log.warning(
                "retention gap acknowledged",
                extra={"topic": topic, "partition": partition, "from": stored, "to": start},
            )
            done.append(Acknowledged(partition, stored, start))
    finally:
        await conn.close()
    return done
