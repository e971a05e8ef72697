"""The Kafka record contract for traces, between ingest (producer) and writer (consumer).

Topic ``sluice.traces.v1`` (``SLUICE_KAFKA_TRACES_TOPIC``); partition = the metrics topic's
function of the MLflow trace id, so every record of one trace shares a partition and one writer,
in the order ingest acknowledged them. The metric contract (``schemas/wire.py``) is separate.
Value = JSON object of one of two types; version 2 (what ingest produces,
``schemas/records/examples/traces.v2/``)::

    {"v": 2, "type": "spans", "experiment_id": 12, "event_id": "<uuid hex>-0",
     "received_at_ms": 1732370000000,
     "traces": [{"trace_id": "tr-<32 hex>",
                 "spans": [{"span_id": "<16 hex>", "parent_span_id": null, "name": "predict",
                            "span_type": "CHAIN", "status": "OK", "start_ns": 1, "end_ns": 2,
                            "proto": "<base64 of the OTLP Span message>"}],
                 "root": {"request_preview": "...", "response_preview": "...", "tags": {}},
                 "tags": {"service.name": "...", "mlflow.artifactLocation": "..."}}]}

    {"v": 2, "type": "trace_info", "trace_id": "tr-...", "experiment_id": 12, "event_id": "...",
     "received_at_ms": 1732370000000, "request_time_ms": 1, "execution_ms": 5, "state": "OK",
     "request_preview": "...", "response_preview": "...", "client_request_id": null,
     "tags": {...}, "metadata": {...}}

``spans`` carries the spans of one OTLP request whose traces share a partition: one record per
partition a request touches (version 1 had one record per trace, which cost Kafka and both ends
a record per trace). Key = the first trace's id. A trace larger than 512 kB of span protos is
split over entries; ``root`` is set on the entry holding the trace's root span. ``trace_info``
is MLflow's StartTraceV3: the client's final, authoritative trace info. The two may arrive in
any order and spans of one trace in any number of records; the writer merges them
(``writer/trace_flush.py``). Version 1 records (``SpanBatch``: one trace, ``trace_id`` at the
top) are still decoded. Consumers reject unknown versions and types (dead-letter topic).
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec

from schemas.wire import InvalidRecord

VERSION: Final = 2
INT64_MAX: Final = 2**63 - 1

_NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
_Hex16 = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{16}$")]
_TraceId = Annotated[str, msgspec.Meta(pattern="^tr-[0-9a-f]{32}$|^[A-Za-z0-9_.:-]{1,128}$")]
_Nanos = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]
_Millis = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]
SpanStatus = Literal["OK", "ERROR", "UNSET"]
TraceState = Literal["OK", "ERROR", "IN_PROGRESS", "STATE_UNSPECIFIED"]


class InvalidTraceRecord(InvalidRecord):
    """A trace record no consumer can store; carries the reason for the dead-letter topic."""


class WireSpan(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    span_id: _Hex16
    parent_span_id: _Hex16 | None
    name: str
    span_type: str | None  # the mlflow.spanType attribute, decoded
    status: SpanStatus
    start_ns: _Nanos
    end_ns: _Nanos | None  # None: the span had not ended when exported
    proto: bytes  # the OTLP Span message as ingest re-serialised it (what reads return)


class TraceRoot(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What the root span says about its trace (MLflow fills these only while unset)."""

    request_preview: str | None
    response_preview: str | None
    tags: dict[str, str]  # root attributes mlflow.traceTag.<key>


class SpanBatch(msgspec.Struct, frozen=True, tag="spans", tag_field="type"):
    """Version 1 ``spans``: the spans of one trace (decoded, no longer produced)."""

    v: Literal[1]
    trace_id: _TraceId
    experiment_id: Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]
    event_id: _NonEmpty
    received_at_ms: _Millis
    spans: list[WireSpan]
    root: TraceRoot | None = None
    # Trace tags set by ingest: resource attributes (as MLflow) and mlflow.artifactLocation.
    tags: dict[str, str] = msgspec.field(default_factory=dict)


class TraceSpans(msgspec.Struct, frozen=True):
    """One trace's entry of a version 2 ``spans`` record."""

    trace_id: _TraceId
    spans: list[WireSpan]
    root: TraceRoot | None = None
    # Trace tags set by ingest: resource attributes (as MLflow) and mlflow.artifactLocation.
    tags: dict[str, str] = msgspec.field(default_factory=dict)


class SpanRecord(msgspec.Struct, frozen=True, tag="spans", tag_field="type"):
    """Version 2 ``spans``: the spans of one request's traces that share a partition."""

    v: Literal[2]
    experiment_id: Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]
    event_id: _NonEmpty
    received_at_ms: _Millis
    traces: list[TraceSpans]


class TraceStart(msgspec.Struct, frozen=True, tag="trace_info", tag_field="type"):
    v: Literal[1, 2]
    trace_id: _TraceId
    experiment_id: Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]
    event_id: _NonEmpty
    received_at_ms: _Millis
    request_time_ms: _Millis
    execution_ms: _Millis | None
    state: TraceState
    request_preview: str | None
    response_preview: str | None
    client_request_id: str | None
    tags: dict[str, str]
    metadata: dict[str, str]


TraceRecord = SpanRecord | SpanBatch | TraceStart


class _Version(msgspec.Struct):
    v: int


_encoder = msgspec.json.Encoder()
_version = msgspec.json.Decoder(_Version)
# What ingest produces; decodes version 1 trace infos as well (the same struct).
_current: msgspec.json.Decoder[SpanRecord | TraceStart] = msgspec.json.Decoder(
    SpanRecord | TraceStart
)
# One decoder per version: both versions name their types "spans" and "trace_info".
_decoders = {
    1: msgspec.json.Decoder(SpanBatch | TraceStart),
    2: _current,
}


def encode(record: TraceRecord) -> bytes:
    return _encoder.encode(record)


def decode(raw: bytes | None) -> TraceRecord:
    """Parse and check one record value; raise InvalidTraceRecord with a reason otherwise."""
    if raw is None:
        raise InvalidTraceRecord("empty record value")
    try:  # what ingest produces, without first reading the version (a pass over the record)
        return _current.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        pass  # another version, or invalid: the reason comes from that version's decoder
    try:
        decoder = _decoders.get(_version.decode(raw).v)
        if decoder is None:
            raise InvalidTraceRecord("Unsupported record version - at `$.v`")
        record: TraceRecord = decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise InvalidTraceRecord(str(exc)) from None
    return record


def entries(record: SpanRecord | SpanBatch) -> list[TraceSpans]:
    """The trace entries of a spans record of either version."""
    if isinstance(record, SpanRecord):
        return record.traces
    return [TraceSpans(record.trace_id, record.spans, record.root, record.tags)]


def span_count(record: TraceRecord) -> int:
    """Spans in the record (a trace info counts one: the writer's batch size)."""
    if isinstance(record, SpanRecord):
        return sum(len(t.spans) for t in record.traces)
    return len(record.spans) if isinstance(record, SpanBatch) else 1
