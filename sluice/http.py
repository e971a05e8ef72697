"""The HTTP edge shared by ingest and api: MLflow error mapping, bounded body reads, JSON out.

Typed errors become MLflow JSON here and nowhere else (one middleware per app, lookup by class):
MlflowError -> its table status; Unavailable -> 429 + Retry-After; aiohttp's 404 ->
ENDPOINT_NOT_FOUND JSON (the client's fallbacks rely on a 404); a wrong method on a served path
stays aiohttp's plain 405, as MLflow answers it; anything else -> a logged 500 INTERNAL_ERROR
without internals.
"""

from __future__ import annotations

import importlib
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import PayloadEncodingError
from aiohttp.typedefs import Middleware
from aiohttp.web_protocol import RequestHandler, RequestPayloadError
from opentelemetry.trace import SpanKind
from prometheus_client import Histogram

from schemas.mlflow_errors import MlflowError, Unavailable, endpoint_not_found, invalid_parameter
from sluice import telemetry
from sluice.logs import ACCESS_LOGGER, request_id
from sluice.pg import TRANSIENT_ERRORS

log = logging.getLogger(__name__)
access = logging.getLogger(ACCESS_LOGGER)

REQUEST_ID_HEADER = "X-Request-Id"
# A caller's id is kept only when it is short and plain (it goes into logs and Kafka headers).
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# What the HTTP parser accepts before any handler runs. MLflow's UI builds GET query strings
# with one `run_id` per compared run (get-history-bulk: ~40 bytes each, so 1000 runs are ~40 KB)
# and `mlflow server` (uvicorn) takes request lines above 100 KB and header fields of 64 KB;
# aiohttp's default of 8190 bytes refused those with a plain-text 400. Still bounded: a line
# is buffered whole before it is parsed.
MAX_LINE_BYTES = 512 * 1024
MAX_FIELD_BYTES = 128 * 1024


class BodyTooLarge(MlflowError):
    """The declared body exceeds the bound; the connection is closed instead of drained."""

    def __init__(self, declared: int, limit: int) -> None:
        super().__init__(
            "INVALID_PARAMETER_VALUE",
            f"Request body of {declared} bytes exceeds the maximum of {limit} bytes.",
        )


class BodyNotDecodable(MlflowError):
    """The body broke while being read -- its Content-Encoding (gzip, deflate) did not decode,
    or its framing was wrong: a 400, never a 500."""

    def __init__(self, encoding: str) -> None:
        super().__init__(
            "INVALID_PARAMETER_VALUE",
            f"Request body could not be decoded as its Content-Encoding ({encoding}) says."
            if encoding
            else "Request body could not be read completely.",
        )


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
    )


def error_response(err: MlflowError) -> web.Response:
    headers = {"Retry-After": str(err.retry_after_s)} if isinstance(err, Unavailable) else None
    if err.code == "UNAUTHENTICATED":
        headers = {"WWW-Authenticate": 'Basic realm="mlflow"'}
    return json_response(err.to_json(), status=err.status, headers=headers)


def error_middleware(latency: Histogram) -> Middleware:
    """Middleware mapping typed errors to MLflow's envelope, timing every request, giving it a
    request id (the caller's ``X-Request-Id`` or a new one, echoed in the answer) and writing
    the access log line."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        given = request.headers.get(REQUEST_ID_HEADER, "")
        rid = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        token = request_id.set(rid)
        route = request.match_info.route.resource
        name = route.canonical if route is not None else "unmatched"
        span = telemetry.tracer.start_as_current_span(
            f"{request.method} {name}",
            context=telemetry.extract(dict(request.headers)),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": request.method, "sluice.request_id": rid},
        )
        try:
            with span as current:
                response = await _dispatch(request, handler)
                current.set_attribute("http.response.status_code", response.status)
            elapsed = time.perf_counter() - started
            latency.labels(name, str(response.status)).observe(elapsed)
            if not response.prepared:  # a streamed download sent its headers already
                response.headers[REQUEST_ID_HEADER] = rid
            if access.isEnabledFor(logging.INFO):
                _access_line(request, response, name, elapsed)
            return response
        finally:
            request_id.reset(token)

    return middleware


def _access_line(
    request: web.Request, response: web.StreamResponse, route: str, elapsed: float
) -> None:
    access.info(
        "request",
        extra={
            "method": request.method,
            "path": request.path,
            "route": route,
            "status": response.status,
            "ms": round(elapsed * 1000, 3),
            "bytes_in": request.content_length or 0,
            "remote": request.remote,
            "user_agent": request.headers.get("User-Agent", ""),
        },
    )


async def _dispatch(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await _answer(request, handler)
    if request.content.exception() is not None:
        # The body broke mid-read (e.g. a Content-Encoding that does not decode): its remainder
        # was never read, so the connection cannot carry another request. Say so in the answer,
        # or a keep-alive client sends its next request into a closed socket.
        response.force_close()
    return response


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except BodyTooLarge as err:
        response = error_response(err)
        response.force_close()
        return response
    except MlflowError as err:
        return error_response(err)
    except web.HTTPRequestEntityTooLarge as exc:
        return error_response(invalid_parameter(f"Request body is too large: {exc.text}"))
    except TRANSIENT_ERRORS as exc:
        log.warning("dependency unavailable", extra={"path": request.path, "err": repr(exc)})
        return error_response(Unavailable("The database is unavailable; retry later."))
    except web.HTTPNotFound:
        return error_response(endpoint_not_found())
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unhandled error", extra={"path": request.path})
        return error_response(MlflowError("INTERNAL_ERROR", "Internal server error"))


async def read_body(request: web.Request, max_bytes: int) -> bytes:
    """The request body, refused before buffering when it declares more than ``max_bytes``;
    aiohttp's ``client_max_size`` stops undeclared (chunked) bodies at the same bound."""
    declared = request.content_length
    if declared is not None and declared > max_bytes:
        raise BodyTooLarge(declared, max_bytes)
    return await read_decoded(request)


async def read_decoded(request: web.Request) -> bytes:
    """``request.read()`` (bounded by the app's client_max_size; aiohttp decodes gzip/deflate
    while reading), with a body that breaks mid-read as BodyNotDecodable (a 400)."""
    try:
        return await request.read()
    except (PayloadEncodingError, RequestPayloadError):
        raise BodyNotDecodable(request.headers.get("Content-Encoding", "")) from None


def bind_handler(ref: str) -> Handler:
    """The function a route table reference ``"<module>:<function>"`` names (schemas/routes.py).

    Only a function defined in that very module binds: a name the module merely imports (a
    helper, another module's handler) is refused, so a reference cannot silently reach a
    different function than the one it spells."""
    module_name, _, name = ref.partition(":")
    handler = getattr(importlib.import_module(module_name), name, None)
    if (
        not callable(handler)
        or getattr(handler, "__module__", None) != module_name
        or getattr(handler, "__qualname__", None) != name
    ):
        raise LookupError(f"{ref} names no handler defined in {module_name}")
    return handler  # type: ignore[no-any-return]


class _MlflowErrorHandler(RequestHandler):
    """Per-connection protocol whose own error answers (the parser's 400 for a request line or
    header beyond the limits or malformed HTTP, and the last-resort 500) are MLflow JSON, so the
    client reports a message instead of failing to decode text."""

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        plain = super().handle_error(request, status, exc, message)  # logs; may raise
        if status >= 500:
            err = MlflowError("INTERNAL_ERROR", "Internal server error")
        else:
            err = invalid_parameter(f"Bad Request: {_first_line(message or plain.reason)}")
        response = web.Response(
            body=orjson.dumps(err.to_json()), status=status, content_type="application/json"
        )
        response.force_close()
        return response


def _first_line(text: str) -> str:
    # aiohttp's parser messages quote the offending bytes; keep them short.
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= 200 else line[:200] + "..."


class MlflowErrorServer(web.Server):
    """web.Server handing out `_MlflowErrorHandler` connections (see sluice.lifecycle)."""

    def __call__(self) -> RequestHandler:
        return _MlflowErrorHandler(self, loop=self._loop, **self._kwargs)
