"""Registry persistence: every statement, and the lock order that makes registry writes race-free.

LOCK ORDER. A write transaction locks exactly one ``registered_models`` row first, with
``lock_model`` (``SELECT … FOR UPDATE``) or the ``UPDATE … max_version + 1`` of version
creation, and only then reads or writes that model's versions, tags and aliases. No transaction
holds two model locks (rename and delete touch one row), so there is no lock cycle, and every
write to one model is serialised behind that row lock:

- version creation: the increment of ``max_version`` and the insert commit together, so
  concurrent creations get distinct, gap-free numbers, never reused after a delete;
- transition with archiving: archive-others and promote happen in one transaction under the
  lock, so a committed state never holds zero or two versions in the target stage (readers run
  one statement, or a REPEATABLE READ transaction, and see one committed state);
- alias moves: an upsert on (model, alias) under the lock, so an alias has one target.

Readers never lock. Under READ COMMITTED a writer waiting on the lock re-reads rows it updates,
which is harmless here because it already holds the model lock when it reads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, TypeAlias

import asyncpg

from api.registry.rules import DELETED_STAGE, PROMPT_TAG
from schemas.mlflow_errors import MlflowError, does_not_exist

# An asyncpg connection (or the pool, for single-statement reads); asyncpg is untyped.
Conn: TypeAlias = Any

MV_COLUMNS: Final = """
    m.name, v.model_id, v.version, v.creation_timestamp, v.last_updated_timestamp,
    v.description, v.user_id, v.current_stage, v.source, v.run_id, v.run_link, v.status,
    v.status_message, v.storage_location, v.logged_model_id,
    ARRAY(SELECT t.key FROM model_version_tags t
          WHERE t.model_id = v.model_id AND t.version = v.version ORDER BY t.key) AS tag_keys,
    ARRAY(SELECT t.value FROM model_version_tags t
          WHERE t.model_id = v.model_id AND t.version = v.version ORDER BY t.key) AS tag_values,
    ARRAY(SELECT a.alias FROM registered_model_aliases a
          WHERE a.model_id = v.model_id AND a.version = v.version ORDER BY a.alias) AS aliases
"""
MV_FROM: Final = "FROM model_versions v JOIN registered_models m ON m.id = v.model_id"
_LIVE: Final = f"v.current_stage <> '{DELETED_STAGE}'"

_LATEST: Final = f"""
SELECT {MV_COLUMNS} {MV_FROM}
WHERE (v.model_id, v.version) IN (
    SELECT DISTINCT ON (x.model_id, x.current_stage) x.model_id, x.version
    FROM model_versions x
    WHERE x.model_id = ANY($1::bigint[]) AND x.current_stage <> '{DELETED_STAGE}'
    ORDER BY x.model_id, x.current_stage, x.version DESC)
ORDER BY v.model_id, (SELECT min(y.version) FROM model_versions y
                      WHERE y.model_id = v.model_id AND y.current_stage = v.current_stage)
"""


def model_not_found(name: str) -> MlflowError:
    return does_not_exist(f"Registered Model with name={name} not found")


def version_not_found(name: str, version: int | str) -> MlflowError:
    return does_not_exist(f"Model Version (name={name}, version={version}) not found")


# -- registered models -------------------------------------------------------------------------


async def lock_model(conn: Conn, name: str) -> int:
    """Take the model's row lock (first step of every write); its id, or 404."""
    model_id = await conn.fetchval(
        "SELECT id FROM registered_models WHERE name = $1 FOR UPDATE", name
    )
    if model_id is None:
        raise model_not_found(name)
    return int(model_id)


async def insert_model(
    conn: Conn, name: str, description: str | None, tags: Sequence[tuple[str, str]], now: int
) -> None:
    try:
        model_id = await conn.fetchval(
            "INSERT INTO registered_models (name, creation_timestamp, last_updated_timestamp,"
            " description) VALUES ($1, $2, $2, $3) RETURNING id",
            name,
            now,
            description,
        )
    except asyncpg.UniqueViolationError:
        raise MlflowError(
            "RESOURCE_ALREADY_EXISTS", f"Registered Model (name={name}) already exists."
        ) from None
    await upsert_model_tags(conn, model_id, tags)


async def upsert_model_tags(conn: Conn, model_id: int, tags: Sequence[tuple[str, str]]) -> None:
    if tags:
        await conn.executemany(
            "INSERT INTO registered_model_tags (model_id, key, value) VALUES ($1, $2, $3)"
            " ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value",
            [(model_id, k, v) for k, v in tags],
        )


async def delete_model_tag(conn: Conn, model_id: int, key: str) -> None:
    await conn.execute(
        "DELETE FROM registered_model_tags WHERE model_id = $1 AND key = $2", model_id, key
    )


async def touch_model(conn: Conn, model_id: int, now: int) -> None:
    await conn.execute(
        "UPDATE registered_models SET last_updated_timestamp = $2 WHERE id = $1", model_id, now
    )


async def rename_model(conn: Conn, model_id: int, new_name: str, now: int) -> None:
    try:
        await conn.execute(
            "UPDATE registered_models SET name = $2, last_updated_timestamp = $3 WHERE id = $1",
            model_id,
            new_name,
            now,
        )
    except asyncpg.UniqueViolationError:
        raise MlflowError(
            "RESOURCE_ALREADY_EXISTS", f"Registered Model (name={new_name}) already exists."
        ) from None
    await conn.execute(
        "UPDATE model_versions SET last_updated_timestamp = $2 WHERE model_id = $1", model_id, now
    )


async def set_model_description(
    conn: Conn, model_id: int, description: str | None, now: int
) -> None:
    await conn.execute(
        "UPDATE registered_models SET description = $2, last_updated_timestamp = $3 WHERE id = $1",
        model_id,
        description,
        now,
    )


async def move_grants(conn: Conn, name: str, new_name: str) -> None:
    """Grants are keyed by model name: a rename carries them, as MLflow's auth app does (or a
    user refused the old name would get the default on the new one). Rows left on the new name
    (granted before any model had it) give way to the renamed model's."""
    await conn.execute("DELETE FROM registered_model_permissions WHERE name = $1", new_name)
    await conn.execute(
        "UPDATE registered_model_permissions SET name = $2 WHERE name = $1", name, new_name
    )


async def drop_grants(conn: Conn, name: str) -> None:
    """A later model of the same name must not inherit the deleted one's grants."""
    await conn.execute("DELETE FROM registered_model_permissions WHERE name = $1", name)


async def delete_model(conn: Conn, model_id: int) -> None:
    await conn.execute("DELETE FROM registered_model_aliases WHERE model_id = $1", model_id)
    await conn.execute("DELETE FROM registered_models WHERE id = $1", model_id)


async def models_by_ids(conn: Conn, ids: Sequence[int]) -> list[dict[str, Any]]:
    """Full registered-model entities (rows + latest versions + tags + aliases), in ``ids``
    order. Call inside a REPEATABLE READ transaction for one consistent snapshot."""
    rows = await conn.fetch("SELECT * FROM registered_models WHERE id = ANY($1::bigint[])", ids)
    latest = await conn.fetch(_LATEST, ids)
    tags = await conn.fetch(
        "SELECT model_id, key, value FROM registered_model_tags"
        " WHERE model_id = ANY($1::bigint[]) ORDER BY key",
        ids,
    )
    aliases = await conn.fetch(
        "SELECT model_id, alias, version FROM registered_model_aliases"
        " WHERE model_id = ANY($1::bigint[]) ORDER BY alias",
        ids,
    )
    by_id = {r["id"]: r for r in rows}
    return [
        {
            "row": by_id[i],
            "latest": [r for r in latest if r["model_id"] == i],
            "tags": [r for r in tags if r["model_id"] == i],
            "aliases": [r for r in aliases if r["model_id"] == i],
        }
        for i in ids
        if i in by_id
    ]


async def is_prompt(conn: Conn, model_id: int) -> bool:
    """The model is a prompt (tag ``mlflow.prompt.is_prompt`` = true, any case), which picks
    the prompt webhook events over the model ones."""
    value = await conn.fetchval(
        "SELECT value FROM registered_model_tags WHERE model_id = $1 AND key = $2",
        model_id,
        PROMPT_TAG,
    )
    return isinstance(value, str) and value.lower() == "true"


async def model_id_of(conn: Conn, name: str) -> int:
    model_id = await conn.fetchval("SELECT id FROM registered_models WHERE name = $1", name)
    if model_id is None:
        raise model_not_found(name)
    return int(model_id)


# -- model versions ----------------------------------------------------------------------------


async def next_version(conn: Conn, name: str, now: int) -> tuple[int, int]:
    """(model id, new version number): increments ``max_version`` under the row lock (this
    UPDATE *is* the lock_model step of version creation)."""
    row = await conn.fetchrow(
        "UPDATE registered_models SET max_version = max_version + 1,"
        " last_updated_timestamp = $2 WHERE name = $1 RETURNING id, max_version",
        name,
        now,
    )
    if row is None:
        raise model_not_found(name)
    return int(row["id"]), int(row["max_version"])


async def insert_version(conn: Conn, model_id: int, version: int, fields: dict[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO model_versions (model_id, version, creation_timestamp,"
        " last_updated_timestamp, description, source, run_id, run_link, storage_location,"
        " logged_model_id, status) VALUES ($1, $2, $3, $3, $4, $5, $6, $7, $8, $9, 'READY')",
        model_id,
        version,
        fields["now"],
        fields["description"],
        fields["source"],
        fields["run_id"],
        fields["run_link"],
        fields["storage_location"],
        fields["logged_model_id"],
    )


async def upsert_version_tags(
    conn: Conn, model_id: int, version: int, tags: Sequence[tuple[str, str]]
) -> None:
    if tags:
        await conn.executemany(
            "INSERT INTO model_version_tags (model_id, version, key, value)"
            " VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (model_id, version, key) DO UPDATE SET value = excluded.value",
            [(model_id, version, k, v) for k, v in tags],
        )


async def delete_version_tag(conn: Conn, model_id: int, version: int, key: str) -> None:
    await conn.execute(
        "DELETE FROM model_version_tags WHERE model_id = $1 AND version = $2 AND key = $3",
        model_id,
        version,
        key,
    )


async def fetch_version(conn: Conn, name: str, version: int) -> asyncpg.Record:
    """A live version (soft-deleted ones are invisible), or 404."""
    row = await conn.fetchrow(
        f"SELECT {MV_COLUMNS} {MV_FROM} WHERE m.name = $1 AND v.version = $2 AND {_LIVE}",
        name,
        version,
    )
    if row is None:
        raise version_not_found(name, version)
    return row


async def require_version(conn: Conn, model_id: int, name: str, version: int) -> None:
    found = await conn.fetchval(
        f"SELECT 1 FROM model_versions v WHERE v.model_id = $1 AND v.version = $2 AND {_LIVE}",
        model_id,
        version,
    )
    if found is None:
        raise version_not_found(name, version)


async def set_version_description(
    conn: Conn, model_id: int, version: int, description: str | None, now: int
) -> None:
    await conn.execute(
        "UPDATE model_versions SET description = $3, last_updated_timestamp = $4"
        " WHERE model_id = $1 AND version = $2",
        model_id,
        version,
        description,
        now,
    )


async def transition(
    conn: Conn, model_id: int, version: int, stage: str, archive: bool, now: int
) -> None:
    """Move a version to ``stage``; with ``archive`` every other version in that stage becomes
    Archived in the same transaction (the caller holds the model lock)."""
    if archive:
        await conn.execute(
            "UPDATE model_versions SET current_stage = 'Archived', last_updated_timestamp = $4"
            " WHERE model_id = $1 AND current_stage = $3 AND version <> $2",
            model_id,
            version,
            stage,
            now,
        )
    await conn.execute(
        "UPDATE model_versions SET current_stage = $3, last_updated_timestamp = $4"
        " WHERE model_id = $1 AND version = $2",
        model_id,
        version,
        stage,
        now,
    )
    await touch_model(conn, model_id, now)


async def soft_delete_version(conn: Conn, model_id: int, version: int, now: int) -> None:
    """MLflow's soft delete: the number stays taken, the content is redacted, aliases go."""
    await conn.execute(
        "DELETE FROM registered_model_aliases WHERE model_id = $1 AND version = $2",
        model_id,
        version,
    )
    await conn.execute(
        f"UPDATE model_versions SET current_stage = '{DELETED_STAGE}', source = 'REDACTED',"
        " run_id = 'REDACTED', run_link = 'REDACTED', description = NULL,"
        " last_updated_timestamp = $3, user_id = NULL, status_message = NULL"
        " WHERE model_id = $1 AND version = $2",
        model_id,
        version,
        now,
    )
    await conn.execute(
        "DELETE FROM model_version_tags WHERE model_id = $1 AND version = $2", model_id, version
    )
    await touch_model(conn, model_id, now)


async def latest_per_stage(conn: Conn, model_id: int) -> list[asyncpg.Record]:
    return list(await conn.fetch(_LATEST, [model_id]))


async def highest_live_version(conn: Conn, model_id: int) -> int | None:
    value = await conn.fetchval(
        f"SELECT max(v.version) FROM model_versions v WHERE v.model_id = $1 AND {_LIVE}",
        model_id,
    )
    return None if value is None else int(value)


# -- aliases -----------------------------------------------------------------------------------


async def set_alias(conn: Conn, model_id: int, alias: str, version: int) -> None:
    await conn.execute(
        "INSERT INTO registered_model_aliases (model_id, alias, version) VALUES ($1, $2, $3)"
        " ON CONFLICT (model_id, alias) DO UPDATE SET version = excluded.version",
        model_id,
        alias,
        version,
    )


async def delete_alias(conn: Conn, model_id: int, alias: str) -> None:
    await conn.execute(
        "DELETE FROM registered_model_aliases WHERE model_id = $1 AND alias = $2", model_id, alias
    )


async def alias_version(conn: Conn, model_id: int, alias: str) -> int | None:
    value = await conn.fetchval(
        "SELECT version FROM registered_model_aliases WHERE model_id = $1 AND alias = $2",
        model_id,
        alias,
    )
    return None if value is None else int(value)
