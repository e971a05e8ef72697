"""The webhook outbox against real PostgreSQL and Kafka: a registry change whose event Kafka
did not take (or whose api died between commit and produce) still reaches the webhooks topic,
published by the outbox relay, exactly as it was staged.

Each test has a database of its own: the session's api processes run relays over the session
database's outbox, which would race these tests for the rows they stage.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
import requests
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from api.webhooks import outbox
from api.webhooks.events import Publisher, record_of
from schemas.webhook_events import Event, decode, encode
from tests.integration.webhook_apis import create_topic, start_api
from tests.stack import Stack

pytestmark = pytest.mark.services

TIMEOUT = 30


async def _migrated_database(stack: Stack) -> str:
    dsn = await stack.create_database(f"{stack.database}_outbox_{uuid.uuid4().hex[:8]}")
    stack.run_cli("migrate", SLUICE_PG_DSN=dsn)
    return dsn


async def _read_topic(stack: Stack, topic: str, count: int) -> list[tuple[bytes, bytes]]:
    """The first ``count`` records of ``topic`` (key, value), waiting for them up to TIMEOUT."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=stack.bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    found: list[tuple[bytes, bytes]] = []
    try:
        deadline = time.monotonic() + TIMEOUT
        while len(found) < count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                found.extend((r.key or b"", r.value or b"") for r in records)
    finally:
        await consumer.stop()
    return found


@pytest.fixture
async def pool(stack: Stack) -> AsyncIterator[asyncpg.Pool]:
    dsn = await _migrated_database(stack)
    created = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    try:
        yield created
    finally:
        await created.close()


async def test_the_relay_publishes_what_a_dead_request_left_and_only_that(
    stack: Stack, pool: asyncpg.Pool
) -> None:
    topic = f"sluice.test-{stack.tag}.outbox-{uuid.uuid4().hex[:6]}"
    await create_topic(stack, topic)
    change = (Event("registered_model", "created"), {"name": "m", "tags": {}, "description": ""})
    left, fresh = record_of("m", *change), record_of("m", *change)
    # Two changes commit with their events staged; the request of each died before producing.
    for record in (left, fresh):
        async with pool.acquire() as conn, conn.transaction():
            await outbox.stage(conn, record)
    await pool.execute(
        "UPDATE webhook_outbox SET created_at = now() - interval '1 minute' WHERE event_id = $1",
        left.event_id,
    )
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, acks="all")
    await producer.start()
    try:
        publisher = Publisher(producer, topic, deadline_s=10)
        sent = await outbox.relay_once(pool, publisher.send, grace_s=30, batch=10)
    finally:
        await producer.stop()

    assert sent == 1  # the fresh row may still be its request's to publish
    assert await _read_topic(stack, topic, 1) == [(b"m", encode(left))]
    remaining = await pool.fetch("SELECT event_id FROM webhook_outbox")
    assert [r["event_id"] for r in remaining] == [fresh.event_id]


async def test_a_failed_send_leaves_the_rows_for_the_next_round(
    stack: Stack, pool: asyncpg.Pool
) -> None:
    record = record_of("m", Event("prompt_alias", "deleted"), {"name": "m", "alias": "a"})
    async with pool.acquire() as conn, conn.transaction():
        await outbox.stage(conn, record)

    async def refused(key: str, value: bytes) -> None:
        raise TimeoutError("Kafka did not take it")

    with pytest.raises(TimeoutError):
        await outbox.relay_once(pool, refused, grace_s=0, batch=10)
    rows = await pool.fetch("SELECT event_id, record FROM webhook_outbox")
    assert [(r["event_id"], bytes(r["record"])) for r in rows] == [
        (record.event_id, encode(record))
    ]


def _metric(base: str, outcome: str) -> float:
    text = requests.get(f"{base}/metrics", timeout=TIMEOUT).text
    pattern = rf'^sluice_webhook_events_total{{outcome="{outcome}"}} ([0-9.e+]+)$'
    match = re.search(pattern, text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def test_an_event_kafka_refused_at_commit_is_delivered_once_kafka_takes_it(
    stack: Stack,
) -> None:
    """An api whose webhooks topic does not exist yet (auto-creation is off): the registry
    change answers 200 and its event waits in the outbox; once the topic exists, the relay
    publishes it."""
    dsn = await _migrated_database(stack)
    topic = f"sluice.test-{stack.tag}.outbox-late-{uuid.uuid4().hex[:6]}"
    name = f"api-outbox-{uuid.uuid4().hex[:6]}"
    base = start_api(
        stack,
        name,
        dsn,
        topic,
        SLUICE_KAFKA_PRODUCE_DEADLINE_S="2",
        SLUICE_WEBHOOKS_DELIVER="false",
        SLUICE_WEBHOOKS_OUTBOX_RELAY_EVERY_S="0.5",
        SLUICE_WEBHOOKS_OUTBOX_GRACE_S="1",
    )
    try:
        model = f"outbox-{uuid.uuid4().hex[:8]}"
        answer = await asyncio.to_thread(
            requests.post,
            f"{base}/api/2.0/mlflow/registered-models/create",
            json={"name": model},
            timeout=TIMEOUT,
        )
        assert answer.status_code == 200, answer.text
        assert _metric(base, "deferred") == 1
        conn = await asyncpg.connect(dsn)
        try:
            assert await conn.fetchval("SELECT count(*) FROM webhook_outbox") == 1
            await create_topic(stack, topic)
            records = await _read_topic(stack, topic, 1)
            deadline = time.monotonic() + TIMEOUT
            while await conn.fetchval("SELECT count(*) FROM webhook_outbox"):
                assert time.monotonic() < deadline, "the relay never emptied the outbox"
                await asyncio.sleep(0.2)
        finally:
            await conn.close()
        assert len(records) == 1
        key, value = records[0]
        event = decode(value, key)
        assert (key, str(event.event), event.data["name"]) == (
            model.encode(),
            "registered_model.created",
            model,
        )
        assert _metric(base, "relayed") == 1
    finally:
        stack.kill(name)
