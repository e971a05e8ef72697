"""The database schema this code expects: the migrations shipped in ``schemas/sql``, their
checksums, and the start-up check that refuses a database at another version.

A migration file whose first line is ``-- sluice: no-transaction`` runs statement by statement
outside a transaction: ``CREATE INDEX CONCURRENTLY`` cannot run inside one, and a plain
``CREATE INDEX`` would block every write to the table while it builds.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from sluice import pg
from sluice.config import PgConfig
from sluice.errors import SchemaMismatch

NO_TRANSACTION_MARK = "-- sluice: no-transaction"
_FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def transactional(self) -> bool:
        return not self.sql.startswith(NO_TRANSACTION_MARK)


@dataclass(frozen=True, slots=True)
class Applied:
    version: int
    name: str
    checksum: str | None  # None: applied before checksums were recorded (filled by migrate)


def available() -> list[Migration]:
    """Migrations shipped in the ``schemas`` package, in version order."""
    found = []
    for entry in resources.files("schemas").joinpath("sql").iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text()))
    return sorted(found, key=lambda m: m.version)


def expected_version() -> int:
    return available()[-1].version


async def applied(conn: asyncpg.Connection) -> list[Applied]:
    """Rows of ``schema_migrations`` (empty when the table does not exist yet)."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return []
    has_checksum = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns"
        " WHERE table_name = 'schema_migrations' AND column_name = 'checksum')"
    )
    column = "checksum" if has_checksum else "NULL::text AS checksum"
    rows = await conn.fetch(f"SELECT version, name, {column} FROM schema_migrations ORDER BY 1")
    return [Applied(r["version"], r["name"], r["checksum"]) for r in rows]


def mismatches(done: list[Applied], shipped: list[Migration]) -> list[str]:
    """Pure: what is wrong between the applied and the shipped migrations, as sentences."""
    by_version = {m.version: m for m in shipped}
    problems = []
    for row in done:
        code = by_version.get(row.version)
        if code is None:
            problems.append(
                f"migration {row.name} is applied but unknown to this version of Sluice"
                " (the database is newer: upgrade Sluice)"
            )
        elif row.checksum is not None and row.checksum != code.checksum:
            problems.append(
                f"migration {row.name} was changed after it was applied"
                f" (checksum {row.checksum[:12]} in the database, {code.checksum[:12]} shipped)"
            )
    pending = [m.name for m in shipped if m.version not in {r.version for r in done}]
    if pending:
        problems.append(f"pending migrations {', '.join(pending)}: run `sluice migrate`")
    return problems


async def require_current(cfg: PgConfig) -> None:
    """Start-up check of every service: raise SchemaMismatch unless the database holds exactly
    the migrations this code ships (same versions, same checksums)."""
    conn = await pg.connect(cfg)
    try:
        problems = mismatches(await applied(conn), available())
    finally:
        await conn.close()
    if problems:
        raise SchemaMismatch("database schema does not match this Sluice: " + "; ".join(problems))
