"""PostgreSQL pool factory: every process gets its connections from here."""

from __future__ import annotations

from typing import Any

import asyncpg

from sluice import metrics
from sluice.config import PgConfig
from sluice.errors import Unreachable
from sluice.settings_doc import mask

# Failures that say "PostgreSQL is unreachable or restarting", not "the request is wrong":
# the HTTP edge answers them with 429 + Retry-After, the writer retries its flush.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.TooManyConnectionsError,
)
# ... plus serialization failures and deadlocks: a writer transaction (flush, compaction) that
# failed with any of these is retried as a whole on a fresh connection.
RETRIABLE_TRANSACTION_ERRORS = (
    *TRANSIENT_ERRORS,
    asyncpg.TransactionRollbackError,
)


class _PooledConnection(asyncpg.Connection):  # type: ignore[misc]
    """A pool connection released without asyncpg's reset statement.

    asyncpg sends ``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`` on every
    release -- a second round trip for each one-statement request (ingest's run lookups, the
    api's reads). Sluice's pooled connections never leave session state: no SET, LISTEN,
    advisory locks or cursors outside transactions (LISTEN and the migration lock use their own
    connections). asyncpg still rolls back a transaction left open."""

    def get_reset_query(self) -> str:
        return ""


def unreachable(dsn: str, exc: BaseException) -> Unreachable:
    """The one line an operator sees when PostgreSQL does not answer at start-up."""
    reason = str(exc) or type(exc).__name__
    return Unreachable(f"cannot reach PostgreSQL at {mask(dsn)}: {reason}")


# What asyncpg raises when the server is down, refuses us, or the database is missing.
_CONNECT_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.CannotConnectNowError,
    asyncpg.InvalidCatalogNameError,
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.InvalidPasswordError,
)


async def connect(cfg: PgConfig) -> asyncpg.Connection:
    """One connection outside the pool (commands, LISTEN); raises Unreachable."""
    try:
        return await asyncpg.connect(cfg.dsn, timeout=cfg.acquire_timeout_s)
    except _CONNECT_ERRORS as exc:
        raise unreachable(cfg.dsn, exc) from exc


async def create_pool(
    cfg: PgConfig, *, max_size: int | None = None, custom_plans: bool = False
) -> asyncpg.Pool:
    """Open a pool; raises Unreachable when the server cannot be reached.

    ``custom_plans``: plan every execution with its parameter values. PostgreSQL switches a
    prepared statement to a generic plan after five executions, which loses plan-time partition
    pruning and array-size estimates: the api's chart query went from 2 to 11 ms a run."""
    try:
        pool = await _create_pool(cfg, max_size, custom_plans)
    except _CONNECT_ERRORS as exc:
        raise unreachable(cfg.dsn, exc) from exc
    _watch(pool)
    return pool


# Pools of this process (a few, created at start), read when /metrics is scraped; closed ones
# are dropped as they are seen.
_POOLS: list[asyncpg.Pool] = []


def _watch(pool: asyncpg.Pool) -> None:
    if not _POOLS:
        gauge = metrics.pg_pool_connections
        gauge.labels("in_use").set_function(
            lambda: sum(p.get_size() - p.get_idle_size() for p in _POOLS if not p.is_closing())
        )
        gauge.labels("idle").set_function(
            lambda: sum(p.get_idle_size() for p in _POOLS if not p.is_closing())
        )
        gauge.labels("max").set_function(
            lambda: sum(p.get_max_size() for p in _POOLS if not p.is_closing())
        )
    _POOLS[:] = [p for p in _POOLS if not p.is_closing()]
    _POOLS.append(pool)


class _DeadlinePool(asyncpg.Pool):  # type: ignore[misc]
    """A pool whose every acquire -- also the implicit one of ``pool.fetch`` and friends -- waits
    at most ``acquire_timeout_s`` for a free connection, then raises TimeoutError (a transient
    error: 429 + Retry-After at the HTTP edge, a retried flush in the writer)."""

    acquire_timeout_s: float = 5.0

    def acquire(self, *, timeout: float | None = None) -> Any:
        return super().acquire(timeout=self.acquire_timeout_s if timeout is None else timeout)


async def _create_pool(cfg: PgConfig, max_size: int | None, custom_plans: bool) -> asyncpg.Pool:
    pool = _DeadlinePool(
        cfg.dsn,
        min_size=cfg.pool_min,
        max_size=max_size or cfg.pool_max,
        max_queries=50_000,  # asyncpg.create_pool's defaults
        max_inactive_connection_lifetime=300.0,
        loop=None,
        record_class=asyncpg.Record,
        command_timeout=cfg.command_timeout_s,
        # Plans of the few hot statements are cached per connection anyway.
        statement_cache_size=256,
        connection_class=_PooledConnection,
        server_settings={"plan_cache_mode": "force_custom_plan"} if custom_plans else None,
    )
    pool.acquire_timeout_s = cfg.acquire_timeout_s
    return await pool


async def ping(pool: asyncpg.Pool, timeout_s: float = 1.0) -> bool:
    """Readiness probe: True when a connection answers within ``timeout_s``."""
    try:
        async with pool.acquire(timeout=timeout_s) as conn:
            await conn.fetchval("SELECT 1", timeout=timeout_s)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False
    return True
