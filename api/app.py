"""Api app factory: routes from the shared table, resources owned by cleanup contexts."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from api.artifacts.handlers import artifact_store_context
from api.deps import Deps, deps_key
from api.experiments import store as experiments
from api.logged_models import store as logged_models
from api.read_fence import ReadFence
from api.runs import store as runs
from api.traces import store as traces
from api.traces.fence import trace_fence_context
from api.ui import bundle as ui_bundle
from api.webhooks.context import webhooks_context
from schemas.routes import routes_of
from sluice import health, kafka, metrics, pg
from sluice.auth import Owners, auth_middleware
from sluice.config import Settings
from sluice.http import bind_handler, error_middleware

# Which experiment a request acts on, for access control: each resource's own store answers.
OWNERS = Owners(
    experiment_of_run=runs.experiment_of,
    experiment_of_logged_model=logged_models.experiment_of,
    experiment_by_name=experiments.id_by_name,
    experiment_of_trace=traces.experiment_of,
)


def build_app(settings: Settings) -> web.Application:
    app = web.Application(
        client_max_size=settings.api.max_body_bytes,
        middlewares=[error_middleware(metrics.api_request_seconds)],
    )
    if settings.auth.enabled:  # inside the error middleware: 401/403/429 become MLflow JSON
        app.middlewares.append(auth_middleware(settings.auth, lambda: app[deps_key].pool, OWNERS))
    app.cleanup_ctx.append(lambda a: _resources(a, settings))
    app.cleanup_ctx.append(lambda a: artifact_store_context(a, settings.api))
    app.cleanup_ctx.append(lambda a: ui_bundle.bundle_context(a, settings.api))
    app.cleanup_ctx.append(lambda a: trace_fence_context(a, settings))
    app.cleanup_ctx.append(lambda a: webhooks_context(a, settings))  # after _resources (pool)
    for route in routes_of("api"):
        if route.handler in ui_bundle.HANDLERS and not settings.api.ui_enabled:
            continue  # headless: no web UI
        for url in route.urls():
            app.router.add_route(route.method, url, bind_handler(route.handler))
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
    await kafka.start(consumer, settings.kafka)
    fence = ReadFence(
        consumer, pool, settings.kafka.topic, partitions, settings.api.read_fence_deadline_s
    )
    app[deps_key] = Deps(pool=pool, fence=fence, max_body_bytes=settings.api.max_body_bytes)
    yield
    await fence.close()
    await consumer.stop()
    await pool.close()
