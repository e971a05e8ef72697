"""``sluice migrate``: apply schemas/sql/NNNN_*.sql in order and create the Kafka topic.

Safe to run from several processes at once: PostgreSQL migrations run under an advisory lock
and each one is recorded in ``schema_migrations`` in the same transaction as its DDL.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from schemas.wire import dlq_topic
from sluice.config import KafkaConfig, PgConfig

log = logging.getLogger(__name__)

# Arbitrary constant shared by every `sluice migrate`; serialises concurrent runs.
_MIGRATION_LOCK_KEY = 0x51_1C_E0_01
_FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    """Migrations shipped in the ``schemas`` package, in version order."""
    found = []
    for entry in resources.files("schemas").joinpath("sql").iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text()))
    return sorted(found, key=lambda m: m.version)


async def migrate_pg(cfg: PgConfig) -> list[str]:
    """Apply pending migrations; returns the names applied now."""
    conn = await asyncpg.connect(cfg.dsn, timeout=cfg.acquire_timeout_s)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK_KEY)
        try:
            return await _apply_pending(conn)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK_KEY)
    finally:
        await conn.close()


async def _apply_pending(conn: asyncpg.Connection) -> list[str]:
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version int PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
    applied = []
    for migration in available():
        if migration.version in done:
            continue
        async with conn.transaction():
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                migration.version,
                migration.name,
            )
        log.info("migration applied", extra={"migration": migration.name})
        applied.append(migration.name)
    return applied


async def ensure_topics(cfg: KafkaConfig) -> list[str]:
    """Create the metrics and traces topics and their dead-letter topics if missing; returns
    those created."""
    names = (cfg.topic, dlq_topic(cfg.topic), cfg.traces_topic, dlq_topic(cfg.traces_topic))
    return [name for name in names if await _ensure_topic(cfg, name)]


async def _ensure_topic(cfg: KafkaConfig, name: str) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=cfg.bootstrap, request_timeout_ms=15_000)
    await admin.start()
    try:
        topic = NewTopic(
            name=name,
            num_partitions=cfg.partitions,
            replication_factor=cfg.replication_factor,
            topic_configs={
                "min.insync.replicas": str(cfg.min_insync_replicas),
                "unclean.leader.election.enable": "false",
            },
        )
        response = await admin.create_topics([topic])
        _name, code, *message = response.topic_errors[0]
        if code == TopicAlreadyExistsError.errno:
            return False
        if code != 0:
            raise RuntimeError(f"creating topic {name} failed: error {code} {message}")
        log.info("topic created", extra={"topic": name, "partitions": cfg.partitions})
        return True
    finally:
        await admin.close()


async def migrate_all(pg: PgConfig, kafka: KafkaConfig) -> None:
    """Everything `sluice migrate` does: PostgreSQL schema, then Kafka topics."""
    await migrate_pg(pg)
    await ensure_topics(kafka)
