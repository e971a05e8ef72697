"""Every statement on ``logged_models``, ``logged_model_tags`` and ``logged_model_params``
(the registry appends its model-version tag through ``append_model_version`` here too).

Lock order: the experiment row (FOR SHARE, ``api.experiments.store.lock_active``) before a
new model's insert, so a model is never created in an experiment being deleted; the registered
model before a logged model's row (``append_model_version``).
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import orjson

from api.logged_models import render
from api.search.sql import Query
from schemas.mlflow_errors import MlflowError, does_not_exist

MODEL_VERSIONS_TAG = "mlflow.modelVersions"


def not_found(model_id: str) -> MlflowError:
    return does_not_exist(f"Logged model with ID '{model_id}' not found.")


async def fetch(
    conn: asyncpg.Connection, model_id: str, allow_deleted: bool = False
) -> dict[str, Any]:
    """The model's LoggedModel document; MLflow's 404 when unknown (or deleted, unless
    ``allow_deleted``)."""
    row = await conn.fetchrow("SELECT * FROM logged_models WHERE model_id = $1", model_id)
    if row is None or (row["lifecycle_stage"] != "active" and not allow_deleted):
        raise not_found(model_id)
    tags = await conn.fetch(
        "SELECT key, value FROM logged_model_tags WHERE model_id = $1 ORDER BY key", model_id
    )
    params = await conn.fetch(
        "SELECT key, value FROM logged_model_params WHERE model_id = $1 ORDER BY key", model_id
    )
    points = await conn.fetch(
        "SELECT key, value, timestamp, step, dataset_name, dataset_digest, run_uuid"
        " FROM logged_model_metrics WHERE model_id = $1 ORDER BY key, timestamp, step, run_uuid",
        model_id,
    )
    return render.logged_model(row, tags, params, points)


async def experiment_of(conn: asyncpg.Pool | asyncpg.Connection, model_id: str) -> int | None:
    """The model's experiment (access control: grants are per experiment)."""
    exp_id: int | None = await conn.fetchval(
        "SELECT experiment_id FROM logged_models WHERE model_id = $1", model_id
    )
    return exp_id


async def lineage(conn: asyncpg.Connection, model_id: str) -> asyncpg.Record | None:
    """Where a model's artifacts are and which run made it (a model version's source)."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT artifact_location, source_run_id FROM logged_models WHERE model_id = $1",
        model_id,
    )
    return row


async def insert(
    conn: asyncpg.Connection,
    model_id: str,
    experiment_id: int,
    artifact_location: str,
    fields: dict[str, Any],
) -> None:
    """A new model; ``fields``: name, now, model_type, source_run_id. The caller holds the
    experiment's row lock."""
    await conn.execute(
        "INSERT INTO logged_models (model_id, experiment_id, name, artifact_location,"
        " creation_timestamp, last_updated_timestamp, model_type, source_run_id)"
        " VALUES ($1, $2, $3, $4, $5, $5, $6, $7)",
        model_id,
        experiment_id,
        fields["name"],
        f"{artifact_location.rstrip('/')}/models/{model_id}/artifacts",
        fields["now"],
        fields["model_type"],
        fields["source_run_id"],
    )


async def set_status(conn: asyncpg.Connection, model_id: str, status: str, now: int) -> None:
    await conn.execute(
        "UPDATE logged_models SET status = $2, last_updated_timestamp = $3 WHERE model_id = $1",
        model_id,
        status,
        now,
    )


async def soft_delete(conn: asyncpg.Connection, model_id: str, now: int) -> None:
    await conn.execute(
        "UPDATE logged_models SET lifecycle_stage = 'deleted', last_updated_timestamp = $2"
        " WHERE model_id = $1",
        model_id,
        now,
    )


async def set_tags(conn: asyncpg.Connection, model_id: str, pairs: list[tuple[str, str]]) -> None:
    await _upsert(conn, "logged_model_tags", model_id, pairs)


async def log_params(conn: asyncpg.Connection, model_id: str, pairs: list[tuple[str, str]]) -> None:
    await _upsert(conn, "logged_model_params", model_id, pairs)


async def _upsert(
    conn: asyncpg.Connection, table: str, model_id: str, pairs: list[tuple[str, str]]
) -> None:
    if pairs:
        await conn.executemany(
            f"INSERT INTO {table} (model_id, key, value) VALUES ($1, $2, $3)"
            " ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value",
            [(model_id, k, v) for k, v in pairs],
        )


async def delete_tag(conn: asyncpg.Connection, model_id: str, key: str) -> bool:
    deleted = await conn.fetchval(
        "DELETE FROM logged_model_tags WHERE model_id = $1 AND key = $2 RETURNING 1",
        model_id,
        key,
    )
    return deleted is not None


async def search_page(conn: asyncpg.Connection, query: Query) -> list[str]:
    """The model ids of one search page (``rules.compile_search``)."""
    return [r["model_id"] for r in await conn.fetch(query.sql, *query.args)]


async def append_model_version(
    conn: asyncpg.Connection, model_id: str, name: str, version: int
) -> None:
    """Record a registered model version on the logged model it was made from (MLflow's
    ``mlflow.modelVersions`` tag, a JSON list); the caller holds the registered model's lock."""
    await conn.execute("SELECT 1 FROM logged_models WHERE model_id = $1 FOR UPDATE", model_id)
    raw = await conn.fetchval(
        "SELECT value FROM logged_model_tags WHERE model_id = $1 AND key = $2",
        model_id,
        MODEL_VERSIONS_TAG,
    )
    entry = {"name": name, "version": version}
    entries = orjson.loads(raw) if raw else []
    if entry not in entries:
        entries.append(entry)
    # json.dumps' default spacing, as MLflow writes it: clients compare these strings.
    await set_tags(conn, model_id, [(MODEL_VERSIONS_TAG, json.dumps(entries))])
