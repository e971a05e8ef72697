"""Every statement on ``runs`` and the rows hanging off a run (tags, datasets, model inputs
and outputs) that the api writes or reads; latest metrics and params are read here too.

Loading runs (a search page, or one run) is one statement per page: each run comes back as one
row, the ``runs`` columns plus, per child table, an array of that table's rows (PostgreSQL
composite values, decoded by asyncpg into records that ``api.runs.render`` reads like any other
row). One round trip instead of eight; the documents are still built by ``api.runs.render``, so
the JSON shape has one definition (docs/design.md, "Loading runs").

Lock order: the experiment row, then the run row (``api.experiments.store``). Writes hanging
off a run take the run row FOR SHARE first (``lock_active``), so a concurrent delete either
precedes the write (400) or waits for it.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeAlias

import asyncpg

from api.runs import render
from api.runs.rules import RUN_NAME_TAG, DatasetInput, NewRun
from schemas.mlflow_errors import MlflowError, no_such_run, not_active

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool

# One primary-key probe per requested id, in the requested order. OFFSET 0 keeps the planner
# from flattening the LATERAL into a join over all runs (docs/design.md, "Loading runs").
# Child arrays are NULL (not empty) for a run without rows: array_agg over nothing.
# Orders are MLflow's: metrics, params and tags by key; inputs and outputs as logged.
# asyncpg caches the row types' codecs with the prepared statement: altering these tables
# under a running api makes it raise OutdatedSchemaCacheError (migrations run before start).
_PAGE = """
SELECT r.*,
  (SELECT array_agg(m ORDER BY m.key) FROM latest_metrics m
    WHERE m.run_uuid = r.run_uuid) AS metrics,
  (SELECT array_agg(p ORDER BY p.key) FROM params p WHERE p.run_uuid = r.run_uuid) AS params,
  (SELECT array_agg(t ORDER BY t.key) FROM tags t WHERE t.run_uuid = r.run_uuid) AS tags,
  (SELECT array_agg(d ORDER BY i.position) FROM run_inputs i
    JOIN datasets d ON d.dataset_uuid = i.dataset_uuid
    WHERE i.run_uuid = r.run_uuid) AS datasets,
  (SELECT array_agg(it ORDER BY it.position) FROM input_tags it
    WHERE it.run_uuid = r.run_uuid) AS input_tags,
  (SELECT array_agg(mi ORDER BY mi.position) FROM run_model_inputs mi
    WHERE mi.run_uuid = r.run_uuid) AS model_inputs,
  (SELECT array_agg(mo ORDER BY mo.position) FROM run_model_outputs mo
    WHERE mo.run_uuid = r.run_uuid) AS model_outputs
FROM unnest($1::text[]) WITH ORDINALITY AS page(run_uuid, ord),
  LATERAL (SELECT * FROM runs WHERE runs.run_uuid = page.run_uuid OFFSET 0) r
ORDER BY page.ord
"""


async def load_runs(conn: asyncpg.Connection, run_ids: list[str]) -> list[dict[str, Any]]:
    """MLflow Run documents for ``run_ids``, in that order (ids that vanished are skipped)."""
    if not run_ids:
        return []
    return [run_document(row) for row in await conn.fetch(_PAGE, run_ids)]


def run_document(row: Mapping[str, Any]) -> dict[str, Any]:
    """The Run document of one ``_PAGE`` row (pure)."""
    inputs = render.run_inputs(
        _rows(row["datasets"]), _by_dataset(_rows(row["input_tags"])), _rows(row["model_inputs"])
    )
    return render.run(
        row,
        _rows(row["metrics"]),
        _rows(row["params"]),
        _rows(row["tags"]),
        inputs,
        render.run_outputs(_rows(row["model_outputs"])),
    )


def _rows(array: Sequence[Mapping[str, Any]] | None) -> Sequence[Mapping[str, Any]]:
    return array or ()


def _by_dataset(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    # Input tags keep their logging order within each dataset (they arrive by position).
    grouped: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[row["dataset_uuid"]].append(row)
    return grouped


_RUN = "SELECT * FROM runs WHERE run_uuid = $1"
_TAGS = "SELECT key, value FROM tags WHERE run_uuid = $1 ORDER BY key"


async def fetch(conn: Conn, run_id: str) -> asyncpg.Record:
    row = await conn.fetchrow(_RUN, run_id)
    if row is None:
        raise no_such_run(run_id)
    return row


async def experiment_of(conn: Conn, run_id: str) -> int | None:
    """The run's experiment (access control: grants are per experiment)."""
    exp_id: int | None = await conn.fetchval(
        "SELECT experiment_id FROM runs WHERE run_uuid = $1", run_id
    )
    return exp_id


async def experiments_of(conn: Conn, run_ids: list[str]) -> list[int]:
    """The experiments of these runs, each once (bulk reads check READ on each)."""
    rows = await conn.fetch(
        "SELECT DISTINCT experiment_id FROM runs WHERE run_uuid = ANY($1::text[])", run_ids
    )
    return [r["experiment_id"] for r in rows]


async def artifact_uri(conn: Conn, run_id: str) -> str | None:
    uri: str | None = await conn.fetchval(
        "SELECT artifact_uri FROM runs WHERE run_uuid = $1", run_id
    )
    return uri


async def lock_active(
    conn: asyncpg.Connection, run_id: str, *, for_update: bool = False
) -> asyncpg.Record:
    """The run's row, locked until the transaction ends (FOR SHARE, or FOR UPDATE to change
    the row itself); MLflow's 404 for an unknown run, its 400 for a deleted one."""
    row = await conn.fetchrow(_RUN + (" FOR UPDATE" if for_update else " FOR SHARE"), run_id)
    if row is None:
        raise no_such_run(run_id)
    if row["lifecycle_stage"] != "active":
        raise not_active("run", run_id, row["lifecycle_stage"])
    return row


async def insert(
    conn: asyncpg.Connection, run_id: str, artifact_location: str, new: NewRun
) -> tuple[asyncpg.Record, list[asyncpg.Record]]:
    """A new RUNNING run; the caller holds its experiment's row lock
    (``api.experiments.store.lock_active``). Returns the run's row and tags."""
    await conn.execute(
        "INSERT INTO runs (run_uuid, experiment_id, name, user_id, status, start_time,"
        " lifecycle_stage, artifact_uri) VALUES ($1, $2, $3, $4, 'RUNNING', $5, 'active', $6)",
        run_id,
        new.experiment_id,
        new.name,
        new.user_id,
        new.start_time,
        f"{artifact_location}/{run_id}/artifacts",
    )
    await conn.executemany(
        "INSERT INTO tags (run_uuid, key, value) VALUES ($1, $2, $3)",
        [(run_id, k, v) for k, v in new.tags],
    )
    return await fetch(conn, run_id), await conn.fetch(_TAGS, run_id)


async def update(
    conn: asyncpg.Connection,
    run_id: str,
    status: str | None,
    end_time: int | None,
    name: str | None,
) -> asyncpg.Record:
    """Set what is given (None keeps the column); a new name is the ``mlflow.runName`` tag too."""
    await conn.execute(
        "UPDATE runs SET status = coalesce($2, status), end_time = coalesce($3, end_time),"
        " name = coalesce($4, name) WHERE run_uuid = $1",
        run_id,
        status,
        end_time,
        name,
    )
    if name is not None:
        await conn.execute(
            "INSERT INTO tags VALUES ($1, $2, $3)"
            " ON CONFLICT (run_uuid, key) DO UPDATE SET value = excluded.value",
            run_id,
            RUN_NAME_TAG,
            name,
        )
    return await fetch(conn, run_id)


async def set_lifecycle(conn: Conn, run_id: str, stage: str, deleted_time: int | None) -> None:
    status = await conn.execute(
        "UPDATE runs SET lifecycle_stage = $2, deleted_time = $3 WHERE run_uuid = $1",
        run_id,
        stage,
        deleted_time,
    )
    if status == "UPDATE 0":
        raise no_such_run(run_id)


# -- inputs and outputs: rare, deduplicated on the call (docs/design.md) -----------------------

_ADD_DATASETS = (
    "INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, source_type, source,"
    " schema, profile)"
    " SELECT u, $1, n, d, st, s, sc, p FROM unnest($2::text[], $3::text[], $4::text[],"
    " $5::text[], $6::text[], $7::text[], $8::text[]) AS t(u, n, d, st, s, sc, p)"
    " ON CONFLICT (experiment_id, name, digest) DO NOTHING"
)
_DATASET_UUIDS = (
    "SELECT name, digest, dataset_uuid FROM datasets WHERE experiment_id = $1"
    " AND (name, digest) IN (SELECT * FROM unnest($2::text[], $3::text[]))"
)
# Only a new link takes the request's tags: MLflow keeps those of the first link.
_LINK = (
    "INSERT INTO run_inputs (run_uuid, dataset_uuid, context) VALUES ($1, $2, $3)"
    " ON CONFLICT (run_uuid, dataset_uuid) DO NOTHING RETURNING dataset_uuid"
)
_INPUT_TAGS = (
    "INSERT INTO input_tags (run_uuid, dataset_uuid, key, value, position)"
    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING"
)


async def link_datasets(
    conn: asyncpg.Connection, run_id: str, experiment_id: int, inputs: list[DatasetInput]
) -> None:
    datasets = [item.dataset for item in inputs]
    await conn.execute(
        _ADD_DATASETS,
        experiment_id,
        [uuid.uuid4().hex for _ in datasets],
        [d.name for d in datasets],
        [d.digest for d in datasets],
        [d.source_type for d in datasets],
        [d.source for d in datasets],
        [d.schema for d in datasets],
        [d.profile for d in datasets],
    )
    rows = await conn.fetch(
        _DATASET_UUIDS, experiment_id, [d.name for d in datasets], [d.digest for d in datasets]
    )
    uuids = {(r["name"], r["digest"]): r["dataset_uuid"] for r in rows}
    for item in inputs:
        dataset_uuid = uuids[(item.dataset.name, item.dataset.digest)]
        if await conn.fetchval(_LINK, run_id, dataset_uuid, item.context) is not None:
            await conn.executemany(
                _INPUT_TAGS,
                [(run_id, dataset_uuid, k, v, i) for i, (k, v) in enumerate(item.tags)],
            )


async def add_model_inputs(conn: asyncpg.Connection, run_id: str, models: list[str]) -> None:
    await conn.executemany(
        "INSERT INTO run_model_inputs (run_uuid, model_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        [(run_id, model_id) for model_id in models],
    )


async def add_model_outputs(
    conn: asyncpg.Connection, run_id: str, models: list[tuple[str, int]]
) -> None:
    try:
        await conn.executemany(
            "INSERT INTO run_model_outputs (run_uuid, model_id, step) VALUES ($1, $2, $3)",
            [(run_id, model_id, step) for model_id, step in models],
        )
    except asyncpg.UniqueViolationError:
        # MLflow's unique (run, model) edge fails the whole call with the database's text.
        raise MlflowError(
            "BAD_REQUEST",
            "UNIQUE constraint failed: inputs.source_type, inputs.source_id,"
            " inputs.destination_type, inputs.destination_id",
        ) from None
