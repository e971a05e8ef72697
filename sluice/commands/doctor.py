"""``sluice doctor``: check a running deployment against this checkout's configuration.

Checks (each one a function returning a :class:`Check`; a dependency that does not answer is a
failed check, never a traceback):

* ``schema``: applied migrations and their checksums vs the shipped files;
* ``topics``: every topic of the deployment (metrics, traces, their DLQs, webhooks) exists with
  the configured partitions, replication factor and min.insync.replicas (retention is shown);
* ``instances``: every running instance's ``/health/config`` against this configuration
  (names each setting that differs) and their ``config_hash`` against each other;
* ``offsets``: the writers' stored offsets (metrics and traces topics) vs Kafka's log start
  (a gap retention made) and end (a stored offset past the end means the topic was recreated);
* ``replication``: the server is a primary, its replicas stream, replay lag is small, and at
  least ``--replicas`` of them exist.

Human output by default, ``--json`` for machines; exit code 0 only when every check passed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp
import orjson
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from sluice import kafka, pg, schema
from sluice.config import Settings
from sluice.errors import StartupError
from sluice.settings_doc import PER_INSTANCE, config_hash, effective

REPLICATION_LAG_LIMIT_S = 30.0
_TOPIC_SETTINGS = ("min.insync.replicas", "retention.ms", "retention.bytes")


@dataclass(slots=True)
class Check:
    name: str
    ok: bool = True
    detail: list[str] = field(default_factory=list)  # what was seen
    problems: list[str] = field(default_factory=list)  # what is wrong (ok is False)

    def fail(self, problem: str) -> None:
        self.ok = False
        self.problems.append(problem)


@dataclass(frozen=True, slots=True)
class Options:
    instances: list[str]  # base URLs of running processes (health/metrics port)
    replicas: int = 0  # streaming replicas the primary must have


def default_instances(settings: Settings) -> list[str]:
    """Where `sluice up` (and a default deployment) runs its processes."""
    urls = [
        f"http://{settings.ingest.host}:{settings.ingest.port}",
        f"http://{settings.api.host}:{settings.api.port}",
    ]
    urls += [
        f"http://{settings.writer.host}:{settings.writer.metrics_port + i}"
        for i in range(settings.writer.processes)
    ]
    return urls


async def run_checks(settings: Settings, options: Options) -> list[Check]:
    checks: list[tuple[str, Callable[[Check], Awaitable[None]]]] = [
        ("schema", lambda c: check_schema(settings, c)),
        ("topics", lambda c: check_topics(settings, c)),
        ("instances", lambda c: check_instances(settings, options.instances, c)),
        ("offsets", lambda c: check_offsets(settings, c)),
        ("replication", lambda c: check_replication(settings, options.replicas, c)),
    ]
    return list(await asyncio.gather(*(_guarded(name, fn) for name, fn in checks)))


async def _guarded(name: str, fn: Callable[[Check], Awaitable[None]]) -> Check:
    check = Check(name)
    try:
        async with asyncio.timeout(60):
            await fn(check)
    except (StartupError, OSError, TimeoutError) as exc:
        check.fail(str(exc) or type(exc).__name__)
    return check


# --- schema ---------------------------------------------------------------------------------
async def check_schema(settings: Settings, check: Check) -> None:
    conn = await pg.connect(settings.pg)
    try:
        done = await schema.applied(conn)
    finally:
        await conn.close()
    shipped = schema.available()
    check.detail.append(f"{len(done)} of {len(shipped)} migrations applied")
    for problem in schema.mismatches(done, shipped):
        check.fail(problem)
    if any(row.checksum is None for row in done):
        check.detail.append("some migrations have no checksum yet (run `sluice migrate`)")


# --- topics ---------------------------------------------------------------------------------
async def check_topics(settings: Settings, check: Check) -> None:
    cfg = settings.kafka
    admin = AIOKafkaAdminClient(bootstrap_servers=cfg.bootstrap, request_timeout_ms=15_000)
    await kafka.start(admin, cfg)
    try:
        for topic in kafka.deployment_topics(cfg):
            await _check_topic(admin, settings, topic, check)
    finally:
        await admin.close()


async def _check_topic(
    admin: AIOKafkaAdminClient, settings: Settings, topic: str, check: Check
) -> None:
    cfg = settings.kafka
    described = {t["topic"]: t for t in await admin.describe_topics([topic])}
    entry = described.get(topic)
    if entry is None or entry["error_code"] != 0 or not entry["partitions"]:
        check.fail(f"topic {topic} does not exist (run `sluice migrate`)")
        return
    partitions = len(entry["partitions"])
    rf = min(len(p["replicas"]) for p in entry["partitions"])
    configs = await _topic_configs(admin, topic)
    check.detail.append(
        f"{topic}: {partitions} partitions, replication factor {rf},"
        f" min.insync.replicas {configs.get('min.insync.replicas')},"
        f" retention.ms {configs.get('retention.ms')}"
    )
    if partitions != cfg.partitions:
        check.fail(
            f"topic {topic} has {partitions} partitions, SLUICE_KAFKA_PARTITIONS={cfg.partitions}"
            " (the read fence would wait on the wrong partition)"
        )
    if rf != cfg.replication_factor:
        check.fail(
            f"topic {topic} has replication factor {rf},"
            f" SLUICE_KAFKA_REPLICATION_FACTOR={cfg.replication_factor}"
        )
    isr = configs.get("min.insync.replicas")
    if isr is not None and int(isr) != cfg.min_insync_replicas:
        check.fail(
            f"topic {topic} has min.insync.replicas={isr},"
            f" SLUICE_KAFKA_MIN_INSYNC_REPLICAS={cfg.min_insync_replicas}"
        )


async def _topic_configs(admin: AIOKafkaAdminClient, topic: str) -> dict[str, str]:
    resource = ConfigResource(ConfigResourceType.TOPIC, topic, configs=None)
    found: dict[str, str] = {}
    for response in await admin.describe_configs([resource]):
        for res in response.to_object()["resources"]:
            for entry in res["config_entries"]:
                if entry["config_names"] in _TOPIC_SETTINGS:
                    found[entry["config_names"]] = entry["config_value"]
    return found


# --- instances ------------------------------------------------------------------------------
async def check_instances(settings: Settings, urls: list[str], check: Check) -> None:
    mine = effective(settings)
    hashes: dict[str, str] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        for url in urls:
            doc = await _instance_config(session, url, check)
            if doc is None:
                continue
            hashes[url] = str(doc.get("config_hash"))
            check.detail.append(
                f"{url}: version {doc.get('version')}, schema {doc.get('schema')},"
                f" config {doc.get('config_hash')}"
            )
            for problem in config_differences(mine, doc.get("settings", {})):
                check.fail(f"{url}: {problem}")
    if len(set(hashes.values())) > 1:
        check.fail(f"instances run different configurations: {hashes}")
    elif hashes and next(iter(hashes.values())) != config_hash(settings):
        check.fail("the instances' configuration hash differs from this checkout's")


async def _instance_config(
    session: aiohttp.ClientSession, url: str, check: Check
) -> dict[str, Any] | None:
    try:
        async with session.get(f"{url}/health/config") as resp:
            if resp.status != 200:
                check.fail(f"{url}: /health/config answered {resp.status}")
                return None
            doc: dict[str, Any] = await resp.json()
            return doc
    except (aiohttp.ClientError, TimeoutError) as exc:
        check.fail(f"{url}: not answering ({type(exc).__name__})")
        return None


def config_differences(mine: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    """Pure: deployment-wide settings whose values differ, one sentence each."""
    return [
        f"{name} is {theirs.get(name)!r} there, {value!r} here"
        for name, value in sorted(mine.items())
        if name not in PER_INSTANCE and theirs.get(name) != value
    ]


# --- offsets --------------------------------------------------------------------------------
async def check_offsets(settings: Settings, check: Check) -> None:
    # The topics the writers consume and store offsets for (webhooks use a consumer group).
    for topic in (settings.kafka.topic, settings.kafka.traces_topic):
        await _check_topic_offsets(settings, topic, check)


async def _check_topic_offsets(settings: Settings, topic: str, check: Check) -> None:
    conn = await pg.connect(settings.pg)
    try:
        rows = await conn.fetch(
            "SELECT partition, next_offset FROM writer_offsets WHERE topic = $1", topic
        )
    finally:
        await conn.close()
    stored = {r["partition"]: r["next_offset"] for r in rows}
    if not stored:
        check.detail.append(f"no stored offsets for {topic} yet")
        return
    starts, ends = await _log_bounds(settings, topic, list(stored))
    lag = sum(max(0, ends.get(p, 0) - o) for p, o in stored.items())
    check.detail.append(f"{topic}: {len(stored)} partitions stored, {lag} records behind")
    acknowledge = "sluice acknowledge-gap"
    if topic == settings.kafka.traces_topic:
        acknowledge += " --traces"
    for problem in offset_problems(stored, starts, ends, acknowledge):
        check.fail(f"{topic} {problem}")


async def _log_bounds(
    settings: Settings, topic: str, partitions: list[int]
) -> tuple[dict[int, int], dict[int, int]]:
    consumer = kafka.create_consumer(settings.kafka, group_id=None)
    await kafka.start(consumer, settings.kafka)
    try:
        tps = [TopicPartition(topic, p) for p in partitions]
        starts = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    return {tp.partition: o for tp, o in starts.items()}, {
        tp.partition: o for tp, o in ends.items()
    }


def offset_problems(
    stored: dict[int, int],
    starts: dict[int, int],
    ends: dict[int, int],
    acknowledge: str = "sluice acknowledge-gap",
) -> list[str]:
    """Pure: stored offsets outside the partition's log, one sentence each; ``acknowledge`` is
    the command that accepts a gap of this topic."""
    problems = []
    for partition, offset in sorted(stored.items()):
        if partition in starts and offset < starts[partition]:
            problems.append(
                f"partition {partition}: stored offset {offset} is below the log start"
                f" {starts[partition]} ({starts[partition] - offset} records lost to retention;"
                f" `{acknowledge}` after recovering them)"
            )
        if partition in ends and offset > ends[partition]:
            problems.append(
                f"partition {partition}: stored offset {offset} is past the log end"
                f" {ends[partition]} (was the topic recreated?)"
            )
    return problems


# --- replication ----------------------------------------------------------------------------
async def check_replication(settings: Settings, expected: int, check: Check) -> None:
    conn = await pg.connect(settings.pg)
    try:
        if await conn.fetchval("SELECT pg_is_in_recovery()"):
            check.fail("SLUICE_PG_DSN points at a standby (read-only): point it at the primary")
            return
        rows = await conn.fetch(
            "SELECT application_name, state, sync_state,"
            " COALESCE(EXTRACT(epoch FROM replay_lag), 0)::float8 AS lag_s"
            " FROM pg_stat_replication"
        )
    finally:
        await conn.close()
    check.detail.append(f"primary with {len(rows)} replica(s)")
    streaming = 0
    for row in rows:
        name, lag = row["application_name"] or "replica", row["lag_s"]
        check.detail.append(f"{name}: {row['state']} ({row['sync_state']}), replay lag {lag:.1f} s")
        if row["state"] != "streaming":
            check.fail(f"replica {name} is {row['state']}, not streaming")
        else:
            streaming += 1
        if lag > REPLICATION_LAG_LIMIT_S:
            check.fail(f"replica {name} is {lag:.0f} s behind")
    if streaming < expected:
        check.fail(f"{expected} streaming replica(s) expected, {streaming} found")


# --- output ---------------------------------------------------------------------------------
def render(checks: list[Check], *, as_json: bool) -> str:
    if as_json:
        doc = {"ok": all(c.ok for c in checks), "checks": [asdict(c) for c in checks]}
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode()
    lines = []
    for check in checks:
        lines.append(f"{'ok  ' if check.ok else 'FAIL'}  {check.name}")
        lines += [f"        {line}" for line in check.detail]
        lines += [f"      ! {line}" for line in check.problems]
    failed = [c.name for c in checks if not c.ok]
    lines.append(
        "all checks passed" if not failed else f"{len(failed)} failed: {', '.join(failed)}"
    )
    return "\n".join(lines)
