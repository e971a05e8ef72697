"""The UI phase's floor (benchmarks/replay.py): a recording proxy and a replay server that
answers from the recording, bytes as the real server sent them, without asking it again."""

from __future__ import annotations

import gzip
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from benchmarks import replay

_BUNDLE = b"console.log('bundle');" * 200


def _upstream(calls: list[str]) -> web.Application:
    """A stand-in for a real server: a gzipped static file with validators, a POST whose answer
    depends on its body, a GET whose answer depends on its query."""

    async def static(request: web.Request) -> web.Response:
        calls.append(request.path_qs)
        headers = {
            "Content-Encoding": "gzip",
            "Content-Type": "application/javascript",
            "ETag": '"v1"',
            "Cache-Control": "no-cache",
        }
        return web.Response(body=gzip.compress(_BUNDLE), headers=headers)

    async def graphql(request: web.Request) -> web.Response:
        calls.append(request.path_qs)
        query = (await request.json())["query"]
        return web.json_response({"data": {"echo": query}})

    async def search(request: web.Request) -> web.Response:
        calls.append(request.path_qs)
        return web.json_response({"n": int(request.query["n"]) * 2})

    app = web.Application()
    app.router.add_get("/static-files/main.js", static)
    app.router.add_post("/graphql", graphql)
    app.router.add_get("/search", search)
    return app


async def _record(upstream: str) -> replay.Recording:
    recording: replay.Recording = {}
    async with replay.client_session() as session:
        proxy = TestServer(replay.recorder(upstream, recording, session))
        async with TestClient(proxy) as client:
            resp = await client.get("/static-files/main.js")
            assert await resp.read() == _BUNDLE  # decoded by the test client: gzip kept
            resp = await client.get("/static-files/main.js", headers={"If-None-Match": '"v1"'})
            resp = await client.post("/graphql", json={"query": "a"})
            assert await resp.json() == {"data": {"echo": "a"}}
            resp = await client.post("/graphql", json={"query": "b"})
            resp = await client.get("/search?n=2")
    return recording


async def test_a_recording_is_replayed_without_the_server(tmp_path: Path) -> None:
    calls: list[str] = []
    async with TestServer(_upstream(calls)) as upstream_server:
        upstream = str(upstream_server.make_url("")).rstrip("/")
        recording = await _record(upstream)
        assert len(recording) == 4  # the revalidation (304 or not) is not a new answer
        path = tmp_path / "recording.jsonl"
        replay.dump(recording, path)
        loaded = replay.load(path)
        assert loaded == recording
        calls.clear()

        async with TestClient(TestServer(replay.replayer(upstream, loaded))) as client:
            resp = await client.get("/static-files/main.js", auto_decompress=False)
            assert resp.headers["Content-Encoding"] == "gzip"
            assert gzip.decompress(await resp.read()) == _BUNDLE
            resp = await client.get("/static-files/main.js", headers={"If-None-Match": '"v1"'})
            assert resp.status == 304
            assert resp.headers["ETag"] == '"v1"'
            resp = await client.post("/graphql", json={"query": "b"})
            assert await resp.json() == {"data": {"echo": "b"}}
            resp = await client.get("/search?n=2")
            assert await resp.json() == {"n": 4}
            assert calls == []  # all answered from the recording

            resp = await client.get("/search?n=5")  # not recorded: forwarded and counted
            assert await resp.json() == {"n": 10}
            assert calls == ["/search?n=5"]
            resp = await client.get(replay.MISSES_PATH)
            assert await resp.json() == {"misses": 1, "answered": 5, "last": ["GET /search?n=5"]}


def test_revalidation_matches_the_recorded_validators() -> None:
    answer = replay.Answer(200, (("ETag", '"a"'), ("Last-Modified", "Mon")), b"x")
    assert replay.not_modified(answer, {"If-None-Match": '"b", "a"'})
    assert not replay.not_modified(answer, {"If-None-Match": '"b"'})
    assert replay.not_modified(answer, {"If-Modified-Since": "Mon"})
    # If-None-Match decides when both are sent.
    assert not replay.not_modified(answer, {"If-None-Match": '"b"', "If-Modified-Since": "Mon"})
    assert not replay.not_modified(answer, {})
    failed = replay.Answer(404, (("ETag", '"a"'),), b"")
    assert not replay.not_modified(failed, {"If-None-Match": '"a"'})


def test_requests_differ_by_method_path_query_and_body() -> None:
    keys = {
        replay.key("GET", "/a?x=1", b""),
        replay.key("GET", "/a?x=2", b""),
        replay.key("POST", "/a?x=1", b""),
        replay.key("POST", "/a?x=1", b'{"q": 1}'),
        replay.key("POST", "/a?x=1", b'{"q": 2}'),
    }
    assert len(keys) == 5


def test_the_first_full_answer_is_kept() -> None:
    recording: replay.Recording = {}
    replay.keep(recording, "k", replay.Answer(304, (), b""))
    assert recording == {}
    first = replay.Answer(200, (), b"1")
    replay.keep(recording, "k", first)
    replay.keep(recording, "k", replay.Answer(200, (), b"2"))
    assert recording == {"k": first}


def test_a_recording_is_described_per_path() -> None:
    recording = {
        replay.key("GET", "/s?n=1", b""): replay.Answer(200, (), b"abc"),
        replay.key("GET", "/s?n=2", b""): replay.Answer(200, (), b"de"),
        replay.key("POST", "/graphql", b"{}"): replay.Answer(200, (), b"f"),
    }
    assert replay.describe(recording) == {"GET /s": [2, 5], "POST /graphql": [1, 1]}
