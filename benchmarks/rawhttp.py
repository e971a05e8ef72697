"""A minimal HTTP/1.1 keep-alive POST client for the write workloads.

Why not aiohttp's client: the load generator shares the two cores with the systems under test,
and at a few thousand small requests a second aiohttp's client (header multidicts, cookie jar,
tracing hooks, a task per request) used most of a core -- CPU taken from whichever system was
being measured, and the log-metric phase was bounded by the client. This client writes one
pre-formatted request per call and parses only the status line and the body framing
(Content-Length or chunked), which is all a benchmark needs. Reads keep using aiohttp.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

_HEADER_END = b"\r\n\r\n"
JSON = b"Content-Type: application/json\r\n"


class HttpError(Exception):
    """The server broke the exchange (closed, garbled answer); the name is what gets tallied."""


class _Exchange(asyncio.Protocol):
    """One keep-alive connection; at most one request outstanding at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._answer: asyncio.Future[tuple[int, bytes]] | None = None
        self.reusable = True
        self.local_port = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.local_port = transport.get_extra_info("sockname")[1]

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(HttpError(f"connection lost: {exc!r}"))

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._answer is None or self._answer.done():
            return
        try:
            parsed = _parse(self._buffer)
        except HttpError as exc:
            self.reusable = False
            self._answer.set_exception(exc)
            return
        if parsed is not None:
            status, body, used, close = parsed
            del self._buffer[:used]
            self.reusable = not close
            self._answer.set_result((status, body))

    async def send(self, request: bytes) -> tuple[int, bytes]:
        assert self.transport is not None
        self._answer = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self._answer


def _parse(buffer: bytearray) -> tuple[int, bytes, int, bool] | None:
    """(status, body, bytes used, server closes) once a whole answer is in ``buffer``."""
    end = buffer.find(_HEADER_END)
    if end < 0:
        return None
    head = bytes(buffer[:end]).lower()
    if not head.startswith(b"http/1."):
        raise HttpError(f"not an HTTP answer: {head[:40]!r}")
    status = int(head[9:12])
    close = b"\r\nconnection: close" in head
    start = end + len(_HEADER_END)
    at = head.find(b"\r\ncontent-length:")
    if at >= 0:
        length = int(head[at + 17 :].split(b"\r\n", 1)[0])
        if len(buffer) < start + length:
            return None
        return status, bytes(buffer[start : start + length]), start + length, close
    if b"\r\ntransfer-encoding: chunked" in head:
        return _dechunk(buffer, start, status, close)
    raise HttpError("answer without Content-Length or chunked framing")


def _dechunk(
    buffer: bytearray, at: int, status: int, close: bool
) -> tuple[int, bytes, int, bool] | None:
    body = bytearray()
    while True:
        line_end = buffer.find(b"\r\n", at)
        if line_end < 0:
            return None
        size = int(bytes(buffer[at:line_end]).split(b";", 1)[0], 16)
        chunk_start = line_end + 2
        if len(buffer) < chunk_start + size + 2:
            return None
        if size == 0:  # no trailers expected from the servers measured here
            return status, bytes(body), chunk_start + 2, close
        body += buffer[chunk_start : chunk_start + size]
        at = chunk_start + size + 2


class Client:
    """POSTs JSON to one server over a pool of keep-alive connections (one per concurrent
    caller; a connection is opened when none is idle)."""

    def __init__(self, base_url: str, timeout_s: float) -> None:
        parts = urlsplit(base_url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._timeout_s = timeout_s
        self._idle: list[_Exchange] = []
        self._host_header = f"Host: {self._host}:{self._port}\r\n".encode()

    async def post(self, path: str, body: bytes, headers: bytes = JSON) -> tuple[int, bytes]:
        """``headers``: pre-formatted header lines, each ending in CRLF (Content-Type at least)."""
        request = b"".join(
            (
                f"POST {path} HTTP/1.1\r\n".encode(),
                self._host_header,
                headers,
                f"Content-Length: {len(body)}\r\n\r\n".encode(),
                body,
            )
        )
        exchange = self._take_idle() or await self._connect()
        try:
            async with asyncio.timeout(self._timeout_s):
                answer = await exchange.send(request)
        except BaseException:
            exchange.reusable = False
            raise
        finally:
            if exchange.reusable:
                self._idle.append(exchange)
            elif exchange.transport is not None:
                exchange.transport.close()
        return answer

    async def open(self, count: int) -> None:
        """Open ``count`` idle connections now (before a timed window), so the callers that
        follow use these and no others (benchmarks/placement.py places them)."""
        opened = await asyncio.gather(
            *(self._connect() for _ in range(count)), return_exceptions=True
        )
        self._idle.extend(e for e in opened if isinstance(e, _Exchange))
        for outcome in opened:
            if isinstance(outcome, BaseException):
                raise outcome

    def local_ports(self) -> list[int]:
        """The idle connections' local ports, by index (what ``redial`` takes)."""
        return [exchange.local_port for exchange in self._idle]

    def closed(self) -> list[int]:
        """Indexes of idle connections the server has closed."""
        return [i for i, exchange in enumerate(self._idle) if not exchange.reusable]

    async def redial(self, index: int) -> None:
        """Close idle connection ``index`` and open a new one in its place."""
        old = self._idle[index]
        if old.transport is not None:
            old.transport.close()
        self._idle[index] = await self._connect()

    def _take_idle(self) -> _Exchange | None:
        while self._idle:
            exchange = self._idle.pop()
            if exchange.reusable:  # the server may have closed it while idle
                return exchange
        return None

    async def _connect(self) -> _Exchange:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self._timeout_s):
            _, exchange = await loop.create_connection(_Exchange, self._host, self._port)
        return exchange

    def close(self) -> None:
        for exchange in self._idle:
            if exchange.transport is not None:
                exchange.transport.close()
        self._idle.clear()
