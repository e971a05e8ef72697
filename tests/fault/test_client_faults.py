"""Issue 6, faults 6 and 9: a response lost on the way back (the client re-sends the same
log-batch), and SIGTERM of each service under load (drain within a deadline, lose nothing)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import orjson
import pytest

from tests.fault.faults import converge, start_report
from tests.fault.oracle import Oracle, Point, create_run, stream, wait_until
from tests.stack import Stack

DRAIN_DEADLINE_S = 20.0  # lifecycle drains HTTP for 10 s; then producer/writer flush, pools


async def _new_oracle(stack: Stack, name: str) -> Oracle:
    async with aiohttp.ClientSession() as session:
        run_id = await create_run(session, stack.url("api"), f"{name}-{uuid.uuid4().hex[:8]}")
    return Oracle(run_id)


class DroppingProxy:
    """TCP proxy to one upstream; while ``drop`` is set it forwards requests but swallows the
    upstream's answer and closes the client's connection (the response is lost)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.drop = True
        self.swallowed: list[bytes] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        drop = self.drop
        pump = asyncio.create_task(_pipe(reader, up_writer))
        try:
            if drop:
                answer = await up_reader.readuntil(b"\r\n\r\n")
                self.swallowed.append(answer.split(b"\r\n", 1)[0])
            else:
                await _pipe(up_reader, writer)
        finally:
            pump.cancel()
            up_writer.close()
            writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while chunk := await reader.read(65536):
        writer.write(chunk)
        await writer.drain()


def _batch(n: int) -> tuple[list[Point], dict[str, object]]:
    points: list[Point] = [
        ("lost", n * 100 + i, 1_700_000_000_000 + n, float(i)) for i in range(100)
    ]
    body: dict[str, object] = {
        "run_id": "",
        "metrics": [{"key": k, "step": s, "timestamp": t, "value": v} for k, s, t, v in points],
    }
    return points, body


async def test_lost_response_resend_is_stored_once(stack: Stack) -> None:
    """Fault 6: 20 log-batches go through a proxy that drops each 200 on the way back; the
    client sees a broken connection and re-sends the identical body (as urllib3 would), which
    is answered 200. Every point is stored once."""
    report = start_report("6 lost response, identical log-batch re-sent")
    oracle = await _new_oracle(stack, "lost-response")
    proxy = DroppingProxy(stack.ports.ingest)
    port = await proxy.start()
    url = f"http://127.0.0.1:{port}/api/2.0/mlflow/runs/log-batch"
    connector = aiohttp.TCPConnector(force_close=True)
    broken = 0
    try:
        async with aiohttp.ClientSession(connector=connector) as session:
            for n in range(20):
                points, body = _batch(n)
                body["run_id"] = oracle.run_id
                for drop in (True, False):
                    proxy.drop = drop
                    oracle.sent.update(points)
                    oracle.requests_sent += 1
                    try:
                        async with session.post(url, json=body) as r:
                            await r.read()
                            assert r.status == 200 and not drop
                    except aiohttp.ClientConnectionError:
                        assert drop
                        broken += 1
                        continue
                    oracle.acked.update(points)
                    oracle.requests_acked += 1
    finally:
        await proxy.close()
    assert broken == 20
    assert proxy.swallowed == [b"HTTP/1.1 200 OK"] * 20  # the lost answers were 200s
    await converge(stack, oracle, report)


async def _sigterm_under_load(
    stack: Stack, service: str, during: Callable[[], Awaitable[None]] | None = None
) -> tuple[int, float]:
    """SIGTERM ``service``; returns (exit code, seconds to exit); restarts it."""
    process: subprocess.Popen[bytes] = stack.processes[service]
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    if during is not None:
        await during()
    code = await asyncio.to_thread(process.wait, DRAIN_DEADLINE_S + 10)
    took = time.monotonic() - started
    stack.processes.pop(service)
    await asyncio.to_thread(stack.start, service)
    return code, took


async def test_graceful_shutdown_under_load(stack: Stack) -> None:
    """Fault 9: under a log-batch stream, SIGTERM ingest (requests already in flight get
    their answer), then the writer (flushes, leaves the group), then the api (in-flight
    fenced reads answered); each exits 0 within the drain deadline and nothing is lost."""
    report = start_report("9 graceful shutdown (SIGTERM) of ingest, writer, api")
    oracle = await _new_oracle(stack, "sigterm")
    load = asyncio.create_task(stream(oracle, stack.url("ingest"), requests=200, concurrency=6))
    await wait_until(lambda: _acked(oracle, 20), deadline_s=60)
    results: dict[str, tuple[int, float]] = {}
    in_flight: list[int] = []

    async def inflight_requests(service: str, path: str, body: dict[str, object]) -> None:
        """Eight requests sent just before SIGTERM over connections already open (so none
        waits in the accept backlog); each must get its HTTP answer, not a reset."""
        process = stack.processes[service]
        connector = aiohttp.TCPConnector(limit=8)
        try:
            async with aiohttp.ClientSession(connector=connector) as session:
                await _warm(session, f"{stack.url(service)}/health/live", 8)
                tasks = [
                    asyncio.create_task(_post_status(session, stack.url(service) + path, body))
                    for _ in range(8)
                ]
                await asyncio.sleep(0.05)
                started = time.monotonic()
                process.send_signal(signal.SIGTERM)
                in_flight.extend(await asyncio.gather(*tasks))
                code = await asyncio.to_thread(process.wait, DRAIN_DEADLINE_S + 10)
                results[service] = (code, time.monotonic() - started)
        finally:
            if process.poll() is None:
                process.kill()
            stack.processes.pop(service)
            await asyncio.to_thread(stack.start, service)

    points, body = _batch(1000)
    body["run_id"] = oracle.run_id
    oracle.sent.update(points)
    oracle.requests_sent += 8
    await inflight_requests("ingest", "/api/2.0/mlflow/runs/log-batch", body)
    if all(s == 200 for s in in_flight[:8]):
        oracle.acked.update(points)
        oracle.requests_acked += 8
    await wait_until(lambda: _acked(oracle, 80), deadline_s=120)
    results["writer"] = await _sigterm_under_load(stack, "writer")
    await wait_until(lambda: _acked(oracle, 140), deadline_s=120)
    search = {"experiment_ids": ["0"], "max_results": 1}
    await inflight_requests("api", "/api/2.0/mlflow/runs/search", search)
    await load
    print(f"sigterm: exit code and seconds {results}; in-flight statuses {in_flight}")
    await converge(stack, oracle, report)
    assert in_flight == [200] * 16
    assert all(code == 0 and took < DRAIN_DEADLINE_S for code, took in results.values())


async def _acked(oracle: Oracle, requests: int) -> bool:
    return oracle.requests_acked >= requests


async def _warm(session: aiohttp.ClientSession, url: str, connections: int) -> None:
    async def one() -> None:
        async with session.get(url) as r:
            await r.read()

    await asyncio.gather(*(one() for _ in range(connections)))


async def _post_status(session: aiohttp.ClientSession, url: str, body: dict[str, object]) -> int:
    """HTTP status, 0 when the connection broke before an answer."""
    try:
        async with session.post(url, json=body) as r:
            await r.read()
            return r.status
    except aiohttp.ClientConnectionError:
        return 0


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="aiohttp's graceful shutdown does not let a handler finish reading a body still"
    " being uploaded at SIGTERM: the drain waits its 10 s, then the connection is reset",
)
async def test_sigterm_while_body_uploading_is_answered(stack: Stack) -> None:
    """Finding of fault 9: eight log-batches whose handlers already run (headers and half
    the body sent) when ingest gets SIGTERM; the second halves follow 0.5 s later. Each should
    get an answer (200, or 429 to retry); today each gets a reset after the full drain."""
    oracle_run = await _new_oracle(stack, "sigterm-upload")
    points, body = _batch(2000)
    body["run_id"] = oracle_run.run_id
    raw = orjson.dumps(body)
    release = asyncio.Event()
    process = stack.processes["ingest"]

    async def halves() -> AsyncIterator[bytes]:
        yield raw[: len(raw) // 2]
        await release.wait()
        yield raw[len(raw) // 2 :]

    async def one(session: aiohttp.ClientSession) -> int:
        url = f"{stack.url('ingest')}/api/2.0/mlflow/runs/log-batch"
        headers = {"Content-Type": "application/json"}
        try:
            async with session.post(url, data=halves(), headers=headers) as r:
                await r.read()
                return r.status
        except aiohttp.ClientConnectionError:
            return 0

    try:
        async with aiohttp.ClientSession() as session:
            tasks = [asyncio.create_task(one(session)) for _ in range(8)]
            await asyncio.sleep(0.5)
            process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.5)
            release.set()
            statuses = await asyncio.gather(*tasks)
    finally:
        await asyncio.to_thread(process.wait, DRAIN_DEADLINE_S + 10)
        stack.processes.pop("ingest")
        await asyncio.to_thread(stack.start, "ingest")
    print(f"sigterm during upload: statuses {statuses} ({len(points)} points each)")
    assert all(s in (200, 429) for s in statuses), statuses
