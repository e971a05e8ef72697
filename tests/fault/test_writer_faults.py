"""Issue 6, faults 1, 2, 7 and 8: the writer under SIGKILL mid-transaction, a zombie writer,
poison records and runs deleted while their records wait in Kafka."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid

import aiohttp
import asyncpg
import orjson

from schemas import wire
from tests.fault.faults import (
    EndlessLoad,
    converge,
    drained,
    end_offsets,
    free_port,
    produce_raw,
    read_all,
    scrape,
    start_report,
    stored_offsets,
)
from tests.fault.oracle import Oracle, create_run, stream, wait_until
from tests.stack import Stack

# A SIGKILLed or SIGSTOPped writer loses its partitions after 3 s instead of 10 s (the test
# Kafka accepts sessions down to 3 s: SLUICE_KAFKA_GROUP_MIN_SESSION_MS in tests/stack.py).
SESSION_S = 3
SESSION_MS = str(SESSION_S * 1000)
KILLS = 5

# A writer transaction that has started writing chunks: the COPY into metric_chunks (running or
# just run) and the statements that follow it, up to COMMIT. (Chunks made the part after the
# COPY too short to catch reliably on its own.)
_OPEN_FLUSH = """
SELECT pid, xact_start, left(query, 40) AS query FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL
  AND (query LIKE 'COPY %metric_chunks%' OR query LIKE 'COPY %staging_latest%'
       OR query LIKE '%INSERT INTO latest_metrics%' OR query LIKE 'UPDATE writer_offsets%')
"""


async def _new_oracle(stack: Stack, name: str) -> Oracle:
    async with aiohttp.ClientSession() as session:
        run_id = await create_run(session, stack.url("api"), f"{name}-{uuid.uuid4().hex[:8]}")
    return Oracle(run_id)


def _restart_writer(stack: Stack, **overrides: str) -> None:
    if "writer" in stack.processes:
        stack.kill("writer", signal.SIGTERM)
    stack.start("writer", **overrides)


async def _catch_open_flush(conn: asyncpg.Connection, deadline_s: float = 60) -> asyncpg.Record:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        row = await conn.fetchrow(_OPEN_FLUSH)
        if row is not None:
            return row
        await asyncio.sleep(0.005)
    raise AssertionError("no writer transaction seen between COPY and COMMIT")


async def test_writer_sigkill_between_copy_and_commit(stack: Stack) -> None:
    """Fault 1: SIGKILL the writer while PostgreSQL shows its flush transaction past the COPY
    (COPY metric_chunks / staging_latest, INSERT INTO latest_metrics, UPDATE writer_offsets
    running or just run), five
    times, restarting it each time. The transaction rolls back; the restarted writer seeks to
    the stored offset and replays."""
    report = start_report("1 writer SIGKILL between COPY and COMMIT x5")
    oracle = await _new_oracle(stack, "kill-mid-flush")
    await asyncio.to_thread(stack.kill, "writer", signal.SIGKILL)  # let a backlog build
    load = asyncio.create_task(stream(oracle, stack.url("ingest"), requests=150, concurrency=6))
    conn = await asyncpg.connect(stack.dsn)
    caught: list[str] = []
    try:
        await wait_until(lambda: _acked(oracle, 40), deadline_s=120)
        for _ in range(KILLS):
            await asyncio.to_thread(
                stack.start, "writer", SLUICE_KAFKA_SESSION_TIMEOUT_MS=SESSION_MS
            )
            row = await _catch_open_flush(conn)
            os.kill(stack.processes["writer"].pid, signal.SIGKILL)
            still_open = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND xact_start = $2",
                row["pid"],
                row["xact_start"],
            )
            caught.append(f"{row['query'][:24]}(open={still_open})")
            await asyncio.to_thread(stack.kill, "writer", signal.SIGKILL)
    finally:
        await conn.close()
        if "writer" not in stack.processes:
            await asyncio.to_thread(stack.start, "writer")
    await load
    print(f"killed during: {caught}")
    assert len(caught) == KILLS
    await converge(stack, oracle, report)


async def _acked(oracle: Oracle, requests: int) -> bool:
    return oracle.requests_acked >= requests


async def test_zombie_writer_is_fenced(stack: Stack) -> None:
    """Fault 2: writer A holds an unflushed batch (2 s batches) and is SIGSTOPped past the
    3 s session timeout; writer B joins, gets every partition and commits; SIGCONT A: its
    offset update matches 0 rows (LostOwnership), it rolls back and re-seeks."""
    report = start_report("2 zombie writer (SIGSTOP past session timeout, SIGCONT)")
    await asyncio.to_thread(
        _restart_writer,
        stack,
        SLUICE_WRITER_BATCH_MAX_AGE_S="2.0",
        SLUICE_WRITER_BATCH_MAX_ROWS="10000000",
        SLUICE_KAFKA_SESSION_TIMEOUT_MS=SESSION_MS,
    )
    oracle = await _new_oracle(stack, "zombie")
    load = EndlessLoad(oracle, stack.url("ingest"), concurrency=2, points=200)
    zombie = stack.processes["writer"]
    port_b = free_port()
    try:
        # A owns the run's partition once it committed there; half a batch age later it holds
        # about 1 s of records it has not flushed.
        partition = wire.partition_for(oracle.run_id, 4)
        start = (await stored_offsets(stack.dsn, stack.topic)).get(partition, 0)

        async def a_committed() -> bool:
            now = (await stored_offsets(stack.dsn, stack.topic)).get(partition, 0)
            return now > start

        await wait_until(a_committed, deadline_s=60)
        await asyncio.sleep(1.0)
        zombie.send_signal(signal.SIGSTOP)
        stopped_at = time.monotonic()
        at_stop = (await stored_offsets(stack.dsn, stack.topic)).get(partition, 0)
        await asyncio.to_thread(
            stack.start,
            "writer",
            "writer-b",
            port_b,
            SLUICE_WRITER_METRICS_PORT=str(port_b),
            SLUICE_KAFKA_SESSION_TIMEOUT_MS=SESSION_MS,
        )

        async def b_took_over() -> bool:
            # A is stopped: only B can have moved the run's partition since.
            now = (await stored_offsets(stack.dsn, stack.topic)).get(partition, 0)
            return now > at_stop and time.monotonic() - stopped_at > SESSION_S + 3

        await wait_until(b_took_over, deadline_s=60)
        zombie.send_signal(signal.SIGCONT)

        async def zombie_fenced() -> bool:
            return scrape(stack.ports.writer, "sluice_writer_lost_ownership_total") > 0 or (
                "committed by another writer" in stack.log_path("writer").read_text()
            )

        await wait_until(zombie_fenced, deadline_s=60)
        counter = scrape(stack.ports.writer, "sluice_writer_lost_ownership_total")
        print(f"zombie lost-ownership counter={counter} (else fenced on revoke, see its log)")
        await load.stop()
        await drained(stack)
    finally:
        zombie.send_signal(signal.SIGCONT)
        await load.stop()
        if "writer-b" in stack.processes:
            await asyncio.to_thread(stack.kill, "writer-b", signal.SIGTERM)
        await asyncio.to_thread(_restart_writer, stack)
    await converge(stack, oracle, report)


async def test_poison_records_dead_lettered(stack: Stack) -> None:
    """Fault 7a: garbage bytes, an unknown schema version and a valid envelope with invalid
    content, produced straight onto a run's partition, go to ``<topic>.dlq`` with a reason
    header and are counted; valid records behind them are stored (the partition never stalls)."""
    report = start_report("7 poison records -> DLQ, partition keeps moving")
    oracle = await _new_oracle(stack, "poison")
    partition = wire.partition_for(oracle.run_id, 4)
    envelope = {
        "v": 1,
        "type": "metrics",
        "run_id": oracle.run_id,
        "event_id": "e",
        "received_at_ms": 1,
        "metrics": [["", 1.0, 1, 1, False]],
    }
    poison = [
        b"\x00\xff garbage \xfe",
        orjson.dumps({**envelope, "v": 99}),
        orjson.dumps(envelope),
    ]
    dlq = wire.dlq_topic(stack.topic)
    before = (await end_offsets(stack.bootstrap, dlq)).get(partition, 0)
    counted = scrape(stack.ports.writer, "sluice_writer_dlq_total")
    await produce_raw(stack.bootstrap, stack.topic, partition, poison, oracle.run_id.encode())
    await stream(oracle, stack.url("ingest"), requests=20, concurrency=4)
    await converge(stack, oracle, report)
    records = await read_all(stack.bootstrap, dlq, expect=before + 3)
    mine = [r for r in records if r.value in poison]
    reasons = [dict(r.headers)["reason"].decode() for r in mine]
    print(f"dead-lettered: {reasons}")
    assert len(mine) == 3 and all(reasons)
    assert scrape(stack.ports.writer, "sluice_writer_dlq_total") - counted == 3


async def test_dlq_limit_stops_a_writer_fed_only_garbage(stack: Stack) -> None:
    """Fault 7b: a writer on a topic holding only garbage dead-letters up to the DlqLimit
    (500 of the last 1000), then stops with a non-zero exit; its stored offset never passes
    the records it dead-lettered (the refused ones stay for a fixed deploy)."""
    topic = f"sluice.test-{uuid.uuid4().hex[:8]}.garbage"
    overrides = {"SLUICE_KAFKA_TOPIC": topic, "SLUICE_KAFKA_PARTITIONS": "1"}
    await asyncio.to_thread(stack.run_cli, "migrate", **overrides)
    port = free_port()
    await asyncio.to_thread(
        stack.start,
        "writer",
        "writer-garbage",
        port,
        SLUICE_WRITER_METRICS_PORT=str(port),
        SLUICE_WRITER_GROUP_ID=f"garbage-{uuid.uuid4().hex[:8]}",
        **overrides,
    )
    process = stack.processes["writer-garbage"]
    try:
        await produce_raw(stack.bootstrap, topic, 0, [b"garbage %d" % i for i in range(1200)])
        code = await asyncio.to_thread(process.wait, 60)
    finally:
        if process.poll() is None:
            process.kill()
        stack.processes.pop("writer-garbage")
    dead = (await end_offsets(stack.bootstrap, wire.dlq_topic(topic))).get(0, 0)
    stored = (await stored_offsets(stack.dsn, topic)).get(0, 0)
    print(
        f"FAULT 7 DlqLimit: writer exit={code} dead-lettered={dead} stored offset={stored} of 1200"
    )
    assert code != 0
    assert 0 < dead <= 501
    assert stored <= dead < 1200


async def test_run_deleted_while_queued_is_quarantined(stack: Stack) -> None:
    """Fault 8: points acknowledged for a run that is deleted before the writer stores them
    are quarantined (``quarantined_metrics`` + sluice_writer_quarantined_total), never stored
    into the deleted run; the writer keeps going and stores the other run's points.

    The api's runs/delete waits for the read fence (queued points stored first), so with the
    writer down it answers 429. The run is therefore deleted the way that delete does it once
    its fence passed -- ``lifecycle_stage = 'deleted'`` in PostgreSQL -- which is the race it
    leaves open: points acknowledged between its fence and its commit (ingest's run cache
    learns of the delete only by NOTIFY after the commit)."""
    report = start_report("8 run deleted after its records were queued")
    doomed = await _new_oracle(stack, "doomed")
    kept = await _new_oracle(stack, "kept")
    await asyncio.to_thread(stack.kill, "writer", signal.SIGKILL)
    try:
        await stream(
            doomed, stack.url("ingest"), requests=10, concurrency=2, points_per_request=100
        )
        await _mark_deleted(stack, doomed.run_id)
        await stream(kept, stack.url("ingest"), requests=10, concurrency=2, points_per_request=100)
    finally:
        await asyncio.to_thread(stack.start, "writer")
    await converge(stack, kept, report)
    conn = await asyncpg.connect(stack.dsn)
    try:
        quarantined = await conn.fetch(
            "SELECT key, step, timestamp, value FROM quarantined_metrics WHERE run_uuid = $1",
            doomed.run_id,
        )
        stored = await conn.fetchval(
            "SELECT count(*) FROM metrics WHERE run_uuid = $1", doomed.run_id
        )
    finally:
        await conn.close()
    points = {(r["key"], r["step"], r["timestamp"], r["value"]) for r in quarantined}
    counter = scrape(stack.ports.writer, "sluice_writer_quarantined_total")
    print(
        f"FAULT 8 quarantine: doomed run acked={len(doomed.acked)} quarantined={len(quarantined)}"
        f" stored in deleted run={stored} counter={counter}"
    )
    assert stored == 0
    assert points >= doomed.acked and points <= doomed.sent
    assert counter >= len(doomed.acked)


async def _mark_deleted(stack: Stack, run_id: str) -> None:
    conn = await asyncpg.connect(stack.dsn)
    try:
        status = await conn.execute(
            "UPDATE runs SET lifecycle_stage = 'deleted',"
            " deleted_time = (extract(epoch FROM now()) * 1000)::bigint WHERE run_uuid = $1",
            run_id,
        )
    finally:
        await conn.close()
    assert status == "UPDATE 1"
