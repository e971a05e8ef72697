"""Retention guard: Kafka deletes records a writer never stored (here with DeleteRecords, as
retention would). The writer must not jump the gap: it holds the partition (nothing stored,
`sluice_writer_retention_gap_records` shows the loss, readiness fails) until an operator runs
`sluice acknowledge-gap`; then it resumes at the log start, stores the rest, mirrors its offset
to the Kafka consumer group and reports lag 0. The same on the metrics and on the traces topic
(one pipeline, writer/pipeline.py); liveness names both consume loops."""

from __future__ import annotations

import asyncio
import json
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

from schemas import trace_wire, wire
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


def _gauge(text: str, name: str, topic: str, partition: int) -> float | None:
    wanted = {f'topic="{topic}"', f'partition="{partition}"'}
    for labels, value in re.findall(rf"^{name}\{{([^}}]*)\}} (\S+)$", text, re.M):
        if set(labels.split(",")) == wanted:
            return float(value)
    return None


def _wait(what: str, check: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def gap_topic(stack: Stack) -> Iterator[dict[str, str]]:
    """One-partition metrics and traces topics of their own and the overrides that point a
    writer at them."""
    topic = f"sluice.test-gap-{uuid.uuid4().hex[:8]}"
    overrides = {
        "SLUICE_KAFKA_TOPIC": topic,
        "SLUICE_KAFKA_TRACES_TOPIC": f"{topic}.traces",
        "SLUICE_KAFKA_PARTITIONS": "1",
        "SLUICE_WRITER_GROUP_ID": f"sluice-writer-gap-{uuid.uuid4().hex[:8]}",
        "SLUICE_WRITER_METRICS_PORT": str(_free_port()),
    }
    stack.run_cli("migrate", **overrides)
    yield overrides


def _metric_records(run_id: str) -> list[bytes]:
    return [
        wire.encode(
            run_id, uuid.uuid4().hex, int(time.time() * 1000), [("m", float(i), 1000 + i, i, False)]
        )
        for i in range(RECORDS)
    ]


def _trace_records(trace_id: str, experiment_id: int) -> list[bytes]:
    """One span a record: span i has id i and starts at i."""
    return [
        trace_wire.encode(
            trace_wire.SpanBatch(
                v=1,
                trace_id=trace_id,
                experiment_id=experiment_id,
                event_id=uuid.uuid4().hex,
                received_at_ms=int(time.time() * 1000),
                spans=[
                    trace_wire.WireSpan(
                        span_id=f"{i:016x}",
                        parent_span_id=None,
                        name=f"s{i}",
                        span_type=None,
                        status="OK",
                        start_ns=1_700_000_000_000_000_000 + i,
                        end_ns=1_700_000_000_000_000_000 + i + 1,
                        proto=b"",
                    )
                ],
            )
        )
        for i in range(RECORDS)
    ]


async def _produce_then_delete(stack: Stack, topic: str, key: str, records: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, acks="all")
    await producer.start()
    try:
        for record in records:
            await producer.send_and_wait(topic, record, key=key.encode())
    finally:
        await producer.stop()
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap)
    await admin.start()
    try:
        await admin.delete_records({TopicPartition(topic, 0): RecordsToDelete(DELETED)})
    finally:
        await admin.close()


async def _stored(stack: Stack, kind: str, owner: str) -> list[int]:
    """The numbers of the stored records: metric steps of run ``owner``, or span ids of trace
    ``owner``."""
    sql = (
        "SELECT step AS n FROM metrics WHERE run_uuid = $1 AND key = 'm' ORDER BY step"
        if kind == "metrics"
        else "SELECT span_id AS n FROM trace_spans WHERE trace_id = $1 ORDER BY span_id"
    )
    conn = await asyncpg.connect(stack.dsn)
    try:
        rows = await conn.fetch(sql, owner)
    finally:
        await conn.close()
    return [int(str(r["n"]), 16 if kind == "traces" else 10) for r in rows]


@pytest.mark.parametrize("kind", ["metrics", "traces"])
def test_a_gap_holds_the_partition_until_acknowledged(
    stack: Stack, sluice_url: str, gap_topic: dict[str, str], kind: str
) -> None:
    client = MlflowClient(sluice_url)
    experiment_id = client.create_experiment(f"gap-{uuid.uuid4().hex[:8]}")
    if kind == "metrics":
        topic, group_suffix = gap_topic["SLUICE_KAFKA_TOPIC"], ""
        owner = client.create_run(experiment_id).info.run_id
        records = _metric_records(owner)
    else:
        topic, group_suffix = gap_topic["SLUICE_KAFKA_TRACES_TOPIC"], ".traces"
        owner = f"tr-{uuid.uuid4().hex}"
        records = _trace_records(owner, int(experiment_id))
    asyncio.run(_produce_then_delete(stack, topic, owner, records))

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
            lambda: _gauge(_get(f"{health}/metrics")[1], gauge, topic, 0) == DELETED,
        )
        assert _get(f"{health}/health/ready")[0] == 503
        live = _get(f"{health}/health/live")
        assert live[0] == 200
        assert json.loads(live[1]) == {"status": "ok", "loops": {"metrics": "ok", "traces": "ok"}}
        assert asyncio.run(_stored(stack, kind, owner)) == []  # nothing jumped over the gap
        assert "below the partition's log start" in log_path.read_text()

        ack = subprocess.run(
            [sys.executable, "-m", "sluice.cli", "acknowledge-gap"]
            + (["--traces"] if kind == "traces" else []),
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
        numbers = list(range(DELETED, RECORDS))
        _wait(
            "the records after the gap",
            lambda: asyncio.run(_stored(stack, kind, owner)) == numbers,
        )
        metrics = _get(f"{health}/metrics")[1]
        assert _gauge(metrics, gauge, topic, 0) == 0
        _wait(
            "lag 0",
            lambda: (
                _gauge(_get(f"{health}/metrics")[1], "sluice_writer_lag_records", topic, 0) == 0
            ),
        )
        assert _get(f"{health}/health/ready")[0] == 200
        group = gap_topic["SLUICE_WRITER_GROUP_ID"] + group_suffix
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
