"""Retention guard: Kafka deletes records a writer never stored (here with DeleteRecords, as
retention would). The writer must not jump the gap: it holds the partition (nothing stored,
`sluice_writer_retention_gap_records` shows the loss, readiness fails) until an operator runs
`sluice acknowledge-gap`; then it resumes at the log start, stores the rest, mirrors its offset
to the Kafka consumer group and reports lag 0."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from mlflow import MlflowClient

from schemas import wire
from tests.stack import Stack

RECORDS = 10
DELETED = 4  # records 0..3 are gone before the writer ever sees them


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except (urllib.error.URLError, OSError):
        return 0, ""  # not listening yet


def _gauge(text: str, name: str, partition: int) -> float | None:
    match = re.search(rf'^{name}\{{partition="{partition}"\}} (\S+)$', text, re.M)
    return float(match.group(1)) if match else None


def _wait(what: str, check: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def gap_topic(stack: Stack) -> Iterator[dict[str, str]]:
    """A one-partition topic of its own and the overrides that point a writer at it."""
    topic = f"sluice.test-gap-{uuid.uuid4().hex[:8]}"
    overrides = {
        "SLUICE_KAFKA_TOPIC": topic,
        "SLUICE_KAFKA_PARTITIONS": "1",
        "SLUICE_WRITER_GROUP_ID": f"sluice-writer-gap-{uuid.uuid4().hex[:8]}",
        "SLUICE_WRITER_METRICS_PORT": str(_free_port()),
    }
    stack.run_cli("migrate", **overrides)
    yield overrides


async def _produce_then_delete(stack: Stack, topic: str, run_id: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, acks="all")
    await producer.start()
    try:
        for step in range(RECORDS):
            points = [("m", float(step), 1000 + step, step, False)]
            record = wire.encode(run_id, uuid.uuid4().hex, int(time.time() * 1000), points)
            await producer.send_and_wait(topic, record, key=run_id.encode())
    finally:
        await producer.stop()
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap)
    await admin.start()
    try:
        await admin.delete_records({TopicPartition(topic, 0): RecordsToDelete(DELETED)})
    finally:
        await admin.close()


async def _steps(stack: Stack, run_id: str) -> list[int]:
    conn = await asyncpg.connect(stack.dsn)
    try:
        rows = await conn.fetch(
            "SELECT step FROM metrics WHERE run_uuid = $1 AND key = 'm' ORDER BY step", run_id
        )
    finally:
        await conn.close()
    return [r["step"] for r in rows]


def test_a_gap_holds_the_partition_until_acknowledged(
    stack: Stack, sluice_url: str, gap_topic: dict[str, str]
) -> None:
    client = MlflowClient(sluice_url)
    run_id = client.create_run(client.create_experiment(f"gap-{uuid.uuid4().hex[:8]}")).info.run_id
    topic = gap_topic["SLUICE_KAFKA_TOPIC"]
    asyncio.run(_produce_then_delete(stack, topic, run_id))

    health = f"http://127.0.0.1:{gap_topic['SLUICE_WRITER_METRICS_PORT']}"
    log_path = stack.state_dir / f"writer-gap-{uuid.uuid4().hex[:6]}.log"
    with log_path.open("wb") as log:
        writer = subprocess.Popen(
            [sys.executable, "-m", "sluice.cli", "writer"],
            env=stack.service_env(**gap_topic),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        gauge = "sluice_writer_retention_gap_records"
        _wait(
            "the gap gauge",
            lambda: _gauge(_get(f"{health}/metrics")[1], gauge, 0) == DELETED,
        )
        assert _get(f"{health}/health/ready")[0] == 503
        assert asyncio.run(_steps(stack, run_id)) == []  # nothing jumped over the gap
        assert "below the partition's log start" in log_path.read_text()

        ack = subprocess.run(
            [sys.executable, "-m", "sluice.cli", "acknowledge-gap"],
            env=stack.service_env(**gap_topic),
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        assert ack.stdout.strip() == (
            f"partition 0: offsets 0..{DELETED - 1} lost ({DELETED} records),"
            f" writer resumes at {DELETED}"
        )
        steps = list(range(DELETED, RECORDS))
        _wait("the points after the gap", lambda: asyncio.run(_steps(stack, run_id)) == steps)
        metrics = _get(f"{health}/metrics")[1]
        assert _gauge(metrics, gauge, 0) == 0
        _wait(
            "lag 0",
            lambda: _gauge(_get(f"{health}/metrics")[1], "sluice_writer_lag_records", 0) == 0,
        )
        assert _get(f"{health}/health/ready")[0] == 200
        group = gap_topic["SLUICE_WRITER_GROUP_ID"]
        _wait(
            "the group offset", lambda: asyncio.run(_group_offset(stack, group, topic)) == RECORDS
        )
        asyncio.run(_assert_gap_recorded(stack, topic))
    finally:
        writer.terminate()
        writer.wait(timeout=60)


async def _group_offset(stack: Stack, group: str, topic: str) -> int | None:
    """What standard Kafka tooling sees: the writer group's committed offset."""
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap)
    await admin.start()
    try:
        committed = (await admin.list_consumer_group_offsets(group)).get(TopicPartition(topic, 0))
    finally:
        await admin.close()
    return None if committed is None else int(committed.offset)


async def _assert_gap_recorded(stack: Stack, topic: str) -> None:
    conn = await asyncpg.connect(stack.dsn)
    try:
        row = await conn.fetchrow(
            "SELECT from_offset, to_offset FROM writer_offset_gaps WHERE topic = $1", topic
        )
        stored = await conn.fetchval(
            "SELECT next_offset FROM writer_offsets WHERE topic = $1 AND partition = 0", topic
        )
    finally:
        await conn.close()
    assert row is not None and (row["from_offset"], row["to_offset"]) == (0, DELETED)
    assert stored == RECORDS
