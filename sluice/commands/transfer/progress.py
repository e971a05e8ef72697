"""Progress bars (one per table: rows, rows/s, ETA) and the verification summary, with rich.

Bars go to stderr; the summary table to stdout, so ``sluice import ... > report.txt`` keeps
the verification.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table as RichTable
from rich.text import Text

from sluice.commands.transfer.points import PointsResult


@dataclass(frozen=True, slots=True)
class Line:
    """One row of the verification summary."""

    table: str
    source: int  # rows in the source
    written: int  # rows written by this run
    already: int  # rows found already present (same values)
    target: int  # matching rows in the target now
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.target == self.source


def _rate(task_speed: float | None) -> str:
    return f"{task_speed:,.0f}/s" if task_speed else "-"


class _RateColumn(TextColumn):
    """Rows per second: the mean since the start (rich's own estimate looks at the last 30 s
    only, which a slow first table and a fast last one make misleading)."""

    def __init__(self) -> None:
        super().__init__("")

    def render(self, task):  # type: ignore[no-untyped-def]  # rich's column protocol
        elapsed = task.finished_time if task.finished else task.elapsed
        speed = task.completed / elapsed if elapsed else None
        return Text(_rate(speed), style="progress.data.speed")


@contextmanager
def bars() -> Iterator[Callable[[str, int], Callable[[int], None]]]:
    """Yields ``start(label, total) -> advance(n)``."""
    progress = Progress(
        TextColumn("[bold]{task.description:<26}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )

    def start(label: str, total: int) -> Callable[[int], None]:
        task = progress.add_task(label, total=total)
        if total == 0:
            progress.update(task, completed=0, total=0)
        return lambda n: progress.advance(task, n)

    with progress:
        yield start


def summary(title: str, lines: list[Line]) -> str:
    """The verification table as text (also printed)."""
    table = RichTable(title=title)
    for name in ("table", "source", "written now", "already there", "in target", "check"):
        table.add_column(name, justify="left" if name == "table" else "right")
    for line in lines:
        check = "ok" if line.ok else "MISMATCH"
        table.add_row(
            line.table,
            f"{line.source:,}",
            f"{line.written:,}",
            f"{line.already:,}",
            f"{line.target:,}",
            check + (f" ({line.note})" if line.note else ""),
        )
    console = Console(width=120, record=True, file=io.StringIO())  # recorded, not printed
    console.print(table)
    return console.export_text()


@dataclass(frozen=True, slots=True)
class Report:
    """What an import or an export did: a line a table, the metric points, the time taken."""

    lines: list[Line]
    points: PointsResult
    seconds: float

    @property
    def ok(self) -> bool:
        return all(line.ok for line in self.lines) and not self.points.mismatched

    @property
    def points_per_s(self) -> float:
        return self.points.written / max(self.seconds, 1e-9)
