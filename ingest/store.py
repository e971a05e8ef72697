"""Synchronous params/tags writes (PostgreSQL), decided before the client gets its answer.

Why not Kafka: MLflow rejects a changed param value with a 400 on the call that changes it,
and two racing writers must see exactly one winner. The (run_uuid, key) primary key is that
serialisation point: INSERT ... ON CONFLICT DO NOTHING makes the second writer wait for the
first to commit, then it reads the stored value and compares.
"""

from __future__ import annotations

import asyncpg

from schemas.mlflow_errors import does_not_exist, invalid_parameter

RUN_NAME_TAG = "mlflow.runName"

_INSERT_PARAMS = (
    "INSERT INTO params (run_uuid, key, value)"
    " SELECT $1, k, v FROM unnest($2::text[], $3::text[]) AS t(k, v)"
    " ON CONFLICT (run_uuid, key) DO NOTHING"
)
_STORED_PARAMS = "SELECT key, value FROM params WHERE run_uuid = $1 AND key = ANY($2::text[])"
# Last value wins for duplicate keys; the validator already collapsed them.
_UPSERT_TAGS = (
    "INSERT INTO tags (run_uuid, key, value)"
    " SELECT $1, k, v FROM unnest($2::text[], $3::text[]) AS t(k, v)"
    " ON CONFLICT (run_uuid, key) DO UPDATE SET value = excluded.value"
)


async def write_params_and_tags(
    pool: asyncpg.Pool,
    run_id: str,
    params: list[tuple[str, str]],
    tags: list[tuple[str, str]],
    *,
    single_param: bool = False,
) -> None:
    """Store params (immutable) and tags (upsert) in one transaction: a param conflict
    writes nothing at all."""
    async with pool.acquire() as conn, conn.transaction():
        if params:
            await _insert_params(conn, run_id, params, single_param)
        if tags:
            await _upsert_tags(conn, run_id, tags)


async def delete_tag(pool: asyncpg.Pool, run_id: str, key: str) -> None:
    status = await pool.execute("DELETE FROM tags WHERE run_uuid = $1 AND key = $2", run_id, key)
    if status == "DELETE 0":
        raise does_not_exist(f"No tag with name: {key} in run with id {run_id}")


async def _insert_params(
    conn: asyncpg.Connection, run_id: str, params: list[tuple[str, str]], single: bool
) -> None:
    keys = [k for k, _ in params]
    await conn.execute(_INSERT_PARAMS, run_id, keys, [v for _, v in params])
    stored = {r["key"]: r["value"] for r in await conn.fetch(_STORED_PARAMS, run_id, keys)}
    conflicts = [(k, stored[k], v) for k, v in params if stored.get(k, v) != v]
    if conflicts:
        raise _param_conflict(run_id, conflicts, single)


def _param_conflict(run_id: str, conflicts: list[tuple[str, str, str]], single: bool) -> Exception:
    if single:
        key, old, new = conflicts[0]
        return invalid_parameter(
            f"Changing param values is not allowed. Param with key='{key}' was already logged "
            f"with value='{old}' for run ID='{run_id}'. Attempted logging new value '{new}'."
        )
    listed = [{"key": k, "old_value": old, "new_value": new} for k, old, new in conflicts]
    return invalid_parameter(
        f"Changing param values is not allowed. Params were already logged='{listed}' "
        f"for run ID='{run_id}'."
    )


async def _upsert_tags(conn: asyncpg.Connection, run_id: str, tags: list[tuple[str, str]]) -> None:
    await conn.execute(_UPSERT_TAGS, run_id, [k for k, _ in tags], [v for _, v in tags])
    names = [v for k, v in tags if k == RUN_NAME_TAG]
    if names:  # the tag and runs.name are one value in MLflow
        await conn.execute("UPDATE runs SET name = $2 WHERE run_uuid = $1", run_id, names[-1])


async def experiment_of_run(pool: asyncpg.Pool, run_id: str) -> int | None:
    """The run's experiment (access control: grants are per experiment)."""
    exp_id: int | None = await pool.fetchval(
        "SELECT experiment_id FROM runs WHERE run_uuid = $1", run_id
    )
    return exp_id


async def experiment_of_trace(pool: asyncpg.Pool, trace_id: str) -> int | None:
    """The trace's experiment (access control of EndTrace; None until the writer stored it)."""
    exp_id: int | None = await pool.fetchval(
        "SELECT experiment_id FROM trace_info WHERE trace_id = $1", trace_id
    )
    return exp_id


async def require_models(pool: asyncpg.Pool, model_ids: set[str]) -> None:
    """Metrics may name only logged models that exist (deleted ones too), as MLflow's foreign
    key decides; its answer is a database error passed on as a 400, so this is the 400 that
    an MLflow client can tell apart. Only calls that name a model pay this query."""
    if not model_ids:
        return
    found = await pool.fetch(
        "SELECT model_id FROM logged_models WHERE model_id = ANY($1::text[])", sorted(model_ids)
    )
    missing = sorted(model_ids - {r["model_id"] for r in found})
    if missing:
        raise invalid_parameter(f"Logged model with ID '{missing[0]}' not found.")
