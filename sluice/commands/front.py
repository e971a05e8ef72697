"""``sluice front``: the single MLflow endpoint of ``sluice up``.

The MLflow client has one tracking URI, so a small reverse proxy sends each request to the
service that owns its path, or its method and path where both serve one path
(``schemas.routes.service_for``). Production puts a load balancer here with the same split
(``sluice balancer``). Bodies stream through in both directions; nothing is buffered whole.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from yarl import URL

from schemas.mlflow_errors import Unavailable
from schemas.routes import service_for
from sluice import health, lifecycle
from sluice.config import Settings
from sluice.http import error_response

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "proxy-authorization",
        "proxy-authenticate",
        "host",
        "content-length",
    }
)
session_key = web.AppKey("session", aiohttp.ClientSession)
upstreams_key = web.AppKey("upstreams", dict)


def build_app(settings: Settings) -> web.Application:
    # Upstreams enforce their own bounds, and decode Content-Encoding themselves: a body is
    # relayed as sent (decoded here it would reach them still labelled gzip).
    app = web.Application(client_max_size=1024**4, handler_args={"auto_decompress": False})
    app[upstreams_key] = {
        "ingest": f"http://{settings.ingest.host}:{settings.ingest.port}",
        "api": f"http://{settings.api.host}:{settings.api.port}",
    }
    app.cleanup_ctx.append(_session)
    # The front's own probes; MLflow's plain GET /health is proxied to the api like any route.
    health.add_health_routes(app, lambda: _upstreams_ready(app), include_mlflow_health=False)
    app.router.add_route("*", "/{tail:.*}", _proxy)
    return app


async def _upstreams_ready(app: web.Application) -> bool:
    session = app[session_key]
    for base in app[upstreams_key].values():
        try:
            async with session.get(base + "/health/ready", timeout=aiohttp.ClientTimeout(2)) as r:
                if r.status != 200:
                    return False
        except (TimeoutError, aiohttp.ClientError):
            return False
    return True


async def _session(app: web.Application) -> AsyncIterator[None]:
    connector = aiohttp.TCPConnector(limit=512, keepalive_timeout=30)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=300)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, auto_decompress=False
    ) as session:
        app[session_key] = session
        yield


async def _proxy(request: web.Request) -> web.StreamResponse:
    base = request.app[upstreams_key][service_for(request.method, request.path)]
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
    body = request.content.iter_chunked(65536) if request.body_exists else None
    try:
        async with request.app[session_key].request(
            request.method,
            URL(base + request.raw_path, encoded=True),  # as sent: the upstream judges dot segments
            headers=headers,
            data=body,
            # A streamed body would get Content-Type: application/octet-stream; MLflow's
            # "Content-Type header is missing" must reach the client unchanged.
            skip_auto_headers=("Content-Type",),
            allow_redirects=False,
        ) as upstream:
            return await _relay(request, upstream)
    except (TimeoutError, aiohttp.ClientConnectionError):
        return error_response(Unavailable("Service restarting; retry.", retry_after_s=1))


async def _relay(request: web.Request, upstream: aiohttp.ClientResponse) -> web.StreamResponse:
    response = web.StreamResponse(status=upstream.status)
    for key, value in upstream.headers.items():
        if key.lower() not in _HOP_BY_HOP:
            response.headers.add(key, value)
    if upstream.content_length is not None:
        response.content_length = upstream.content_length
    await response.prepare(request)
    async for chunk in upstream.content.iter_chunked(65536):
        await response.write(chunk)
    await response.write_eof()
    return response


async def run(settings: Settings, stop: asyncio.Event) -> None:
    await lifecycle.serve_app(build_app(settings), settings.host, settings.port, stop)
