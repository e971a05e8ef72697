"""Shared tools of the fault suite: Kafka offsets and raw records, writer progress, process
memory, /metrics scraping and the per-fault report line (sent/acked/stored/lost/duplicated)."""

from __future__ import annotations

import asyncio
import socket
import time
import urllib.request
from dataclasses import dataclass

import aiohttp
import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from sluice import kafka
from sluice.config import KafkaConfig
from tests.fault.oracle import Oracle, Verdict, stream, verify, wait_until
from tests.stack import Stack


@dataclass
class Report:
    """One line per fault in the test output (the closing note of issue 6 quotes them)."""

    fault: str
    started: float

    def finish(self, oracle: Oracle, verdict: Verdict) -> str:
        line = (
            f"FAULT {self.fault}: {oracle.summary(verdict.stored, verdict.lost, verdict.duplicated)}"
            f" runtime={time.monotonic() - self.started:.1f}s"
        )
        print(line)
        return line


def start_report(fault: str) -> Report:
    return Report(fault, time.monotonic())


def assert_converged(oracle: Oracle, verdict: Verdict, *, all_acked: bool = True) -> None:
    """Stored ⊇ acked, stored ⊆ sent, no duplicates, latest = recomputation."""
    assert verdict.lost == 0, verdict
    assert verdict.duplicated == 0, verdict
    assert verdict.unsent == 0, verdict
    assert verdict.latest_mismatches == 0, verdict
    if all_acked:
        assert oracle.requests_acked > 0
        assert verdict.stored == len(oracle.acked), verdict


async def converge(
    stack: Stack, oracle: Oracle, report: Report, deadline_s: float = 120, *, exact: bool = True
) -> Verdict:
    """Wait until the writers stored everything in Kafka, then check and report. ``exact``:
    every request sent was acknowledged in the end; without it, points refused with a 429 may
    be stored too (a timed-out record can still be delivered) but stored stays ⊆ sent."""
    await drained(stack, deadline_s)
    verdict = await verify(oracle, stack.dsn, stack.url("api"))
    report.finish(oracle, verdict)
    assert_converged(oracle, verdict, all_acked=exact)
    return verdict


# --- Kafka --------------------------------------------------------------------------------
async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        count = await kafka.partition_count(KafkaConfig(bootstrap=bootstrap), topic)
        tps = [TopicPartition(topic, p) for p in range(count)]
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    return {tp.partition: offset for tp, offset in ends.items()}


async def produce_raw(
    bootstrap: str, topic: str, partition: int, values: list[bytes], key: bytes | None = None
) -> None:
    """Produce records straight onto the topic, bypassing ingest (a foreign producer)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, value=v, key=key, partition=partition) for v in values
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def read_all(
    bootstrap: str, topic: str, expect: int, deadline_s: float = 30
) -> list[ConsumerRecord]:
    """Every record of ``topic`` from the beginning, once at least ``expect`` arrived."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        deadline = time.monotonic() + deadline_s
        while len(records) < expect and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for part in batch.values():
                records.extend(part)
        # Anything beyond ``expect`` that is already there.
        for part in (await consumer.getmany(timeout_ms=500)).values():
            records.extend(part)
    finally:
        await consumer.stop()
    return records


# --- writer progress ----------------------------------------------------------------------
async def stored_offsets(dsn: str, topic: str) -> dict[int, int]:
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        rows = await conn.fetch(
            "SELECT partition, next_offset FROM writer_offsets WHERE topic = $1", topic
        )
    finally:
        await conn.close()
    return {r["partition"]: r["next_offset"] for r in rows}


async def drained(stack: Stack, deadline_s: float = 120, topic: str | None = None) -> None:
    """Every record in the topic is stored (writer_offsets reached the end offsets)."""
    name = topic or stack.topic

    async def caught_up() -> bool:
        try:
            ends = await end_offsets(stack.bootstrap, name)
            stored = await stored_offsets(stack.dsn, name)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            return False
        return all(stored.get(p, 0) >= end for p, end in ends.items() if end > 0)

    await wait_until(caught_up, deadline_s)


# --- HTTP ---------------------------------------------------------------------------------
def scrape(port: int, metric: str) -> float:
    """Sum of all samples of ``metric`` (every label set) on a service's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(metric) and line[len(metric)] in " {":
            total += float(line.rsplit(" ", 1)[1])
    return total


async def status_of(url: str, timeout_s: float = 5) -> int:
    """HTTP status of a GET, 0 when the connection failed."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session,
            session.get(url) as response,
        ):
            return response.status
    except (TimeoutError, aiohttp.ClientError):
        return 0


# --- processes ----------------------------------------------------------------------------
def vm_rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EndlessLoad:
    """Rounds of log-batches (distinct points, each retried until acknowledged) until
    ``stop()``: a fault that takes an unknown time always happens under load."""

    def __init__(self, oracle: Oracle, ingest: str, concurrency: int, points: int) -> None:
        self._done = asyncio.Event()
        self._task = asyncio.create_task(self._run(oracle, ingest, concurrency, points))

    async def _run(self, oracle: Oracle, ingest: str, concurrency: int, points: int) -> None:
        first = 0
        while not self._done.is_set():
            rounds = 3 * concurrency
            await stream(
                oracle,
                ingest,
                requests=rounds,
                concurrency=concurrency,
                points_per_request=points,
                first=first,
            )
            first += rounds

    async def stop(self) -> None:
        """Let the current round finish (its requests get acknowledged), then return."""
        self._done.set()
        await self._task
