"""Acceptance (issue 2, #4): kill -9 the writer, restart Kafka, restart PostgreSQL in the
middle of a 200k-point stream: stored points equal acknowledged points exactly."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import Callable

import aiohttp

from tests.fault.oracle import Oracle, create_run, stream, verify, wait_until
from tests.stack import Stack

REQUESTS = 200  # x 1000 points


async def _run_with_fault(stack: Stack, fault: Callable[[], None], name: str) -> Oracle:
    async with aiohttp.ClientSession() as session:
        run_id = await create_run(session, stack.url("api"), f"{name}-{uuid.uuid4().hex[:8]}")
    oracle = Oracle(run_id)
    load = asyncio.create_task(
        stream(oracle, stack.url("ingest"), requests=REQUESTS, concurrency=8)
    )
    await wait_until(lambda: _acked_at_least(oracle, 60), deadline_s=120)
    await asyncio.to_thread(fault)
    await load
    await _drained(stack, run_id)
    verdict = await verify(oracle, stack.dsn, stack.url("api"))
    print(f"{name}: {oracle.summary(verdict.stored, verdict.lost, verdict.duplicated)}")
    assert oracle.requests_acked == REQUESTS
    assert verdict.lost == 0 and verdict.duplicated == 0 and verdict.unsent == 0
    assert verdict.stored == len(oracle.acked) == REQUESTS * 1000
    assert verdict.latest_mismatches == 0
    return oracle


async def _acked_at_least(oracle: Oracle, requests: int) -> bool:
    return oracle.requests_acked >= requests


async def _drained(stack: Stack, run_id: str) -> None:
    """A read through the api passes the read-your-writes fence only once every acknowledged
    record is stored; retry while the stack is still recovering."""

    async def fenced_read_ok() -> bool:
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"{stack.url('api')}/api/2.0/mlflow/runs/get", params={"run_id": run_id}
            ) as r,
        ):
            return r.status == 200

    await wait_until(fenced_read_ok, deadline_s=120)


async def test_writer_sigkill_mid_stream(stack: Stack) -> None:
    def kill_and_restart_writer() -> None:
        stack.kill("writer", signal.SIGKILL)
        stack.start("writer")

    oracle = await _run_with_fault(stack, kill_and_restart_writer, "writer-kill")
    assert oracle.requests_sent >= REQUESTS


async def test_kafka_restart_mid_stream(stack: Stack) -> None:
    def restart_kafka() -> None:
        stack.script("kafka.sh", "stop")
        stack.script("kafka.sh", "start")

    oracle = await _run_with_fault(stack, restart_kafka, "kafka-restart")
    _wait_services_ready(stack)
    assert oracle.requests_sent >= REQUESTS


async def test_postgres_restart_mid_stream(stack: Stack) -> None:
    def restart_postgres() -> None:
        stack.script("pg.sh", "kill")  # immediate shutdown: crash recovery on start
        stack.script("pg.sh", "start")

    oracle = await _run_with_fault(stack, restart_postgres, "postgres-restart")
    _wait_services_ready(stack)
    assert oracle.requests_sent >= REQUESTS


def _wait_services_ready(stack: Stack) -> None:
    for service in list(stack.processes):
        stack.wait_ready(service)
