"""Ingest app factory: routes from the shared table, resources owned by cleanup contexts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from ingest import store
from ingest.deps import Deps, deps_key
from ingest.experiments import Experiments
from ingest.produce import Producer
from ingest.runs import RunStates, listen
from ingest.stored_traces import StoredTraces
from schemas.routes import routes_of
from sluice import health, kafka, metrics, pg
from sluice.auth import Owners, auth_middleware
from sluice.config import Settings
from sluice.http import bind_handler, error_middleware


def build_app(settings: Settings) -> web.Application:
    app = web.Application(
        client_max_size=settings.ingest.max_body_bytes,
        middlewares=[error_middleware(metrics.ingest_request_seconds)],
    )
    if settings.auth.enabled:  # inside the error middleware: 401/403/429 become MLflow JSON
        owners = Owners(
            experiment_of_run=store.experiment_of_run,
            experiment_of_trace=store.experiment_of_trace,
        )
        app.middlewares.append(auth_middleware(settings.auth, lambda: app[deps_key].pool, owners))
    app.cleanup_ctx.append(lambda a: _resources(a, settings))
    for route in routes_of("ingest"):
        for url in route.urls():
            app.router.add_route(route.method, url, bind_handler(route.handler))
    health.add_health_routes(app, lambda: _ready(app))
    return app


async def _ready(app: web.Application) -> bool:
    deps = app.get(deps_key)
    return deps is not None and await pg.ping(deps.pool) and await deps.producer.ready()


async def _resources(app: web.Application, settings: Settings) -> AsyncIterator[None]:
    pool = await pg.create_pool(settings.pg)
    partitions = await kafka.partition_count(settings.kafka, settings.kafka.topic)
    trace_partitions = await kafka.partition_count(settings.kafka, settings.kafka.traces_topic)
    producer = kafka.create_producer(settings.kafka)
    await kafka.start(producer, settings.kafka)
    # Asks the traces topic for end offsets only (no group): EndTrace's fence.
    consumer = kafka.create_consumer(settings.kafka, group_id=None)
    await kafka.start(consumer, settings.kafka)
    runs = RunStates(pool, settings.ingest.run_cache_ttl_s, settings.ingest.run_cache_size)
    stop = asyncio.Event()
    listener = asyncio.create_task(listen(runs, settings.pg.dsn, stop))
    app[deps_key] = Deps(
        pool=pool,
        runs=runs,
        producer=Producer(
            producer, settings.kafka.topic, partitions, settings.kafka.produce_deadline_s
        ),
        max_body_bytes=settings.ingest.max_body_bytes,
        experiments=Experiments(pool, settings.ingest.run_cache_ttl_s),
        trace_producer=Producer(
            producer,
            settings.kafka.traces_topic,
            trace_partitions,
            settings.kafka.produce_deadline_s,
        ),
        stored_traces=StoredTraces(
            pool,
            consumer,
            settings.kafka.traces_topic,
            trace_partitions,
            settings.ingest.end_trace_deadline_s,
        ),
    )
    yield
    stop.set()
    await listener
    await consumer.stop()
    await producer.stop()  # flushes records still in the accumulator
    await pool.close()
