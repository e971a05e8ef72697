"""Run-state cache: is this run active? Answered synchronously before anything is produced.

Positive answers are cached for a short TTL and invalidated early by PostgreSQL NOTIFY (a trigger
on ``runs.lifecycle_stage``). The cache is cleared whenever the LISTEN connection (re)connects,
because notifications sent while it was down are lost. While it is down, entries still expire
after the TTL: staleness is bounded by ``run_cache_ttl_s``, and ingest keeps accepting points
for known runs through a short PostgreSQL outage (Kafka buffers them).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable

import asyncpg

from schemas.mlflow_errors import does_not_exist, invalid_parameter

log = logging.getLogger(__name__)

CHANNEL = "sluice_run_lifecycle"


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
        self.listening = False

    async def require_active(self, run_id: str) -> None:
        """Raise MLflow's 404 for an unknown run and its 400 for a deleted one."""
        if self._cached(run_id):
            return
        stage = await self._pool.fetchval(
            "SELECT lifecycle_stage FROM runs WHERE run_uuid = $1", run_id
        )
        if stage is None:
            raise does_not_exist(f"Run with id={run_id} not found")
        if stage != "active":
            raise invalid_parameter(
                f"The run {run_id} must be in the 'active' state. Current state is {stage}."
            )
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
        states.listening = False
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
        states.listening = True
        waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(lost.wait())]
        _done, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
    finally:
        states.listening = False
        await conn.close(timeout=2)
