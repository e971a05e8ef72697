"""``sluice export <mlflow-backend-uri>``: the way back. Writes everything Sluice holds into an
empty MLflow 3.x database, which ``mlflow server`` then serves.

The target must already carry MLflow's schema (``mlflow db upgrade <uri>``, or start ``mlflow
server`` on it once) and hold nothing but MLflow's Default experiment; anything else is refused.
The whole export is one transaction on the target, read from one REPEATABLE READ snapshot of
Sluice: interrupted, it leaves the target as it was, and a rerun starts over. Metric points are
read through Sluice's ``metrics`` view (every stored point once), run by run.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

import asyncpg

from sluice.commands.transfer import points, progress, trace_export
from sluice.commands.transfer.mlflow_db import MlflowDb, SourceError, open_db
from sluice.commands.transfer.table_spec import Copy, Row
from sluice.commands.transfer.tables import STATUS_NUMBER
from sluice.config import PgConfig

BATCH: Final = 5_000
# MLflow derives an input's id at random; an export derives it from (run, dataset) so that the
# input tags of one link find their input row without a lookup.
_INPUT_NS: Final = uuid.UUID("6f1d3b52-7c0e-4d7e-9f3a-5a7e0c1b2d41")


def _input_uuid(run: str, dataset: str) -> str:
    return uuid.uuid5(_INPUT_NS, f"{run}/{dataset}").hex


def _dataset_input(row: Row) -> Row:
    run, dataset = row
    return (_input_uuid(run, dataset), "DATASET", dataset, "RUN", run, 0)


def _input_tag(row: Row) -> Row:
    run, dataset, key, value = row
    return (_input_uuid(run, dataset), key, value)


def _model_link(source_type: str, destination_type: str) -> Callable[[Row], Row]:
    def convert(row: Row) -> Row:
        run, model_id, step = row
        return (uuid.uuid4().hex, source_type, run, destination_type, model_id, step)

    return convert


def _status_number(row: Row) -> Row:
    return (*row[:6], STATUS_NUMBER.get(row[6], 0), *row[7:])


_INPUT_COLUMNS: Final = (
    "input_uuid",
    "source_type",
    "source_id",
    "destination_type",
    "destination_id",
    "step",
)

# In MLflow's foreign-key order.
COPIES: Final[tuple[Copy, ...]] = (
    Copy(
        "experiments",
        "experiments",
        (
            "experiment_id",
            "name",
            "artifact_location",
            "lifecycle_stage",
            "creation_time",
            "last_update_time",
        ),
        "SELECT experiment_id, name, artifact_location, lifecycle_stage, creation_time,"
        " last_update_time FROM experiments WHERE experiment_id <> 0 ORDER BY experiment_id",
        "SELECT count(*) FROM experiments WHERE experiment_id <> 0",
    ),
    Copy(
        "experiment_tags",
        "experiment_tags",
        ("experiment_id", "key", "value"),
        "SELECT experiment_id, key, value FROM experiment_tags ORDER BY experiment_id, key",
        "SELECT count(*) FROM experiment_tags",
    ),
    Copy(
        "runs",
        "runs",
        (
            "run_uuid",
            "name",
            "source_type",
            "source_name",
            "entry_point_name",
            "user_id",
            "status",
            "start_time",
            "end_time",
            "source_version",
            "lifecycle_stage",
            "artifact_uri",
            "experiment_id",
            "deleted_time",
        ),
        # MLflow's create_run fills the four legacy source columns exactly so.
        "SELECT run_uuid, name, 'UNKNOWN', '', '', user_id, status, start_time, end_time, '',"
        " lifecycle_stage, artifact_uri, experiment_id, deleted_time FROM runs ORDER BY run_uuid",
        "SELECT count(*) FROM runs",
    ),
    Copy(
        "params",
        "params",
        ("run_uuid", "key", "value"),
        "SELECT run_uuid, key, value FROM params ORDER BY run_uuid, key",
        "SELECT count(*) FROM params",
    ),
    Copy(
        "tags",
        "tags",
        ("run_uuid", "key", "value"),
        "SELECT run_uuid, key, value FROM tags ORDER BY run_uuid, key",
        "SELECT count(*) FROM tags",
    ),
    Copy(
        "latest_metrics",
        "latest_metrics",
        ("run_uuid", "key", "value", "timestamp", "step", "is_nan"),
        "SELECT run_uuid, key, value, timestamp, step, is_nan FROM latest_metrics"
        " ORDER BY run_uuid, key",
        "SELECT count(*) FROM latest_metrics",
    ),
    Copy(
        "datasets",
        "datasets",
        (
            "dataset_uuid",
            "experiment_id",
            "name",
            "digest",
            "dataset_source_type",
            "dataset_source",
            "dataset_schema",
            "dataset_profile",
        ),
        "SELECT dataset_uuid, experiment_id, name, digest, source_type, source, schema, profile"
        " FROM datasets ORDER BY experiment_id, dataset_uuid",
        "SELECT count(*) FROM datasets",
    ),
    Copy(
        "run_inputs",
        "inputs",
        _INPUT_COLUMNS,
        "SELECT run_uuid, dataset_uuid FROM run_inputs ORDER BY position",
        "SELECT count(*) FROM run_inputs",
        _dataset_input,
    ),
    Copy(
        "input_tags",
        "input_tags",
        ("input_uuid", "name", "value"),
        "SELECT run_uuid, dataset_uuid, key, value FROM input_tags"
        " ORDER BY run_uuid, dataset_uuid, position",
        "SELECT count(*) FROM input_tags",
        _input_tag,
    ),
    Copy(
        "logged_models",
        "logged_models",
        (
            "model_id",
            "experiment_id",
            "name",
            "artifact_location",
            "creation_timestamp_ms",
            "last_updated_timestamp_ms",
            "status",
            "status_message",
            "model_type",
            "source_run_id",
            "lifecycle_stage",
        ),
        "SELECT model_id, experiment_id, name, artifact_location, creation_timestamp,"
        " last_updated_timestamp, status, status_message, model_type, source_run_id,"
        " lifecycle_stage FROM logged_models ORDER BY creation_timestamp, model_id",
        "SELECT count(*) FROM logged_models",
        _status_number,
    ),
    Copy(
        "logged_model_tags",
        "logged_model_tags",
        ("model_id", "experiment_id", "tag_key", "tag_value"),
        "SELECT t.model_id, m.experiment_id, t.key, t.value FROM logged_model_tags t"
        " JOIN logged_models m USING (model_id) ORDER BY t.model_id, t.key",
        "SELECT count(*) FROM logged_model_tags",
    ),
    Copy(
        "logged_model_params",
        "logged_model_params",
        ("model_id", "experiment_id", "param_key", "param_value"),
        "SELECT p.model_id, m.experiment_id, p.key, p.value FROM logged_model_params p"
        " JOIN logged_models m USING (model_id) ORDER BY p.model_id, p.key",
        "SELECT count(*) FROM logged_model_params",
    ),
    Copy(
        "logged_model_metrics",
        "logged_model_metrics",
        (
            "model_id",
            "metric_name",
            "metric_timestamp_ms",
            "metric_step",
            "metric_value",
            "experiment_id",
            "run_id",
            "dataset_name",
            "dataset_digest",
        ),
        "SELECT x.model_id, x.key, x.timestamp, x.step, x.value, m.experiment_id, x.run_uuid,"
        " x.dataset_name, x.dataset_digest FROM logged_model_metrics x"
        " JOIN logged_models m USING (model_id) ORDER BY x.model_id, x.key, x.timestamp, x.step",
        "SELECT count(*) FROM logged_model_metrics x JOIN logged_models m USING (model_id)",
    ),
    Copy(
        "run_model_inputs",
        "inputs",
        _INPUT_COLUMNS,
        "SELECT run_uuid, model_id, 0 FROM run_model_inputs ORDER BY position",
        "SELECT count(*) FROM run_model_inputs",
        _model_link("RUN_INPUT", "MODEL_INPUT"),
    ),
    Copy(
        "run_model_outputs",
        "inputs",
        _INPUT_COLUMNS,
        "SELECT run_uuid, model_id, step FROM run_model_outputs ORDER BY position",
        "SELECT count(*) FROM run_model_outputs",
        _model_link("RUN_OUTPUT", "MODEL_OUTPUT"),
    ),
    Copy(
        "registered_models",
        "registered_models",
        ("name", "creation_time", "last_updated_time", "description"),
        "SELECT name, creation_timestamp, last_updated_timestamp, description"
        " FROM registered_models ORDER BY name",
        "SELECT count(*) FROM registered_models",
    ),
    Copy(
        "registered_model_tags",
        "registered_model_tags",
        ("name", "key", "value"),
        "SELECT m.name, t.key, t.value FROM registered_model_tags t"
        " JOIN registered_models m ON m.id = t.model_id ORDER BY m.name, t.key",
        "SELECT count(*) FROM registered_model_tags",
    ),
    Copy(
        "model_versions",
        "model_versions",
        (
            "name",
            "version",
            "creation_time",
            "last_updated_time",
            "description",
            "user_id",
            "current_stage",
            "source",
            "run_id",
            "status",
            "status_message",
            "run_link",
            "storage_location",
        ),
        "SELECT m.name, v.version, v.creation_timestamp, v.last_updated_timestamp,"
        " v.description, v.user_id, v.current_stage, v.source, v.run_id, v.status,"
        " v.status_message, v.run_link, v.storage_location FROM model_versions v"
        " JOIN registered_models m ON m.id = v.model_id ORDER BY m.name, v.version",
        "SELECT count(*) FROM model_versions",
    ),
    Copy(
        "model_version_tags",
        "model_version_tags",
        ("name", "version", "key", "value"),
        "SELECT m.name, t.version, t.key, t.value FROM model_version_tags t"
        " JOIN registered_models m ON m.id = t.model_id ORDER BY m.name, t.version, t.key",
        "SELECT count(*) FROM model_version_tags",
    ),
    Copy(
        "registered_model_aliases",
        "registered_model_aliases",
        ("name", "alias", "version"),
        "SELECT m.name, a.alias, a.version FROM registered_model_aliases a"
        " JOIN registered_models m ON m.id = a.model_id ORDER BY m.name, a.alias",
        "SELECT count(*) FROM registered_model_aliases",
    ),
    *trace_export.TRACE_COPIES,
)

_DEFAULT_EXPERIMENT: Final = (
    "SELECT name, artifact_location, lifecycle_stage, creation_time, last_update_time"
    " FROM experiments WHERE experiment_id = 0"
)
# In the order of MLflow's primary key (key, timestamp, step, ...): SQLite inserts into its
# index in order instead of at random places, 4x faster for a big run.
_POINTS: Final = (
    "SELECT run_uuid, key, value, timestamp, step, is_nan FROM metrics WHERE run_uuid = $1"
    " ORDER BY key, timestamp, step"
)
_METRIC_COLUMNS: Final = ("run_uuid", "key", "value", "timestamp", "step", "is_nan")


async def run_export(pg: PgConfig, uri: str) -> progress.Report:
    """Export everything into the empty MLflow database at ``uri``; raises SourceError."""
    target = await open_db(uri, writable=True)
    try:
        await _require_empty(target)
        conn = await asyncpg.connect(pg.dsn, timeout=pg.acquire_timeout_s)
        try:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                report = await _export(conn, target)
            await target.commit()
            return report
        finally:
            await conn.close()
    finally:
        await target.close()


async def _require_empty(target: MlflowDb) -> None:
    for table, where in (
        ("experiments", " WHERE experiment_id <> 0"),
        ("runs", ""),
        ("registered_models", ""),
    ):
        if await target.scalar(f"SELECT count(*) FROM {table}{where}"):
            raise SourceError(
                f"{target.location}: not empty ({table} has rows); export writes into a fresh"
                " MLflow database only (create one with `mlflow db upgrade <uri>`)"
            )


async def _stream(conn: asyncpg.Connection, sql: str, *args: Any) -> AsyncIterator[list[Row]]:
    cursor = await conn.cursor(sql, *args)
    while rows := await cursor.fetch(BATCH):
        yield [tuple(r) for r in rows]


async def _export(conn: asyncpg.Connection, target: MlflowDb) -> progress.Report:
    started = time.monotonic()
    default = await conn.fetchrow(_DEFAULT_EXPERIMENT)
    if default is not None:
        await target.execute(
            "UPDATE experiments SET name = ?, artifact_location = ?, lifecycle_stage = ?,"
            " creation_time = ?, last_update_time = ? WHERE experiment_id = 0",
            *default,
        )
    lines: list[progress.Line] = []
    with progress.bars() as start:
        for copy in COPIES:
            lines.append(await _copy(conn, target, copy, start))
        result = await _copy_points(conn, target, start)
    await _bump_experiment_ids(target)
    lines.append(
        progress.Line(
            "metric points",
            result.source,
            result.written,
            0,
            int(await target.scalar("SELECT count(*) FROM metrics")),
        )
    )
    return progress.Report(lines, result, time.monotonic() - started)


async def _copy(
    conn: asyncpg.Connection,
    target: MlflowDb,
    copy: Copy,
    start: Callable[[str, int], Callable[[int], None]],
) -> progress.Line:
    total = int(await conn.fetchval(copy.count, *copy.args))
    if not target.has(copy.target):  # an older MLflow schema (no traces before 2.11)
        return progress.Line(copy.label, total, 0, 0, 0, f"the target has no {copy.target}")
    advance = start(copy.label, total)
    before = int(await target.scalar(f"SELECT count(*) FROM {copy.target}"))
    convert = copy.convert or (lambda row: row)
    # Columns an older MLflow schema lacks (trace analytics columns) are left out.
    kept = [i for i, c in enumerate(copy.columns) if target.has(copy.target, c)]
    columns = [copy.columns[i] for i in kept]
    async for batch in _stream(conn, copy.select, *copy.args):
        rows = [convert(r) for r in batch]
        if len(kept) < len(copy.columns):
            rows = [tuple(r[i] for i in kept) for r in rows]
        await target.insert(copy.target, columns, rows)
        advance(len(batch))
    after = int(await target.scalar(f"SELECT count(*) FROM {copy.target}"))
    return progress.Line(copy.label, total, after - before, 0, after - before)


async def _copy_points(
    conn: asyncpg.Connection, target: MlflowDb, start: Callable[[str, int], Callable[[int], None]]
) -> points.PointsResult:
    result = points.PointsResult(source=int(await conn.fetchval("SELECT count(*) FROM metrics")))
    advance = start("metric points", result.source)
    runs = [r[0] for r in await conn.fetch("SELECT run_uuid FROM runs ORDER BY run_uuid")]
    for run in runs:
        async for rows in _stream(conn, _POINTS, run):
            await target.insert("metrics", _METRIC_COLUMNS, rows)
            result.written += len(rows)
            advance(len(rows))
        result.runs_written += 1
    return result


async def _bump_experiment_ids(target: MlflowDb) -> None:
    """PostgreSQL: MLflow's experiment ids come from a serial; continue after the exported."""
    if target.dialect == "postgresql":
        await target.execute(
            "SELECT setval(pg_get_serial_sequence('experiments', 'experiment_id'),"
            " (SELECT max(experiment_id) FROM experiments))"
        )
