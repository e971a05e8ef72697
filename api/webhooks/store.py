"""Webhook persistence: every statement on ``webhooks`` and ``webhook_events``
(schemas/sql/0016_webhooks.sql).

A webhook and its event list change together in one transaction (update replaces the list
whole, as MLflow does), so a reader in one statement never sees a webhook with half a list.
Deletes are soft; every read here skips deleted rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, TypeAlias

import asyncpg

from schemas.mlflow_errors import MlflowError, does_not_exist
from schemas.webhook_events import Event

Conn: TypeAlias = Any  # an asyncpg connection or pool (asyncpg is untyped)

_COLUMNS: Final = """
    w.webhook_id, w.name, w.description, w.url, w.status, w.creation_timestamp,
    w.last_updated_timestamp,
    ARRAY(SELECT e.entity FROM webhook_events e WHERE e.webhook_id = w.webhook_id
          ORDER BY e.entity COLLATE "C", e.action COLLATE "C") AS entities,
    ARRAY(SELECT e.action FROM webhook_events e WHERE e.webhook_id = w.webhook_id
          ORDER BY e.entity COLLATE "C", e.action COLLATE "C") AS actions
"""
_LIVE: Final = "w.deleted_timestamp IS NULL"


def not_found(webhook_id: str) -> MlflowError:
    return does_not_exist(f"Webhook with ID {webhook_id} not found.")


def events_of(row: asyncpg.Record) -> list[Event]:
    return [Event(e, a) for e, a in zip(row["entities"], row["actions"], strict=True)]


async def insert(conn: Conn, fields: dict[str, Any], events: Sequence[Event]) -> None:
    """A new webhook (``fields``: webhook_id, name, description, url, secret, status, now)."""
    await conn.execute(
        "INSERT INTO webhooks (webhook_id, name, description, url, secret, status,"
        " creation_timestamp, last_updated_timestamp) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        fields["webhook_id"],
        fields["name"],
        fields["description"],
        fields["url"],
        fields["secret"],
        fields["status"],
        fields["now"],
    )
    await _insert_events(conn, fields["webhook_id"], events)


async def _insert_events(conn: Conn, webhook_id: str, events: Sequence[Event]) -> None:
    await conn.executemany(
        "INSERT INTO webhook_events (webhook_id, entity, action) VALUES ($1, $2, $3)",
        [(webhook_id, e.entity, e.action) for e in events],
    )


async def fetch(conn: Conn, webhook_id: str) -> asyncpg.Record:
    """A live webhook with its events, or MLflow's 404."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM webhooks w WHERE w.webhook_id = $1 AND {_LIVE}", webhook_id
    )
    if row is None:
        raise not_found(webhook_id)
    return row


async def lock(conn: Conn, webhook_id: str) -> None:
    """Take the webhook's row lock (first step of an update or delete), or 404."""
    found = await conn.fetchval(
        f"SELECT 1 FROM webhooks w WHERE w.webhook_id = $1 AND {_LIVE} FOR UPDATE", webhook_id
    )
    if found is None:
        raise not_found(webhook_id)


async def page(conn: Conn, offset: int, limit: int) -> list[asyncpg.Record]:
    """Live webhooks newest first (MLflow's order), ``limit`` of them from ``offset``."""
    return list(
        await conn.fetch(
            f"SELECT {_COLUMNS} FROM webhooks w WHERE {_LIVE}"
            " ORDER BY w.creation_timestamp DESC, w.webhook_id OFFSET $1 LIMIT $2",
            offset,
            limit,
        )
    )


async def update(conn: Conn, webhook_id: str, changes: dict[str, Any], now: int) -> None:
    """Set the given columns (name, description, url, secret, status; ``events`` replaces the
    event list) and the update time. The caller holds the row lock."""
    columns = {k: v for k, v in changes.items() if k != "events"}
    assignments = [f"{name} = ${i}" for i, name in enumerate(columns, start=3)]
    await conn.execute(
        "UPDATE webhooks SET "
        + ", ".join(["last_updated_timestamp = $2", *assignments])
        + " WHERE webhook_id = $1",
        webhook_id,
        now,
        *columns.values(),
    )
    if "events" in changes:
        await conn.execute("DELETE FROM webhook_events WHERE webhook_id = $1", webhook_id)
        await _insert_events(conn, webhook_id, changes["events"])


async def soft_delete(conn: Conn, webhook_id: str, now: int) -> None:
    await conn.execute(
        "UPDATE webhooks SET deleted_timestamp = $2, last_updated_timestamp = $2"
        " WHERE webhook_id = $1",
        webhook_id,
        now,
    )


async def secret_of(conn: Conn, webhook_id: str) -> str | None:
    """The HMAC key: read only to sign a delivery, never rendered."""
    value = await conn.fetchval("SELECT secret FROM webhooks WHERE webhook_id = $1", webhook_id)
    return None if value is None else str(value)


async def subscribers(conn: Conn, event: Event) -> list[asyncpg.Record]:
    """The active, live webhooks subscribed to ``event``, with what a delivery needs."""
    return list(
        await conn.fetch(
            "SELECT w.webhook_id, w.url, w.secret FROM webhooks w"
            " JOIN webhook_events e ON e.webhook_id = w.webhook_id"
            f" WHERE e.entity = $1 AND e.action = $2 AND {_LIVE} AND w.status = 'ACTIVE'"
            " ORDER BY w.creation_timestamp DESC, w.webhook_id",
            event.entity,
            event.action,
        )
    )
