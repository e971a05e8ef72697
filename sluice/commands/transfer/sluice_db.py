"""The Sluice side of an import: batched, idempotent inserts that refuse conflicting rows.

Each batch of source rows goes to PostgreSQL as one array per column (``unnest``), in one
transaction of two statements: first the rows whose key exists in Sluice with other values
(conflicts: the import stops and names them, unless ``overwrite``) and how many exist with
the same values; then ``INSERT ... ON CONFLICT (key) DO NOTHING`` (or ``DO UPDATE`` when
overwriting). A second import of the same rows therefore inserts nothing and changes nothing,
and an interrupted one is resumed by running it again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import asyncpg

from sluice.commands.transfer.table_spec import Row

SAMPLE: Final = 5  # conflicting keys named in the error


class ConflictError(Exception):
    """Sluice already holds rows with these keys and other values; nothing of the batch was
    written. ``--overwrite`` replaces them with the source's values."""

    def __init__(self, table: str, count: int, keys: Sequence[Row], detail: str = "") -> None:
        shown = ", ".join(str(k if len(k) > 1 else k[0]) for k in keys)
        super().__init__(
            f"{table}: {count} row(s) already in Sluice with other values (keys: {shown}){detail};"
            " nothing of this batch was written. Run again with --overwrite to replace them."
        )
        self.table = table
        self.count = count


def _q(name: str) -> str:
    return f'"{name}"'


@dataclass(frozen=True, slots=True)
class BatchResult:
    inserted: int  # new rows
    same: int  # rows already there with the same values
    replaced: int  # rows already there with other values, overwritten


async def column_types(conn: asyncpg.Connection, table: str) -> dict[str, str]:
    """SQL type of every column of ``table`` (for the unnest casts)."""
    rows = await conn.fetch(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped",
        table,
    )
    return {r[0]: r[1] for r in rows}


@dataclass(frozen=True, slots=True)
class Upsert:
    """The two statements of one target table, built once."""

    table: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    check_sql: str
    insert_sql: str
    overwrite_sql: str

    @classmethod
    def build(
        cls, table: str, columns: tuple[str, ...], key: tuple[str, ...], types: dict[str, str]
    ) -> Upsert:
        arrays = ", ".join(f"${i}::{types[c]}[]" for i, c in enumerate(columns, start=1))
        src = f"unnest({arrays}) AS s({', '.join(_q(c) for c in columns)})"
        join = " AND ".join(f"t.{_q(k)} = s.{_q(k)}" for k in key)
        values = [c for c in columns if c not in key]
        differs = (
            f"({', '.join(f's.{_q(c)}' for c in values)}) IS DISTINCT FROM"
            f" ({', '.join(f't.{_q(c)}' for c in values)})"
            if values
            else "false"
        )
        keys = ", ".join(f"s.{_q(k)}" for k in key)
        check = (
            f"SELECT count(*) FILTER (WHERE {differs}) AS conflicts,"
            f" count(*) FILTER (WHERE NOT {differs}) AS same,"
            f" (array_agg(ROW({keys})::text) FILTER (WHERE {differs}))[1:{SAMPLE}] AS sample"
            f" FROM {src} JOIN {table} t ON {join}"
        )
        names = ", ".join(_q(c) for c in columns)
        target = ", ".join(_q(k) for k in key)
        insert = (
            f"INSERT INTO {table} ({names}) SELECT {names} FROM {src}"
            f" ON CONFLICT ({target}) DO NOTHING"
        )
        overwrite = insert
        if values:  # rows with the same values are left alone: a rerun writes nothing
            update = ", ".join(f"{_q(c)} = excluded.{_q(c)}" for c in values)
            changed = (
                f"({', '.join(f'excluded.{_q(c)}' for c in values)}) IS DISTINCT FROM"
                f" ({', '.join(f'{table}.{_q(c)}' for c in values)})"
            )
            overwrite = (
                f"INSERT INTO {table} ({names}) SELECT {names} FROM {src}"
                f" ON CONFLICT ({target}) DO UPDATE SET {update} WHERE {changed}"
            )
        return cls(table, columns, key, check, insert, overwrite)

    async def write(
        self, conn: asyncpg.Connection, rows: Sequence[Row], *, overwrite: bool
    ) -> BatchResult:
        """Write one batch in one transaction; raise ConflictError (nothing written) when a
        row exists with other values and ``overwrite`` is false."""
        arrays: list[list[Any]] = [list(col) for col in zip(*rows, strict=True)]
        async with conn.transaction():
            conflicts, same, sample = await conn.fetchrow(self.check_sql, *arrays)
            if conflicts and not overwrite:
                raise ConflictError(self.table, conflicts, [(k,) for k in sample or []])
            try:
                status = await conn.execute(
                    self.overwrite_sql if overwrite else self.insert_sql, *arrays
                )
            except asyncpg.UniqueViolationError as exc:
                # Another unique constraint than the key (an experiment name, a dataset's
                # (experiment, name, digest)) names a different row in Sluice.
                raise ConflictError(self.table, 1, [], f" ({exc.detail or exc})") from None
        written = int(status.rsplit(" ", 1)[1])
        if overwrite:
            return BatchResult(written - conflicts, same, conflicts)
        return BatchResult(written, same, 0)
