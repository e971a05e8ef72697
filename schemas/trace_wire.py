"""The Kafka record contract for traces, between ingest (producer) and writer (consumer).

Topic ``sluice.traces.v1`` (``SLUICE_KAFKA_TRACES_TOPIC``); key = MLflow trace id (UTF-8), so
every record of one trace shares a partition and one writer, in the order ingest acknowledged
them. The metric contract (``schemas/wire.py``) is separate and unchanged. Value = JSON object,
version 1, one of two types (``schemas/records/examples/traces.v1/``)::

    {"v": 1, "type": "spans", "trace_id": "tr-<32 hex>", "experiment_id": 12,
     "event_id": "<uuid hex>", "received_at_ms": 1732370000000,
     "spans": [{"span_id": "<16 hex>", "parent_span_id": null, "name": "predict",
                "span_type": "CHAIN", "status": "OK", "start_ns": 1, "end_ns": 2,
                "proto": "<base64 of the OTLP Span message>"}],
     "root": {"request_preview": "...", "response_preview": "...", "tags": {"k": "v"}},
     "tags": {"service.name": "...", "mlflow.artifactLocation": "..."}}

    {"v": 1, "type": "trace_info", "trace_id": "tr-...", "experiment_id": 12, "event_id": "...",
     "received_at_ms": 1732370000000, "request_time_ms": 1, "execution_ms": 5, "state": "OK",
     "request_preview": "...", "response_preview": "...", "client_request_id": null,
     "tags": {...}, "metadata": {...}}

``spans`` carries the spans of one trace from one OTLP request (a request with spans of several
traces becomes several records); ``root`` is set when the batch holds the trace's root span.
``trace_info`` is MLflow's StartTraceV3: the client's final, authoritative trace info. The two
may arrive in any order and spans of one trace in any number of records; the writer merges them
(``writer/trace_flush.py``). Consumers reject unknown versions and types (dead-letter topic).
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec

from schemas.wire import InvalidRecord

VERSION: Final = 1
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
    v: Literal[1]
    trace_id: _TraceId
    experiment_id: Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]
    event_id: _NonEmpty
    received_at_ms: _Millis
    spans: list[WireSpan]
    root: TraceRoot | None = None
    # Trace tags set by ingest: resource attributes (as MLflow) and mlflow.artifactLocation.
    tags: dict[str, str] = msgspec.field(default_factory=dict)


class TraceStart(msgspec.Struct, frozen=True, tag="trace_info", tag_field="type"):
    v: Literal[1]
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


TraceRecord = SpanBatch | TraceStart

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(TraceRecord)


def encode(record: TraceRecord) -> bytes:
    return _encoder.encode(record)


def decode(raw: bytes | None) -> TraceRecord:
    """Parse and check one record value; raise InvalidTraceRecord with a reason otherwise."""
    if raw is None:
        raise InvalidTraceRecord("empty record value")
    try:
        record: TraceRecord = _decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise InvalidTraceRecord(str(exc)) from None
    return record
