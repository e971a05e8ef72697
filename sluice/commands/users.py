"""``sluice user-add | token-add | grant``: manage access-control users from the command line."""

from __future__ import annotations

import secrets

import asyncpg

from schemas.access import Level
from sluice.config import PgConfig
from sluice.identity import hash_password, token_digest


async def add_user(pg: PgConfig, username: str, password: str, is_admin: bool) -> None:
    """Create or update a user (password and admin flag)."""
    conn = await asyncpg.connect(pg.dsn)
    try:
        await conn.execute(
            "INSERT INTO auth_users (username, password_hash, is_admin) VALUES ($1, $2, $3)"
            " ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash,"
            " is_admin = excluded.is_admin",
            username,
            hash_password(password),
            is_admin,
        )
    finally:
        await conn.close()


async def add_token(pg: PgConfig, username: str) -> str:
    """A new API token for ``username``; only its hash is stored, so print it now."""
    token = secrets.token_urlsafe(32)
    conn = await asyncpg.connect(pg.dsn)
    try:
        await conn.execute(
            "INSERT INTO auth_tokens (token_sha256, username) VALUES ($1, $2)",
            token_digest(token),
            username,
        )
    finally:
        await conn.close()
    return token


async def grant(pg: PgConfig, username: str, kind: str, target: str, level: str) -> None:
    """Set ``username``'s permission on an experiment (id) or a registered model (name)."""
    Level[level]
    table, column, key = (
        ("experiment_permissions", "experiment_id", int(target))
        if kind == "experiment"
        else ("registered_model_permissions", "name", target)
    )
    conn = await asyncpg.connect(pg.dsn)
    try:
        await conn.execute(
            f"INSERT INTO {table} ({column}, username, permission) VALUES ($1, $2, $3)"
            f" ON CONFLICT ({column}, username) DO UPDATE SET permission = excluded.permission",
            key,
            username,
            level,
        )
    finally:
        await conn.close()
