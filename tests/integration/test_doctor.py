"""`sluice doctor` against the running test stack: every check passes there, and each check
has a case that makes it fail and names what differs."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic, RecordsToDelete

from sluice import config, kafka
from sluice.commands import migrate
from sluice.commands.doctor import Check, Options, run_checks
from tests.stack import Stack


def _settings(stack: Stack, **overrides: str) -> config.Settings:
    return config.load(stack.service_env(**overrides))


def _instances(stack: Stack) -> list[str]:
    return [
        f"http://127.0.0.1:{stack.health_port(s)}" for s in ("ingest", "api", "writer", "front")
    ]


async def _checks(stack: Stack, replicas: int = 0, **overrides: str) -> dict[str, Check]:
    options = Options(_instances(stack), replicas)
    return {c.name: c for c in await run_checks(_settings(stack, **overrides), options)}


async def test_every_check_passes_on_the_running_stack(stack: Stack) -> None:
    checks = await _checks(stack)
    assert set(checks) == {"schema", "topics", "instances", "offsets", "replication"}
    assert {name: c.problems for name, c in checks.items() if not c.ok} == {}
    seen = " ".join(checks["topics"].detail)
    for topic in kafka.deployment_topics(_settings(stack).kafka):
        assert f"{topic}:" in seen
    offsets = " ".join(checks["offsets"].detail)
    assert stack.topic in offsets and stack.traces_topic in offsets


def _doctor(stack: Stack, *args: str, **overrides: str) -> subprocess.CompletedProcess[str]:
    urls = [arg for url in _instances(stack) for arg in ("--instance", url)]
    return subprocess.run(
        [sys.executable, "-m", "sluice.cli", "doctor", *urls, *args],
        env=stack.service_env(**overrides),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_the_command_exits_0_when_all_is_well_and_1_naming_what_differs(stack: Stack) -> None:
    healthy = _doctor(stack)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert healthy.stdout.strip().endswith("all checks passed")

    drifted = _doctor(stack, "--json", SLUICE_KAFKA_PARTITIONS="5")
    assert drifted.returncode == 1
    doc = json.loads(drifted.stdout)
    assert doc["ok"] is False
    topics = next(c for c in doc["checks"] if c["name"] == "topics")
    assert (
        f"topic {stack.topic} has 4 partitions, SLUICE_KAFKA_PARTITIONS=5" in topics["problems"][0]
    )
    instances = next(c for c in doc["checks"] if c["name"] == "instances")
    assert any("SLUICE_KAFKA_PARTITIONS is 4 there, 5 here" in p for p in instances["problems"])


@pytest.fixture
async def tampered_db(stack: Stack) -> AsyncIterator[str]:
    name = f"sluice_doctor_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(stack.admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = stack.dsn.rsplit("/", 1)[0] + "/" + name
    try:
        await migrate.migrate_pg(config.PgConfig(dsn=dsn))
        conn = await asyncpg.connect(dsn)
        await conn.execute("UPDATE schema_migrations SET checksum = 'x' WHERE version = 3")
        await conn.close()
        yield dsn
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def test_schema_check_fails_on_a_changed_migration(stack: Stack, tampered_db: str) -> None:
    schema = (await _checks(stack, SLUICE_PG_DSN=tampered_db))["schema"]
    assert not schema.ok
    assert any("0003_registry.sql was changed after it was applied" in p for p in schema.problems)


async def test_topics_check_fails_on_a_missing_topic(stack: Stack) -> None:
    topics = (await _checks(stack, SLUICE_KAFKA_TOPIC="sluice.no-such-topic"))["topics"]
    assert not topics.ok
    assert "topic sluice.no-such-topic does not exist" in topics.problems[0]
    traces = (await _checks(stack, SLUICE_KAFKA_TRACES_TOPIC="sluice.no-traces"))["topics"]
    assert [p for p in traces.problems if "does not exist" in p] == [
        "topic sluice.no-traces does not exist (run `sluice migrate`)",
        "topic sluice.no-traces.dlq does not exist (run `sluice migrate`)",
    ]


async def test_instances_check_names_drift_and_silence(stack: Stack) -> None:
    instances = (await _checks(stack, SLUICE_API_ARTIFACT_ROOT="/srv/elsewhere"))["instances"]
    assert not instances.ok
    assert any(
        "SLUICE_API_ARTIFACT_ROOT is" in p and "'/srv/elsewhere' here" in p
        for p in instances.problems
    )
    options = Options(["http://127.0.0.1:9"], 0)
    silent = {c.name: c for c in await run_checks(_settings(stack), options)}["instances"]
    assert not silent.ok and "not answering" in silent.problems[0]


async def _topic_with_a_gap(stack: Stack) -> str:
    topic = f"sluice.test-doctor-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap)
    await admin.start()
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, acks="all")
    await producer.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        for i in range(5):
            await producer.send_and_wait(topic, b"x", key=str(i).encode(), partition=0)
        await admin.delete_records({TopicPartition(topic, 0): RecordsToDelete(3)})
    finally:
        await producer.stop()
        await admin.close()
    conn = await asyncpg.connect(stack.dsn)
    try:
        await conn.execute(
            "INSERT INTO writer_offsets (topic, partition, next_offset) VALUES ($1, 0, 1)", topic
        )
    finally:
        await conn.close()
    return topic


async def test_offsets_check_fails_on_a_retention_gap(stack: Stack) -> None:
    topic = await _topic_with_a_gap(stack)
    offsets = (await _checks(stack, SLUICE_KAFKA_TOPIC=topic))["offsets"]
    assert not offsets.ok
    assert offsets.problems == [
        f"{topic} partition 0: stored offset 1 is below the log start 3 (2 records lost to retention;"
        " `sluice acknowledge-gap` after recovering them)"
    ]


async def test_replication_check_fails_without_the_expected_replicas(stack: Stack) -> None:
    replication = (await _checks(stack, replicas=1))["replication"]
    assert not replication.ok
    assert replication.problems == ["1 streaming replica(s) expected, 0 found"]
    assert replication.detail == ["primary with 0 replica(s)"]
