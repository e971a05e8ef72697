"""sluice.pg's pool against a real PostgreSQL: releasing a connection costs no reset statement,
yet a transaction left open is still rolled back (asyncpg does that without the statement)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from sluice import pg
from sluice.config import PgConfig
from tests.stack import Stack

pytestmark = pytest.mark.services


async def test_release_sends_no_reset_statement_but_rolls_back(stack: Stack) -> None:
    pool = await pg.create_pool(PgConfig(dsn=stack.dsn), max_size=1)
    try:
        async with pool.acquire() as conn:
            pid = await conn.fetchval("SELECT pg_backend_pid()")
            await conn.execute("BEGIN")
            await conn.execute("CREATE TEMP TABLE left_open (x int)")
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT pg_backend_pid()") == pid  # the same session
            assert await conn.fetchval("SELECT to_regclass('pg_temp.left_open')") is None
            assert await conn.fetchval("SELECT 1") == 1
        # released: the backend's last statement is still the probe, not asyncpg's RESET ALL
        observer = await asyncpg.connect(stack.dsn)
        try:
            query = await observer.fetchval(
                "SELECT query FROM pg_stat_activity WHERE pid = $1", pid
            )
        finally:
            await observer.close()
        assert query == "SELECT 1"
    finally:
        await pool.close()


async def test_every_acquire_waits_at_most_the_configured_deadline(stack: Stack) -> None:
    """Also the implicit acquire of pool.fetch: a full pool is a TimeoutError (a 429 at the
    HTTP edge) after acquire_timeout_s, not a wait as long as the queue ahead."""
    cfg = PgConfig(dsn=stack.dsn, pool_min=1, acquire_timeout_s=0.3)
    pool = await pg.create_pool(cfg, max_size=1)
    try:
        async with pool.acquire():
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(TimeoutError):
                await pool.fetchval("SELECT 1")
            assert 0.25 <= loop.time() - started < 3
            with pytest.raises(TimeoutError):
                async with pool.acquire():
                    pass
        assert await pool.fetchval("SELECT 1") == 1  # free again: served at once
        assert TimeoutError in pg.TRANSIENT_ERRORS
    finally:
        await pool.close()
