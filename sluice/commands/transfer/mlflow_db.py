"""An MLflow backend database (``sqlite:///path`` or ``postgresql://...``) behind one small
async interface: introspection, counts, streamed reads and batched writes.

Statements are written once with ``?`` placeholders; the PostgreSQL side numbers them. Reads
stream in batches of ``BATCH_ROWS`` (SQLite ``fetchmany``, a PostgreSQL server-side cursor), so
memory stays bounded whatever the table's size. The PostgreSQL side reads inside one
REPEATABLE READ transaction: every table is read from the same snapshot, even while the MLflow
server keeps writing. SQLite is read statement by statement (a long read transaction would
block a live MLflow server's writers in rollback-journal mode).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit, urlunsplit

import asyncpg

BATCH_ROWS: Final = 5_000
Row = tuple[Any, ...]


class SourceError(Exception):
    """The URI names no database we can read, or the database is not an MLflow one."""


@dataclass(frozen=True, slots=True)
class Location:
    dialect: Literal["sqlite", "postgresql"]
    target: str  # SQLite file path, or an asyncpg DSN

    def __str__(self) -> str:
        return f"{self.dialect}:{self.target}" if self.dialect == "sqlite" else self.target


def parse_uri(uri: str) -> Location:
    """MLflow's backend-store URI forms: ``sqlite:///rel.db``, ``sqlite:////abs.db``,
    ``postgresql[+driver]://user:pw@host:port/db`` (the driver part is SQLAlchemy's, dropped)."""
    parts = urlsplit(uri)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme == "sqlite":
        if not parts.path or parts.path == "/":
            raise SourceError(f"{uri}: no database file (expected sqlite:///path/to/mlflow.db)")
        return Location("sqlite", parts.path[1:])
    if scheme in ("postgresql", "postgres"):
        return Location("postgresql", urlunsplit(("postgresql", *parts[1:])))
    raise SourceError(f"{uri}: unsupported backend (sqlite:///... or postgresql://...)")


def _numbered(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1, $2, ...`` (our statements hold no literal ?)."""
    pieces = sql.split("?")
    return pieces[0] + "".join(f"${i}{p}" for i, p in enumerate(pieces[1:], start=1))


@dataclass
class MlflowDb:
    """One open MLflow database. Use :func:`open_db`; close with :meth:`close`."""

    location: Location
    _sqlite: sqlite3.Connection | None = None
    _pg: asyncpg.Connection | None = None
    _columns: dict[str, list[str]] = field(default_factory=dict)

    @property
    def dialect(self) -> str:
        return self.location.dialect

    def has(self, table: str, column: str | None = None) -> bool:
        cols = self._columns.get(table)
        return cols is not None and (not column or column in cols)

    def columns(self, table: str) -> list[str]:
        return self._columns.get(table, [])

    async def scalar(self, sql: str, *args: Any) -> Any:
        if self._pg is not None:
            return await self._pg.fetchval(_numbered(sql), *args)
        assert self._sqlite is not None
        row = self._sqlite.execute(sql, args).fetchone()
        return None if row is None else row[0]

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        """All rows of a small result (counts, id lists of one batch)."""
        if self._pg is not None:
            return [tuple(r) for r in await self._pg.fetch(_numbered(sql), *args)]
        assert self._sqlite is not None
        return self._sqlite.execute(sql, args).fetchall()

    async def stream(
        self, sql: str, *args: Any, batch: int = BATCH_ROWS
    ) -> AsyncIterator[list[Row]]:
        """The rows of ``sql`` in batches of at most ``batch``."""
        if self._pg is not None:
            cursor = await self._pg.cursor(_numbered(sql), *args)
            while rows := await cursor.fetch(batch):
                yield [tuple(r) for r in rows]
            return
        assert self._sqlite is not None
        cur = self._sqlite.execute(sql, args)
        try:
            while rows := await asyncio.to_thread(cur.fetchmany, batch):
                yield rows
        finally:
            cur.close()

    async def insert(self, table: str, columns: Sequence[str], rows: Sequence[Row]) -> None:
        """Append ``rows`` (export; COPY on PostgreSQL); the caller owns the transaction."""
        if not rows:
            return
        if self._pg is not None:
            await self._pg.copy_records_to_table(table, records=rows, columns=list(columns))
        else:
            names = ", ".join(f'"{c}"' for c in columns)
            sql = f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' for _ in columns)})"
            assert self._sqlite is not None
            self._sqlite.executemany(sql, rows)

    async def execute(self, sql: str, *args: Any) -> None:
        if self._pg is not None:
            await self._pg.execute(_numbered(sql), *args)
        else:
            assert self._sqlite is not None
            self._sqlite.execute(sql, args)

    async def commit(self) -> None:
        if self._pg is not None:
            await self._pg.execute("COMMIT; BEGIN")
        else:
            assert self._sqlite is not None
            self._sqlite.commit()

    async def close(self) -> None:
        if self._pg is not None:
            await self._pg.close()
        if self._sqlite is not None:
            self._sqlite.close()


async def open_db(uri: str, *, writable: bool = False) -> MlflowDb:
    """Open the database and read its table layout; raise SourceError if it is not MLflow's."""
    location = parse_uri(uri)
    db = MlflowDb(location)
    if location.dialect == "sqlite":
        path = Path(location.target)
        if not path.is_file():  # noqa: ASYNC240  (once, before anything runs)
            raise SourceError(f"{uri}: {path} does not exist")
        mode = "rw" if writable else "ro"
        db._sqlite = sqlite3.connect(
            f"file:{path}?mode={mode}", uri=True, check_same_thread=False, timeout=30
        )
        names = [
            r[0] for r in db._sqlite.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        for name in names:
            db._columns[name] = [r[1] for r in db._sqlite.execute(f'PRAGMA table_info("{name}")')]
    else:
        try:
            db._pg = await asyncpg.connect(location.target, timeout=30)
        except (OSError, asyncpg.PostgresError) as exc:
            raise SourceError(f"{uri}: cannot connect ({exc})") from None
        await db._pg.execute(
            "BEGIN ISOLATION LEVEL REPEATABLE READ" + ("" if writable else " READ ONLY")
        )
        for table, column in await db._pg.fetch(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
        ):
            db._columns.setdefault(table, []).append(column)
    if not db.has("experiments") or not db.has("runs") or not db.has("metrics"):
        await db.close()
        raise SourceError(f"{uri}: not an MLflow tracking database (no experiments/runs/metrics)")
    return db
