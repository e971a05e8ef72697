"""benchmarks/rawhttp.py: the load generator's HTTP client frames answers exactly, against a
real aiohttp server (Content-Length, chunked, keep-alive reuse, server-side close)."""

from __future__ import annotations

import asyncio
import socket

import pytest
from aiohttp import web

from benchmarks import rawhttp


def test_parse_waits_for_the_whole_answer_and_leaves_the_next_one() -> None:
    first = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
    second = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 3\r\n\r\nbad"
    buffer = bytearray(first + second[:20])
    assert rawhttp._parse(bytearray(first[:-1])) is None
    assert rawhttp._parse(buffer) == (200, b"{}", len(first), False)
    del buffer[: len(first)]
    assert rawhttp._parse(buffer) is None
    buffer += second[20:]
    assert rawhttp._parse(buffer) == (400, b"bad", len(second), True)


def test_parse_decodes_chunked_bodies() -> None:
    whole = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n"
    )
    for cut in range(len(whole) - 1):
        assert rawhttp._parse(bytearray(whole[:cut])) is None
    assert rawhttp._parse(bytearray(whole)) == (200, b"abcde", len(whole), False)


def test_parse_refuses_garbage_and_unframed_answers() -> None:
    with pytest.raises(rawhttp.HttpError):
        rawhttp._parse(bytearray(b"SSH-2.0-OpenSSH\r\n\r\n"))
    with pytest.raises(rawhttp.HttpError):
        rawhttp._parse(bytearray(b"HTTP/1.1 200 OK\r\n\r\nbody"))


async def test_client_reuses_connections_and_survives_server_closes() -> None:
    peers: set[object] = set()

    async def echo(request: web.Request) -> web.StreamResponse:
        peers.add(request.transport.get_extra_info("peername") if request.transport else None)
        body = await request.read()
        if request.path == "/chunked":
            response = web.StreamResponse()
            response.enable_chunked_encoding()
            await response.prepare(request)
            await response.write(body[:1])
            await response.write(body[1:])
            await response.write_eof()
            return response
        headers = {"Connection": "close"} if request.path == "/close" else None
        return web.Response(body=body, status=201, headers=headers)

    app = web.Application()
    app.router.add_post("/{tail:.*}", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    client = rawhttp.Client(f"http://127.0.0.1:{port}", timeout_s=5.0)
    try:
        for n in range(5):
            assert await client.post("/x", b"%d" % n) == (201, b"%d" % n)
        assert len(peers) == 1  # one keep-alive connection for sequential calls
        answers = await asyncio.gather(*(client.post("/x", b"c%d" % n) for n in range(4)))
        assert sorted(answers) == [(201, b"c%d" % n) for n in range(4)]
        assert await client.post("/chunked", b"hello") == (200, b"hello")
        assert await client.post("/close", b"bye") == (201, b"bye")
        assert await client.post("/x", b"again") == (201, b"again")  # a fresh connection
    finally:
        client.close()
        await runner.cleanup()
