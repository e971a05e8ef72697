"""Is this run active? Answered synchronously before anything is produced.

Exact while PostgreSQL answers: every write looks the run up, so a delete answered a moment
ago already refuses the next write (MLflow's semantics). The lookups of concurrent requests are
coalesced into one ``= ANY($1)`` query per event-loop turn, so the cost stays one round trip per
burst, not per request.

Available while PostgreSQL does not: recent positive answers are kept for ``run_cache_ttl_s``
(invalidated early by NOTIFY from a trigger on ``runs.lifecycle_stage``; cleared whenever the
LISTEN connection reconnects, since notifications sent meanwhile are lost). When the lookup
fails or times out, a run seen active within the TTL is still accepted -- Kafka buffers its
points through the outage -- and anything else gets 429 + Retry-After.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable

import asyncpg

from schemas.mlflow_errors import no_such_run, not_active
from sluice.pg import TRANSIENT_ERRORS

log = logging.getLogger(__name__)

CHANNEL = "sluice_run_lifecycle"


_LOOKUP_DEADLINE_S = 1.0  # past it, PostgreSQL counts as unreachable for this request
_LOOKUP = "SELECT run_uuid, lifecycle_stage FROM runs WHERE run_uuid = ANY($1::text[])"


class _Lookups:
    """Coalesces the run lookups of one event-loop turn into a single query."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._pending: dict[str, asyncio.Future[str | None]] = {}
        self._task: asyncio.Task[None] | None = None

    async def stage(self, run_id: str) -> str | None:
        future = self._pending.get(run_id)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._pending[run_id] = future
            if self._task is None:
                self._task = asyncio.create_task(self._run())
        # shield: one caller's deadline must not cancel the answer others wait for
        return await asyncio.shield(future)

    async def _run(self) -> None:
        await asyncio.sleep(0)  # let the requests of this turn join
        batch, self._pending, self._task = self._pending, {}, None
        try:
            rows = await self._pool.fetch(_LOOKUP, list(batch))
        except BaseException as exc:
            for future in batch.values():
                if not future.done():
                    future.set_exception(exc)
                    future.exception()  # retrieved: no "never retrieved" noise if all timed out
            if not isinstance(exc, Exception):
                raise
            return
        found = {row["run_uuid"]: row["lifecycle_stage"] for row in rows}
        for run_id, future in batch.items():
            if not future.done():
                future.set_result(found.get(run_id))


class RunStates:
    def __init__(
        self,
        pool: asyncpg.Pool,
        ttl_s: float,
        max_entries: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self._ttl_s = ttl_s
        self._max = max_entries
        self._clock = clock
        self._active: OrderedDict[str, float] = OrderedDict()  # run id -> checked at
        self._lookups = _Lookups(pool)

    async def require_active(self, run_id: str) -> None:
        """Raise MLflow's 404 for an unknown run and its 400 for a deleted one."""
        try:
            stage = await asyncio.wait_for(self._lookups.stage(run_id), _LOOKUP_DEADLINE_S)
        except TRANSIENT_ERRORS:
            if self._cached(run_id):
                return  # PostgreSQL unreachable: trust a recent answer (bounded staleness)
            raise
        if stage is None:
            raise no_such_run(run_id)
        if stage != "active":
            raise not_active("run", run_id, stage)
        self._remember(run_id)

    def invalidate(self, run_id: str) -> None:
        self._active.pop(run_id, None)

    def clear(self) -> None:
        self._active.clear()

    def _cached(self, run_id: str) -> bool:
        checked_at = self._active.get(run_id)
        if checked_at is None:
            return False
        if self._clock() - checked_at > self._ttl_s:
            del self._active[run_id]
            return False
        return True

    def _remember(self, run_id: str) -> None:
        self._active[run_id] = self._clock()
        self._active.move_to_end(run_id)
        while len(self._active) > self._max:
            self._active.popitem(last=False)


async def listen(states: RunStates, dsn: str, stop: asyncio.Event) -> None:
    """Keep a LISTEN connection open; the cache is cleared on every (re)connect."""
    delay = 0.5
    while not stop.is_set():
        try:
            await _listen_once(states, dsn, stop)
            delay = 0.5
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            log.warning("run lifecycle listener down", extra={"err": repr(exc)})
        try:
            await asyncio.wait_for(stop.wait(), timeout=delay)
        except TimeoutError:
            delay = min(delay * 2, 10.0)


async def _listen_once(states: RunStates, dsn: str, stop: asyncio.Event) -> None:
    conn = await asyncpg.connect(dsn, timeout=5)
    lost = asyncio.Event()
    conn.add_termination_listener(lambda _conn: lost.set())
    try:
        await conn.add_listener(CHANNEL, lambda _c, _pid, _ch, run_id: states.invalidate(run_id))
        states.clear()
        waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(lost.wait())]
        _done, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
    finally:
        await conn.close(timeout=2)
