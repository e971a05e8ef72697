"""The CLI entry of ``sluice import`` / ``sluice export``."""

from __future__ import annotations

import sys

from sluice.commands.transfer import exporter, importer, progress
from sluice.commands.transfer.mlflow_db import SourceError
from sluice.commands.transfer.sluice_db import ConflictError
from sluice.config import PgConfig


async def run(command: str, uri: str, pg: PgConfig, *, overwrite: bool = False) -> int:
    """The CLI entry: run ``command`` ("import" or "export"), print the verification summary;
    0 when every count matched, 1 otherwise; known failures print one line and give 2."""
    report: progress.Report
    try:
        if command == "import":
            report = await importer.run_import(pg, uri, overwrite=overwrite)
        else:
            report = await exporter.run_export(pg, uri)
    except (SourceError, ConflictError) as exc:
        print(f"sluice {command}: {exc}", file=sys.stderr)
        return 2
    print(progress.summary(f"sluice {command} {uri}", report.lines))
    print(
        f"{report.points.written:,} metric points in {report.seconds:.1f} s"
        f" ({report.points_per_s:,.0f} points/s)"
    )
    return 0 if report.ok else 1
