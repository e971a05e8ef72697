"""Issue 6, bad input: every hostile request of ``tests/fault/hostile.py`` gets MLflow's answer
(or Sluice's documented one where MLflow answers 500 or has no limit), never a 500, and a
rejected request produces nothing to Kafka (the topic's end offsets do not move)."""

from __future__ import annotations

import uuid

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.fault.faults import vm_rss_kb
from tests.fault.hostile import send as send_hostile
from tests.fault.hostile import table
from tests.fault.oracle import create_run
from tests.stack import Stack

RSS_BOUND_KB = 200 * 1024  # a 1 GB gzip bomb or a 5 MB body must not be buffered whole


async def test_hostile_requests(stack: Stack) -> None:
    cases = table()
    assert len(cases) >= 60
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.bootstrap, group_id=None)
    await consumer.start()
    tps = [TopicPartition(stack.topic, p) for p in range(4)]
    pid = stack.processes["ingest"].pid
    rss_before = vm_rss_kb(pid)
    mismatches: list[str] = []
    produced: list[str] = []
    statuses: dict[int, int] = {}
    try:
        async with aiohttp.ClientSession() as session:
            run_id = await create_run(session, stack.url("api"), f"bad-{uuid.uuid4().hex[:8]}")
            for case in cases:
                before = sum((await consumer.end_offsets(tps)).values())
                got = await send_hostile(session, stack.url(case.service), case, run_id)
                after = sum((await consumer.end_offsets(tps)).values())
                statuses[got[0]] = statuses.get(got[0], 0) + 1
                if got != case.expect:
                    mismatches.append(f"{case.name}: got {got}, MLflow/expected {case.expect}")
                if got[0] != 200 and after != before:
                    produced.append(f"{case.name}: {after - before} record(s) produced")
    finally:
        await consumer.stop()
    growth = vm_rss_kb(pid) - rss_before
    print(
        f"BAD INPUT: {len(cases)} hostile requests, statuses {statuses}, ingest RSS growth"
        f" {growth} kB; mismatches {len(mismatches)}, produced-when-rejected {len(produced)}"
    )
    for line in mismatches + produced:
        print("  " + line)
    assert statuses.get(500, 0) == 0
    assert not produced
    assert growth < RSS_BOUND_KB
    assert not mismatches
