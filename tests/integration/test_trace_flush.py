"""The writer's trace flush against the real PostgreSQL: new traces and spans are COPYed straight
into their tables, and a flush touching stored ones falls back to the merge and upsert, with
the same result as if each had gone through them."""

from __future__ import annotations

import os

import asyncpg
import msgspec
import orjson

from schemas import trace_wire
from writer import trace_flush
from writer.batch import BatchPolicy
from writer.trace_batch import TraceBatch

_POLICY = BatchPolicy(max_rows=1000, max_age_s=1.0)


def _span(span_id: str, parent: str | None, start_ms: int, end_ms: int) -> trace_wire.WireSpan:
    return trace_wire.WireSpan(
        span_id=span_id,
        parent_span_id=parent,
        name=f"span-{span_id[-1]}",
        span_type="LLM",
        status="OK",
        start_ns=start_ms * 1_000_000,
        end_ns=end_ms * 1_000_000,
        proto=span_id.encode(),
    )


def _spans(
    trace_id: str, *spans: trace_wire.WireSpan, tags: dict[str, str] | None = None
) -> trace_wire.SpanRecord:
    entry = trace_wire.TraceSpans(trace_id=trace_id, spans=list(spans), tags=tags or {})
    return trace_wire.SpanRecord(
        v=2, experiment_id=0, event_id=os.urandom(8).hex(), received_at_ms=1, traces=[entry]
    )


def _start(trace_id: str) -> trace_wire.TraceStart:
    return trace_wire.TraceStart(
        v=2,
        trace_id=trace_id,
        experiment_id=0,
        event_id=os.urandom(8).hex(),
        received_at_ms=1,
        request_time_ms=500,
        execution_ms=9000,
        state="OK",
        request_preview="in",
        response_preview="out",
        client_request_id=None,
        tags={"from": "start"},
        metadata={"mlflow.trace_schema.version": "3"},
    )


async def _flush(
    conn: asyncpg.Connection,
    topic: str,
    committed: dict[int, int],
    *records: trace_wire.TraceRecord,
) -> trace_flush.TraceFlushResult:
    batch = TraceBatch(_POLICY)
    offset = committed[0]
    for record in records:
        batch.add(0, offset, record, now=0.0)
        offset += 1
    return await trace_flush.flush(conn, topic, batch, committed)


async def test_new_rows_are_copied_and_stored_ones_merged(conn: asyncpg.Connection) -> None:
    topic = f"test-trace-flush-{os.urandom(4).hex()}"
    await conn.execute(
        "INSERT INTO writer_offsets (topic, partition, next_offset) VALUES ($1, 0, 0)", topic
    )
    await trace_flush.prepare(conn)
    first, second = (f"tr-{os.urandom(16).hex()}" for _ in range(2))
    committed = {0: 0}
    root = _span("0000000000000001", None, 1000, 4000)
    child = _span("0000000000000002", "0000000000000001", 2000, 3000)

    # Everything new: the direct COPYs.
    result = await _flush(conn, topic, committed, _spans(first, root, tags={"a": "1"}))
    assert (result.spans, result.traces) == (1, 1)

    # The first trace's info and a re-sent, changed root conflict; the second trace is new.
    resent = msgspec.structs.replace(root, name="renamed")
    await _flush(
        conn, topic, committed, _start(first), _spans(first, child, resent), _spans(second, root)
    )
    assert committed == {0: 4}
    assert (
        await conn.fetchval("SELECT next_offset FROM writer_offsets WHERE topic = $1", topic) == 4
    )

    info = await conn.fetchrow("SELECT * FROM trace_info WHERE trace_id = $1", first)
    assert (info["request_time_ms"], info["execution_ms"], info["state"]) == (500, 9000, "OK")
    assert info["finalized"] and (info["span_start_ms"], info["span_end_ms"]) == (1000, 4000)
    assert orjson.loads(info["tags"])["a"] == "1"  # tags of both flushes
    assert orjson.loads(info["tags"])["from"] == "start"
    spans = await conn.fetch(
        "SELECT span_id, name FROM trace_spans WHERE trace_id = $1 ORDER BY span_id", first
    )
    assert [tuple(s) for s in spans] == [
        ("0000000000000001", "renamed"),  # the re-sent version replaced the first
        ("0000000000000002", "span-2"),
    ]
    other = await conn.fetchrow("SELECT * FROM trace_info WHERE trace_id = $1", second)
    assert (other["state"], other["finalized"], other["request_time_ms"]) == ("OK", False, 1000)
