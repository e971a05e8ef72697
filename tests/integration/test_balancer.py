"""The shipped balancer, for real: HAProxy (Debian's package, scripts/haproxy.sh) runs the
committed deploy/haproxy/haproxy.cfg in front of small recording backends, and every route of
schemas/routes.py lands on the service that serves it; near misses of ingest paths go to the
api. A second configuration from the same generator (fixed server lists) shows the retry rules:
reads are retried on another server after one dropped them, writes that reached a server are
not, and writes to a server that stopped listening are."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from schemas.route_record import url_regex
from schemas.routes import ROUTES, service_for
from sluice.commands import balancer
from tests.stack import REPO, SCRIPTS

CONFIG = REPO / "deploy" / "haproxy" / "haproxy.cfg"
# A value for each placeholder of the table's templated paths.
SAMPLES = {
    "artifact_path": "12/0f1e2d/artifacts/model/MLmodel",
    "upload_id": "9b2e6c1d4f",
    "part_number": "3",
    "model_id": "m-0123456789abcdef",
    "tag_key": "stage",
    "path": "static/js/main.0a1b2c.js",
    "trace_id": "tr-0123456789abcdef0123456789abcdef",
    "request_id": "tr-0123456789abcdef0123456789abcdef",
    "assessment_id": "a-0123456789abcdef",
    # ids of the GenAI families Sluice answers with 501 (issue 14)
    "dataset_id": "d-0123456789abcdef",
    "issue_id": "iss-0123456789abcdef",
    "job_id": "job-0123456789abcdef",
    "key": "OPENAI_API_KEY",
    "webhook_id": "0b3c5d7e-1f2a-4b6c-8d9e-0a1b2c3d4e5f",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def concrete(url: str) -> str:
    return re.sub(r"\{([^{}:]+)(?::(?:[^{}]|\{[^{}]*\})+)?\}", lambda m: SAMPLES[m[1]], url)


@dataclass
class Recorder:
    """An HTTP server that answers every path with its own name and records what it got."""

    name: str
    status: int = 200  # what it answers (health checks always get 200)
    port: int = field(default_factory=_free_port)
    seen: list[tuple[str, str]] = field(default_factory=list)
    runner: web.AppRunner | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)  # a request reached it
    release: asyncio.Event = field(default_factory=asyncio.Event)  # answers ?hold requests

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        await request.read()
        if request.path == "/health/ready":
            return web.json_response({"status": "ok"})
        self.seen.append((request.method, request.raw_path))
        self.arrived.set()
        if "hold" in request.query:  # answered once the test says so
            await asyncio.wait_for(self.release.wait(), 60)
        return web.json_response({"service": self.name}, status=self.status)


@dataclass
class Dropper:
    """Passes health checks, then drops every other request after reading its head: the
    request reached a server that never answered (empty-response)."""

    port: int = field(default_factory=_free_port)
    seen: list[tuple[str, str]] = field(default_factory=list)
    server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                method, path, _ = head.split(b" ", 2)
                if path != b"/health/ready":
                    self.seen.append((method.decode(), path.decode()))
                    return
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()


@dataclass
class Balancer:
    url: str
    stats_url: str
    process: subprocess.Popen[bytes]
    log: Path


def _run_haproxy(config: Path, env_extra: dict[str, str]) -> Generator[Balancer]:
    """HAProxy in the foreground (-db) on free ports; its log goes beside the config."""
    binary = subprocess.run(
        [str(SCRIPTS / "haproxy.sh")], check=True, capture_output=True, text=True, timeout=600
    ).stdout.strip()
    port, stats = _free_port(), _free_port()
    env = {
        "PATH": "/usr/sbin:/usr/bin:/bin",
        "BALANCER_BIND": f"127.0.0.1:{port}",
        "BALANCER_STATS_BIND": f"127.0.0.1:{stats}",
        **env_extra,
    }
    log = config.with_suffix(".log")
    with log.open("ab") as out:  # the child keeps its own descriptor
        process = subprocess.Popen(
            [binary, "-db", "-f", str(config)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 20
        # Ready: the master finished loading (it handles reload signals from then on) and the
        # worker listens.
        while "Loading success" not in log.read_text() or not _accepts(port):
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "haproxy did not listen within 20 s"
            time.sleep(0.05)
        yield Balancer(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{stats}", process, log)
    finally:
        process.terminate()
        process.wait(timeout=30)


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _copy(config: Path, directory: Path) -> Path:
    target = directory / config.name
    target.write_text(config.read_text())
    return target


@pytest.fixture
async def recorders() -> AsyncIterator[dict[str, Recorder]]:
    pair = {"ingest": Recorder("ingest"), "api": Recorder("api")}
    for recorder in pair.values():
        await recorder.start()
    yield pair
    for recorder in pair.values():
        await recorder.stop()


@pytest.fixture
def shipped(recorders: dict[str, Recorder], tmp_path: Path) -> Iterator[Balancer]:
    """The committed configuration; server addresses through its environment variables."""
    yield from _run_haproxy(
        _copy(CONFIG, tmp_path),
        {
            "BALANCER_INGEST": f"127.0.0.1:{recorders['ingest'].port}",
            "BALANCER_API": f"127.0.0.1:{recorders['api'].port}",
        },
    )


async def _send(session: aiohttp.ClientSession, method: str, url: str) -> tuple[int, str]:
    """(status, service that answered); status 0 when the balancer closed the connection
    without an answer (as HAProxy does, like the server, when a server dropped a request on a
    kept-alive client connection)."""
    try:
        async with session.request(method, url, data=b"{}") as response:
            body = await response.json() if response.status == 200 else {}
            return response.status, str(body.get("service", ""))
    except aiohttp.ServerDisconnectedError:
        return 0, ""


async def test_every_route_lands_on_the_service_that_serves_it(
    shipped: Balancer, recorders: dict[str, Recorder]
) -> None:
    cases = [(r.method, concrete(url), r.service) for r in ROUTES for url in r.urls()]
    assert len(cases) > 100
    async with aiohttp.ClientSession() as session:
        for method, path, service in cases:
            status, served_by = await _send(session, method, shipped.url + path)
            assert (status, served_by) == (200, service), (method, path)
    for name, recorder in recorders.items():
        assert recorder.seen == [(m, p) for m, p, s in cases if s == name]


async def test_only_exact_ingest_paths_go_to_ingest(
    shipped: Balancer, recorders: dict[str, Recorder]
) -> None:
    to_api = [
        "/api/2.0/mlflow/runs/log-batch/extra",
        "/api/2.0/mlflow/runs/log-batchx",
        "/api/2.0/mlflow/runs/log-inputs",  # a sibling of the ingest paths, served by the api
        "/api/2.0/mlflow/runs/log-",
        "/API/2.0/mlflow/runs/log-metric",
        "/api/2.1/mlflow/runs/log-metric",
        "/prefix/api/2.0/mlflow/runs/log-metric",
        "/",
        "/health",
        "/static-files/index.html",
        "/api/2.0/mlflow/no-such-route",
    ]
    async with aiohttp.ClientSession() as session:
        for path in to_api:
            assert await _send(session, "POST", shipped.url + path) == (200, "api"), path
        # The query string is not part of the path: still ingest.
        with_query = "/api/2.0/mlflow/runs/log-metric?run_id=abc"
        assert await _send(session, "POST", shipped.url + with_query) == (200, "ingest")
        async with session.get(shipped.stats_url + "/metrics") as response:
            assert response.status == 200
            assert "haproxy_backend_http_responses_total" in await response.text()
    assert recorders["ingest"].seen == [("POST", with_query)]


def test_the_committed_configuration_is_generated_from_the_route_table() -> None:
    assert CONFIG.read_text() == balancer.render(), (
        "deploy/haproxy/haproxy.cfg is stale: run `sluice balancer > deploy/haproxy/haproxy.cfg`"
    )
    text = CONFIG.read_text()
    acl_paths = re.findall(r"acl ingest_path path (\S+)", text)
    acl_paths += re.findall(r"acl ingest_path path_reg '(\S+)'", text)
    assert sorted(acl_paths) == sorted(
        url if "{" not in url else url_regex(url)
        for r in ROUTES
        if r.service == "ingest"
        for url in r.urls()
    )


async def test_the_method_decides_where_ingest_and_the_api_share_a_path(
    shipped: Balancer, recorders: dict[str, Recorder]
) -> None:
    """The balancer decides as ``sluice front`` does (``schemas.routes.service_for``)."""
    requests = [
        (method, prefix + tail)
        for prefix in ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")
        for method, tail in [
            ("POST", "/traces"),  # MLflow 2.x StartTrace: ingest
            ("GET", "/traces"),  # the v2 trace search: api
            ("DELETE", "/traces"),
            ("PATCH", "/traces/0123abcd"),  # EndTrace: ingest
            ("GET", "/traces/0123abcd"),  # only ingest serves the path: ingest's 405
            ("POST", "/traces/delete-traces"),  # the api's literal sibling of EndTrace's path
            ("PATCH", "/traces/delete-traces"),
            ("PATCH", "/traces/0123abcd/tags"),
            ("GET", "/runs/log-batch"),
        ]
    ]
    async with aiohttp.ClientSession() as session:
        for method, path in requests:
            expected = service_for(method, path)
            assert await _send(session, method, shipped.url + path) == (200, expected), (
                method,
                path,
            )
    assert recorders["ingest"].seen == [
        (m, p) for m, p in requests if service_for(m, p) == "ingest"
    ]
    assert {service_for(m, p) for m, p in requests} == {"ingest", "api"}


def test_templated_routes_become_anchored_patterns() -> None:
    pattern = url_regex("/api/2.0/mlflow/x/{run_id}/y/{n:[0-9]{1,5}}")
    assert re.fullmatch(pattern.strip("^$"), "/api/2.0/mlflow/x/abc/y/123")
    assert not re.fullmatch(pattern.strip("^$"), "/api/2.0/mlflow/x/a/b/y/123")
    assert pattern.startswith("^") and pattern.endswith("$")


@pytest.fixture
async def api_pair() -> AsyncIterator[tuple[Dropper, Recorder]]:
    dropper, good = Dropper(), Recorder("api")
    await dropper.start()
    await good.start()
    yield dropper, good
    await dropper.stop()
    await good.stop()


@pytest.fixture
def two_apis(
    api_pair: tuple[Dropper, Recorder], recorders: dict[str, Recorder], tmp_path: Path
) -> Iterator[Balancer]:
    dropper, good = api_pair
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        balancer.render(
            {
                "ingest": [f"127.0.0.1:{recorders['ingest'].port}"],
                "api": [f"127.0.0.1:{dropper.port}", f"127.0.0.1:{good.port}"],
            }
        )
    )
    yield from _run_haproxy(config, {})


async def test_reads_are_retried_on_another_server_and_writes_that_reached_one_are_not(
    two_apis: Balancer, api_pair: tuple[Dropper, Recorder]
) -> None:
    dropper, good = api_pair
    reads = [f"/api/2.0/mlflow/runs/get?run_id={uuid.uuid4().hex}" for _ in range(8)]
    writes = [f"/api/2.0/mlflow/runs/update?n={uuid.uuid4().hex}" for _ in range(8)]
    async with aiohttp.ClientSession() as session:
        read_results = [await _send(session, "GET", two_apis.url + p) for p in reads]
        write_results = [await _send(session, "POST", two_apis.url + p) for p in writes]
    # Every read answered by the good server, though some first reached the dropper.
    assert read_results == [(200, "api")] * len(reads)
    assert {p for m, p in dropper.seen if m == "GET"}, "no read ever met the dropping server"
    assert [p for m, p in good.seen if m == "GET"] == reads
    # A write the dropper swallowed fails (502, or the connection closed as the server closed
    # it) and was delivered exactly once: never retried on the good server.
    dropped = [p for m, p in dropper.seen if m == "POST"]
    assert dropped, "no write ever met the dropping server"
    for path, (status, _) in zip(writes, write_results, strict=True):
        delivered = dropped.count(path) + [p for m, p in good.seen].count(path)
        assert delivered == 1, path
        assert status in ((502, 0) if path in dropped else (200,)), (path, status)


async def test_writes_to_a_server_that_stopped_listening_go_to_another(
    recorders: dict[str, Recorder], tmp_path: Path
) -> None:
    first, second = Recorder("api"), Recorder("api")
    await first.start()
    await second.start()
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        balancer.render(
            {
                "ingest": [f"127.0.0.1:{recorders['ingest'].port}"],
                "api": [f"127.0.0.1:{first.port}", f"127.0.0.1:{second.port}"],
            }
        )
    )
    running = _run_haproxy(config, {})
    front = next(running)
    try:
        await first.stop()  # before its health check can notice: the balancer still picks it
        writes = [f"/api/2.0/mlflow/runs/create?n={i}" for i in range(8)]
        async with aiohttp.ClientSession() as session:
            results = [await _send(session, "POST", front.url + p) for p in writes]
        assert results == [(200, "api")] * len(writes)
        assert [p for _, p in second.seen] == writes and first.seen == []
    finally:
        running.close()
        await second.stop()


async def test_a_reload_lets_requests_in_flight_finish(
    shipped: Balancer, recorders: dict[str, Recorder]
) -> None:
    held = "/api/2.0/mlflow/runs/log-batch?hold=1"
    ingest = recorders["ingest"]
    async with aiohttp.ClientSession() as session:
        in_flight = asyncio.create_task(_send(session, "POST", shipped.url + held))
        await asyncio.wait_for(ingest.arrived.wait(), 10)
        await _reload(shipped)
        # The new workers serve new requests while the old one still holds the first.
        async with aiohttp.ClientSession() as other:
            assert await _send(other, "GET", shipped.url + "/api/2.0/mlflow/runs/get") == (
                200,
                "api",
            )
        assert not in_flight.done()
        ingest.release.set()
        assert await in_flight == (200, "ingest")


async def _reload(balancer_: Balancer) -> None:
    """SIGUSR2 to the master until its log shows the reload and a second worker is ready
    (a loaded machine can be slow to start it; a repeated reload is harmless)."""
    deadline = time.monotonic() + 30
    while balancer_.log.read_text().count("Loading success") < 2:
        assert time.monotonic() < deadline, "haproxy did not reload"
        if "Reloading HAProxy" not in balancer_.log.read_text():
            balancer_.process.send_signal(signal.SIGUSR2)
        await asyncio.sleep(0.5)  # polls a file another process writes


def test_fixed_servers_and_bind_for_a_supervised_topology() -> None:
    text = balancer.render(
        {"ingest": ["127.0.0.1:6001", "127.0.0.1:6011"], "api": ["127.0.0.1:6002"]},
        bind="127.0.0.1:6000",
    )
    assert "    bind 127.0.0.1:6000\n" in text and "BALANCER_BIND}" not in text.split("frontend")[1]
    assert "    server ingest2 127.0.0.1:6011 check\n" in text
    assert "server-template" not in text and "resolvers" not in text


async def test_reads_answered_503_are_retried_elsewhere_and_writes_are_not(
    recorders: dict[str, Recorder], tmp_path: Path
) -> None:
    failing, good = Recorder("api", status=503), Recorder("api")
    await failing.start()
    await good.start()
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        balancer.render(
            {
                "ingest": [f"127.0.0.1:{recorders['ingest'].port}"],
                "api": [f"127.0.0.1:{failing.port}", f"127.0.0.1:{good.port}"],
            }
        )
    )
    running = _run_haproxy(config, {})
    front = next(running)
    try:
        reads = [f"/api/2.0/mlflow/experiments/get?n={i}" for i in range(6)]
        writes = [f"/api/2.0/mlflow/experiments/create?n={i}" for i in range(6)]
        async with aiohttp.ClientSession() as session:
            read_results = [await _send(session, "GET", front.url + p) for p in reads]
            write_results = [await _send(session, "POST", front.url + p) for p in writes]
        assert read_results == [(200, "api")] * len(reads)
        assert [p for m, p in failing.seen if m == "GET"], "no read met the failing server"
        refused = [p for m, p in failing.seen if m == "POST"]
        assert refused, "no write met the failing server"
        for path, (status, _) in zip(writes, write_results, strict=True):
            assert status == (503 if path in refused else 200), path
            assert [p for _, p in failing.seen + good.seen].count(path) == 1, path
    finally:
        running.close()
        await failing.stop()
        await good.stop()
