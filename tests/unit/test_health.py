"""Liveness of a process with several consume loops (the writer's metrics and traces loops):
every loop's heartbeat is on /health/live, and one stalled loop makes the process stalled."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from sluice import health


async def _always_ready() -> bool:
    return True


async def _live(heartbeats: tuple[health.Heartbeat, ...]) -> tuple[int, object]:
    app = web.Application()
    health.add_health_routes(app, _always_ready, heartbeats)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/health/live")
        return response.status, await response.json()


async def test_live_names_every_loop() -> None:
    beats = (health.Heartbeat("metrics", 30.0), health.Heartbeat("traces", 30.0))
    assert await _live(beats) == (200, {"status": "ok", "loops": {"metrics": "ok", "traces": "ok"}})


async def test_a_stalled_trace_loop_makes_the_process_stalled() -> None:
    beats = (health.Heartbeat("metrics", 30.0), health.Heartbeat("traces", 0.0))
    assert await _live(beats) == (
        503,
        {"status": "stalled", "loops": {"metrics": "ok", "traces": "stalled"}},
    )


async def test_a_process_without_loops_is_live() -> None:
    assert await _live(()) == (200, {"status": "ok"})
