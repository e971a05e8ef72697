"""Access control at the HTTP edge of ingest and api (on when SLUICE_AUTH_ENABLED=true).

Order per request: find the handler's rule (schemas/access.py); identify the caller from
``Authorization: Basic`` (username/password) or ``Bearer`` (API token) -> 401; rate-limit the
caller -> 429 + Retry-After; resolve the resource (experiment, run, model...) from the request
and check the grant -> 403. All of it happens before the handler, so a refused write is never
produced to Kafka. Identities and grants are cached for ``cache_ttl_s``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from schemas.access import RULES, Level, Resource, Rule, allowed
from schemas.mlflow_errors import MlflowError, Unavailable
from sluice.config import AuthConfig

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


# --- small bounded caches and the rate limiter ------------------------------------------------
class TtlCache:
    def __init__(self, ttl_s: float, size: int = 10_000) -> None:
        self._ttl_s, self._size = ttl_s, size
        self._items: OrderedDict[object, tuple[float, object]] = OrderedDict()

    def get(self, key: object) -> object | None:
        hit = self._items.get(key)
        if hit is None or time.monotonic() - hit[0] > self._ttl_s:
            return None
        return hit[1]

    def put(self, key: object, value: object) -> None:
        self._items[key] = (time.monotonic(), value)
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)


class RateLimiter:
    """Token bucket per user: ``rate_per_s`` sustained, ``burst`` at once."""

    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self._rate, self._burst, self._clock = rate_per_s, burst, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, user: str) -> float:
        """0 when allowed, else the seconds until a request would be."""
        if self._rate <= 0:
            return 0.0
        now = self._clock()
        tokens, at = self._buckets.get(user, (float(self._burst), now))
        tokens = min(float(self._burst), tokens + (now - at) * self._rate)
        if tokens < 1:
            self._buckets[user] = (tokens, now)
            return (1 - tokens) / self._rate
        self._buckets[user] = (tokens - 1, now)
        self._buckets.move_to_end(user)
        if len(self._buckets) > 100_000:
            self._buckets.popitem(last=False)
        return 0.0


# --- the I/O shell ----------------------------------------------------------------------------
class Authorizer:
    def __init__(self, cfg: AuthConfig, pool: Callable[[], asyncpg.Pool]) -> None:
        self._cfg = cfg
        self._pool = pool
        self._default = Level[cfg.default_permission]
        self._identities = TtlCache(cfg.cache_ttl_s)
        self._grants = TtlCache(cfg.cache_ttl_s)
        self._limiter = RateLimiter(cfg.rate_per_s, cfg.rate_burst)

    async def identify(self, header: str | None) -> User:
        if not header:
            raise MlflowError("UNAUTHENTICATED", _UNAUTHENTICATED)
        cached = self._identities.get(header)
        if isinstance(cached, User):
            return cached
        user = await self._lookup(header)
        if user is None:
            raise MlflowError("UNAUTHENTICATED", _UNAUTHENTICATED)
        self._identities.put(header, user)
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

    def throttle(self, user: User) -> None:
        wait = self._limiter.take(user.name)
        if wait > 0:
            raise Unavailable(f"Rate limit exceeded for user {user.name}.", max(1, round(wait)))

    async def check(self, rule: Rule, user: User, request: web.Request) -> None:
        if user.is_admin or rule.resource is Resource.NONE:
            return
        target = await self._resource_of(rule.resource, request)
        if target is None:
            return  # not identifiable: the handler answers MLflow's 400/404 itself
        granted = await self._grant(target, user.name)
        if not allowed(rule, user.is_admin, granted, self._default):
            raise MlflowError("PERMISSION_DENIED", "Permission denied")

    async def record_creation(
        self, rule: Rule, user: User, request: web.Request, body: bytes
    ) -> None:
        """The creator of an experiment or registered model gets MANAGE on it."""
        if rule.creates is Resource.EXPERIMENT:
            created = orjson.loads(body).get("experiment_id")
            table, key = "experiment_permissions", int(created) if created else None
        else:
            doc = await _request_doc(request)
            table, key = "registered_model_permissions", doc.get("name")
        if key is None:
            return
        column = "experiment_id" if table == "experiment_permissions" else "name"
        await self._pool().execute(
            f"INSERT INTO {table} ({column}, username, permission) VALUES ($1, $2, 'MANAGE')"
            f" ON CONFLICT ({column}, username) DO UPDATE SET permission = 'MANAGE'",
            key,
            user.name,
        )

    async def _grant(self, target: tuple[str, object], username: str) -> Level | None:
        cache_key = (*target, username)
        cached = self._grants.get(cache_key)
        if isinstance(cached, Level):
            return cached
        table, column = (
            ("experiment_permissions", "experiment_id")
            if target[0] == "experiment"
            else ("registered_model_permissions", "name")
        )
        raw = await self._pool().fetchval(
            f"SELECT permission FROM {table} WHERE {column} = $1 AND username = $2",
            target[1],
            username,
        )
        level = Level[raw] if raw else None
        if level is not None:
            self._grants.put(cache_key, level)
        return level

    async def _resource_of(self, kind: Resource, request: web.Request) -> tuple[str, object] | None:
        if kind is Resource.MODEL:
            name = (await _request_doc(request)).get("name")
            return ("model", name) if isinstance(name, str) and name else None
        experiment = await self._experiment_of(kind, request)
        return ("experiment", experiment) if experiment is not None else None

    async def _experiment_of(self, kind: Resource, request: web.Request) -> int | None:
        pool = self._pool()
        if kind is Resource.ARTIFACT:
            return _int(request.match_info.get("artifact_path", "").split("/", 1)[0])
        if kind is Resource.LOGGED_MODEL:
            return _int(
                await pool.fetchval(
                    "SELECT experiment_id FROM logged_models WHERE model_id = $1",
                    request.match_info.get("model_id", ""),
                )
            )
        if kind is Resource.TRACE:
            return await self._trace_experiment(request)
        doc = await _request_doc(request)
        if kind is Resource.RUN:
            run_id = doc.get("run_id") or doc.get("run_uuid")
            if not isinstance(run_id, str):
                return None
            return _int(
                await pool.fetchval("SELECT experiment_id FROM runs WHERE run_uuid = $1", run_id)
            )
        if "experiment_id" in doc:
            return _int(doc["experiment_id"])
        name = doc.get("experiment_name")
        if not isinstance(name, str):
            return None
        return _int(
            await pool.fetchval("SELECT experiment_id FROM experiments WHERE name = $1", name)
        )

    async def _trace_experiment(self, request: web.Request) -> int | None:
        """The experiment a trace call acts on (schemas/access.py, Resource.TRACE)."""
        header = request.headers.get("x-mlflow-experiment-id")
        if header is not None:
            return _int(header)
        trace_id = request.match_info.get("trace_id") or request.match_info.get("request_id")
        doc = {} if trace_id else await _request_doc(request)
        location = _nested(doc, "trace", "trace_info", "trace_location", "mlflow_experiment")
        if isinstance(location, dict) and "experiment_id" in location:
            return _int(location["experiment_id"])
        if "experiment_id" in doc:
            return _int(doc["experiment_id"])
        trace_id = trace_id or doc.get("trace_id") or doc.get("request_id")
        if not isinstance(trace_id, str):
            return None
        return _int(
            await self._pool().fetchval(
                "SELECT experiment_id FROM trace_info WHERE trace_id = $1", trace_id
            )
        )


def _nested(doc: Any, *names: str) -> Any:
    for name in names:
        doc = doc.get(name) if isinstance(doc, dict) else None
    return doc


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


async def _request_doc(request: web.Request) -> dict[str, Any]:
    """Just enough of the request to find its resource: query for GET, JSON body otherwise
    (the body is read once and cached by aiohttp; client_max_size bounds it)."""
    if request.method == "GET":
        return dict(request.query)
    try:
        doc = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}


def auth_middleware(cfg: AuthConfig, pool: Callable[[], asyncpg.Pool]) -> Middleware:
    authorizer = Authorizer(cfg, pool)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        rule = RULES.get(getattr(request.match_info.route.handler, "__name__", ""))
        if rule is None or rule.public:
            return await handler(request)  # health, metrics, version, unknown routes (404)
        user = await authorizer.identify(request.headers.get("Authorization"))
        authorizer.throttle(user)
        await authorizer.check(rule, user, request)
        response = await handler(request)
        if (
            rule.creates is not None
            and response.status == 200
            and isinstance(response, web.Response)
        ):
            await authorizer.record_creation(rule, user, request, response.body or b"{}")  # type: ignore[arg-type]
        return response

    return middleware
