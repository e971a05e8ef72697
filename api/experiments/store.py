"""Every statement on ``experiments`` and ``experiment_tags``.

Lock order, shared by every writer of an experiment's children: the experiment row first, then
its runs. Creating a run or a logged model takes the row FOR SHARE (``lock_active``); delete,
restore and rename take it FOR UPDATE (``lock_stage``). So a creation either commits before a
delete (which then soft-deletes the new run with the others) or waits for it and sees the
experiment deleted; the two cannot deadlock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import asyncpg

from api.experiments.rules import CUSTOM_VIEW_TAG_PREFIX, NewExperiment
from schemas.mlflow_errors import MlflowError, no_such_experiment, not_active
from sluice.clock import now_ms

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool

_BY_ID = "SELECT * FROM experiments WHERE experiment_id = $1"
_BY_NAME = "SELECT * FROM experiments WHERE name = $1"
_TAGS = "SELECT key, value FROM experiment_tags WHERE experiment_id = $1 ORDER BY key"
_TAGS_OF_MANY = (
    "SELECT experiment_id, key, value FROM experiment_tags"
    " WHERE experiment_id = ANY($1::bigint[]) ORDER BY key"
)


async def lock_active(conn: asyncpg.Connection, exp_id: int, raw_id: str) -> asyncpg.Record:
    """The experiment's row, locked FOR SHARE until the transaction ends; MLflow's 404 for an
    unknown experiment, its 400 for a deleted one. Every creation inside an experiment starts
    here, so none can slip in beside a concurrent delete."""
    row = await conn.fetchrow(
        "SELECT lifecycle_stage, artifact_location FROM experiments"
        " WHERE experiment_id = $1 FOR SHARE",
        exp_id,
    )
    if row is None:
        raise no_such_experiment(raw_id)
    if row["lifecycle_stage"] != "active":
        raise not_active("experiment", raw_id, row["lifecycle_stage"])
    return row


async def lock_stage(conn: asyncpg.Connection, exp_id: int, raw_id: str) -> str:
    """The experiment's lifecycle stage, its row locked FOR UPDATE (delete, restore, rename)."""
    stage = await conn.fetchval(
        "SELECT lifecycle_stage FROM experiments WHERE experiment_id = $1 FOR UPDATE", exp_id
    )
    if stage is None:
        raise no_such_experiment(raw_id)
    return str(stage)


async def insert(conn: asyncpg.Connection, new: NewExperiment) -> int:
    """A new experiment's id; raises asyncpg.UniqueViolationError for a taken name or a tag
    key given twice (the caller maps both to MLflow's one error)."""
    exp_id = int(await conn.fetchval("SELECT nextval('experiment_id_seq')"))
    now = now_ms()
    await conn.execute(
        "INSERT INTO experiments (experiment_id, name, artifact_location,"
        " lifecycle_stage, creation_time, last_update_time)"
        " VALUES ($1, $2, $3, 'active', $4, $4)",
        exp_id,
        new.name,
        new.artifact_location or f"mlflow-artifacts:/{exp_id}",
        now,
    )
    if new.tags:
        await conn.executemany(
            "INSERT INTO experiment_tags (experiment_id, key, value) VALUES ($1, $2, $3)",
            [(exp_id, key, value) for key, value in new.tags],
        )
    return exp_id


async def by_id(conn: Conn, exp_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(_BY_ID, exp_id)


async def by_name(conn: Conn, name: str) -> asyncpg.Record | None:
    return await conn.fetchrow(_BY_NAME, name)


async def id_by_name(conn: Conn, name: str) -> int | None:
    exp_id: int | None = await conn.fetchval(
        "SELECT experiment_id FROM experiments WHERE name = $1", name
    )
    return exp_id


async def tags_of(conn: Conn, exp_id: int) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(_TAGS, exp_id)
    return rows


async def page(
    conn: asyncpg.Connection, exp_ids: Sequence[int]
) -> tuple[dict[int, asyncpg.Record], list[asyncpg.Record]]:
    """The rows of a search page by id, and all their tags (ordered by key)."""
    rows = await conn.fetch(
        "SELECT * FROM experiments WHERE experiment_id = ANY($1::bigint[])", exp_ids
    )
    return {r["experiment_id"]: r for r in rows}, await conn.fetch(_TAGS_OF_MANY, exp_ids)


async def set_stage(conn: asyncpg.Connection, exp_id: int, stage: str) -> None:
    """The experiment and all its runs to ``stage`` (restoring re-activates runs deleted one by
    one too, as MLflow does); the caller holds the row lock of ``lock_stage``."""
    now = now_ms()
    await conn.execute(
        "UPDATE experiments SET lifecycle_stage = $2, last_update_time = $3"
        " WHERE experiment_id = $1",
        exp_id,
        stage,
        now,
    )
    await conn.execute(
        "UPDATE runs SET lifecycle_stage = $2, deleted_time = $3 WHERE experiment_id = $1",
        exp_id,
        stage,
        now if stage == "deleted" else None,
    )


async def rename(conn: asyncpg.Connection, exp_id: int, new_name: str) -> None:
    try:
        await conn.execute(
            "UPDATE experiments SET name = $2, last_update_time = $3 WHERE experiment_id = $1",
            exp_id,
            new_name,
            now_ms(),
        )
    except asyncpg.UniqueViolationError as exc:
        raise MlflowError(
            "BAD_REQUEST", f"(raised as a result of Query-invoked autoflush) {exc}"
        ) from None


async def custom_views(conn: asyncpg.Connection, exp_id: int, key: str) -> tuple[int, bool]:
    """How many custom-view tags the experiment has, and whether ``key`` is one of them."""
    row = await conn.fetchrow(
        "SELECT count(*) AS views, coalesce(bool_or(key = $2), false) AS present"
        " FROM experiment_tags WHERE experiment_id = $1 AND starts_with(key, $3)",
        exp_id,
        key,
        CUSTOM_VIEW_TAG_PREFIX,
    )
    return int(row["views"]), bool(row["present"])


async def set_tag(conn: asyncpg.Connection, exp_id: int, key: str, value: str) -> None:
    await conn.execute(
        "INSERT INTO experiment_tags VALUES ($1, $2, $3)"
        " ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value",
        exp_id,
        key,
        value,
    )


async def delete_tag(conn: asyncpg.Connection, exp_id: int, key: str) -> bool:
    status = await conn.execute(
        "DELETE FROM experiment_tags WHERE experiment_id = $1 AND key = $2", exp_id, key
    )
    return bool(status != "DELETE 0")
