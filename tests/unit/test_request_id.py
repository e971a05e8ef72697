"""The HTTP edge gives every request an id (the caller's X-Request-Id when it is plain, else a
new one), echoes it, puts it on every log line of the request, and writes one access-log line
per request only when the access log is on."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import Histogram

from sluice import logs
from sluice.http import error_middleware

_LATENCY = Histogram("test_request_id_seconds", "test", ["route", "status"])


async def _hello(_: web.Request) -> web.Response:
    logging.getLogger("test.handler").warning("inside")
    return web.Response(text=logs.request_id.get())


@pytest.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    logs.stamp_request_ids()  # as logs.configure does in every service
    app = web.Application(middlewares=[error_middleware(_LATENCY)])
    app.router.add_get("/hello", _hello)
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_the_callers_id_is_kept_and_echoed(
    client: TestClient[web.Request, web.Application], caplog: pytest.LogCaptureFixture
) -> None:
    resp = await client.get("/hello", headers={"X-Request-Id": "job-42.step-7"})
    assert resp.headers["X-Request-Id"] == "job-42.step-7"
    assert await resp.text() == "job-42.step-7"
    formatted = logs.JsonFormatter("t").format(
        next(r for r in caplog.records if r.name == "test.handler")
    )
    assert '"request_id":"job-42.step-7"' in formatted


async def test_a_missing_or_hostile_id_is_replaced(
    client: TestClient[web.Request, web.Application],
) -> None:
    for headers in ({}, {"X-Request-Id": "bad id\twith spaces"}, {"X-Request-Id": "x" * 200}):
        resp = await client.get("/hello", headers=headers)
        made = resp.headers["X-Request-Id"]
        assert len(made) == 32 and int(made, 16) >= 0
    assert logs.request_id.get() == ""  # reset after the request


async def test_access_log_is_off_by_default_and_one_line_when_on(
    client: TestClient[web.Request, web.Application], caplog: pytest.LogCaptureFixture
) -> None:
    access = logging.getLogger(logs.ACCESS_LOGGER)
    caplog.set_level(logging.INFO)
    access.setLevel(logging.CRITICAL)  # what logs.configure does without SLUICE_ACCESS_LOG
    await client.get("/hello")
    assert not [r for r in caplog.records if r.name == logs.ACCESS_LOGGER]
    access.setLevel(logging.INFO)
    try:
        await client.get("/hello", headers={"X-Request-Id": "r1"})
    finally:
        access.setLevel(logging.NOTSET)
    lines = [r for r in caplog.records if r.name == logs.ACCESS_LOGGER]
    assert len(lines) == 1
    line = lines[0].__dict__
    assert (line["method"], line["path"], line["status"], line["route"]) == (
        "GET",
        "/hello",
        200,
        "/hello",
    )
    assert line["ms"] >= 0 and "remote" in line
    assert '"request_id":"r1"' in logs.JsonFormatter("t").format(lines[0])
