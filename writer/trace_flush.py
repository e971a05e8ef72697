"""One trace flush = one PostgreSQL transaction: spans, trace infos and offsets commit together.

Steps: binary COPY of trace-info rows straight into ``trace_info`` (a batch's traces are usually
all new), and only when one was stored before, COPY into a temporary staging table and merge
into ``trace_info`` (rules in ``writer/trace_batch.py``, written once here as the conflict
clause); the same for span rows and ``trace_spans``, where the re-sent version of a span
replaces the first; conditional offset update (fencing, ``writer/offsets.py``).

Exactly once: a record is either stored with its offset or neither. Lock order: trace_info rows
in trace-id order, then span rows in (trace_id, span_id) order; the api's tag and delete
statements touch one trace's rows in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from sluice import metrics
from writer import offsets
from writer.trace_batch import (
    INFO_COLUMNS,
    SPAN_COLUMNS,
    TraceBatch,
    assemble,
)

_STAGING_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS staging_trace_spans (LIKE trace_spans)"
    " ON COMMIT DELETE ROWS;"
    " CREATE TEMP TABLE IF NOT EXISTS staging_trace_info"
    " (LIKE trace_info INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
_UPSERT_SPANS = """
INSERT INTO trace_spans AS s
SELECT * FROM staging_trace_spans ORDER BY trace_id, span_id
ON CONFLICT (trace_id, span_id) DO UPDATE
SET parent_span_id = excluded.parent_span_id, name = excluded.name,
    span_type = excluded.span_type, status = excluded.status, start_ns = excluded.start_ns,
    end_ns = excluded.end_ns, proto = excluded.proto
"""
# ``e`` = what this batch says, ``t`` = what is stored. A finalized ``e`` (StartTraceV3) wins;
# a finalized ``t`` keeps its fields against spans; otherwise the trace spans its spans.
_MERGE_INFO = """
INSERT INTO trace_info AS t (trace_id, experiment_id, request_time_ms, execution_ms, state,
    request_preview, response_preview, client_request_id, finalized, span_start_ms, span_end_ms,
    tags, metadata)
SELECT trace_id, experiment_id, request_time_ms, execution_ms, state, request_preview,
    response_preview, client_request_id, finalized, span_start_ms, span_end_ms, tags, metadata
FROM staging_trace_info ORDER BY trace_id
ON CONFLICT (trace_id) DO UPDATE SET
    experiment_id = CASE WHEN excluded.finalized THEN excluded.experiment_id
                         ELSE t.experiment_id END,
    request_time_ms = CASE WHEN excluded.finalized THEN excluded.request_time_ms
                           WHEN t.finalized THEN t.request_time_ms
                           ELSE least(t.request_time_ms, excluded.request_time_ms) END,
    execution_ms = CASE WHEN excluded.finalized THEN excluded.execution_ms
                        WHEN t.finalized THEN t.execution_ms
                        ELSE greatest(t.span_end_ms, excluded.span_end_ms)
                             - least(t.request_time_ms, excluded.request_time_ms) END,
    state = CASE WHEN excluded.finalized THEN excluded.state
                 -- an unfinalized row's state is its root span's, IN_PROGRESS before the root
                 WHEN t.state IN ('IN_PROGRESS', 'STATE_UNSPECIFIED')
                     THEN coalesce(nullif(excluded.state, 'IN_PROGRESS'), t.state)
                 ELSE t.state END,
    request_preview = CASE WHEN excluded.finalized
                           THEN coalesce(excluded.request_preview, t.request_preview)
                           ELSE coalesce(t.request_preview, excluded.request_preview) END,
    response_preview = CASE WHEN excluded.finalized
                            THEN coalesce(excluded.response_preview, t.response_preview)
                            ELSE coalesce(t.response_preview, excluded.response_preview) END,
    client_request_id = CASE WHEN excluded.finalized THEN excluded.client_request_id
                             ELSE t.client_request_id END,
    finalized = t.finalized OR excluded.finalized,
    span_start_ms = least(t.span_start_ms, excluded.span_start_ms),
    span_end_ms = greatest(t.span_end_ms, excluded.span_end_ms),
    tags = t.tags || excluded.tags,
    metadata = t.metadata || excluded.metadata
"""


@dataclass(frozen=True, slots=True)
class TraceFlushResult:
    spans: int
    traces: int


async def _store(
    conn: asyncpg.Connection,
    rows: list[Any],
    *,
    table: str,
    columns: tuple[str, ...],
    merge: str,
) -> None:
    """COPY ``rows`` straight into ``table``; when one of their keys is stored already, COPY them
    into its staging table (``staging_<table>``) and run ``merge`` instead.

    A batch's rows are usually new: a span is stored twice only when a client re-sent an export
    whose acknowledgement it missed, a trace's info only when its spans or its StartTraceV3
    reached an earlier flush. The direct COPY saves PostgreSQL writing each row twice and the
    conflict handling: about half its CPU a span (``benchmarks/micro/span_copy.py``), ~26
    instead of ~43 µs a trace info (the bench's traces, session 13)."""
    if await _copied_when_new(conn, table, rows, columns):
        return
    await conn.copy_records_to_table(f"staging_{table}", records=rows, columns=columns)
    await conn.execute(merge)


async def _copied_when_new(
    conn: asyncpg.Connection, table: str, rows: list[Any], columns: tuple[str, ...]
) -> bool:
    """COPY ``rows`` into ``table`` under a savepoint; False (nothing written) when a row's key
    is stored already. A concurrent insert of the same key can only come from a fenced writer
    of the same partition, which writes the same rows in the same (sorted) order."""
    try:
        async with conn.transaction():  # a savepoint: a refused COPY leaves nothing behind
            await conn.copy_records_to_table(table, records=rows, columns=columns)
    except asyncpg.UniqueViolationError:
        return False
    return True


async def prepare(conn: asyncpg.Connection) -> None:
    """Per-connection setup; idempotent."""
    await conn.execute(_STAGING_DDL)


async def flush(
    conn: asyncpg.Connection, topic: str, batch: TraceBatch, committed: dict[int, int]
) -> TraceFlushResult:
    """Store ``batch`` and advance offsets from ``committed`` (mutated only after COMMIT).

    Raises LostOwnership (rolled back) when another writer committed one of the partitions."""
    span_rows, info_rows = assemble(batch.all_records())
    async with conn.transaction():
        if info_rows:
            with metrics.writer_flush_seconds.labels("trace_info").time():
                await _store(
                    conn, info_rows, table="trace_info", columns=INFO_COLUMNS, merge=_MERGE_INFO
                )
        if span_rows:
            with metrics.writer_flush_seconds.labels("spans").time():
                await _store(
                    conn, span_rows, table="trace_spans", columns=SPAN_COLUMNS, merge=_UPSERT_SPANS
                )
        with metrics.writer_flush_seconds.labels("offsets").time():
            for partition, next_offset in sorted(batch.next_offsets.items()):
                await offsets.advance(conn, topic, partition, committed[partition], next_offset)
    committed.update(batch.next_offsets)
    return TraceFlushResult(spans=len(span_rows), traces=len(info_rows))
