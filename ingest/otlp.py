"""OTLP/HTTP trace export (``POST /v1/traces``), pure: request bytes in, trace records out.

Parsing uses the OpenTelemetry protobuf definitions (``opentelemetry-proto``). Errors copy what
MLflow 3.17.2's FastAPI endpoint answers (``OtlpError``: a status and a ``detail``, not MLflow's
error envelope), checked in its order: content type, decompression, parse, "no spans", then each
span. Decompression is bounded: a small gzip body cannot expand past the body limit.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from schemas.otlp_values import any_value
from schemas.trace_json import ARTIFACT_LOCATION_TAG, artifact_location
from schemas.trace_wire import SpanRecord, TraceRoot, TraceSpans, WireSpan
from schemas.wire import partition_for

# A Kafka record stays below the broker's and the producer's 1 MB limit: a request's spans are
# packed into records whose JSON is at most this big by an upper-bound estimate (base64 protos,
# texts counted at their worst escaping), and a span that cannot fit one is refused (413).
ENTRY_MAX_BYTES = 1_000_000 - 4096  # room for the record's own fields
SPAN_MAX_BYTES = ENTRY_MAX_BYTES - 128 * 1024  # room for its trace's tags and previews
PREVIEW_MAX_CHARS = 1000  # MLflow's TRACE_REQUEST_RESPONSE_PREVIEW_MAX_LENGTH_OSS
INT64_MAX = 2**63 - 1  # OTLP times are unsigned 64-bit; stored as PostgreSQL bigint
REQUEST_ID_ATTRIBUTE = "mlflow.traceRequestId"
_SPAN_TYPE = "mlflow.spanType"
_TAG_PREFIX = "mlflow.traceTag."
_MEDIA_TYPES = ("application/x-protobuf", "application/json")
_HEX_ID_FIELDS = ("traceId", "spanId", "parentSpanId")
_STATUS = {Status.STATUS_CODE_OK: "OK", Status.STATUS_CODE_ERROR: "ERROR"}
_encoder = msgspec.json.Encoder()  # sizes of a trace's tags and root as records write them


class OtlpError(Exception):
    """A refused export: MLflow's FastAPI answer ``{"detail": ...}`` with this status."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(str(detail))
        self.status = status
        self.detail = detail


def media_type(content_type: str | None) -> str:
    """The accepted media type of the request, or OtlpError(400)."""
    media = content_type.split(";")[0].strip() if content_type else None
    if media not in _MEDIA_TYPES:
        raise OtlpError(
            400,
            f"Invalid Content-Type: {content_type}. "
            "Expected: application/x-protobuf or application/json",
        )
    return media


def decompress(body: bytes, encoding: str | None, max_bytes: int) -> bytes:
    """The body after Content-Encoding (gzip, deflate, raw deflate), at most ``max_bytes``."""
    if not encoding:
        return body
    encoding = encoding.lower()
    if encoding == "gzip":
        return _inflate(body, 16 + zlib.MAX_WBITS, "gzip", max_bytes)
    if encoding == "deflate":
        try:
            return _inflate(body, zlib.MAX_WBITS, "deflate", max_bytes)
        except OtlpError as exc:
            if exc.status == 413:
                raise
            return _inflate(body, -zlib.MAX_WBITS, "deflate", max_bytes)
    raise OtlpError(400, f"Unsupported Content-Encoding: {encoding}")


def _inflate(body: bytes, wbits: int, name: str, max_bytes: int) -> bytes:
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, max_bytes + 1)
    except zlib.error:
        raise OtlpError(400, f"Failed to decompress {name} payload") from None
    if len(out) > max_bytes:
        raise OtlpError(413, f"Decompressed payload exceeds {max_bytes} bytes")
    if not inflater.eof:
        raise OtlpError(400, f"Failed to decompress {name} payload")
    return out


def parse(body: bytes, media: str) -> ExportTraceServiceRequest:
    """The export request; OtlpError(400) when it is not OTLP or holds no resource spans."""
    request = ExportTraceServiceRequest()
    try:
        if media == "application/json":
            json_format.Parse(_hex_ids_to_base64(body), request, ignore_unknown_fields=True)
        else:
            request.ParseFromString(body)
    except (DecodeError, json_format.ParseError, orjson.JSONDecodeError, ValueError, TypeError):
        raise OtlpError(400, "Invalid OpenTelemetry format") from None
    if not request.resource_spans:
        raise OtlpError(400, "Invalid OpenTelemetry format - no spans found")
    return request


def _hex_ids_to_base64(body: bytes) -> bytes:
    """OTLP JSON writes ids as hex; protobuf's JSON mapping reads bytes as base64."""
    doc = orjson.loads(body)
    if not isinstance(doc, dict):
        raise ValueError("not an object")
    for resource_spans in _list(doc.get("resourceSpans")):
        for scope_spans in _list(_dict(resource_spans).get("scopeSpans")):
            for item in _list(_dict(scope_spans).get("spans")):
                span = _dict(item)
                for name in _HEX_ID_FIELDS:
                    if value := span.get(name):
                        if not isinstance(value, str):
                            raise ValueError(f"{name} is not a string")
                        try:
                            span[name] = base64.b64encode(bytes.fromhex(value)).decode()
                        except ValueError:
                            raise ValueError(f"{name} is not hex") from None
    return orjson.dumps(doc)


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError("expected a list")
    return value


def _dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("expected an object")
    return value


# -- spans -> records ---------------------------------------------------------------------------


@dataclass(slots=True)
class Trace:
    """One trace's spans of a request, in request order, and what its root span said."""

    spans: list[WireSpan] = field(default_factory=list)
    root: TraceRoot | None = None
    tags: dict[str, str] = field(default_factory=dict)
    bounds: list[int] = field(default_factory=list)  # each span's record size bound


@dataclass(frozen=True, slots=True)
class Envelope:
    """What every record of one request carries."""

    experiment_id: int
    event_id: str
    received_at_ms: int


def to_traces(request: ExportTraceServiceRequest) -> dict[str, Trace]:
    """The request's traces by MLflow trace id, in order of first appearance; OtlpError(422)
    for a span MLflow cannot convert (missing or malformed ids), 400/413 for one Sluice cannot
    store."""
    traces: dict[str, Trace] = {}
    # Per OTLP trace id: what every span of that trace shares (its MLflow id, its Trace, the
    # request-id attribute as bytes), derived once a request instead of once a span.
    known: dict[bytes, tuple[str, Trace, bytes]] = {}
    for resource_spans in request.resource_spans:
        resource_tags = _resource_tags(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                raw_trace_id = span.trace_id
                shared = known.get(raw_trace_id)
                if shared is None:
                    shared = known[raw_trace_id] = _trace_of(raw_trace_id, traces)
                trace_id, trace, request_id_suffix = shared
                wire_span, root, bound = _convert(span, trace_id, request_id_suffix)
                trace.spans.append(wire_span)
                trace.bounds.append(bound)
                if resource_tags:
                    trace.tags.update(resource_tags)
                if root is not None:
                    trace.root = root
    return traces


def _trace_of(raw_trace_id: bytes, traces: dict[str, Trace]) -> tuple[str, Trace, bytes]:
    """(MLflow trace id, its Trace in ``traces``, its request-id attribute as a serialised Span
    field) of an OTLP trace id not seen before in the request, added to ``traces``. The MLflow
    id is derived as MLflow's server does ("tr-" + 32 hex), never taken from the client's
    ``mlflow.traceRequestId`` attribute, which is overwritten."""
    if len(raw_trace_id) != 16:
        raise OtlpError(422, _UNCONVERTIBLE)
    trace_id = "tr-" + raw_trace_id.hex()
    trace = traces[trace_id] = Trace()  # one MLflow id per OTLP id: it cannot be there yet
    return trace_id, trace, _REQUEST_ID_FIELD_PREFIX + trace_id.encode()


def to_records(
    traces: dict[str, Trace], envelope: Envelope, artifact_root: str, partitions: int
) -> list[tuple[str, SpanRecord]]:
    """(key, record) pairs: one record per partition the traces map to (more when a partition's
    share exceeds RECORD_MAX_BYTES), key = the record's first trace id. Each trace's tags get
    its artifact location (MLflow gives a trace it creates from spans that tag).
    OtlpError(413) when one span with its trace's tags cannot fit a record."""
    by_partition: dict[int, list[tuple[TraceSpans, int]]] = {}
    for trace_id, trace in traces.items():
        tags = {**trace.tags, ARTIFACT_LOCATION_TAG: artifact_location(artifact_root, trace_id)}
        entries = by_partition.setdefault(partition_for(trace_id, partitions), [])
        entries.extend(_entries(trace_id, trace, tags))
    records: list[tuple[str, SpanRecord]] = []
    for entries in by_partition.values():
        for group in _packed(entries):
            record = SpanRecord(
                v=2,
                experiment_id=envelope.experiment_id,
                event_id=f"{envelope.event_id}-{len(records)}",
                received_at_ms=envelope.received_at_ms,
                traces=group,
            )
            records.append((group[0].trace_id, record))
    return records


def _entries(trace_id: str, trace: Trace, tags: dict[str, str]) -> Iterator[tuple[TraceSpans, int]]:
    """The trace as record entries of at most ENTRY_MAX_BYTES (encoded, estimated) each, with
    their estimated sizes; root and tags ride on the first."""
    head = len(_encoder.encode(tags)) + len(_encoder.encode(trace.root)) + _json_bound(trace_id)
    if head > ENTRY_MAX_BYTES - SPAN_MAX_BYTES:
        raise OtlpError(413, f"A trace's tags and previews of about {head} bytes are too large")
    piece: list[WireSpan] = []
    size = head
    first = True
    for span, cost in zip(trace.spans, trace.bounds, strict=True):
        # cost is at most SPAN_MAX_BYTES: the span fits an entry with its head
        if piece and size + cost > ENTRY_MAX_BYTES:
            yield _entry(trace_id, piece, trace, tags, first), size
            piece, size, first = [], _json_bound(trace_id), False
        piece.append(span)
        size += cost
    if piece:
        yield _entry(trace_id, piece, trace, tags, first), size


def _entry(
    trace_id: str, spans: list[WireSpan], trace: Trace, tags: dict[str, str], first: bool
) -> TraceSpans:
    return TraceSpans(
        trace_id=trace_id,
        spans=spans,
        root=trace.root if first else None,
        tags=tags if first else {},
    )


def _packed(entries: list[tuple[TraceSpans, int]]) -> Iterator[list[TraceSpans]]:
    """Entries in runs whose estimated sizes add up to at most ENTRY_MAX_BYTES."""
    group: list[TraceSpans] = []
    size = 0
    for entry, cost in entries:
        if group and size + cost > ENTRY_MAX_BYTES:
            yield group
            group, size = [], 0
        group.append(entry)
        size += cost
    if group:
        yield group


# A span's fixed fields in a record: the two ids (16 hex each), status, both times (at most 19
# digits each), the eight field names and the JSON punctuation; about 180 bytes, bounded here.
_SPAN_FIELDS_BOUND = 256


def _span_bound(proto_len: int, name: str, span_type: str | None) -> int:
    """An upper bound of the span's JSON in a record: base64 of the proto, the texts escaped
    (as ``_json_bound``), its fixed fields."""
    bound = 4 * (proto_len // 3 + 1) + 6 * len(name) + 64 + _SPAN_FIELDS_BOUND
    return bound if span_type is None else bound + 6 * len(span_type) + 64


def _json_bound(*texts: str | None) -> int:
    """An upper bound of the texts' JSON: 6 bytes a character (``\\u0001``) plus quoting and
    field names."""
    return sum(6 * len(t) + 64 for t in texts if t is not None)


def _convert(
    span: Span, trace_id: str, request_id_suffix: bytes
) -> tuple[WireSpan, TraceRoot | None, int]:
    """(wire span, root summary or None, record size bound ``_span_bound``) of one OTLP span
    of trace ``trace_id``. Only the attributes Sluice reads are decoded: the span type, and for
    a root span its inputs, outputs and trace tags (decoding every attribute of every span was
    most of ingest's CPU). Written for speed: it runs for every span ingest takes (plain
    attribute reads, a child span's attributes read inline)."""
    span_id, parent_id = span.span_id, span.parent_span_id
    if len(span_id) != 8 or len(parent_id) not in (0, 8):
        raise OtlpError(422, _UNCONVERTIBLE)
    start_ns, end_ns = span.start_time_unix_nano, span.end_time_unix_nano
    if start_ns > INT64_MAX or end_ns > INT64_MAX:
        raise OtlpError(400, "Span times must fit a signed 64-bit integer")
    read: dict[str, Any] | None = None
    span_type: Any = None
    has_request_id = False
    if parent_id:
        for kv in span.attributes:
            key = kv.key
            if key == _SPAN_TYPE:
                span_type = any_value(kv.value)
            elif key == REQUEST_ID_ATTRIBUTE:  # kept in place, as MLflow's dict update does
                kv.value.string_value = trace_id  # the value's only field: the rest is cleared
                has_request_id = True
    else:
        read, has_request_id = _read_attributes(span, trace_id)
        span_type = read.get(_SPAN_TYPE)
    if not isinstance(span_type, str):
        span_type = None
    name = span.name
    proto = span.SerializeToString()
    if not has_request_id:  # appended as bytes: cheaper than adding to the message first
        proto += request_id_suffix
    if (bound := _span_bound(len(proto), name, span_type)) > SPAN_MAX_BYTES:
        raise OtlpError(413, f"A span of about {bound} bytes exceeds {SPAN_MAX_BYTES} bytes")
    if "\x00" in name or (span_type is not None and "\x00" in span_type):
        raise OtlpError(400, _NUL_REFUSED)
    root = None
    if read is not None:
        root = _root(read)
        _storable(root.request_preview, root.response_preview, *root.tags, *root.tags.values())
    wire_span = WireSpan(
        span_id.hex(),
        parent_id.hex() if parent_id else None,
        name,
        span_type,
        _STATUS.get(span.status.code, "UNSET"),  # type: ignore[arg-type]
        start_ns,
        end_ns or None,
        proto,
    )
    return wire_span, root, bound


_UNCONVERTIBLE = "Cannot convert OpenTelemetry span to MLflow span"
_NUL_REFUSED = "Span names, types, tags and previews must not contain NUL"


def _storable(*texts: str | None) -> None:
    """Texts that become PostgreSQL text or jsonb must not hold NUL (neither can)."""
    for text in texts:
        if text is not None and "\x00" in text:
            raise OtlpError(400, _NUL_REFUSED)


def _read_attributes(span: Span, trace_id: str) -> tuple[dict[str, Any], bool]:
    """A root span's decoded attributes, and whether it has a request-id attribute; that
    attribute now says ``trace_id``."""
    read: dict[str, Any] = {}
    has_request_id = False
    for kv in span.attributes:
        key = kv.key
        if key == REQUEST_ID_ATTRIBUTE:  # kept in place, as MLflow's dict update does
            kv.value.string_value = trace_id  # the value's only field: the rest is cleared
            has_request_id = True
        else:
            read[key] = any_value(kv.value)
    return read, has_request_id


def request_id_field(trace_id: str) -> bytes:
    """The request-id attribute of ``trace_id`` as a serialised Span field (``attributes``):
    appended to a serialised Span, it appends that attribute (protobuf concatenates a
    repeated field's occurrences)."""
    attribute = KeyValue(key=REQUEST_ID_ATTRIBUTE, value=AnyValue(string_value=trace_id))
    return Span(attributes=[attribute]).SerializeToString()


_ID_TEMPLATE = "tr-" + "0" * 32  # every trace id ingest derives has this length
_REQUEST_ID_FIELD_PREFIX = request_id_field(_ID_TEMPLATE)[: -len(_ID_TEMPLATE)]


def _root(attributes: dict[str, Any]) -> TraceRoot:
    tags = {
        key[len(_TAG_PREFIX) :]: value if isinstance(value, str) else _dump(value)
        for key, value in attributes.items()
        if key.startswith(_TAG_PREFIX) and len(key) > len(_TAG_PREFIX)
    }
    return TraceRoot(
        request_preview=preview(attributes.get("mlflow.spanInputs")),
        response_preview=preview(attributes.get("mlflow.spanOutputs")),
        tags=tags,
    )


def _resource_tags(attributes: Any) -> dict[str, str]:
    """Resource attributes become trace tags, except the SDK's and MLflow's own (as MLflow)."""
    tags = {
        kv.key: value if isinstance(value := any_value(kv.value), str) else _dump(value)
        for kv in attributes
        if not kv.key.startswith(("telemetry.sdk.", "mlflow."))
    }
    _storable(*tags, *tags.values())
    return tags


def preview(value: Any) -> str | None:
    """The stored preview of a root span's inputs or outputs: its JSON, cut to 1000 chars."""
    if value is None:
        return None
    text = _dump(value)
    return text if len(text) <= PREVIEW_MAX_CHARS else text[: PREVIEW_MAX_CHARS - 3] + "..."


def _dump(value: Any) -> str:
    """JSON text as MLflow dumps attribute values (json.dumps: ", " and ": ", not ASCII-only)."""
    return _DUMPER.encode(value)


# What json.dumps(value, ensure_ascii=False, default=str) builds on every call, built once.
_DUMPER = json.JSONEncoder(ensure_ascii=False, default=str)
