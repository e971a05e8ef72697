"""The UI phase's floor: a server that costs (almost) nothing, answering a page's requests from
a recording of a real system's answers (issue 12, acceptance 4).

``recorder`` is a proxy in front of the real server for untimed page loads: it keeps each
answer's exact bytes (still gzipped when the server gzipped them), status and headers, keyed by
method, raw path with query, and request body. ``python -m benchmarks.replay`` serves such a
recording from memory in a process of its own (it shares no event loop or GIL with the browser
driver), answering a revalidation with 304 where the recorded validators match, as the real
server would for ``index.html`` on a return visit. Whatever the browser then spends on the page
is its own work on that system's answers: no server could get the page drawn sooner.

A request the recording lacks (a body that changes from load to load) is forwarded to the real
server and counted (``GET /__replay/misses``), so that a floor that was not all replayed shows.
"""

from __future__ import annotations

import argparse
import base64
import collections
import hashlib
import json
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

MISSES_PATH: Final = "/__replay/misses"
FORWARD_TIMEOUT_S: Final = 300.0
MAX_MISSES_KEPT: Final = 200
# Set per connection or recomputed by whoever sends the answer on.
_HOP: Final = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "date", "server", "host"}
)
_VALIDATORS: Final = ("etag", "last-modified", "cache-control")
_session_key: Final = web.AppKey("replay_session", aiohttp.ClientSession)


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


Recording = dict[str, Answer]


def key(method: str, raw_path: str, body: bytes) -> str:
    """What identifies a request of the page (pure): the UI's POSTs (GraphQL, searches) differ
    only in their bodies."""
    digest = hashlib.sha256(body).hexdigest()[:20] if body else "-"
    return f"{method} {raw_path} {digest}"


def kept(headers: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Headers without the per-connection ones (pure)."""
    return tuple((k, v) for k, v in headers if k.lower() not in _HOP)


def keep(recording: Recording, request_key: str, answer: Answer) -> None:
    """Record an answer unless it is a 304 (a revalidation says nothing about the body) or the
    request was recorded already (the first full answer is the one replayed)."""
    if answer.status != 304 and request_key not in recording:
        recording[request_key] = answer


def not_modified(answer: Answer, request_headers: Mapping[str, str]) -> bool:
    """Whether the recorded answer's validators match the browser's revalidation (pure):
    If-None-Match decides when present, else If-Modified-Since (as aiohttp's and Flask's file
    responses do)."""
    if not 200 <= answer.status < 300:
        return False
    recorded = {k.lower(): v for k, v in answer.headers}
    if_none_match = request_headers.get("If-None-Match")
    if if_none_match is not None:
        etag = recorded.get("etag")
        return etag is not None and etag in (t.strip() for t in if_none_match.split(","))
    since = request_headers.get("If-Modified-Since")
    return since is not None and since == recorded.get("last-modified")


def describe(recording: Recording) -> dict[str, list[int]]:
    """Requests and answer bytes (as sent) per method and path (pure), for the results."""
    out: dict[str, list[int]] = {}
    for request_key, answer in sorted(recording.items()):
        method, raw_path, _ = request_key.split(" ")
        name = f"{method} {raw_path.partition('?')[0]}"
        count, size = out.get(name, [0, 0])
        out[name] = [count + 1, size + len(answer.body)]
    return out


def dump(recording: Recording, path: Path) -> None:
    with path.open("w") as handle:
        for request_key, answer in recording.items():
            line = {
                "key": request_key,
                "status": answer.status,
                "headers": answer.headers,
                "body": base64.b64encode(answer.body).decode(),
            }
            handle.write(json.dumps(line) + "\n")


def load(path: Path) -> Recording:
    recording: Recording = {}
    with path.open() as handle:
        for line in handle:
            row = json.loads(line)
            headers = tuple((str(k), str(v)) for k, v in row["headers"])
            recording[row["key"]] = Answer(row["status"], headers, base64.b64decode(row["body"]))
    return recording


def _respond(answer: Answer) -> web.Response:
    return web.Response(status=answer.status, body=answer.body, headers=CIMultiDict(answer.headers))


async def _forward(
    session: aiohttp.ClientSession, upstream: str, request: web.Request, body: bytes
) -> Answer:
    """The real server's answer to the browser's request, bytes untouched (the session does not
    decompress)."""
    async with session.request(
        request.method,
        upstream + request.raw_path,
        data=body or None,
        headers=dict(kept(request.headers.items())),
        allow_redirects=False,
    ) as response:
        return Answer(response.status, kept(response.headers.items()), await response.read())


def client_session() -> aiohttp.ClientSession:
    """A client that passes bodies on as sent (no decompression)."""
    return aiohttp.ClientSession(
        auto_decompress=False, timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S)
    )


def recorder(
    upstream: str, recording: Recording, session: aiohttp.ClientSession
) -> web.Application:
    """A proxy to ``upstream`` that records every answer it passes on."""

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        answer = await _forward(session, upstream, request, body)
        keep(recording, key(request.method, request.raw_path, body), answer)
        return _respond(answer)

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def replayer(upstream: str, recording: Recording) -> web.Application:
    """Answers from ``recording``; what it lacks goes to ``upstream`` and is counted."""
    misses: collections.deque[str] = collections.deque(maxlen=MAX_MISSES_KEPT)
    counted = {"misses": 0, "answered": 0}

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.path == MISSES_PATH:
            return web.json_response({**counted, "last": list(misses)})
        body = await request.read()
        answer = recording.get(key(request.method, request.raw_path, body))
        if answer is None:
            counted["misses"] += 1
            misses.append(f"{request.method} {request.raw_path}")
            answer = await _forward(request.app[_session_key], upstream, request, body)
        counted["answered"] += 1
        if not_modified(answer, request.headers):
            validators = [(k, v) for k, v in answer.headers if k.lower() in _VALIDATORS]
            return web.Response(status=304, headers=CIMultiDict(validators))
        return _respond(answer)

    async def session_context(app: web.Application) -> AsyncIterator[None]:
        async with client_session() as session:
            app[_session_key] = session
            yield

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.cleanup_ctx.append(session_context)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.replay", description=__doc__)
    parser.add_argument("--recording", type=Path, required=True)
    parser.add_argument("--upstream", required=True, help="where requests not recorded go")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = replayer(args.upstream.rstrip("/"), load(args.recording))
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
