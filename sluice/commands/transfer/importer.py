"""``sluice import <mlflow-backend-uri>``: copy an MLflow tracking + registry database into the
configured Sluice (default: the ``make up`` stack), table by table, then the metric history.

Ids, names and artifact URIs are kept, so links, ``runs:/`` and ``models:/`` URIs and the
artifact store keep working. Idempotent and resumable (``sluice_db``, ``points``); refuses to
change rows Sluice already holds with other values unless ``overwrite``. Ends with a
verification summary: per table, the source's rows against the matching rows now in Sluice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import asyncpg

from sluice.commands.transfer import points, progress, tables
from sluice.commands.transfer.mlflow_db import MlflowDb, SourceError, open_db
from sluice.commands.transfer.sluice_db import Upsert, column_types
from sluice.commands.transfer.table_spec import Has, Row, Table
from sluice.config import PgConfig

log = logging.getLogger(__name__)

# Every table the import writes exists from this migration on (0009: traces).
REQUIRED_MIGRATION = 9

# The Default experiment (id 0) is created by `sluice migrate` with Sluice's own artifact
# location and the migration's time; while nothing uses it, it takes the source's values.
_ADOPT_DEFAULT = """
UPDATE experiments SET name = $1, artifact_location = $2, lifecycle_stage = $3,
                       creation_time = $4, last_update_time = $5
WHERE experiment_id = 0
  AND NOT EXISTS (SELECT 1 FROM runs WHERE experiment_id = 0)
  AND NOT EXISTS (SELECT 1 FROM experiment_tags WHERE experiment_id = 0)
"""
# New experiments must not take an imported id.
_BUMP_EXPERIMENT_IDS = """
SELECT setval('experiment_id_seq', m)
FROM (SELECT max(experiment_id) AS m FROM experiments) e, experiment_id_seq s
WHERE m >= CASE WHEN s.is_called THEN s.last_value + 1 ELSE s.last_value END
"""


async def run_import(pg: PgConfig, uri: str, *, overwrite: bool = False) -> progress.Report:
    """Import everything; raises SourceError, ConflictError (nothing of that batch written)."""
    src = await open_db(uri)
    try:
        conn = await asyncpg.connect(pg.dsn, timeout=pg.acquire_timeout_s)
        try:
            await _require_schema(conn)
            return await _import(src, conn, overwrite)
        finally:
            await conn.close()
    finally:
        await src.close()


async def _require_schema(conn: asyncpg.Connection) -> None:
    version = None
    if await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
        version = await conn.fetchval("SELECT max(version) FROM schema_migrations")
    if version is None or version < REQUIRED_MIGRATION:
        raise SourceError("the Sluice database has no schema yet: run `sluice migrate` first")


async def _import(src: MlflowDb, conn: asyncpg.Connection, overwrite: bool) -> progress.Report:
    started = time.monotonic()
    if src.has("experiments", "workspace"):
        others = await src.scalar("SELECT count(*) FROM experiments WHERE workspace <> 'default'")
        if others:
            raise SourceError(
                f"the source has {others} experiment(s) outside the default workspace;"
                " Sluice has no workspaces, so only single-workspace databases are imported"
            )
    await _adopt_default_experiment(src, conn)
    lines: list[progress.Line] = []
    model_ids: dict[str, int] = {}
    with progress.bars() as start:
        for table in tables.present(_has(src)):
            lines.append(await _copy_table(src, conn, table, start, overwrite, model_ids))
            if table.target == "registered_models":
                model_ids = dict(await conn.fetch("SELECT name, id FROM registered_models"))
        total = int(await src.scalar("SELECT count(*) FROM metrics"))
        result = await points.import_points(src, conn, start("metric points", total))
    await conn.execute(_BUMP_EXPERIMENT_IDS)
    lines.append(
        progress.Line(
            "metric points",
            result.source,
            result.written,
            result.present,
            result.written + result.present,
            f"{len(result.mismatched)} run(s) differ" if result.mismatched else "",
        )
    )
    return progress.Report(lines, result, time.monotonic() - started)


async def _adopt_default_experiment(src: MlflowDb, conn: asyncpg.Connection) -> None:
    rows = await src.fetch(tables.experiments_select(_has(src), default_only=True))
    if rows:
        await conn.execute(_ADOPT_DEFAULT, *rows[0][1:])


async def _copy_table(
    src: MlflowDb,
    conn: asyncpg.Connection,
    table: Table,
    start: Callable[[str, int], Callable[[int], None]],
    overwrite: bool,
    model_ids: dict[str, int],
) -> progress.Line:
    total = int(await src.scalar(table.count(_has(src))))
    advance = start(table.label, total)
    upsert = Upsert.build(
        table.target, table.columns, table.key, await column_types(conn, table.target)
    )
    written = same = replaced = 0
    async for batch in src.stream(table.select(_has(src))):
        rows = [_convert(table, row, model_ids) for row in batch]
        result = await upsert.write(conn, rows, overwrite=overwrite)
        written += result.inserted
        same += result.same
        replaced += result.replaced
        advance(len(rows))
    note = f"{replaced} replaced" if replaced else ""
    return progress.Line(
        table.label, total, written + replaced, same, written + replaced + same, note
    )


def _has(src: MlflowDb) -> Has:
    return Has(src.has, src.dialect)


def _convert(table: Table, row: Row, model_ids: dict[str, int]) -> Row:
    if table.convert is not None:
        row = table.convert(row)
    if table.name_at is not None:
        i = table.name_at
        row = (*row[:i], model_ids[row[i]], *row[i + 1 :])
    return row
