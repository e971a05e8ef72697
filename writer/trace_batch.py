"""Pure batching and assembly of trace records: consumed records in, rows to upsert out.

A batch holds the records of several partitions in arrival order. ``assemble`` turns them into
span rows (one per (trace, span); a span sent twice keeps its last version) and one trace-info
row per trace, which ``writer/trace_flush.py`` merges with the stored row. Merging rules (MLflow's
log_spans / start_trace semantics, order-independent):

- StartTraceV3 (``TraceStart``) is final: its time, duration, state, client request id win, and
  previews it carries replace stored ones. Once stored (``finalized``), spans no longer move them.
- Before that, the trace spans its spans: request time = earliest span start, duration up to
  the latest span end, state = the root span's (OK unless ERROR) once the root arrived, else
  IN_PROGRESS; previews come from the root's inputs/outputs while unset.
- Tags and metadata accumulate; within a batch a TraceStart's win over span-derived ones.
- Several TraceStarts of one trace (an MLflow 2.x StartTrace, then its EndTrace) merge in
  order: the later one's fields win, tags and metadata accumulate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec
import orjson

from schemas.trace_json import SPANS_IN_TRACKING_STORE, SPANS_LOCATION_TAG
from schemas.trace_wire import TraceRecord, TraceSpans, TraceStart, entries, span_count
from writer.batch import BatchPolicy

SPAN_COLUMNS = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "span_type",
    "status",
    "start_ns",
    "end_ns",
    "proto",
)
INFO_COLUMNS = (
    "trace_id",
    "experiment_id",
    "request_time_ms",
    "execution_ms",
    "state",
    "request_preview",
    "response_preview",
    "client_request_id",
    "finalized",
    "span_start_ms",
    "span_end_ms",
    "tags",
    "metadata",
)
SpanRow = tuple[str, str, str | None, str, str | None, str, int, int | None, bytes]
InfoRow = tuple[
    str,
    int,
    int,
    int | None,
    str,
    str | None,
    str | None,
    str | None,
    bool,
    int | None,
    int | None,
    str,
    str,
]


@dataclass(slots=True)
class TraceBatch:
    """Records consumed since the last flush, per partition, and the offsets they reach
    (dead-lettered records advance offsets too)."""

    policy: BatchPolicy
    records: dict[int, list[TraceRecord]] = field(default_factory=dict)
    next_offsets: dict[int, int] = field(default_factory=dict)
    received_at_ms: list[int] = field(default_factory=list)
    size: int = 0  # spans + trace infos
    started_at: float | None = None

    def add(self, partition: int, offset: int, record: TraceRecord | None, now: float) -> None:
        if self.started_at is None:
            self.started_at = now
        self.next_offsets[partition] = offset + 1
        if record is None:
            return
        self.records.setdefault(partition, []).append(record)
        self.size += span_count(record)
        self.received_at_ms.append(record.received_at_ms)

    def ready(self, now: float) -> bool:
        if self.started_at is None:
            return False
        return self.size >= self.policy.max_rows or now - self.started_at >= self.policy.max_age_s

    def due_in(self, now: float) -> float | None:
        return self.policy.due_in(self.started_at, now)

    def empty(self) -> bool:
        return not self.next_offsets

    def all_records(self) -> list[TraceRecord]:
        """Every record; one trace's records share a partition, so their order is kept."""
        return [r for records in self.records.values() for r in records]

    def drop_partitions(self, partitions: set[int]) -> None:
        for p in partitions:
            for record in self.records.pop(p, []):
                self.size -= span_count(record)
            self.next_offsets.pop(p, None)
        if not self.next_offsets:
            self.clear()

    def clear(self) -> None:
        self.records.clear()
        self.next_offsets.clear()
        self.received_at_ms.clear()
        self.size = 0
        self.started_at = None


@dataclass(slots=True)
class _Trace:
    experiment_id: int
    start: TraceStart | None = None
    span_start_ms: int | None = None
    span_end_ms: int | None = None
    root_state: str | None = None
    request_preview: str | None = None
    response_preview: str | None = None
    span_tags: dict[str, str] = field(default_factory=dict)

    def add_spans(self, batch: TraceSpans) -> None:
        for span in batch.spans:
            start_ms = span.start_ns // 1_000_000
            self.span_start_ms = _least(self.span_start_ms, start_ms)
            if span.end_ns is not None:
                self.span_end_ms = _greatest(self.span_end_ms, span.end_ns // 1_000_000)
            if span.parent_span_id is None:
                self.root_state = "ERROR" if span.status == "ERROR" else "OK"
        self.span_tags.update(batch.tags)
        if batch.root is not None:
            self.span_tags.update(batch.root.tags)
            self.request_preview = self.request_preview or batch.root.request_preview
            self.response_preview = self.response_preview or batch.root.response_preview
        self.span_tags[SPANS_LOCATION_TAG] = SPANS_IN_TRACKING_STORE

    def row(self, trace_id: str) -> InfoRow:
        start = self.start
        metadata = dict(start.metadata) if start else {}
        tags = {**self.span_tags, **(start.tags if start else {})}
        state: str
        if start is not None:
            request_time_ms, execution_ms, state = (
                start.request_time_ms,
                start.execution_ms,
                start.state,
            )
            request_preview = start.request_preview or self.request_preview
            response_preview = start.response_preview or self.response_preview
        else:
            request_time_ms = self.span_start_ms or 0
            execution_ms = (
                self.span_end_ms - request_time_ms if self.span_end_ms is not None else None
            )
            state = self.root_state or "IN_PROGRESS"
            request_preview, response_preview = self.request_preview, self.response_preview
        return (
            trace_id,
            start.experiment_id if start else self.experiment_id,
            request_time_ms,
            execution_ms,
            state,
            request_preview,
            response_preview,
            start.client_request_id if start else None,
            start is not None,
            self.span_start_ms,
            self.span_end_ms,
            orjson.dumps(tags).decode(),
            orjson.dumps(metadata).decode(),
        )


def assemble(records: list[TraceRecord]) -> tuple[list[SpanRow], list[InfoRow]]:
    """Span rows (sorted by key: the row-lock order) and trace-info rows (sorted by id)."""
    spans: dict[tuple[str, str], SpanRow] = {}
    traces: dict[str, _Trace] = {}
    for record in records:
        if isinstance(record, TraceStart):
            trace = _trace(traces, record.trace_id, record.experiment_id)
            trace.start = _after(trace.start, record)
            continue
        for entry in entries(record):
            _trace(traces, entry.trace_id, record.experiment_id).add_spans(entry)
            for s in entry.spans:
                spans[(entry.trace_id, s.span_id)] = (
                    entry.trace_id,
                    s.span_id,
                    s.parent_span_id,
                    s.name,
                    s.span_type,
                    s.status,
                    s.start_ns,
                    s.end_ns,
                    s.proto,
                )
    span_rows = [spans[key] for key in sorted(spans)]
    info_rows = [traces[trace_id].row(trace_id) for trace_id in sorted(traces)]
    return span_rows, info_rows


def _after(earlier: TraceStart | None, later: TraceStart) -> TraceStart:
    """Two trace infos of one trace in one batch (an MLflow 2.x StartTrace and its EndTrace),
    merged as the flush's conflict clause merges them with a stored row: the later one's
    fields win, previews only where it has them, tags and metadata accumulate."""
    if earlier is None:
        return later
    return msgspec.structs.replace(
        later,
        request_preview=_coalesce(later.request_preview, earlier.request_preview),
        response_preview=_coalesce(later.response_preview, earlier.response_preview),
        tags={**earlier.tags, **later.tags},
        metadata={**earlier.metadata, **later.metadata},
    )


def _coalesce(first: str | None, second: str | None) -> str | None:
    return second if first is None else first


def _trace(traces: dict[str, _Trace], trace_id: str, experiment_id: int) -> _Trace:
    trace = traces.get(trace_id)
    if trace is None:
        trace = traces[trace_id] = _Trace(experiment_id)
    return trace


def _least(a: int | None, b: int) -> int:
    return b if a is None else min(a, b)


def _greatest(a: int | None, b: int) -> int:
    return b if a is None else max(a, b)
