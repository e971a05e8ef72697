"""What the writer's two pipelines (``writer/pipeline.py``) store, and how: metric records into
chunks and latest values (``writer/flush.py``), trace records into spans and trace infos
(``writer/trace_flush.py``). Each flush counts its rows here."""

from __future__ import annotations

import asyncpg

from schemas import trace_wire, wire
from sluice import metrics
from writer import compact, flush, trace_flush
from writer.batch import Batch, BatchPolicy
from writer.pipeline import Stage, Stored
from writer.trace_batch import TraceBatch


def metric_stage(
    policy: BatchPolicy, small_chunks: compact.Tracker
) -> Stage[wire.MetricRecord, Batch]:
    """Metric points; series that got a small chunk go to ``small_chunks`` (compacted by
    ``compact.Compactor``, not on the flush path)."""

    async def store(
        conn: asyncpg.Connection, topic: str, batch: Batch, committed: dict[int, int]
    ) -> Stored:
        await flush.prepare(conn)
        result = await flush.flush(conn, topic, batch, committed, compact.SMALL_CHUNK)
        small_chunks.add(result.small)
        metrics.writer_rows_total.labels("copied").inc(result.copied)
        metrics.writer_rows_total.labels("stored").inc(result.stored)
        return Stored(result.copied, result.quarantined)

    return Stage("metrics", lambda: Batch(policy), wire.decode, store)


def trace_stage(policy: BatchPolicy) -> Stage[trace_wire.TraceRecord, TraceBatch]:
    """Spans and trace infos (MLflow's StartTraceV3)."""

    async def store(
        conn: asyncpg.Connection, topic: str, batch: TraceBatch, committed: dict[int, int]
    ) -> Stored:
        await trace_flush.prepare(conn)
        result = await trace_flush.flush(conn, topic, batch, committed)
        metrics.writer_spans_total.inc(result.spans)
        return Stored(result.spans + result.traces)

    return Stage("traces", lambda: TraceBatch(policy), trace_wire.decode, store)
