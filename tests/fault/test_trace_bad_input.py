"""Issue 13, bad input on the trace write path: malformed protobuf or JSON, wrong content type,
bodies over the limit (declared or gzip-expanded), spans without ids, a span too large for one
Kafka record, unknown experiments -- each a clean 4xx, never a 5xx, and nothing produced to the
traces topic for a refused request. Unknown trace ids on the read side are 404s."""

from __future__ import annotations

import gzip
import io
import time
import uuid

import aiohttp
import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from schemas import trace_wire, wire
from tests.fault.faults import end_offsets, produce_raw, read_all, vm_rss_kb
from tests.fault.oracle import wait_until
from tests.stack import Stack

RSS_BOUND_KB = 200 * 1024
PROTOBUF = "application/x-protobuf"


def _export(*spans: Span) -> bytes:
    request = ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add().spans.extend(spans)
    return request.SerializeToString()


def _span(attribute_bytes: int = 0, span_id: bytes = b"\x01" * 8) -> Span:
    span = Span(trace_id=uuid.uuid4().bytes, span_id=span_id, name="s", start_time_unix_nano=1)
    if attribute_bytes:
        value = AnyValue(string_value="x" * attribute_bytes)
        span.attributes.append(KeyValue(key="big", value=value))
    return span


def _cases(experiment: str) -> list[tuple[str, dict[str, str], bytes, int]]:
    """(name, headers, body, expected status)."""
    ok = {"Content-Type": PROTOBUF, "x-mlflow-experiment-id": experiment}
    gz = {**ok, "Content-Encoding": "gzip"}
    return [
        ("garbage protobuf", ok, b"\xff\xfe\xfd\x00garbage", 400),
        ("truncated protobuf", ok, _export(_span())[:-3], 400),
        ("empty body", ok, b"", 400),
        ("wrong content type", {**ok, "Content-Type": "text/plain"}, _export(_span()), 400),
        ("no content type", {"x-mlflow-experiment-id": experiment}, _export(_span()), 400),
        ("missing experiment header", {"Content-Type": PROTOBUF}, _export(_span()), 422),
        (
            "unknown experiment",
            {**ok, "x-mlflow-experiment-id": "987654321"},
            _export(_span()),
            404,
        ),
        ("experiment not a number", {**ok, "x-mlflow-experiment-id": "abc"}, _export(_span()), 404),
        ("json not OTLP", {**ok, "Content-Type": "application/json"}, b'{"resourceSpans": 5}', 400),
        (
            "json bad hex id",
            {**ok, "Content-Type": "application/json"},
            b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz","spanId":"01"}]}]}]}',
            400,
        ),
        ("span without span id", ok, _export(_span(span_id=b"")), 422),
        ("span id of 3 bytes", ok, _export(_span(span_id=b"abc")), 422),
        ("bad gzip", gz, b"not gzip at all", 400),
        ("unknown encoding", {**ok, "Content-Encoding": "lz4"}, _export(_span()), 400),
        ("gzip bomb", gz, gzip.compress(b"\0" * 64 * 1024 * 1024), 413),
        ("declared body over the limit", ok, b"\0" * (5 * 1024 * 1024), 400),
        ("huge attribute value", ok, _export(_span(attribute_bytes=3 * 1024 * 1024)), 413),
    ]


async def _post(
    session: aiohttp.ClientSession, base: str, headers: dict[str, str], body: bytes
) -> int:
    """The answer's status; 0 when the connection closed before one arrived."""
    try:
        async with session.post(
            base + "/v1/traces", data=io.BytesIO(body), headers=headers
        ) as response:
            await response.read()
            return response.status
    except aiohttp.ClientConnectionError:
        return 0


async def test_refused_trace_writes_produce_nothing(stack: Stack) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.bootstrap, group_id=None)
    await consumer.start()
    tps = [TopicPartition(stack.traces_topic, p) for p in range(4)]
    pid = stack.processes["ingest"].pid
    rss_before = vm_rss_kb(pid)
    problems: list[str] = []
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(
                stack.url("api") + "/api/2.0/mlflow/experiments/create",
                json={"name": f"bad-traces-{uuid.uuid4().hex[:8]}"},
            ) as created:
                experiment = (await created.json())["experiment_id"]
            for name, headers, body, expected in _cases(experiment):
                before = sum((await consumer.end_offsets(tps)).values())
                status = await _post(session, stack.url("ingest"), headers, body)
                if status == 0 and name == "declared body over the limit":
                    status = expected  # refused before reading: the client may see a reset
                after = sum((await consumer.end_offsets(tps)).values())
                if status != expected:
                    problems.append(f"{name}: status {status}, expected {expected}")
                if after != before:
                    problems.append(f"{name}: {after - before} record(s) produced")
            for path in ("/api/3.0/mlflow/traces/tr-unknown", "/api/3.0/mlflow/traces/get"):
                async with session.get(
                    stack.url("api") + path, params={"trace_id": "tr-unknown"}
                ) as response:
                    if response.status != 404:
                        problems.append(f"GET {path}: {response.status}, expected 404")
    finally:
        await consumer.stop()
    growth = vm_rss_kb(pid) - rss_before
    print(f"TRACE BAD INPUT: ingest RSS growth {growth} kB; problems {problems}")
    assert not problems
    assert growth < RSS_BOUND_KB


def _span_record(trace_id: str, experiment: int, name: str) -> bytes:
    span = trace_wire.WireSpan(
        span_id="00000000000000a1",
        parent_span_id=None,
        name=name,
        span_type=None,
        status="OK",
        start_ns=1_700_000_000_000_000_000,
        end_ns=1_700_000_000_000_000_100,
        proto=b"",
    )
    batch = trace_wire.SpanBatch(
        v=1,
        trace_id=trace_id,
        experiment_id=experiment,
        event_id=uuid.uuid4().hex,
        received_at_ms=int(time.time() * 1000),
        spans=[span],
    )
    return trace_wire.encode(batch)


async def test_a_trace_record_postgresql_refuses_is_dead_lettered(stack: Stack) -> None:
    """A direct producer's trace record that decodes but that PostgreSQL refuses (a NUL in the
    span name) goes to ``<traces topic>.dlq`` with a reason; the writer keeps running and stores
    the valid record produced behind it on the same partition (no crash loop)."""
    bad_id, good_id = f"tr-{uuid.uuid4().hex}", f"tr-{uuid.uuid4().hex}"
    bad = _span_record(bad_id, 0, "nul\x00name")
    good = _span_record(good_id, 0, "fine")
    decoded = trace_wire.decode(bad)  # it decodes (a v1 record): only COPY refuses it
    assert isinstance(decoded, trace_wire.SpanBatch) and decoded.trace_id == bad_id
    dlq = wire.dlq_topic(stack.traces_topic)
    before = sum((await end_offsets(stack.bootstrap, dlq)).values())
    writer = stack.processes["writer"]
    await produce_raw(stack.bootstrap, stack.traces_topic, 0, [bad, good], bad_id.encode())

    async def stored() -> bool:
        conn = await asyncpg.connect(stack.dsn)
        try:
            return bool(
                await conn.fetchval("SELECT count(*) FROM trace_spans WHERE trace_id = $1", good_id)
            )
        finally:
            await conn.close()

    await wait_until(stored, 60)
    records = await read_all(stack.bootstrap, dlq, expect=before + 1)
    mine = [r for r in records if r.value == bad]
    reasons = [dict(r.headers)["reason"].decode() for r in mine]
    print(f"dead-lettered: {reasons}")
    assert len(mine) == 1 and reasons[0].startswith("not storable:")
    assert writer.poll() is None  # the same writer process: it never crashed
    conn = await asyncpg.connect(stack.dsn)
    try:
        assert not await conn.fetchval(
            "SELECT count(*) FROM trace_info WHERE trace_id = $1", bad_id
        )
    finally:
        await conn.close()
