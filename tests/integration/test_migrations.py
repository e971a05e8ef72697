"""Upgrading a database that holds data: the previous schema version (every migration shipped
before this branch's first, 0010), with runs, params and metric points in it, is migrated to
the current one by the real `sluice migrate` path. Checksums are verified, services refuse a
database at another version with one clear line, and `--status` shows applied and pending."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from sluice import schema
from sluice.commands import migrate
from sluice.config import PgConfig
from sluice.errors import SchemaMismatch
from tests.stack import Stack

PREVIOUS_BEFORE = 10  # the first migration this version adds


@pytest.fixture
async def old_db(stack: Stack) -> AsyncIterator[str]:
    """A fresh database at the previous schema version, holding a run with data."""
    name = f"sluice_upgrade_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(stack.admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = stack.dsn.rsplit("/", 1)[0] + "/" + name
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "CREATE TABLE schema_migrations (version int PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for m in schema.available():
            if m.version < PREVIOUS_BEFORE:
                async with conn.transaction():
                    await conn.execute(m.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                        m.version,
                        m.name,
                    )
        await _write_data(conn)
        yield dsn
    finally:
        await conn.close()
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def _write_data(conn: asyncpg.Connection) -> None:
    await conn.execute(
        "INSERT INTO runs (run_uuid, experiment_id, name, artifact_uri, lifecycle_stage,"
        " deleted_time) VALUES ('live', 0, 'a', 'x', 'active', NULL),"
        " ('gone', 0, 'b', 'y', 'deleted', 1000)"
    )
    await conn.execute("INSERT INTO params VALUES ('live', 'lr', '0.1')")
    await conn.execute(
        "INSERT INTO metric_chunks (run_uuid, key, n, min_ts, max_ts, min_step, max_step,"
        " step_sorted, first_val, timestamps, steps, vals)"
        " VALUES ('live', 'loss', 3, 1, 3, 0, 2, true, 1.5,"
        " '{1,2,3}', '{0,1,2}', '{1.5,NULL,0.5}')"
    )


async def test_upgrade_keeps_the_data_and_builds_the_new_index(old_db: str) -> None:
    cfg = PgConfig(dsn=old_db)
    with pytest.raises(SchemaMismatch, match=r"pending migrations 0010_runs_deleted_index\.sql"):
        await schema.require_current(cfg)

    applied = await migrate.migrate_pg(cfg)
    assert applied == [m.name for m in schema.available() if m.version >= PREVIOUS_BEFORE]
    await schema.require_current(cfg)  # services start now

    conn = await asyncpg.connect(old_db)
    try:
        points = await conn.fetch(
            "SELECT step, value, is_nan FROM metrics WHERE run_uuid = 'live' ORDER BY step"
        )
        assert [tuple(p) for p in points] == [(0, 1.5, False), (1, 0.0, True), (2, 0.5, False)]
        assert await conn.fetchval("SELECT value FROM params WHERE run_uuid = 'live'") == "0.1"
        valid = await conn.fetchval(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'runs_deleted_by_time'::regclass"
        )
        assert valid is True
        # Rows applied before checksums existed got them; every row carries one now.
        assert (
            await conn.fetchval("SELECT count(*) FROM schema_migrations WHERE checksum IS NULL")
            == 0
        )
    finally:
        await conn.close()
    assert await migrate.migrate_pg(cfg) == []  # idempotent


async def test_a_changed_migration_is_refused(old_db: str) -> None:
    cfg = PgConfig(dsn=old_db)
    await migrate.migrate_pg(cfg)
    conn = await asyncpg.connect(old_db)
    try:
        await conn.execute("UPDATE schema_migrations SET checksum = 'abc' WHERE version = 1")
    finally:
        await conn.close()
    with pytest.raises(SchemaMismatch, match=r"0001_init\.sql was changed after it was applied"):
        await migrate.migrate_pg(cfg)
    with pytest.raises(SchemaMismatch, match=r"0001_init\.sql was changed"):
        await schema.require_current(cfg)


def _cli(stack: Stack, dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sluice.cli", *args],
        env=stack.service_env(SLUICE_PG_DSN=dsn),
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_status_and_dry_run_then_a_service_refuses_the_old_schema(
    stack: Stack, old_db: str
) -> None:
    status = _cli(stack, old_db, "migrate", "--status")
    assert status.returncode == 0, status.stderr
    assert "applied  0001_init.sql" in status.stdout
    assert "pending  0010_runs_deleted_index.sql" in status.stdout
    dry = _cli(stack, old_db, "migrate", "--dry-run")
    assert dry.stdout.strip().splitlines()[0] == "would apply  0010_runs_deleted_index.sql"

    api = _cli(stack, old_db, "api")
    assert api.returncode == 1
    assert (
        api.stderr.strip()
        .splitlines()[-1]
        .startswith("sluice api: database schema does not match this Sluice: pending migrations")
    )
    assert "Traceback" not in api.stderr
