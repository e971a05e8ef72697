"""Access control at the HTTP edge of ingest and api (on when SLUICE_AUTH_ENABLED=true).

Order per request: find the handler's rule (schemas/access.py); identify the caller
(sluice/identity.py) -> 401; rate-limit the caller (sluice/limits.py) -> 429 + Retry-After;
find the experiment or registered model the request acts on and check the caller's grant
-> 403. All of it happens before the handler, so a refused write is never produced to Kafka.
Which experiment a run or logged model belongs to is the owning service's query (``Owners``,
from its stores); the grants themselves (``*_permissions``) are read here. Grants are cached
for ``cache_ttl_s``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from schemas.access import RULES, Level, Resource, Rule, Viewer, allowed
from schemas.mlflow_errors import MlflowError, Unavailable
from schemas.route_record import handler_ref
from sluice.config import AuthConfig
from sluice.http import read_decoded
from sluice.identity import Identities, User
from sluice.limits import RateLimiter, TtlCache

Lookup = Callable[[asyncpg.Pool, str], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Owners:
    """The queries that find the experiment a request acts on, from the service's own stores
    (api: runs, logged models, experiments by name; ingest: runs). A kind without a query
    is not identifiable: the handler answers MLflow's 400/404 itself."""

    experiment_of_run: Lookup
    experiment_of_logged_model: Lookup | None = None
    experiment_by_name: Lookup | None = None
    experiment_of_trace: Lookup | None = None


# --- the I/O shell ----------------------------------------------------------------------------
class Authorizer:
    def __init__(self, cfg: AuthConfig, pool: Callable[[], asyncpg.Pool], owners: Owners) -> None:
        self._pool = pool
        self._owners = owners
        self._default = Level[cfg.default_permission]
        self.identities = Identities(pool, cfg.cache_ttl_s)
        self._grants = TtlCache(cfg.cache_ttl_s)
        self._limiter = RateLimiter(cfg.rate_per_s, cfg.rate_burst)

    def throttle(self, user: User) -> None:
        wait = self._limiter.take(user.name)
        if wait > 0:
            raise Unavailable(f"Rate limit exceeded for user {user.name}.", max(1, round(wait)))

    async def check(self, rule: Rule, user: User, request: web.Request) -> None:
        if user.is_admin or rule.resource is Resource.NONE:
            return
        if rule.resource is Resource.ADMIN:
            raise MlflowError("PERMISSION_DENIED", "Permission denied")
        target = await self._resource_of(rule.resource, request)
        if target is None:
            return  # not identifiable: the handler answers MLflow's 400/404 itself
        granted = await self._grant(target, user.name)
        if not allowed(rule, user.is_admin, granted, self._default):
            raise MlflowError("PERMISSION_DENIED", "Permission denied")

    def viewer(self, user: User) -> Viewer | None:
        return None if user.is_admin else Viewer(user.name, self._default)

    async def require_experiment(self, user: User, experiment_id: int, level: Level) -> None:
        """For checks inside a handler (GraphQL resolves runs and experiments one by one)."""
        if user.is_admin:
            return
        granted = await self._grant(("experiment", experiment_id), user.name)
        if not allowed(Rule(Resource.EXPERIMENT, level), False, granted, self._default):
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
        if kind is Resource.ARTIFACT:
            return _int(request.match_info.get("artifact_path", "").split("/", 1)[0])
        if kind is Resource.LOGGED_MODEL:
            return await self._owner(
                self._owners.experiment_of_logged_model, request.match_info.get("model_id", "")
            )
        if kind is Resource.TRACE:
            return await self._trace_experiment(request)
        doc = await _request_doc(request)
        if kind is Resource.RUN:
            run_id = doc.get("run_id") or doc.get("run_uuid")
            if not isinstance(run_id, str):
                return None
            return await self._owner(self._owners.experiment_of_run, run_id)
        if "experiment_id" in doc:
            return _int(doc["experiment_id"])
        name = doc.get("experiment_name")
        if not isinstance(name, str):
            return None
        return await self._owner(self._owners.experiment_by_name, name)

    async def _owner(self, lookup: Lookup | None, key: str) -> int | None:
        return None if lookup is None else _int(await lookup(self._pool(), key))

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
        return await self._owner(self._owners.experiment_of_trace, trace_id)


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
        doc = orjson.loads(await read_decoded(request))
    except orjson.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}


_USER = web.RequestKey("sluice_auth_user", User)
_AUTHORIZER = web.RequestKey("sluice_auth_authorizer", Authorizer)


def current_user_of(request: web.Request) -> User | None:
    """The caller the middleware identified; None when access control is off (or the route is
    public)."""
    return request.get(_USER)


async def require_experiment(
    request: web.Request, experiment_id: int, level: Level = Level.READ
) -> None:
    """Raise PERMISSION_DENIED unless the caller reaches ``level`` on the experiment; a no-op
    when access control is off."""
    user, authorizer = request.get(_USER), request.get(_AUTHORIZER)
    if user is not None and authorizer is not None:
        await authorizer.require_experiment(user, experiment_id, level)


def viewer_of(request: web.Request) -> Viewer | None:
    """Whose permissions a search answer is cut to; None when access control is off or the
    caller is an admin (nothing to cut)."""
    user, authorizer = request.get(_USER), request.get(_AUTHORIZER)
    return None if user is None or authorizer is None else authorizer.viewer(user)


def auth_middleware(
    cfg: AuthConfig, pool: Callable[[], asyncpg.Pool], owners: Owners
) -> Middleware:
    authorizer = Authorizer(cfg, pool, owners)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        rule = RULES.get(handler_ref(request.match_info.route.handler))
        if rule is None or rule.public:
            return await handler(request)  # health, metrics, version, unknown routes (404)
        user = await authorizer.identities.identify(request.headers.get("Authorization"))
        authorizer.throttle(user)
        await authorizer.check(rule, user, request)
        request[_USER], request[_AUTHORIZER] = user, authorizer
        response = await handler(request)
        if (
            rule.creates is not None
            and response.status == 200
            and isinstance(response, web.Response)
        ):
            await authorizer.record_creation(rule, user, request, response.body or b"{}")  # type: ignore[arg-type]
        return response

    return middleware
