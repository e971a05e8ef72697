"""``sluice migrate``: apply schemas/sql/NNNN_*.sql in order and create the Kafka topics.

Safe to run from several processes at once: PostgreSQL migrations run under an advisory lock
and each one is recorded in ``schema_migrations`` (with the SHA-256 of its file) in the same
transaction as its DDL. A migration marked no-transaction (``sluice.schema``) runs statement by
statement and is recorded after its last statement; its statements must be idempotent
(``CREATE INDEX CONCURRENTLY IF NOT EXISTS``) so that a run cut short can simply be repeated.
Migrations already applied are verified against their checksums first: a database whose
history differs from the shipped files is refused, never "repaired".
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import asyncpg
from aiokafka.admin import NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from sluice import kafka, pg, schema
from sluice.config import KafkaConfig, PgConfig, Settings
from sluice.errors import SchemaMismatch, Unreachable

log = logging.getLogger(__name__)

# Arbitrary constant shared by every `sluice migrate`; serialises concurrent runs.
_MIGRATION_LOCK_KEY = 0x51_1C_E0_01


async def command(settings: Settings, *, status: bool, dry_run: bool, wait_s: float = 0.0) -> None:
    """What `sluice migrate [--status] [--dry-run] [--wait-s N]` prints and does."""
    if status or dry_run:
        conn = await pg.connect(settings.pg)
        try:
            done = await schema.applied(conn)
        finally:
            await conn.close()
        print(render_status(done, schema.available(), dry_run=dry_run))
        return
    await retry_while_unreachable(lambda: migrate_all(settings.pg, settings.kafka), wait_s)


RETRY_PAUSE_S = 2.0


async def retry_while_unreachable(
    attempt: Callable[[], Awaitable[None]],
    wait_s: float,
    clock: Callable[[], float] = time.monotonic,
    pause: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Run ``attempt`` until it succeeds, retrying while PostgreSQL or Kafka is unreachable,
    for at most ``wait_s`` seconds (a container started beside its database). Anything else
    (refused credentials, a schema mismatch) is raised at once: waiting would not fix it."""
    deadline = clock() + wait_s
    while True:
        try:
            await attempt()
            return
        except Unreachable as exc:
            if clock() + RETRY_PAUSE_S > deadline:
                raise
            log.warning("dependency unreachable, retrying", extra={"error": str(exc)})
            await pause(RETRY_PAUSE_S)


def render_status(
    done: list[schema.Applied], shipped: list[schema.Migration], *, dry_run: bool
) -> str:
    """Pure: one line per migration (applied / pending / problem)."""
    applied_versions = {row.version for row in done}
    lines = [
        f"{'applied' if m.version in applied_versions else 'pending'}  {m.name}" for m in shipped
    ]
    if dry_run:
        pending = [m for m in shipped if m.version not in applied_versions]
        lines = [f"would apply  {m.name}" for m in pending] or ["nothing to apply"]
    problems = [p for p in schema.mismatches(done, shipped) if not p.startswith("pending")]
    lines += [f"PROBLEM  {p}" for p in problems]
    return "\n".join(lines)


async def migrate_pg(cfg: PgConfig) -> list[str]:
    """Apply pending migrations; returns the names applied now."""
    conn = await pg.connect(cfg)
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
        " applied_at timestamptz NOT NULL DEFAULT now());"
        " ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS checksum text"
    )
    shipped = schema.available()
    done = await schema.applied(conn)
    problems = [p for p in schema.mismatches(done, shipped) if not p.startswith("pending")]
    if problems:
        raise SchemaMismatch("; ".join(problems))
    await _record_missing_checksums(conn, done, shipped)
    applied = []
    for migration in shipped:
        if migration.version in {row.version for row in done}:
            continue
        await _apply(conn, migration)
        log.info("migration applied", extra={"migration": migration.name})
        applied.append(migration.name)
    return applied


async def _record_missing_checksums(
    conn: asyncpg.Connection, done: list[schema.Applied], shipped: list[schema.Migration]
) -> None:
    """Rows applied before checksums existed get the shipped file's checksum: from now on a
    change to that file is noticed."""
    by_version = {m.version: m for m in shipped}
    for row in done:
        if row.checksum is None:
            await conn.execute(
                "UPDATE schema_migrations SET checksum = $2 WHERE version = $1",
                row.version,
                by_version[row.version].checksum,
            )


async def _apply(conn: asyncpg.Connection, migration: schema.Migration) -> None:
    record = (
        "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
        migration.version,
        migration.name,
        migration.checksum,
    )
    if migration.transactional:
        async with conn.transaction():
            await conn.execute(migration.sql)
            await conn.execute(*record)
        return
    # Outside a transaction, one statement at a time (a multi-statement string would be an
    # implicit transaction, which CREATE INDEX CONCURRENTLY refuses).
    for statement in _statements(migration.sql):
        await conn.execute(statement)
    invalid = await conn.fetch(
        "SELECT indexrelid::regclass::text AS name FROM pg_index WHERE NOT indisvalid"
    )
    if invalid:
        names = ", ".join(r["name"] for r in invalid)
        raise SchemaMismatch(
            f"{migration.name}: index build left invalid index(es) {names};"
            " DROP INDEX CONCURRENTLY them and run `sluice migrate` again"
        )
    await conn.execute(*record)


def _statements(sql: str) -> list[str]:
    """Pure: split a no-transaction migration on ``;`` at line ends (such files hold plain DDL,
    no function bodies), dropping comment-only pieces."""
    pieces = [p.strip() for p in sql.split(";\n")]
    code = []
    for piece in pieces:
        lines = [line for line in piece.splitlines() if not line.strip().startswith("--")]
        if "".join(lines).strip().rstrip(";"):
            code.append(piece.rstrip(";"))
    return code


async def ensure_topics(cfg: KafkaConfig) -> list[str]:
    """Create the deployment's topics that are missing; returns those created."""
    return [name for name in kafka.deployment_topics(cfg) if await _ensure_topic(cfg, name)]


async def _ensure_topic(cfg: KafkaConfig, name: str) -> bool:
    admin = kafka.create_admin(cfg)
    await kafka.start(admin, cfg)
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


async def migrate_all(pg_cfg: PgConfig, kafka_cfg: KafkaConfig) -> None:
    """Everything `sluice migrate` does: PostgreSQL schema, then Kafka topics."""
    await migrate_pg(pg_cfg)
    await ensure_topics(kafka_cfg)
