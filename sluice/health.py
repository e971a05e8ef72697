"""Health and metrics endpoints shared by every service.

Liveness answers "is the process making progress" (never depends on Kafka or PostgreSQL, so an
outage does not get healthy processes restarted); readiness answers "can it serve now".
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

ReadyCheck = Callable[[], Awaitable[bool]]

# This process's `/health/config` document (sluice.buildinfo), set once by the CLI at start.
_config_doc: dict[str, Any] = {}


def set_config_document(doc: dict[str, Any]) -> None:
    _config_doc.clear()
    _config_doc.update(doc)


class Heartbeat:
    """Progress marker for loops that are not request driven (the writer's consume loops)."""

    def __init__(self, name: str, stall_after_s: float) -> None:
        self.name = name  # the loop, as liveness reports it
        self._stall_after_s = stall_after_s
        self._last = time.monotonic()

    def beat(self) -> None:
        self._last = time.monotonic()

    def alive(self) -> bool:
        return time.monotonic() - self._last < self._stall_after_s


def add_health_routes(
    app: web.Application,
    ready: ReadyCheck,
    heartbeats: Sequence[Heartbeat] = (),
    *,
    include_mlflow_health: bool = True,
) -> None:
    async def live(_: web.Request) -> web.Response:
        """Stalled (503) when any loop stopped beating; the answer names each loop's state."""
        if not heartbeats:
            return web.json_response({"status": "ok"})
        loops = {h.name: "ok" if h.alive() else "stalled" for h in heartbeats}
        stalled = "stalled" in loops.values()
        return web.json_response(
            {"status": "stalled" if stalled else "ok", "loops": loops},
            status=503 if stalled else 200,
        )

    async def readiness(_: web.Request) -> web.Response:
        ok = await ready()
        return web.json_response(
            {"status": "ok" if ok else "unavailable"}, status=200 if ok else 503
        )

    async def plain_ok(_: web.Request) -> web.Response:
        return web.Response(text="OK")  # MLflow's GET /health

    async def metrics(_: web.Request) -> web.Response:
        resp = web.Response(body=generate_latest())
        resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return resp

    async def config_view(_: web.Request) -> web.Response:
        return web.json_response(_config_doc)  # secrets are masked by sluice.settings_doc

    app.router.add_get("/health/live", live)
    app.router.add_get("/health/config", config_view)
    app.router.add_get("/health/ready", readiness)
    if include_mlflow_health:
        app.router.add_get("/health", plain_ok)
    app.router.add_get("/metrics", metrics)
