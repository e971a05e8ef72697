"""Backup and restore with replay: write, back up (online, while the writer runs), write more,
restore the backup, and every acknowledged point is back exactly once -- the points written
after the backup are replayed from Kafka because the offsets came back with the backup.

Runs on a database, topic and writer of its own (the session's services keep theirs)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from schemas import wire
from sluice import config
from tests.stack import Stack

RUN = "backup-run"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def own(stack: Stack) -> Iterator[dict[str, str]]:
    """Overrides naming a fresh database (schema applied, one active run) and topic."""
    database = f"sluice_backup_{uuid.uuid4().hex[:8]}"
    dsn = stack.dsn.rsplit("/", 1)[0] + "/" + database
    overrides = {
        "SLUICE_PG_DSN": dsn,
        "SLUICE_KAFKA_TOPIC": f"sluice.test-backup-{uuid.uuid4().hex[:8]}",
        "SLUICE_KAFKA_PARTITIONS": "2",
        "SLUICE_WRITER_GROUP_ID": f"sluice-writer-backup-{uuid.uuid4().hex[:8]}",
        "SLUICE_WRITER_METRICS_PORT": str(_free_port()),
    }
    asyncio.run(_admin(stack, f'CREATE DATABASE "{database}"'))
    try:
        stack.run_cli("migrate", **overrides)
        asyncio.run(
            _execute(
                dsn,
                "INSERT INTO runs (run_uuid, experiment_id, name, artifact_uri)"
                f" VALUES ('{RUN}', 0, 'r', 'x')",
            )
        )
        yield overrides
    finally:
        asyncio.run(_admin(stack, f'DROP DATABASE "{database}" WITH (FORCE)'))


async def _admin(stack: Stack, sql: str) -> None:
    await _execute(stack.admin_dsn, sql)


async def _execute(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _produce(stack: Stack, topic: str, steps: range) -> None:
    """What ingest does for log-metric: one record per request, acknowledged by Kafka."""
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, acks="all")
    await producer.start()
    try:
        for step in steps:
            points = [("loss", float(step), 1000 + step, step, False)]
            record = wire.encode(RUN, uuid.uuid4().hex, int(time.time() * 1000), points)
            await producer.send_and_wait(
                topic, record, key=RUN.encode(), partition=wire.partition_for(RUN, 2)
            )
    finally:
        await producer.stop()


async def _points(dsn: str) -> list[int]:
    """Every stored point of the run, duplicates included (chunks, not the distinct view)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT unnest(steps) AS step FROM metric_chunks WHERE run_uuid = $1 ORDER BY 1", RUN
        )
    finally:
        await conn.close()
    return [r["step"] for r in rows]


def _wait_points(dsn: str, expected: list[int]) -> None:
    deadline = time.monotonic() + 90
    while (got := asyncio.run(_points(dsn))) != expected:
        assert time.monotonic() < deadline, f"{len(got)} points stored, {len(expected)} expected"
        time.sleep(0.3)


def _start_writer(stack: Stack, own: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "sluice.cli", "writer"],
            env=stack.service_env(**own),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _cli(stack: Stack, own: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "sluice.cli", *args],
        env=stack.service_env(**own),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_restore_replays_every_point_acknowledged_since_the_backup(
    stack: Stack, own: dict[str, str], tmp_path: Path
) -> None:
    dsn, topic = own["SLUICE_PG_DSN"], own["SLUICE_KAFKA_TOPIC"]
    log = tmp_path / "writer.log"
    writer = _start_writer(stack, own, log)
    try:
        asyncio.run(_produce(stack, topic, range(0, 100)))
        _wait_points(dsn, list(range(100)))
        out = _cli(stack, own, "backup", str(tmp_path / "backup"))  # online: the writer runs
        assert f"{topic}: " in out
        asyncio.run(_produce(stack, topic, range(100, 250)))
        _wait_points(dsn, list(range(250)))
    finally:
        writer.terminate()
        assert writer.wait(timeout=60) == 0

    refused = subprocess.run(
        [sys.executable, "-m", "sluice.cli", "restore", str(tmp_path / "backup")],
        env=stack.service_env(**own),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert refused.returncode == 1 and "--clean" in refused.stderr
    _cli(stack, own, "restore", "--clean", str(tmp_path / "backup"))
    assert asyncio.run(_points(dsn)) == list(range(100))  # as of the backup

    writer = _start_writer(stack, own, log)
    try:
        _wait_points(dsn, list(range(250)))  # replayed from Kafka, each point once
        time.sleep(2)  # nothing more arrives (a second replay would show as duplicates)
        assert asyncio.run(_points(dsn)) == list(range(250))
    finally:
        writer.terminate()
        writer.wait(timeout=60)


def test_backup_refuses_a_non_empty_folder(stack: Stack, tmp_path: Path) -> None:
    (tmp_path / "x").write_text("keep me")
    done = subprocess.run(
        [sys.executable, "-m", "sluice.cli", "backup", str(tmp_path)],
        env=stack.service_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == f"sluice backup: {tmp_path} is not empty"
    assert config.load(stack.service_env()).pg.dsn == stack.dsn
