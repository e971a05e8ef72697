"""Issue 13, faults on the trace path: the writer is SIGKILLed three times while 10,000 traces
(20,000 spans, OTLP batches of 100 traces) stream in. Every acknowledged span is stored exactly
once and every acknowledged trace has its info (the flush transaction holds spans, trace infos
and offsets; a killed flush rolls back and the restarted writer replays from the stored
offset)."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import Awaitable, Callable

import aiohttp
import asyncpg
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tests.fault.faults import drained
from tests.fault.oracle import wait_until
from tests.stack import Stack

TRACES = 10_000
PER_REQUEST = 100
CONCURRENCY = 4
KILL_AFTER = (15, 45, 75)  # requests acknowledged before each SIGKILL
SESSION_MS = "6000"


def _body(trace_ids: list[bytes]) -> bytes:
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    for trace in trace_ids:
        for i, parent in ((1, b""), (2, (1).to_bytes(8, "big"))):
            spans.append(
                Span(
                    trace_id=trace,
                    span_id=i.to_bytes(8, "big"),
                    parent_span_id=parent,
                    name=f"s{i}",
                    start_time_unix_nano=1_700_000_000_000_000_000 + i,
                    end_time_unix_nano=1_700_000_000_000_000_100,
                    status=Status(code=Status.STATUS_CODE_OK),
                )
            )
    return request.SerializeToString()


async def _send(session: aiohttp.ClientSession, url: str, experiment: str, body: bytes) -> None:
    """Post until acknowledged, obeying 429 + Retry-After as the exporter's HTTP client does."""
    headers = {"Content-Type": "application/x-protobuf", "x-mlflow-experiment-id": experiment}
    while True:
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()
            if response.status == 200:
                return
            assert response.status == 429, response.status
            await asyncio.sleep(float(response.headers.get("Retry-After", "1")))


def _at_least(acked: list[bytes], n: int) -> Callable[[], Awaitable[bool]]:
    async def reached() -> bool:
        return len(acked) >= n

    return reached


async def test_writer_sigkill_while_traces_stream_in(stack: Stack) -> None:
    traces = [uuid.uuid4().bytes for _ in range(TRACES)]
    pieces = [traces[i : i + PER_REQUEST] for i in range(0, TRACES, PER_REQUEST)]
    acked: list[bytes] = []
    async with aiohttp.ClientSession() as session:
        async with session.post(
            stack.url("api") + "/api/2.0/mlflow/experiments/create",
            json={"name": f"trace-faults-{uuid.uuid4().hex[:8]}"},
        ) as created:
            experiment = (await created.json())["experiment_id"]
        queue: asyncio.Queue[list[bytes]] = asyncio.Queue()
        for piece in pieces:
            queue.put_nowait(piece)

        async def worker() -> None:
            while not queue.empty():
                piece = queue.get_nowait()
                await _send(session, stack.url("ingest") + "/v1/traces", experiment, _body(piece))
                acked.extend(piece)

        workers = [asyncio.create_task(worker()) for _ in range(CONCURRENCY)]
        for threshold in KILL_AFTER:
            await wait_until(_at_least(acked, threshold * PER_REQUEST), deadline_s=300)
            await asyncio.to_thread(stack.kill, "writer", signal.SIGKILL)
            await asyncio.to_thread(
                stack.start, "writer", SLUICE_KAFKA_SESSION_TIMEOUT_MS=SESSION_MS
            )
        await asyncio.gather(*workers)
    assert len(acked) == TRACES
    await drained(stack, topic=stack.traces_topic)

    ids = ["tr-" + t.hex() for t in acked]
    conn = await asyncpg.connect(stack.dsn)
    try:
        spans = await conn.fetchval(
            "SELECT count(*) FROM trace_spans WHERE trace_id = ANY($1::text[])", ids
        )
        infos = await conn.fetch(
            "SELECT state, finalized FROM trace_info WHERE trace_id = ANY($1::text[])", ids
        )
    finally:
        await conn.close()
    print(f"TRACE FAULTS: {TRACES} traces acked, {spans} spans and {len(infos)} infos stored")
    assert spans == 2 * TRACES  # primary key (trace, span): stored once, none lost
    assert len(infos) == TRACES
    assert {r["state"] for r in infos} == {"OK"} and not any(r["finalized"] for r in infos)
