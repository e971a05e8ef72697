"""SQL fragments shared by the run and experiment search compilers (pure).

Every value reaches PostgreSQL as an asyncpg ``$n`` parameter with an explicit type cast, so the
statement text depends only on the shape of the request (good for the prepared-statement
cache) and no user text is ever spliced into SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, NamedTuple

if TYPE_CHECKING:
    from api.search.filter import Clause

SQL_OPS: Final = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}

_INT64: Final = range(-(2**63), 2**63)


class Query(NamedTuple):
    sql: str
    args: tuple[object, ...]


@dataclass(slots=True)
class Binder:
    """Collects parameter values; ``bind`` returns the placeholder to write in their place."""

    values: list[object] = field(default_factory=list)

    def bind(self, value: object, pg_type: str) -> str:
        self.values.append(value)
        return f"${len(self.values)}::{pg_type}"

    def query(self, sql: str) -> Query:
        return Query(sql, tuple(self.values))


def bind_number(value: object, binder: Binder) -> str:
    """Filter numbers keep their type: ``start_time > 1.5`` compares as a double, as in MLflow.
    Integers beyond bigint go as numeric, so they compare instead of failing to encode."""
    if isinstance(value, int) and value in _INT64:
        return binder.bind(value, "bigint")
    if isinstance(value, int):
        return binder.bind(str(value), "numeric")
    return binder.bind(value, "float8")


def text_compare(column: str, comparator: str, value: object, binder: Binder) -> str:
    """``column <comparator> value`` for text columns; comparators were validated upstream.

    ``=`` and ``LIKE`` are case-sensitive and ``ILIKE`` is not, as in MLflow. ``ESCAPE ''``
    turns off PostgreSQL's default backslash escape: MLflow's reference store (SQLite with
    ``case_sensitive_like``) and its in-memory matcher have no escape character, so ``\\``
    in a pattern is an ordinary character and only ``%`` and ``_`` are wildcards.
    """
    if comparator == "IN":
        return f"{column} = ANY({binder.bind(list_value(value), 'text[]')})"
    if comparator == "NOT IN":
        return f"{column} <> ALL({binder.bind(list_value(value), 'text[]')})"
    placeholder = binder.bind(value, "text")
    if comparator in ("LIKE", "ILIKE"):
        return f"{column} {comparator} {placeholder} ESCAPE ''"
    return f"{column} {SQL_OPS[comparator]} {placeholder}"


def list_value(value: object) -> list[object]:
    return list(value) if isinstance(value, tuple) else [value]


def direction(ascending: bool) -> str:
    return "" if ascending else " DESC"


def key_value_probe(table: str, join: str, clause: Clause, binder: Binder) -> str:
    """A params/tags filter as an ``EXISTS`` probe on ``table``'s (owner, key) primary key:
    ``join`` ties alias ``x`` to the outer row (e.g. ``x.run_uuid = r.run_uuid``). IS NULL means
    "no such key"; any other comparator compares the value as text."""
    probe = (
        f"EXISTS (SELECT 1 FROM {table} x WHERE {join}"
        f" AND x.key = {binder.bind(clause.key, 'text')}"
    )
    if clause.comparator == "IS NULL":
        return f"NOT {probe})"
    if clause.comparator == "IS NOT NULL":
        return f"{probe})"
    return f"{probe} AND {text_compare('x.value', clause.comparator, clause.value, binder)})"
