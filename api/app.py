"""Api app factory: routes from the shared table, resources owned by cleanup contexts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from api import (
    bulk_history,
    experiment_lifecycle,
    experiments,
    history,
    info,
    inputs,
    logged_models,
    runs,
    search,
)
from api.artifacts import handlers as artifact_handlers
from api.deps import Deps, deps_key
from api.fence import ReadFence
from api.registry import models as registry_models
from api.registry import versions as registry_versions
from api.traces import assessments as trace_assessments
from api.traces import handlers as trace_handlers
from api.traces.fence import trace_fence_context
from schemas.routes import routes_of
from sluice import health, kafka, metrics, pg
from sluice.auth import auth_middleware
from sluice.config import Settings
from sluice.http import error_middleware

_HANDLER_MODULES = (
    bulk_history,
    experiment_lifecycle,
    experiments,
    history,
    info,
    inputs,
    runs,
    search,
    # Model registry, artifacts and logged models (issue 4).
    registry_models,
    registry_versions,
    artifact_handlers,
    logged_models,
    # Traces (issue 13).
    trace_handlers,
    trace_assessments,
)


def _handler(name: str) -> Callable[[web.Request], Any]:
    for module in _HANDLER_MODULES:
        if hasattr(module, name):
            return getattr(module, name)  # type: ignore[no-any-return]
    raise LookupError(f"no api handler named {name}")


def build_app(settings: Settings) -> web.Application:
    app = web.Application(
        client_max_size=settings.api.max_body_bytes,
        middlewares=[error_middleware(metrics.api_request_seconds)],
    )
    if settings.auth.enabled:  # inside the error middleware: 401/403/429 become MLflow JSON
        app.middlewares.append(auth_middleware(settings.auth, lambda: app[deps_key].pool))
    app.cleanup_ctx.append(lambda a: _resources(a, settings))
    app.cleanup_ctx.append(lambda a: artifact_handlers.artifact_store_context(a, settings.api))
    app.cleanup_ctx.append(lambda a: trace_fence_context(a, settings))
    for route in routes_of("api"):
        for url in route.urls():
            app.router.add_route(route.method, url, _handler(route.handler))
    app.router.add_get("/version", _version)
    health.add_health_routes(app, lambda: _ready(app))
    return app


async def _version(_: web.Request) -> web.Response:
    # Clients >= 3.4 parse this to pick the tracing path; report the pinned MLflow API level.
    return web.Response(text="3.17.2")


async def _ready(app: web.Application) -> bool:
    deps = app.get(deps_key)
    return deps is not None and await pg.ping(deps.pool)


async def _resources(app: web.Application, settings: Settings) -> AsyncIterator[None]:
    pool = await pg.create_pool(settings.pg, custom_plans=True)
    partitions = await kafka.partition_count(settings.kafka, settings.kafka.topic)
    consumer = kafka.create_consumer(settings.kafka, group_id=None)
    await consumer.start()
    fence = ReadFence(
        consumer, pool, settings.kafka.topic, partitions, settings.api.read_fence_deadline_s
    )
    app[deps_key] = Deps(pool=pool, fence=fence, max_body_bytes=settings.api.max_body_bytes)
    yield
    await consumer.stop()
    await pool.close()
