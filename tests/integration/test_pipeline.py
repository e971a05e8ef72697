"""The records really pass through Kafka and land in the partitioned table."""

from __future__ import annotations

import time
import uuid

import aiohttp
import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas import wire
from tests.stack import Stack


async def _create_run(session: aiohttp.ClientSession, base: str) -> str:
    async with session.post(
        f"{base}/api/2.0/mlflow/experiments/create", json={"name": f"pipe-{uuid.uuid4().hex}"}
    ) as r:
        exp_id = (await r.json())["experiment_id"]
    async with session.post(
        f"{base}/api/2.0/mlflow/runs/create", json={"experiment_id": exp_id}
    ) as r:
        return str((await r.json())["run"]["info"]["run_id"])


async def test_log_batch_record_is_on_the_topic_and_rows_in_a_partition(stack: Stack) -> None:
    base = stack.url()
    async with aiohttp.ClientSession() as session:
        run_id = await _create_run(session, base)
        now = int(time.time() * 1000)
        body = {
            "run_id": run_id,
            "metrics": [
                {"key": "loss", "value": v, "timestamp": now, "step": s}
                for s, v in enumerate([0.5, "NaN", "Infinity"])
            ],
        }
        async with session.post(f"{base}/api/2.0/mlflow/runs/log-batch", json=body) as r:
            assert r.status == 200, await r.text()
        async with session.get(
            f"{base}/api/2.0/mlflow/metrics/get-history",
            params={"run_id": run_id, "metric_key": "loss"},
        ) as r:
            history = (await r.json())["metrics"]
    assert [m["value"] for m in history] == [0.5, "NaN", 1.7976931348623157e308]

    record = await _find_record(stack, run_id)
    assert record.metrics == [
        wire.MetricPoint("loss", 0.5, now, 0, False),
        wire.MetricPoint("loss", 0.0, now, 1, True),
        wire.MetricPoint("loss", wire.DOUBLE_MAX, now, 2, False),
    ]

    conn = await asyncpg.connect(stack.dsn)
    try:
        partitioned = await conn.fetchval(
            "SELECT count(*) FROM pg_partitioned_table WHERE partrelid = 'metric_chunks'::regclass"
        )
        partitions = await conn.fetchval(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'metric_chunks'::regclass"
        )
        homes = await conn.fetch(
            "SELECT DISTINCT tableoid::regclass::text AS home FROM metric_chunks"
            " WHERE run_uuid = $1",
            run_id,
        )
        direct = await conn.fetchval("SELECT count(*) FROM ONLY metric_chunks")
    finally:
        await conn.close()
    assert partitioned == 1 and partitions == 16
    # one run, one partition
    assert len(homes) == 1 and homes[0]["home"].startswith("metric_chunks_p")
    assert direct == 0  # the parent holds no rows itself


async def _find_record(stack: Stack, run_id: str) -> wire.MetricRecord:
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(stack.topic) or set()
        if not partitions:
            await consumer.topics()
        tp = TopicPartition(stack.topic, wire.partition_for(run_id, 4))
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        while (await consumer.position(tp)) < end:
            for records in (await consumer.getmany(tp, timeout_ms=1000)).values():
                for message in records:
                    if message.key == run_id.encode():
                        return wire.decode(message.value)
    finally:
        await consumer.stop()
    raise AssertionError(f"no record of run {run_id} on {stack.topic}")
