"""Issue 6, fault 5: SIGKILL the leader of the run's partition on a 3-node KRaft cluster
(RF 3, min.insync.replicas 2, unclean election off) five times under load, restarting it each
time (ducktape's hard_bounce): no acknowledged point is lost, none is duplicated."""

from __future__ import annotations

import asyncio
import time
import uuid
from functools import partial
from typing import Any

import aiohttp
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from schemas import wire
from tests.fault.faults import EndlessLoad, converge, start_report
from tests.fault.oracle import Oracle, create_run, wait_until
from tests.stack import Stack

BOUNCES = 5


async def _partition_state(stack: Stack, partition: int) -> dict[str, Any]:
    """Leader, replicas and ISR of ``partition``; retried while the admin client happens to
    ask the node just killed."""
    for _ in range(30):
        admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap, request_timeout_ms=5_000)
        try:
            await admin.start()
            described = await admin.describe_topics([stack.topic])
        except KafkaError:
            await asyncio.sleep(1)
            continue
        finally:
            await admin.close()
        parts: list[dict[str, Any]] = described[0]["partitions"]
        return next(p for p in parts if p["partition"] == partition)
    raise AssertionError("no metadata from any node for 30 s")


async def test_partition_leader_sigkill_x5(cluster3: Stack) -> None:
    stack = cluster3
    report = start_report(f"5 partition leader SIGKILL x{BOUNCES} (3 brokers, RF 3, minISR 2)")
    async with aiohttp.ClientSession() as session:
        run_id = await create_run(session, stack.url("api"), f"leader-{uuid.uuid4().hex[:8]}")
    oracle = Oracle(run_id)
    partition = wire.partition_for(run_id, 4)
    state = await _partition_state(stack, partition)
    assert len(state["replicas"]) == 3
    loader = EndlessLoad(oracle, stack.url("ingest"), concurrency=3, points=100)
    bounces: list[str] = []
    try:
        await wait_until(lambda: _acked(oracle, 12), deadline_s=60)
        for _ in range(BOUNCES):
            leader = int(state["leader"])
            acked = oracle.requests_acked
            killed_at = time.monotonic()
            await asyncio.to_thread(stack.script, "kafka.sh", "kill-node", str(leader))

            async def moved(old: int = leader) -> bool:
                nonlocal state
                state = await _partition_state(stack, partition)
                return state["leader"] not in (old, -1)

            await wait_until(moved, deadline_s=60)
            moved_at = time.monotonic()
            await asyncio.to_thread(stack.script, "kafka.sh", "start-node", str(leader))
            back_at = time.monotonic()
            await wait_until(partial(_acked, oracle, acked + 4), deadline_s=60)
            bounces.append(
                f"{leader}->{state['leader']} (moved {moved_at - killed_at:.1f} s, back in sync"
                f" {back_at - moved_at:.1f} s, acks {time.monotonic() - back_at:.1f} s)"
            )
            state = await _partition_state(stack, partition)
    finally:
        await loader.stop()
    print(f"leader bounces: {bounces}")
    await converge(stack, oracle, report)
    assert len(bounces) == BOUNCES


async def _acked(oracle: Oracle, requests: int) -> bool:
    return oracle.requests_acked >= requests
