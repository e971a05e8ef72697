"""``sluice backup DIR`` and ``sluice restore DIR``.

A backup is one consistent snapshot of the PostgreSQL database, taken online: the command opens
a REPEATABLE READ transaction, exports its snapshot, reads the writers' stored offsets in it and
runs ``pg_dump --snapshot`` on that same snapshot. The writers' offsets therefore describe
exactly the metric points inside the dump. Restoring it rewinds the offsets with the data; the
writers then replay from Kafka every point acknowledged after the backup (while Kafka retains
it) and store each once, because the points and the offsets that cover them were captured
together. What lives only in PostgreSQL (runs, params, tags, registry) is as of the backup:
combine with WAL archiving for point-in-time recovery (docs/operations.md).

Layout of DIR: ``db/`` (pg_dump directory format) and ``manifest.json`` (version, schema,
time, stored offsets).
"""

from __future__ import annotations

import asyncio
import datetime
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from sluice import buildinfo, pg, schema
from sluice.config import Settings
from sluice.errors import StartupError

_PG_BIN_FALLBACK = Path("/usr/lib/postgresql/15/bin")


class BackupError(StartupError):
    """The backup or restore could not be done; the message says why."""


@dataclass(frozen=True, slots=True)
class Manifest:
    created_at: str
    version: str
    schema: int
    offsets: dict[str, dict[str, int]]  # topic -> partition -> next offset stored

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "created_at": self.created_at,
                "version": self.version,
                "schema": self.schema,
                "offsets": self.offsets,
            },
            option=orjson.OPT_INDENT_2,
        )

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        doc: dict[str, Any] = orjson.loads(raw)
        return cls(doc["created_at"], doc["version"], doc["schema"], doc["offsets"])


def _tool(name: str) -> str:
    found = shutil.which(name) or str(_PG_BIN_FALLBACK / name)
    if not Path(found).exists():
        raise BackupError(f"{name} not found on PATH or in {_PG_BIN_FALLBACK}")
    return found


async def _run(*argv: str) -> None:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _out, err = await process.communicate()
    if process.returncode != 0:
        raise BackupError(f"{Path(argv[0]).name} failed: {err.decode().strip()[-2000:]}")


async def backup(settings: Settings, target: Path) -> Manifest:
    """Write a consistent backup into ``target`` (which must not exist or be empty)."""
    _prepare(target)
    conn = await pg.connect(settings.pg)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            snapshot = await conn.fetchval("SELECT pg_export_snapshot()")
            rows = await conn.fetch("SELECT topic, partition, next_offset FROM writer_offsets")
            # pg_dump attaches to the exported snapshot, which lives while this transaction does.
            await _run(
                _tool("pg_dump"),
                "--format=directory",
                f"--snapshot={snapshot}",
                "--no-owner",
                f"--file={target / 'db'}",
                f"--dbname={settings.pg.dsn}",
            )
    finally:
        await conn.close()
    offsets: dict[str, dict[str, int]] = {}
    for row in rows:
        offsets.setdefault(row["topic"], {})[str(row["partition"])] = row["next_offset"]
    manifest = Manifest(
        datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        buildinfo.version(),
        schema.expected_version(),
        offsets,
    )
    _write_manifest(target, manifest)
    return manifest


def _prepare(target: Path) -> None:
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty")
    target.mkdir(parents=True, exist_ok=True)


def _write_manifest(target: Path, manifest: Manifest) -> None:
    (target / "manifest.json").write_bytes(manifest.to_json())


def _read_manifest(source: Path) -> Manifest:
    path = source / "manifest.json"
    if not path.exists() or not (source / "db").is_dir():
        raise BackupError(f"{source} is not a Sluice backup (manifest.json and db/ expected)")
    return Manifest.from_json(path.read_bytes())


async def restore(settings: Settings, source: Path, *, clean: bool) -> Manifest:
    """Restore the backup in ``source`` into the configured database. Without ``clean`` the
    database must hold no Sluice schema; with it, existing objects are dropped first. Every
    Sluice process using the database must be stopped while this runs."""
    manifest = _read_manifest(source)
    conn = await pg.connect(settings.pg)
    try:
        populated = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
        if populated and not clean:
            raise BackupError(
                "the database already holds a Sluice schema; stop every Sluice process and pass"
                " --clean to replace it"
            )
        if populated:
            # Everything Sluice keeps is in schema public. pg_restore's own --clean cannot drop
            # the constraints of hash partitions, so the schema is replaced whole.
            await conn.execute(
                "DROP SCHEMA public CASCADE; CREATE SCHEMA public AUTHORIZATION pg_database_owner;"
                " GRANT USAGE ON SCHEMA public TO PUBLIC"
            )
    finally:
        await conn.close()
    await _run(
        _tool("pg_restore"),
        "--no-owner",
        "--single-transaction",
        "--exit-on-error",
        f"--dbname={settings.pg.dsn}",
        str(source / "db"),
    )
    return manifest
