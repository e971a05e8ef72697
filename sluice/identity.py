"""Who is calling: the ``auth_users`` / ``auth_tokens`` lookup behind ``Authorization: Basic``
(username/password) or ``Bearer`` (API token), and the password and token hashing it uses.

Identities are cached for ``cache_ttl_s``; an unknown or wrong credential is MLflow's 401.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from schemas.mlflow_errors import MlflowError
from sluice.limits import TtlCache

_PBKDF2_ITERATIONS = 200_000
_UNAUTHENTICATED = (
    "You are not authenticated. Please see "
    "https://www.mlflow.org/docs/latest/auth/index.html#authenticating-to-mlflow "
    "on how to authenticate."
)


@dataclass(frozen=True, slots=True)
class User:
    name: str
    is_admin: bool


# --- passwords and tokens (pure) -------------------------------------------------------------
def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, _PBKDF2_ITERATIONS)
    return f"pbkdf2_sha256${_PBKDF2_ITERATIONS}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        _scheme, iterations, salt, digest = stored.split("$")
        computed = hashlib.pbkdf2_hmac(
            "sha256", password.encode(), bytes.fromhex(salt), int(iterations)
        )
    except ValueError:
        return False
    return hmac.compare_digest(computed.hex(), digest)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_basic(header: str) -> tuple[str, str] | None:
    try:
        decoded = base64.b64decode(header, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


# --- the lookup -------------------------------------------------------------------------------
class Identities:
    def __init__(self, pool: Callable[[], asyncpg.Pool], cache_ttl_s: float) -> None:
        self._pool = pool
        self._cache = TtlCache(cache_ttl_s)

    async def identify(self, header: str | None) -> User:
        if not header:
            raise MlflowError("UNAUTHENTICATED", _UNAUTHENTICATED)
        cached = self._cache.get(header)
        if isinstance(cached, User):
            return cached
        user = await self._lookup(header)
        if user is None:
            raise MlflowError("UNAUTHENTICATED", _UNAUTHENTICATED)
        self._cache.put(header, user)
        return user

    async def _lookup(self, header: str) -> User | None:
        scheme, _, value = header.partition(" ")
        pool = self._pool()
        if scheme.lower() == "bearer":
            row = await pool.fetchrow(
                "SELECT u.username, u.is_admin FROM auth_tokens t"
                " JOIN auth_users u USING (username) WHERE t.token_sha256 = $1",
                token_digest(value.strip()),
            )
            return User(row["username"], row["is_admin"]) if row else None
        credentials = parse_basic(value.strip()) if scheme.lower() == "basic" else None
        if credentials is None:
            return None
        row = await pool.fetchrow("SELECT * FROM auth_users WHERE username = $1", credentials[0])
        if row is None or not verify_password(credentials[1], row["password_hash"]):
            return None
        return User(row["username"], row["is_admin"])
