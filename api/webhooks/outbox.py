"""The webhook outbox: a registry change's event is written in the change's transaction and
published from there, so no committed change loses its event (``schemas/sql/0031``).

The request that made the change publishes its event right after the commit and deletes the
row (``events.publish``); the relay of each api process publishes what is left -- rows older
than ``grace_s``, i.e. a request that could not reach Kafka or a process that died between
commit and produce. Delivery to Kafka is at least once (a relay may re-send a row whose delete
was lost); the event id stays the same, so a receiver can tell.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import asyncpg

from schemas.webhook_events import EventRecord, encode
from sluice import metrics

log = logging.getLogger(__name__)

_INSERT = "INSERT INTO webhook_outbox (event_id, key, record) VALUES ($1, $2, $3)"
_DELETE = "DELETE FROM webhook_outbox WHERE event_id = $1"
# Rows no request is still publishing, oldest first; SKIP LOCKED lets every api's relay drain
# its own share at once.
_LEFT_OVER = (
    "SELECT event_id, key, record FROM webhook_outbox"
    " WHERE created_at < now() - make_interval(secs => $1)"
    " ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED"
)
_DELETE_MANY = "DELETE FROM webhook_outbox WHERE event_id = ANY($1::text[])"
_OLDEST_AGE = "SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0) FROM webhook_outbox"

Send = Callable[[str, bytes], Awaitable[None]]  # (key, encoded record); raises when not taken


async def stage(conn: asyncpg.Connection, record: EventRecord) -> None:
    """Write ``record`` in the caller's transaction (the registry change's)."""
    await conn.execute(_INSERT, record.event_id, record.key, encode(record))


async def remove(pool: asyncpg.Pool, event_id: str) -> None:
    await pool.execute(_DELETE, event_id)


async def relay_once(pool: asyncpg.Pool, send: Send, *, grace_s: float, batch: int) -> int:
    """Publish up to ``batch`` left-over rows and delete them, in one transaction (a row whose
    send fails stays, locked rows are another relay's). Returns how many were published."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(_LEFT_OVER, grace_s, batch)
        sent: list[str] = []
        try:
            for row in rows:
                await send(row["key"], bytes(row["record"]))
                sent.append(row["event_id"])
        finally:  # what Kafka took is deleted even when a later row failed
            if sent:
                await conn.execute(_DELETE_MANY, sent)
    metrics.webhook_events_total.labels(outcome="relayed").inc(len(sent))
    return len(sent)


async def relay(
    pool: asyncpg.Pool, send: Send, *, every_s: float, grace_s: float, batch: int = 100
) -> None:
    """Run ``relay_once`` every ``every_s`` until cancelled; failures are logged and retried."""
    while True:
        try:
            while await relay_once(pool, send, grace_s=grace_s, batch=batch) == batch:
                pass  # a full batch: more may be waiting
            metrics.webhook_outbox_oldest_seconds.set(float(await pool.fetchval(_OLDEST_AGE)))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # PostgreSQL or Kafka away: the rows wait for the next round
            log.warning("webhook outbox relay failed; retrying", extra={"error": repr(exc)})
        await asyncio.sleep(every_s)
