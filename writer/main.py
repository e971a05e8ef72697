"""``sluice writer``: wiring only -- build the metric and trace pipelines, run their loops, shut
down in order."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

import asyncpg
from aiohttp import web
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition

from sluice import health, kafka, lifecycle, pg
from sluice.config import Settings
from writer import compact, pace
from writer.batch import BatchPolicy
from writer.dlq import DlqLimit, InvalidTracker, dead_letter
from writer.pipeline import Pipeline, Stage
from writer.stages import metric_stage, trace_stage

log = logging.getLogger(__name__)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, pipeline: Pipeline[Any, Any]) -> None:
        self._pipeline = pipeline

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._pipeline.revoke([tp.partition for tp in revoked])

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self._pipeline.assign([tp.partition for tp in assigned])


async def run(settings: Settings, stop: asyncio.Event) -> None:
    cfg = settings.writer
    pool = await pg.create_pool(settings.pg, max_size=4)  # flushes, compactor, health
    producer = kafka.create_producer(settings.kafka)
    policy = BatchPolicy(cfg.batch_max_rows, cfg.batch_max_age_s)

    async def to_dlq(record: ConsumerRecord, reason: str) -> None:
        origin = (record.partition, record.offset)
        await dead_letter(producer, record.topic, record.key, record.value, reason, origin)

    def pipeline(
        stage: Stage[Any, Any], topic: str, consumer: AIOKafkaConsumer
    ) -> Pipeline[Any, Any]:
        return Pipeline(stage, topic, pool, consumer, to_dlq, InvalidTracker(DlqLimit()))

    small_chunks = compact.Tracker()  # compacted by the Compactor, off the flush path
    consumer = _consumer(settings)
    points = pipeline(metric_stage(policy, small_chunks), settings.kafka.topic, consumer)
    # Traces: their own consumer group (a trace-only writer rebalance never pauses metrics).
    trace_consumer = _consumer(settings, ".traces")
    traces = pipeline(trace_stage(policy), settings.kafka.traces_topic, trace_consumer)
    heartbeats = (health.Heartbeat("metrics", 30.0), health.Heartbeat("traces", 30.0))
    app = web.Application()
    health.add_health_routes(app, lambda: _ready(pool, (points, traces)), heartbeats)
    server = asyncio.create_task(lifecycle.serve_app(app, cfg.host, cfg.metrics_port, stop))
    try:
        await kafka.start(producer, settings.kafka)
        consumer.subscribe([settings.kafka.topic], listener=_Rebalance(points))
        await kafka.start(consumer, settings.kafka)
        trace_consumer.subscribe([settings.kafka.traces_topic], listener=_Rebalance(traces))
        await kafka.start(trace_consumer, settings.kafka)
    except BaseException:  # Kafka unreachable at start: close what was opened, then report
        await asyncio.gather(
            trace_consumer.stop(), consumer.stop(), producer.stop(), return_exceptions=True
        )
        await pool.close()
        stop.set()
        await server
        raise
    compactor = asyncio.create_task(compact.Compactor(pool, small_chunks).run(stop))
    fetch = cfg.fetch_max_records
    # Traces flush when their input goes quiet (writer/pace.py): visible soon after the export.
    trace_loop = asyncio.create_task(
        _loop(trace_consumer, traces, heartbeats[1], stop, fetch, flush_when_idle=True)
    )
    try:
        await _first_done(_loop(consumer, points, heartbeats[0], stop, fetch), trace_loop)
    finally:
        compactor.cancel()  # a round cut short rolls back: nothing lost
        await asyncio.gather(compactor, return_exceptions=True)
        stop.set()
        await asyncio.gather(trace_loop, return_exceptions=True)
        await points.flush(stop)
        await traces.flush(stop)
        await traces.progress.close()
        await trace_consumer.stop()
        await points.progress.close()
        await consumer.stop()  # leaves the group: partitions move without a session timeout
        await producer.stop()
        await pool.close()
        stop.set()
        await server


def _consumer(settings: Settings, group_suffix: str = "") -> AIOKafkaConsumer:
    # Fetches are answered at the first record or after 500 ms; the loop batches a trickle
    # (writer/pace.py).
    return kafka.create_consumer(
        settings.kafka,
        settings.writer.group_id + group_suffix,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_min_bytes=pace.FETCH_MIN_BYTES,
        fetch_max_wait_ms=pace.FETCH_MAX_WAIT_MS,
    )


async def _first_done(main: Coroutine[Any, Any, None], other: asyncio.Task[None]) -> None:
    """Run ``main`` until it returns; a failure of ``other`` (the trace loop) ends it too."""
    task = asyncio.create_task(main)
    done, _ = await asyncio.wait({task, other}, return_when=asyncio.FIRST_COMPLETED)
    if task not in done:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    for finished in done:
        finished.result()  # re-raise a crash (e.g. DlqLimitExceeded)


async def _ready(pool: asyncpg.Pool, pipelines: tuple[Pipeline[Any, Any], ...]) -> bool:
    """Ready: PostgreSQL answers and no partition is held by a retention guard."""
    return not any(p.guard.held for p in pipelines) and await pg.ping(pool)


async def _loop(
    consumer: AIOKafkaConsumer,
    pipeline: Pipeline[Any, Any],
    heartbeat: health.Heartbeat,
    stop: asyncio.Event,
    max_records: int,
    flush_when_idle: bool = False,
) -> None:
    gathered = False
    while not stop.is_set():
        timeout_ms = pace.poll_timeout_ms(pipeline.due_in(), gathered)
        records = await consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        heartbeat.beat()
        if pipeline.guard.due():
            await pipeline.release_held()
        await pipeline.consume(records)
        polled = sum(len(batch) for batch in records.values())
        flushed = pace.flush_now(pipeline.ready(), polled, not pipeline.empty(), flush_when_idle)
        if flushed:
            await pipeline.flush(stop)
        pause = pace.pause_s(polled, max_records, flushed, pipeline.due_in())
        gathered = flush_when_idle and pause > 0
        if pause:
            await asyncio.sleep(pause)
