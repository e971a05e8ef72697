"""sluice.pg's pool against a real PostgreSQL: releasing a connection costs no reset statement,
yet a transaction left open is still rolled back (asyncpg does that without the statement)."""

from __future__ import annotations

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
