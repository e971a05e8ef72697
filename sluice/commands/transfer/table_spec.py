"""Pure: the shape of a transferred table. Import: what the source has (``Has``), one Sluice
table filled from one MLflow table (``Table``, listed in ``tables.py`` and ``trace_tables.py``).
Export: one MLflow table filled from one Sluice query (``Copy``, listed in ``exporter.py`` and
``trace_export.py``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Has:
    """What the source is: ``has(table, column)`` -> it has that column ('' : the table), and
    its SQL dialect (a few statements differ: JSON aggregation)."""

    probe: Callable[[str, str], bool]
    dialect: str = "sqlite"

    def __call__(self, table: str, column: str) -> bool:
        return self.probe(table, column)


@dataclass(frozen=True, slots=True)
class Table:
    """One Sluice table filled from one MLflow table (or a slice of one)."""

    target: str  # Sluice table
    source: str  # MLflow table the rows come from (progress, counts)
    columns: tuple[str, ...]  # Sluice columns, in row order
    key: tuple[str, ...]  # Sluice identity of a row (the conflict target)
    select: Callable[[Has], str]  # the source SELECT, given the columns the source has
    count: Callable[[Has], str]  # the matching count(*) statement
    convert: Callable[[Row], Row] | None = None
    name_at: int | None = None  # column holding a registered model's name (-> its id)
    after: str = ""  # skipped when the source lacks this table (older MLflow)

    @property
    def label(self) -> str:
        return self.target


def count(table: str, where: str = "") -> Callable[[Has], str]:
    return lambda has: f"SELECT count(*) FROM {table}{where}"


@dataclass(frozen=True, slots=True)
class Copy:
    """One MLflow table filled from one Sluice query."""

    label: str  # Sluice table (progress, summary)
    target: str  # MLflow table
    columns: tuple[str, ...]
    select: str  # Sluice query, rows in ``columns`` order
    count: str  # the matching count in Sluice
    convert: Callable[[Row], Row] | None = None
    args: tuple[Any, ...] = ()  # parameters of ``select`` and ``count``
